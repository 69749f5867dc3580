"""Lineage from configuration alone (real sqlglot over real project files), `weir lineage`,
OpenLineage events from real pipeline runs (to a file and to a real local HTTP server), and
the naming conventions `weir validate` reports."""

from __future__ import annotations

import copy
import json
import re
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from weir.cli import main
from weir.observe.record import RunRecord
from weir.run.model import ModelRun
from weir.run.pipeline import PipelineRun
from weir.sources import memory
from weir.spec import load_project
from weir.transform.lineage import Lineage, project_lineage
from weirtest.projects import ORDERS_CONTRACT, orders_pipeline, write_models, write_project

CUSTOMERS_CONTRACT: dict[str, Any] = {
    "apiVersion": "v3.0.2",
    "kind": "DataContract",
    "id": "customers",
    "version": "1.0.0",
    "schema": [
        {
            "name": "customers",
            "properties": [
                {"name": "customer_id", "physicalType": "int64", "primaryKey": True},
                {"name": "name", "physicalType": "string"},
                {"name": "tier", "physicalType": "string"},
            ],
        }
    ],
}


def _orders_contract() -> dict[str, Any]:
    contract = copy.deepcopy(ORDERS_CONTRACT)
    contract["schema"][0]["properties"].insert(
        1, {"name": "customer_id", "physicalName": "cust", "physicalType": "int64"}
    )
    return contract


MODELS = {
    # copy, rename, PII column (hashed in silver), a CTE chain ending in SELECT *
    "stg_shop__orders": """
        WITH source AS (SELECT * FROM silver.orders),
        renamed AS (
            SELECT order_id, customer_id, amount AS order_amount, email, updated_at
            FROM source
        ),
        final AS (SELECT * FROM renamed)
        SELECT * FROM final
    """,
    "stg_shop__customers": """
        SELECT customer_id, name AS customer_name, upper(tier) AS tier FROM silver.customers
    """,
    # SELECT * over a join of two gold models
    "int_orders_joined": """
        SELECT *
        FROM gold.stg_shop__orders o
        JOIN gold.stg_shop__customers c USING (customer_id)
    """,
    # aggregates and a CASE over the two-level gold chain
    "fct_customer_orders": """
        SELECT
            customer_id,
            customer_name AS buyer,
            sum(order_amount) AS total_amount,
            count(*) AS order_count,
            CASE WHEN tier = 'GOLD' THEN 'vip' ELSE 'regular' END AS segment
        FROM int_orders_joined
        GROUP BY customer_id, customer_name, tier
    """,
}


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    root = write_project(
        tmp_path / "shop",
        contracts={"orders": _orders_contract(), "customers": CUSTOMERS_CONTRACT},
        pipelines={
            "orders": orders_pipeline(),
            "customers": {
                "name": "customers",
                "owner": "data-eng",
                "contract": "customers",
                "extract": {"source": "memory", "dataset": "customers"},
            },
        },
    )
    return write_models(root, MODELS)


@pytest.fixture
def lineage(shop: Path) -> Lineage:
    return project_lineage(load_project(shop))


def _sources(lineage: Lineage, table: str, column: str) -> set[tuple[str, str]]:
    return {(s.table, s.column) for s in lineage.column(table, column).sources}


# ---------------------------------------------------------------- column lineage
def test_copied_and_renamed_columns(lineage: Lineage) -> None:
    copied = lineage.column("gold.stg_shop__orders", "order_id")
    assert copied.kind == "copy" and copied.renamed_from is None
    assert _sources(lineage, "gold.stg_shop__orders", "order_id") == {("silver.orders", "order_id")}
    renamed = lineage.column("gold.stg_shop__orders", "order_amount")
    assert renamed.kind == "copy" and renamed.renamed_from == "amount"
    buyer = lineage.column("gold.fct_customer_orders", "buyer")
    assert buyer.kind == "copy" and buyer.renamed_from == "customer_name"


