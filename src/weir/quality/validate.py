"""Validate a loaded project's checks: what the kinds need, names, and model columns.

The loader (``weir.spec``) parses check entries as YAML shapes; whether an entry makes sense
is its kind's business (quality/kinds/), so this runs after loading: `weir validate` and
every command that loads a project call it, and so does :func:`weir.run.api.run`, before
anything runs. Every problem names file:line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from weir.errors import ConfigError
from weir.hints import did_you_mean
from weir.quality import kinds
from weir.quality.compile import compile_checks, compile_rules
from weir.quality.outputs import Output, model_outputs
from weir.quality.rules import Rule
from weir.spec import Model, Project
from weir.spec.contract import Contract, Quality
from weir.spec.loaded import Problems
from weir.spec.yamlsrc import Document, Loc

Where = Callable[[Loc], str]
"""file:line of a location in the file an entry comes from."""


def check_project(project: Project) -> None:
    """Raise one ConfigError naming every problem of the project's checks."""
    problems = Problems()
    for contract in project.contracts.values():
        _contract(contract, problems)
    for pipeline in project.pipelines.values():  # a pipeline's keys add implicit rules
        if not problems.errors:
            try:
                compile_checks(pipeline.contract, pipeline.keys)
            except ConfigError as exc:
                where = f"{pipeline.path} (contract {pipeline.contract.id!r}, load.keys)"
                problems.add(ConfigError(exc.message, where=where, hint=exc.hint))
    outputs = model_outputs(project)
    for model in project.models.values():
        _model(model, outputs[model.name], problems)
    problems.raise_any()


def _where(contract: Contract, loc: Loc) -> str:
    return contract.doc.where(loc) if contract.doc is not None else contract.path


def _contract(contract: Contract, problems: Problems) -> None:
    at: Loc = ("schema", 0)
    before = len(problems.errors)
    for i, prop in enumerate(contract.columns):
        for j, q in enumerate(prop.quality):
            loc = (*at, "properties", i, "quality", j)
            _entry(q, prop.name, loc, lambda loc: _where(contract, loc), problems)
    for j, q in enumerate(contract.table.quality):
        loc = (*at, "quality", j)
        _entry(q, None, loc, lambda loc: _where(contract, loc), problems)
    if len(problems.errors) == before:
        try:
            compile_checks(contract, contract.keys)
        except ConfigError as exc:
            problems.add(ConfigError(exc.message, where=_where(contract, at), hint=exc.hint))


def _entry(q: Quality, column: str | None, loc: Loc, where: Where, problems: Problems) -> bool:
    """Report what is wrong with one entry; True when nothing is."""
    path = ".".join(map(str, loc))
    if q.rule not in kinds.KINDS:
        problems.add(
            ConfigError(f"{path}.rule: {kinds.unknown(q.rule)}", where=where((*loc, "rule")))
        )
        return False
    problem = kinds.KINDS[q.rule].problem(q, column)
    if problem is not None:
        hint = "see docs/contracts.md#check-kinds"
        problems.add(ConfigError(f"{path}: {problem}", where=where(loc), hint=hint))
        return False
    return True


def _model(model: Model, output: Output, problems: Problems) -> None:
    doc = model.config
    checks = model.spec.checks
    fine = [_entry(q, None, ("checks", j), doc.where, problems) for j, q in enumerate(checks)]
    if not all(fine):
        return
    try:
        compile_rules(checks, model.name)
    except ConfigError as exc:  # two of one name: point at the second
        names = [_name(q, model.name) for q in checks]
        again = next((j for j, n in enumerate(names) if n in names[:j]), None)
        loc: Loc = ("checks",) if again is None else ("checks", again)
        problems.add(ConfigError(exc.message, where=doc.where(loc), hint=exc.hint))
        return
    for j, q in enumerate(checks):
        for column in kinds.KINDS[q.rule].columns(q, None):
            if output.lacks(column):
                problems.add(_missing(model, doc, j, q, column, output))


def _name(q: Quality, owner: str) -> str:
    compiled = compile_rules([q], owner)
    rules: list[Rule] = [*compiled.row, *compiled.table, *compiled.context]
    return rules[0].name


def _missing(
    model: Model, doc: Document, j: int, q: Quality, column: str, output: Output
) -> ConfigError:
    field = "condition" if q.condition is not None else "columns" if q.columns else "column"
    known = sorted(output.names)
    return ConfigError(
        f"checks.{j}: the {q.rule} check reads column {column!r}, which model "
        f"{model.name!r} does not produce",
        where=doc.where(("checks", j, field)),
        hint=_suggest(column, known),
    )


def _suggest(column: str, known: Sequence[str]) -> str:
    close = did_you_mean(column, known) if known else None
    if close and close.startswith("did you"):
        return close
    return "its columns: " + (", ".join(known) or "none")
