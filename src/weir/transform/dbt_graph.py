"""A dbt project's graph of nodes, read from its ``manifest.json``, for lineage.

A leaf module (plain data, nothing of dbt or weir imported): lineage
(``transform/lineage.py``) draws these nodes, and ``weir.run.dbt.dbt_graph`` produces them,
running ``dbt parse`` when a step has no manifest yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BUILT = ("model", "snapshot", "seed")
"""dbt resources that build a relation in the warehouse."""


@dataclass(frozen=True)
class DbtNode:
    unique_id: str
    name: str
    resource_type: str
    """model, source, seed, snapshot, test, exposure, …"""
    columns: tuple[str, ...] = ()
    """The columns the dbt project documents for the node (manifest ``columns``)."""
    weir_table: str | None = None
    """For a source over a table weir exposes: that table, e.g. ``silver.orders``."""
    relation: str | None = None
    """Where dbt builds the node in the warehouse (``schema.alias``), for built nodes."""


@dataclass(frozen=True)
class DbtGraph:
    """A dbt step's nodes and their dependencies, from manifest.json."""

    step: str
    nodes: dict[str, DbtNode]
    edges: tuple[tuple[str, str], ...]
    """(parent unique_id, child unique_id), from each node's ``depends_on.nodes``."""


def graph_of(step: str, manifest: dict[str, Any], tables: set[str]) -> DbtGraph:
    nodes: dict[str, DbtNode] = {}
    edges: set[tuple[str, str]] = set()
    for section in ("nodes", "sources", "exposures"):
        for unique_id, node in (manifest.get(section) or {}).items():
            kind = str(node.get("resource_type", section.rstrip("s")))
            weir_table = None
            if kind == "source":
                table = f"{node.get('schema')}.{node.get('identifier') or node.get('name')}"
                weir_table = table if table in tables else None
            relation = None
            if kind in BUILT:
                relation = f"{node.get('schema')}.{node.get('alias') or node.get('name')}"
            nodes[unique_id] = DbtNode(
                unique_id=unique_id,
                name=str(node.get("name")),
                resource_type=kind,
                columns=tuple(node.get("columns") or {}),
                weir_table=weir_table,
                relation=relation,
            )
            for parent in (node.get("depends_on") or {}).get("nodes") or []:
                edges.add((str(parent), unique_id))
    return DbtGraph(step=step, nodes=nodes, edges=tuple(sorted(edges)))
