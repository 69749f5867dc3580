"""Lineage of a project, from its configuration alone (no table is read).

Table level: ``source.<pipeline>`` → ``bronze.<pipeline>`` → ``silver.<table>`` (and
``quarantine.<pipeline>``) → ``gold.<model>`` → dbt nodes.

Column level: every output column of every model, with the table columns it derives from and
how (``copy``, ``transform``, ``aggregate``). The schemas sqlglot needs are built without I/O:
silver tables from their contracts, derived columns and weir's own columns; gold models from
their SQL in dependency order, so ``SELECT *`` (also over joins) expands to real columns.
Silver columns then lead back to the pipeline's source columns through the contract (a
``physicalName`` is a rename). SQL that sqlglot cannot follow yields ``unknown`` columns with
the reason, never an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.lineage import Node as SqlNode
from sqlglot.lineage import to_node
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import build_scope
from sqlglot.schema import MappingSchema

from weir import layout
from weir.errors import UsageError
from weir.hints import did_you_mean
from weir.spec import modelsql
from weir.spec.deletes import by_keys
from weir.spec.types import arrow_type, duckdb_type, type_name
from weir.toposort import topological

if TYPE_CHECKING:
    from weir.spec import Pipeline, Project
    from weir.spec.loaded import DbtStep, Model
    from weir.transform.dbt_graph import DbtGraph

Kind = Literal["copy", "transform", "aggregate", "generated", "source", "unknown"]
"""How a column gets its value: ``copy`` (unchanged, maybe renamed), ``transform`` (an
expression), ``aggregate`` (an aggregate function), ``generated`` (weir writes it: run ids,
quality flags, keys, SCD2 validity), ``source`` (a column as the source delivers it),
``unknown`` (sqlglot could not follow the SQL; ``reason`` says why)."""
DbtGraphOf = Callable[["Project", "DbtStep"], "DbtGraph"]
"""Gives a dbt step's graph (``weir.run.dbt.dbt_graph``, which may run ``dbt parse``)."""
NodeKind = Literal["source", "bronze", "silver", "quarantine", "gold", "dbt"]

DIALECT = "duckdb"
_RANK: dict[Kind, int] = {"copy": 0, "transform": 1, "aggregate": 2}
SNAPSHOT_COLUMNS = layout.SCD2_NAMES
# sqlglot raises these (not only SqlglotError) on SQL its optimizer does not cover
_ANALYSIS_ERRORS = (SqlglotError, ValueError, KeyError, IndexError, TypeError, AttributeError)


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    """DuckDB type name; ``UNKNOWN`` when sqlglot cannot tell."""


@dataclass(frozen=True)
class SourceColumn:
    """One input of an output column: a column of a qualified table, and how it is used."""

    table: str
    column: str
    kind: Kind


@dataclass(frozen=True)
class ColumnLineage:
    table: str
    column: str
    kind: Kind
    sources: tuple[SourceColumn, ...] = ()
    expression: str | None = None
    """The SQL that computes the column (the first expression that is not a plain column)."""
    reason: str | None = None
    """Why the lineage is unknown, or what weir writes into a generated column."""

    @property
    def renamed_from(self) -> str | None:
        """The source column's name when a copy renames it."""
        if self.kind == "copy" and len(self.sources) == 1:
            source = self.sources[0].column
            return source if source != self.column else None
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "column": self.column,
            "kind": self.kind,
            "sources": [
                {"table": s.table, "column": s.column, "kind": s.kind} for s in self.sources
            ],
            "expression": self.expression,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ModelLineage:
    name: str
    table: str
    path: str
    columns: tuple[ColumnLineage, ...]
    schema: tuple[Column, ...]
    error: str | None = None
    """Set when sqlglot could not analyse the model at all."""

    def column(self, name: str) -> ColumnLineage | None:
        return next((c for c in self.columns if c.column == name), None)


@dataclass(frozen=True)
class Node:
    id: str
    kind: NodeKind
    label: str = ""
    """Extra words shown beside the id (source kind, dbt resource type)."""
    path: str | None = None


