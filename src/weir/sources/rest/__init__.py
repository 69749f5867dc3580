"""REST source: pages of JSON from an HTTP API, read straight into Arrow.

One GET per page with ``httpx``; each body is parsed by pyarrow's JSON reader against an
envelope schema built from the contract, so no Python object is made per row. Pagination
styles: ``none``, ``page``, ``offset``, ``cursor`` and ``link`` (RFC 8288 ``Link: <…>;
rel="next"``). Incremental reads send ``watermark − lookback`` in a query parameter; the
position is the latest change time received (:mod:`weir.sources.incremental`). Header values are secrets: no message or notice
carries one, nor a query string.

The modules, one concept each: ``config`` (the ``extract:`` block), ``client`` (the httpx
client and what may be said about a request), ``fetch`` (one page and its retries),
``paging`` (the next page, and when a read must stop), ``parse`` (bodies → Arrow) and
``source`` (the Source, which keeps one client until closed, and its Extraction).
"""

from weir.sources.rest.config import RestConfig
from weir.sources.rest.source import RestExtraction, RestSource

__all__ = ["RestConfig", "RestExtraction", "RestSource"]
