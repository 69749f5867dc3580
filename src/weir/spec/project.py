"""The project file (``weir.yml``)."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from weir.hints import did_you_mean
from weir.registry import ENGINES
from weir.spec.alerts import Alerts
from weir.spec.base import Strict
from weir.spec.health import Health
from weir.spec.pipeline import ErrorHandling
from weir.spec.serve import Serve


class Logging(Strict):
    run_records: str = ".weir/runs.jsonl"
    """Where run records go, one JSON line each; ``stderr`` for standard error."""


class OpenLineage(Strict):
    """Where OpenLineage run events go (docs/lineage.md); without file and url, nowhere."""

    file: str | None = None
    """Append each event as one JSON line to this file (relative to the project)."""
    url: str | None = None
    """POST each event as JSON to this endpoint, e.g. Marquez's ``…/api/v1/lineage``."""
    namespace: str | None = None
    """Namespace of the jobs (default: the project's name)."""
    api_key_env: str | None = None
    """Environment variable holding a bearer token for ``url``; its value is never logged."""
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(f"url {value!r} is not an http(s) URL")
        return value

    @model_validator(mode="after")
    def _key_needs_url(self) -> OpenLineage:
        if self.api_key_env and not self.url:
            raise ValueError("api_key_env is the token for 'url', but no url is set")
        return self


Layer = Literal["staging", "intermediate", "mart", "snapshot"]
RuleName = Literal[
    "naming.prefix",
    "naming.snapshot-prefix",
    "layers.mart-reads-raw",
    "layers.intermediate-reads-raw",
    "layers.staging-reads-staging",
    "layers.snapshot-source",
]
"""The naming and layering rules `weir validate` applies (weir.transform.conventions)."""


