"""Where a data subject is: the tables that hold it, how its rows are recognised in each,
and the tables downstream where it cannot be located.

- **bronze, silver, quarantine** of every pipeline the subject was selected in: the rows
  whose key (or PII column) holds the selector's values. Bronze has the source's column
  names, silver and quarantine the contract's.
- **gold models downstream**, by column lineage from config alone (transform/lineage.py): a
  gold column that is a copy (through any chain of models) of a silver key or PII column
  identifies the subject's rows there, with the keys and PII digests of the subject's silver
  rows. A model where no column does (an aggregate) is reported, not searched.
- **dbt steps** reading those tables are reported: weir does not search dbt's tables.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from weir.forget.rows import Found, Matcher, find
from weir.forget.subject import Selection, Subject
from weir.lake.table import Table
from weir.run.model import table_uri
from weir.run.pipeline import Tables
from weir.spec import Pipeline, Project
from weir.sql import ident
from weir.transform.boundary import Boundary, pii_derived
from weir.transform.lineage import Lineage, model_order


@dataclass
class Target:
    """One table that may hold the subject, and how its rows are recognised."""

    name: str
    """Qualified: ``bronze.<pipeline>``, ``silver.<table>``, ``quarantine.<pipeline>``,
    ``gold.<model>``."""
    table: Table
    matchers: tuple[Matcher, ...]
    wanted: tuple[str, ...] = ()
    """Columns to read from the subject's rows (keys, PII digests)."""
    found: Found = field(default_factory=Found)
    note: str | None = None
    """Why the table cannot be searched, when it cannot."""

    @property
    def columns(self) -> list[str]:
        """The columns the matchers read."""
        return list(dict.fromkeys(c for m in self.matchers for c in m.columns))

    def holds(self, data: pa.Table) -> bool:
        return any(m.count(data) for m in self.matchers)


@dataclass(frozen=True)
class Unlocated:
    """A table downstream of the subject's tables where its rows cannot be told apart."""

    name: str
    kind: str
    """The model's materialization, or ``dbt``."""
    note: str


@dataclass
class Identity:
    """The subject as one silver table's rows show it: their keys and their PII digests."""

    table: str
    pipeline: Pipeline
    key_rows: set[tuple[Any, ...]] = field(default_factory=set)
    digests: dict[str, set[str]] = field(default_factory=dict)


@dataclass
class Scope:
    """What a forget touches, from config alone (no table is read)."""

    pipelines: list[Pipeline]
    silver: dict[str, list[Pipeline]]
    """Silver tables (qualified) of those pipelines, with every pipeline writing each."""
    models: list[str]
    dbt_steps: list[str]

    @property
    def locks(self) -> list[str]:
        """Every node that writes a table the forget may change, or reads one mid-way."""
        writers = {p.name for ps in self.silver.values() for p in ps}
        nodes = writers | {p.name for p in self.pipelines} | set(self.models)
        return sorted(nodes | set(self.dbt_steps))


def scope(project: Project, subject: Subject) -> Scope:
    pipelines = [s.pipeline for s in subject.selections]
    tables = {p.table for p in pipelines}
    silver: dict[str, list[Pipeline]] = {}
    for p in project.pipelines.values():
        if p.table in tables:
            silver.setdefault(f"silver.{p.table}", []).append(p)
    reached = set(silver)
    models = []
    for name in model_order(project.models):
        model = project.models[name]
        if reached & set(model.depends_on):
            models.append(name)
            reached.add(model.table)
    steps = sorted(s.name for s in project.dbt_steps.values() if reached & set(s.depends_on))
    return Scope(pipelines, silver, models, steps)


# ---------------------------------------------------------------- pipelines' tables
def pipeline_targets(project: Project, subject: Subject) -> tuple[list[Target], list[Identity]]:
    """bronze, silver and quarantine targets of the subject's pipelines (silver searched
    already: its rows give the keys and digests that locate the subject downstream)."""
    targets: dict[str, Target] = {}
    identities: dict[str, Identity] = {}
    for selection in subject.selections:
        pipeline = selection.pipeline
        tables = Tables.of(project, pipeline)
        keys, pii = list(pipeline.keys), _pii(pipeline)
        bronze_names = _bronze_names(pipeline)
        bronze = f"bronze.{pipeline.name}"
        columns = [bronze_names.get(c) for c in selection.columns]
        if None in columns:
            note = "its key includes a derived column, which bronze does not hold"
            targets[bronze] = Target(bronze, tables.bronze, (), note=note)
        else:
            wanted = [bronze_names.get(k, k) for k in keys]
            _add(targets, bronze, tables.bronze, selection, wanted, columns)
        silver = _add(targets, f"silver.{pipeline.table}", tables.silver, selection, keys + pii)
        _add(targets, f"quarantine.{pipeline.name}", tables.quarantine, selection, keys)
        identity = identities.setdefault(silver.name, Identity(silver.name, pipeline))
        if selection.columns == tuple(keys):
            identity.key_rows.add(selection.values)
        elif subject.by == "pii":
            identity.digests.setdefault(selection.columns[0], set()).add(selection.values[0])
    for identity in identities.values():
        _learn(identity, targets[identity.table])
    return list(targets.values()), list(identities.values())


