"""`weir forget`: a data subject leaves every table, every file and every record — real runs,
real Delta tables, every byte under the lake and .weir/ scanned afterwards."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from weir.cli import main
from weir.lake.table import Table
from weir.spec import load_project
from weirtest.projects import SALT, table_rows, weir_run, write_models, write_project

ALICE = "alice.forgetme@example.com"
ALICE_NEW = "alice.newaddress@example.com"
BOB = "bob.keepme@example.org"
ALICE_CODE = "C-ALICE-0007"
BOB_CODE = "C-BOB-0002"
ATLANTIS = "Atlantis-Under-The-Sea"
"""Alice's city: not PII, but part of her rows, so it must vanish with them."""


def _contract(name: str, columns: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "v3.0.2",
        "kind": "DataContract",
        "id": name,
        "version": "1",
        "schema": [{"name": name, "properties": columns}],
    }


CUSTOMERS = _contract(
    "customers",
    [
        {"name": "customer_code", "physicalName": "code", "physicalType": "string",
         "primaryKey": True},
        {"name": "email", "physicalType": "string", "classification": "pii"},
        {"name": "city", "physicalType": "string",
         "quality": [{"rule": "accepted_values", "validValues": ["Oslo", "Rome", "Bergen"],
                      "severity": "warn"}]},
        {"name": "updated_at", "physicalType": "timestamp"},
    ],
)  # fmt: skip
ORDERS = _contract(
    "orders",
    [
        {"name": "order_id", "physicalName": "id", "physicalType": "int64", "primaryKey": True},
        {"name": "email", "physicalType": "string", "classification": "pii"},
        {"name": "amount", "physicalType": "float64",
         "quality": [{"rule": "range", "mustBeGreaterThanOrEqualTo": 0, "severity": "error"}]},
        {"name": "day", "physicalType": "date"},
    ],
)  # fmt: skip
MODELS = {
    # a copy of the customers' key and of the e-mail (joined with an aggregate)
    "customer_orders": """
        SELECT c.customer_code, c.email, count(o.order_id) AS orders
        FROM silver.customers c LEFT JOIN silver.orders o ON o.email = c.email
        GROUP BY c.customer_code, c.email
    """,
    # every version of every order, by the order's key
    "order_history": """
        /* weir
        materialized: snapshot
        unique_key: [order_id]
        */
        SELECT order_id, email, amount FROM silver.orders
    """,
    # an aggregate: the subject cannot be located in it
    "daily_revenue": "SELECT day, sum(amount) AS revenue FROM silver.orders GROUP BY day",
}
STEPS: list[dict[str, str]] = [
    {
        "customers/1.csv": f"code,email,city,updated_at\n{ALICE_CODE},{ALICE},{ATLANTIS},"
        f"2024-01-01 00:00:00\n{BOB_CODE},{BOB},Rome,2024-01-01 00:00:00\n",
        "orders/1.csv": f"id,email,amount,day\n1,{ALICE},10.0,2024-01-01\n"
        f"2,{BOB},5.0,2024-01-01\n3,{ALICE},7.5,2024-01-02\n",
    },
    {  # updates: merges rewrite the files holding alice, the old ones stay on disk
        "customers/2.csv": f"code,email,city,updated_at\n{ALICE_CODE},{ALICE},Oslo,"
        "2024-01-02 00:00:00\n",
        "orders/2.csv": f"id,email,amount,day\n3,{ALICE},8.0,2024-01-02\n4,{BOB},1.0,2024-01-02\n",
    },
    {  # a quarantined row of alice's, and an order under her new address
        "orders/3.csv": f"id,email,amount,day\n5,{ALICE},-5.0,2024-01-03\n"
        f"6,{ALICE_NEW},3.0,2024-01-03\n7,{BOB},2.0,2024-01-03\n9,{BOB},-1.0,2024-01-03\n",
    },
]