class Conventions(Strict):
    """Which naming-convention warnings apply to this project (docs/lineage.md)."""

    disable: list[RuleName] = Field(default_factory=list)
    """Rules that do not apply here."""
    prefixes: dict[Layer, list[str]] = Field(default_factory=dict)
    """Per layer, the name prefixes that replace weir's (e.g. ``mart: [fct_, dim_, rpt_]``)."""

    @field_validator("prefixes")
    @classmethod
    def _prefixes(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for layer, prefixes in value.items():
            if not prefixes or any(
                not p or not p.endswith("_") or not p.islower() for p in prefixes
            ):
                raise ValueError(
                    f"{layer}: give lower-case prefixes ending in _ (e.g. [stg_]), not {prefixes}"
                )
        return value


VarValue = str | int | float | bool
"""A project variable's value; ``${var:NAME}`` substitutes its text."""

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""Names of variables and targets."""


def _check_var_names(value: dict[str, VarValue]) -> dict[str, VarValue]:
    for name in value:
        if not re.match(NAME_PATTERN, name):
            raise ValueError(
                f"variable name {name!r} must be letters, digits and _ (not starting with a digit)"
            )
    return value


def _options_as_text(value: object) -> object:
    """Storage options are text for delta-rs: YAML's ``true`` or ``3`` become ``"true"``,
    ``"3"``; keys must be plain names (``AWS_REGION``, ``google_service_account_key``)."""
    if not isinstance(value, dict):
        return value
    out: dict[object, object] = {}
    for key, option in value.items():
        if not isinstance(key, str) or not re.match(r"^[A-Za-z][A-Za-z0-9_.-]*$", key):
            raise ValueError(f"storage option {key!r} is not a valid option name")
        if isinstance(option, bool):
            option = "true" if option else "false"
        elif isinstance(option, int | float):
            option = str(option)
        out[key] = option
    return out


Vars = Annotated[dict[str, VarValue], AfterValidator(_check_var_names)]
StorageOptions = Annotated[dict[str, str], BeforeValidator(_options_as_text)]


class Target(Strict):
    """One deployment of the project (``targets.dev``, ``targets.prod``): where its lake and
    run history live, and its values of the project variables. What it leaves out comes from
    the top level of weir.yml."""

    lake: str | None = None
    """The Delta Lake root of this target (default: weir.yml's ``lake``)."""
    state: str | None = None
    """The SQLite run history of this target (default: weir.yml's ``state``)."""
    vars: Vars = Field(default_factory=dict)
    """Variables of this target; they override weir.yml's ``vars`` of the same name."""
    storage_options: StorageOptions | None = None
    """Object-store options of this target's lake; they replace weir.yml's (not merged)."""


MAX_THREADS = 64
"""The most nodes `weir run` runs at once (weir.yml `threads` and `--threads` alike)."""


class ProjectSpec(Strict):
    reference: ClassVar[str] = "docs/pipelines.md (weir.yml)"
    """Where the fields are documented (config errors point there)."""
    sections: ClassVar[dict[str, str]] = {
        "serve": "docs/serve.md",
        "alerts": "docs/alerts.md",
        "health": "docs/health.md",
    }
    """Blocks documented on a page of their own."""
    name: str
    description: str | None = None
    lake: str = "lake"
    """Delta Lake root: a path relative to the project, or a URL delta-rs supports."""
    state: str = ".weir/state.db"
    engine: str = "duckdb"
    """What computes the rows (``weir.registry.ENGINES``): ``duckdb`` for now."""
    pii_salt_env: str = "WEIR_PII_SALT"
    """Environment variable holding the salt for hashing PII columns."""
    duckdb_memory_limit: str = "256MB"
    """DuckDB's share of memory, per connection; it spills to .weir/tmp beyond this. While a
    batch streams into a plain write it keeps to an eighth of it
    (weir.engine.base.Session.share_memory), though never below what scanning the batch's
    spilled rows needs. Peak RSS of a
    CSV load into bronze + silver (bench (d), bench/RESULTS.md): 1M rows ~500 MB, 10.5M rows
    ~755 MB."""
    threads: int = Field(default=2, ge=1, le=MAX_THREADS)
    """How many independent pipelines and models `weir run` runs at once."""
    timezone: str = "UTC"
    """The IANA time zone (``Europe/Berlin``) every ``schedule`` is read in."""
    serve: Serve = Field(default_factory=Serve)
    """How ``weir serve`` schedules (docs/serve.md)."""
    alerts: Alerts = Field(default_factory=Alerts)
    """Alert channels, severities and rate limits (docs/alerts.md)."""
    health: Health = Field(default_factory=Health)
    """The health metrics' targets and thresholds (docs/health.md)."""
    error_handling: ErrorHandling = Field(default_factory=ErrorHandling)
    logging: Logging = Field(default_factory=Logging)
    openlineage: OpenLineage | None = None
    """OpenLineage run events for every run (docs/lineage.md)."""
    conventions: Conventions = Field(default_factory=Conventions)
    vars: Vars = Field(default_factory=dict)
    """Project variables, used as ``${var:NAME}`` in weir.yml and pipeline files."""
    storage_options: StorageOptions = Field(default_factory=dict)
    """Options delta-rs passes to the object store of the lake (credentials, region, …)."""
    targets: dict[str, Target] = Field(default_factory=dict)
    """Named deployments (dev, prod, …); ``--target``, ``WEIR_TARGET`` or ``default_target``
    picks one, whose lake, state, vars and storage_options replace the top-level ones."""
    default_target: str | None = None
    """The target in effect when neither ``--target`` nor ``WEIR_TARGET`` names one."""

    @field_validator("engine")
    @classmethod
    def _known_engine(cls, value: str) -> str:
        if value not in ENGINES.kinds():
            known = ", ".join(ENGINES.kinds())
            close = did_you_mean(value, ENGINES.kinds())
            more = f"; {close}" if close and close.startswith("did") else ""
            raise ValueError(f"engine {value!r} is not implemented (engines: {known}){more}")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            close = did_you_mean(value, sorted(available_timezones()))
            more = f"; {close}" if close and close.startswith("did") else ""
            raise ValueError(
                f"timezone {value[:60]!r} is not an IANA time zone (e.g. UTC, Europe/Berlin, "
                f"America/New_York){more}"
            ) from None
        return value

    @field_validator("targets")
    @classmethod
    def _target_names(cls, value: dict[str, Target]) -> dict[str, Target]:
        for name in value:
            if not re.match(NAME_PATTERN.replace("_]*", "_-]*"), name):
                raise ValueError(f"target name {name!r} must be letters, digits, _ and -")
        return value

    def for_target(self, name: str | None) -> ProjectSpec:
        """This spec with target ``name``'s settings in place of the top-level ones."""
        if name is None:
            return self
        target = self.targets[name]
        update: dict[str, object] = {"vars": {**self.vars, **target.vars}}
        if target.lake is not None:
            update["lake"] = target.lake
        if target.state is not None:
            update["state"] = target.state
        if target.storage_options is not None:
            update["storage_options"] = target.storage_options
        return self.model_copy(update=update)