def _pii(pipeline: Pipeline) -> list[str]:
    """Silver columns holding digests: the contract's PII and the derived columns over it."""
    return [*pipeline.contract.pii_columns, *(d.name for d in pii_derived(pipeline))]


def _bronze_names(pipeline: Pipeline) -> dict[str, str]:
    """Silver name → bronze column, for the columns bronze holds."""
    names = {c.name: c.source_name for c in pipeline.contract.columns}
    names |= {d.name: d.name for d in Boundary.of(pipeline).derived}
    return names


def _add(
    targets: dict[str, Target],
    name: str,
    table: Table,
    selection: Selection,
    wanted: list[str],
    columns: list[str | None] | None = None,
) -> Target:
    """The target ``name``, with one more matcher for ``selection`` (on ``columns``: the
    selection's columns as this table names them)."""
    target = targets.setdefault(name, Target(name, table, (), tuple(wanted)))
    schema = table.schema()
    if schema is None:
        return target
    names = [c for c in columns if c is not None] if columns else list(selection.columns)
    label = ", ".join(selection.columns)
    matcher = Matcher.of(names, [selection.values], schema, label)
    if matcher is not None and not any(_same(matcher, m) for m in target.matchers):
        target.matchers = (*target.matchers, matcher)
    return target


def _same(a: Matcher, b: Matcher) -> bool:
    return a.columns == b.columns and a.values.equals(b.values)


def _learn(identity: Identity, silver: Target) -> None:
    """Search silver now: the subject's rows there give its keys and PII digests."""
    pipeline = identity.pipeline
    dt = silver.table.dt
    if dt is None or not silver.matchers:
        return
    keys, pii = list(pipeline.keys), _pii(pipeline)
    silver.found = find(dt, silver.matchers, silver.wanted)
    values = silver.found.values
    assert values is not None
    if keys and all(k in values.column_names for k in keys):
        identity.key_rows |= {tuple(r[k] for k in keys) for r in values.select(keys).to_pylist()}
    for column in pii:
        if column in values.column_names:
            digests = {d for d in values.column(column).to_pylist() if d is not None}
            identity.digests.setdefault(column, set()).update(digests)


def elsewhere(project: Project, subject: Subject, identities: Iterable[Identity]) -> list[str]:
    """Where a subject named by a key also shows outside its pipeline: rows of other silver
    tables holding one of its PII digests (a key does not reach them; its PII value does)."""
    if subject.by != "key":
        return []
    own = {s.pipeline.table for s in subject.selections}
    others = sorted(project.pipelines.values(), key=lambda p: p.name)
    notes = []
    for identity in identities:
        for column, digests in sorted(identity.digests.items()):
            for other in others:
                if other.table in own or column not in other.contract.pii_columns:
                    continue
                rows = _holding(Tables.of(project, other).silver, column, digests)
                if rows:
                    notes.append(
                        f"the subject's {column} also appears in {rows} rows of "
                        f"silver.{other.table}, which a key of {identity.pipeline.name} does "
                        f"not reach: `weir forget {column}=…` removes it everywhere"
                    )
    return notes


def _holding(table: Table, column: str, digests: set[str]) -> int:
    schema, dt = table.schema(), table.dt
    if schema is None or dt is None:
        return 0
    matcher = Matcher.of([column], [(d,) for d in digests], schema, column)
    return find(dt, [matcher]).rows if matcher is not None else 0


# ---------------------------------------------------------------- gold
def gold_targets(
    project: Project, lineage: Lineage, scope_: Scope, identities: Iterable[Identity]
) -> tuple[list[Target], list[Unlocated]]:
    """Targets for the models downstream that copy a key or PII column of the subject's
    silver tables; the others (and dbt steps) as :class:`Unlocated`."""
    identities = list(identities)
    targets, unlocated = [], []
    for name in scope_.models:
        model = project.models[name]
        table = Table(table_uri(project, model.table), label="gold")
        schema = table.schema()
        matchers = _gold_matchers(lineage, model.table, identities, schema) if schema else []
        if matchers:
            targets.append(Target(model.table, table, tuple(matchers)))
        elif schema is not None:
            unlocated.append(_unlocated(model.table, model.spec.materialized, name))
    for step in scope_.dbt_steps:
        note = (
            "a dbt step: weir does not search the tables dbt builds; rebuild them "
            "(`dbt run --full-refresh`) once the forget is done"
        )
        unlocated.append(Unlocated(f"dbt.{step}", "dbt", note))
    return targets, unlocated