@dataclass(frozen=True)
class Graph:
    nodes: Mapping[str, Node]
    edges: tuple[tuple[str, str], ...]
    """(upstream id, downstream id)."""

    def parents(self, node: str) -> list[str]:
        return [a for a, b in self.edges if b == node]

    def children(self, node: str) -> list[str]:
        return [b for a, b in self.edges if a == node]

    def upstream(self, node: str) -> list[str]:
        return _reach(node, self.parents)

    def downstream(self, node: str) -> list[str]:
        return _reach(node, self.children)

    def roots(self) -> list[str]:
        targets = {b for _, b in self.edges}
        return [n for n in self.nodes if n not in targets]


@dataclass(frozen=True)
class ColumnNode:
    """One step of a column's upstream chain."""

    table: str
    column: str
    kind: Kind
    expression: str | None = None
    note: str | None = None
    upstream: tuple[ColumnNode, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.table}.{self.column}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "column": self.column,
            "kind": self.kind,
            "expression": self.expression,
            "note": self.note,
            "upstream": [u.as_dict() for u in self.upstream],
        }


@dataclass(frozen=True)
class Lineage:
    project: Project
    graph: Graph
    schemas: Mapping[str, tuple[Column, ...]]
    """Columns of every table weir knows: source.*, bronze.*, silver.*, quarantine.*, gold.*."""
    models: Mapping[str, ModelLineage]
    """By table id, ``gold.<model>``."""
    notes: tuple[str, ...] = ()
    """What could not be included (a dbt graph that failed to load)."""

    def node(self, table: str) -> Node:
        if table in self.graph.nodes:
            return self.graph.nodes[table]
        raise UsageError(
            f"no table {table!r} in the lineage of this project",
            hint=did_you_mean(table, self.graph.nodes) or "the project has no tables yet",
        )

    def column(self, table: str, column: str) -> ColumnLineage:
        """The lineage of one column of a silver table or a model."""
        if table in self.models:
            found = self.models[table].column(column)
            if found is not None:
                return found
        elif table.startswith("silver.") and table in self.schemas:
            if column in {c.name for c in self.schemas[table]}:
                return silver_column(self.project, table, column)
        else:
            self.node(table)
            raise UsageError(
                f"column lineage covers silver tables and models, not {table!r}",
                hint="pass silver.<table>.<column> or gold.<model>.<column>",
            )
        names = [c.name for c in self.schemas.get(table, ())]
        raise UsageError(
            f"{table} has no column {column!r}",
            hint=did_you_mean(column, names) or f"{table} has no known columns",
        )

    def chain(self, table: str, column: str) -> ColumnNode:
        """The column's upstream, recursively, down to the source columns of pipelines."""
        return self._chain(self.column(table, column), frozenset())

    def _chain(self, lineage: ColumnLineage, seen: frozenset[str]) -> ColumnNode:
        key = f"{lineage.table}.{lineage.column}"
        upstream: list[ColumnNode] = []
        if lineage.table.startswith("silver."):
            upstream += _source_nodes(self.project, lineage)
        for src in lineage.sources:
            if (
                src.table.startswith(("gold.", "silver."))
                and f"{src.table}.{src.column}" not in seen
            ):
                try:
                    parent = self.column(src.table, src.column)
                except UsageError:
                    upstream.append(ColumnNode(src.table, src.column, "unknown", note="not found"))
                    continue
                upstream.append(self._chain(parent, seen | {key}))
        note = lineage.reason
        if note is None and lineage.renamed_from:
            note = f"renamed from {lineage.renamed_from}"
        return ColumnNode(
            lineage.table, lineage.column, lineage.kind, lineage.expression, note, tuple(upstream)
        )


def _stronger(a: Kind, b: Kind) -> Kind:
    return a if _RANK.get(a, 0) >= _RANK.get(b, 0) else b


def _reach(start: str, step: Callable[[str], list[str]]) -> list[str]:
    seen: list[str] = []
    todo = list(step(start))
    while todo:
        node = todo.pop(0)
        if node not in seen and node != start:
            seen.append(node)
            todo += step(node)
    return seen


