"""The one topological sort of weir (the run graph, model order, the loader's cycle check),
on the standard library's :class:`graphlib.TopologicalSorter`."""

from __future__ import annotations

import graphlib
import heapq
from collections.abc import Iterable, Mapping


class CycleError(ValueError):
    """Nodes that depend on each other in a cycle. ``cycle``: the nodes in reading order,
    each one reads the next, the first repeated at the end (``a → b → a``); it starts at the
    smallest name, so the same graph names the same cycle every time."""

    def __init__(self, cycle: list[str]):
        self.cycle = cycle
        super().__init__(" → ".join(cycle))


def topological(upstream: Mapping[str, Iterable[str]]) -> list[str]:
    """Every name of ``upstream`` after the names it reads; among the names ready at once
    the smallest first, so the order is the same on every run. Names read that are not keys
    of ``upstream`` are outside the graph: ignored. Raises :class:`CycleError`."""
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for name in sorted(upstream):
        sorter.add(name, *sorted(p for p in upstream[name] if p in upstream))
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        # graphlib lists each node before the one that reads it: reverse to reading order
        raise CycleError(_from_smallest(list(reversed(exc.args[1])))) from None
    ready = list(sorter.get_ready())
    heapq.heapify(ready)
    done: list[str] = []
    while ready:
        name = heapq.heappop(ready)
        done.append(name)
        sorter.done(name)
        for after in sorter.get_ready():
            heapq.heappush(ready, after)
    return done


def _from_smallest(cycle: list[str]) -> list[str]:
    ring = cycle[:-1]
    start = ring.index(min(ring))
    ring = ring[start:] + ring[:start]
    return [*ring, ring[0]]
