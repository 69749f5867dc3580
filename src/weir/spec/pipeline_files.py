"""Pipeline files bound to their contracts: the checks across the two, and contracts/*.yml."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from weir.errors import ConfigError
from weir.hints import did_you_mean
from weir.registry import SOURCES
from weir.spec import sqlexpr, types
from weir.spec.base import validate
from weir.spec.contract import Contract, ContractSpec, Quality
from weir.spec.deletes import by_keys
from weir.spec.pipeline import PipelineSpec
from weir.spec.yamlsrc import (
    Document,
    Loc,
    env_names,
    load,
)

if TYPE_CHECKING:
    pass

from weir.spec.loaded import Pipeline, Problems


def load_contracts(root: Path, docs: dict[str, Document], problems: Problems) -> list[Contract]:
    """Every contract in contracts/; ``docs`` receives each one's Document by id."""
    found: dict[str, Contract] = {}
    for path in sorted((root / "contracts").glob("*.y*ml")):
        with problems.collect():
            doc = load(path)
            contract = Contract(spec=validate(doc, ContractSpec), path=str(path), doc=doc)
            if contract.id in found:
                raise ConfigError(
                    f"contract id {contract.id!r} is used twice",
                    where=doc.where(("id",)),
                    hint=f"also in {found[contract.id].path}",
                )
            found[contract.id] = contract
            docs[contract.id] = doc
    return list(found.values())


def check_unique(pipeline: Pipeline, doc: Document, pipelines: dict[str, Pipeline]) -> None:
    """One pipeline per name, and one per table: two writing the same bronze, silver and
    quarantine tables would mix their batches and positions."""
    if pipeline.name in pipelines:
        raise ConfigError(
            f"pipeline {pipeline.name!r} is declared twice",
            where=doc.where(("name",)),
            hint=f"also in {pipelines[pipeline.name].path}",
        )
    for other in pipelines.values():
        if other.table == pipeline.table:
            raise ConfigError(
                f"pipelines {other.name!r} and {pipeline.name!r} both write the table "
                f"{pipeline.table!r}",
                where=doc.where(("load", "table") if pipeline.spec.load.table else ("name",)),
                hint=f"give one of them another load.table (the other is {other.path})",
            )


def check_all_conditions(
    contracts: dict[str, Contract],
    docs: dict[str, Document],
    pipelines: dict[str, Pipeline],
    problems: Problems,
) -> None:
    """A contract's row conditions see the silver columns of each pipeline that uses it (its
    columns and the pipeline's derived ones); a contract no pipeline uses, its own columns."""
    for pipeline in pipelines.values():
        contract = pipeline.contract
        with problems.collect():
            _check_conditions(docs[contract.id], contract, pipeline.silver_columns)
    used = {p.contract.id for p in pipelines.values()}
    for contract_id in sorted(set(contracts) - used):
        contract = contracts[contract_id]
        with problems.collect():
            _check_conditions(docs[contract_id], contract, [c.name for c in contract.columns])


def _check_conditions(doc: Document, contract: Contract, columns: list[str]) -> None:
    """Row conditions are scalar expressions over ``columns`` (spec/sqlexpr.py)."""
    table: Loc = ("schema", 0)
    for i, prop in enumerate(contract.columns):
        check_rules(doc, (*table, "properties", i, "quality"), prop.quality, columns)
    check_rules(doc, (*table, "quality"), contract.table.quality, columns)


def check_rules(doc: Document, at: Loc, rules: list[Quality], columns: list[str] | None) -> None:
    for j, q in enumerate(rules):
        if q.condition is not None:
            _check_sql(doc, (*at, j, "condition"), q.condition, columns, "row condition")


def _check_sql(doc: Document, loc: Loc, sql: str, columns: list[str] | None, what: str) -> None:
    try:
        sqlexpr.scalar(sql, columns)
    except sqlexpr.SqlRefused as exc:
        raise ConfigError(f"{what}: {exc.message}", where=doc.where(loc), hint=exc.hint) from None


