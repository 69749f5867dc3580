"""The SQL of a gold model: header split, sqlglot parse, table references, helper rewrites.

Dependencies are read from the SQL itself: every table a model names is either
``silver.<table>`` (a pipeline's silver table), ``gold.<model>``, or an unqualified name that
is exactly one of those. CTE names are not tables.

``valid_at(dim, ts)`` is weir's point-in-time join helper: in a join condition it becomes
``dim.valid_from <= ts AND (ts < dim.valid_to OR dim.valid_to IS NULL)`` — the version of a
snapshot row that was current at ``ts``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError

from weir.errors import ConfigError
from weir.spec import sqlexpr

_HEADER = re.compile(r"\A(\s*)/\*\s*weir\s*\n(.*?)\*/", re.DOTALL)
LAYERS = ("silver", "gold")


@dataclass(frozen=True)
class TableRef:
    layer: str
    """``silver``, ``gold``, or empty when the SQL left the name unqualified."""
    name: str
    line: int


@dataclass(frozen=True)
class ModelSql:
    text: str
    """The SELECT as written, without the header (line numbers kept by blank lines)."""
    expression: exp.Query
    refs: tuple[TableRef, ...]


def split_header(text: str) -> tuple[str | None, int, str]:
    """(header YAML or None, line of its first YAML line, the SQL with the header blanked).

    The header's lines are replaced by empty lines so SQL line numbers stay file lines."""
    match = _HEADER.match(text)
    if match is None:
        return None, 0, text
    first_line = match[1].count("\n") + 2
    yaml_text = match[2]
    blanked = "\n" * match[0].count("\n") + text[match.end() :]
    return yaml_text, first_line, blanked


def parse(text: str, path: Path) -> ModelSql:
    """Parse one model's SQL; errors name the file and line."""
    start = f"{path}:{text[: len(text) - len(text.lstrip())].count(chr(10)) + 1}"
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except RecursionError:
        raise ConfigError(
            "the model's SQL is nested too deeply to parse",
            where=start,
            hint="flatten deeply nested expressions or subqueries, e.g. with CTEs",
        ) from None
    except TokenError as exc:
        raise ConfigError(
            f"the model's SQL does not parse: {exc}",
            where=start,
            hint="look for an unclosed quote or comment",
        ) from None
    except ParseError as exc:
        first = exc.errors[0] if exc.errors else {}
        near = first.get("highlight")
        raise ConfigError(
            f"the model's SQL does not parse near {near!r}"
            if near
            else f"the model's SQL does not parse: {first.get('description', exc)}",
            where=f"{path}:{first.get('line', 1)}",
            hint="a model is one SELECT in DuckDB's dialect",
        ) from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        odd = statements[1] if len(statements) > 1 else statements[0] if statements else None
        raise ConfigError(
            "a model is exactly one SELECT statement"
            + (f" (found {len(statements)} statements)" if len(statements) != 1 else ""),
            where=f"{path}:{_line(odd)}" if odd is not None else start,
            hint="put other statements in their own model, or in a dbt step",
        )
    query = statements[0]
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}
    refs: list[TableRef] = []
    for table in query.find_all(exp.Table):
        line = int(table.this.meta.get("line", 1)) if table.this is not None else 1
        if not isinstance(table.this, exp.Identifier):
            raise ConfigError(
                f"models read silver and gold tables only, not {table.sql(dialect='duckdb')}",
                where=f"{path}:{line}",
                hint="ingest files with a pipeline, then read its silver table",
            )
        if not table.db and table.name in ctes:
            continue
        refs.append(TableRef(layer=table.db, name=table.name, line=line))
    _refuse_outside(query, path)
    return ModelSql(text=text, expression=query, refs=tuple(refs))


def _refuse_outside(query: exp.Query, path: Path) -> None:
    """A model reads silver and gold tables only: no function that reads files, settings,
    variables (weir's PII salt is one) or the environment, or changes state."""
    for call in sqlexpr.outside_calls(query):
        name = sqlexpr.call_name(call)
        raise ConfigError(
            f"{name}() reads outside the model's tables (files, settings, variables or the "
            "environment)",
            where=f"{path}:{_line(call)}",
            hint="a model computes from silver and gold tables; ingest other data with a pipeline",
        )


def _line(node: exp.Expression) -> int:
    """The line sqlglot recorded for ``node`` or the nearest node under it."""
    for part in node.walk():
        line = part.meta.get("line") if part.meta else None
        if line is not None:
            return int(line)
    return 1


def rewrite(query: exp.Query, depends_on: tuple[str, ...] = ()) -> exp.Query:
    """Expand ``valid_at(alias, ts)`` into the point-in-time condition, and qualify the
    unqualified table names found in ``depends_on`` (``layer.name``) with their layer."""
    layers = {name: layer for layer, _, name in (d.partition(".") for d in depends_on)}
    ctes = {cte.alias_or_name for cte in query.find_all(exp.CTE)}

    def expand(node: exp.Expression) -> exp.Expression:
        if (
            isinstance(node, exp.Table)
            and not node.db
            and node.name in layers
            and node.name not in ctes
        ):
            qualified = node.copy()
            qualified.set("db", exp.to_identifier(layers[node.name]))
            return qualified
        if isinstance(node, exp.Anonymous) and node.name.lower() == "valid_at":
            alias, ts = node.expressions
            table = alias.sql(dialect="duckdb")
            at = ts.sql(dialect="duckdb")
            return sqlglot.parse_one(
                f"({table}.valid_from <= {at} AND ({at} < {table}.valid_to "
                f"OR {table}.valid_to IS NULL))",
                read="duckdb",
            )
        return node

    out = query.transform(expand)
    assert isinstance(out, exp.Query)
    return out


def check_helpers(query: exp.Query, path: Path) -> None:
    for node in query.find_all(exp.Anonymous):
        if node.name.lower() == "valid_at" and len(node.expressions) != 2:
            line = node.meta.get("line", 1) if node.meta else 1
            raise ConfigError(
                "valid_at takes two arguments: valid_at(snapshot_alias, point_in_time)",
                where=f"{path}:{line}",
                hint="e.g. JOIN gold.dim_planes p ON p.tailnum = f.tailnum "
                "AND valid_at(p, f.time_hour)",
            )