# ---------------------------------------------------------------- the whole project
def project_lineage(project: Project, *, dbt: DbtGraphOf | None = None) -> Lineage:
    """Table graph, schemas and column lineage of every model; reads no data. dbt steps
    show their own nodes when ``dbt`` gives their graphs (``weir.run.dbt.dbt_graph``, which
    may run ``dbt parse``); without it each step is one node."""
    schemas: dict[str, tuple[Column, ...]] = {}
    for pipeline in project.pipelines.values():
        schemas[f"source.{pipeline.name}"] = source_schema(pipeline)
        schemas[f"bronze.{pipeline.name}"] = bronze_schema(pipeline)
        schemas[f"silver.{pipeline.table}"] = silver_schema(pipeline)
        schemas[f"quarantine.{pipeline.name}"] = quarantine_schema(pipeline)
    models: dict[str, ModelLineage] = {}
    for name in model_order(project.models):
        model = project.models[name]
        result = model_lineage(model, schemas)
        models[model.table] = result
        schemas[model.table] = result.schema
    tables = table_graph(project, dbt=dbt)
    schemas.update(tables.schemas)
    graph = Graph(tables.nodes, tuple(tables.edges))
    return Lineage(project, graph, schemas, models, tuple(tables.notes))


def model_order(models: Mapping[str, Model]) -> list[str]:
    """Model names, every model after the models it reads (the loader rejected cycles)."""
    return topological({name: model.reads_models for name, model in models.items()})


# ---------------------------------------------------------------- schemas (no I/O)
def _duck(arrow: pa.DataType) -> str:
    if pa.types.is_list(arrow) or pa.types.is_large_list(arrow):
        return f"{_duck(arrow.value_type)}[]"
    try:
        return duckdb_type(type_name(arrow))
    except ValueError:
        return "UNKNOWN"


def _columns(schema: pa.Schema) -> tuple[Column, ...]:
    return tuple(Column(f.name, _duck(f.type)) for f in schema)


def _source_fields(pipeline: Pipeline) -> list[pa.Field]:
    return [pa.field(c.source_name, arrow_type(c.physicalType)) for c in pipeline.contract.columns]


def _source_meta(pipeline: Pipeline) -> list[pa.Field]:
    """The source's own columns, with the change-event columns when it yields them."""
    return pipeline.source_kind.meta_fields(pipeline.source_config)


def source_schema(pipeline: Pipeline) -> tuple[Column, ...]:
    """The columns as the source delivers them: physical names, contract types."""
    return _columns(pa.schema(_source_fields(pipeline)))


def bronze_schema(pipeline: Pipeline) -> tuple[Column, ...]:
    parse_errors = pipeline.spec.on_parse_error == "quarantine"
    return _columns(
        layout.bronze_schema(
            _source_fields(pipeline), _source_meta(pipeline), parse_errors=parse_errors
        )
    )


def _values(pipeline: Pipeline) -> list[pa.Field]:
    pii = set(pipeline.contract.pii_columns)
    contract = [
        pa.field(c.name, pa.string() if c.name in pii else arrow_type(c.physicalType))
        for c in pipeline.contract.columns
    ]
    derived = [pa.field(d.name, arrow_type(d.type)) for d in pipeline.spec.transform.derived]
    return contract + derived


def silver_schema(pipeline: Pipeline) -> tuple[Column, ...]:
    """Silver as weir writes it (transform/silver.py, and lake/scd2.py for scd2)."""
    scd2 = pipeline.spec.load.strategy == "scd2"
    kind, config = pipeline.source_kind, pipeline.source_config
    deletes = kind.deletes(config)  # change events' own (detect: log), or reconciliation's
    if not kind.emits_changes(config):
        deletes = by_keys(deletes, emits_changes=False)
    soft = deletes is not None and deletes.action == "soft"
    return _columns(
        layout.silver_schema(
            _values(pipeline), _source_meta(pipeline), scd2=scd2, soft_deletes=soft
        )
    )


def quarantine_schema(pipeline: Pipeline) -> tuple[Column, ...]:
    return _columns(layout.quarantine_schema(_values(pipeline), _source_meta(pipeline)))


_GENERATED = layout.DESCRIPTIONS