def test_aggregates_and_case(lineage: Lineage) -> None:
    total = lineage.column("gold.fct_customer_orders", "total_amount")
    assert total.kind == "aggregate"
    assert total.expression is not None and "SUM" in total.expression.upper()
    assert _sources(lineage, "gold.fct_customer_orders", "total_amount") == {
        ("gold.int_orders_joined", "order_amount")
    }
    count = lineage.column("gold.fct_customer_orders", "order_count")
    assert count.kind == "aggregate" and count.sources == ()
    segment = lineage.column("gold.fct_customer_orders", "segment")
    assert segment.kind == "transform" and "CASE" in (segment.expression or "").upper()
    assert _sources(lineage, "gold.fct_customer_orders", "segment") == {
        ("gold.int_orders_joined", "tier")
    }
    tier = lineage.column("gold.stg_shop__customers", "tier")
    assert tier.kind == "transform" and "UPPER" in (tier.expression or "").upper()


def test_select_star_over_a_join_expands_to_both_sides(lineage: Lineage) -> None:
    model = lineage.models["gold.int_orders_joined"]
    assert [c.name for c in model.schema] == [  # DuckDB's order: the USING key stays in place
        "order_id",
        "customer_id",
        "order_amount",
        "email",
        "updated_at",
        "customer_name",
        "tier",
    ]
    assert dict((c.name, c.type) for c in model.schema)["order_amount"] == "DOUBLE"
    key = lineage.column("gold.int_orders_joined", "customer_id")
    assert key.kind == "copy"  # the USING key is one column from both sides
    assert _sources(lineage, "gold.int_orders_joined", "customer_id") == {
        ("gold.stg_shop__orders", "customer_id"),
        ("gold.stg_shop__customers", "customer_id"),
    }
    assert _sources(lineage, "gold.int_orders_joined", "customer_name") == {
        ("gold.stg_shop__customers", "customer_name")
    }


def test_cte_chain_and_star_over_silver(lineage: Lineage) -> None:
    model = lineage.models["gold.stg_shop__orders"]
    assert model.error is None
    assert [c.column for c in model.columns] == [
        "order_id",
        "customer_id",
        "order_amount",
        "email",
        "updated_at",
    ]
    assert all(c.kind == "copy" for c in model.columns)
    assert all(s.table == "silver.orders" for c in model.columns for s in c.sources)


def test_two_level_chain_down_to_the_source_column(lineage: Lineage) -> None:
    chain = lineage.chain("gold.fct_customer_orders", "total_amount")
    steps = []
    node = chain
    while True:
        steps.append((node.id, node.kind))
        if not node.upstream:
            break
        assert len(node.upstream) == 1
        node = node.upstream[0]
    assert steps == [
        ("gold.fct_customer_orders.total_amount", "aggregate"),
        ("gold.int_orders_joined.order_amount", "copy"),
        ("gold.stg_shop__orders.order_amount", "copy"),
        ("silver.orders.amount", "copy"),
        ("source.orders.amount", "source"),
    ]
    # the contract renames source column `cust` to `customer_id`
    key = lineage.chain("gold.stg_shop__orders", "customer_id").upstream[0]
    assert key.id == "silver.orders.customer_id"
    assert "cust → customer_id" in (key.note or "")
    assert [u.id for u in key.upstream] == ["source.orders.cust"]
    # PII is hashed in silver: a transformation, not a copy
    email = lineage.chain("gold.stg_shop__orders", "email").upstream[0]
    assert email.kind == "transform" and "PII" in (email.note or "")


def test_table_graph_from_source_to_gold(lineage: Lineage) -> None:
    graph = lineage.graph
    assert graph.upstream("gold.fct_customer_orders") == [
        "gold.int_orders_joined",
        "gold.stg_shop__orders",
        "gold.stg_shop__customers",
        "silver.orders",
        "silver.customers",
        "bronze.orders",
        "bronze.customers",
        "source.orders",
        "source.customers",
    ]
    assert graph.downstream("source.customers")[-1] == "gold.fct_customer_orders"
    assert "quarantine.orders" in graph.children("bronze.orders")


