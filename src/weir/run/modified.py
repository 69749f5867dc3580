"""The ``state:modified`` selector: nodes whose definition differs from the one their tables
were last built with, read from the fingerprints the tables carry (transform/definition.py).

- a pipeline: the fingerprint on its latest silver commit, against the pipeline as it is now
  (its contract's columns and rules, transform, load, engine, PII boundary). A run that
  loads nothing new writes no commit, so a changed pipeline stays modified until new rows
  land or ``--full-refresh`` rebuilds silver with the new definition.
- a model: the fingerprint in its position, against the model now (its SQL as it runs,
  materialization, keys, partitioning, window, snapshot, engine); a run rebuilds a changed
  model, so after it the model is no longer modified.
- a dbt step: the fingerprint in its latest successful run record (its selection and the
  dbt project's files), against the step now; a step without a successful run is modified.
  Which of dbt's models changed is dbt's own ``state:modified`` (in the step's ``select``).

A node that never ran (no silver commit, no position) is modified, and so is one whose
table was written by a weir that recorded no fingerprint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from weir.run.dag import Node
from weir.run.dbt import StepPaths
from weir.run.model import ModelRun
from weir.run.pipeline import PipelineRun
from weir.spec import Model, Pipeline, Project
from weir.spec.loaded import DbtStep
from weir.state.sqlite import StateStore
from weir.transform import definition as defs

NEVER_RUN = "never run"


def modified(project: Project, nodes: Mapping[str, Node]) -> dict[str, list[str]]:
    """Every modified node of ``nodes``, with what changed (definition parts, ``never run``
    or ``unrecorded``)."""
    found: dict[str, list[str]] = {}
    for name, node in nodes.items():
        if node.kind == "pipeline":
            changes = pipeline_changes(project, project.pipelines[name])
        elif node.kind == "model":
            changes = model_changes(project, project.models[name])
        else:
            changes = dbt_changes(project, project.dbt_steps[name])
        if changes:
            found[name] = changes
    return found


def pipeline_changes(project: Project, pipeline: Pipeline) -> list[str]:
    """How ``pipeline`` differs from the definition its latest silver commit carries."""
    run = PipelineRun(project, pipeline)
    try:
        silver = run.tables.silver
        batch = silver.applied(run.app_id)
        if batch == 0:
            return [NEVER_RUN]
        info = silver.commit_metadata(batch) or {}
        before = json.loads(info.get("weir.definition", "null"))
        if not before:
            return [defs.UNRECORDED]
        return defs.changed_parts(before, run.definition)
    finally:
        run.close()


def dbt_changes(project: Project, step: DbtStep) -> list[str]:
    """How ``step`` differs from the definition its latest successful run recorded."""
    last = StateStore(project.root / project.spec.state).last_success(step.name)
    if last is None:
        return [NEVER_RUN]
    before = last.get("definition")
    if not before:
        return [defs.UNRECORDED]
    return defs.changed_parts(
        before, defs.dbt_fingerprint(step, StepPaths.of(project, step).project_dir)
    )


def model_changes(project: Project, model: Model) -> list[str]:
    """How ``model`` differs from the definition its position records."""
    run = ModelRun(project, model)
    try:
        _, position = run.target.position(run.app_id)
        if position is None:
            return [NEVER_RUN]
        now = defs.model_fingerprint(model, run.session.settings())
        return defs.model_changes(position.get("definition"), now)
    finally:
        run.close()
