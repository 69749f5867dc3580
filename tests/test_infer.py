"""`weir infer`: contracts (and pipeline files) drafted from a real table's catalog, in SQLite
and in the session's PostgreSQL, that `weir validate` accepts and `weir run` loads."""

from __future__ import annotations

import ast
import json
import re
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from weir.cli import main
from weir.sources.sql.catalog import POSTGRES_TYPES, sqlite_type
from weir.spec.draft import pii_reason

if TYPE_CHECKING:
    from weirtest.postgres import Cluster

ROOT = Path(__file__).resolve().parents[1]
WEIR_YML = "name: drafted\nlake: lake\nstate: .weir/state.db\n"

PG_SCHEMA = """
CREATE TYPE order_status AS ENUM ('placed', 'paid', 'shipped', 'cancelled');
CREATE DOMAIN money_amount AS numeric(12,2);
CREATE TABLE public.customers (
    customer_id bigint PRIMARY KEY,
    email text NOT NULL UNIQUE,
    full_name varchar(120),
    birth_date date,
    signup_ip inet,
    tags text[],
    profile jsonb,
    updated_at timestamptz NOT NULL
);
COMMENT ON TABLE public.customers IS 'People who bought something.';
COMMENT ON COLUMN public.customers.email IS 'Login e-mail, lower case.';
CREATE TABLE public.order_lines (
    order_id bigint NOT NULL,
    line_no smallint NOT NULL,
    sku char(8) NOT NULL,
    status order_status NOT NULL,
    quantity integer NOT NULL,
    unit_price money_amount NOT NULL,
    weight real,
    ratio numeric,
    paid boolean,
    token uuid,
    picked_at time,
    shipped_on timestamp(3),
    receipt bytea,
    PRIMARY KEY (line_no, order_id),
    UNIQUE (order_id, sku)
);
"""


