"""The context a node gives the check kinds that need more than its rows
(weir.quality.kinds.base.CheckContext): other tables' snapshots and the node's run history."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from weir import layout
from weir.engine.base import Session
from weir.errors import LakeError
from weir.lake.table import Table
from weir.observe.record import RunRecord
from weir.spec import Project
from weir.state.sqlite import StateStore


@dataclass
class NodeContext:
    project: Project
    node: str
    session: Session
    relation: str
    """The checked rows: the batch (``flagged``) or a model's checked rows."""

    def snapshot(self, table: str) -> str:
        """``silver.<table>`` or ``gold.<model>`` at its current version, as a relation."""
        layer, _, name = table.partition(".")
        found = Table(layout.table_uri(self.project.lake, layer, name), label=layer)
        if layer not in ("silver", "gold") or not found.exists():
            raise LakeError(
                f"a check of {self.node!r} reads {table}, which does not exist",
                where=found.uri,
                hint="run what produces it first",
            )
        return f"({self.session.snapshot(found)})"

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a check kind's query in the node's session."""
        return self.session.rows(sql, params)

    def history(self, limit: int) -> Sequence[RunRecord]:
        """The node's last ``limit`` runs in the state store, newest first (this run is not
        among them: it is stored when it ends)."""
        store = StateStore(self.project.root / self.project.spec.state)
        return [RunRecord.from_dict(row) for row in store.runs(self.node, limit)]
