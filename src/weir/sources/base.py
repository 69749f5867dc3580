"""The source interface: every connector is one class with these few methods.

A source turns its config plus the committed position into an :class:`Extraction`: a stream
of Arrow record batches in exactly the schema the engine asks for (the contract's source-side
schema, never inferred) and, once the stream is exhausted, the position it reached. The engine
commits that position in the same Delta commit as the rows (see ``weir.lake``), so a source
never persists anything itself.

A source may hold a connection (an HTTP client, a database connection) from its first use to
:meth:`Source.close`, so that :meth:`Source.probe` and every :meth:`Source.extract` of one run
share it. Whoever makes a source closes it, on every path: ``with make(config, context) as
source: …``.
"""

from __future__ import annotations

import abc
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Generic, Literal, Self, TypeVar

import pyarrow as pa

from weir import layout
from weir.errors import SchemaDriftError
from weir.sources.parse import Converted, convert
from weir.sources.problems import REASONS, Problem, reasons_column, value_problem
from weir.spec.base import Strict
from weir.spec.deletes import Deletes

Position = Mapping[str, Any]
"""JSON-serialisable; what the source needs to continue where the last commit ended."""

OnParseError = Literal["quarantine", "fail"]

PARSE_ERRORS = layout.PARSE_ERRORS.name
"""With ``on_parse_error: quarantine``, the last column of every batch a source yields (after
the contract's and the source's meta columns), typed ``list<string>``: NULL for a row that
parsed cleanly, else its reasons (``parse: column <name>, value '<v>' (line <n>)``, see
:mod:`weir.sources.problems`). The values that could not be parsed are NULL in that row."""


def _silent(message: str) -> None:
    """The default :attr:`SourceContext.notify`: notices go nowhere."""


@dataclass(frozen=True)
class SourceContext:
    """What a source may know about the run it serves."""

    pipeline: str
    project_dir: str
    run_id: str
    keys: tuple[str, ...] = ()
    """Source-side names of the contract's natural key columns."""
    pii: tuple[str, ...] = ()
    """Source-side names of PII columns: their values must never reach a message or log."""
    notify: Callable[[str], None] = field(default=_silent, compare=False)
    """Where the source reports what it is doing while it reads (a retry and its wait). The
    engine shows these notices, scrubbed of secrets; a source never logs by itself. Notices
    are not warnings: what the run record must keep goes in :attr:`Extraction.warnings`."""
    on_parse_error: OnParseError = "fail"
    """``fail``: the first value, line or file that cannot be parsed raises (SchemaDriftError
    for a value, SourceError for a line or a file). ``quarantine``: the source yields such rows
    with their reasons in :data:`PARSE_ERRORS` and reads on."""


@dataclass
class Extraction(abc.ABC):
    """One run's read: batches first, then the position they reach."""

    schema: pa.Schema
    warnings: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    """What the source measured while reading (a CDC slot's replication lag), filled by
    ``batches``; the run record keeps it among its ``load_metrics``."""
    keep_position: bool = False
    """Set by ``batches`` when the position moved although no row did, and the source needs
    it kept (a CDC slot may recycle its WAL only up to a committed position): the engine
    then commits the position alone, a batch without rows, and calls ``Source.committed``."""

    @abc.abstractmethod
    def batches(self) -> Iterator[pa.RecordBatch]:
        """Record batches conforming exactly to ``schema`` (+ the source's meta columns)."""

    @abc.abstractmethod
    def position(self) -> dict[str, Any]:
        """The position after every batch was consumed; called once, after ``batches``."""

    def watermark(self) -> str | None:
        """A short human form of :meth:`position` for summaries and run records."""
        return None

    def overlap(self) -> tuple[str | None, str | None] | None:
        """``(column, lower bound)`` when this read may repeat rows an earlier run delivered:
        an incremental source re-reading a lookback window, or ``(None, None)`` for a source
        that re-reads everything. Rows (at or after the bound) that bronze already holds,
        identical in every source column, are not ingested again; they are counted as
        ``rows_already_ingested``. None: this read never repeats rows."""
        return None