def _project(root: Path) -> Path:
    pipelines = {
        name: {
            "name": name,
            "owner": "data-eng",
            "contract": name,
            "extract": {"source": "files", "path": f"data/{name}/*.csv"},
            "load": {"strategy": "merge"},
        }
        for name in ("customers", "orders")
    }
    write_project(root, contracts={"customers": CUSTOMERS, "orders": ORDERS}, pipelines=pipelines)
    write_models(root, MODELS)
    for step in STEPS:
        for rel, text in step.items():
            path = root / "data" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        result = weir_run(root)
        assert result.returncode == 0, result.stdout + result.stderr
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project after its three runs (copied by each test that changes it)."""
    return _project(tmp_path_factory.mktemp("forget") / "proj")


@pytest.fixture
def proj(built: Path, tmp_path: Path) -> Path:
    import shutil

    target = tmp_path / "proj"
    shutil.copytree(built, target)
    return target


def _forget(root: Path, *words: str, reason: str = "GDPR request #4711") -> tuple[int, str]:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["forget", *words, "--reason", reason, "--project", str(root)])
    return code, out.getvalue() + err.getvalue()


def _salted(value: str) -> str:
    return hashlib.sha256((SALT + value).encode()).hexdigest()


def _disk(root: Path) -> bytes:
    return b"\n".join(
        p.read_bytes()
        for base in (root / "lake", root / ".weir")
        for p in sorted(base.rglob("*"))
        if p.is_file()
    )


def _tables(root: Path) -> dict[str, Path]:
    return {
        f"{layer.name}.{t.name}": t
        for layer in sorted((root / "lake").iterdir())
        for t in sorted(layer.iterdir())
    }


def _positions(root: Path) -> dict[str, Any]:
    """Every pipeline's position (bronze) and batch in silver and quarantine, and every
    model's position (gold)."""
    project = load_project(root)
    lake = root / "lake"
    found: dict[str, Any] = {}
    for name in project.pipelines:
        app = f"weir:{name}"
        found[name] = Table(str(lake / "bronze" / name), label="bronze").position(app)
        for layer in ("silver", "quarantine"):
            found[f"{layer}.{name}"] = Table(str(lake / layer / name), label=layer).applied(app)
    for name in project.models:
        gold = Table(str(lake / "gold" / name), label="gold")
        found[f"gold.{name}"] = gold.position(f"weir:model:{name}")
    assert all(found[p][1] for p in project.pipelines)
    return found


def _versions(root: Path) -> dict[str, int]:
    return {name: DeltaTable(str(path)).version() for name, path in _tables(root).items()}


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in (root / "lake").rglob("*") if p.is_file()
    }


def test_forget_by_pii_value_removes_every_copy(proj: Path) -> None:
    subject = [_salted(ALICE).encode(), ALICE_CODE.encode(), ATLANTIS.encode()]
    disk = _disk(proj)
    assert all(s in disk for s in subject)  # the test would see them
    subject.append(ALICE.encode())  # never on disk (the boundary hashes it), nor after
    positions, versions = _positions(proj), _versions(proj)

    code, output = _forget(proj, f"email={ALICE}", "--apply")
    assert code == 0, output

    disk = _disk(proj)
    assert [s for s in subject if s in disk] == []
    assert ALICE not in output and _salted(ALICE) not in output
    assert _positions(proj) == positions
    after = _versions(proj)
    changed = {t for t in versions if after[t] != versions[t]}
    assert changed == {
        "bronze.customers", "silver.customers", "bronze.orders", "silver.orders",
        "quarantine.orders", "gold.customer_orders", "gold.order_history",
    }  # fmt: skip
    assert all(after[t] == versions[t] + 1 for t in changed)  # one commit each

    # the subject's rows are gone, everyone else's are untouched
    lake = proj / "lake"
    assert [r["customer_code"] for r in table_rows(lake / "silver/customers")] == [BOB_CODE]
    assert sorted(r["order_id"] for r in table_rows(lake / "silver/orders")) == [2, 4, 6, 7]
    assert [r["order_id"] for r in table_rows(lake / "quarantine/orders")] == [9]
    assert sorted(r["id"] for r in table_rows(lake / "bronze/orders")) == [2, 4, 6, 7, 9]
    assert [r["code"] for r in table_rows(lake / "bronze/customers")] == [BOB_CODE]
    assert [r["customer_code"] for r in table_rows(lake / "gold/customer_orders")] == [BOB_CODE]
    history = table_rows(lake / "gold/order_history")
    assert sorted(r["order_id"] for r in history) == [2, 4, 6, 7]
    assert "Rome" in disk.decode("latin-1") and _salted(BOB).encode() in disk

    # the DELETE commits name the forget and no value; no batch, no app transaction
    audit = json.loads((proj / ".weir/audit.jsonl").read_text().splitlines()[-1])
    info = DeltaTable(str(lake / "silver/orders")).history(1)[0]
    assert info["operation"] == "DELETE" and info["weir.forget"] == audit["audit_id"]
    assert "weir.batch" not in info
    # the aggregate is reported, not searched
    assert "gold.daily_revenue" in output and "not located" in output


