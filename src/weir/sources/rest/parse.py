"""Page bodies → Arrow: pyarrow's JSON reader against an *envelope* schema built from the
contract (``records_path`` → ``list<struct<…>>``, plus the cursor and total paths), so no
Python object is made per row; then the fields read as strings are cast to the contract.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from typing import Any, NoReturn

import pyarrow as pa
import pyarrow.json as pj

from weir.errors import SchemaDriftError, SourceError
from weir.sources.base import SourceContext, conform
from weir.sources.flatten import flatten
from weir.sources.incremental import TS_UTC
from weir.sources.parse import JSON_DECODER, expected_form, from_objects
from weir.sources.problems import Problem, line_problem, value_problem

_CHANGED = re.compile(r"Column\((?P<path>[^)]*)\) changed from \w+ to (?P<got>\w+)")
_CONVERT = re.compile(r"Failed to convert JSON to (?P<type>.+?), couldn't parse")
_WRAP = "__weir_records__"
_T = pa.types
_JSON_READS: tuple[str, ...] = ("boolean", "integer", "floating", "string", "large_string")
_JSON_READS += ("timestamp", "decimal", "list", "struct")  # pyarrow's JSON reader parses these


class Malformed(Exception):
    """A page body that is not the expected JSON document (worth asking for again)."""


@dataclasses.dataclass(frozen=True)
class Parsed:
    batch: pa.RecordBatch
    """As read: the contract's fields (some still strings), the watermark field, extras."""
    cursor: str | None
    total: int | None
    """The API's count of matching records at ``total_path``, when configured and present."""
    problems: tuple[Problem, ...] = ()
    """Records that are parse problems already (found by the careful path)."""


