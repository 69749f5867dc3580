"""The shapes ``weir lineage`` prints: text trees, Mermaid flowcharts and JSON payloads.

Three views, each in the three formats: the whole project's table graph, one table with its
upstream and downstream (and, for a model, its columns), and one column's upstream chain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from weir.transform.lineage import ColumnNode, Graph, Lineage

Children = Callable[[str], list[str]]


# ---------------------------------------------------------------- text
def _label(graph: Graph, node_id: str) -> str:
    node = graph.nodes.get(node_id)
    return f"{node_id}  ({node.label})" if node is not None and node.label else node_id


def _tree(graph: Graph, roots: Iterable[str], children: Children, indent: str = "") -> list[str]:
    """Nodes as a tree; a node reached again is shown once more, marked, without its subtree."""
    lines: list[str] = []
    shown: set[str] = set()

    def walk(node: str, prefix: str, branch: str, path: tuple[str, ...]) -> None:
        again = node in shown
        lines.append(
            f"{indent}{prefix}{branch}{_label(graph, node)}{'  (↑ above)' if again else ''}"
        )
        shown.add(node)
        if again or node in path:
            return
        kids = sorted(children(node))
        deeper = prefix + ("" if not branch else "    " if branch == "└── " else "│   ")
        for i, kid in enumerate(kids):
            walk(kid, deeper, "└── " if i == len(kids) - 1 else "├── ", (*path, node))

    for root in roots:
        walk(root, "", "", ())
    return lines


def graph_text(graph: Graph) -> list[str]:
    if not graph.nodes:
        return ["(no pipelines or models yet)"]
    return _tree(graph, sorted(graph.roots()), graph.children)


def table_text(lineage: Lineage, table: str) -> list[str]:
    graph = lineage.graph
    node = lineage.node(table)
    where = f", {node.path}" if node.path else ""
    lines = [f"{table}  ({node.kind}{': ' + node.label if node.label else ''}{where})"]
    for title, start, step in (
        ("upstream", graph.parents(table), graph.parents),
        ("downstream", graph.children(table), graph.children),
    ):
        lines.append(f"{title}:")
        lines += _tree(graph, sorted(start), step, "  ") or ["  (none)"]
    model = lineage.models.get(table)
    if model is not None:
        lines.append("columns:")
        if model.error:
            lines.append(f"  ! {model.error}")
        width = max((len(c.column) for c in model.columns), default=0)
        for c in model.columns:
            sources = ", ".join(f"{s.table}.{s.column}" for s in c.sources)
            detail = " ".join(
                x for x in (c.expression, f"← {sources}" if sources else "", c.reason) if x
            )
            lines.append(f"  {c.column:<{width}}  {c.kind:<9}  {detail}".rstrip())
    elif table in lineage.schemas:
        lines.append("columns:")
        lines += [f"  {c.name}  {c.type}" for c in lineage.schemas[table]]
    return lines


def column_text(node: ColumnNode) -> list[str]:
    lines: list[str] = []

    def walk(n: ColumnNode, prefix: str, branch: str) -> None:
        detail = " — ".join(x for x in (n.kind, n.expression, n.note) if x)
        lines.append(f"{prefix}{branch}{n.id}  [{detail}]")
        deeper = prefix + ("" if not branch else "    " if branch == "└── " else "│   ")
        for i, up in enumerate(n.upstream):
            walk(up, deeper, "└── " if i == len(n.upstream) - 1 else "├── ")

    walk(node, "", "")
    return lines


# ---------------------------------------------------------------- mermaid
def _quote(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def graph_mermaid(graph: Graph, keep: set[str] | None = None, focus: str | None = None) -> str:
    """A ``flowchart LR`` of the graph (or of the ``keep`` nodes), ``focus`` drawn bold."""
    ids = [n for n in graph.nodes if keep is None or n in keep]
    key = {n: f"n{i}" for i, n in enumerate(ids)}
    lines = ["flowchart LR"]
    lines += [f"    {key[n]}[{_quote(n)}]" for n in ids]
    lines += [f"    {key[a]} --> {key[b]}" for a, b in graph.edges if a in key and b in key]
    if focus in key:
        lines.append(f"    style {key[focus]} stroke-width:3px")
    return "\n".join(lines)


def column_mermaid(node: ColumnNode) -> str:
    key: dict[str, str] = {}
    nodes: list[str] = []
    edges: list[str] = []

    def walk(n: ColumnNode) -> str:
        if n.id not in key:
            key[n.id] = f"c{len(key)}"
            nodes.append(f"    {key[n.id]}[{_quote(n.id)}]")
        for up in n.upstream:
            edge = f"    {walk(up)} -->|{n.kind}| {key[n.id]}"
            if edge not in edges:
                edges.append(edge)
        return key[n.id]

    walk(node)
    return "\n".join(["flowchart LR", *nodes, *edges, f"    style {key[node.id]} stroke-width:3px"])


# ---------------------------------------------------------------- json
def graph_json(graph: Graph) -> dict[str, Any]:
    return {
        "nodes": [
            {"id": n.id, "kind": n.kind, "label": n.label, "path": n.path}
            for n in graph.nodes.values()
        ],
        "edges": [{"from": a, "to": b} for a, b in graph.edges],
    }


def table_json(lineage: Lineage, table: str) -> dict[str, Any]:
    graph = lineage.graph
    node = lineage.node(table)
    upstream, downstream = graph.upstream(table), graph.downstream(table)
    keep = {table, *upstream, *downstream}
    payload: dict[str, Any] = {
        "table": table,
        "kind": node.kind,
        "label": node.label,
        "path": node.path,
        "upstream": upstream,
        "downstream": downstream,
        "edges": [{"from": a, "to": b} for a, b in graph.edges if a in keep and b in keep],
        "schema": [{"name": c.name, "type": c.type} for c in lineage.schemas.get(table, ())],
    }
    model = lineage.models.get(table)
    if model is not None:
        payload["columns"] = [c.as_dict() for c in model.columns]
        payload["error"] = model.error
    return payload


def table_keep(lineage: Lineage, table: str) -> set[str]:
    graph = lineage.graph
    return {table, *graph.upstream(table), *graph.downstream(table)}


# ---------------------------------------------------------------- one entry point
def resolve(lineage: Lineage, target: str) -> tuple[str, str | None]:
    """``TABLE`` or ``TABLE.COLUMN`` → (table id, column or None). A bare name is a model
    or a silver table; unknown names raise UsageError with a suggestion."""
    nodes = lineage.graph.nodes

    def table_id(name: str) -> str | None:
        if name in nodes:
            return name
        if "." not in name:
            return next((f"{x}.{name}" for x in ("gold", "silver") if f"{x}.{name}" in nodes), None)
        return None

    found = table_id(target)
    if found is not None:
        return found, None
    table, _, column = target.rpartition(".")
    found = table_id(table) if table else None
    if found is not None:
        return found, column
    # name the table the user most likely meant: all of a two-part target, else its head
    lineage.node(target if target.count(".") <= 1 else table)
    raise AssertionError("unreachable: node() raised")


def render(lineage: Lineage, target: str | None, fmt: str) -> str | dict[str, Any]:
    """What ``weir lineage [TARGET] --format FMT`` prints: text or Mermaid, or a JSON payload."""
    if target is None:
        if fmt == "json":
            return {**graph_json(lineage.graph), "notes": list(lineage.notes)}
        if fmt == "mermaid":
            return graph_mermaid(lineage.graph)
        return "\n".join(graph_text(lineage.graph))
    table, column = resolve(lineage, target)
    if column is None:
        if fmt == "json":
            return table_json(lineage, table)
        if fmt == "mermaid":
            return graph_mermaid(lineage.graph, table_keep(lineage, table), focus=table)
        return "\n".join(table_text(lineage, table))
    chain = lineage.chain(table, column)
    if fmt == "json":
        return {"column": chain.id, "lineage": chain.as_dict()}
    if fmt == "mermaid":
        return column_mermaid(chain)
    return "\n".join(column_text(chain))
