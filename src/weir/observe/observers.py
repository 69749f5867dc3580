"""The observers a project's runs have without being asked: OpenLineage (when weir.yml
configures it), the run-record writer, and alerts (when a node has an alert channel).
Callers add their own after them::

    from weir.observe.observers import observers_for

    run = PipelineRun(project, pipeline)
    record = run.execute([*observers_for(project), my_observer])

:func:`weir.run.api.run` adds ``observers_for(project)`` before the ones it is given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from weir.observe.events import Event, NodeFinished, Observer
from weir.observe.record import RunRecord, Scrubber, emit

if TYPE_CHECKING:
    from weir.spec import Project


class RunRecords:
    """Writes each finished node's record: a JSON line where ``logging.run_records`` says
    (``.weir/runs.jsonl`` by default) and a row in the state store."""

    def __init__(self, project: Project):
        self.project = project
        self.scrub = Scrubber(project.secrets)

    def __call__(self, event: Event) -> None:
        if isinstance(event, NodeFinished):
            persist(self.project, event.record, self.scrub)


def persist(project: Project, record: RunRecord, scrub: Scrubber) -> None:
    """The record as a JSON line (logging.run_records) and a row in the state store."""
    from weir.state.sqlite import StateStore

    record.scrub(scrub)  # before anything leaves the process
    record.target = project.target  # skipped nodes' records are made without the project
    spec = project.spec
    emit(record, spec.logging.run_records, project.root, scrub)
    StateStore(project.root / spec.state).save(record, scrub)


def observers_for(project: Project) -> list[Observer]:
    """The project's own observers, in the order they hear each event: OpenLineage first
    (its warnings join the record), then the run-record writer, then alerts (a failure is
    alerted once its record is stored; a project without alert channels pays nothing)."""
    observers: list[Observer] = []
    config = project.spec.openlineage
    if config is not None and (config.file or config.url):
        from weir.observe.openlineage import LineageEmitter

        observers.append(LineageEmitter(project, config))
    observers.append(RunRecords(project))
    from weir.observe import alerts

    if alerts.configured(project):
        observers.append(alerts.Alerting(project))
    return observers
