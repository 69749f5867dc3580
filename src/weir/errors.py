"""The one exception tree of weir.

    WeirError                 every error weir raises on purpose
    ├── ConfigError           bad project, pipeline or contract files (exit code 2)
    ├── UsageError            bad command line (exit code 2)
    ├── SourceError           a source failed to deliver data
    │   └── TransientSourceError   worth retrying (timeouts, 5xx, 429 after retries)
    ├── SchemaDriftError      the source no longer matches the contract (breaking change)
    ├── LakeError             a Delta table could not be read or written
    ├── QualityError          error-level checks failed past the pipeline's gate
    ├── TransformError        a transform failed: a gold model's SQL, a dbt model, snapshot or project
    ├── ReconciliationError   rows_extracted != rows_loaded + rows_quarantined
    └── LockedError           another run of the same pipeline holds the lock

Lower-level errors (delta-rs, DuckDB, dbt, httpx, pyarrow) are caught where they enter and
re-raised as one of these with ``raise ... from exc``; a message names what failed, where,
and what to try.
"""

from __future__ import annotations


class WeirError(Exception):
    """Base class. ``hint`` says what to do; ``where`` says where (file:line, table, URL)."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None, where: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.where = where

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class ConfigError(WeirError):
    exit_code = 2


class UsageError(WeirError):
    exit_code = 2


class SourceError(WeirError):
    pass


class TransientSourceError(SourceError):
    """Worth retrying. ``retried``: the source already retried this failure itself (a REST
    source retries each request with back-off), so the pipeline does not retry it again:
    one retry layer, one message."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        where: str | None = None,
        retried: bool = False,
    ):
        super().__init__(message, hint=hint, where=where)
        self.retried = retried


class SchemaDriftError(WeirError):
    pass


class LakeError(WeirError):
    pass


class QualityError(WeirError):
    pass


class TransformError(WeirError):
    pass


class ReconciliationError(WeirError):
    pass


class LockedError(WeirError):
    pass
