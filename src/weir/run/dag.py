"""The project as one graph of nodes (pipelines, models, dbt steps), selection, and the
parallel executor: a node starts when everything it reads has finished; a failed node skips
its descendants only.

Selectors (``weir run --select``), dbt-style: ``name``, ``tag:daily``, ``state:modified``
(nodes whose definition changed since their tables were last built, run/modified.py),
``+name`` (it and everything upstream), ``name+`` (it and everything downstream), ``+name+``
(both), with a depth: ``2+name`` (two levels upstream), ``name+1`` (its direct downstream).
``--exclude`` takes the same selectors.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from weir.errors import ConfigError, UsageError
from weir.hints import did_you_mean
from weir.observe.events import Kind
from weir.observe.record import RunRecord
from weir.spec import Project
from weir.state.sqlite import StateStore
from weir.toposort import CycleError, topological


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
    try:
        return topological({name: node.upstream for name, node in nodes.items()})
    except CycleError as exc:  # the loader rejects model cycles: this is a bug if it shows
        raise ConfigError(f"nodes depend on each other in a cycle: {exc}") from None


_SELECTOR = re.compile(r"(?:(?P<up>\d*)\+)?(?P<core>[^+\s]+)(?:\+(?P<down>\d*))?")


Modified = Callable[[], Collection[str]]
"""The names ``state:modified`` selects, asked for only when a selector uses it."""

STATE_METHODS = ("modified",)


def select(
    nodes: dict[str, Node],
    selectors: list[str],
    exclude: Sequence[str] = (),
    *,
    modified: Modified | None = None,
) -> list[str]:
    """The selected node names in dependency order; no selectors: every node. Nodes that
    ``exclude`` selects (same syntax) are left out. ``modified``: what ``state:modified``
    selects (the run API passes run/modified.py's answer)."""
    found: list[set[str]] = []

    def state_modified() -> set[str]:
        if modified is None:
            raise UsageError(
                "state:modified needs the project's tables to compare definitions with",
                hint="select through weir.run.api.run (or `weir run`), which reads them",
            )
        if not found:
            found.append(set(modified()))
        return found[0]

    items = _items(selectors)
    chosen = _resolve(nodes, items, state_modified) if items else set(nodes)
    dropped = _resolve(nodes, _items(exclude), state_modified)
    left = chosen - dropped
    if dropped and not left and chosen:
        raise UsageError(
            "the selection is empty: --exclude leaves out every selected node",
            hint="check the selectors; `weir validate` lists the nodes",
        )
    return [n for n in order(nodes) if n in left]


def _items(selectors: Sequence[str]) -> list[str]:
    return [part for s in selectors for part in s.replace(",", " ").split()]


def _resolve(nodes: dict[str, Node], items: list[str], modified: Modified) -> set[str]:
    children = downstream(nodes)
    chosen: set[str] = set()
    for item in items:
        match = _SELECTOR.fullmatch(item)
        if match is None:
            raise UsageError(
                f"cannot read the selector {item!r}",
                hint="NAME, tag:TAG, state:modified, +NAME / 2+NAME (upstream, all or N "
                "levels), NAME+ / NAME+1 (downstream)",
            )
        core, up, down = match["core"], match["up"], match["down"]
        for root in _roots(nodes, core, item, modified):
            chosen.add(root)
            if up is not None:
                chosen |= _closure(root, lambda n: nodes[n].upstream, int(up) if up else None)
            if down is not None:
                chosen |= _closure(root, lambda n: children[n], int(down) if down else None)
    return chosen


def _roots(nodes: dict[str, Node], core: str, item: str, modified: Modified) -> list[str]:
    if core.startswith("state:"):
        method = core[6:]
        if method not in STATE_METHODS:
            raise UsageError(
                f"unknown state selector {core!r}",
                hint=did_you_mean(core, [f"state:{m}" for m in STATE_METHODS]),
            )
        return sorted(n for n in modified() if n in nodes)
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
    are not waited for. The state store is opened (and migrated) first: one that cannot take
    the records stops the run before anything is written."""
    StateStore(project.root / project.spec.state)
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
