"""The ``extract:`` settings of a files source."""

from __future__ import annotations

import codecs
import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from weir.spec.base import Strict
from weir.spec.deletes import Deletes

Format = Literal["csv", "ndjson", "json", "parquet", "debezium"]

URL_SCHEMES = ("s3", "gs", "gcs", "hdfs", "viewfs", "abfs", "abfss", "file")
URL = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


class CsvOptions(Strict):
    """How CSV files are parsed (``extract.csv`` in a pipeline file)."""

    delimiter: str = Field(default=",", min_length=1, max_length=1)
    quote_char: str | None = Field(default='"', min_length=1, max_length=1)
    """None: fields are never quoted."""
    header: bool = True
    """False: the file has no header line; its columns are the contract's, in order."""
    null_values: tuple[str, ...] = ("", "NA", "NULL", "null")
    encoding: str = "utf8"

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        return value


class DebeziumOptions(Strict):
    """How ``format: debezium`` reads what an envelope's ``schema`` does not say."""

    time_unit: Literal["millis", "micros", "nanos"] = "micros"
    """The unit of an integer timestamp or time of day when the envelope carries no
    ``schema`` naming it (``io.debezium.time.MicroTimestamp`` and the like): Debezium's
    PostgreSQL connector sends ``timestamp`` and ``time`` columns as microseconds by
    default (``time.precision.mode: adaptive``)."""


class FilesConfig(Strict):
    reference: ClassVar[str] = "docs/sources.md (files)"
    """Where the fields are documented (config errors point there)."""
    source: str = "files"
    path: str = Field(min_length=1)
    """Directory, file or glob; relative to the project, or a URL (s3://, gs://, abfs://…)."""
    format: Format | None = None
    """Default: from the extension (``.csv``, ``.ndjson``/``.jsonl``, ``.json``, ``.parquet``)."""
    csv: CsvOptions = Field(default_factory=CsvOptions)
    batch_size_rows: int = Field(default=65_536, gt=0)
    block_size_bytes: int = Field(default=1 << 20, ge=1024)
    """Input parsed at a time by the CSV and NDJSON readers. A longer row or line is read
    whole all the same, up to ``MAX_LINE_BYTES`` (64 MiB). Memory is about 32 times this for
    CSV (pyarrow's read-ahead) and a few times this for NDJSON."""
    flatten: bool = False
    """JSON records only: nested objects become columns named ``outer__inner``
    (:mod:`weir.sources.flatten`)."""
    debezium: DebeziumOptions = Field(default_factory=DebeziumOptions)
    deletes: Deletes | None = None
    """``format: debezium`` only: what silver does with delete events (``detect: log``);
    default ``{detect: log, action: soft}``."""

    @model_validator(mode="after")
    def _flatten_json(self) -> FilesConfig:
        if self.flatten and self.format in ("csv", "parquet", "debezium"):
            raise ValueError(
                f"flatten applies to JSON records (format ndjson or json), not {self.format}"
            )
        return self

    @model_validator(mode="after")
    def _deletes_from_the_log(self) -> FilesConfig:
        if self.deletes is None:
            return self
        if self.format != "debezium":
            raise ValueError(
                "deletes applies to change events (format: debezium): other files hold no deletes"
            )
        if self.deletes.detect != "log":
            raise ValueError(
                "Debezium change events carry their deletes: use deletes: {detect: log}"
            )
        return self

    @field_validator("path")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        match = URL.match(value)
        if match and match[1].lower() not in URL_SCHEMES:
            raise ValueError(
                f"unsupported URL scheme {match[1]!r}; pyarrow.fs reads "
                + ", ".join(f"{s}://" for s in URL_SCHEMES)
            )
        return value