def silver_column(project: Project, table: str, column: str) -> ColumnLineage:
    """How a silver column is made: a contract column, a derived expression or weir's own."""
    pipelines = [p for p in project.pipelines.values() if f"silver.{p.table}" == table]
    for pipeline in pipelines:
        contract = {c.name: c for c in pipeline.contract.columns}
        if column in contract:
            prop = contract[column]
            src = SourceColumn(f"source.{pipeline.name}", prop.source_name, "copy")
            if prop.pii:
                return ColumnLineage(
                    table,
                    column,
                    "transform",
                    (SourceColumn(src.table, src.column, "transform"),),
                    "sha256(salt || value)",
                    "PII: salted SHA-256 of the source value",
                )
            renamed = (
                f"contract {pipeline.contract.id} renames source column {prop.source_name} "
                f"→ {column} (physicalName)"
                if prop.source_name != column
                else None
            )
            return ColumnLineage(table, column, "copy", (src,), reason=renamed)
        for derived in pipeline.spec.transform.derived:
            if derived.name == column:
                refs = _expression_columns(derived.sql)
                sources = tuple(SourceColumn(table, c, "transform") for c in refs if c in contract)
                return ColumnLineage(table, column, "transform", sources, derived.sql)
        if column == "surrogate_key" and pipeline.spec.load.strategy != "scd2":
            keys = tuple(SourceColumn(table, k, "transform") for k in pipeline.keys)
            return ColumnLineage(table, column, "generated", keys, reason=_GENERATED[column])
    reason = _GENERATED.get(column, "added by weir")
    return ColumnLineage(table, column, "generated", reason=reason)


def _expression_columns(sql: str) -> list[str]:
    try:
        parsed = sqlglot.parse_one(sql, read=DIALECT)
    except SqlglotError:
        return []
    return list(dict.fromkeys(c.name for c in parsed.find_all(exp.Column)))


def _source_nodes(project: Project, lineage: ColumnLineage) -> list[ColumnNode]:
    """Source columns of a silver column, with the contract's rename and the pipeline."""
    nodes = []
    for src in lineage.sources:
        if not src.table.startswith("source."):
            continue
        pipeline = project.pipelines[src.table.partition(".")[2]]
        kind = pipeline.spec.extract.get("source", "?")
        note = f"{kind} source of pipeline {pipeline.name}, landed as is in bronze.{pipeline.name}"
        nodes.append(ColumnNode(src.table, src.column, "source", note=note))
    return nodes


# ---------------------------------------------------------------- models
def model_lineage(model: Model, schemas: Mapping[str, Sequence[Column]]) -> ModelLineage:
    """Column lineage of one model; ``schemas`` holds silver and the models it reads."""
    table = model.table
    query = modelsql.rewrite(model.sql.expression)
    _qualify_tables(query, model.depends_on)
    mapping: dict[str, dict[str, dict[str, str]]] = {"silver": {}, "gold": {}}
    for qualified, known in schemas.items():
        layer, _, name = qualified.partition(".")
        if layer in mapping:
            mapping[layer][name] = {c.name: c.type for c in known}
    try:
        schema = MappingSchema(mapping, dialect=DIALECT)
        qualified_query: exp.Expression = qualify(
            query, schema=schema, dialect=DIALECT, validate_qualify_columns=False, identify=False
        )
        annotate_types(qualified_query, schema=schema, dialect=DIALECT)
        scope = build_scope(qualified_query)
        if scope is None:
            raise SqlglotError("no SELECT scope")
    except (*_ANALYSIS_ERRORS, RecursionError) as exc:
        return _unanalysed(model, query, f"sqlglot could not analyse the model: {exc}")
    columns: list[ColumnLineage] = []
    output: list[Column] = []
    assert isinstance(qualified_query, exp.Query)
    for select in qualified_query.selects:
        name = select.alias_or_name
        try:
            node = to_node(name, scope, DIALECT)
            columns.append(_classify(table, name, node, schemas))
        except (*_ANALYSIS_ERRORS, RecursionError) as exc:
            columns.append(ColumnLineage(table, name, "unknown", reason=f"sqlglot: {exc}"))
        output.append(Column(name, _type_of(select)))
    if model.spec.materialized == "snapshot":
        columns, output = _snapshot_columns(model, columns, output)
    return ModelLineage(model.name, table, str(model.path), tuple(columns), tuple(output))


def _qualify_tables(query: exp.Query, depends_on: Iterable[str]) -> None:
    """Give unqualified table names their layer, as the loader resolved them."""
    layers = {dep.partition(".")[2]: dep.partition(".")[0] for dep in depends_on}
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    for table in query.find_all(exp.Table):
        if not table.db and table.name not in ctes and table.name in layers:
            table.set("db", exp.to_identifier(layers[table.name]))


