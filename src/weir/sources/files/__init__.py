"""Files source: CSV, NDJSON, JSON, Parquet and Debezium change-event files from a directory,
one file or a glob.

Listing (:mod:`.listing`): a directory, a file or a glob, local or on an object store
(``pyarrow.fs``). Position (:mod:`.position`): the set of ingested files, committed with the
rows; the same key is the ``_source_file`` column of every row. One reader per format
(``csv_reader``, ``ndjson_reader``, ``json_reader``, ``parquet_reader``, ``debezium_reader``)
yields rows as read; ``conform()`` converts them by weir's strict rules
(:mod:`weir.sources.parse`). ``format: debezium`` yields change events
(:meth:`FilesSource.emits_changes`): silver applies them by key (weir/lake/changes.py).

Types are never inferred: every value is converted to the contract's type by one rule per
type, whatever the format. What cannot be read — a value, a line, a file — is a parse problem
(:mod:`weir.sources.problems`): with ``on_parse_error: fail`` the first one fails the run
naming the file, the column, the line and the value (``***`` for PII); with ``quarantine``
the row is yielded with its reasons in ``_parse_errors`` and the rest of the file loads. A
file that cannot be read at all yields one such row, so it is recorded as ingested and
nothing passes silently. I/O failures are errors, never parse problems: the file is read
again by the next run.

Memory stays bounded whatever the file size: CSV and NDJSON are read by blocks
(``block_size_bytes``; pyarrow's CSV reader reads up to 32 blocks ahead, about 40 MiB with
the default 1 MiB), Parquet a page at a time, and batches hold at most ``batch_size_rows``
rows. ``format: json`` (one top-level array) is read whole, for small files. CSV and JSON
files ending in ``.gz``, ``.bz2``, ``.zst``, ``.lz4`` or ``.br`` are decompressed on the fly.
"""

from __future__ import annotations

from typing import ClassVar

import pyarrow as pa

from weir.errors import ConfigError, WeirError
from weir.sources.base import Extraction, Position, Source
from weir.sources.files.config import CsvOptions, FilesConfig, Format
from weir.sources.files.csv_reader import CsvReader
from weir.sources.files.debezium_reader import DebeziumReader
from weir.sources.files.errors import Unreadable, io_errors
from weir.sources.files.extraction import FilesExtraction
from weir.sources.files.json_reader import JsonArrayReader
from weir.sources.files.listing import Listing, format_of, list_files
from weir.sources.files.ndjson_reader import NdjsonReader
from weir.sources.files.parquet_reader import ParquetReader
from weir.sources.files.position import ingested, pending, summary
from weir.sources.files.reading import SOURCE_FILE, Reader, union
from weir.sources.problems import file_problem
from weir.spec.deletes import Deletes
from weir.spec.types import type_name


class FilesSource(Source[FilesConfig]):
    kind = "files"
    meta_columns: ClassVar[dict[str, pa.DataType]] = {SOURCE_FILE: pa.string()}

    def probe(self, position: Position | None, schema: pa.Schema | None = None) -> pa.Schema | None:
        """Union of what the pending files offer, from CSV headers, Parquet footers and the
        first block of NDJSON. Pass the contract's ``schema`` to get its types for the CSV
        columns it knows (others are strings); without it every CSV column is a string and
        headerless CSV files offer nothing. A file whose content cannot be read offers
        nothing with ``on_parse_error: quarantine`` (its read yields the problem), and fails
        the probe naming it with ``fail``."""
        found = self._listing(schema)
        todo, _ = pending(found.files, ingested(position))
        if not todo:
            return None
        reader = self._reader(found)
        offers = []
        for file in todo:
            with io_errors(file.key, remote=found.remote):
                try:
                    offered = reader.offered(file, schema)
                except Unreadable as exc:
                    if self.context.on_parse_error == "fail":
                        raise _failure(exc, file.key) from None
                    continue
            if offered is not None and len(offered):
                offers.append(offered)
        return union(offers) if offers else None

    def extract(self, position: Position | None, schema: pa.Schema) -> Extraction:
        found = self._listing(schema)
        done = ingested(position)
        todo, changed = pending(found.files, done)
        return FilesExtraction(
            schema=schema,
            warnings=[*found.warnings, *changed],
            pending=todo,
            ingested=done,
            reader=self._reader(found) if todo else None,
            batch_size_rows=self.config.batch_size_rows,
            remote=found.remote,
            context=self.context,
            changes=self.emits_changes(self.config),
        )

    @staticmethod
    def describe(position: Position | None) -> str | None:
        return summary(ingested(position)) if position else None

    @classmethod
    def emits_changes(cls, config: FilesConfig) -> bool:
        """``format: debezium``: each line is one change event."""
        return config.format == "debezium"

    @classmethod
    def deletes(cls, config: FilesConfig) -> Deletes | None:
        """Debezium's delete events, soft by default (``deletes: {detect: log, action: …}``)."""
        if not cls.emits_changes(config):
            return None
        return config.deletes or Deletes(detect="log")

    @classmethod
    def unreadable(cls, config: FilesConfig, schema: pa.Schema) -> str | None:
        """CSV holds scalars only: a struct, list or map column is a config error."""
        return _scalars_only(config.format or format_of(config.path), config, schema)

    def _listing(self, schema: pa.Schema | None) -> Listing:
        found = list_files(self.config.path, self.config.format, self.context)
        why = _scalars_only(found.format, self.config, schema)
        if why is not None:  # the format was only known from the files found
            raise ConfigError(why, where=self.config.path, hint=_HINT)
        return found

    def _reader(self, found: Listing) -> Reader:
        config, hidden, local = self.config, frozenset(self.context.pii), not found.remote
        if found.format == "csv":
            return CsvReader(found.fs, config.csv, config.block_size_bytes, local)
        if found.format == "parquet":
            return ParquetReader(found.fs, config.block_size_bytes, config.batch_size_rows, local)
        if found.format == "debezium":
            return DebeziumReader(
                found.fs,
                config.block_size_bytes,
                config.batch_size_rows,
                config.debezium.time_unit,
                hidden,
                local,
            )
        if found.format == "json":
            return JsonArrayReader(
                found.fs, config.batch_size_rows, hidden, local, flatten=config.flatten
            )
        return NdjsonReader(
            found.fs, config.block_size_bytes, hidden, local, flatten=config.flatten
        )


_HINT = (
    "read JSON records (format ndjson or json) or Parquet for nested columns, or declare "
    "the nested parts as scalar columns"
)


def _scalars_only(
    format: Format | None, config: FilesConfig, schema: pa.Schema | None
) -> str | None:
    if config.flatten and format in ("csv", "parquet"):
        return f"flatten applies to JSON records (format ndjson or json); {config.path} is {format}"
    if format != "csv" or schema is None:
        return None
    nested = [f.name for f in schema if pa.types.is_nested(f.type)]
    if not nested:
        return None
    return (
        f"CSV holds scalar values only, but the contract's column {nested[0]!r} is "
        f"{type_name(schema.field(nested[0]))}"
    )


def _failure(exc: Unreadable, where: str) -> WeirError:
    return file_problem(0, exc.what).error(where)


__all__ = ["SOURCE_FILE", "CsvOptions", "FilesConfig", "FilesExtraction", "FilesSource", "Format"]
