"""Drafts of a contract (ODCS v3) and of a pipeline file, from what a catalog says of a table.

``weir infer`` reads a table's catalog (weir.sources.sql.catalog) into a :class:`Table` and
writes the drafts with :func:`contract_yaml` and :func:`pipeline_yaml`: YAML text with comments
where a person has to decide (the owner, the SLA, PII suggested by a column's name, a type the
catalog could not pin down). A draft is a starting point, written once and then edited by
hand; a run never drafts anything (DESIGN.md, invariant 1).

The text is written here rather than dumped by a YAML library, so that comments sit next to
the lines they are about. Every scalar is written as JSON when it is not a plain word (JSON
is YAML), so no name, comment or enum label can break the document.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weir.errors import UsageError
from weir.spec import names, types

ODCS_VERSION = "v3.0.2"

_PII_WORDS = frozenset(
    {
        "email",
        "mail",
        "phone",
        "mobile",
        "fax",
        "address",
        "street",
        "postcode",
        "zip",
        "zipcode",
        "postal",
        "ip",
        "ssn",
        "birth",
        "birthday",
        "birthdate",
        "dob",
        "passport",
        "iban",
        "surname",
        "firstname",
        "lastname",
        "fullname",
        "username",
    }
)
"""Words of a column's name that suggest personal data (``billing_address``, ``ip``)."""
_PERSON_NAME = frozenset({"first", "last", "full", "given", "family", "middle", "maiden", "nick"})
"""``first_name``, ``customer_name``…: ``name`` with one of these is a person's name."""
_PERSON = frozenset({"customer", "user", "contact", "person", "employee", "client", "member"})
_CURSOR_NAMES = (
    "updated_at",
    "modified_at",
    "last_modified",
    "last_updated",
    "changed_at",
    "updated",
    "modified",
)
"""Columns that usually move with every change of a row: an incremental cursor's candidates."""
_TIME_TYPES = ("timestamp", "timestamptz", "date")
_LOGICAL = {
    "int8": "integer",
    "int16": "integer",
    "int32": "integer",
    "int64": "integer",
    "float32": "number",
    "float64": "number",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "date",
    "timestamptz": "date",
    "string": "string",
    "uuid": "string",
    "time": "string",
}
"""The ODCS ``logicalType`` of each contract type (ODCS: string, date, number, integer,
boolean, object, array)."""


@dataclass(frozen=True)
class Column:
    """One column as the catalog describes it, with its contract type already chosen."""

    source_name: str
    type: str
    """A contract type (``int64``, ``decimal(12,2)``, ``list<string>``)."""
    source_type: str
    """The type as the database declares it (``numeric(12,2)``, ``VARCHAR(80)``)."""
    required: bool = False
    key_position: int | None = None
    unique: bool = False
    description: str | None = None
    values: tuple[str, ...] = ()
    """Allowed values the catalog knows (an enum's labels, a CHECK … IN list)."""
    note: str | None = None
    """What a person should check about the type (written as a comment)."""


@dataclass(frozen=True)
class Table:
    """A table as its catalog describes it."""

    name: str
    """As it is read: ``public.orders`` or ``orders``."""
    source: str
    """The database, for the drafts' header: ``postgres host:5432/shop``."""
    columns: tuple[Column, ...]
    description: str | None = None
    unique_sets: tuple[tuple[str, ...], ...] = ()
    """Unique constraints over several columns (source names), the primary key not among them."""
    notes: tuple[str, ...] = field(default=())

    @property
    def keys(self) -> list[Column]:
        keyed = [c for c in self.columns if c.key_position is not None]
        return sorted(keyed, key=lambda c: c.key_position or 0)


@dataclass(frozen=True)
class Draft:
    """The drafted files' text, and what the command tells the user about them."""

    contract: str
    pipeline: str | None
    silver_names: dict[str, str]
    """Source column → silver column name."""
    pii: dict[str, str]
    """Silver column → why it looks like personal data."""
    cursor: str | None
    """The incremental cursor chosen (source name), or None: a full read."""

    def as_dict(self, table: Table, contract: Path, pipeline: Path | None) -> dict[str, Any]:
        """What ``weir infer --json`` prints."""
        return {
            "contract": str(contract),
            "pipeline": None if pipeline is None else str(pipeline),
            "table": table.name,
            "database": table.source,
            "primary_key": [self.silver_names[c.source_name] for c in table.keys],
            "cursor": self.cursor,
            "pii_suggested": self.pii,
            "columns": [
                {
                    "name": self.silver_names[c.source_name],
                    "source_name": c.source_name,
                    "type": c.type,
                    "source_type": c.source_type,
                    "required": c.required or c.key_position is not None,
                    "note": c.note,
                }
                for c in table.columns
            ],
        }


