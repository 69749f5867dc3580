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
    assert isinstance(started, api.NodeStarted) and (started.node, started.kind) == (
        "orders",
        "pipeline",
    )
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


def test_stages_are_events_and_a_no_op_run_ends_up_to_date(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    main(["init", str(root), "-q"])
    events: list[api.Event] = []
    [first] = api.run(load_project(root), observers=[events.append])
    stages = [e.stage for e in events if isinstance(e, api.NodeStage)]
    assert stages[:2] == ["position", "extract"] and stages[-1] == "silver"
    assert {"bronze", "transform", "quarantine"} <= set(stages)  # the scaffold quarantines one
    assert all(e.run_id == first.run_id for e in events if isinstance(e, api.NodeStage))
    assert first.stage == "silver"

    events.clear()
    [again] = api.run(load_project(root), observers=[events.append])
    assert [e.stage for e in events if isinstance(e, api.NodeStage)][-1] == "up-to-date"
    assert again.stage == "up-to-date" and not again.changed  # was left at "extract"


def test_the_run_record_is_written_before_a_callers_observer_hears_the_end(
    tmp_path: Path,
) -> None:
    """The run-record writer is one of the project's own observers: on by default, and it
    has written the record (runs.jsonl, state store) before the caller's observers hear."""
    import json
    import sqlite3

    root = tmp_path / "shop"
    main(["init", str(root), "-q"])
    (root / "models").mkdir()
    (root / "models/daily.sql").write_text(
        "/* weir\nowner: data-eng\n*/\nSELECT status, count(*) AS n FROM silver.orders GROUP BY 1\n"
    )
    with (root / "pipelines/orders.yml").open("a") as f:
        f.write("on_parse_error: fail\n")
    (root / "data/orders/orders_2024_01_01.csv").write_text(
        "id,status,amount,updated_at\nx,a,1,2\n"
    )
    written: dict[str, list[str]] = {}

    def observe(event: api.Event) -> None:
        if isinstance(event, api.NodeFinished):
            lines = (root / ".weir/runs.jsonl").read_text().splitlines()
            written[event.node] = [json.loads(line)["run_id"] for line in lines]

    records = {r.pipeline_name: r for r in api.run(load_project(root), observers=[observe])}
    assert records["daily"].status == "skipped"  # a skipped node's record is written too
    for name, record in records.items():
        assert record.run_id in written[name]
    with sqlite3.connect(root / ".weir/state.db") as db:
        stored = {row[0] for row in db.execute("SELECT run_id FROM runs")}
    assert {r.run_id for r in records.values()} <= stored


def test_a_node_run_takes_its_observers_or_the_projects_own(tmp_path: Path) -> None:
    from weir.observe.observers import observers_for
    from weir.run.pipeline import PipelineRun

    root = tmp_path / "shop"
    main(["init", str(root), "-q"])
    project = load_project(root)
    heard: list[api.Event] = []
    record = PipelineRun(project, project.pipeline("orders")).execute([heard.append])
    assert isinstance(heard[-1], api.NodeFinished) and heard[-1].record is record
    assert not (root / ".weir/runs.jsonl").exists()  # only what it was given
    PipelineRun(project, project.pipeline("orders")).execute()
    PipelineRun(project, project.pipeline("orders")).execute([*observers_for(project)])
    assert len((root / ".weir/runs.jsonl").read_text().splitlines()) == 2
