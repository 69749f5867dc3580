"""Who is to be forgotten: the command line's selector, checked against the project and
turned into the values the tables hold.

Two ways to name a data subject:

- by the **natural key of a pipeline**: ``PIPELINE col=value …``, one pair per key column,
  values typed by the contract (a key column that is PII is hashed like any PII value);
- by a **PII value**: ``col=value`` naming a PII column by its silver name; the value is
  typed by the contract and hashed with the salt exactly as the boundary hashes it
  (transform/boundary.py), in every pipeline whose contract has the column, or in the
  pipeline named before it.

The raw values live only in memory: messages name columns, never values, and the audit
keeps a salted fingerprint of the selector (:attr:`Subject.fingerprint`), which differs from
the digests the tables hold.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any, Literal

import duckdb

from weir.engine.duckdb import connect
from weir.errors import ConfigError, UsageError
from weir.hints import did_you_mean
from weir.spec import Pipeline, Project
from weir.spec.types import duckdb_type
from weir.transform.boundary import digest


@dataclass(frozen=True)
class Request:
    """The selector as given: ``pipeline`` (or None) and ``(column, value)`` pairs."""

    pipeline: str | None
    pairs: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, words: list[str], read_value: Any = None) -> Request:
        """``[PIPELINE] COLUMN=VALUE …``; a VALUE of ``-`` is read from ``read_value()``
        (standard input), so it stays out of the shell's history."""
        pipeline = None
        pairs = []
        for i, word in enumerate(words):
            column, sep, value = word.partition("=")
            if not sep:
                if i == 0:
                    pipeline = word
                    continue
                raise UsageError(
                    f"expected COLUMN=VALUE, got a word without '=' (argument {i + 1})",
                    hint="weir forget [PIPELINE] COLUMN=VALUE … --reason '…'",
                )
            if value == "-" and read_value is not None:
                value = read_value()
            if not column or value == "":
                raise UsageError(
                    f"argument {i + 1} needs a column and a value (COLUMN=VALUE)",
                    hint="weir forget email=VALUE, or weir forget PIPELINE KEY=VALUE",
                )
            pairs.append((column, value))
        if not pairs:
            raise UsageError(
                "say who to forget: COLUMN=VALUE",
                hint="weir forget email=VALUE (a PII column), or weir forget PIPELINE KEY=VALUE",
            )
        return cls(pipeline, tuple(pairs))


@dataclass(frozen=True)
class Selection:
    """The subject in one pipeline's own tables: rows whose ``columns`` (silver names) hold
    ``values`` (typed; digests for PII columns)."""

    pipeline: Pipeline
    columns: tuple[str, ...]
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Subject:
    by: Literal["key", "pii"]
    columns: tuple[str, ...]
    pipeline: str | None
    selections: tuple[Selection, ...]
    fingerprint: str
    """``sha256(salt || 'weir:forget:' || selector)``: what the audit keeps of the subject."""
    secrets: frozenset[str]
    """Texts that must not appear anywhere: the raw values (of text columns) and their
    digests."""

    def describe(self) -> str:
        """The selector for people, without its values."""
        pairs = " ".join(f"{c}=…" for c in self.columns)
        what = f"{self.pipeline} {pairs}" if self.by == "key" else pairs
        where = ", ".join(s.pipeline.name for s in self.selections)
        kind = "natural key" if self.by == "key" else "PII value, salted"
        return f"{what} ({kind}) in {where}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "pipeline": self.pipeline,
            "columns": list(self.columns),
            "pipelines": [s.pipeline.name for s in self.selections],
            "fingerprint": self.fingerprint,
        }


def salt_of(project: Project) -> str:
    name = project.spec.pii_salt_env
    salt = os.environ.get(name)
    if not salt:
        raise ConfigError(
            f"environment variable {name} is not set: forget hashes the subject with the salt",
            where=str(project.root / "weir.yml"),
            hint=f"export {name} with the salt the pipelines were run with",
        )
    return salt


def resolve(project: Project, request: Request) -> Subject:
    """The subject ``request`` names, checked against the project (UsageError otherwise)."""
    salt = salt_of(project)
    con = connect(memory_limit="256MB", salt=salt)
    try:
        if request.pipeline is not None:
            pipeline = project.pipeline(request.pipeline)
            columns = tuple(c for c, _ in request.pairs)
            if sorted(columns) == sorted(pipeline.keys):
                return _by_key(con, salt, pipeline, request)
            _single_pii(pipeline, request)
            return _by_pii(con, salt, [pipeline], request)
        if len(request.pairs) != 1:
            raise UsageError(
                "several COLUMN=VALUE pairs name a composite key: say whose key it is",
                hint="weir forget PIPELINE KEY1=VALUE KEY2=VALUE …",
            )
        return _by_pii(con, salt, _holding(project, request.pairs[0][0]), request)
    finally:
        con.close()