def _type_of(select: exp.Expression) -> str:
    dtype = select.type
    if dtype is None or dtype.this == exp.DataType.Type.UNKNOWN:
        return "UNKNOWN"
    return dtype.sql(dialect=DIALECT)


def _unanalysed(model: Model, query: exp.Query, reason: str) -> ModelLineage:
    names = [s.alias_or_name for s in query.selects if not isinstance(s, exp.Star)]
    columns = tuple(ColumnLineage(model.table, n, "unknown", reason=reason) for n in names)
    schema = tuple(Column(n, "UNKNOWN") for n in names)
    return ModelLineage(model.name, model.table, str(model.path), columns, schema, reason)


@dataclass
class _Walk:
    schemas: Mapping[str, Sequence[Column]]
    sources: dict[tuple[str, str], Kind] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    expression: str | None = None
    kind: Kind = "copy"
    """The strongest step anywhere in the column's tree."""


def _classify(
    table: str, column: str, node: SqlNode, schemas: Mapping[str, Sequence[Column]]
) -> ColumnLineage:
    walk = _Walk(schemas)
    _visit(walk, node, "copy")
    sources = tuple(SourceColumn(t, c, k) for (t, c), k in walk.sources.items())
    if walk.problems:
        reason = "; ".join(dict.fromkeys(walk.problems))
        return ColumnLineage(table, column, "unknown", sources, walk.expression, reason)
    return ColumnLineage(table, column, walk.kind, sources, walk.expression)


def _visit(walk: _Walk, node: SqlNode, kind: Kind) -> None:
    expr = node.expression
    if isinstance(expr, exp.Table):
        qualified = f"{expr.db}.{expr.name}" if expr.db else expr.name
        name = node.name.rpartition(".")[2]
        known = {c.name for c in walk.schemas.get(qualified, ())}
        if name == "*":
            walk.problems.append(f"cannot expand * over {qualified} (its columns are unknown)")
        elif name not in known:
            walk.problems.append(f"{qualified} has no column {name!r}")
        else:
            previous = walk.sources.get((qualified, name), "copy")
            walk.sources[(qualified, name)] = _stronger(previous, kind)
        return
    if isinstance(expr, exp.Star | exp.Placeholder | exp.Query):
        walk.problems.append(f"cannot resolve column {node.name!r}")
        return
    own = expr.this if isinstance(expr, exp.Alias) else expr
    step = _step(own)
    if step != "copy" and walk.expression is None:
        walk.expression = own.sql(dialect=DIALECT)
    kind = _stronger(kind, step)
    walk.kind = _stronger(walk.kind, kind)
    for child in node.downstream:
        _visit(walk, child, kind)


def _step(own: exp.Expression) -> Kind:
    if isinstance(own, exp.Column):
        return "copy"
    if isinstance(own, exp.Coalesce) and _using_key(own):
        return "copy"
    if own.find(exp.AggFunc) is not None:
        return "aggregate"
    return "transform"


def _using_key(own: exp.Coalesce) -> bool:
    """``COALESCE(a.k, b.k)``: how sqlglot spells the key of a ``JOIN … USING (k)``."""
    args = [own.this, *own.expressions]
    return all(isinstance(a, exp.Column) for a in args) and len({a.name for a in args}) == 1


def _snapshot_columns(
    model: Model, columns: list[ColumnLineage], output: list[Column]
) -> tuple[list[ColumnLineage], list[Column]]:
    """A snapshot adds its versioning columns after the SELECT's (replacing same-named ones)."""
    table, spec = model.table, model.spec
    kept = [c for c in columns if c.column not in SNAPSHOT_COLUMNS]
    out = [c for c in output if c.name not in SNAPSHOT_COLUMNS]
    by_name = {c.column: c for c in columns}
    keys = [s for k in spec.unique_key if k in by_name for s in by_name[k].sources]
    updated = spec.snapshot.updated_at if spec.snapshot else None
    if updated and updated in by_name:
        valid_from = ColumnLineage(
            table, "valid_from", "copy", by_name[updated].sources, reason=f"from {updated}"
        )
    else:
        valid_from = ColumnLineage(
            table, "valid_from", "generated", reason="start of the run that opened the version"
        )
    surrogate_key = ColumnLineage(
        table,
        "surrogate_key",
        "generated",
        tuple(SourceColumn(s.table, s.column, "transform") for s in keys),
        reason="SHA-256 of unique_key and valid_from (weir)",
    )
    own = {"valid_from": valid_from, "surrogate_key": surrogate_key}
    added = [
        own.get(c.name) or ColumnLineage(table, c.name, "generated", reason=c.description)
        for c in layout.SCD2_WRITTEN
    ]
    out += _columns(layout.snapshot_schema([]))
    return kept + added, out


