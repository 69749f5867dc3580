"""The run API (weir.run.api): what `weir run` does, callable by any program, with typed
events to observers."""

from __future__ import annotations

import threading
from pathlib import Path

from weir.cli import main
from weir.run import api
from weir.spec import load_project


def test_observers_see_every_node_start_progress_and_finish(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    assert main(["init", str(root), "-q"]) == 0
    (root / "data/orders/orders_2024_01_01.csv").write_text(
        "id,status,amount,updated_at\n1,placed,19.99,2024-01-01T09:00:00\n"
    )
    events: list[api.Event] = []
    lock = threading.Lock()

    def observe(event: api.Event) -> None:
        with lock:
            events.append(event)

    records = api.run(load_project(root), observers=[observe])
    assert [r.pipeline_name for r in records] == ["orders"]
    assert events[0] == api.RunStarted(("orders",))
    started = events[1]
    assert isinstance(started, api.NodeStarted) and (started.node, started.kind) == ("orders", "pipeline")
    assert started.run_id == records[0].run_id and "silver.orders" in started.outputs
    progress = [e for e in events if isinstance(e, api.NodeProgress)]
    assert progress and all(e.node == "orders" and e.message for e in progress)
    finished = events[-1]
    assert isinstance(finished, api.NodeFinished) and finished.record is records[0]
    assert finished.record.status == "success" and finished.record.rows_loaded == 1

    # no selectors: everything; a selector: only that; a second run changes nothing
    again = api.run(load_project(root), ["orders"])
    assert [r.changed for r in again] == [False]


def test_a_failed_node_is_reported_to_observers_and_skips_its_descendants(
    tmp_path: Path,
) -> None:
    root = tmp_path / "shop"
    main(["init", str(root), "-q"])
    (root / "models").mkdir()
    (root / "models/daily.sql").write_text(
        "/* weir\nowner: data-eng\n*/\nSELECT status, count(*) AS n FROM silver.orders GROUP BY 1\n"
    )
    with (root / "pipelines/orders.yml").open("a") as f:
        f.write("on_parse_error: fail\n")
    (root / "data/orders/orders_2024_01_01.csv").write_text(
        "id,status,amount,updated_at\nx,placed,1,2024\n"
    )
    finished: dict[str, str] = {}

    def observe(event: api.Event) -> None:
        if isinstance(event, api.NodeFinished):
            finished[event.node] = event.record.status

    api.run(load_project(root), observers=[observe])
    assert finished == {"orders": "failed", "daily": "skipped"}
