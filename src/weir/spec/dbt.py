"""dbt steps: a file in ``pipelines/`` with ``kind: dbt`` runs an existing dbt project.

::

    name: shop_marts
    kind: dbt
    owner: analytics
    schedule: "0 6 * * *"
    dbt:
      project_dir: dbt              # relative to the weir project
      select: [tag:nightly]
      reads: [silver.orders]        # default: every silver table and gold model
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import Field

from weir.errors import ConfigError
from weir.hints import did_you_mean
from weir.spec.base import Strict
from weir.spec.pipeline import StepSpec
from weir.spec.yamlsrc import Document, load


class DbtOptions(Strict):
    """How weir runs the dbt project."""

    project_dir: str = "dbt"
    """The dbt project (holding dbt_project.yml), relative to the weir project."""
    profiles_dir: str | None = None
    """A folder with your own profiles.yml; default: weir writes one for the warehouse."""
    target: str | None = None
    """dbt target (``--target``); with weir's profiles.yml it names weir's single output."""
    select: list[str] = Field(default_factory=list)
    """Node selectors for ``dbt build --select``; empty: the whole project."""
    exclude: list[str] = Field(default_factory=list)
    vars: dict[str, Any] = Field(default_factory=dict)
    """Passed as ``--vars``."""
    freshness: bool = True
    """Run ``dbt source freshness`` first; a source past its ``error_after`` stops the step."""
    warehouse: str | None = None
    """The DuckDB file dbt builds in and weir exposes its tables to (relative to the weir
    project); default ``.weir/dbt/<name>.duckdb``."""
    reads: list[str] | None = None
    """The weir tables the dbt project reads, qualified (``silver.orders``, ``gold.daily``):
    they are exposed to dbt and the step runs after them. Default: every silver table and
    every gold model."""


class DbtStepSpec(StepSpec):
    reference: ClassVar[str] = "docs/dbt.md"
    """Where the fields are documented (config errors point there)."""
    kind: Literal["dbt"]
    dbt: DbtOptions = Field(default_factory=DbtOptions)

    @property
    def warehouse(self) -> str:
        """The warehouse file, relative to the weir project unless absolute."""
        return self.dbt.warehouse or f".weir/dbt/{self.name}.duckdb"


def resolve_reads(doc: Document, spec: DbtStepSpec, tables: Sequence[str]) -> tuple[str, ...]:
    """The qualified tables of ``dbt.reads`` (default: all of ``tables``), each one checked."""
    if spec.dbt.reads is None:
        return tuple(tables)
    known = set(tables)
    for i, name in enumerate(spec.dbt.reads):
        if name not in known:
            raise ConfigError(
                f"dbt step {spec.name!r} reads unknown table {name!r}",
                where=doc.where(("dbt", "reads", i)),
                hint=did_you_mean(name, known)
                or "weir tables are silver.<table> (pipelines) and gold.<model> (models); "
                "there are none yet",
            )
    return tuple(dict.fromkeys(spec.dbt.reads))


def check_project(doc: Document, spec: DbtStepSpec, root: Path) -> None:
    """The dbt project folder, its dbt_project.yml (with ``profile:`` when weir writes the
    profile) and any ``profiles_dir`` exist — checked before anything runs."""
    options = spec.dbt
    folder = root / options.project_dir
    where = doc.where(("dbt", "project_dir"))
    if not folder.is_dir():
        raise ConfigError(
            f"dbt step {spec.name!r}: the dbt project folder {options.project_dir!r} "
            f"does not exist in {root}",
            where=where,
            hint="set dbt.project_dir to the folder holding dbt_project.yml "
            "(relative to the weir project)",
        )
    if not (folder / "dbt_project.yml").is_file():
        raise ConfigError(
            f"dbt step {spec.name!r}: no dbt_project.yml in {folder}",
            where=where,
            hint="point dbt.project_dir at the dbt project's root folder",
        )
    if options.profiles_dir is not None:
        if not (root / options.profiles_dir / "profiles.yml").is_file():
            raise ConfigError(
                f"dbt step {spec.name!r}: no profiles.yml in {root / options.profiles_dir}",
                where=doc.where(("dbt", "profiles_dir")),
                hint="leave dbt.profiles_dir out to let weir write a profile for the warehouse",
            )
        return
    dbt_profile(folder)


def dbt_profile(folder: Path) -> str:
    """The ``profile:`` named by ``folder``/dbt_project.yml (ConfigError when there is none)."""
    project = load(folder / "dbt_project.yml")
    name = project.data.get("profile") if isinstance(project.data, dict) else None
    if not isinstance(name, str) or not name:
        raise ConfigError(
            "dbt_project.yml names no profile",
            where=project.where(("profile",)),
            hint="add `profile: <name>`; weir writes a profiles.yml with that profile "
            "pointing at the step's DuckDB warehouse",
        )
    return name
