"""Generated benchmark data: an ``orders`` dataset, its change batches, REST records, CSV.

Everything is vectorised (numpy + pyarrow) and seeded, so a run at a given scale always sees
the same rows. Columns use the *source* names of the ``orders`` contract in ``projects.py``
(``id`` becomes ``order_id`` in silver, ``email`` is PII, ...). A small share of rows breaks
warn-level rules (flagged in silver, never quarantined), so the checks' sample queries run as
they would on real data.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from weir.engine.duckdb import connect
from weir.engine.duckdb_engine import boundary_rows
from weir.transform.boundary import Boundary

LAST_DAY = dt.date(2025, 12, 31)
DAYS = 365
STATUSES = np.array(["placed", "paid", "shipped", "delivered", "cancelled"])
CURRENCIES = np.array(["EUR", "USD", "GBP"])
COUNTRIES = np.array(["DE", "FR", "NL", "US", "GB", "ES", "IT", "PL", "SE", "BE"])

SOURCE_SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64()),
        pa.field("order_date", pa.date32()),
        pa.field("customer_id", pa.int64()),
        pa.field("email", pa.string()),
        pa.field("status", pa.string()),
        pa.field("amount", pa.float64()),
        pa.field("quantity", pa.int32()),
        pa.field("currency", pa.string()),
        pa.field("country", pa.string()),
        pa.field("updated_at", pa.timestamp("us")),
    ]
)
_EPOCH_DAY = (LAST_DAY - dt.date(1970, 1, 1)).days - DAYS + 1
_US_PER_DAY = 86_400_000_000


def _strings(
    rng: np.random.Generator, values: np.ndarray, n: int, odd: str, rate: float
) -> pa.Array:
    """``n`` picks from ``values``; a share ``rate`` replaced by ``odd`` (a warn-level flag)."""
    picked = pa.array(values.tolist(), pa.string()).take(pa.array(rng.integers(0, len(values), n)))
    if not rate:
        return picked
    return pc.if_else(pa.array(rng.random(n) < rate), pa.scalar(odd), picked)


def _emails(customer: np.ndarray, rng: np.random.Generator) -> pa.Array:
    text = pc.cast(pa.array(customer), pa.string())
    emails = pc.binary_join_element_wise("user", text, "@example.com", "")
    bad = pa.array(rng.random(len(customer)) < 0.0005)
    return pc.if_else(bad, pc.binary_join_element_wise("user", text, ""), emails)


def orders(ids: np.ndarray, days: np.ndarray, seed: int, *, version: int = 0) -> pa.Table:
    """Rows for order ``ids`` placed on day offsets ``days`` (0 = first day of the year).

    ``version`` > 0 makes a later version of the same orders (updated a day later)."""
    rng = np.random.default_rng(seed)
    n = len(ids)
    customer = rng.integers(1, max(2, n // 10), n)
    amount = np.round(rng.gamma(2.0, 60.0, n), 2)
    amount[rng.random(n) < 0.001] = 25_000.0  # above the warn range
    seconds = rng.integers(0, 86_400, n) + 86_400 * version
    updated = (_EPOCH_DAY + days).astype(np.int64) * _US_PER_DAY + seconds * 1_000_000
    columns = [
        pa.array(ids, pa.int64()),
        pa.array((_EPOCH_DAY + days).astype(np.int32), pa.date32()),
        pa.array(customer, pa.int64()),
        _emails(customer, rng),
        _strings(rng, STATUSES, n, "lost", 0.0002),
        pa.array(amount, pa.float64()),
        pa.array(rng.integers(1, 12, n).astype(np.int32), pa.int32()),
        _strings(rng, CURRENCIES, n, "", 0.0),
        _strings(rng, COUNTRIES, n, "xx", 0.0001),
        pa.array(updated, pa.timestamp("us")),
    ]
    return pa.Table.from_arrays(columns, schema=SOURCE_SCHEMA)


def initial_days(rows: int) -> np.ndarray:
    """Day offsets of ``rows`` orders spread evenly over the year, in date order."""
    return (np.arange(rows, dtype=np.int64) * DAYS // rows).astype(np.int64)


def initial(rows: int, seed: int = 1) -> pa.Table:
    return orders(np.arange(1, rows + 1, dtype=np.int64), initial_days(rows), seed)


def changes(
    rows: int, changed: int, *, recent_days: int = 30, insert_share: float = 0.3, seed: int = 2
) -> pa.Table:
    """``changed`` rows for the last ``recent_days`` days: updates of existing orders (a day
    later, new status/amount) and inserts of new ones, shuffled."""
    rng = np.random.default_rng(seed)
    days = initial_days(rows)
    first = int(np.searchsorted(days, DAYS - recent_days))
    recent = rows - first
    updates = min(int(changed * (1 - insert_share)), int(recent * 0.85))
    inserts = changed - updates
    chosen = np.sort(rng.choice(recent, size=updates, replace=False)) + first
    new_ids = np.arange(rows + 1, rows + inserts + 1, dtype=np.int64)
    new_days = rng.integers(DAYS - recent_days, DAYS, inserts)
    table = pa.concat_tables(
        [
            orders(chosen + 1, days[chosen], seed + 1, version=1),
            orders(new_ids, new_days, seed + 2),
        ]
    )
    return table.take(pa.array(rng.permutation(table.num_rows)))


def batches(table: pa.Table, size: int = 65_536) -> pa.Table:
    """``table`` re-chunked as a source would deliver it."""
    return pa.Table.from_batches(table.to_batches(max_chunksize=size), schema=table.schema)


def csv_file(path: Path, size: int, chunk: int = 500_000) -> int:
    """Write orders to a CSV at ``path`` chunk by chunk (never all in memory) until it holds
    at least ``size`` bytes; returns the number of rows written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = 0
    with pa.OSFile(str(path), "wb") as sink, pa_csv.CSVWriter(sink, SOURCE_SCHEMA) as writer:
        while sink.tell() < size:
            ids = np.arange(rows + 1, rows + chunk + 1, dtype=np.int64)
            days = np.random.default_rng(rows).integers(0, DAYS, chunk)
            writer.write_table(orders(ids, np.sort(days), seed=100 + rows // chunk))
            rows += chunk
    return rows


def rest_records(n: int, seed: int = 3) -> list[dict[str, object]]:
    """``n`` JSON-ready records (ISO timestamps with Z), as an API would return them."""
    table = orders(np.arange(1, n + 1, dtype=np.int64), initial_days(n), seed)
    stamps = pc.strftime(table.column("updated_at"), format="%Y-%m-%dT%H:%M:%SZ")
    dates = pc.strftime(table.column("order_date"), format="%Y-%m-%d")
    table = table.set_column(9, "updated_at", stamps).set_column(1, "order_date", dates)
    return table.to_pylist()


def with_meta(table: pa.Table, batch: int = 1) -> pa.Table:
    """``table`` as a staged (bronze-shaped) batch: weir's meta columns appended."""
    rows = table.num_rows
    table = table.append_column("_run_id", pa.repeat(pa.scalar("bench", pa.string()), rows))
    table = table.append_column("_batch", pa.repeat(pa.scalar(batch, pa.int64()), rows))
    table = table.append_column("_row", pa.arange(0, rows).cast(pa.int64()))
    stamp = pa.scalar(0, pa.timestamp("us", tz="UTC"))
    return batches(table.append_column("_ingested_at", pa.repeat(stamp, rows)))


def through_boundary(boundary: Boundary, table: pa.Table, salt: str) -> pa.Table:
    """``table`` as a run stages it: PII columns as salted digests and the rules on raw PII
    values evaluated (weir.transform.boundary), so silver's SQL reads what it reads in a run."""
    con = connect(salt=salt, ordered=True)
    try:
        return boundary.apply(table, lambda sql, named: boundary_rows(con, sql, named))
    finally:
        con.close()


def staged_file(csv: Path, path: Path) -> None:
    """``csv`` re-written as an Arrow IPC file shaped like weir's staging file (typed columns
    plus meta columns, 64k-row batches), streaming."""
    types = {f.name: f.type for f in SOURCE_SCHEMA}
    convert = pa_csv.ConvertOptions(column_types=types, timestamp_parsers=[pa_csv.ISO8601])
    reader = pa_csv.open_csv(str(csv), convert_options=convert)
    writer = None
    with pa.OSFile(str(path), "wb") as sink:
        for batch in reader:
            table = with_meta(pa.Table.from_batches([batch]))
            if writer is None:
                writer = pa.ipc.new_file(sink, table.schema)
            writer.write_table(table, max_chunksize=65_536)
        if writer is not None:
            writer.close()
