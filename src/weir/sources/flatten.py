"""``flatten: true``: nested JSON objects become columns, so a typical API payload loads as is.

A record ``{"id": 1, "customer": {"name": "Ada", "address": {"city": "Paris"}}}`` becomes
``{"id": 1, "customer__name": "Ada", "customer__address__city": "Paris"}``: the keys on the
way down joined with :data:`SEPARATOR`. Arrays are values, never flattened: ``"items": [{…}]``
stays one column (a ``list<struct<…>>`` in the contract). Flattening stops at a key the
contract names as a column, so ``customer__address`` typed ``struct<city: string>`` keeps that
object whole. An empty object adds no column. Two keys that flatten to the same name (``"a__b"``
beside ``"a": {"b": …}``) make the record a parse problem, never a silent overwrite.
"""

from __future__ import annotations

from typing import Any

SEPARATOR = "__"


def flatten(record: dict[str, Any], keep: frozenset[str]) -> tuple[dict[str, Any], str | None]:
    """``record`` with its nested objects spread into columns; what is wrong with it, if
    anything (the rest of a sentence about the record)."""
    out: dict[str, Any] = {}
    twice: list[str] = []
    stack: list[tuple[str, dict[str, Any]]] = [("", record)]
    while stack:
        prefix, node = stack.pop()
        nested: list[tuple[str, dict[str, Any]]] = []
        for key, value in node.items():
            name = f"{prefix}{SEPARATOR}{key}" if prefix else key
            if isinstance(value, dict) and name not in keep:
                nested.append((name, value))
            elif name in out:
                twice.append(name)
            else:
                out[name] = value
        stack += reversed(nested)
    if twice:
        return out, (
            f"has the key {twice[0]!r} twice once nested objects are flattened "
            f"(a key spelled with {SEPARATOR!r} and an object's field)"
        )
    return out, None
