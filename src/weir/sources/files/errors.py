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

_CODEC_WORDS = re.compile(
    r"compressed stream|inflate failed|decompress failed|decompression failed|snappy|"
    r"unexpected end of stream|thrift|deserializ|page header|corrupt|magic bytes",
    re.IGNORECASE,
)
"""What pyarrow says, in a plain OSError without an errno, when a compressed stream or a
Parquet file is damaged. pyarrow raises the same untyped OSError when an object store's
network fails, so for remote files these words are all there is to tell the two apart."""


class Unreadable(Exception):
    """The content of a file stops its reading; ``what`` says why, without any of its data."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


def content_problem(exc: BaseException, *, local: bool) -> str | None:
    """What is wrong with a file's content, when ``exc`` (raised while reading it) says so;
    None when ``exc`` is an I/O failure. By type, first: an OSError with an errno is the
    operating system's (a file that vanished, permissions), so I/O; pyarrow's parse errors
    (ArrowInvalid and the like, ValueError) are content. pyarrow reports decompression and
    Parquet damage as a plain OSError without an errno: content for a local file; for an
    object store, where the network fails the same way, only when its words say so
    (:data:`_CODEC_WORDS`). pyarrow's words are kept only where they hold no data
    (compression and Parquet structure); a parse error may quote a row, so only its kind is
    kept."""
    if isinstance(exc, UnicodeDecodeError):
        return f"the file is not valid {exc.encoding}"
    text = brief(str(exc))
    if isinstance(exc, OSError):
        if exc.errno or not (local or _CODEC_WORDS.search(text)):
            return None
        return f"the file is corrupt or truncated ({text})"
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