def name_for(table: str, given: str | None) -> str:
    """The contract id and pipeline name: ``given``, else the table's name made a valid one.
    UsageError when ``given`` is not a valid name."""
    if given is not None:
        try:
            return names.check_name(given, "contract")
        except ValueError as exc:
            raise UsageError(f"--name: {exc}") from None
    base = re.sub(r"[^a-z0-9_]+", "_", _snake(table.rpartition(".")[2])).strip("_")
    base = base if base[:1].isalpha() else f"t_{base}"
    return base[:63]


def write(drafted: Draft, contract: Path, pipeline: Path | None) -> None:
    """The drafts into their files (folders made as needed)."""
    for path, text in ((contract, drafted.contract), (pipeline, drafted.pipeline)):
        if path is not None and text is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")


def pii_reason(column: str) -> str | None:
    """Why ``column``'s name suggests personal data, or None."""
    words = [w for w in re.split(r"[^a-z0-9]+", _snake(column)) if w]
    hit = next((w for w in words if w in _PII_WORDS), None)
    if hit is not None:
        return f"its name holds {hit!r}"
    if "name" in words and (len(words) == 1 or _PERSON_NAME & set(words) or _PERSON & set(words)):
        return "it looks like a person's name"
    return None


def silver_names(columns: tuple[Column, ...]) -> dict[str, str]:
    """A valid, unique silver name for each source column (the source's own when it is one)."""
    chosen: dict[str, str] = {}
    for column in columns:
        base = _snake(column.source_name)
        base = re.sub(r"[^a-z0-9_]+", "_", base).strip("_") or "column"
        if not base[0].isalpha():
            base = f"c_{base}"
        if base in names.RESERVED:
            base = f"src{base}" if base.startswith("_") else f"src_{base}"
        base = base[:63]
        name, n = base, 1
        while name in chosen.values():
            n += 1
            name = f"{base[:59]}_{n}"
        chosen[column.source_name] = name
    return chosen


def choose_cursor(table: Table) -> Column | None:
    """The column an incremental read would follow: ``updated_at`` and its kin, of a time type."""
    by_name = {c.source_name.lower(): c for c in table.columns}
    for candidate in _CURSOR_NAMES:
        column = by_name.get(candidate)
        if column is not None and column.type in _TIME_TYPES:
            return column
    return None


def draft(table: Table, *, name: str, owner: str, extract: dict[str, Any] | None) -> Draft:
    """The contract (and with ``extract``, the pipeline file reading it) for ``table``."""
    renames = silver_names(table.columns)
    pii = {
        renames[c.source_name]: reason
        for c in table.columns
        if not types.is_nested(c.type) and (reason := pii_reason(c.source_name))
    }
    cursor = choose_cursor(table)
    contract = contract_yaml(table, name=name, owner=owner, renames=renames, pii=pii)
    pipeline = None
    if extract is not None:
        block = dict(extract)
        if cursor is not None:
            block |= {"strategy": "incremental", "cursor": cursor.source_name}
            block |= {"lookback": "10 minutes" if cursor.type != "date" else "1 day"}
        pipeline = pipeline_yaml(
            table,
            name=name,
            owner=owner,
            extract=block,
            keys=[renames[c.source_name] for c in table.keys],
            dedupe=renames[cursor.source_name] if cursor is not None else None,
        )
    return Draft(contract, pipeline, renames, pii, cursor.source_name if cursor else None)


