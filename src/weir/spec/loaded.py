"""A loaded project: its validated pipelines, models and dbt steps, and the errors found on
the way (collected, to report them together)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weir.errors import ConfigError
from weir.hints import did_you_mean
from weir.spec import modelsql
from weir.spec.base import Strict
from weir.spec.contract import Contract
from weir.spec.dbt import DbtStepSpec
from weir.spec.model import ModelSpec
from weir.spec.pipeline import ErrorHandling, PipelineSpec
from weir.spec.project import ProjectSpec
from weir.spec.yamlsrc import (
    Document,
)

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
