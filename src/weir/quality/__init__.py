"""Quality checks: contract rules compiled into one DuckDB scan per table.

Row rules become boolean *violation* expressions evaluated in the same projection that
shapes silver rows; table rules (row-count bounds, freshness) aggregate over the flagged
rows. Severities: ``error`` quarantines the row, ``warn`` flags it (``dq_valid = false`` and
the rule's name in ``dq_flags``), ``info`` only counts.
"""

from weir.quality.compile import CheckResult, CompiledChecks, RowRule, TableRule, compile_checks

__all__ = ["CheckResult", "CompiledChecks", "RowRule", "TableRule", "compile_checks"]
