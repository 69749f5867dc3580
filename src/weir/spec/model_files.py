"""models/*.sql and the dbt steps of pipelines/: loaded, resolved against the pipelines."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from weir.errors import ConfigError
from weir.hints import did_you_mean
from weir.spec import modelsql, names
from weir.spec.base import validate
from weir.spec.dbt import DbtStepSpec, check_project, resolve_reads
from weir.spec.model import ModelSpec
from weir.spec.yamlsrc import (
    Document,
    load,
    loads,
    read_text,
)
from weir.toposort import CycleError, topological

if TYPE_CHECKING:
    pass

from weir.spec.loaded import DbtStep, Model, Pipeline
from weir.spec.pipeline_files import check_rules


def load_models(root: Path, pipelines: dict[str, Pipeline]) -> dict[str, Model]:
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
        check_rules(doc, ("checks",), spec.checks, None)
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
def node_kind(doc: Document) -> str:
    """A ``pipelines/`` file's ``kind``: ``pipeline`` (the default) or ``dbt``."""
    kind = doc.data.get("kind", "pipeline") if isinstance(doc.data, dict) else "pipeline"
    if kind not in ("pipeline", "dbt"):
        raise ConfigError(
            f"unknown kind {kind!r}",
            where=doc.where(("kind",)),
            hint=did_you_mean(str(kind), ["pipeline", "dbt"]),
        )
    return str(kind)


def load_dbt_steps(
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
