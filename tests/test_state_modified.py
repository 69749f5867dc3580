"""``state:modified`` with real runs: real Delta tables, the fingerprints runs commit with
them, edits to a model's SQL and a pipeline's contract."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from weir.observe.record import RunRecord
from weir.run import dag
from weir.run.modified import NEVER_RUN, modified
from weir.spec import load_project
from weir.state.sqlite import StateStore
from weir.transform import definition as defs
from weirtest.modelkit import EVENTS_CONTRACT, Event, at, day, events_project, push, run_ok


def ev(event_id: int, d: int, grp: str, amount: int) -> Event:
    return (event_id, day(d), grp, amount, at(d))


# events ─► stg ─► fct ─► mrt, and events ─► other
MODELS = {
    "stg": "SELECT grp, amount FROM silver.events",
    "fct": "SELECT grp, sum(amount) AS total FROM gold.stg GROUP BY grp",
    "mrt": "SELECT count(*) AS groups FROM gold.fct",
    "other": "SELECT count(*) AS n FROM silver.events",
}


def changes(root: Path) -> dict[str, list[str]]:
    project = load_project(root)
    return modified(project, dag.graph(project))


def selected(root: Path, *selectors: str, exclude: tuple[str, ...] = ()) -> list[str]:
    project = load_project(root)
    nodes = dag.graph(project)
    return dag.select(nodes, list(selectors), exclude, modified=lambda: modified(project, nodes))


def test_state_modified_selects_the_edited_model_until_it_runs(tmp_path: Path) -> None:
    root = events_project(tmp_path / "p", MODELS)
    push([ev(1, 1, "a", 1), ev(2, 1, "b", 2)])
    assert changes(root) == {name: [NEVER_RUN] for name in ["events", *MODELS]}
    run_ok(root)
    assert changes(root) == {}
    assert selected(root, "state:modified") == []

    sql = root / "models" / "fct.sql"
    sql.write_text(
        "-- a comment and new spacing do not count\nSELECT grp,  sum(amount) AS total\n"
        "FROM gold.stg GROUP BY grp\n"
    )
    assert changes(root) == {}
    sql.write_text("SELECT grp, sum(amount) AS total, count(*) AS n FROM gold.stg GROUP BY grp\n")
    assert changes(root) == {"fct": ["sql"]}
    assert selected(root, "state:modified") == ["fct"]
    assert selected(root, "state:modified+") == ["fct", "mrt"]
    assert selected(root, "+state:modified") == ["events", "stg", "fct"]
    assert selected(root, "state:modified+", exclude=("mrt",)) == ["fct"]

    records = run_ok(root, "state:modified+")
    assert list(records) == ["fct", "mrt"]
    assert records["fct"].changed
    assert changes(root) == {}
    assert selected(root, "state:modified+") == []


def test_a_changed_contract_rule_marks_the_pipeline_until_silver_is_rebuilt(
    tmp_path: Path,
) -> None:
    root = events_project(tmp_path / "p", MODELS)
    push([ev(1, 1, "a", 1)])
    run_ok(root)
    contract = yaml.safe_load(yaml.safe_dump(EVENTS_CONTRACT))
    amount = next(c for c in contract["schema"][0]["properties"] if c["name"] == "amount")
    amount["quality"] = [{"rule": "range", "mustBeBetween": [0, 100], "severity": "warn"}]
    (root / "contracts" / "events.yml").write_text(yaml.safe_dump(contract, sort_keys=False))
    assert changes(root) == {"events": ["rules"]}
    assert selected(root, "state:modified+1") == ["events", "other", "stg"]

    run_ok(root, "events")  # nothing new in the source: silver keeps its old definition
    assert changes(root) == {"events": ["rules"]}
    run_ok(root, "events", full_refresh=True)  # rebuilt with the rule of today
    assert changes(root) == {}


def test_a_dbt_step_is_modified_until_it_has_succeeded_then_when_its_files_change(
    tmp_path: Path,
) -> None:
    root = events_project(tmp_path / "p", {})
    shutil.copytree(Path(__file__).parent / "dbt_project", root / "dbt")
    step = {"name": "shop", "kind": "dbt", "owner": "analytics", "dbt": {}}
    (root / "pipelines" / "shop.yml").write_text(yaml.safe_dump(step))
    project = load_project(root)
    store = StateStore(project.root / project.spec.state)
    assert changes(root)["shop"] == [NEVER_RUN]

    def ran(status: str, definition: dict[str, str]) -> None:
        record = RunRecord(pipeline_name="shop", run_id=status + str(len(store.runs())), kind="dbt")
        record.definition = definition
        record.finish(status)  # type: ignore[arg-type]
        store.save(record)

    now = defs.dbt_fingerprint(project.dbt_steps["shop"], root / "dbt")
    ran("failed", now)
    assert changes(root)["shop"] == [NEVER_RUN]  # a failed run built nothing for sure
    ran("success", now)
    assert "shop" not in changes(root)
    model = next((root / "dbt" / "models").rglob("*.sql"))
    model.write_text(model.read_text() + "\n-- a comment is a change dbt would build\n")
    assert changes(root)["shop"] == ["files"]
    (root / "dbt" / "target").mkdir(exist_ok=True)  # dbt's own output is not the definition
    (root / "dbt" / "target" / "manifest.json").write_text("{}")
    ran("success", defs.dbt_fingerprint(load_project(root).dbt_steps["shop"], root / "dbt"))
    assert "shop" not in changes(root)
    step["dbt"] = {"select": ["tag:nightly"]}
    (root / "pipelines" / "shop.yml").write_text(yaml.safe_dump(step))
    assert changes(root)["shop"] == ["selection"]
    ran("success", {})  # recorded by a weir that kept no fingerprint
    assert changes(root)["shop"] == ["unrecorded"]
