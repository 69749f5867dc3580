"""Load a whole project: weir.yml, contracts/*.yml, pipelines/*.yml — validated before any I/O."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weir import storage
from weir.errors import ConfigError
from weir.hints import did_you_mean
from weir.spec.base import validate
from weir.spec.project import ProjectSpec
from weir.spec.yamlsrc import (
    Document,
    Loc,
    env_names,
    load,
    resolve_env,
    resolve_vars,
)

if TYPE_CHECKING:
    pass

from weir.spec.loaded import Pipeline, Problems, Project
from weir.spec.model_files import load_dbt_steps, load_models, node_kind
from weir.spec.pipeline_files import (
    bind_pipeline,
    check_all_conditions,
    check_unique,
    load_contracts,
    source_secrets,
)
from weir.spec.targets import (
    choose_target,
    literal_credentials,
    missing_error,
    only_target,
    resolve_project_vars,
    storage_secrets,
    var_text,
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
    with only_target(project_doc, chosen):  # other targets' secrets are not needed here
        secret_names = env_names(project_doc.data)  # before resolving: then they are values
        warnings = literal_credentials(project_doc)
        missing = resolve_env(project_doc, env)
        if missing:  # weir.yml is every node's: what it lacks, nothing can do without
            problems.add(missing_error(missing))
        for error in resolve_project_vars(project_doc, chosen):
            problems.add(error)
    project_names = frozenset(secret_names)
    try:
        spec = validate(project_doc, ProjectSpec)
    except ConfigError as exc:
        problems.add(exc)
        problems.raise_any()
        raise
    spec = spec.for_target(chosen)
    _check_channels(project_doc, spec.error_handling.alert_channels, spec, problems)
    variables = var_text(spec.vars)
    contract_docs: dict[str, Document] = {}
    contracts = {c.id: c for c in load_contracts(root, contract_docs, problems)}
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
        if node_kind(doc) == "dbt":
            dbt_missing[doc.path] = lacking
            dbt_docs.append(doc)
            continue
        with problems.collect():
            try:
                pipeline = bind_pipeline(doc, contracts)
            except ConfigError as exc:
                if not lacking:
                    raise
                # a value left empty for a missing variable may be what failed
                raise missing_error(lacking) from exc
            check_unique(pipeline, doc, pipelines)
            # read from the environment: by the file itself, or by weir.yml (a variable)
            from_env = [env[n] for n in names | project_names if env.get(n)]
            secret_values |= source_secrets(doc, pipeline, from_env)
            pipelines[pipeline.name] = pipeline
            if pipeline.spec.error_handling is not None:
                _check_channels(doc, pipeline.spec.error_handling.alert_channels, spec, problems)
            warnings += _without_effect(doc)
            if lacking:
                missing_env[pipeline.name] = lacking
    check_all_conditions(contracts, contract_docs, pipelines, problems)
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
    models = load_models(root, pipelines)
    dbt_steps = load_dbt_steps(root, dbt_docs, pipelines, models)
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


WITHOUT_EFFECT: dict[Loc, str] = {
    ("load", "target_file_size_mb"): "is not used yet (delta-rs chooses file sizes); remove it",
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


def _check_channels(
    doc: Document, entries: list[str], spec: ProjectSpec, problems: Problems
) -> None:
    """Every ``#name`` in ``entries`` (``error_handling.alert_channels`` of ``doc``) names
    a channel of weir.yml's ``alerts.channels``."""
    known = spec.alerts.channels
    for i, entry in enumerate(entries):
        if entry.startswith("#") and entry[1:] not in known:
            close = did_you_mean(entry, [f"#{name}" for name in known])
            hint = close if close and close.startswith("did") else None
            problems.add(
                ConfigError(
                    f"error_handling.alert_channels: no channel named {entry!r} in weir.yml"
                    + (f" ({hint})" if hint else ""),
                    where=doc.where(("error_handling", "alert_channels", i)),
                    hint="define it under alerts.channels in weir.yml (docs/alerts.md)"
                    + (f"; channels there: {', '.join(sorted(known))}" if known else ""),
                )
            )