def test_odd_sql_is_unknown_with_a_reason_not_a_crash(shop: Path) -> None:
    write_models(
        shop,
        {
            "mrt_odd": """
                SELECT order_id, no_such_column AS ghost, unnest(dq_flags) AS flag
                FROM silver.orders
            """,
        },
    )
    lineage = project_lineage(load_project(shop))
    ghost = lineage.column("gold.mrt_odd", "ghost")
    assert ghost.kind == "unknown" and "no_such_column" in (ghost.reason or "")
    assert lineage.column("gold.mrt_odd", "order_id").kind == "copy"
    assert _sources(lineage, "gold.mrt_odd", "flag") == {("silver.orders", "dq_flags")}


def test_snapshot_columns_and_valid_at_join(shop: Path) -> None:
    write_models(
        shop,
        {
            "snp_customers": """
                /* weir
                materialized: snapshot
                unique_key: [customer_id]
                */
                SELECT customer_id, tier FROM gold.stg_shop__customers
            """,
            "fct_orders_by_tier": """
                SELECT o.order_id, s.tier, s.surrogate_key AS customer_version
                FROM gold.stg_shop__orders o
                JOIN gold.snp_customers s
                  ON s.customer_id = o.customer_id AND valid_at(s, o.updated_at)
            """,
        },
    )
    lineage = project_lineage(load_project(shop))
    snapshot = lineage.models["gold.snp_customers"]
    # as written (tests/test_layout.py compares with a real table)
    assert [c.name for c in snapshot.schema] == [
        "customer_id",
        "tier",
        "valid_from",
        "_row_hash",
        "surrogate_key",
        "valid_to",
        "is_current",
    ]
    version = lineage.column("gold.fct_orders_by_tier", "customer_version")
    assert version.kind == "copy"
    assert _sources(lineage, "gold.fct_orders_by_tier", "customer_version") == {
        ("gold.snp_customers", "surrogate_key")
    }
    chain = lineage.chain("gold.fct_orders_by_tier", "customer_version").upstream[0]
    assert chain.kind == "generated"
    assert [u.id for u in chain.upstream] == ["gold.stg_shop__customers.customer_id"]
    assert chain.upstream[0].upstream[0].id == "silver.customers.customer_id"


