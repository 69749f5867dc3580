"""Raw PII never lands on disk: not in staging, bronze, silver, quarantine, the Delta log's
statistics, samples, records or logs. Every byte under the lake and .weir/ is scanned."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from weirtest.projects import SALT, orders_pipeline, table_rows, weir_run, write_project

EMAILS = ["alice.private@example.com", "bob.secret@example.org", "carol.hidden@example.net"]
SSNS = ["078051120", "219099999", "457555462"]


def _contract() -> dict[str, Any]:
    return {
        "apiVersion": "v3.0.2",
        "kind": "DataContract",
        "id": "people",
        "version": "1",
        "schema": [
            {
                "name": "people",
                "properties": [
                    {"name": "person_id", "physicalName": "id", "physicalType": "int64",
                     "primaryKey": True},
                    {"name": "email", "physicalType": "string", "classification": "pii",
                     "quality": [
                         {"rule": "regex", "pattern": "^[a-z.]+@example\\.(com|org)$",
                          "severity": "warn"},
                     ]},
                    {"name": "ssn", "physicalType": "int64", "classification": "pii",
                     "quality": [
                         {"rule": "range", "mustBeGreaterThanOrEqualTo": 1000,
                          "severity": "error"},
                     ]},
                    {"name": "age", "physicalType": "int64"},
                ],
            }
        ],
    }  # fmt: skip


def _project(root: Path, **transform: Any) -> Path:
    pipe = orders_pipeline(
        name="people",
        contract="people",
        extract={"source": "files", "path": "data/*.csv"},
        transform=transform,
    )
    write_project(root, contracts={"people": _contract()}, pipelines={"people": pipe})
    (root / "data").mkdir()
    rows = [f"{i + 1},{EMAILS[i]},{SSNS[i]},{30 + i}" for i in range(3)]
    rows.append(f"4,{EMAILS[0].upper()},12,50")  # ssn breaks the error rule: quarantined
    (root / "data/people.csv").write_text("id,email,ssn,age\n" + "\n".join(rows) + "\n")
    return root


def _everything_on_disk(root: Path) -> bytes:
    blobs = []
    for base in (root / "lake", root / ".weir"):
        for path in base.rglob("*"):
            if path.is_file():
                blobs.append(path.read_bytes())
    return b"\n".join(blobs)


def _salted(value: str) -> str:
    return hashlib.sha256((SALT + value).encode()).hexdigest()


def test_no_raw_pii_anywhere_under_the_lake_or_state(tmp_path: Path) -> None:
    root = _project(
        tmp_path / "p",
        derived=[
            {"name": "email_upper", "sql": "upper(email)", "type": "string"},
            {"name": "domain", "sql": "split_part(email, '@', 2)", "type": "string",
             "pii": False},
            {"name": "decade", "sql": "age // 10", "type": "int64"},
        ],
    )  # fmt: skip
    result = weir_run(root)
    assert result.returncode == 0, result.stderr
    disk = _everything_on_disk(root) + result.stdout.encode() + result.stderr.encode()
    raw = [*EMAILS, *(e.upper() for e in EMAILS), *SSNS, *(str(int(s)) for s in SSNS)]
    leaked = [value for value in raw if value.encode() in disk]
    assert leaked == []
    assert SALT.encode() not in disk
    # the PII columns' digests stay out of the Delta log's statistics too
    logs = b"".join(p.read_bytes() for p in (root / "lake").rglob("_delta_log/*.json"))
    assert _salted(EMAILS[0]).encode() not in logs

    silver = {r["person_id"]: r for r in table_rows(root / "lake/silver/people")}
    assert sorted(silver) == [1, 2, 3]
    assert silver[1]["email"] == _salted(EMAILS[0])
    assert silver[1]["ssn"] == _salted(str(int(SSNS[0])))  # the digest of the typed value
    # a value computed from PII is PII: stored as the digest of the computed value
    assert silver[1]["email_upper"] == _salted(EMAILS[0].upper())
    # … unless declared pii: false
    assert silver[1]["domain"] == "example.com"
    assert silver[1]["decade"] == 3
    # the rules that need raw values were evaluated before hashing
    assert silver[1]["dq_valid"] and silver[2]["dq_valid"]
    assert silver[3]["dq_flags"] == ["email.regex"]
    [quarantined] = table_rows(root / "lake/quarantine/people")
    assert quarantined["person_id"] == 4 and quarantined["_reasons"] == ["ssn.range"]
    assert quarantined["email"] == _salted(EMAILS[0].upper())


def test_bronze_holds_digests_and_a_rerun_ingests_nothing(tmp_path: Path) -> None:
    root = _project(tmp_path / "p")
    assert weir_run(root).returncode == 0
    bronze = table_rows(root / "lake/bronze/people", sort=["id"])
    assert [r["email"] for r in bronze[:3]] == [_salted(e) for e in EMAILS]
    assert bronze[3]["_pii_flags"] == ["email.regex", "ssn.range"]
    again = weir_run(root)
    assert again.returncode == 0 and "up to date" in again.stdout


@pytest.mark.parametrize(
    ("load", "field"),
    [
        ({"strategy": "merge", "partition_by": ["email"]}, "load.partition_by"),
        ({"strategy": "scd2", "scd2": {"valid_from": "email"}}, "load.scd2.valid_from"),
    ],
)
def test_a_pii_column_cannot_order_or_partition(
    tmp_path: Path, load: dict[str, Any], field: str
) -> None:
    root = _project(tmp_path / "p")
    pipe = orders_pipeline(
        name="people", contract="people", extract={"source": "files", "path": "data/*.csv"}
    )
    pipe["transform"] = {}
    pipe["load"] = load
    write_project(root, contracts={"people": _contract()}, pipelines={"people": pipe})
    result = weir_run(root)
    assert result.returncode == 2
    assert "is PII" in result.stderr and "people.yml:" in result.stderr
