"""The PII boundary: what every extracted batch goes through before its first byte is written.

Raw PII never lands on disk (DESIGN invariant 5): staging, bronze, silver, quarantine and the
Delta log's statistics hold salted SHA-256 digests of PII columns, never their values. What
needs a raw value happens here, in memory, once per batch, before staging:

- **rules that read a PII column's value** (regex, range, accepted values, a row condition
  naming it) are evaluated, and the names of the rules a row breaks go into ``_pii_flags``;
  silver takes their verdict from there. ``not_null``, ``required`` and ``unique`` work on
  digests just as well and stay in silver;
- **derived columns whose SQL reads a PII column** (or that are declared ``pii: true``) are
  computed; they are PII themselves, so they are stored as digests too, unless the pipeline
  declares them ``pii: false`` (say, an e-mail's domain);
- then **every PII column is replaced by its digest**, ``sha256(salt || CAST(value AS
  VARCHAR))`` — the same digest silver has always stored.

Bronze, the replay log, therefore holds digests: a replay cannot re-evaluate those rules or
recompute those columns under a changed definition. They apply to rows ingested after the
change, and a pipeline whose boundary changed says so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import pyarrow as pa

from weir.quality.compile import compile_checks
from weir.quality.kinds.row_condition import referenced_columns
from weir.quality.rules import CompiledChecks, RowRule
from weir.spec import Pipeline, sqlexpr
from weir.spec.pipeline import Derived
from weir.spec.types import arrow_type, duckdb_type
from weir.sql import ident, literal

PII_FLAGS = "_pii_flags"
"""Bronze column: names of the rules on raw PII values that the row broke (or NULL)."""


def digest(column: str) -> str:
    """DuckDB SQL for the salted digest of ``column`` (NULL stays NULL)."""
    return (
        f"CASE WHEN {column} IS NULL THEN NULL "
        f"ELSE sha256(getvariable('weir_salt') || CAST({column} AS VARCHAR)) END"
    )


@dataclass(frozen=True)
class Boundary:
    """What one pipeline's batches go through before staging (see the module docstring)."""

    pipeline: Pipeline
    pii: frozenset[str]
    """Silver names of the contract's PII columns."""
    rules: tuple[RowRule, ...]
    """Rules evaluated here, on raw values."""
    derived: tuple[Derived, ...]
    """Derived columns computed here."""

    @classmethod
    def of(cls, pipeline: Pipeline, checks: CompiledChecks | None = None) -> Boundary:
        """``checks``: the pipeline's compiled contract rules (compiled here when not given)."""
        if checks is None:
            checks = compile_checks(pipeline.contract, pipeline.keys)
        pii = frozenset(pipeline.contract.pii_columns)
        rules = tuple(r for r in checks.row if reads_pii_value(r, pii))
        derived = tuple(d for d in pipeline.spec.transform.derived if _at_boundary(d, pii))
        return cls(pipeline, pii, rules, derived)

    @property
    def active(self) -> bool:
        return bool(self.pii or self.derived)

    def hashed(self, derived: Derived) -> bool:
        """Whether a derived column computed here is stored as a digest."""
        return derived.pii is not False

    @property
    def outputs(self) -> frozenset[str]:
        """Bronze columns the boundary adds (besides replacing PII values)."""
        names = {d.name for d in self.derived}
        return frozenset(names | ({PII_FLAGS} if self.rules else set()))

    def schema(self, source: pa.Schema) -> pa.Schema:
        """The shape of a batch after the boundary: PII columns as digests (strings), then
        the derived columns computed here and ``_pii_flags``."""
        pii_sources = {c.source_name for c in self.pipeline.contract.columns if c.pii}
        fields = [f.with_type(pa.string()) if f.name in pii_sources else f for f in source]
        fields += [
            pa.field(d.name, pa.string() if self.hashed(d) else arrow_type(d.type))
            for d in self.derived
        ]
        if self.rules:
            fields.append(pa.field(PII_FLAGS, pa.list_(pa.string())))
        return pa.schema(fields)

    def apply(self, rows: pa.Table, compute: Callable[[str, pa.Table], pa.Table]) -> pa.Table:
        """``rows`` (contract-typed, source names) as they may be written to disk.

        ``compute(sql, named)``: the engine runs the boundary's SQL over ``named`` (the rows
        under contract names, as relation ``boundary_rows``), keeping the row order
        (weir.engine.base.Session.boundary). Give it a few hundred thousand rows at a time:
        DuckDB computes a small input on one thread."""
        target = self.schema(rows.schema)
        if not self.active or rows.num_rows == 0:
            return _conform(rows, target)
        contract = self.pipeline.contract.columns
        named = pa.Table.from_arrays(
            [rows.column(c.source_name) for c in contract], names=[c.name for c in contract]
        )
        computed = compute(self._sql(), named)
        by_source = {c.source_name: c.name for c in contract if c.pii}
        arrays = []
        for fld in target:
            if fld.name in by_source:
                arrays.append(computed.column(f"__pii_{by_source[fld.name]}"))
            elif fld.name in self.outputs:
                arrays.append(computed.column(fld.name).cast(fld.type))
            else:
                arrays.append(rows.column(fld.name))
        return pa.Table.from_arrays(arrays, schema=target)

    def _sql(self) -> str:
        items = [f"{digest(ident(c))} AS {ident('__pii_' + c)}" for c in sorted(self.pii)]
        for d in self.derived:
            # the expression as sqlglot re-generates it from the tree checked at load
            value = f"CAST(({sqlexpr.scalar(d.sql)}) AS {duckdb_type(d.type)})"
            items.append(f"{digest(value) if self.hashed(d) else value} AS {ident(d.name)}")
        if self.rules:
            flags = ", ".join(
                f"CASE WHEN ({r.violation}) THEN {literal(r.name)} END" for r in self.rules
            )
            items.append(f"list_filter([{flags}], lambda x: x IS NOT NULL) AS {ident(PII_FLAGS)}")
        return f"SELECT {', '.join(items) or 'NULL'} FROM boundary_rows"

    def silver_checks(self, checks: CompiledChecks) -> CompiledChecks:
        """``checks`` with the rules evaluated here reading their verdict from ``_pii_flags``."""
        here = {r.name for r in self.rules}
        row = tuple(
            replace(
                r,
                violation=f"list_contains(coalesce({ident(PII_FLAGS)}, []), {literal(r.name)})",
                compares_rows=False,
            )
            if r.name in here
            else r
            for r in checks.row
        )
        return CompiledChecks(row, checks.table, checks.context)


def reads_pii_value(rule: RowRule, pii: frozenset[str]) -> bool:
    """A rule that needs a PII column's raw value (not only whether it is NULL or repeats)."""
    return not rule.on_digests and bool(set(rule.columns) & pii)


def _at_boundary(derived: Derived, pii: frozenset[str]) -> bool:
    return bool(derived.pii) or bool(set(referenced_columns(derived.sql)) & pii)


def _conform(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    # Not Table.cast: a key with a parse problem is NULL here, though the contract says it is
    # never NULL; the row goes on to quarantine, so the schema may not be enforced yet.
    if rows.schema.equals(schema):
        return rows
    return pa.Table.from_arrays([rows.column(f.name) for f in schema], schema=schema)


def pii_derived(pipeline: Pipeline) -> Sequence[Derived]:
    """Derived columns that are PII (they read a PII column or say ``pii: true``), unless
    declared ``pii: false``: silver stores them as digests."""
    pii = frozenset(pipeline.contract.pii_columns)
    return [
        d for d in pipeline.spec.transform.derived if _at_boundary(d, pii) and d.pii is not False
    ]
