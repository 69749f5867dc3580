"""The columns a gold model produces, read from its SQL (sqlglot) without running it.

What ``weir validate`` needs to catch a model check on a column the model does not have.
Each relation is an :class:`Output`: the names known to be there, whether that list is
complete, and names known to be absent (``* EXCLUDE (…)``). Silver tables are never complete:
besides their contract's and derived columns they hold weir's own columns and any column the
source added after the contract (additive drift). A model's output is complete when every
projection names its column (an alias or a column) and every ``*`` expands over complete
relations — other models, CTEs and subqueries with complete outputs. What sqlglot cannot
follow (table functions, PIVOT, column aliases on a table, unnamed expressions) is
incomplete: weir then says nothing rather than guess.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sqlglot import exp

from weir import layout
from weir.spec import Project


@dataclass(frozen=True)
class Output:
    names: frozenset[str]
    complete: bool
    """True when :attr:`names` are all the columns."""
    absent: frozenset[str] = frozenset()
    """Names known not to be there, even when the output is not complete."""

    def lacks(self, column: str) -> bool:
        """Certainly no column ``column``."""
        return column in self.absent or (self.complete and column not in self.names)


UNKNOWN = Output(frozenset(), complete=False)


def model_outputs(project: Project) -> dict[str, Output]:
    """Every model's output, by model name."""
    silver = {
        p.table: Output(frozenset(p.silver_columns), False) for p in project.pipelines.values()
    }
    done: dict[str, Output] = {}

    def table(layer: str, name: str) -> Output:
        if layer in ("", "silver") and name in silver:
            return silver[name]
        if layer in ("", "gold") and name in project.models:
            return gold(name)
        return UNKNOWN

    def gold(name: str) -> Output:
        if name not in done:
            done[name] = UNKNOWN  # the loader rejected cycles; this only guards the walk
            model = project.models[name]
            out = _query(model.sql.expression, {}, table)
            if model.spec.materialized == "snapshot":
                out = Output(out.names | set(layout.SCD2_NAMES), out.complete, out.absent)
            done[name] = out
        return done[name]

    return {name: gold(name) for name in project.models}


Tables = Callable[[str, str], Output]


def _query(query: exp.Expression, ctes: Mapping[str, Output], tables: Tables) -> Output:
    scope = dict(ctes)
    with_ = query.args.get("with_") or query.args.get("with")
    for cte in with_.expressions if with_ is not None else ():
        scope[cte.alias_or_name] = _aliased(cte.args.get("alias"), _query(cte.this, scope, tables))
    if isinstance(query, exp.Subquery | exp.Paren):
        return _query(query.this, scope, tables)
    if isinstance(query, exp.SetOperation):  # UNION …: the first branch names the columns
        return _query(query.this, scope, tables)
    if not isinstance(query, exp.Select):
        return UNKNOWN
    sources = _sources(query, scope, tables)
    names: list[str] = []
    complete, absent = True, set[str]()
    for item in query.expressions:
        if isinstance(item, exp.Star) or (
            isinstance(item, exp.Column) and isinstance(item.this, exp.Star)
        ):
            star = item if isinstance(item, exp.Star) else item.this
            picked = list(sources.values()) if isinstance(item, exp.Star) else []
            if isinstance(item, exp.Column):
                picked = [sources.get(item.table, UNKNOWN)]
            out = _star(star, _merge(picked))
            names += out.names
            complete &= out.complete
            absent |= out.absent
        elif isinstance(item, exp.Alias | exp.Column):
            names.append(item.alias_or_name)
        else:  # DuckDB names it after the expression's text: not something to guess
            complete = False
    if len(set(names)) != len(names):  # DuckDB renames repeated names
        complete = False
    return Output(frozenset(names), complete, frozenset(absent - set(names)))


def _sources(query: exp.Select, ctes: Mapping[str, Output], tables: Tables) -> dict[str, Output]:
    """The relations of FROM and JOIN, by the name the SELECT knows them by."""
    from_ = query.args.get("from_") or query.args.get("from")
    found = [from_.this] if from_ is not None else []
    found += [join.this for join in query.args.get("joins") or ()]
    out: dict[str, Output] = {}
    for i, source in enumerate(found):
        key = source.alias_or_name or f"#{i}"
        if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
            if source.args.get("pivots"):
                relation = UNKNOWN
            elif not source.db and source.name in ctes:
                relation = ctes[source.name]
            else:
                relation = tables(source.db, source.name)
        elif isinstance(source, exp.Subquery):
            relation = _query(source.this, ctes, tables)
        else:
            relation = UNKNOWN
        out[key] = _aliased(source.args.get("alias"), relation)
    return out


def _aliased(alias: exp.Expression | None, relation: Output) -> Output:
    """``AS t(a, b)`` renames columns by position, which the names alone cannot follow."""
    if isinstance(alias, exp.TableAlias) and alias.columns:
        return UNKNOWN
    return relation


def _merge(relations: Iterable[Output]) -> Output:
    """The columns of ``*`` over several relations (a join)."""
    parts = list(relations)
    if not parts:
        return UNKNOWN
    names = [n for p in parts for n in p.names]
    candidates = {n for p in parts for n in p.absent}
    absent = {n for n in candidates if all(p.lacks(n) for p in parts)}
    complete = all(p.complete for p in parts) and len(set(names)) == len(names)
    return Output(frozenset(names), complete, frozenset(absent))


def _star(star: exp.Star, relation: Output) -> Output:
    """``relation`` through the modifiers of a ``*``: EXCLUDE, RENAME (REPLACE keeps names)."""
    names, absent = set(relation.names), set(relation.absent)
    for column in star.args.get("except_") or star.args.get("except") or ():
        names.discard(column.name)
        absent.add(column.name)
    for rename in star.args.get("rename") or ():
        names.discard(rename.this.name)
        absent.add(rename.this.name)
        names.add(rename.alias)
    return Output(frozenset(names), relation.complete, frozenset(absent - names))
