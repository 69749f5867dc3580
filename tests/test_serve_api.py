"""The HTTP API of ``weir serve`` over real HTTP on 127.0.0.1 (uvicorn in a thread): the
endpoints against the state store, the bearer token, 4xx for bad requests with a message and
no traceback, time-outs, OpenAPI, and no secret or raw PII in any response."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from prometheus_client.parser import text_string_to_metric_families

from weir.run import api as run_api
from weir.serve import process
from weir.serve.api import app
from weir.serve.clock import FakeClock
from weir.serve.scheduler import Scheduler
from weir.sources import memory
from weir.spec import load_project
from weirtest.projects import ORDERS_CONTRACT, SALT, orders_pipeline, write_project

TOKEN = "t0ken-for-the-api-tests-2f9d"
SECRET = "sk_live_api5ecr3t77"
EMAIL = "very.private.person@example.com"
ENDPOINTS = [
    "/api/runs",
    "/api/runs?node=orders",
    "/api/nodes",
    "/api/health",
    "/api/alerts",
    "/metrics",
    "/api/openapi.json",
]


@dataclass
class Api:
    root: Path
    base: str
    server: Any

    def get(self, path: str, token: str | None = TOKEN) -> tuple[int, str]:
        request = urllib.request.Request(self.base + path)
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def json(self, path: str) -> Any:
        status, body = self.get(path)
        assert status == 200, body
        return json.loads(body)


def history_project(root: Path) -> Path:
    """``orders`` (memory; a PII column breaking a warn rule, so it is sampled), scheduled,
    and ``leaky``, whose dataset name is a secret and is not registered: its run fails with
    a message that would name it."""
    props = [dict(p) for p in ORDERS_CONTRACT["schema"][0]["properties"]]
    props[1]["quality"] = [{"rule": "regex", "pattern": "^[a-z]+@corp\\.com$", "severity": "warn"}]
    contract = {
        **ORDERS_CONTRACT,
        "schema": [{**ORDERS_CONTRACT["schema"][0], "properties": props}],
    }
    leaky = orders_pipeline(name="leaky", extract={"source": "memory", "dataset": "${env:LEAKY}"})
    write_project(
        root,
        contracts={"orders": contract},
        pipelines={"orders": orders_pipeline(schedule="*/10 * * * *"), "leaky": leaky},
    )
    memory.register("orders")
    memory.append(
        "orders",
        pa.table(
            {
                "id": pa.array([1, 2], pa.int64()),
                "email": [EMAIL, EMAIL],
                "amount": pa.array([1.0, 2.0]),
                "updated_at": [dt.datetime(2026, 6, 1)] * 2,
            }
        ),
    )
    return root


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    with pytest.MonkeyPatch.context() as env:
        env.setenv("WEIR_PII_SALT", SALT)
        env.setenv("LEAKY", SECRET)
        root = history_project(tmp_path_factory.mktemp("api") / "p")
        project = load_project(root)
        records = {r.pipeline_name: r for r in run_api.run(project)}
        assert records["orders"].status == "success" and records["leaky"].status == "failed"
        scheduler = Scheduler(project, FakeClock(dt.datetime(2026, 6, 1, 10, 3, tzinfo=dt.UTC)))
        server = process._api(app(project, scheduler, TOKEN), "127.0.0.1", 0)
        try:
            yield Api(root, f"http://127.0.0.1:{process.bound_port(server)}", server)
        finally:
            server.should_exit = True


def test_runs_newest_first_filtered_and_one_by_id(served: Api) -> None:
    runs = served.json("/api/runs")["runs"]
    assert sorted((r["pipeline_name"], r["status"]) for r in runs) == [
        ("leaky", "failed"),
        ("orders", "success"),
    ]
    orders = served.json("/api/runs?node=orders")["runs"]
    assert [r["pipeline_name"] for r in orders] == ["orders"] and orders[0]["rows_loaded"] == 2
    failed = served.json("/api/runs?status=failed")["runs"]
    assert [r["pipeline_name"] for r in failed] == ["leaky"]
    assert served.json("/api/runs?limit=1")["runs"] == runs[:1]

    one = served.json(f"/api/runs/{orders[0]['run_id']}")
    assert one["records"] == orders
    status, body = served.get("/api/runs/nope")
    assert status == 404 and json.loads(body) == {"error": "no run 'nope' in the state store"}


def test_nodes_show_the_schedule_and_the_last_run(served: Api) -> None:
    nodes = {n["name"]: n for n in served.json("/api/nodes")["nodes"]}
    assert nodes["orders"]["schedule"] == "*/10 * * * *"
    assert nodes["orders"]["next_fire"] == "2026-06-01T10:10:00+00:00"
    assert nodes["orders"]["status"] == "success" and nodes["orders"]["running"] is False
    assert nodes["leaky"]["schedule"] is None and nodes["leaky"]["status"] == "failed"


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/api/runs?limit=0", 400, "bad request: limit: Input should be greater than or equal"),
        ("/api/runs?limit=many", 400, "bad request: limit: Input should be a valid integer"),
        ("/api/runs?status=great", 400, "bad request: status: String should match pattern"),
        (
            "/api/runs?node=ordres",
            404,
            "no node 'ordres' in project 'test'; did you mean 'orders'?",
        ),
        ("/api/health?node=nobody", 404, "no node 'nobody'"),
        ("/api/nowhere", 404, "Not Found"),
    ],
)
def test_bad_requests_get_4xx_with_a_message(
    served: Api, path: str, status: int, message: str
) -> None:
    got, body = served.get(path)
    assert got == status, body
    assert json.loads(body)["error"].startswith(message), body
    assert "Traceback" not in body


def test_every_request_needs_the_token(served: Api) -> None:
    for path in ENDPOINTS:
        assert served.get(path, token=None)[0] == 401, path
        assert served.get(path, token=TOKEN[:-1] + "x")[0] == 401, path
        assert served.get(path)[0] == 200, path
    status, body = served.get("/api/runs", token=None)
    assert status == 401 and "bearer token" in json.loads(body)["error"] and TOKEN not in body


def test_openapi_describes_every_endpoint(served: Api) -> None:
    paths = served.json("/api/openapi.json")["paths"]
    assert set(paths) == {
        "/api/runs",
        "/api/runs/{run_id}",
        "/api/nodes",
        "/api/health",
        "/api/alerts",
        "/metrics",
    }


def test_metrics_parse_as_prometheus_text_with_the_history(served: Api) -> None:
    status, body = served.get("/metrics")
    assert status == 200
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }

    def value(name: str, **labels: str) -> float:
        found = [v for (n, ls), v in samples.items() if n == name and labels.items() <= set(ls)]
        assert len(found) == 1, (name, labels, found)
        return found[0]

    assert value("weir_runs_total", pipeline="orders", status="success") == 1
    assert value("weir_runs_total", pipeline="leaky", status="failed") == 1
    assert value("weir_rows_loaded_total", pipeline="orders") == 2
    assert value("weir_run_duration_seconds_count", pipeline="orders") == 1


def test_no_secret_salt_or_raw_pii_in_any_response(served: Api) -> None:
    bodies = [served.get(path)[1] for path in ENDPOINTS]
    runs = served.json("/api/runs")["runs"]
    bodies += [served.get(f"/api/runs/{r['run_id']}")[1] for r in runs]
    text = "\n".join(bodies)
    assert "is not registered" in text and "***" in text  # the failure is there, scrubbed
    assert SECRET not in text and EMAIL not in text and SALT not in text and TOKEN not in text


def test_a_slow_request_is_answered_503(tmp_path: Path) -> None:
    root = write_project(
        tmp_path / "p", project="name: test\nserve: {request_timeout_seconds: 1e-6}\n"
    )
    server = process._api(app(load_project(root), None, None), "127.0.0.1", 0)
    try:
        slow = Api(root, f"http://127.0.0.1:{process.bound_port(server)}", server)
        status, body = slow.get("/api/runs", token=None)
        assert status == 503 and "took longer than" in json.loads(body)["error"]
    finally:
        server.should_exit = True


def test_a_port_in_use_is_a_clean_error(served: Api) -> None:
    from weir.errors import UsageError

    taken = process.bound_port(served.server)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LEAKY", SECRET)
        project = load_project(served.root)
    with pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{taken}"):
        process._api(app(project, None, None), "127.0.0.1", taken)
