"""Malformed configuration, generated: every mutation of a valid project — deep nesting,
alias bombs, wrong types, unknown or missing keys, huge or odd strings, random bytes,
truncation — is either accepted or a ConfigError (exit 2) naming file:line; never an
internal error, a traceback, or a run that fails with exit 1 for a config problem."""

from __future__ import annotations

import contextlib
import io
import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from weir.cli import main

pytestmark = (
    pytest.mark.slow
)  # subprocesses, dbt or many generated cases: `make test-fast` skips it

WEIR_YML: dict[str, Any] = {"name": "fuzz", "lake": "lake", "threads": 1}
PIPELINE: dict[str, Any] = {
    "name": "orders",
    "owner": "data-eng",
    "contract": "orders",
    "extract": {"source": "files", "path": "data", "format": "csv"},
    "transform": {
        "dedupe_order_by": "amount",
        "derived": [{"name": "cents", "sql": "CAST(amount * 100 AS BIGINT)", "type": "int64"}],
    },
    "load": {"strategy": "merge", "partition_by": ["region"]},
    "quality_gates": {"max_quarantine_ratio": 0.5},
    "error_handling": {"max_retries": 0, "retry_delay_seconds": 0},
}
CONTRACT: dict[str, Any] = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "orders",
    "version": "1.0.0",
    "team": [{"username": "data-eng", "role": "owner"}],
    "schema": [
        {
            "name": "orders",
            "properties": [
                {
                    "name": "order_id",
                    "physicalName": "id",
                    "physicalType": "int64",
                    "primaryKey": True,
                },
                {"name": "region", "physicalType": "string", "required": True},
                {
                    "name": "amount",
                    "physicalType": "float64",
                    "quality": [
                        {"rule": "range", "mustBeBetween": [0, 1000], "severity": "warn"},
                        {"rule": "row_condition", "condition": "amount < 10000", "name": "sane"},
                    ],
                },
            ],
            "quality": [{"rule": "row_count", "mustBeGreaterThanOrEqualTo": 1}],
        }
    ],
}
MODEL_HEADER: dict[str, Any] = {
    "materialized": "table",
    "checks": [
        {"rule": "not_null", "column": "region"},
        {"rule": "row_condition", "condition": "total >= 0", "severity": "warn"},
    ],
}
MODEL_SQL = "SELECT region, sum(amount) AS total FROM silver.orders GROUP BY region\n"
DATA = "id,region,amount\n1,north,5.5\n2,south,7\n3,north,12\n"
TARGETS: dict[str, dict[str, Any]] = {
    "weir.yml": WEIR_YML,
    "pipelines/orders.yml": PIPELINE,
    "contracts/orders.yml": CONTRACT,
    "models/totals.sql": MODEL_HEADER,
}
ODD = "\u202e\u200b\ufeff\u0085\u2028\u00a0\U0001f600e\u0301\u0000\t\x1b"
SENTINEL = "__weir_fuzz__"
WHERE = re.compile(r"(weir\.yml|orders\.yml|totals\.(sql|yml)):\d+")


def _paths(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a parsed document: mapping keys and list items, depth-first."""
    found = [at]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*at, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _paths(item, (*at, i))
    return found


def _set(doc: Any, at: tuple[Any, ...], value: Any) -> Any:
    if not at:
        return value
    parent = doc
    for part in at[:-1]:
        parent = parent[part]
    parent[at[-1]] = value
    return doc


def _render(target: str, doc: Any) -> str:
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    if target.endswith(".sql"):
        return f"/* weir\n{text}*/\n{MODEL_SQL}"
    return text


_BOMB = "".join(
    [
        "b0: &b0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n",
        *(f"b{i}: &b{i} [" + ", ".join([f"*b{i - 1}"] * 9) + "]\n" for i in range(1, 9)),
    ]
)

weird_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.sampled_from("az_09-./'\"; " + ODD), max_size=30),
    st.sampled_from(
        ["../../../escaped", "o'x\"; DROP TABLE t; --", "(SELECT 1)", "read_text('/etc/passwd')",
         "getenv('HOME')", "${env:NOPE}", "int65", "1e999999", "", "~", "*", "&x"]
    ),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["a", "rule", "name", "sql"]), st.integers(), max_size=2),
)  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn) -> tuple[str, bytes]:
    """One project file with one mutation, as bytes."""
    target = draw(st.sampled_from(sorted(TARGETS)))
    doc = yaml.safe_load(yaml.safe_dump(TARGETS[target]))
    at = draw(st.sampled_from(_paths(doc)))
    kind = draw(
        st.sampled_from(
            ["value", "unknown", "delete", "deep", "bomb", "huge", "truncate", "bytes", "unicode"]
        )
    )
    if kind == "value":
        doc = _set(doc, at, draw(weird_values))
    elif kind == "unknown" and isinstance(doc, dict):
        doc[draw(st.text(alphabet="abcxyz_", min_size=1, max_size=8))] = draw(weird_values)
    elif kind == "delete" and at:
        parent = doc
        for part in at[:-1]:
            parent = parent[part]
        del parent[at[-1]]
    elif kind in ("deep", "bomb", "huge"):
        doc = _set(doc, at, SENTINEL)
    text = _render(target, doc)
    depth = draw(st.integers(min_value=30, max_value=3000))
    if kind == "deep":
        opener, closer = draw(st.sampled_from([("[", "]"), ("{a: ", "}")]))
        text = text.replace(SENTINEL, opener * depth + "1" + closer * depth)
    elif kind == "bomb":
        text = _BOMB + text.replace(SENTINEL, "*b8")
    elif kind == "huge":
        text = text.replace(SENTINEL, "x" * draw(st.integers(min_value=10_000, max_value=200_000)))
    raw = text.encode()
    if kind == "truncate":
        raw = raw[: draw(st.integers(min_value=0, max_value=len(raw)))]
    elif kind in ("bytes", "unicode"):
        pos = draw(st.integers(min_value=0, max_value=len(raw)))
        extra = (
            draw(st.binary(min_size=1, max_size=8))
            if kind == "bytes"
            else draw(st.text(alphabet=ODD, min_size=1, max_size=4)).encode("utf-8", "replace")
        )
        raw = raw[:pos] + extra + raw[pos:]
    return target, raw


def _write_project(root: Path, target: str, raw: bytes) -> None:
    for name, doc in TARGETS.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw if name == target else _render(name, doc).encode())
    (root / "data").mkdir()
    (root / "data" / "orders.csv").write_text(DATA)


def _cli(*args: str) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue() + err.getvalue()


def _assert_no_crash(code: int, output: str) -> None:
    assert "internal error" not in output and "Traceback" not in output, output[-3000:]
    if code == 2:
        assert WHERE.search(output), f"a config error without file:line:\n{output[-3000:]}"


def test_the_unmutated_project_validates_and_runs() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write_project(root, "", b"")
        assert _cli("validate", "--project", str(root))[0] == 0
        code, output = _cli("run", "--project", str(root))
        assert code == 0, output


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(mutated())
def test_malformed_config_is_accepted_or_a_config_error(case: tuple[str, bytes]) -> None:
    target, raw = case
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _write_project(root, target, raw)
        code, output = _cli("validate", "--project", str(root))
        assert code in (0, 2), output[-3000:]
        _assert_no_crash(code, output)
        if code == 0:
            code, output = _cli("run", "--project", str(root))
            assert code in (0, 1, 2), output[-3000:]
            _assert_no_crash(code, output)
