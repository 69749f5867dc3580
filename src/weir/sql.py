"""Quoting for the SQL weir generates: identifiers and literals, through sqlglot.

A leaf module (it imports nothing of weir), so that every package that builds SQL quotes the
same way. The dialect is DuckDB's, which is also what Spark SQL accepts for these forms.
"""

from __future__ import annotations

from typing import Any

from sqlglot import exp

DIALECT = "duckdb"


def ident(name: str) -> str:
    """``name`` as an identifier, always quoted (``"a""b"`` for ``a"b``)."""
    return exp.to_identifier(name, quoted=True).sql(DIALECT)


def literal(value: Any) -> str:
    """A literal for a YAML scalar: NULL, booleans, numbers, anything else as a string."""
    if value is None or isinstance(value, bool | int | float):
        return exp.convert(value).sql(DIALECT)
    return exp.Literal.string(str(value)).sql(DIALECT)