def test_the_next_run_changes_no_pipeline_and_then_nothing(proj: Path) -> None:
    assert _forget(proj, f"email={ALICE}", "--apply")[0] == 0
    versions = _versions(proj)
    result = weir_run(proj)
    assert result.returncode == 0, result.stderr
    after = _versions(proj)
    pipelines = {t for t in versions if not t.startswith("gold.")}
    assert {t: after[t] for t in pipelines} == {t: versions[t] for t in pipelines}
    assert result.stdout.count("= up to date") == 2
    # the models whose sources changed recompute once (the aggregate now without alice) …
    revenue = {
        r["day"].isoformat(): r["revenue"] for r in table_rows(proj / "lake/gold/daily_revenue")
    }
    assert revenue == {"2024-01-01": 5.0, "2024-01-02": 1.0, "2024-01-03": 5.0}
    assert ALICE_CODE.encode() not in _disk(proj)
    # … and then nothing changes any more
    settled = _versions(proj)
    assert weir_run(proj).returncode == 0
    assert _versions(proj) == settled


def test_the_audit_keeps_a_fingerprint_not_the_value(proj: Path) -> None:
    code, _ = _forget(proj, f"email={ALICE}", "--apply", reason="ticket 81 of the DPO")
    assert code == 0
    line = (proj / ".weir/audit.jsonl").read_text().splitlines()[-1]
    entry = json.loads(line)
    assert entry["status"] == "done" and entry["reason"] == "ticket 81 of the DPO"
    assert entry["selector"]["by"] == "pii" and entry["selector"]["columns"] == ["email"]
    assert entry["selector"]["pipelines"] == ["customers", "orders"]
    expected = hashlib.sha256(f"{SALT}weir:forget:email={ALICE}".encode()).hexdigest()
    assert entry["selector"]["fingerprint"] == expected
    rows = {t["table"]: t for t in entry["tables"]}
    assert rows["silver.orders"]["rows"] == 2 and rows["bronze.orders"]["rows"] == 4
    assert rows["quarantine.orders"]["rows"] == 1
    assert rows["gold.order_history"]["rows"] == 3  # order 3 has two versions
    assert all(t["files"] >= 1 for t in entry["tables"] if t["rows"])
    with sqlite3.connect(proj / ".weir/state.db") as con:
        [(status, detail)] = con.execute("SELECT status, detail FROM audit").fetchall()
    assert status == "done" and json.loads(detail)["audit_id"] == entry["audit_id"]


def test_samples_in_run_records_are_redacted(proj: Path) -> None:
    records = (proj / ".weir/runs.jsonl").read_text()
    assert ALICE_CODE in records and ATLANTIS in records  # the warn rule's failing-row sample
    size = (proj / ".weir/runs.jsonl").stat().st_size
    assert _forget(proj, f"email={ALICE}", "--apply")[0] == 0
    records = (proj / ".weir/runs.jsonl").read_text()
    assert ALICE_CODE not in records and ATLANTIS not in records
    assert (proj / ".weir/runs.jsonl").stat().st_size == size  # rewritten in place
    samples = [
        sample
        for line in records.splitlines()
        for check in json.loads(line)["checks"]
        for sample in check.get("samples") or []
    ]
    assert {"order_id": "*", "amount": "***"} in samples  # order 5, quarantined
    assert {"order_id": "9", "amount": "-1.0"} in samples  # bob's stays
    assert all(json.loads(line) for line in records.splitlines())
    with sqlite3.connect(proj / ".weir/state.db") as con:
        stored = " ".join(str(r) for r in con.execute("SELECT * FROM runs").fetchall())
    assert ALICE_CODE not in stored and ATLANTIS not in stored


def test_leftovers_of_a_killed_run_go_too(proj: Path) -> None:
    (proj / "data/orders/4.csv").write_text(f"id,email,amount,day\n8,{ALICE},1.0,2024-01-04\n")
    killed = weir_run(proj, fault="bronze.write")
    assert killed.returncode != 0
    [staged] = (proj / ".weir/staging/orders").glob("*.arrow")
    assert _salted(ALICE).encode() in staged.read_bytes()
    code, output = _forget(proj, f"email={ALICE}", "--apply")
    assert code == 0, output
    assert "interrupted runs removed" in output
    assert _salted(ALICE).encode() not in _disk(proj)
    again = weir_run(proj)  # the source still holds her: the next run loads her again
    assert again.returncode == 0, again.stderr
    assert 8 in [r["order_id"] for r in table_rows(proj / "lake/silver/orders")]


