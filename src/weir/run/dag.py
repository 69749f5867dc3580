"""The project as one graph of nodes (pipelines, models, dbt steps), selection, and the
parallel executor: a node starts when everything it reads has finished; a failed node skips
its descendants only.

Selectors (``weir run --select``), dbt-style: ``name``, ``tag:daily``, ``+name`` (it and
everything upstream), ``name+`` (it and everything downstream), ``+name+`` (both), with a
depth: ``2+name`` (two levels upstream), ``name+1`` (its direct downstream). ``--exclude``
takes the same selectors.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from weir.errors import UsageError
from weir.hints import did_you_mean
from weir.observe.events import Kind
from weir.observe.record import RunRecord
from weir.spec import Project


@dataclass(frozen=True)
class Node:
    name: str
    kind: Kind
    upstream: tuple[str, ...]
    tags: tuple[str, ...]
    writes: tuple[str, ...]
    """Qualified tables the node produces (``silver.x``, ``gold.y``)."""


def graph(project: Project) -> dict[str, Node]:
    """Every node of the project with the nodes it reads from."""
    producers: dict[str, list[str]] = {}
    for p in project.pipelines.values():
        producers.setdefault(f"silver.{p.table}", []).append(p.name)
    for m in project.models.values():
        producers.setdefault(m.table, []).append(m.name)

    def upstream(reads: Iterable[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(n for t in reads for n in producers.get(t, [])))

    nodes: dict[str, Node] = {}
    for p in project.pipelines.values():
        nodes[p.name] = Node(p.name, "pipeline", (), tuple(p.spec.tags), (f"silver.{p.table}",))
    for m in project.models.values():
        nodes[m.name] = Node(
            m.name, "model", upstream(m.depends_on), tuple(m.spec.tags), (m.table,)
        )
    for step in project.dbt_steps.values():
        nodes[step.name] = Node(
            step.name, "dbt", upstream(step.depends_on), tuple(step.spec.tags), ()
        )
    return nodes


def downstream(nodes: dict[str, Node]) -> dict[str, list[str]]:
    children: dict[str, list[str]] = {n: [] for n in nodes}
    for node in nodes.values():
        for parent in node.upstream:
            children[parent].append(node.name)
    return children


def order(nodes: dict[str, Node]) -> list[str]:
    """All node names, each after its upstream (ties broken by name)."""
    done: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for parent in sorted(nodes[name].upstream):
            visit(parent)
        done.append(name)

    for name in sorted(nodes):
        visit(name)
    return done


_SELECTOR = re.compile(r"(?:(?P<up>\d*)\+)?(?P<core>[^+\s]+)(?:\+(?P<down>\d*))?")


def select(nodes: dict[str, Node], selectors: list[str], exclude: Sequence[str] = ()) -> list[str]:
    """The selected node names in dependency order; no selectors: every node. Nodes that
    ``exclude`` selects (same syntax) are left out."""
    items = _items(selectors)
    chosen = _resolve(nodes, items) if items else set(nodes)
    dropped = _resolve(nodes, _items(exclude))
    left = chosen - dropped
    if dropped and not left:
        raise UsageError(
            "the selection is empty: --exclude leaves out every selected node",
            hint="check the selectors; `weir validate` lists the nodes",
        )
    return [n for n in order(nodes) if n in left]


def _items(selectors: Sequence[str]) -> list[str]:
    return [part for s in selectors for part in s.replace(",", " ").split()]


def _resolve(nodes: dict[str, Node], items: list[str]) -> set[str]:
    children = downstream(nodes)
    chosen: set[str] = set()
    for item in items:
        match = _SELECTOR.fullmatch(item)
        if match is None:
            raise UsageError(
                f"cannot read the selector {item!r}",
                hint="NAME, tag:TAG, +NAME / 2+NAME (upstream, all or N levels), "
                "NAME+ / NAME+1 (downstream)",
            )
        core, up, down = match["core"], match["up"], match["down"]
        for root in _roots(nodes, core, item):
            chosen.add(root)
            if up is not None:
                chosen |= _closure(root, lambda n: nodes[n].upstream, int(up) if up else None)
            if down is not None:
                chosen |= _closure(root, lambda n: children[n], int(down) if down else None)
    return chosen


def _roots(nodes: dict[str, Node], core: str, item: str) -> list[str]:
    if core.startswith("tag:"):
        tag = core[4:]
        roots = [n.name for n in nodes.values() if tag in n.tags]
        if not roots:
            tags = {t for n in nodes.values() for t in n.tags}
            raise UsageError(
                f"no node is tagged {tag!r}",
                hint=did_you_mean(tag, tags) or f"tags in use: {', '.join(sorted(tags)) or 'none'}",
            )
        return roots
    if core in nodes:
        return [core]
    raise UsageError(
        f"nothing named {core!r} to run (from selector {item!r})",
        hint=did_you_mean(core, nodes)
        or "name a pipeline, model or dbt step; `weir validate` lists them",
    )


def _closure(start: str, step: Callable[[str], Iterable[str]], depth: int | None) -> set[str]:
    """Nodes reachable from ``start`` by ``step``, at most ``depth`` steps away (None: any)."""
    found: set[str] = set()
    level, frontier = 0, [start]
    while frontier and (depth is None or level < depth):
        frontier = [n for name in frontier for n in step(name) if n not in found]
        found |= set(frontier)
        level += 1
    return found


def execute(
    project: Project,
    nodes: dict[str, Node],
    selected: list[str],
    run: Callable[[Node], RunRecord],
    *,
    threads: int,
    on_start: Callable[[Node], None] = lambda n: None,
    on_done: Callable[[Node, RunRecord], None] = lambda n, r: None,
    on_skip: Callable[[Node, RunRecord], None] = lambda n, r: None,
) -> list[RunRecord]:
    """Run ``selected`` in dependency order, independent branches in parallel.

    A node whose selected upstream failed (or was skipped) is skipped with a record naming
    the cause (given to ``on_skip``, then ``on_done``); upstream nodes outside the selection
    are not waited for."""
    wanted = set(selected)
    records: dict[str, RunRecord] = {}
    running: dict[Future[RunRecord], Node] = {}
    pending = list(selected)
    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="weir-node") as pool:
        while pending or running:
            for name in list(pending):
                node = nodes[name]
                parents = [p for p in node.upstream if p in wanted]
                if any(p not in records for p in parents):
                    continue
                pending.remove(name)
                bad = [p for p in parents if records[p].status in ("failed", "skipped")]
                if bad:
                    record = _skipped(node, bad)
                    on_skip(node, record)
                    records[name] = record
                    on_done(node, record)
                    continue
                on_start(node)
                running[pool.submit(run, node)] = node
            if not running:
                continue
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                node = running.pop(future)
                records[node.name] = future.result()
                on_done(node, records[node.name])
    return [records[n] for n in selected]


def _skipped(node: Node, causes: list[str]) -> RunRecord:
    record = RunRecord(pipeline_name=node.name, run_id=uuid.uuid4().hex[:12], kind=node.kind)
    record.stage = "upstream"
    record.finish("skipped", f"not run: upstream {', '.join(causes)} did not succeed")
    return record