# ---------------------------------------------------------------- weir lineage
def _cli(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> str:
    assert main(list(argv)) == code
    return capsys.readouterr().out


def test_cli_text_tree(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _cli(capsys, "lineage", "--project", str(shop))
    lines = text.splitlines()
    assert lines[0] == "source.customers  (memory)"
    assert "└── bronze.customers" in lines[1]
    assert any(line.strip().endswith("gold.fct_customer_orders  (table)") for line in lines)
    table = _cli(capsys, "lineage", "gold.int_orders_joined", "--project", str(shop))
    upstream, downstream = table.split("downstream:")
    assert "gold.stg_shop__orders" in upstream and "source.orders" in upstream
    assert "gold.fct_customer_orders" in downstream.split("columns:")[0]
    assert re.search(r"^  order_amount +copy +← gold.stg_shop__orders.order_amount$", table, re.M)


def test_cli_column_chain_text_mermaid_json(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = "gold.fct_customer_orders.total_amount"
    text = _cli(capsys, "lineage", target, "--project", str(shop))
    assert text.splitlines()[0].startswith(f"{target}  [aggregate — SUM(")
    assert "source.orders.amount" in text.splitlines()[-1]

    mermaid = _cli(capsys, "lineage", target, "--format", "mermaid", "--project", str(shop))
    lines = mermaid.strip().splitlines()
    assert lines[0] == "flowchart LR"
    labels = {line.split("[")[0].strip(): line.split('"')[1] for line in lines if '["' in line}
    by_label = {v: k for k, v in labels.items()}
    src, out = by_label["silver.orders.amount"], by_label[target]
    assert f"{src} -->|copy| {by_label['gold.stg_shop__orders.order_amount']}" in mermaid
    assert f"-->|aggregate| {out}" in mermaid

    payload = json.loads(
        _cli(capsys, "lineage", target, "--format", "json", "--project", str(shop))
    )
    assert payload["column"] == target
    assert payload["lineage"]["kind"] == "aggregate"
    assert payload["lineage"]["upstream"][0]["table"] == "gold.int_orders_joined"
    same = json.loads(_cli(capsys, "lineage", target, "--json", "--project", str(shop)))
    assert same == payload


def test_cli_graph_mermaid_and_json(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    mermaid = _cli(capsys, "lineage", "--format", "mermaid", "--project", str(shop))
    assert mermaid.startswith("flowchart LR\n") and mermaid.count("-->") == 11
    graph = json.loads(_cli(capsys, "lineage", "--format", "json", "--project", str(shop)))
    assert {"from": "silver.orders", "to": "gold.stg_shop__orders"} in graph["edges"]
    kinds = {n["id"]: n["kind"] for n in graph["nodes"]}
    assert kinds["quarantine.customers"] == "quarantine" and kinds["source.orders"] == "source"
    table = json.loads(
        _cli(capsys, "lineage", "stg_shop__orders", "--format", "json", "--project", str(shop))
    )
    assert table["table"] == "gold.stg_shop__orders"
    assert table["downstream"] == ["gold.int_orders_joined", "gold.fct_customer_orders"]
    assert table["columns"][2]["sources"] == [
        {"table": "silver.orders", "column": "amount", "kind": "copy"}
    ]


def test_cli_unknown_column_and_table(shop: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lineage", "gold.fct_customer_orders.total_amout", "--project", str(shop)]) == 2
    err = capsys.readouterr().err
    assert "has no column 'total_amout'" in err and "did you mean 'total_amount'?" in err
    out = _cli(
        capsys, "lineage", "gold.fct_custmer_orders", "--json", "--project", str(shop), code=2
    )
    error = json.loads(out)
    assert error["kind"] == "UsageError"
    assert error["hint"] == "did you mean 'gold.fct_customer_orders'?"


@pytest.mark.slow
def test_dbt_nodes_join_the_table_graph(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("weir.run.dbt")
    dbt_project = Path(__file__).parent / "dbt_project"
    if not dbt_project.is_dir():
        pytest.skip("tests/dbt_project is not there")
    root = write_project(tmp_path / "dbt_shop")
    step = {"name": "shop", "kind": "dbt", "owner": "analytics", "dbt": {}}
    (root / "pipelines/shop.yml").write_text(yaml.safe_dump(step))
    shutil.copytree(dbt_project, root / "dbt")
    graph = json.loads(_cli(capsys, "lineage", "--format", "json", "--project", str(root)))
    assert graph["notes"] == []
    kinds = {n["id"]: n["kind"] for n in graph["nodes"]}
    sources = [e["to"] for e in graph["edges"] if e["from"] == "silver.orders"]
    assert sources and all(kinds[s] == "dbt" and s.startswith("dbt:source.") for s in sources)
    assert not any(n["label"].startswith("test ") for n in graph["nodes"])
    text = _cli(capsys, "lineage", "silver.orders", "--project", str(root))
    assert "dbt:model." in text.split("downstream:")[1]


# ---------------------------------------------------------------- OpenLineage
def _orders_batch() -> pa.Table:
    return pa.table(
        {
            "id": pa.array([1, 2], pa.int64()),
            "cust": pa.array([10, 11], pa.int64()),
            "email": ["a@example.com", "b@example.com"],
            "amount": pa.array([5.0, 2000.0], pa.float64()),
            "updated_at": pa.array([1, 2], pa.timestamp("us")),
        }
    )


def _run_orders(root: Path) -> RunRecord:
    memory.register("orders")
    memory.append("orders", _orders_batch())
    project = load_project(root)
    return PipelineRun(project, project.pipeline("orders")).execute()


def _ol_project(tmp_path: Path, openlineage: str) -> Path:
    return write_project(
        tmp_path / "ol",
        contracts={"orders": _orders_contract()},
        project=f"name: shop\nopenlineage:\n{openlineage}",
    )


def test_openlineage_file_events_after_a_real_run(tmp_path: Path) -> None:
    root = _ol_project(tmp_path, "  file: .weir/lineage.jsonl\n")
    record = _run_orders(root)
    assert record.status == "success", record.error_message
    events = [json.loads(line) for line in (root / ".weir/lineage.jsonl").read_text().splitlines()]
    assert [e["eventType"] for e in events] == ["START", "COMPLETE"]
    start, complete = events
    for event in events:
        assert {"eventType", "eventTime", "run", "job", "producer", "schemaURL"} <= set(event)
        assert event["schemaURL"].endswith("OpenLineage.json#/$defs/RunEvent")
        assert event["job"] == {"namespace": "shop", "name": "orders", "facets": {}}
        uuid.UUID(event["run"]["runId"])
    assert start["run"]["runId"] == complete["run"]["runId"]
    assert start["eventTime"] <= complete["eventTime"]
    assert [d["name"] for d in complete["inputs"]] == ["source.orders"]
    outputs = {d["name"]: d for d in complete["outputs"]}
    assert set(outputs) == {"bronze.orders", "silver.orders", "quarantine.orders"}
    silver = outputs["silver.orders"]
    assert silver["namespace"] == (root / "lake").resolve().as_uri()
    fields = {f["name"]: f["type"] for f in silver["facets"]["schema"]["fields"]}
    assert fields["order_id"] == "BIGINT" and fields["dq_flags"] == "VARCHAR[]"
    lineage = silver["facets"]["columnLineage"]["fields"]
    order_id = lineage["order_id"]["inputFields"][0]
    assert (order_id["name"], order_id["field"]) == ("source.orders", "id")
    assert order_id["transformations"][0]["subtype"] == "IDENTITY"
    assert lineage["email"]["inputFields"][0]["transformations"][0]["masking"] is True
    assertions = {
        a["assertion"]: a for a in silver["facets"]["dataQualityAssertions"]["assertions"]
    }
    assert assertions["amount.range"] == {
        "assertion": "amount.range",
        "success": False,
        "column": "amount",
    }
    assert assertions["order_id.required"]["success"] is True
    assert "dataQualityAssertions" not in outputs["bronze.orders"]["facets"]


def test_openlineage_events_of_a_model_run_carry_its_column_lineage(tmp_path: Path) -> None:
    root = _ol_project(tmp_path, "  file: .weir/lineage.jsonl\n")
    write_models(
        root,
        {
            "mrt_orders_by_customer": """
                SELECT customer_id AS customer, sum(amount) AS total_amount
                FROM silver.orders GROUP BY customer_id
            """
        },
    )
    assert _run_orders(root).status == "success"
    project = load_project(root)
    record = ModelRun(project, project.models["mrt_orders_by_customer"]).execute()
    assert record.status == "success", record.error_message
    events = [json.loads(line) for line in (root / ".weir/lineage.jsonl").read_text().splitlines()]
    model_events = [e for e in events if e["job"]["name"] == "mrt_orders_by_customer"]
    assert [e["eventType"] for e in model_events] == ["START", "COMPLETE"]
    complete = model_events[1]
    assert [d["name"] for d in complete["inputs"]] == ["silver.orders"]
    [output] = complete["outputs"]
    assert output["name"] == "gold.mrt_orders_by_customer"
    fields = output["facets"]["columnLineage"]["fields"]
    total = fields["total_amount"]["inputFields"][0]
    assert (total["name"], total["field"]) == ("silver.orders", "amount")
    assert fields["customer"]["inputFields"][0]["field"] == "customer_id"


def test_openlineage_fail_event_names_the_error(tmp_path: Path) -> None:
    pipeline = orders_pipeline(
        extract={"source": "memory", "dataset": "orders", "fail_after_batches": 0},
        error_handling={"max_retries": 0, "retry_delay_seconds": 0},
    )
    root = write_project(
        tmp_path / "ol",
        contracts={"orders": _orders_contract()},
        pipelines={"orders": pipeline},
        project="name: shop\nopenlineage: {file: events.jsonl}\n",
    )
    record = _run_orders(root)
    assert record.status == "failed"
    events = [json.loads(line) for line in (root / "events.jsonl").read_text().splitlines()]
    assert [e["eventType"] for e in events] == ["START", "FAIL"]
    assert "failed on purpose" in events[1]["run"]["facets"]["errorMessage"]["message"]


class _Collector(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], dict[str, Any]]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        received = self.server.received  # type: ignore[attr-defined]
        received.append((dict(self.headers), json.loads(body)))
        self.send_response(201)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return None


@pytest.fixture
def collector() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_openlineage_http_posts_events_with_a_bearer_token(
    tmp_path: Path, collector: ThreadingHTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{collector.server_port}/api/v1/lineage"
    root = _ol_project(tmp_path, f"  url: {url}\n  namespace: analytics\n  api_key_env: OL_TOKEN\n")
    token = "tok-3b1f9c0e77d2a5"
    monkeypatch.setenv("OL_TOKEN", token)
    record = _run_orders(root)
    assert record.status == "success" and record.warnings == []
    received = collector.received  # type: ignore[attr-defined]
    assert [body["eventType"] for _, body in received] == ["START", "COMPLETE"]
    assert all(headers["Authorization"] == f"Bearer {token}" for headers, _ in received)
    assert received[1][1]["job"]["namespace"] == "analytics"
    for path in (root / ".weir").rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes()


def test_openlineage_endpoint_down_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    root = _ol_project(tmp_path, f"  url: http://user:pw-secret@127.0.0.1:{port}/lineage?key=k1\n")
    record = _run_orders(root)
    assert record.status == "success", record.error_message
    assert len(record.warnings) == 2  # START and COMPLETE
    assert all("OpenLineage" in w and f"127.0.0.1:{port}/lineage" in w for w in record.warnings)
    assert not any("pw-secret" in w or "key=k1" in w for w in record.warnings)
    runs = (root / ".weir/runs.jsonl").read_text()
    assert "ConnectError" in runs and "pw-secret" not in runs


# ---------------------------------------------------------------- conventions
def test_validate_reports_naming_conventions_by_rule(
    shop: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_models(
        shop,
        {
            "orders_report": "SELECT order_id FROM gold.stg_shop__orders",
            "fct_raw": "SELECT order_id FROM silver.orders",
            "int_raw": "SELECT customer_id FROM silver.customers",
            "stg_shop__both": """
                SELECT o.order_id FROM gold.stg_shop__orders o
                JOIN gold.stg_shop__customers c USING (customer_id)
            """,
            "customer_history": """
                /* weir
                materialized: snapshot
                unique_key: [customer_id]
                */
                SELECT customer_id, segment FROM gold.fct_customer_orders
            """,
        },
    )
    payload = json.loads(_cli(capsys, "validate", "--json", "--project", str(shop)))
    assert payload["ok"] is True and len(payload["models"]) == 9
    found = {(w["model"], w["rule"]) for w in payload["warnings"]}
    assert found == {
        ("orders_report", "naming.prefix"),
        ("customer_history", "naming.prefix"),
        ("customer_history", "naming.snapshot-prefix"),
        ("customer_history", "layers.snapshot-source"),
        ("fct_raw", "layers.mart-reads-raw"),
        ("int_raw", "layers.intermediate-reads-raw"),
        ("stg_shop__both", "layers.staging-reads-staging"),
    }
    for warning in payload["warnings"]:
        assert warning["path"].endswith(f"models/{warning['model']}.sql")
        assert warning["message"] and warning["hint"]
    text = _cli(capsys, "validate", "--project", str(shop))
    assert "9 models, 0 dbt steps, 7 convention warnings" in text.splitlines()[0]
    assert "warning [layers.mart-reads-raw]" in text

    # a team's own conventions: a rule off, its own prefixes for a layer
    with (shop / "weir.yml").open("a") as config:
        config.write(
            "conventions:\n"
            "  disable: [layers.intermediate-reads-raw]\n"
            "  prefixes: {mart: [fct_, dim_, mrt_, orders_], snapshot: [snp_, customer_]}\n"
        )
    payload = json.loads(_cli(capsys, "validate", "--json", "--project", str(shop)))
    assert {(w["model"], w["rule"]) for w in payload["warnings"]} == {
        # named as a snapshot now, but it still reads a mart
        ("customer_history", "layers.snapshot-source"),
        ("fct_raw", "layers.mart-reads-raw"),
        ("stg_shop__both", "layers.staging-reads-staging"),
    }  # orders_report is a mart by its prefix; int_raw's rule is off
