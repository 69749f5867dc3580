"""Load a whole project: weir.yml, contracts/*.yml, pipelines/*.yml — validated before any I/O."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weir import sources
from weir.errors import ConfigError
from weir.hints import did_you_mean
from weir.spec.base import Strict, validate
from weir.spec.contract import Contract, ContractSpec
from weir.spec.pipeline import ErrorHandling, PipelineSpec
from weir.spec.project import ProjectSpec
from weir.spec.yamlsrc import Document, env_names, load, resolve_env


@dataclass(frozen=True)
class Pipeline:
    spec: PipelineSpec
    contract: Contract
    source_kind: type[sources.Source]
    source_config: Strict
    path: Path
    secret_envs: frozenset[str]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def keys(self) -> list[str]:
        return self.spec.load.keys or self.contract.keys

    @property
    def table(self) -> str:
        return self.spec.load.table or self.spec.name

    @property
    def silver_columns(self) -> list[str]:
        return [c.name for c in self.contract.columns] + [
            d.name for d in self.spec.transform.derived
        ]


@dataclass(frozen=True)
class Project:
    root: Path
    spec: ProjectSpec
    pipelines: dict[str, Pipeline]
    contracts: dict[str, Contract]
    secrets: frozenset[str] = field(default_factory=frozenset)
    """Values of every ``${env:…}`` the project uses: scrubbed from logs and messages."""

    @property
    def lake(self) -> str:
        if "://" in self.spec.lake:
            return self.spec.lake.rstrip("/")
        return str((self.root / self.spec.lake).resolve())

    @property
    def state_dir(self) -> Path:
        return (self.root / ".weir").resolve()

    def error_handling(self, pipeline: Pipeline) -> ErrorHandling:
        return pipeline.spec.error_handling or self.spec.error_handling

    def pipeline(self, name: str) -> Pipeline:
        if name not in self.pipelines:
            raise ConfigError(
                f"no pipeline named {name!r} in {self.root}",
                hint=did_you_mean(name, self.pipelines) or "add one under pipelines/",
            )
        return self.pipelines[name]


def find_root(start: Path) -> Path:
    """The project directory: ``start`` or the nearest parent holding weir.yml."""
    start = start.resolve()
    for candidate in (start, *start.parents):
        if (candidate / "weir.yml").is_file():
            return candidate
    raise ConfigError(
        f"no weir.yml in {start} or its parents",
        hint="pass --project DIR, or create a project with `weir init DIR`",
    )


def load_project(root: Path, *, environ: dict[str, str] | None = None) -> Project:
    """Parse and validate everything; ConfigError lists every missing ``${env:…}`` together."""
    root = find_root(root)
    env = dict(os.environ if environ is None else environ)
    project_doc = load(root / "weir.yml")
    missing = resolve_env(project_doc, env)
    spec = validate(project_doc, ProjectSpec)
    contracts = {c.id: c for c in _load_contracts(root)}
    pipelines: dict[str, Pipeline] = {}
    secret_names: set[str] = set()
    for path in sorted((root / "pipelines").glob("*.y*ml")):
        doc = load(path)
        names = env_names(doc.data)
        secret_names |= names
        missing += resolve_env(doc, env)
        pipeline = _pipeline(doc, contracts)
        if pipeline.name in pipelines:
            raise ConfigError(
                f"pipeline {pipeline.name!r} is declared twice",
                where=doc.where(("name",)),
                hint=f"also in {pipelines[pipeline.name].path}",
            )
        pipelines[pipeline.name] = pipeline
    if missing:
        raise ConfigError(
            "missing environment variables: " + "; ".join(missing),
            hint="export them before running (values are never logged)",
        )
    needs_salt = any(p.contract.pii_columns for p in pipelines.values())
    if needs_salt and not env.get(spec.pii_salt_env):
        raise ConfigError(
            f"environment variable {spec.pii_salt_env} is not set, "
            "but some contracts classify columns as PII",
            where=str(root / "weir.yml"),
            hint=f"export {spec.pii_salt_env}=<a long random secret> (kept out of logs)",
        )
    if needs_salt:
        secret_names.add(spec.pii_salt_env)
    secrets = frozenset(env[n] for n in secret_names if env.get(n))
    return Project(root=root, spec=spec, pipelines=pipelines, contracts=contracts, secrets=secrets)


def _load_contracts(root: Path) -> list[Contract]:
    found: dict[str, Contract] = {}
    for path in sorted((root / "contracts").glob("*.y*ml")):
        doc = load(path)
        contract = Contract(spec=validate(doc, ContractSpec), path=str(path))
        if contract.id in found:
            raise ConfigError(
                f"contract id {contract.id!r} is used twice",
                where=doc.where(("id",)),
                hint=f"also in {found[contract.id].path}",
            )
        found[contract.id] = contract
    return list(found.values())


def _pipeline(doc: Document, contracts: dict[str, Contract]) -> Pipeline:
    spec = validate(doc, PipelineSpec)
    if spec.contract not in contracts:
        raise ConfigError(
            f"pipeline {spec.name!r} names unknown contract {spec.contract!r}",
            where=doc.where(("contract",)),
            hint=did_you_mean(spec.contract, contracts) or "add it under contracts/",
        )
    contract = contracts[spec.contract]
    kind = str(spec.extract["source"])
    source_cls = sources.get(kind, where=doc.where(("extract", "source")))
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
    return pipeline


def _check_columns(doc: Document, pipeline: Pipeline) -> None:
    spec = pipeline.spec
    known = set(pipeline.silver_columns)
    base = {c.name for c in pipeline.contract.columns}
    for i, derived in enumerate(spec.transform.derived):
        if derived.name in base:
            _unknown(
                doc,
                ("transform", "derived", i, "name"),
                derived.name,
                set(),
                f"derived column {derived.name!r} clashes with a contract column",
            )
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
