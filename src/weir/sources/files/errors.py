"""What can go wrong while reading a file, sorted into the two kinds that matter.

*Content* problems — a corrupt or truncated compressed stream, a file that is not Parquet, a
transcoding error — are the file's fault: reading it again gives the same result, so they
become a parse problem of the file (a ``parse: …`` row, or an error in ``fail`` mode) and the
file counts as read. *I/O* failures — the network, permissions, a file that vanished — say
nothing about the file: they raise (TransientSourceError for object stores), the run fails
and the file is read again by the next one.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import pyarrow as pa

from weir.errors import SourceError, TransientSourceError, WeirError

READ_ERRORS = (pa.ArrowException, OSError, ValueError)

_CONTENT_IO = re.compile(
    r"compressed stream|inflate failed|decompress failed|decompression failed|snappy|"
    r"unexpected end of stream|thrift|deserializ|page header|corrupt|magic bytes|parquet",
    re.IGNORECASE,
)


class Unreadable(Exception):
    """The content of a file stops its reading; ``what`` says why, without any of its data."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def content_problem(exc: BaseException, *, local: bool) -> str | None:
    """What is wrong with a file's content, when ``exc`` (raised while reading it) says so;
    None when ``exc`` is an I/O failure. pyarrow reports many content errors as OSError: one
    of a local file without an errno is content, one of an object store only when its words
    say so (else it may be the network). pyarrow's words are kept only where they hold no data
    (compression and Parquet structure); a parse error may quote a row, so only its kind is
    kept."""
    if isinstance(exc, UnicodeDecodeError):
        return f"the file is not valid {exc.encoding}"
    text = brief(str(exc))
    if isinstance(exc, READ_ERRORS) and _CONTENT_IO.search(text):
        return f"the file is corrupt or truncated ({text})"
    if isinstance(exc, OSError):
        return f"the file is corrupt or truncated ({text})" if local and not exc.errno else None
    if isinstance(exc, pa.ArrowException | ValueError):
        return f"the file cannot be parsed ({_kind(text)})"
    return None


def io_error(exc: BaseException, where: str, *, remote: bool) -> WeirError:
    detail = brief(str(exc)) if isinstance(exc, OSError) else _kind(brief(str(exc)))
    if isinstance(exc, OSError) and remote:
        return TransientSourceError(
            f"could not read: {detail}",
            where=where,
            hint="check the network and the credentials for this object store",
        )
    return SourceError(f"could not read: {detail}", where=where)


def _kind(text: str) -> str:
    """The kind of an error (``CSV parse error``) without what follows, which may be data."""
    return text.split(":", 1)[0]


@contextlib.contextmanager
def io_errors(where: str, *, remote: bool) -> Iterator[None]:
    """Lower-level errors raised inside become weir errors naming ``where``."""
    try:
        yield
    except WeirError:
        raise
    except READ_ERRORS as exc:
        raise io_error(exc, where, remote=remote) from exc


def brief(text: str, limit: int = 160) -> str:
    line = text.strip().split("\n", 1)[0]
    line = line.split(". If ", 1)[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"
