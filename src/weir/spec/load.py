"""Load a whole project: weir.yml, contracts/*.yml, pipelines/*.yml — validated before any I/O."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from weir import storage
from weir.errors import ConfigError
from weir.hints import did_you_mean
from weir.registry import SOURCES
from weir.spec import modelsql, names, sqlexpr, types
from weir.spec.base import Strict, validate
from weir.spec.contract import Contract, ContractSpec, Quality
from weir.spec.dbt import DbtStepSpec, check_project, resolve_reads
from weir.spec.model import ModelSpec
from weir.spec.pipeline import ErrorHandling, PipelineSpec
from weir.spec.project import ProjectSpec
from weir.spec.yamlsrc import (
    Document,
    Loc,
    env_names,
    load,
    loads,
    read_text,
    resolve_env,
    resolve_vars,
)
from weir.toposort import CycleError, topological

if TYPE_CHECKING:
    from weir.sources.base import Source


@dataclass(frozen=True)
class Pipeline:
    spec: PipelineSpec
    contract: Contract
    source_kind: type[Source[Any]]
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
class Model:
    """A gold model: ``models/<name>.sql`` and its header (or ``<name>.yml`` sidecar)."""

    name: str
    spec: ModelSpec
    sql: modelsql.ModelSql
    path: Path
    config: Document
    """Where the header came from, for file:line in errors about its fields."""
    depends_on: tuple[str, ...]
    """Qualified tables the SQL reads: ``silver.<table>`` and ``gold.<model>``."""

    @property
    def table(self) -> str:
        return f"gold.{self.name}"

    @property
    def reads_models(self) -> tuple[str, ...]:
        """The models whose tables the SQL reads (the ``gold.`` part of ``depends_on``)."""
        return tuple(t.partition(".")[2] for t in self.depends_on if t.startswith("gold."))


@dataclass(frozen=True)
class DbtStep:
    """A ``kind: dbt`` file in ``pipelines/``: an existing dbt project run as one step."""

    name: str
    spec: DbtStepSpec
    path: Path
    doc: Document
    """Where the step came from, for file:line in errors about its fields."""
    reads: tuple[str, ...] = ()
    """``dbt.reads`` resolved at load: every silver table and gold model when not given."""

    @property
    def depends_on(self) -> tuple[str, ...]:
        """Qualified weir tables the dbt project reads: ``silver.<table>``, ``gold.<model>``."""
        return self.reads


@dataclass(frozen=True)
class Project:
    root: Path
    spec: ProjectSpec
    pipelines: dict[str, Pipeline]
    contracts: dict[str, Contract]
    secrets: frozenset[str] = field(default_factory=frozenset)
    """Values of every ``${env:…}`` the project uses: scrubbed from logs and messages."""
    models: dict[str, Model] = field(default_factory=dict)
    dbt_steps: dict[str, DbtStep] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """Settings accepted but without effect yet (``file:line: …``), for `weir validate`."""
    missing_env: dict[str, list[str]] = field(default_factory=dict)
    """Per node, the environment variables it needs that are unset or empty (``NAME is not
    set (used at file:line)``). Loading does not fail on them, so that `weir validate`,
    `lineage` and `status` work without production secrets; running the node does."""
    target: str | None = None
    """The target in effect (weir.yml ``targets``); ``spec`` holds its lake, state, vars and
    storage options. None: no target, the top-level values."""

    def require_env(self, names: Iterable[str]) -> None:
        """ConfigError listing what the nodes ``names`` need from the environment and lack."""
        lacking = [f"{n}: {m}" for n in names for m in self.missing_env.get(n, [])]
        if lacking:
            raise ConfigError(
                "missing environment variables: " + "; ".join(lacking),
                hint="export them before running (values are never logged); "
                "`weir validate` lists them for every node",
            )

    @property
    def lake(self) -> str:
        """The lake root: an absolute path, or an object-store URI (``file://`` is a path)."""
        if self.spec.lake.startswith("file://"):
            path = Path(self.spec.lake.removeprefix("file://") or "/")
            return str(path if path.is_absolute() else (self.root / path).resolve())
        if "://" in self.spec.lake:
            return self.spec.lake.rstrip("/")
        return str((self.root / self.spec.lake).resolve())

    @property
    def state_dir(self) -> Path:
        """Locks, staging, scratch and spill: ``.weir``, or ``.weir/targets/<target>``, so that
        two targets never share a lock or a staged batch."""
        base = (self.root / ".weir").resolve()
        return base / "targets" / self.target if self.target else base

    def staging_dir(self, pipeline: str) -> Path:
        """Where a pipeline's extraction is staged before its bronze commit."""
        return self.state_dir / "staging" / pipeline

    def rebuild_dir(self, pipeline: str = "") -> Path:
        """Scratch tables of a pipeline's rebuild (``--full-refresh``); no name: their root."""
        return self.state_dir / "rebuild" / pipeline if pipeline else self.state_dir / "rebuild"

    def error_handling(self, pipeline: Pipeline) -> ErrorHandling:
        return pipeline.spec.error_handling or self.spec.error_handling

    def pipeline(self, name: str) -> Pipeline:
        if name not in self.pipelines:
            raise ConfigError(
                f"no pipeline named {name!r} in {self.root}",
                hint=did_you_mean(name, self.pipelines) or "add one under pipelines/",
            )
        return self.pipelines[name]


class Problems:
    """Config errors gathered across files, so that one `weir validate` names them all."""

    SHOWN = 20

    def __init__(self) -> None:
        self.errors: list[ConfigError] = []

    def add(self, error: ConfigError) -> None:
        self.errors.append(error)

    @contextmanager
    def collect(self) -> Iterator[None]:
        """Record a ConfigError raised in the block and go on after it."""
        try:
            yield
        except ConfigError as exc:
            self.errors.append(exc)

    def raise_any(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            shown = [str(e).replace("\n", "\n  ") for e in self.errors[: self.SHOWN]]
            more = len(self.errors) - len(shown)
            raise ConfigError(
                f"{len(self.errors)} problems in the project:\n- "
                + "\n- ".join(shown)
                + (f"\n… and {more} more" if more > 0 else ""),
                hint="fix them and run `weir validate` again",
            )


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


def load_project(
    root: Path, *, environ: dict[str, str] | None = None, target: str | None = None
) -> Project:
    """Parse and validate everything. Environment variables a node needs and lacks are
    recorded in ``Project.missing_env`` (running that node fails); weir.yml's are errors.

    ``target`` picks one of weir.yml's ``targets`` (else ``WEIR_TARGET``, else
    ``default_target``, else none); the lake root is registered with its storage options
    (weir.storage), which every delta-rs call then uses."""
    root = find_root(root)
    env = dict(os.environ if environ is None else environ)
    project_doc = load(root / "weir.yml")
    problems = Problems()
    chosen = choose_target(project_doc, target, env)
    with _only_target(project_doc, chosen):  # other targets' secrets are not needed here
        secret_names = env_names(project_doc.data)  # before resolving: then they are values
        warnings = _literal_credentials(project_doc)
        missing = resolve_env(project_doc, env)
        if missing:  # weir.yml is every node's: what it lacks, nothing can do without
            problems.add(_missing_error(missing))
        for error in _resolve_project_vars(project_doc, chosen):
            problems.add(error)
    try:
        spec = validate(project_doc, ProjectSpec)
    except ConfigError as exc:
        problems.add(exc)
        problems.raise_any()
        raise
    spec = spec.for_target(chosen)
    variables = var_text(spec.vars)
    contract_docs: dict[str, Document] = {}
    contracts = {c.id: c for c in _load_contracts(root, contract_docs, problems)}
    problems.raise_any()  # pipelines name contracts: a broken one would only echo here
    pipelines: dict[str, Pipeline] = {}
    dbt_docs: list[Document] = []
    missing_env: dict[str, list[str]] = {}
    warnings += _without_effect(project_doc)
    dbt_missing: dict[Path, list[str]] = {}
    secret_values: frozenset[str] = frozenset()
    for path in sorted((root / "pipelines").glob("*.y*ml")):
        doc = load(path)
        names = env_names(doc.data)
        secret_names |= names
        lacking = resolve_env(doc, env)
        unknown = resolve_vars(doc, variables)
        if unknown:
            problems.errors += unknown
            continue
        if _kind(doc) == "dbt":
            dbt_missing[doc.path] = lacking
            dbt_docs.append(doc)
            continue
        with problems.collect():
            try:
                pipeline = _pipeline(doc, contracts)
            except ConfigError as exc:
                if not lacking:
                    raise
                # a value left empty for a missing variable may be what failed
                raise _missing_error(lacking) from exc
            _check_unique(pipeline, doc, pipelines)
            secret_values |= _source_secrets(doc, pipeline, [env[n] for n in names if env.get(n)])
            pipelines[pipeline.name] = pipeline
            warnings += _without_effect(doc)
            if lacking:
                missing_env[pipeline.name] = lacking
    _check_all_conditions(contracts, contract_docs, pipelines, problems)
    problems.raise_any()
    salt = spec.pii_salt_env
    for pipeline in pipelines.values():
        if pipeline.contract.pii_columns:
            secret_names.add(salt)
            if not env.get(salt):
                missing_env.setdefault(pipeline.name, []).append(
                    f"{salt} is not set (the salt for hashing the PII columns of contract "
                    f"{pipeline.contract.id!r}; weir.yml pii_salt_env)"
                )
    secrets = frozenset(env[n] for n in secret_names if env.get(n)) | secret_values
    secrets |= storage_secrets(spec.storage_options)
    models = _load_models(root, pipelines)
    dbt_steps = _load_dbt_steps(root, dbt_docs, pipelines, models)
    for step in dbt_steps.values():
        if dbt_missing.get(step.path):
            missing_env[step.name] = dbt_missing[step.path]
    project = Project(
        root=root,
        spec=spec,
        pipelines=pipelines,
        contracts=contracts,
        secrets=secrets,
        models=models,
        dbt_steps=dbt_steps,
        missing_env=missing_env,
        warnings=warnings,
        target=chosen,
    )
    storage.register(project.lake, spec.storage_options)
    return project


# ---------------------------------------------------------------- targets and variables
TARGET_ENV = "WEIR_TARGET"
"""The environment variable that picks a target when ``--target`` does not."""


def choose_target(doc: Document, given: str | None, env: dict[str, str]) -> str | None:
    """The target in effect: ``given`` (``--target``), else ``WEIR_TARGET``, else weir.yml's
    ``default_target``, else none. A name weir.yml does not define is a ConfigError."""
    data = doc.data if isinstance(doc.data, dict) else {}
    targets = data.get("targets")
    known = sorted(targets) if isinstance(targets, dict) else []
    default = data.get("default_target")
    if given:
        name, source, where = given, "--target", doc.where(("targets",))
    elif env.get(TARGET_ENV):
        name, source, where = env[TARGET_ENV], TARGET_ENV, doc.where(("targets",))
    elif isinstance(default, str):
        name, source, where = default, "default_target", doc.where(("default_target",))
    else:
        return None  # a default_target that is not text: validation names it
    if name in known:
        return name
    if not known:
        hint = "weir.yml defines no targets: add them under targets: (docs/pipelines.md)"
        where = str(doc.path) if source != "default_target" else where
    else:
        hint = f"{did_you_mean(name, known)} (weir.yml defines: {', '.join(known)})"
    raise ConfigError(f"unknown target {name!r} (from {source})", where=where, hint=hint)


@contextmanager
def _only_target(doc: Document, chosen: str | None) -> Iterator[None]:
    """Within the block, weir.yml's ``targets`` holds only ``chosen``: the others' ``${env:…}``
    and ``${var:…}`` are neither needed nor substituted. They are back afterwards, in their
    order, to be validated like the rest."""
    targets = doc.data.get("targets") if isinstance(doc.data, dict) else None
    if not isinstance(targets, dict):
        yield
        return
    doc.data["targets"] = {n: t for n, t in targets.items() if n == chosen}
    try:
        yield
    finally:
        resolved = doc.data["targets"]
        doc.data["targets"] = {n: resolved.get(n, t) for n, t in targets.items()}


def _resolve_project_vars(doc: Document, chosen: str | None) -> list[ConfigError]:
    """Substitute ``${var:…}`` in weir.yml with the variables in effect (top-level ``vars``
    and the chosen target's); the definitions of the variables stay as written."""
    data = doc.data if isinstance(doc.data, dict) else {}
    top = data.get("vars")
    values: dict[str, Any] = top if isinstance(top, dict) else {}
    target = (data.get("targets") or {}).get(chosen) if chosen else None
    if isinstance(target, dict) and isinstance(target.get("vars"), dict):
        values = {**values, **target["vars"]}
    skip: frozenset[Loc] = frozenset({("vars",), ("targets", chosen or "", "vars")})
    return resolve_vars(doc, var_text(values), skip=skip)


def var_text(values: dict[str, Any]) -> dict[str, str]:
    """Variables as the text ``${var:NAME}`` puts in place (YAML ``true`` is ``true``)."""
    return {
        k: ("true" if v else "false") if isinstance(v, bool) else str(v)
        for k, v in values.items()
        if isinstance(k, str) and v is not None and not isinstance(v, dict | list)
    }


_CREDENTIAL = ("secret", "key", "token", "password", "sas", "credential", "signature")
_NOT_SECRET = {
    "region",
    "default_region",
    "endpoint",
    "endpoint_url",
    "allow_http",
    "s3_locking_provider",
    "conditional_put",
    "virtual_hosted_style_request",
    "delta_dynamo_table_name",
    "bucket",
    "bucket_name",
    "timeout",
    "connect_timeout",
    "max_retries",
    "retry_timeout",
    "allow_unsafe_rename",
    "use_emulator",
}
"""Storage options whose values are settings, not credentials (``AWS_REGION``, …)."""


def _plain_key(key: str) -> str:
    key = key.lower()
    for prefix in ("aws_", "google_", "azure_", "storage_"):
        key = key.removeprefix(prefix)
    return key


def storage_secrets(options: dict[str, str]) -> frozenset[str]:
    """Storage option values to scrub: all but settings (``_NOT_SECRET``) and plain
    booleans and numbers, which are never credentials (and would mangle every JSON line)."""
    return frozenset(
        v
        for k, v in options.items()
        if _plain_key(k) not in _NOT_SECRET
        and v.lower() not in ("true", "false")
        and not v.replace(".", "", 1).isdigit()
    )


def _literal_credentials(doc: Document) -> list[str]:
    """Warnings for credentials written into weir.yml's storage options rather than read
    with ``${env:…}`` (a committed weir.yml would hold them)."""
    data = doc.data if isinstance(doc.data, dict) else {}
    places: list[tuple[Loc, Any]] = [(("storage_options",), data.get("storage_options"))]
    targets = data.get("targets")
    for name, target in targets.items() if isinstance(targets, dict) else []:
        if isinstance(target, dict):
            places.append((("targets", name, "storage_options"), target.get("storage_options")))
    found = []
    for loc, options in places:
        for key, value in options.items() if isinstance(options, dict) else []:
            plain = _plain_key(str(key))
            if (
                isinstance(value, str)
                and value
                and "${env:" not in value
                and plain not in _NOT_SECRET
                and any(word in plain for word in _CREDENTIAL)
            ):
                found.append(
                    f"{doc.where((*loc, key))}: {'.'.join(map(str, (*loc, key)))} is written "
                    "in weir.yml; read credentials with ${env:NAME} instead (values are "
                    "scrubbed from output either way)"
                )
    return found


WITHOUT_EFFECT: dict[Loc, str] = {
    ("load", "target_file_size_mb"): "is not used yet (delta-rs chooses file sizes); remove it",
    ("error_handling", "alert_channels"): "has no effect yet: weir sends no alerts; remove it",
}
"""Settings a file may hold that change nothing yet, and what to tell its author."""


def _without_effect(doc: Document) -> list[str]:
    found = []
    for loc, message in WITHOUT_EFFECT.items():
        value: Any = doc.data
        for part in loc:
            value = value.get(part) if isinstance(value, dict) else None
        if value not in (None, []):
            found.append(f"{doc.where(loc)}: {'.'.join(map(str, loc))} {message}")
    return found


def _missing_error(missing: list[str]) -> ConfigError:
    return ConfigError(
        "missing environment variables: " + "; ".join(missing),
        hint="export them (values are never logged); ${env:NAME:-default} gives a default",
    )


def _load_contracts(root: Path, docs: dict[str, Document], problems: Problems) -> list[Contract]:
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


def _check_unique(pipeline: Pipeline, doc: Document, pipelines: dict[str, Pipeline]) -> None:
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


def _check_all_conditions(
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
        _check_rules(doc, (*table, "properties", i, "quality"), prop.quality, columns)
    _check_rules(doc, (*table, "quality"), contract.table.quality, columns)


def _check_rules(doc: Document, at: Loc, rules: list[Quality], columns: list[str] | None) -> None:
    for j, q in enumerate(rules):
        if q.condition is not None:
            _check_sql(doc, (*at, j, "condition"), q.condition, columns, "row condition")


def _check_sql(doc: Document, loc: Loc, sql: str, columns: list[str] | None, what: str) -> None:
    try:
        sqlexpr.scalar(sql, columns)
    except sqlexpr.SqlRefused as exc:
        raise ConfigError(f"{what}: {exc.message}", where=doc.where(loc), hint=exc.hint) from None


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


def _source_secrets(doc: Document, pipeline: Pipeline, env_values: list[str]) -> frozenset[str]:
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


def _check_changes(doc: Document, spec: PipelineSpec) -> None:
    """A source of change events loads them with ``merge``: applied by key in log order
    (weir/lake/changes.py); bronze keeps the raw events."""
    strategy = spec.load.strategy
    if strategy != "merge":
        raise ConfigError(
            f"the source yields change events, which load with strategy 'merge' (applied by "
            f"key in log order), not {strategy!r}",
            where=doc.where(("load", "strategy")),
            hint="use strategy: merge; bronze keeps every raw event"
            + ("; scd2 over change events is not supported yet" if strategy == "scd2" else ""),
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


# ---------------------------------------------------------------- models
def _load_models(root: Path, pipelines: dict[str, Pipeline]) -> dict[str, Model]:
    """Every ``models/*.sql``, with dependencies resolved and cycles rejected."""
    parsed: dict[str, tuple[Path, Document, ModelSpec, modelsql.ModelSql]] = {}
    for path in sorted((root / "models").glob("*.sql")):
        name = path.stem
        if not names.NAME.fullmatch(name):
            raise ConfigError(
                f"model file name {path.name!r} is not a valid model name",
                where=str(path),
                hint=names.NAME_HINT + ", e.g. fct_daily_performance.sql",
            )
        if name in pipelines:
            raise ConfigError(
                f"model {name!r} has the name of a pipeline",
                where=str(path),
                hint=f"rename one of them (the pipeline is {pipelines[name].path})",
            )
        doc, sql_text = _model_header(path)
        spec = validate(doc, ModelSpec)
        # the row conditions' SQL here; the checks' kinds and columns: weir.quality.validate
        _check_rules(doc, ("checks",), spec.checks, None)
        sql = modelsql.parse(sql_text, path)
        modelsql.check_helpers(sql.expression, path)
        parsed[name] = (path, doc, spec, sql)
    silver = {p.table for p in pipelines.values()}
    models: dict[str, Model] = {}
    for name, (path, doc, spec, sql) in parsed.items():
        deps = tuple(dict.fromkeys(_resolve(ref, path, silver, set(parsed)) for ref in sql.refs))
        models[name] = Model(name, spec, sql, path, doc, deps)
    _reject_cycles(models)
    return models


def _model_header(path: Path) -> tuple[Document, str]:
    text = read_text(path)
    header, first_line, sql_text = modelsql.split_header(text)
    sidecar = next(
        (p for p in (path.with_suffix(".yml"), path.with_suffix(".yaml")) if p.exists()), None
    )
    if header is not None and sidecar is not None:
        raise ConfigError(
            f"model {path.stem!r} has both a header and a sidecar {sidecar.name}",
            where=str(path),
            hint="keep one of them",
        )
    if sidecar is not None:
        return load(sidecar), sql_text
    if header is not None:
        return loads(header, path, first_line), sql_text
    return Document(path=path, data={}), sql_text


def _resolve(ref: modelsql.TableRef, path: Path, silver: set[str], gold: set[str]) -> str:
    where = f"{path}:{ref.line}"
    if ref.layer == "silver" and ref.name in silver:
        return f"silver.{ref.name}"
    if ref.layer == "gold" and ref.name in gold:
        return f"gold.{ref.name}"
    if not ref.layer:
        found = [
            f"{layer}.{ref.name}"
            for layer, names in (("silver", silver), ("gold", gold))
            if ref.name in names
        ]
        if len(found) == 1:
            return found[0]
        if found:
            raise ConfigError(
                f"table {ref.name!r} is both a silver table and a model",
                where=where,
                hint=f"qualify it: {' or '.join(found)}",
            )
    known = [f"silver.{n}" for n in silver] + [f"gold.{n}" for n in gold]
    shown = f"{ref.layer}.{ref.name}" if ref.layer else ref.name
    if ref.layer and ref.layer not in modelsql.LAYERS:
        hint = f"models read silver.<table> and gold.<model>; {did_you_mean(ref.name, silver | gold) or ''}"
    else:
        hint = did_you_mean(shown, known) or "known tables: " + (", ".join(sorted(known)) or "none")
    raise ConfigError(f"unknown table {shown!r}", where=where, hint=hint.strip())


def _reject_cycles(models: dict[str, Model]) -> None:
    try:
        topological({name: model.reads_models for name, model in models.items()})
    except CycleError as exc:
        raise ConfigError(
            f"models depend on each other in a cycle: {exc}",
            where=str(models[exc.cycle[0]].path),
            hint="a model cannot read itself, directly or through others",
        ) from None


# ---------------------------------------------------------------- dbt steps
def _kind(doc: Document) -> str:
    """A ``pipelines/`` file's ``kind``: ``pipeline`` (the default) or ``dbt``."""
    kind = doc.data.get("kind", "pipeline") if isinstance(doc.data, dict) else "pipeline"
    if kind not in ("pipeline", "dbt"):
        raise ConfigError(
            f"unknown kind {kind!r}",
            where=doc.where(("kind",)),
            hint=did_you_mean(str(kind), ["pipeline", "dbt"]),
        )
    return str(kind)


def _load_dbt_steps(
    root: Path, docs: list[Document], pipelines: dict[str, Pipeline], models: dict[str, Model]
) -> dict[str, DbtStep]:
    """``kind: dbt`` files: names unique among all steps, projects present, reads resolved."""
    tables = [f"silver.{t}" for t in sorted({p.table for p in pipelines.values()})]
    tables += [f"gold.{m}" for m in sorted(models)]
    steps: dict[str, DbtStep] = {}
    for doc in docs:
        spec = validate(doc, DbtStepSpec)
        taken = {n: p.path for n, p in pipelines.items()}
        taken |= {n: m.path for n, m in models.items()}
        taken |= {n: s.path for n, s in steps.items()}
        if spec.name in taken:
            raise ConfigError(
                f"dbt step {spec.name!r} has the name of another pipeline, model or dbt step",
                where=doc.where(("name",)),
                hint=f"rename one of them (the other is {taken[spec.name]})",
            )
        check_project(doc, spec, root)
        steps[spec.name] = DbtStep(spec.name, spec, doc.path, doc, resolve_reads(doc, spec, tables))
    return steps
