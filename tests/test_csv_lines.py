"""Line numbers of CSV rows (sources/files/csv_python.CsvLines): asked in any order, as
batches converted in parallel ask them, without reading the file again from its start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from weir.sources.files.config import CsvOptions
from weir.sources.files.csv_python import CsvLines
from weir.sources.files.listing import DataFile


class CountingFileSystem(pafs.LocalFileSystem):  # type: ignore[misc]
    """The machine's own file system, counting how often a file is opened."""

    opened = 0

    def open_input_stream(self, *args: Any, **kwargs: Any) -> Any:
        type(self).opened += 1
        return super().open_input_stream(*args, **kwargs)


@dataclass
class Reader:
    fs: Any
    options: CsvOptions


def lines_of(path: Path, columns: int) -> CsvLines:
    stat = path.stat()
    file = DataFile(key=path.name, path=str(path), size=stat.st_size, mtime_ns=stat.st_mtime_ns)
    CountingFileSystem.opened = 0
    return CsvLines(Reader(CountingFileSystem(), CsvOptions()), file, 2, good=True)


def test_rows_asked_out_of_order_get_their_lines_from_one_read(tmp_path: Path) -> None:
    body = ["id,note"]
    expected = []
    for i in range(3000):
        expected.append(sum(part.count("\n") + 1 for part in body) + 1)
        if i % 700 == 5:
            body.append(f'{i},"spans\nthree\nlines"')  # a record over several lines
            body += ["", ""]  # and blank lines, which are not rows
        else:
            body.append(f"{i},x")
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(body) + "\n")
    lines = lines_of(path, 2)
    order = [*range(2000, 3000), *range(1000, 2000), *reversed(range(1000))]
    found = {row: lines.next(row) for row in order}
    assert found == {row: (expected[row], 2) for row in range(3000)}
    assert CountingFileSystem.opened == 1
    assert lines.next(None) == (expected[1], 2)  # the row after the last one asked (0)
    assert CountingFileSystem.opened == 1


def test_after_close_known_rows_need_no_read_and_later_ones_reopen(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("id,note\n" + "".join(f"{i},x\n" for i in range(100)))
    lines = lines_of(path, 2)
    assert lines.next(10) == (12, 2)
    lines.close()
    assert lines.next(3) == (5, 2) and CountingFileSystem.opened == 1
    assert lines.next(99) == (101, 2) and CountingFileSystem.opened == 2
    assert lines.next(100) is None  # past the last row: the readers disagree
    assert lines.next(50) == (52, 2)