def _infer(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> dict[str, Any]:
    assert main(["infer", *argv, "--json"]) == code
    return json.loads(capsys.readouterr().out)


def _project(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "weir.yml").write_text(WEIR_YML)
    return root


def _properties(path: Path) -> dict[str, dict[str, Any]]:
    contract = yaml.safe_load(path.read_text())
    return {p["name"]: p for p in contract["schema"][0]["properties"]}


# ---------------------------------------------------------------- PostgreSQL
@pytest.fixture
def pg_shop(
    postgres: Cluster, pg_database: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, Any]:
    from weirtest.postgres import PASSWORD

    with postgres.connect(pg_database) as con:
        con.execute(PG_SCHEMA)
    monkeypatch.setenv("SHOP_PG_PASSWORD", PASSWORD)
    url = postgres.url(pg_database).replace(PASSWORD, "${env:SHOP_PG_PASSWORD}")
    return url, postgres.connect(pg_database)


def test_postgres_catalog_gives_types_keys_comments_enums_and_unique(
    pg_shop: tuple[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = pg_shop
    root = _project(tmp_path / "proj")
    lines = _infer(capsys, "--url", url, "--table", "public.order_lines", "--project", str(root))
    assert lines["primary_key"] == ["line_no", "order_id"]  # the key's own order, not the table's
    props = _properties(root / "contracts" / "order_lines.yml")
    assert {n: p["physicalType"] for n, p in props.items()} == {
        "order_id": "int64",
        "line_no": "int16",
        "sku": "string",
        "status": "string",
        "quantity": "int32",
        "unit_price": "decimal(12,2)",  # through the domain to its base type
        "weight": "float32",
        "ratio": "decimal(38,10)",  # unconstrained numeric: a noted choice
        "paid": "boolean",
        "token": "uuid",
        "picked_at": "time",
        "shipped_on": "timestamp",
        "receipt": "binary",
    }
    assert (
        props["line_no"]["primaryKeyPosition"] == 1 and props["order_id"]["primaryKeyPosition"] == 2
    )
    assert props["quantity"]["required"] is True and "required" not in props["weight"]
    assert props["status"]["quality"] == [
        {
            "rule": "accepted_values",
            "validValues": ["placed", "paid", "shipped", "cancelled"],
            "severity": "warn",
        }
    ]
    contract = yaml.safe_load((root / "contracts" / "order_lines.yml").read_text())
    assert contract["schema"][0]["quality"] == [{"rule": "unique", "columns": ["order_id", "sku"]}]
    notes = {c["name"]: c["note"] for c in lines["columns"] if c["note"]}
    assert set(notes) == {"ratio"} and "choose decimal" in notes["ratio"]

    customers = _infer(capsys, "--url", url, "--table", "customers", "--project", str(root))
    props = _properties(root / "contracts" / "customers.yml")
    assert props["tags"]["physicalType"] == "list<string>"
    assert props["profile"]["physicalType"] == "string"  # jsonb as its text
    assert props["updated_at"]["physicalType"] == "timestamptz"
    assert props["signup_ip"]["physicalType"] == "string"  # inet: no contract type, noted
    assert props["email"]["description"] == "Login e-mail, lower case."
    assert props["email"]["quality"] == [{"rule": "unique", "severity": "warn"}]
    assert sorted(customers["pii_suggested"]) == ["birth_date", "email", "full_name", "signup_ip"]
    assert all(props[c]["classification"] == "pii" for c in customers["pii_suggested"])
    assert "classification" not in props["tags"]
    text = (root / "contracts" / "customers.yml").read_text()
    assert "People who bought something." in text
    assert re.search(r"classification: pii +# suggested: its name holds 'email'", text)
    assert main(["validate", "--project", str(root)]) == 0


def test_a_drafted_postgres_pipeline_validates_and_runs(
    pg_shop: tuple[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from weirtest.postgres import PASSWORD

    url, con = pg_shop
    with con:
        con.execute(
            "INSERT INTO customers (customer_id, email, full_name, tags, updated_at) VALUES "
            "(1, 'a@example.com', 'Ann', '{a,b}', '2024-05-01T10:00:00Z'), "
            "(2, 'b@example.com', NULL, NULL, '2024-05-01T11:00:00Z')"
        )
    root = _project(tmp_path / "proj")
    done = _infer(
        capsys, "--url", url, "--table", "public.customers", "--pipeline", "--project", str(root)
    )
    assert done["cursor"] == "updated_at"
    pipeline = yaml.safe_load((root / "pipelines" / "customers.yml").read_text())
    assert pipeline["extract"] == {
        "source": "sql",
        "url": url,  # as given: the password stays a ${env:…}
        "table": "public.customers",
        "strategy": "incremental",
        "cursor": "updated_at",
        "lookback": "10 minutes",
    }
    assert PASSWORD not in (root / "pipelines" / "customers.yml").read_text()
    assert main(["validate", "--project", str(root)]) == 0
    capsys.readouterr()
    assert main(["run", "--project", str(root)]) == 0
    assert "extracted 2" in capsys.readouterr().out


def test_password_never_printed_and_never_taken_from_the_command_line(
    postgres: Cluster,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from weirtest.postgres import PASSWORD

    literal = _infer(
        capsys, "--url", postgres.url(), "--table", "x", "--project", str(tmp_path), code=2
    )
    assert "password written on the command line" in literal["error"]
    assert PASSWORD not in json.dumps(literal)

    monkeypatch.setenv("SHOP_DB_URL", postgres.url())  # the whole url, from one variable
    missing = _infer(
        capsys, "--url", "SHOP_DB_URL", "--table", "nope", "--project", str(tmp_path), code=1
    )
    assert "'nope' does not exist" in missing["error"] and PASSWORD not in json.dumps(missing)
    assert missing["hint"] == "the database holds no tables the user can see"

    wrong = postgres.url().replace(PASSWORD, "${env:WRONG_PW}")
    monkeypatch.setenv("WRONG_PW", "not-the-password-123")
    denied = _infer(capsys, "--url", wrong, "--table", "x", "--project", str(tmp_path), code=1)
    assert "authentication failed" in denied["error"] and "not-the-password-123" not in json.dumps(
        denied
    )

    monkeypatch.setenv("PW_SAME_AS_USER", "weir")  # a password that is also the user's name
    same = postgres.url().replace(PASSWORD, "${env:PW_SAME_AS_USER}")
    denied = _infer(capsys, "--url", same, "--table", "x", "--project", str(tmp_path), code=1)
    assert "authentication failed" in denied["error"]  # tried, not refused as written

    unset = _infer(
        capsys, "--url", "NO_SUCH_URL_VAR", "--table", "x", "--project", str(tmp_path), code=2
    )
    assert "NO_SUCH_URL_VAR" in unset["error"]


def test_an_unreachable_server_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from weirtest.postgres import free_port

    url = f"postgresql://weir@127.0.0.1:{free_port()}/shop"
    failed = _infer(capsys, "--url", url, "--table", "orders", "--project", str(tmp_path), code=1)
    assert failed["kind"] == "TransientSourceError" and "127.0.0.1" in failed["hint"]
    assert "Traceback" not in json.dumps(failed)


# ---------------------------------------------------------------- SQLite
SQLITE_SCHEMA = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE,
    "FirstName" VARCHAR(40), phone TEXT, created_at DATETIME NOT NULL, updated_at DATETIME);
CREATE TABLE order_lines (order_id INTEGER NOT NULL, line INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('placed', 'shipped')),
    amount DECIMAL(12,2), paid BOOLEAN, anything, weight REAL, payload BLOB, day DATE,
    PRIMARY KEY (order_id, line), UNIQUE (amount, paid));
"""


@pytest.fixture
def sqlite_project(tmp_path: Path) -> Path:
    root = _project(tmp_path / "proj")
    with sqlite3.connect(root / "shop.db") as con:
        con.executescript(SQLITE_SCHEMA)
        con.execute(
            "INSERT INTO customers VALUES (1, 'a@b.example', 'Ann', NULL, '2024-01-01 10:00:00', "
            "'2024-01-02 10:00:00')"
        )
        con.execute(
            "INSERT INTO order_lines VALUES (1, 1, 'placed', 19.99, 1, 'x', 1.5, NULL, "
            "'2024-01-02'), (1, 2, 'shipped', 5, 0, 3, NULL, x'00ff', NULL)"
        )
    return root


def test_sqlite_catalog_drafts_contracts_that_validate_and_run(
    sqlite_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = sqlite_project
    url = "sqlite:///shop.db"
    lines = _infer(
        capsys, "--url", url, "--table", "order_lines", "--pipeline", "--project", str(root)
    )
    assert lines["primary_key"] == ["order_id", "line"] and lines["cursor"] is None
    props = _properties(root / "contracts" / "order_lines.yml")
    assert {n: p["physicalType"] for n, p in props.items()} == {
        "order_id": "int64",
        "line": "int64",
        "status": "string",
        "amount": "decimal(12,2)",
        "paid": "boolean",
        "anything": "string",
        "weight": "float64",
        "payload": "binary",
        "day": "date",
    }
    assert props["status"]["quality"][0]["validValues"] == ["placed", "shipped"]  # the CHECK
    contract = yaml.safe_load((root / "contracts" / "order_lines.yml").read_text())
    assert contract["schema"][0]["quality"] == [{"rule": "unique", "columns": ["amount", "paid"]}]

    customers = _infer(
        capsys, "--url", url, "--table", "customers", "--pipeline", "--project", str(root)
    )
    assert customers["cursor"] == "updated_at"
    assert sorted(customers["pii_suggested"]) == ["email", "first_name", "phone"]
    props = _properties(root / "contracts" / "customers.yml")
    assert (
        props["first_name"]["physicalName"] == "FirstName"
    )  # a valid silver name, the source's kept
    assert main(["validate", "--project", str(root)]) == 0
    capsys.readouterr()
    assert main(["run", "--project", str(root)]) == 0
    out = capsys.readouterr().out
    assert "extracted 2 · loaded 2" in out and "extracted 1 · loaded 1" in out


def test_refuses_to_overwrite_unless_forced(
    sqlite_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--url", "sqlite:///shop.db", "--table", "customers", "--project", str(sqlite_project)]
    _infer(capsys, *args)
    path = sqlite_project / "contracts" / "customers.yml"
    path.write_text("# edited by hand\n" + path.read_text())
    refused = _infer(capsys, *args, code=2)
    assert refused["error"].endswith("customers.yml exists") and "--force" in refused["hint"]
    assert path.read_text().startswith("# edited by hand")
    again = _infer(capsys, *args, "--pipeline", "--output", "contracts/other.yml")
    assert again["contract"].endswith("contracts/other.yml")
    refused = _infer(capsys, *args, "--pipeline", "--output", "contracts/third.yml", code=2)
    assert "pipelines/customers.yml exists" in refused["error"]
    assert not (sqlite_project / "contracts" / "third.yml").exists()
    _infer(capsys, *args, "--force")
    assert not path.read_text().startswith("# edited by hand")


def test_a_missing_table_suggests_the_closest_one(
    sqlite_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--url", "sqlite:///shop.db", "--project", str(sqlite_project)]
    missing = _infer(capsys, *args, "--table", "custmers", code=1)
    assert missing["error"] == "table 'custmers' does not exist (or the user cannot see it)"
    assert missing["hint"] == "did you mean 'customers'?" and missing["where"] == "sqlite shop.db"
    nothing = _infer(capsys, *args, "--table", "zzz", code=1)
    assert nothing["hint"] == "expected one of: customers, order_lines"
    bad = _infer(
        capsys,
        "--url",
        "sqlite:///nope.db",
        "--table",
        "t",
        "--project",
        str(sqlite_project),
        code=1,
    )
    assert "does not exist" in bad["error"] and not (sqlite_project / "nope.db").exists()
    name = _infer(capsys, *args, "--table", "customers", "--name", "Bad Name", code=2)
    assert "--name" in name["error"]


def test_text_output_lists_the_suggestions(
    sqlite_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "infer",
        "--url",
        "sqlite:///shop.db",
        "--table",
        "order_lines",
        "--project",
        str(sqlite_project),
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "primary key order_id, line" in out
    assert "check: anything: no declared type" in out
    assert main([*argv[:4], "customers", *argv[5:]]) == 0
    assert "suggestion: email classified pii" in capsys.readouterr().out


# ---------------------------------------------------------------- the mapping itself
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("email", True),
        ("customer_email", True),
        ("phone_number", True),
        ("first_name", True),
        ("name", True),
        ("customer_name", True),
        ("billing_address", True),
        ("ip", True),
        ("date_of_birth", True),
        ("LastName", True),
        ("product_name", False),
        ("ship_date", False),
        ("zipped", False),
        ("description", False),
        ("tip", False),
        ("order_id", False),
    ],
)
def test_pii_suggestions_by_name(name: str, expected: bool) -> None:
    assert (pii_reason(name) is not None) is expected


def test_sqlite_declared_types() -> None:
    assert sqlite_type("BIGINT") == ("int64", None)
    assert sqlite_type("numeric(10, 3)") == ("decimal(10,3)", None)
    assert sqlite_type("TIMESTAMP WITH TIME ZONE")[0] == "timestamptz"
    assert sqlite_type("NVARCHAR(20)")[0] == "string"
    assert sqlite_type("DOUBLE PRECISION")[0] == "float64"
    assert sqlite_type("MONEY")[1] is not None  # numeric affinity: a choice to check


def test_the_postgres_mapping_is_the_documented_table() -> None:
    """docs/sources.md's PostgreSQL type table and POSTGRES_TYPES are one fact in two places."""
    text = (ROOT / "docs" / "sources.md").read_text()
    table = text.split("| PostgreSQL | contract type | notes |", 1)[1].split("\n\n", 1)[0]
    documented: dict[str, str] = {}
    for row in table.strip().splitlines()[1:]:
        sources, targets = (re.findall(r"`([^`]+)`", cell) for cell in row.split("|")[1:3])
        sources = [s for s in sources if re.fullmatch(r"[a-z0-9]+", s)]  # not text[], …
        targets = targets if len(targets) == len(sources) else targets[:1] * len(sources)
        documented |= dict(zip(sources, targets, strict=True))
    mapped = {k: v for k, v in POSTGRES_TYPES.items() if k not in ("name", "citext", "bpchar")}
    assert documented == {**mapped, "char": "string"} | {"numeric": "decimal(p,s)"}


def test_no_run_time_module_imports_the_catalog() -> None:
    """Drafting is a command's business: nothing a run imports reaches the catalog reader."""
    importers = []
    for path in (ROOT / "src" / "weir").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            if any(m in ("weir.sources.sql.catalog", "weir.spec.draft") for m in modules):
                importers.append(path.relative_to(ROOT / "src").as_posix())
    assert sorted(set(importers)) == ["weir/commands/infer.py", "weir/sources/sql/catalog.py"]