class PageParser:
    """Turns one JSON body into a record batch with pyarrow's JSON reader (no per-row Python).

    Fields pyarrow cannot read as their contract type (dates, times) are read as strings and
    cast later; a field whose JSON values turn out to be strings (``"42"`` for an int) is
    switched to string once and cast the same way. Unknown record fields are noticed by letting
    the reader infer them; when that fails on a mixed-type field, pages are read ignoring them
    and their names are found with ``json`` (a slow path, about 3x the fast one).
    """

    def __init__(
        self,
        schema: pa.Schema,
        records_path: str,
        *,
        cursor_path: str = "",
        total_path: str = "",
        hidden: str | None = None,
        pii: frozenset[str] = frozenset(),
        flatten: bool = False,
    ):
        self.schema = schema
        self.wrap = not records_path
        self.records = records_path.split(".") if records_path else [_WRAP]
        self.cursor = cursor_path.split(".") if cursor_path else []
        self.total = total_path.split(".") if total_path else []
        self.types: dict[str, pa.DataType] = {f.name: _read_type(f.type) for f in schema}
        if hidden is not None:
            self.types[hidden] = TS_UTC
        self.as_string: set[str] = set()
        self.int_cursor = False
        self.extra_fields: dict[str, int] = {}
        self._options: dict[bool, pj.ParseOptions] = {}
        self.infer = True
        self.pii = pii
        """Source-side names of PII fields: their values never appear in a reason."""
        self.flatten = flatten
        """Nested objects become fields (:mod:`weir.sources.flatten`): read carefully."""
        self.careful = flatten or any(_T.is_nested(f.type) for f in schema)
        """Whether every page takes the careful path: with ``flatten``, or a struct, list or
        map column, whose parts pyarrow's reader would not judge by weir's rules."""

    def parse(self, body: bytes, page: int = 0) -> Parsed:
        data = b'{"' + _WRAP.encode() + b'":' + body + b"}" if self.wrap else body
        if self.careful:
            return self._careful(data, page)
        try:
            table, inferred = self._read(data)
        except SchemaDriftError:  # a field pyarrow cannot read as one type: go carefully
            return self._careful(data, page)
        if table.num_rows != 1:
            raise Malformed(f"expected one JSON document, got {table.num_rows}")
        listing = _dig(table, self.records)
        if listing.null_count:
            raise Malformed(f"records_path {'.'.join(self.records)!r} is missing or null")
        records = listing.flatten()
        if records.null_count:
            raise SourceError(
                f"the record list holds {records.null_count} null entries",
                hint="every entry at records_path must be a JSON object",
            )
        if inferred:
            self._count_extras(records)
        else:
            self._scan_extras(data)
        cursor = _dig(table, self.cursor)[0].as_py() if self.cursor else None
        cursor = None if cursor is None or cursor == "" else str(cursor)
        total = _dig(table, self.total)[0].as_py() if self.total else None
        return Parsed(
            batch=pa.RecordBatch.from_struct_array(records),
            cursor=cursor,
            total=None if total is None else int(total),
        )

    def _careful(self, data: bytes, page: int) -> Parsed:
        """The slow path for a page whose values pyarrow cannot read as one type per field
        (``"0x10"`` beside numbers, ``1.5`` for an integer): Python's ``json`` decodes it,
        numbers kept as their text, and every field goes to conform()'s strict rules as text;
        a record that is not an object, or an object or array in a scalar field, is a parse
        problem of that record (``page <p>, record <n>``)."""
        try:
            doc = JSON_DECODER.decode(data.decode("utf-8", "surrogateescape"))
        except (ValueError, RecursionError) as exc:
            raise Malformed(f"not valid JSON ({type(exc).__name__})") from None
        listing = _walk(doc, self.records)
        if not isinstance(listing, list):
            raise Malformed(f"records_path {'.'.join(self.records)!r} is not a list")
        where = [f"page {page}, record {n + 1}" for n in range(len(listing))]
        problems = [
            line_problem(n, where[n], "is not a JSON object")
            for n, record in enumerate(listing)
            if not isinstance(record, dict)
        ]
        rows = [record if isinstance(record, dict) else {} for record in listing]
        if self.flatten:
            rows = self._flattened(rows, where, problems)
        arrays = []
        for name, read in self.types.items():
            target = self.schema.field(name) if name in self.schema.names else pa.field(name, read)
            array, bad = from_objects([row.get(name) for row in rows], target)
            expected = expected_form(target)
            hidden = name in self.pii
            problems += [
                value_problem(n, name, raw, where[n], expected, hidden=hidden) for n, raw in bad
            ]
            arrays.append(array)
        for row in rows:
            for name in row.keys() - self.types.keys():
                self.extra_fields[name] = self.extra_fields.get(name, 0) + 1
        cursor = _walk(doc, self.cursor) if self.cursor else None
        total = _walk(doc, self.total) if self.total else None
        return Parsed(
            batch=pa.RecordBatch.from_arrays(arrays, names=list(self.types)),
            cursor=None if cursor is None or cursor == "" else str(cursor),
            total=None if total is None else int(float(str(total))),
            problems=tuple(sorted(problems, key=lambda p: p.row)),
        )

    def _flattened(
        self, rows: list[dict[str, Any]], where: list[str], problems: list[Problem]
    ) -> list[dict[str, Any]]:
        keep = frozenset(self.types)
        out = []
        for n, row in enumerate(rows):
            flat, what = flatten(row, keep)
            if what is not None:
                problems.append(line_problem(n, where[n], what))
                flat = {}
            out.append(flat)
        return out

    def _read(self, data: bytes) -> tuple[pa.Table, bool]:
        infer = self.infer
        options = pj.ReadOptions(block_size=len(data) + 1, use_threads=False)
        for _ in range(len(self.types) + 3):
            parse_options = self._parse_options(infer)
            try:
                return pj.read_json(pa.BufferReader(data), options, parse_options), infer
            except pa.ArrowInvalid as exc:
                message = str(exc)  # handled outside: the reader's text may quote a value
            infer = self._recover(message, infer)
            self.infer = self.infer and infer  # this API's pages cannot be inferred: stop trying
        raise Malformed("the reader kept failing")

    def _parse_options(self, infer: bool) -> pj.ParseOptions:
        if infer not in self._options:
            tree: dict[str, Any] = {}
            records = pa.list_(pa.struct([pa.field(n, t) for n, t in self.types.items()]))
            _plant(tree, self.records, records)
            if self.cursor:
                _plant(tree, self.cursor, pa.int64() if self.int_cursor else pa.string())
            if self.total:
                _plant(tree, self.total, pa.float64())  # reads 50 and 50.0 alike
            self._options[infer] = pj.ParseOptions(
                explicit_schema=pa.schema(_fields(tree)),
                newlines_in_values=True,
                unexpected_field_behavior="infer" if infer else "ignore",
            )
        return self._options[infer]

    def _recover(self, message: str, infer: bool) -> bool:
        """Adjust the read after a reader error and return whether to keep inferring extras.

        Raises SchemaDriftError for a contract field of the wrong JSON type, SourceError for a
        total that is not a number, Malformed for a body that is not the expected document.
        """
        changed = _CHANGED.search(message)
        if changed is None:
            self._not_converted(message)
        path = [p for p in changed["path"].split("/") if p]
        got = changed["got"]
        inside = [*self.records, "[]"]
        if path[: len(inside)] == inside and len(path) > len(inside):
            return self._field_changed(
                path[len(inside)], nested=len(path) > len(inside) + 1, got=got, infer=infer
            )
        if self.cursor and path == self.cursor and got == "number" and not self.int_cursor:
            self.int_cursor = True
            self._options.clear()
            return infer
        if self.total and path == self.total:
            raise SourceError(
                f"total_path {'.'.join(self.total)!r} holds a JSON {got}, not a number",
                hint="point total_path at the API's count of matching records, or remove it",
            )
        envelope = [inside, self.cursor, self.total]
        if any(p and path == p[: len(path)] for p in envelope):
            raise Malformed(f"{'.'.join(path) or 'the body'} is a JSON {got}")
        if infer:
            return False  # a mixed-type field outside the contract: re-read ignoring it
        raise Malformed(message)

    def _not_converted(self, message: str) -> NoReturn:
        """Raise for a reader error that is not a change of JSON type."""
        converting = _CONVERT.search(message)
        if converting is None:
            raise Malformed(re.sub(r"^JSON parse error: |\.? in row \d+$", "", message))
        names = [n for n, t in self.types.items() if str(t) == converting["type"]]
        if not names:
            raise Malformed(f"a value is not {converting['type']}")
        raise SchemaDriftError(
            f"field {' or '.join(map(repr, names))} holds a value that is not {converting['type']}",
            hint="fix the source or change the column's physicalType in the contract",
        )

    def _field_changed(self, name: str, *, nested: bool, got: str, infer: bool) -> bool:
        if name not in self.types:
            if infer:
                return False
            raise Malformed(f"record field {name!r} could not be read")
        if not nested and got == "string" and name not in self.as_string:
            self.as_string.add(name)
            self.types[name] = pa.string()
            self._options.clear()
            return infer
        expected = self.schema.field(name).type if name in self.schema.names else "timestamps"
        kinds = f"both JSON string and {got}" if name in self.as_string else f"JSON {got}"
        raise SchemaDriftError(
            f"field {name!r} holds {kinds} values; the contract expects {expected}",
            hint="fix the source or change the column's physicalType in the contract",
        )

    def _count_extras(self, records: pa.StructArray) -> None:
        for index, fld in enumerate(records.type):
            if fld.name not in self.types:
                child = records.field(index)
                self.extra_fields[fld.name] = (
                    self.extra_fields.get(fld.name, 0) + len(child) - child.null_count
                )

    def _scan_extras(self, data: bytes) -> None:
        """Slow path: names of unknown record fields via ``json``, when inference failed."""
        try:
            node: Any = json.loads(data)
        except ValueError:
            return
        for part in self.records:
            node = node.get(part) if isinstance(node, dict) else None
        for record in node if isinstance(node, list) else []:
            for name in record.keys() - self.types.keys() if isinstance(record, dict) else ():
                self.extra_fields[name] = self.extra_fields.get(name, 0) + 1


