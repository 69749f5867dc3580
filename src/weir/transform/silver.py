"""The SQL that turns one bronze batch into silver and quarantine rows, in one scan.

``flagged`` is built once per batch from the ``input`` relation: renamed and typed per
contract, derived columns added, and every row rule evaluated in the same projection. The
silver and quarantine selects then read that one materialised result.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from weir.quality.compile import CompiledChecks, compile_checks, ident
from weir.spec import Pipeline
from weir.spec.types import duckdb_type

META = ("_run_id", "_batch", "_row", "_ingested_at")


@dataclass(frozen=True)
class SilverSql:
    pipeline: Pipeline
    checks: CompiledChecks
    extra: tuple[str, ...]
    """Bronze columns outside the contract carried through (evolved, or source meta)."""

    @classmethod
    def plan(cls, pipeline: Pipeline, bronze: pa.Schema) -> SilverSql:
        known = {c.source_name for c in pipeline.contract.columns} | set(META)
        extra = tuple(f.name for f in bronze if f.name not in known)
        # a version needs its start: rows without one go to quarantine, never into silver
        scd2 = pipeline.spec.load.scd2
        required = [scd2.valid_from] if scd2 is not None and scd2.valid_from else []
        return cls(pipeline, compile_checks(pipeline.contract, pipeline.keys, required), extra)

    def flagged(self) -> str:
        contract = self.pipeline.contract
        renamed = [
            f"CAST({ident(c.source_name)} AS {duckdb_type(c.physicalType)}) AS {ident(c.name)}"
            for c in contract.columns
        ]
        renamed += [ident(m) for m in (*self.extra, *META)]
        derived = [
            f"CAST(({d.sql}) AS {duckdb_type(d.type)}) AS {ident(d.name)}"
            for d in self.pipeline.spec.transform.derived
        ]
        derived_sql = ", " + ", ".join(derived) if derived else ""
        return (
            f"WITH renamed AS (SELECT {', '.join(renamed)} FROM input), "
            f"derived AS (SELECT *{derived_sql} FROM renamed) "
            f"SELECT *, {self.checks.flag_columns()} FROM derived"
        )

    def _value(self, name: str) -> str:
        """A column as silver stores it: PII as salted SHA-256 of its text, the rest as is."""
        if name not in self.pipeline.contract.pii_columns:
            return ident(name)
        return (
            f"CASE WHEN {ident(name)} IS NULL THEN NULL ELSE sha256(getvariable('weir_salt') "
            f"|| CAST({ident(name)} AS VARCHAR)) END"
        )

    def _values(self) -> list[str]:
        return [f"{self._value(n)} AS {ident(n)}" for n in self.pipeline.silver_columns]

    def surrogate_key(self) -> str:
        """SHA-256 of the natural key (PII parts already salted-hashed, so the key cannot be
        used to guess them); without a key, of the row's place in bronze (batch, row)."""
        parts = [f"CAST({self._value(k)} AS VARCHAR)" for k in self.pipeline.keys]
        if not parts:
            parts = ["CAST(_batch AS VARCHAR)", "CAST(_row AS VARCHAR)"]
        return f"sha256(concat_ws('|', {', '.join(parts)}))"

    def silver(self, *, dedupe: bool) -> str:
        """Valid rows, shaped for the silver table; the latest per key when ``dedupe``."""
        keys = self.pipeline.keys
        cols = [
            *self._values(),
            f"{self.surrogate_key()} AS surrogate_key",
            "len(dq_flags) = 0 AS dq_valid",
            "dq_flags",
            *[ident(c) for c in (*self.extra, *META)],
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
            "_errors AS _reasons",
            "dq_flags",
            *[ident(c) for c in (*self.extra, *META)],
            "now() AS _quarantined_at",
        ]
        return f"SELECT {', '.join(cols)} FROM flagged WHERE len(_errors) > 0"

    def sample(self, column: str, rule: str, limit: int) -> str:
        """Failing-row samples: key and rule columns, PII masked, bounded."""
        pii = set(self.pipeline.contract.pii_columns)
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
