"""SQL source: a PostgreSQL or SQLite table (or one read-only query), read into Arrow.

``strategy: full`` reads the whole relation in one snapshot; ``incremental`` reads the rows
at or after the committed cursor value minus ``lookback``, ordered by the cursor. Both stream
in chunks of ``chunk_rows``, so memory stays bounded whatever the table's size.

The modules, one concept each: ``config`` (the ``extract:`` block, URLs, read-only queries),
``connection`` (one class per database: PostgreSQL through ADBC, SQLite through ``sqlite3``;
driver errors as weir errors), ``reading`` (the statements, built with sqlglot, values bound),
``types`` (database values as arrays the contract's rules convert) and ``source``.
"""

from weir.sources.sql.config import SqlConfig
from weir.sources.sql.source import SqlExtraction, SqlSource

__all__ = ["SqlConfig", "SqlExtraction", "SqlSource"]
