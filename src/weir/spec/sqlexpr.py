"""SQL that config files embed: checked when the project loads, re-generated for DuckDB.

Derived columns (``transform.derived[].sql``) and row conditions (``quality[].condition``) are
scalar expressions over one row's columns. :func:`scalar` parses such an expression with
sqlglot (DuckDB dialect), checks the tree, and returns the SQL that sqlglot generates *from
the checked tree*: what DuckDB runs is exactly what was checked, never the text as written
(which could close a parenthesis and go on). A gold model's SQL is a whole query, checked
by :func:`outside_calls` for the functions that reach outside the data.

Why an allowlist for expressions. DuckDB has about a thousand functions and gains more with
each release and extension; some read the machine (``read_text``, ``glob``), the process
(``getenv``, ``getvariable`` — weir keeps the PII salt in one —, ``current_setting``), or
change state (``nextval``, ``setseed``). A denylist is only as good as the last release its
author read; an allowlist fails closed: a function weir does not know is refused with a
clear message, and adding it is a one-line, reviewed change. So an expression may contain
only the node kinds of a scalar expression (columns, literals, operators, CASE, CAST,
intervals, list and struct literals, lambdas) and calls of the functions in
:data:`FUNCTIONS` — pure functions of their arguments: text, regex, math, date and time,
lists, hashing. Names are checked as DuckDB will see them: the name in the SQL sqlglot
generates for each call, so a spelling sqlglot rewrites cannot smuggle another function in.
Subqueries, table functions, aggregates, window functions, parameters and ``*`` are refused
with a message saying why. Models may use any function except :data:`OUTSIDE` (a
denylist there: model SQL is a whole analytic query with aggregates and windows, reading
only silver and gold tables, and runs with DuckDB's external access disabled as well).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from weir.hints import did_you_mean

MAX_LENGTH = 10_000
"""Characters of one config expression."""
MAX_DEPTH = 64
"""Nesting of one config expression's tree (sqlglot's parser gives up sooner on nested
calls: it recurses ~30 frames per level, and its RecursionError is refused the same way)."""

_TEXT = """lower upper lcase ucase length len strlen octet_length bit_length trim ltrim rtrim
substring substr left right concat concat_ws replace reverse repeat lpad rpad strpos instr
position contains starts_with ends_with prefix suffix split_part string_split str_split
string_split_regex regexp_matches regexp_full_match regexp_replace regexp_extract
regexp_extract_all regexp_split_to_array regexp_escape ascii chr unicode ord format printf
translate strip_accents nfc_normalize levenshtein editdist3 damerau_levenshtein hamming
jaccard jaro_similarity jaro_winkler_similarity mismatches like_escape ilike_escape
to_base64 from_base64 base64 to_hex hex from_hex unhex bin to_binary from_binary
array_to_string string_to_array"""
_MATH = """abs ceil ceiling floor round round_even roundbankers trunc sign signbit sqrt cbrt
pow power exp ln log log2 log10 greatest least pi sin cos tan cot asin acos atan atan2
sinh cosh tanh asinh acosh atanh degrees radians isnan isinf isfinite even factorial gcd
lcm greatest_common_divisor least_common_multiple bit_count xor fdiv fmod divide add
subtract multiply nextafter gamma lgamma"""
_TIME = """date_trunc datetrunc date_part datepart date_diff datediff date_sub datesub
date_add strftime strptime try_strptime make_date make_time make_timestamp make_timestamptz
make_timestamp_ns to_timestamp epoch epoch_ms epoch_us epoch_ns to_days to_hours
to_minutes to_seconds to_months to_years to_weeks to_milliseconds to_microseconds
to_centuries to_decades to_millennia year month day hour minute second millisecond
microsecond nanosecond dayofweek dayofmonth dayofyear week weekofyear weekday quarter
yearweek isodow isoyear last_day monthname dayname age century decade era millennium
julian time_bucket timezone timezone_hour timezone_minute current_date now today
get_current_time get_current_timestamp current_localtime current_localtimestamp"""
_OTHER = """nullif if typeof md5 md5_number sha1 sha256 hash
list_value list_pack list_contains list_has array_contains array_has list_extract
list_element array_extract array_length list_transform array_transform list_apply
array_apply apply list_filter array_filter filter list_sort array_sort list_reverse_sort
list_distinct array_distinct list_unique array_unique list_concat array_concat list_cat
array_cat flatten list_slice array_slice list_position array_position list_indexof
array_indexof list_reverse array_reverse list_sum list_product list_min list_max list_avg
list_count list_any_value list_has_any array_has_any list_has_all array_has_all
list_zip list_select list_where list_grade_up list_intersect array_intersect
cardinality struct_pack struct_extract struct_insert row
map map_extract map_keys map_values element_at"""
_SYNTAX = "cast try_cast extract coalesce ifnull current_time current_timestamp"
SYNTAX = frozenset(_SYNTAX.split())
"""Calls that DuckDB's parser handles itself (``CAST(x AS t)``): not in its function list."""

