"""DuckDB connections configured for weir: bounded memory, spill to the project's .weir/tmp,
and no access to anything else on the machine."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa

from weir.errors import TransformError


def connect(
    *,
    memory_limit: str = "4GB",
    temp_dir: Path | None = None,
    salt: str | None = None,
    ordered: bool = False,
    allowed_directories: Sequence[str | Path] = (),
) -> duckdb.DuckDBPyConnection:
    """An in-memory connection with external access disabled before any other SQL runs:
    files can be read or written only under ``allowed_directories`` (the lake) and
    ``temp_dir`` (spill), and no extension can be installed or loaded from disk — so SQL
    from config files cannot read the machine even if a check missed it. Settings cannot
    turn it back on (DuckDB refuses while the database runs).

    ``ordered``: results keep their input's row order (for work that lines results up
    with the rows they came from); otherwise DuckDB may reorder, which is faster."""
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{memory_limit}'")
    if not ordered:
        con.execute("SET preserve_insertion_order = false")
    # casts between TIMESTAMPTZ and TIMESTAMP mean UTC, whatever the machine's zone
    con.execute("SET TimeZone = 'UTC'")
    allowed = [
        str(Path(d).resolve()) if "://" not in str(d) else str(d) for d in allowed_directories
    ]
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True)
        con.execute("SET temp_directory = ?", [str(temp_dir)])
        allowed.append(str(temp_dir.resolve()))
    con.execute("SET allowed_directories = ?", [allowed])
    con.execute("SET enable_external_access = false")
    if salt is not None:
        con.execute("SET VARIABLE weir_salt = ?", [salt])
    return con


@contextmanager
def transform_sql(what: str, *, where: str, hint: str) -> Iterator[None]:
    """A DuckDB error in the block, raised as the TransformError ``what``: DuckDB's message."""
    try:
        yield
    except duckdb.Error as exc:
        raise TransformError(f"{what}: {exc}", where=where, hint=hint) from exc


def fetch_table(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[object] | None = None
) -> pa.Table:
    """Run ``sql`` and return the whole result as an Arrow table."""
    table: pa.Table = con.sql(sql, params=params).to_arrow_table()
    return table


def fetch_reader(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    batch_rows: int = 16_384,
    *,
    params: list[object] | None = None,
) -> pa.RecordBatchReader:
    """Run ``sql`` and stream the result as Arrow record batches (small ones: a delta-rs
    write reads a few ahead, see weir/memory.py)."""
    reader: pa.RecordBatchReader = con.sql(sql, params=params).to_arrow_reader(batch_rows)
    return reader


class RowCounter:
    """Counts the rows of a stream as the writer consumes it."""

    def __init__(self, source: pa.RecordBatchReader):
        self.source = source
        self.rows = 0

    def _batches(self) -> Iterator[pa.RecordBatch]:
        for batch in self.source:
            self.rows += batch.num_rows
            yield batch

    def reader(self) -> pa.RecordBatchReader:
        return pa.RecordBatchReader.from_batches(self.source.schema, self._batches())

    def close(self) -> None:
        """Release the query's result, so the connection takes the next statement even when
        the writer stopped half-way (DuckDB refuses a query while a result is open)."""
        self.source.close()
