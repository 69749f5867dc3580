"""What a name in a config file may be, when it becomes a path or a SQL identifier.

Pipeline, table, model and dbt step names become folders of the lake and identifiers in
SQL; silver column names become Delta columns and DuckDB identifiers. They are all
lower_snake_case — no ``/``, ``..``, quotes or spaces can reach a path or a statement — and
silver columns may not take a name weir gives its own columns. Source column names
(``physicalName``) stay as the source spells them, but bronze stores them as Delta column
names, which cannot hold the characters in :data:`DELTA_FORBIDDEN` without column mapping.
"""

from __future__ import annotations

import re

from weir import layout

NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")
"""Pipelines, tables, models, dbt steps and silver columns: lower_snake_case, ≤ 63 chars."""
NAME_HINT = "use lower_snake_case: a lower-case letter, then letters, digits or _ (at most 63)"

RESERVED = frozenset({*layout.DESCRIPTIONS, layout.ERRORS, layout.INFOS})
"""Columns weir adds to bronze, silver and quarantine tables."""

DELTA_FORBIDDEN = " ,;{}()\n\t="
"""Characters Delta cannot store in a column name without column mapping."""


def check_name(value: str, what: str) -> str:
    """``value`` when it is a valid name; ValueError naming ``what`` and the rule otherwise."""
    if not NAME.fullmatch(value):
        raise ValueError(f"{value[:80]!r} is not a valid {what} name; {NAME_HINT}")
    return value


def check_column(value: str) -> str:
    """A silver column name: a valid name that is not one of weir's own columns."""
    if value in RESERVED:
        raise ValueError(
            f"column name {value!r} is one of weir's own columns; rename it (keep the source "
            "name in physicalName)"
        )
    return check_name(value, "column")


def check_source_column(value: str) -> str:
    """A source column name (``physicalName``): what bronze can store as a Delta column."""
    bad = sorted({repr(c) for c in value if c in DELTA_FORBIDDEN or not c.isprintable()})
    if not value.strip() or bad:
        raise ValueError(
            f"source column name {value[:80]!r} cannot be a Delta column name"
            + (f" (it holds {', '.join(bad)})" if bad else "")
            + f"; Delta column names cannot hold any of {DELTA_FORBIDDEN!r} or control "
            "characters: rename the column in the source"
        )
    if value in RESERVED:
        raise ValueError(f"source column name {value!r} is one of weir's own bronze columns")
    return value