def test_forget_by_key(proj: Path) -> None:
    positions = _positions(proj)
    code, output = _forget(proj, "customers", f"customer_code={BOB_CODE}", "--apply")
    assert code == 0, output
    assert BOB_CODE not in output and BOB not in output
    assert "the subject's email also appears in 3 rows of silver.orders" in output
    assert BOB_CODE.encode() not in _disk(proj)
    lake = proj / "lake"
    assert [r["customer_code"] for r in table_rows(lake / "silver/customers")] == [ALICE_CODE]
    assert [r["customer_code"] for r in table_rows(lake / "gold/customer_orders")] == [ALICE_CODE]
    # a key names the subject in its own pipeline: bob's orders stay
    assert sorted(r["order_id"] for r in table_rows(lake / "silver/orders")) == [1, 2, 3, 4, 6, 7]
    assert _positions(proj) == positions


def test_a_dry_run_changes_nothing(proj: Path) -> None:
    files, records = _files(proj), (proj / ".weir/runs.jsonl").read_bytes()
    code, output = _forget(proj, f"email={ALICE}")
    assert code == 0, output
    assert "dry run" in output and "--apply" in output
    assert "silver.orders" in output and ALICE not in output
    assert _files(proj) == files
    assert (proj / ".weir/runs.jsonl").read_bytes() == records
    assert not (proj / ".weir/audit.jsonl").exists()
    code, output = _forget(proj, f"email={ALICE}", "--json")
    outcome = json.loads(output)
    assert code == 0 and outcome["applied"] is False and outcome["status"] == "dry run"
    tables = {t["table"]: t for t in outcome["tables"]}
    assert tables["bronze.orders"]["rows"] == 4 and tables["bronze.orders"]["files"] >= 1
    assert [u["table"] for u in outcome["not_located"]] == ["gold.daily_revenue"]
    assert _files(proj) == files


def test_time_travel_to_a_version_that_held_the_subject_fails(proj: Path) -> None:
    silver = proj / "lake/silver/customers"
    DeltaTable(str(silver)).create_checkpoint()  # a checkpoint lists the old files too
    assert _forget(proj, f"email={ALICE}", "--apply")[0] == 0
    assert ALICE_CODE.encode() not in _disk(proj)
    assert [r["customer_code"] for r in table_rows(silver)] == [BOB_CODE]
    with pytest.raises(Exception, match=r"(?i)not found|no such file"):
        DeltaTable(str(silver), version=1).to_pyarrow_table()


def test_nothing_to_forget(proj: Path) -> None:
    files = _files(proj)
    code, output = _forget(proj, "email=nobody.at.all@example.com")
    assert code == 0 and "nothing to forget" in output
    assert _files(proj) == files


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (["custmers", "customer_code=x"], "did you mean 'customers'"),
        (["emial=someone@example.com"], "did you mean 'email'"),
        (["amount=5"], "not PII"),
        (["orders", "amount=5"], "neither PII nor its natural key"),
        (["customer_code=C-1"], "name the pipeline"),
        (["orders", "order_id=not-a-number-at-all"], "not a valid int64"),
        (["orders", "email=a@example.com", "order_id=1"], "not the natural key"),
    ],
)
def test_selector_errors_are_clear(proj: Path, words: list[str], message: str) -> None:
    code, output = _forget(proj, *words)
    assert code == 2, output
    assert message in output and "hint:" in output
    assert "not-a-number-at-all" not in output and "someone@example.com" not in output


def test_a_reason_that_holds_the_value_is_refused(proj: Path) -> None:
    code, output = _forget(proj, f"email={ALICE}", "--apply", reason=f"asked by {ALICE}")
    assert code == 2 and "--reason contains" in output and ALICE not in output


def test_a_missing_salt_is_a_config_error(proj: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEIR_PII_SALT")
    code, output = _forget(proj, f"email={ALICE}")
    assert code == 2 and "WEIR_PII_SALT" in output and "hint:" in output


def test_the_command_has_help() -> None:
    from weir.cli import build_parser

    text = build_parser()._subparsers._group_actions[0].choices["forget"].format_help()  # type: ignore[union-attr]
    assert "--apply" in text and "--reason" in text
