"""The shapes weir writes, in one place: the layers, where each table lives, and the columns
weir adds to the data at each layer.

Writers (staging, the silver SQL, the load strategies, SCD2) and readers of configuration
alone (lineage, ``weir schema-diff``, OpenLineage) take names, types and locations from here,
so that what lineage reports is what weir writes (tests/test_layout.py compares them).
A leaf module: it imports nothing of weir.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import pyarrow as pa

Layer = Literal["bronze", "silver", "quarantine", "gold"]
LAYERS: tuple[Layer, ...] = get_args(Layer)


def table_uri(lake: str, layer: str, name: str) -> str:
    """Where the table ``layer.name`` lives in the lake at ``lake`` (a path or a URI)."""
    return f"{lake.rstrip('/')}/{layer}/{name}"


def qualified_uri(lake: str, qualified: str) -> str:
    """:func:`table_uri` of a qualified name such as ``gold.mrt_daily``."""
    layer, _, name = qualified.partition(".")
    return table_uri(lake, layer, name)


@dataclass(frozen=True)
class Generated:
    """A column weir writes itself (not from the source or a model)."""

    name: str
    type: pa.DataType
    description: str

    def field(self) -> pa.Field:
        return pa.field(self.name, self.type)


_TS_UTC = pa.timestamp("us", tz="UTC")
_FLAGS = pa.list_(pa.string())

# ---------------------------------------------------------------- every layer below gold
RUN_ID = Generated("_run_id", pa.string(), "id of the run that ingested the row (weir)")
BATCH = Generated("_batch", pa.int64(), "batch number of the ingestion (weir)")
ROW = Generated("_row", pa.int64(), "row number within the batch (weir)")
INGESTED_AT = Generated("_ingested_at", _TS_UTC, "time of ingestion (weir)")
INGEST: tuple[Generated, ...] = (RUN_ID, BATCH, ROW, INGESTED_AT)
"""The columns that identify a row's ingestion, last in bronze, silver and quarantine."""
INGEST_NAMES = tuple(c.name for c in INGEST)

PARSE_ERRORS = Generated(
    "_parse_errors", _FLAGS, "why the source could not parse the row: NULL when it could (weir)"
)
"""In bronze (before the ingestion columns) when the pipeline's ``on_parse_error`` is
``quarantine``."""

SOURCE_FILE = Generated("_source_file", pa.string(), "the file the row came from (files source)")
"""The files source's own column (a source's ``meta_columns``), after the data columns."""

# ---------------------------------------------------------------- change events
# A source that yields change events (``Source.emits_changes``: the files source's ``format:
# debezium``, the ``sql`` source's ``strategy: cdc``) adds these columns after its own meta
# columns: each bronze row is one change of one source row. Silver keeps the same columns of
# the last change applied to each row: ``(_lsn, _seq)`` is the row's applied position, which
# no later batch can take back (lake/changes.py).
OP = Generated(
    "_op",
    pa.string(),
    "the change: insert, update, delete, truncate or snapshot (a snapshot read) (change events)",
)
LSN = Generated(
    "_lsn",
    pa.int64(),
    "log position of the change (PostgreSQL LSN as a number): orders a key's changes (change events)",
)
SEQ = Generated(
    "_seq",
    pa.int64(),
    "order of the change among changes at the same log position, 0 when alone (change events)",
)
TX_ID = Generated("_tx_id", pa.int64(), "id of the source transaction (change events)")
COMMITTED_AT = Generated(
    "_committed_at", _TS_UTC, "when the source committed the change (change events)"
)
CHANGE: tuple[Generated, ...] = (OP, LSN, SEQ, TX_ID, COMMITTED_AT)
"""The change-event columns, in this order, after a change-event source's meta columns."""
CHANGE_NAMES = tuple(c.name for c in CHANGE)

Op = Literal["insert", "update", "delete", "truncate", "snapshot"]
OPS: tuple[Op, ...] = get_args(Op)
"""The values of :data:`OP`. ``snapshot``: a row read by an initial snapshot (Debezium's
``r``), applied like an insert; ``truncate`` carries no row (its data columns are NULL) and
deletes every row whose applied position is below its own."""
UPSERTS: tuple[Op, ...] = ("insert", "update", "snapshot")
"""The operations whose row image is upserted (the others delete)."""

# ---------------------------------------------------------------- silver
SURROGATE_KEY = Generated("surrogate_key", pa.string(), "SHA-256 of the natural key (weir)")
DQ_VALID = Generated("dq_valid", pa.bool_(), "true when no warn-level rule flagged the row (weir)")
DQ_FLAGS = Generated("dq_flags", _FLAGS, "names of the warn-level rules the row breaks (weir)")