def _gold_matchers(
    lineage: Lineage, table: str, identities: list[Identity], schema: pa.Schema
) -> list[Matcher]:
    copies = _copies(lineage, table)
    matchers = []
    for identity in identities:
        keys = identity.pipeline.keys
        by_key = [
            next((g for g, o in copies.items() if (identity.table, k) in o), None) for k in keys
        ]
        if keys and None not in by_key and identity.key_rows:
            columns = [g for g in by_key if g is not None]
            label = f"a copy of {identity.table}'s key"
            found = Matcher.of(columns, sorted(identity.key_rows, key=repr), schema, label)
            matchers += [found] if found else []
        for column, digests in sorted(identity.digests.items()):
            for gold in (g for g, o in copies.items() if (identity.table, column) in o):
                label = f"a copy of {identity.table}.{column}"
                found = Matcher.of([gold], [(d,) for d in sorted(digests)], schema, label)
                matchers += [found] if found else []
    return matchers


def _copies(lineage: Lineage, table: str) -> dict[str, set[tuple[str, str]]]:
    """Each column of model ``table`` that copies silver columns: those (table, column)."""
    model = lineage.models.get(table)
    if model is None:
        return {}
    found = {c.column: _origins(lineage, table, c.column, frozenset()) for c in model.columns}
    return {column: origins for column, origins in found.items() if origins}


def _origins(
    lineage: Lineage, table: str, column: str, seen: frozenset[str]
) -> set[tuple[str, str]]:
    model = lineage.models.get(table)
    lineage_of = model.column(column) if model is not None else None
    if lineage_of is None or lineage_of.kind != "copy":
        return set()
    out: set[tuple[str, str]] = set()
    for source in lineage_of.sources:
        if source.kind != "copy":
            continue
        if source.table.startswith("silver."):
            out.add((source.table, source.column))
        elif source.table in lineage.models and source.table not in seen:
            out |= _origins(lineage, source.table, source.column, seen | {table})
    return out


def _unlocated(table: str, materialized: str, name: str) -> Unlocated:
    if materialized == "table":
        note = (
            "no column copies the subject's key or PII: it is recomputed in full on its "
            "next run (its sources changed), without the subject"
        )
    elif materialized == "snapshot":
        note = (
            "no column copies the subject's key or PII: the versions it holds keep what the "
            "subject contributed, and a snapshot is not rebuilt"
        )
    else:
        note = (
            "no column copies the subject's key or PII: its next run recomputes only the "
            "window, so older rows keep what the subject contributed; "
            f"`weir run --full-refresh {name}` recomputes it in full"
        )
    return Unlocated(table, materialized, note)


# ---------------------------------------------------------------- run records
def key_texts(
    con: duckdb.DuckDBPyConnection, pipeline: Pipeline, targets: Iterable[Target]
) -> tuple[list[dict[str, str]], set[str]]:
    """The subject's keys in ``pipeline``'s tables as failing-row samples show them
    (``CAST(… AS VARCHAR)`` per non-PII key column), and those that are text."""
    pii = set(pipeline.contract.pii_columns)
    keys = [k for k in pipeline.keys if k not in pii]
    bronze = _bronze_names(pipeline)
    rows: set[tuple[Any, ...]] = set()
    for target in targets:
        values = target.found.values
        layer = target.name.partition(".")[0]
        if values is None or target.name not in _own_tables(pipeline):
            continue
        names = [bronze.get(k, k) if layer == "bronze" else k for k in keys]
        if keys and all(n in values.column_names for n in names):
            rows |= {tuple(r.values()) for r in values.select(names).to_pylist()}
    if not rows:
        return [], set()
    data = pa.table({k: pa.array([r[i] for r in rows]) for i, k in enumerate(keys)})
    con.register("subject_keys", data)
    try:
        cast = ", ".join(f"CAST({ident(k)} AS VARCHAR)" for k in keys)
        texts = con.execute(f"SELECT {cast} FROM subject_keys").fetchall()
    finally:
        con.unregister("subject_keys")
    strings = {v for r in rows for v in r if isinstance(v, str)}
    return [dict(zip(keys, (str(v) for v in row), strict=True)) for row in texts], strings


def _own_tables(pipeline: Pipeline) -> set[str]:
    return {f"bronze.{pipeline.name}", f"silver.{pipeline.table}", f"quarantine.{pipeline.name}"}
