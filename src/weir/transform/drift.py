"""Schema drift: what the source (or the contract) changed, and whether it is breaking.

Additive: a new column the contract does not know → evolve the tables, warn, record it.
Breaking: a contract column is missing, renamed, or arrives with a type that does not
widen losslessly into the contract's → fail before anything is written, showing this diff.

Nested columns compare field by field (:func:`weir.spec.types.widening`): a struct field the
data lacks is NULL, not drift; a field whose type does not widen is a type change of the
column, shown with both full types. Types are compared by their contract spelling, so uuid and
time (stored as text, marked in the field's metadata) match text and their Parquet types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from weir.spec.types import type_name, widening


@dataclass
class Diff:
    added: list[tuple[str, str]] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def breaking(self) -> bool:
        return bool(self.removed or self.changed)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)

    def lines(self) -> list[str]:
        out = [f"+ {name}: {typ}   (new column, not in the contract)" for name, typ in self.added]
        out += [f"- {name}   (in the contract, missing from the data)" for name in self.removed]
        out += [f"~ {name}: {old} → {new}   (type change)" for name, old, new in self.changed]
        for name in self.removed:
            for new, typ in self.added:
                out.append(f"? {name} → {new} ({typ}) may be a rename")
        return out

    def render(self, title: str) -> str:
        return title + "\n" + "\n".join("    " + line for line in self.lines())


def diff(expected: pa.Schema, observed: pa.Schema, *, ignore: set[str] | None = None) -> Diff:
    """Compare an observed schema with the expected one (names are source-side)."""
    skip = ignore or set()
    result = Diff()
    have = {f.name: f for f in observed}
    for fld in expected:
        if fld.name in skip:
            continue
        got = have.get(fld.name)
        if got is None:
            result.removed.append(fld.name)
        elif not widening(type_name(got), type_name(fld)) and not pa.types.is_null(got.type):
            result.changed.append((fld.name, type_name(fld), type_name(got)))
    wanted = {f.name for f in expected}
    for fld in observed:
        if fld.name not in wanted and fld.name not in skip:
            result.added.append((fld.name, type_name(fld)))
    return result