def contract_yaml(
    table: Table, *, name: str, owner: str, renames: dict[str, str], pii: dict[str, str]
) -> str:
    lines = [
        f"# Drafted by `weir infer` from the catalog of {table.source}, table {table.name}.",
        "# A draft: review the owner, consumers, SLA, PII classification and checks, then",
        "# edit by hand; `weir validate` checks it. weir never redrafts it.",
        f"apiVersion: {ODCS_VERSION}",
        "kind: DataContract",
        f"id: {_scalar(name)}",
        f"name: {_scalar(name)}",
        "version: 0.1.0",
        "status: draft",
        "description:",
        f"  purpose: {_scalar(table.description or f'The rows of {table.name}.')}",
        "team:",
        f"  - {{username: {_scalar(owner)}, role: owner}}   # the team that answers for this data",
        "customProperties:",
        "  - {property: consumers, value: []}   # who reads it",
        "  - {property: breakingChangePolicy, value: version-bump}",
        f"  - {{property: sourceSystem, value: {_scalar(f'{table.source}, table {table.name}')}}}",
        "slaProperties:",
        "  - {property: freshness, value: 24, unit: h}   # a suggestion: how old may it get?",
        "schema:",
        f"  - name: {_scalar(name)}",
        f"    physicalName: {_scalar(table.name)}",
    ]
    if table.description:
        lines.append(f"    description: {_scalar(table.description)}")
    lines.append("    properties:")
    for column in table.columns:
        lines += _property(column, renames[column.source_name], pii)
    table_checks = [
        f"      - {{rule: unique, columns: {_flow([renames[c] for c in cols])}}}"
        for cols in table.unique_sets
    ]
    if table_checks:
        lines += ["    quality:", *table_checks]
    return "\n".join(lines) + "\n"


def _property(column: Column, name: str, pii: dict[str, str]) -> list[str]:
    pad = "        "
    lines = [f"      - name: {_scalar(name)}"]
    if name != column.source_name:
        lines.append(f"{pad}physicalName: {_scalar(column.source_name)}")
    comment = f"   # {column.note}" if column.note else f"   # {column.source_type}"
    lines.append(f"{pad}physicalType: {_scalar(column.type)}{_comment(comment)}")
    logical = _logical(column.type)
    if logical:
        lines.append(f"{pad}logicalType: {logical}")
    if column.required or column.key_position is not None:
        lines.append(f"{pad}required: true")
    if column.key_position is not None:
        lines += [f"{pad}primaryKey: true", f"{pad}primaryKeyPosition: {column.key_position}"]
    if name in pii:
        reason = f"   # suggested: {pii[name]}; confirm, or remove (PII is hashed in silver)"
        lines.append(f"{pad}classification: pii{_comment(reason)}")
    if column.description:
        lines.append(f"{pad}description: {_scalar(column.description)}")
    checks = []
    if column.values:
        checks.append(
            f"{pad}  - {{rule: accepted_values, validValues: {_flow(list(column.values))}, "
            "severity: warn}"
        )
    if column.unique and column.key_position is None:
        checks.append(f"{pad}  - {{rule: unique, severity: warn}}")
    if checks:
        lines += [f"{pad}quality:", *checks]
    return lines


def pipeline_yaml(
    table: Table,
    *,
    name: str,
    owner: str,
    extract: dict[str, Any],
    keys: list[str],
    dedupe: str | None,
) -> str:
    lines = [
        f"# Drafted by `weir infer` from the catalog of {table.source}, table {table.name}.",
        f"name: {_scalar(name)}",
        f"owner: {_scalar(owner)}",
        f"description: {_scalar(f'{table.name} → bronze → silver.{name}.')}",
        f"contract: {_scalar(name)}",
        "extract:",
    ]
    for key, value in extract.items():
        lines.append(f"  {key}: {_scalar(value)}")
    lines.append("  # deletes: {detect: keys, action: soft}   # rows deleted in the source")
    if dedupe is not None:
        lines += ["transform:", f"  dedupe_order_by: {_scalar(dedupe)}"]
    lines.append("load:")
    if keys:
        lines.append(f"  strategy: merge   # upsert on the primary key: {', '.join(keys)}")
    else:
        lines.append("  strategy: append   # no primary key: give the contract one to merge")
    return "\n".join(lines) + "\n"


def _logical(contract_type: str) -> str | None:
    if contract_type.startswith("decimal("):
        return "number"
    if types.is_nested(contract_type):
        return "object" if contract_type.startswith(("struct", "map")) else "array"
    return _LOGICAL.get(contract_type)


def _snake(text: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text).lower()


_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
_YAML_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"})


def _scalar(value: object) -> str:
    """``value`` as a YAML scalar: a plain word bare, anything else as JSON (JSON is YAML)."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int | float):
        return str(value)
    text = str(value)
    if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS:
        return text
    return json.dumps(text, ensure_ascii=False)


def _flow(values: list[Any]) -> str:
    return "[" + ", ".join(_scalar(v) for v in values) + "]"


def _comment(text: str) -> str:
    """A trailing comment on one line (a line break in it would end the comment)."""
    return " ".join(text.split("\n")).rstrip() if text.strip() != "#" else ""
