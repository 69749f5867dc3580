"""Storage options of the lakes in use: the one place delta-rs calls take them from.

An object-store lake (``s3://bucket/lake``, ``gs://…``, ``az://…``) needs options for
delta-rs's object store: credentials, region, endpoint, the S3 locking provider. Loading a
project registers its lake root with its options (:func:`register`); every ``DeltaTable``
and ``write_deltalake`` call in weir asks :func:`options_for` with the table's URI, so the
code that builds table URIs does not carry the options around. The registry is keyed by
lake root, so projects with different lakes can be loaded in one process; loading the same
lake again replaces its options.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

_options: dict[str, dict[str, str]] = {}
_lock = threading.Lock()


def _key(uri: str) -> str:
    return uri.removeprefix("file://").rstrip("/")


def register(root: str, options: Mapping[str, str]) -> None:
    """Tables at or under ``root`` are opened and written with ``options`` (none: without)."""
    with _lock:
        if options:
            _options[_key(root)] = dict(options)
        else:
            _options.pop(_key(root), None)


def options_for(uri: str) -> dict[str, str] | None:
    """The storage options of the lake holding the table at ``uri`` (None: no options)."""
    key = _key(uri)
    with _lock:
        roots = [r for r in _options if key == r or key.startswith(r + "/")]
        return dict(_options[max(roots, key=len)]) if roots else None


def is_remote(uri: str) -> bool:
    """True for an object-store URI (``s3://``, ``gs://``, ``az://``, …), not a local path."""
    return "://" in uri and not uri.startswith("file://")