FUNCTIONS = frozenset(" ".join((_TEXT, _MATH, _TIME, _OTHER)).split()) | SYNTAX
"""The functions a derived column or row condition may call, by DuckDB name."""

_OUTSIDE = """getvariable getenv current_setting current_query current_query_id
    current_connection_id current_transaction_id txid_current current_user user session_user
    current_role current_database current_catalog current_schema current_schemas
    in_search_path has_database_privilege has_schema_privilege version nextval currval
    setseed pg_sleep sleep_ms which_secret query query_table glob sniff_csv
    json_execute_serialized_sql"""
OUTSIDE = frozenset(_OUTSIDE.split())
"""Functions that read the process, the session or the machine, or change state."""
_OUTSIDE_PREFIXES = ("read_", "parquet_", "duckdb_", "pragma_", "iceberg_", "delta_")

_SCALAR_NODES: tuple[type[exp.Expression], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Boolean,
    exp.Null,
    exp.Paren,
    exp.Neg,
    exp.Not,
    exp.BitwiseNot,
    exp.Binary,
    exp.Between,
    exp.In,
    exp.Tuple,
    exp.Interval,
    exp.Var,
    exp.DataType,
    exp.DataTypeParam,
    exp.Lambda,
    exp.Slice,
    exp.ByteString,
    exp.RawString,
    exp.Case,
    exp.If,
    exp.Array,
    exp.Struct,
    exp.Bracket,
    exp.CurrentDate,
    exp.CurrentTime,
    exp.CurrentTimestamp,
    exp.AtTimeZone,
    exp.Any,
)
_SUBQUERY = (exp.Query, exp.Subquery, exp.Exists)
_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")


class SqlRefused(ValueError):
    """An expression that is not a safe scalar expression: what and why, with a hint."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


def scalar(sql: str, columns: Collection[str] | None = None) -> str:
    """``sql`` checked as a scalar expression over ``columns`` (not checked when None),
    re-generated from the checked tree in DuckDB's dialect. Raises :class:`SqlRefused`."""
    tree = _parse(sql)
    lambdas = {p.name.lower() for node in tree.find_all(exp.Lambda) for p in node.expressions}
    known = None if columns is None else {c.lower() for c in columns} | lambdas
    for node in tree.walk():
        _check_node(node, known, columns or ())
    return tree.sql(dialect="duckdb")


def outside_calls(tree: exp.Expression) -> Iterator[exp.Func]:
    """The calls in ``tree`` of functions that reach outside the data (:data:`OUTSIDE`)."""
    for node in tree.find_all(exp.Func):
        name = call_name(node)
        if name is not None and (name in OUTSIDE or name.startswith(_OUTSIDE_PREFIXES)):
            yield node


def call_name(node: exp.Func) -> str | None:
    """The lower-case name DuckDB calls for ``node``, or None when it generates as syntax
    (``CASE …``, ``x[1]``, ``[1, 2]``, ``CURRENT_DATE``)."""
    match = _CALL.match(node.sql(dialect="duckdb"))
    return match[1].lower() if match else None


