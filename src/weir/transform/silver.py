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
SCD2_COLUMNS = ("valid_from", "valid_to", "is_current")


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
        return cls(pipeline, compile_checks(pipeline.contract, pipeline.keys), extra)

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

    def _values(self) -> list[str]:
        pii = set(self.pipeline.contract.pii_columns)
        out = []
        for name in self.pipeline.silver_columns:
            if name in pii:
                out.append(
                    f"CASE WHEN {ident(name)} IS NULL THEN NULL ELSE sha256(getvariable('weir_salt') "
                    f"|| CAST({ident(name)} AS VARCHAR)) END AS {ident(name)}"
                )
            else:
                out.append(ident(name))
        return out

    def surrogate_key(self) -> str:
        parts = ", ".join(f"CAST({ident(k)} AS VARCHAR)" for k in self.pipeline.keys)
        return f"sha256(concat_ws('|', {parts}))" if parts else "CAST(uuid() AS VARCHAR)"

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