def bind_pipeline(doc: Document, contracts: dict[str, Contract]) -> Pipeline:
    spec = validate(doc, PipelineSpec)
    if spec.contract not in contracts:
        raise ConfigError(
            f"pipeline {spec.name!r} names unknown contract {spec.contract!r}",
            where=doc.where(("contract",)),
            hint=did_you_mean(spec.contract, contracts) or "add it under contracts/",
        )
    contract = contracts[spec.contract]
    kind = str(spec.extract["source"])
    source_cls = SOURCES.get(kind, where=doc.where(("extract", "source")))
    config = validate(doc, source_cls.Config, spec.extract, at=("extract",))
    pipeline = Pipeline(
        spec=spec,
        contract=contract,
        source_kind=source_cls,
        source_config=config,
        path=doc.path,
        secret_envs=frozenset(env_names(doc.data)),
    )
    _check_columns(doc, pipeline)
    _check_reconciliation(doc, pipeline)
    if source_cls.emits_changes(config):
        _check_changes(doc, spec)
    schema = pa.schema(types.arrow_field(c.source_name, c.physicalType) for c in contract.columns)
    why = source_cls.unreadable(config, schema)
    if why is not None:
        raise ConfigError(
            f"pipeline {spec.name!r}: {why}",
            where=doc.where(("extract",)),
            hint=f"see docs/contracts.md (nested types); contract {contract.path}",
        )
    return pipeline


def source_secrets(doc: Document, pipeline: Pipeline, env_values: list[str]) -> frozenset[str]:
    """The credentials in a pipeline's source config (``Source.secrets``), to scrub; a
    ConfigError when one is written into the file instead of read with ``${env:…}``."""
    found = pipeline.source_kind.secrets(pipeline.source_config)
    for secret in found:
        if not any(secret in value for value in env_values):
            raise ConfigError(
                f"pipeline {pipeline.name!r}: the extract block holds a password written into "
                "the file",
                where=doc.where(("extract", "url")),
                hint="read it from the environment: url: postgresql://user:${env:DB_PASSWORD}"
                "@host:5432/db, or the whole url from ${env:DB_URL}",
            )
    return found


def _check_reconciliation(doc: Document, pipeline: Pipeline) -> None:
    """``deletes: {detect: keys}`` (weir/lake/reconcile.py) needs a source that lists its
    keys, a key, a strategy whose rows are keyed (merge, append), and keys that are not
    PII (silver holds their digests)."""
    kind, config = pipeline.source_kind, pipeline.source_config
    deletes = by_keys(kind.deletes(config), emits_changes=kind.emits_changes(config))
    if deletes is None:
        return
    where = doc.where(("extract", "deletes"))
    if not kind.lists_keys(config):
        raise ConfigError(
            f"source {kind.kind!r} cannot list its keys, so it cannot detect deletes by keys",
            where=where,
            hint="remove deletes; a sql source (strategy full or incremental) detects them",
        )
    strategy = pipeline.spec.load.strategy
    if strategy not in ("merge", "append"):
        raise ConfigError(
            f"deletes: {{detect: keys}} reconciles silver by key, which strategy {strategy!r} "
            "does not keep",
            where=doc.where(("load", "strategy")),
            hint="use strategy merge (or append), or remove deletes"
            + ("; scd2 with reconciled deletes is not supported yet" if strategy == "scd2" else ""),
        )
    if not pipeline.keys:
        raise ConfigError(
            "deletes: {detect: keys} needs a natural key",
            where=where,
            hint="mark key columns with primaryKey: true in the contract, or set load.keys",
        )
    pii = set(pipeline.contract.pii_columns) & set(pipeline.keys)
    if pii:
        raise ConfigError(
            f"deletes: {{detect: keys}} cannot compare key column {sorted(pii)[0]!r}: it is PII, "
            "and silver holds its salted digest",
            where=where,
            hint="use a key that is not classified as PII, or remove deletes",
        )