# ---------------------------------------------------------------- silver, when deletes are kept (spec/deletes.py)
IS_DELETED = Generated(
    "is_deleted", pa.bool_(), "true when the source deleted the row (soft delete, weir)"
)
DELETED_AT = Generated(
    "deleted_at",
    _TS_UTC,
    "when weir learnt the source deleted the row: NULL while it exists (weir)",
)
SOFT_DELETE: tuple[Generated, ...] = (IS_DELETED, DELETED_AT)
"""Columns a silver table with ``deletes: {action: soft}`` adds after the ingestion columns."""

# ---------------------------------------------------------------- SCD2 (silver scd2, gold snapshot)
VALID_FROM = Generated(
    "valid_from", pa.timestamp("us"), "start of the version's validity (SCD2, weir)"
)
VALID_TO = Generated("valid_to", pa.timestamp("us"), "end of the version's validity (SCD2, weir)")
IS_CURRENT = Generated("is_current", pa.bool_(), "true for a key's current version (SCD2, weir)")
ROW_HASH = Generated("_row_hash", pa.string(), "hash of the tracked columns (SCD2, weir)")
SCD2_WRITTEN = (VALID_FROM, ROW_HASH, SURROGATE_KEY, VALID_TO, IS_CURRENT)
"""The columns an SCD2 table adds to each version, in the order they are written; incoming
columns of these names are replaced."""
SCD2_NAMES = tuple(c.name for c in SCD2_WRITTEN)

# ---------------------------------------------------------------- quarantine
REASONS = Generated("_reasons", _FLAGS, "why the row was quarantined: the rules it breaks (weir)")
QUARANTINED_AT = Generated("_quarantined_at", _TS_UTC, "when the row was quarantined (weir)")

# ---------------------------------------------------------------- transient, inside the silver SQL
ERRORS = "_errors"
INFOS = "_infos"
SEVERITY_COLUMN = {"error": ERRORS, "warn": DQ_FLAGS.name, "info": INFOS}
"""Where the silver SQL collects the names of the rules a row breaks, by severity."""

SILVER_GENERATED = frozenset(
    c.name for c in (SURROGATE_KEY, DQ_VALID, DQ_FLAGS, *SCD2_WRITTEN, *SOFT_DELETE)
)
"""Columns weir adds to silver (any load strategy)."""

DESCRIPTIONS = {
    c.name: c.description
    for c in (
        *INGEST,
        PARSE_ERRORS,
        SOURCE_FILE,
        *CHANGE,
        SURROGATE_KEY,
        DQ_VALID,
        DQ_FLAGS,
        *SCD2_WRITTEN,
        *SOFT_DELETE,
        REASONS,
        QUARANTINED_AT,
    )
}


# ---------------------------------------------------------------- whole tables
# ``values`` are the data columns (a pipeline's contract and derived columns as silver holds
# them, or a model's output); ``source_meta`` are the columns a source adds (``_source_file``).


def _fields(columns: tuple[Generated, ...]) -> list[pa.Field]:
    return [c.field() for c in columns]


def bronze_schema(
    source: Sequence[pa.Field], source_meta: Sequence[pa.Field], *, parse_errors: bool
) -> pa.Schema:
    """Bronze: the source's columns as delivered (all nullable), the source's own columns,
    ``_parse_errors`` when parse problems are quarantined, then the ingestion columns."""
    fields = [f.with_nullable(True) for f in source] + list(source_meta)
    if parse_errors:
        fields.append(PARSE_ERRORS.field())
    return pa.schema(fields + _fields(INGEST))


def silver_schema(
    values: Sequence[pa.Field],
    source_meta: Sequence[pa.Field],
    *,
    scd2: bool,
    soft_deletes: bool = False,
) -> pa.Schema:
    """Silver by load strategy. SCD2 tables append the version columns after the row; soft
    deletes add :data:`SOFT_DELETE` after the ingestion columns."""
    flags = _fields((DQ_VALID, DQ_FLAGS))
    tail = list(source_meta) + _fields(INGEST) + (_fields(SOFT_DELETE) if soft_deletes else [])
    if scd2:
        return pa.schema([*values, *flags, *tail, *_fields(SCD2_WRITTEN)])
    return pa.schema([*values, SURROGATE_KEY.field(), *flags, *tail])


def quarantine_schema(values: Sequence[pa.Field], source_meta: Sequence[pa.Field]) -> pa.Schema:
    """Quarantine: the rows as silver would hold them, why they were held back, and when."""
    reasons = _fields((REASONS, DQ_FLAGS))
    return pa.schema([*values, *reasons, *source_meta, *_fields(INGEST), QUARANTINED_AT.field()])


def snapshot_schema(values: Sequence[pa.Field]) -> pa.Schema:
    """A gold ``snapshot`` model: the model's columns, then the version columns."""
    return pa.schema([*values, *_fields(SCD2_WRITTEN)])