ConfigT = TypeVar("ConfigT", bound=Strict)


class Source(abc.ABC, Generic[ConfigT]):
    """Base class of every connector: ``class RestSource(Source[RestConfig])`` with a
    ``kind``. The type argument is the source's ``Config`` (the model its ``extract:``
    block is validated with), set from it for the loader and the registry."""

    kind: ClassVar[str]
    Config: ClassVar[type[Strict]]
    meta_columns: ClassVar[dict[str, pa.DataType]] = {}
    """Columns the source adds to each batch besides the contract's (e.g. ``_source_file``)."""

    def __init__(self, config: ConfigT, context: SourceContext):
        self.config: ConfigT = config
        self.context = context

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in cls.__dict__.get("__orig_bases__", ()):
            args = typing.get_args(base) if typing.get_origin(base) is Source else ()
            if args and isinstance(args[0], type) and issubclass(args[0], Strict):
                cls.Config = args[0]

    def close(self) -> None:
        """Release what the source holds (connections, clients); the default holds nothing.
        Safe to call twice. Extractions of a closed source must not be read any more."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def probe(self, position: Position | None, schema: pa.Schema | None = None) -> pa.Schema | None:
        """The schema of the pending data as the source offers it, read cheaply (headers,
        footers); None when it cannot be known before extraction. Used for drift checks.

        ``schema`` is the contract's: text formats without types (CSV) report its types for
        the columns it names, and ``string`` for the others."""
        return None

    @classmethod
    def unreadable(cls, config: Any, schema: pa.Schema) -> str | None:
        """Why this source cannot deliver the contract's ``schema`` whatever the data (a CSV
        file and a struct column, say): checked when the project loads. None: it can."""
        return None

    @classmethod
    def secrets(cls, config: Any) -> frozenset[str]:
        """Credentials inside the config's values (a URL's password): the loader refuses one
        that was written into the file rather than read with ``${env:…}``, and scrubs them
        from every message and record. The default: none."""
        return frozenset()

    @abc.abstractmethod
    def extract(self, position: Position | None, schema: pa.Schema) -> Extraction:
        """Start reading everything after ``position``, shaped as ``schema``."""

    def committed(self, position: Position) -> None:
        """Called by the engine after the bronze commit that holds ``position`` (an
        extraction's :meth:`Extraction.position`), on a source already closed: open what is
        needed and release it before returning. A source whose server keeps state of its own
        releases it here (a CDC slot is advanced, so the database may recycle its log). The
        process may stop before this call, or the call fail: the next ``extract`` gets the
        committed position and must catch the server up itself. The default does nothing."""

    @classmethod
    def emits_changes(cls, config: Any) -> bool:
        """Whether this source, so configured, yields *change events*: each row is one change
        of one source row — its image (after an insert, update or snapshot read; the key, at
        least, of a deleted row; NULLs for a truncate) in the contract's columns, then the
        source's :attr:`meta_columns`, then :data:`weir.layout.CHANGE` (``_op``, ``_lsn``,
        ``_seq``, ``_tx_id``, ``_committed_at``) with the values :data:`weir.layout.OPS`
        describes. Silver then applies the events by key in ``(_lsn, _seq)`` order
        (weir/lake/changes.py) instead of merging rows, and the source's :meth:`deletes`
        (``detect: log``) says whether a delete is soft or hard. The default: it does not."""
        return False

    @classmethod
    def meta_fields(cls, config: Any) -> list[pa.Field]:
        """Every column the source adds after the contract's, in order: :attr:`meta_columns`,
        then the change-event columns when it :meth:`emits_changes`."""
        fields = [pa.field(name, kind) for name, kind in cls.meta_columns.items()]
        if cls.emits_changes(config):
            fields += [column.field() for column in layout.CHANGE]
        return fields

    @classmethod
    def deletes(cls, config: Any) -> Deletes | None:
        """How this source reports deleted rows (its config's ``deletes:``), or None: it does
        not. The default reads a ``deletes`` field of the config when it has one."""
        value = getattr(config, "deletes", None)
        return value if isinstance(value, Deletes) else None

    @classmethod
    def lists_keys(cls, config: Any) -> bool:
        """Whether :meth:`key_set` lists the keys of a source so configured (checked when
        the project loads: ``deletes: {detect: keys}`` needs it). The default: it does not."""
        return False

    def key_set(self, keys: Sequence[str]) -> Iterator[pa.RecordBatch] | None:
        """Every natural key the source holds now, as batches of the ``keys`` columns
        (source-side names, in that order), streamed in bounded memory: ``deletes: {detect:
        keys}`` compares them with silver's. None: this source cannot list its keys."""
        return None

    @staticmethod
    def describe(position: Position | None) -> str | None:
        """Human form of a committed position (``watermark_before``)."""
        if not position:
            return None
        return ", ".join(f"{k}={v}" for k, v in position.items() if not isinstance(v, list | dict))


def conform(
    batch: pa.RecordBatch,
    schema: pa.Schema,
    *,
    where: str,
    context: SourceContext | None = None,
    label: Callable[[int], str] | None = None,
    meta: Sequence[tuple[pa.Field, pa.Array]] = (),
    problems: Sequence[Problem] = (),
) -> pa.RecordBatch:
    """Shape ``batch`` as ``schema``: reorder, convert strictly (see :mod:`weir.sources.parse`),
    fill absent nullable columns with NULL, then append the ``meta`` columns.

    A NULL is never an error here, not even in a required column: the engine quarantines such
    rows. A required column missing from the batch altogether is breaking drift
    (SchemaDriftError). A value that cannot be converted is a problem, as are ``problems`` (a
    source's own findings for rows of ``batch``, e.g. a line that is not a record): with
    ``context.on_parse_error`` ``fail`` (or no context) the first one raises; with
    ``quarantine`` the result has one more column, :data:`PARSE_ERRORS`. ``label`` names a
    row for the reasons (``line 7``); default ``row <n>``, counted from 1 in the batch.
    """
    hidden = frozenset(context.pii) if context is not None else frozenset()
    arrays: list[pa.Array] = []
    failures: list[tuple[int, pa.Field, Converted]] = []
    for fld in schema:
        index = batch.schema.get_field_index(fld.name)
        if index < 0:
            if not fld.nullable:
                raise SchemaDriftError(
                    f"required column {fld.name!r} is missing",
                    where=where,
                    hint="the source dropped or renamed it; update the contract or the source",
                )
            arrays.append(pa.nulls(batch.num_rows, fld.type))
            continue
        converted = convert(batch.column(index), fld)
        failures += [(row, fld, converted) for row in converted.failed]
        arrays.append(converted.values)
    quarantine = context is not None and context.on_parse_error == "quarantine"
    found = [*problems, *_value_problems(failures, label or _row, hidden, every=quarantine)]
    order = {name: index for index, name in enumerate(schema.names)}
    found.sort(key=lambda p: (p.row, -1 if p.column is None else order.get(p.column, -1)))
    if found and not quarantine:
        raise found[0].error(where)
    fields = [*schema, *(fld for fld, _ in meta)]
    arrays += [array for _, array in meta]
    if quarantine:
        fields.append(pa.field(PARSE_ERRORS, REASONS))
        arrays.append(reasons_column(batch.num_rows, found))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def _value_problems(
    failures: list[tuple[int, pa.Field, Converted]],
    label: Callable[[int], str],
    hidden: frozenset[str],
    *,
    every: bool,
) -> list[Problem]:
    """Problems for the values that failed, rows labelled in ascending order (a label may
    read the file forwards); only the first one unless ``every``."""
    if not failures:
        return []
    failures.sort(key=lambda failure: failure[0])
    if not every:
        failures = failures[:1]
    labels: dict[int, str] = {}
    problems = []
    for row, fld, converted in failures:
        if row not in labels:
            labels[row] = label(row)
        part, raw, expected = converted.explain(row, fld)
        problems.append(
            value_problem(
                row, fld.name, raw, labels[row], expected, hidden=fld.name in hidden, part=part
            )
        )
    return problems


def _row(index: int) -> str:
    return f"row {index + 1}"