def _parse(sql: str) -> exp.Expression:
    if len(sql) > MAX_LENGTH:
        raise SqlRefused(
            f"the expression is longer than {MAX_LENGTH:,} characters",
            "a derived column or condition is one expression; put long logic in a gold model",
        )
    try:
        tree = sqlglot.parse_one(sql, read="duckdb", into=exp.Condition)
    except RecursionError:
        tree = None
    except SqlglotError as exc:
        raise SqlRefused(
            f"not a SQL expression: {_first_error(exc)}",
            "write one expression in DuckDB SQL, e.g. upper(name) or amount * 100",
        ) from None
    if tree is None or _depth(tree) > MAX_DEPTH:
        raise SqlRefused(
            f"the expression is nested deeper than {MAX_DEPTH} levels",
            "simplify it, or compute it in a gold model",
        )
    return tree


def _first_error(exc: SqlglotError) -> str:
    errors = getattr(exc, "errors", None) or []
    if errors and errors[0].get("description"):
        return str(errors[0]["description"])
    return str(exc).splitlines()[0][:200]


def _depth(tree: exp.Expression) -> int:
    deepest = 0
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack += [(child, depth + 1) for child in node.iter_expressions()]
    return deepest


def _check_node(node: exp.Expression, known: set[str] | None, columns: Collection[str]) -> None:
    if isinstance(node, exp.Column):
        _check_column(node, known, columns)
    elif isinstance(node, _SUBQUERY):
        raise _refused_node(node)
    elif isinstance(node, exp.Func) and not isinstance(node, _SCALAR_NODES):
        _check_call(node)
    elif not isinstance(node, _SCALAR_NODES):
        raise _refused_node(node)


def _check_column(node: exp.Column, known: set[str] | None, columns: Collection[str]) -> None:
    if node.table or not isinstance(node.this, exp.Identifier):
        raise SqlRefused(
            f"{node.sql(dialect='duckdb')!r}: refer to a column by its name alone",
            "the expression sees one row of this table; there are no other tables",
        )
    if known is not None and node.name.lower() not in known:
        raise SqlRefused(
            f"unknown column {node.name!r}",
            did_you_mean(node.name, columns) or "the expression sees the contract's columns",
        )


def _check_call(node: exp.Func) -> None:
    name = call_name(node)
    shown = name or (node.name if isinstance(node, exp.Anonymous) else node.key)
    if name in OUTSIDE or (name or "").startswith(_OUTSIDE_PREFIXES):
        raise SqlRefused(
            f"{shown}() reads outside the row (files, settings, variables or the environment)",
            "an expression computes from the row's own columns; pass values in as data",
        )
    if isinstance(node, exp.AggFunc):
        raise SqlRefused(
            f"{shown}() is an aggregate; the expression sees one row at a time",
            "aggregate in a gold model, or use a table check (row_count, unique)",
        )
    if name not in FUNCTIONS:
        close = did_you_mean(shown, FUNCTIONS) or ""
        raise SqlRefused(
            f"{shown}() is not a function weir allows in config SQL",
            close
            if close.startswith("did you mean")
            else "weir allows pure text, regex, math, date/time, list and hash functions "
            "(docs/pipelines.md lists them); compute anything else in a gold model",
        )


def _refused_node(node: exp.Expression) -> SqlRefused:
    shown = node.sql(dialect="duckdb")[:80]
    if isinstance(node, _SUBQUERY):
        return SqlRefused(
            f"subqueries are not allowed: {shown!r}",
            "an expression sees one row; join other tables in a gold model",
        )
    if isinstance(node, exp.Window):
        return SqlRefused(f"window functions are not allowed: {shown!r}", "use a gold model")
    if isinstance(node, exp.Placeholder | exp.Parameter | exp.SessionParameter):
        return SqlRefused(f"parameters are not allowed: {shown!r}", "write the value itself")
    return SqlRefused(
        f"{shown!r} ({node.key}) is not part of a scalar expression",
        "use the row's columns, literals, operators, CASE, CAST and allowed functions",
    )