def _single_pii(pipeline: Pipeline, request: Request) -> None:
    """UsageError unless ``request`` is one pair naming a PII column of ``pipeline``."""
    keys = ", ".join(pipeline.keys) or "none"
    columns = [c for c, _ in request.pairs]
    if len(columns) > 1 or columns[0] in pipeline.keys:
        raise UsageError(
            f"{', '.join(columns)} is not the natural key of {pipeline.name} ({keys})",
            hint=f"give a value for each key column: weir forget {pipeline.name} "
            + " ".join(f"{k}=…" for k in pipeline.keys),
        )
    column = columns[0]
    if column in pipeline.contract.pii_columns:
        return
    known = pipeline.silver_columns
    if column not in known:
        raise UsageError(
            f"pipeline {pipeline.name} has no column {column!r}",
            hint=did_you_mean(column, known) or f"its columns: {', '.join(known)}",
        )
    raise UsageError(
        f"column {column!r} of {pipeline.name} is neither PII nor its natural key ({keys})",
        where=pipeline.contract.path,
        hint="forget selects a subject by a PII column (classification: pii) or by the key; "
        f"PII columns of {pipeline.name}: {', '.join(pipeline.contract.pii_columns) or 'none'}",
    )


def _holding(project: Project, column: str) -> list[Pipeline]:
    """The pipelines whose contract has PII column ``column`` (UsageError when none)."""
    found = [p for p in project.pipelines.values() if column in p.contract.pii_columns]
    if found:
        return sorted(found, key=lambda p: p.name)
    keyed = sorted(p.name for p in project.pipelines.values() if column in p.keys)
    if keyed:
        raise UsageError(
            f"{column!r} is the natural key of {', '.join(keyed)}, not a PII column",
            hint=f"name the pipeline: weir forget {keyed[0]} {column}=…",
        )
    if any(column in p.silver_columns for p in project.pipelines.values()):
        raise UsageError(
            f"column {column!r} is not PII in any contract",
            hint="forget selects a subject by a PII column (classification: pii), or by a "
            "pipeline's natural key: weir forget PIPELINE KEY=…",
        )
    pii = {c for p in project.pipelines.values() for c in p.contract.pii_columns}
    raise UsageError(
        f"no pipeline has a column {column!r}",
        hint=did_you_mean(column, pii) or "no contract classifies a column as PII",
    )


def _by_key(
    con: duckdb.DuckDBPyConnection, salt: str, pipeline: Pipeline, request: Request
) -> Subject:
    given = dict(request.pairs)
    columns = tuple(pipeline.keys)
    values = tuple(_value(con, pipeline, c, given[c]) for c in columns)
    selector = f"{pipeline.name}:" + "&".join(f"{c}={given[c]}" for c in columns)
    # texts only: a number or a date is no secret to look for in free text
    secrets = {v for v in values if isinstance(v, str)}
    secrets |= {given[c] for c, v in zip(columns, values, strict=True) if isinstance(v, str)}
    return Subject(
        by="key",
        columns=columns,
        pipeline=pipeline.name,
        selections=(Selection(pipeline, columns, values),),
        fingerprint=fingerprint(salt, selector),
        secrets=frozenset(secrets),
    )


def _by_pii(
    con: duckdb.DuckDBPyConnection, salt: str, pipelines: list[Pipeline], request: Request
) -> Subject:
    [(column, raw)] = request.pairs
    selections = tuple(Selection(p, (column,), (_value(con, p, column, raw),)) for p in pipelines)
    secrets = {raw} | {str(s.values[0]) for s in selections}
    return Subject(
        by="pii",
        columns=(column,),
        pipeline=request.pipeline,
        selections=selections,
        fingerprint=fingerprint(salt, f"{column}={raw}"),
        secrets=frozenset(secrets),
    )


def _value(con: duckdb.DuckDBPyConnection, pipeline: Pipeline, column: str, raw: str) -> Any:
    """``raw`` typed as ``column`` of ``pipeline`` (its salted digest when PII)."""
    type_ = _type_of(pipeline, column)
    sql = f"CAST(? AS {duckdb_type(type_)})"
    if column in pipeline.contract.pii_columns:
        sql = f"(SELECT {digest('v')} FROM (SELECT {sql} AS v))"
    try:
        [(value,)] = con.execute(f"SELECT {sql}", [raw]).fetchall()
    except duckdb.Error:
        raise UsageError(
            f"the value given for {column} is not a valid {type_} "
            f"(column {column} of pipeline {pipeline.name})",
            where=pipeline.contract.path,
            hint="give it as the source spells it; the value is not repeated here",
        ) from None
    return value


def _type_of(pipeline: Pipeline, column: str) -> str:
    for c in pipeline.contract.columns:
        if c.name == column:
            return c.physicalType
    for d in pipeline.spec.transform.derived:
        if d.name == column:
            return d.type
    raise AssertionError(f"{column} is not a column of {pipeline.name}")


def fingerprint(salt: str, selector: str) -> str:
    """The audit's fingerprint of a selector: salted, and apart from every table's digests."""
    return hashlib.sha256(f"{salt}weir:forget:{selector}".encode()).hexdigest()
