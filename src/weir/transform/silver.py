"""The SQL that turns one bronze batch into silver and quarantine rows, in one scan.

``flagged`` is built once per batch from the ``input`` relation: renamed and typed per
contract, derived columns added, and every row rule evaluated in the same projection — but
the rules comparing rows (``unique``), judged on the finished table (``compared``). The
silver and quarantine selects then read that one materialised result.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pyarrow as pa

from weir import layout
from weir.quality.compile import compile_checks
from weir.quality.rules import CompiledChecks
from weir.sources.base import PARSE_ERRORS
from weir.spec import Pipeline, sqlexpr
from weir.spec.deletes import by_keys
from weir.spec.types import arrow_type, duckdb_type
from weir.sql import ident, literal
from weir.transform.boundary import PII_FLAGS, Boundary

META = layout.INGEST_NAMES
CHANGE_REQUIRED = (layout.OP.name, layout.LSN.name)
"""Change-event columns every event needs (implicit error-level ``<column>.required``)."""
_UPSERT = f"_op IN ({', '.join(literal(op) for op in layout.UPSERTS)}) OR _op IS NULL"
"""The change events whose images the rules judge (insert, update, snapshot)."""


@dataclass(frozen=True)
class SilverSql:
    pipeline: Pipeline
    checks: CompiledChecks
    extra: tuple[str, ...]
    """Bronze columns outside the contract carried through (evolved, or source meta)."""
    boundary: Boundary
    """What happened before bronze: PII columns arrive as digests, some derived columns and
    rule verdicts arrive computed (transform/boundary.py)."""
    parsed: bool = False
    """Whether bronze carries ``_parse_errors``: the reasons why the source could not parse
    some of a row's values; such rows are quarantined with those reasons."""
    changes: bool = False
    """Whether bronze holds change events (``Source.emits_changes``): the rules check the
    row images that are upserted, not what a delete or a truncate carries."""
    soft_deletes: bool = False
    """Whether key reconciliation soft-deletes silver's rows (lake/reconcile.py): every row
    a batch loads is live (``is_deleted`` false, ``deleted_at`` NULL), a key that comes
    back from the source too."""

    @classmethod
    def plan(cls, pipeline: Pipeline, bronze: pa.Schema) -> SilverSql:
        # a version needs its start: rows without one go to quarantine, never into silver
        scd2 = pipeline.spec.load.scd2
        required = [scd2.valid_from] if scd2 is not None and scd2.valid_from else []
        changes = pipeline.source_kind.emits_changes(pipeline.source_config)
        if changes:  # an event without its operation or position cannot be applied
            required += list(CHANGE_REQUIRED)
        checks = compile_checks(pipeline.contract, pipeline.keys, required)
        boundary = Boundary.of(pipeline, checks)
        known = {c.source_name for c in pipeline.contract.columns} | set(META) | boundary.outputs
        known.add(PARSE_ERRORS)
        extra = tuple(f.name for f in bronze if f.name not in known)
        parsed = PARSE_ERRORS in bronze.names
        deletes = by_keys(
            pipeline.source_kind.deletes(pipeline.source_config), emits_changes=changes
        )
        soft = deletes is not None and deletes.action == "soft"
        checks = boundary.silver_checks(checks)
        return cls(pipeline, checks, extra, boundary, parsed, changes, soft)

    def flagged(self) -> str:
        contract = self.pipeline.contract
        renamed = [
            f"{ident(c.source_name)} AS {ident(c.name)}"  # a digest already (boundary.py)
            if c.pii
            else f"CAST({ident(c.source_name)} AS {duckdb_type(c.physicalType)}) AS {ident(c.name)}"
            for c in contract.columns
        ]
        at_boundary = {d.name for d in self.boundary.derived}
        renamed += [ident(d) for d in sorted(at_boundary)]
        if self.boundary.rules:
            renamed.append(ident(PII_FLAGS))
        renamed += [ident(m) for m in (*self.extra, *META)]
        if self.parsed:
            renamed.append(ident(PARSE_ERRORS))
        # the expression as sqlglot re-generates it from the tree checked at load
        derived = [
            f"CAST(({sqlexpr.scalar(d.sql)}) AS {duckdb_type(d.type)}) AS {ident(d.name)}"
            for d in self.pipeline.spec.transform.derived
            if d.name not in at_boundary
        ]
        derived_sql = ", " + ", ".join(derived) if derived else ""
        # the rules comparing rows (unique) are judged on the finished table (compared())
        flagged = (
            f"WITH renamed AS (SELECT {', '.join(renamed)} FROM input), "
            f"derived AS (SELECT *{derived_sql} FROM renamed) "
            f"SELECT *, {self.checks.flag_columns(comparing=False)} FROM derived"
        )
        if self.changes:
            flagged = self._events_only(flagged)
        if not self.parsed:
            return flagged
        # the source's parse reasons come first among a row's errors
        errors = ident(PARSE_ERRORS)
        return (
            f"SELECT * EXCLUDE ({errors}, _errors), "
            f"list_concat(coalesce({errors}, []), _errors) AS _errors FROM ({flagged})"
        )

    def compared(self) -> list[str]:
        """The statements that add the verdicts of the rules comparing rows (``unique``) to
        ``flagged`` once it is made. Change events: they judge the images that are
        upserted, each key's last (``_compared_images``)."""
        if not self.changes:
            return self.checks.compared("flagged", "SELECT * FROM flagged")
        return self.checks.compared("flagged", self._compared_images("flagged"), _UPSERT)

    def _events_only(self, flagged: str) -> str:
        """Change events: the rules judge the images that are upserted (insert, update,
        snapshot). A delete is held back only without its key (it could not be applied), a
        truncate never; either without its operation or position."""
        kept = [f"{c}.required" for c in CHANGE_REQUIRED]
        keyed = [*kept, *(f"{k}.required" for k in self.pipeline.keys)]

        def only(names: list[str]) -> str:
            return f"list_filter(_errors, lambda e: e IN ({', '.join(map(literal, names))}))"

        none = "CAST([] AS VARCHAR[])"
        return (
            "SELECT * EXCLUDE (_errors, dq_flags, _infos), "
            f"CASE WHEN {_UPSERT} THEN _errors WHEN _op = 'delete' THEN {only(keyed)} "
            f"ELSE {only(kept)} END AS _errors, "
            f"CASE WHEN {_UPSERT} THEN dq_flags ELSE {none} END AS dq_flags, "
            f"CASE WHEN {_UPSERT} THEN _infos ELSE {none} END AS _infos FROM ({flagged})"
        )

    def images(self) -> str:
        """Change events: the valid image each key upserts last in the batch (what
        table-level rules, such as ``row_count``, judge)."""
        return self._last_images("flagged", "len(_errors) = 0 AND ")

    def _compared_images(self, relation: str) -> str:
        """What the rules comparing rows (``unique``) read of change events: the last
        upserted image of each key — or, when every such rule's columns are part of the
        key, just the keys that upsert (the same values, found by a hash instead of a sort
        of every event by key and position)."""
        keys = set(self.pipeline.keys)
        compared = [r for r in self.checks.row if r.kind == "unique"]
        if compared and all(set(r.columns) <= keys for r in compared):
            upserts = ", ".join(literal(op) for op in layout.UPSERTS)
            part = ", ".join(ident(k) for k in self.pipeline.keys)
            return f"SELECT DISTINCT {part} FROM {relation} WHERE _op IN ({upserts})"
        return self._last_images(relation)

    def _last_images(self, relation: str, valid: str = "") -> str:
        upserts = ", ".join(literal(op) for op in layout.UPSERTS)
        part = ", ".join(ident(k) for k in self.pipeline.keys)
        return (
            f"SELECT * FROM {relation} WHERE {valid}_op IN ({upserts}) "
            f"QUALIFY row_number() OVER (PARTITION BY {part} "
            "ORDER BY _lsn DESC, _seq DESC NULLS LAST, _batch DESC, _row DESC) = 1"
        )

    def unparsed(self) -> str:
        """The condition of ``flagged`` rows the source could not parse."""
        return "len(list_filter(_errors, lambda e: starts_with(e, 'parse:'))) > 0"

    def parse_sample(self, limit: int) -> str:
        """Samples of unparsable rows: the key (PII masked) and the parse reasons (which
        mask PII values themselves)."""
        pii = set(self.pipeline.contract.pii_columns)
        cols = [
            f"'***' AS {ident(k)}" if k in pii else f"CAST({ident(k)} AS VARCHAR) AS {ident(k)}"
            for k in self.pipeline.keys
        ]
        cols.append("list_filter(_errors, lambda e: starts_with(e, 'parse:')) AS reasons")
        return (
            f"SELECT {', '.join(cols)} FROM flagged WHERE {self.unparsed()} "
            f"ORDER BY _batch, _row LIMIT {int(limit)}"
        )

    def _values(self) -> list[str]:
        return [ident(n) for n in self.pipeline.silver_columns]

    def surrogate_key(self) -> str:
        """SHA-256 of the natural key (PII parts already salted digests, so the key cannot be
        used to guess them); without a key, of the row's place in bronze (batch, row)."""
        parts = [f"CAST({ident(k)} AS VARCHAR)" for k in self.pipeline.keys]
        if not parts:
            parts = ["CAST(_batch AS VARCHAR)", "CAST(_row AS VARCHAR)"]
        return f"sha256(concat_ws('|', {', '.join(parts)}))"

    def silver(self, *, dedupe: bool) -> str:
        """Valid rows, shaped for the silver table; the latest per key when ``dedupe``."""
        keys = self.pipeline.keys
        cols = [
            *self._values(),
            f"{self.surrogate_key()} AS {layout.SURROGATE_KEY.name}",
            f"len(dq_flags) = 0 AS {layout.DQ_VALID.name}",
            layout.DQ_FLAGS.name,
            *[ident(c) for c in (*self.extra, *META)],
        ]
        if self.soft_deletes:
            cols += [
                f"FALSE AS {layout.IS_DELETED.name}",
                f"CAST(NULL AS TIMESTAMPTZ) AS {layout.DELETED_AT.name}",
            ]
        sql = f"SELECT {', '.join(cols)} FROM flagged WHERE len(_errors) = 0"
        if dedupe and keys:
            order = self.pipeline.spec.transform.dedupe_order_by
            by = f"{ident(order)} DESC NULLS LAST, " if order else ""
            part = ", ".join(ident(k) for k in keys)
            sql += f" QUALIFY row_number() OVER (PARTITION BY {part} ORDER BY {by}_batch DESC, _row DESC) = 1"
        return sql

    def quarantine(self) -> str:
        cols = [
            *self._values(),
            f"_errors AS {layout.REASONS.name}",
            layout.DQ_FLAGS.name,
            *[ident(c) for c in (*self.extra, *META)],
            f"now() AS {layout.QUARANTINED_AT.name}",
        ]
        return f"SELECT {', '.join(cols)} FROM flagged WHERE len(_errors) > 0"

    def sample(self, column: str, rule: str, limit: int) -> str:
        """Failing-row samples: key and rule columns, PII masked (digests too), bounded."""
        hashed = {d.name for d in self.boundary.derived if self.boundary.hashed(d)}
        pii = set(self.pipeline.contract.pii_columns) | hashed
        shown = list(dict.fromkeys([*self.pipeline.keys, *self._rule_columns(rule)]))
        cols = [
            f"'***' AS {ident(c)}" if c in pii else f"CAST({ident(c)} AS VARCHAR) AS {ident(c)}"
            for c in shown
        ] or ["_row"]
        return (
            f"SELECT {', '.join(cols)} FROM flagged WHERE list_contains({column}, ?) "
            f"ORDER BY _batch, _row LIMIT {int(limit)}"
        )

    def _rule_columns(self, rule: str) -> tuple[str, ...]:
        for r in self.checks.row:
            if r.name == rule:
                return r.columns
        return ()

    def rejected(self, rows: pa.Table, reason: str, existing: pa.Schema | None) -> pa.Table:
        """A whole bronze batch shaped as quarantine rows with one reason, built with Arrow
        alone (a batch is rejected because it cannot go through :meth:`flagged`). Values are
        kept as bronze holds them; text that is not valid UTF-8 is kept with its bad bytes
        replaced. ``existing``: the quarantine table's schema, which the rows are cast to."""
        n, contract = rows.num_rows, self.pipeline.contract
        columns: dict[str, pa.Array | pa.ChunkedArray] = {}
        for c in contract.columns:
            typ = pa.string() if c.pii else arrow_type(c.physicalType)
            columns[c.name] = _column(rows, c.source_name, typ)
        for d in self.pipeline.spec.transform.derived:
            digest = d in self.boundary.derived and self.boundary.hashed(d)
            columns[d.name] = _column(rows, d.name, pa.string() if digest else arrow_type(d.type))
        parse = rows.column(PARSE_ERRORS).to_pylist() if self.parsed else [None] * n
        columns[layout.REASONS.name] = pa.array(
            [[f"rejected: {reason}", *(found or [])] for found in parse], layout.REASONS.type
        )
        columns[layout.DQ_FLAGS.name] = pa.array([[]] * n, layout.DQ_FLAGS.type)
        for name in (*self.extra, *META):
            columns[name] = _valid_text(rows.column(name))
        stamp = pa.scalar(datetime.now(UTC), layout.QUARANTINED_AT.type)
        columns[layout.QUARANTINED_AT.name] = pa.repeat(stamp, n)
        table = pa.table(columns)
        if existing is None:
            return table
        target = [existing.field(f.name) if f.name in existing.names else f for f in table.schema]
        return table.cast(pa.schema(target))


def _column(rows: pa.Table, name: str, typ: pa.DataType) -> pa.ChunkedArray | pa.Array:
    if name not in rows.column_names:
        return pa.nulls(rows.num_rows, typ)
    return _valid_text(rows.column(name))


def _valid_text(column: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    """``column``; a string column holding invalid UTF-8 with the bad bytes replaced."""
    if not pa.types.is_string(column.type):
        return column
    try:
        column.validate(full=True)
        return column
    except pa.ArrowInvalid:
        raw = column.cast(pa.binary()).to_pylist()
        return pa.array(
            [None if v is None else v.decode("utf-8", errors="replace") for v in raw], pa.string()
        )