# ---------------------------------------------------------------- table graph
@dataclass
class TableGraph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    schemas: dict[str, tuple[Column, ...]] = field(default_factory=dict)
    """Columns of dbt nodes, as their dbt project documents them (types unknown)."""
    notes: list[str] = field(default_factory=list)


def table_graph(project: Project, *, dbt: DbtGraphOf | None = None) -> TableGraph:
    """Tables and who feeds whom; ``dbt=False`` leaves dbt steps out (their graph may need
    ``dbt parse``, which runs their project)."""
    out = TableGraph()
    nodes, edges = out.nodes, out.edges
    for p in project.pipelines.values():
        source, bronze = f"source.{p.name}", f"bronze.{p.name}"
        silver, quarantine = f"silver.{p.table}", f"quarantine.{p.name}"
        nodes[source] = Node(source, "source", str(p.spec.extract.get("source", "")), str(p.path))
        nodes[bronze] = Node(bronze, "bronze")
        nodes.setdefault(silver, Node(silver, "silver", f"contract {p.contract.id}"))
        nodes[quarantine] = Node(quarantine, "quarantine")
        edges += [(source, bronze), (bronze, silver), (bronze, quarantine)]
    for model in project.models.values():
        nodes[model.table] = Node(model.table, "gold", model.spec.materialized, str(model.path))
        edges += [(dep, model.table) for dep in model.depends_on]
    _dbt(project, out, dbt)
    out.edges = list(dict.fromkeys(edges))
    return out


def _dbt(project: Project, out: TableGraph, graph_of: DbtGraphOf | None) -> None:
    """dbt steps: their dbt nodes when ``graph_of`` gives the step's graph, else the step as
    one node (with a note saying why). ``weir lineage`` passes ``weir.run.dbt.dbt_graph``;
    without it (or without dbt installed) a step stays one node."""
    steps: Mapping[str, Any] = project.dbt_steps
    for name, step in steps.items():
        step_id = f"dbt.{getattr(step, 'name', name)}"
        try:
            if graph_of is None:
                raise LookupError("the dbt graph was not asked for")
            _dbt_nodes(graph_of(project, step), step_id, out)
        except Exception as exc:  # an optional view: a broken dbt project must not hide the rest
            out.notes.append(f"{step_id}: dbt graph unavailable ({type(exc).__name__}: {exc})")
            out.nodes[step_id] = Node(step_id, "dbt", "dbt step", str(getattr(step, "path", "")))
            out.edges += [(dep, step_id) for dep in getattr(step, "depends_on", ()) or ()]


_DBT_CHECKS = ("test", "unit_test")
"""dbt resources that check data rather than make it: not part of the lineage."""


def _attr(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, Mapping) else getattr(obj, name, None)


def _dbt_nodes(graph: Any, step_id: str, out: TableGraph) -> None:
    ids: dict[str, str] = {}
    for unique_id, info in dict(_attr(graph, "nodes") or {}).items():
        resource = str(_attr(info, "resource_type") or "")
        if resource in _DBT_CHECKS:
            continue
        node_id = f"dbt:{unique_id}"
        ids[unique_id] = node_id
        out.nodes[node_id] = Node(node_id, "dbt", f"{resource} in {step_id}".strip())
        columns = tuple(_attr(info, "columns") or ())
        if columns:
            out.schemas[node_id] = tuple(Column(str(c), "UNKNOWN") for c in columns)
        weir_table = _attr(info, "weir_table")
        if weir_table:
            out.edges.append((str(weir_table), node_id))
    for parent, child in _attr(graph, "edges") or ():
        if parent in ids and child in ids:
            out.edges.append((ids[parent], ids[child]))