def shape(
    raw: pa.RecordBatch,
    schema: pa.Schema,
    where: str,
    context: SourceContext | None = None,
    page: int = 0,
    problems: Sequence[Problem] = (),
) -> pa.RecordBatch:
    """The contract's fields of a page, converted by the engine's strict rules
    (:func:`weir.sources.base.conform`): fields read as strings are parsed like CSV text, a
    NULL never fails, and an unparsable value fails the read or, with ``on_parse_error:
    quarantine``, becomes a parse reason naming the page and record (PII masked)."""
    batch = pa.RecordBatch.from_arrays([raw.column(f.name) for f in schema], names=schema.names)
    return conform(
        batch,
        schema,
        where=where,
        context=context,
        label=lambda index: f"page {page}, record {index + 1}",
        problems=problems,
    )


def _read_type(dtype: pa.DataType) -> pa.DataType:
    """What the JSON reader should produce for a contract type: itself, or string to cast."""
    direct = any(getattr(_T, f"is_{kind}")(dtype) for kind in _JSON_READS)
    direct = direct and not _T.is_float16(dtype)
    return dtype if direct else pa.string()


def _plant(tree: dict[str, Any], path: list[str], leaf: pa.DataType) -> None:
    for name in path[:-1]:
        tree = tree.setdefault(name, {})
    tree[path[-1]] = leaf


def _fields(tree: dict[str, Any]) -> list[pa.Field]:
    return [
        pa.field(k, pa.struct(_fields(v)) if isinstance(v, dict) else v) for k, v in tree.items()
    ]


def _dig(table: pa.Table, path: list[str]) -> pa.Array:
    column = table.column(path[0])
    node = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    for name in path[1:]:
        node = node.field(name)
    return node


def _walk(doc: Any, path: list[str]) -> Any:
    """The value at a dotted path of a decoded document (None where it is missing)."""
    for name in path:
        doc = doc.get(name) if isinstance(doc, dict) else None
    return doc