def _check_changes(doc: Document, spec: PipelineSpec) -> None:
    """A source of change events loads them with ``merge`` (applied by key in log order,
    weir/lake/changes.py) or ``scd2`` (every change a version, weir/lake/changes_scd2.py);
    bronze keeps the raw events."""
    strategy = spec.load.strategy
    if strategy not in ("merge", "scd2"):
        raise ConfigError(
            f"the source yields change events, which load with strategy 'merge' (applied by "
            f"key in log order) or 'scd2' (a version per change), not {strategy!r}",
            where=doc.where(("load", "strategy")),
            hint="use strategy: merge or scd2; bronze keeps every raw event",
        )
    scd2 = spec.load.scd2
    if scd2 is not None and scd2.hard_deletes != "ignore":
        raise ConfigError(
            "change events carry their own deletes: load.scd2.hard_deletes (a key missing "
            "from a full snapshot) does not apply to them",
            where=doc.where(("load", "scd2", "hard_deletes")),
            hint="remove hard_deletes; a delete event closes its key's version, and "
            "extract.deletes.action (soft or hard) says whether it is also flagged",
        )
    if spec.transform.dedupe_order_by:
        raise ConfigError(
            "change events are ordered by their log position (_lsn, _seq): "
            "transform.dedupe_order_by does not apply to them",
            where=doc.where(("transform", "dedupe_order_by")),
            hint="remove dedupe_order_by",
        )


def _check_columns(doc: Document, pipeline: Pipeline) -> None:
    spec = pipeline.spec
    known = set(pipeline.silver_columns)
    base = [c.name for c in pipeline.contract.columns]
    derived_names: set[str] = set()
    for i, derived in enumerate(spec.transform.derived):
        if derived.name in base or derived.name in derived_names:
            _unknown(
                doc,
                ("transform", "derived", i, "name"),
                derived.name,
                set(),
                f"derived column {derived.name!r} clashes with "
                + ("a contract column" if derived.name in base else "another derived column"),
            )
        derived_names.add(derived.name)
        _check_sql(doc, ("transform", "derived", i, "sql"), derived.sql, base, "derived column")
    refs: list[tuple[tuple[Any, ...], str]] = []
    if spec.transform.dedupe_order_by:
        refs.append((("transform", "dedupe_order_by"), spec.transform.dedupe_order_by))
    refs += [(("load", "keys", i), k) for i, k in enumerate(spec.load.keys or [])]
    refs += [(("load", "partition_by", i), k) for i, k in enumerate(spec.load.partition_by)]
    scd2 = spec.load.scd2
    if scd2 is not None:
        refs += [(("load", "scd2", "tracked", i), k) for i, k in enumerate(scd2.tracked or [])]
        if scd2.valid_from:
            refs.append((("load", "scd2", "valid_from"), scd2.valid_from))
    for loc, name in refs:
        if name not in known:
            _unknown(doc, loc, name, known, f"unknown column {name!r}")
    pii = set(pipeline.contract.pii_columns)
    for loc, name in refs:
        if name in pii and loc[:2] != ("load", "keys") and loc[:3] != ("load", "scd2", "tracked"):
            raise ConfigError(
                f"column {name!r} is PII: it is stored as a salted digest, so it cannot order, "
                "partition or date rows",
                where=doc.where(loc),
                hint="use a column that is not classified as PII here",
            )
    if spec.load.strategy in ("merge", "scd2") and not pipeline.keys:
        raise ConfigError(
            f"strategy {spec.load.strategy!r} needs a natural key",
            where=doc.where(("load", "strategy")),
            hint="mark key columns with primaryKey: true in the contract, or set load.keys",
        )
    if spec.load.strategy == "partition-swap" and not spec.load.partition_by:
        raise ConfigError(
            "strategy 'partition-swap' needs load.partition_by",
            where=doc.where(("load", "strategy")),
            hint="name the partition column(s) whose partitions each batch replaces",
        )


def _unknown(doc: Document, loc: tuple[Any, ...], name: str, known: set[str], message: str) -> None:
    raise ConfigError(
        message, where=doc.where(loc), hint=did_you_mean(name, known) if known else None
    )
