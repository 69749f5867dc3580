"""Check entries → compiled rules, through the registry of kinds (quality/kinds/).

Default names: ``<column>.<rule>`` on a contract column, ``<contract>.<rule>`` (with the
columns in parentheses) on a contract's schema object, ``<model>.<column>.<rule>`` for a
model's checks; two checks of one name are an error.
"""

from __future__ import annotations

from collections.abc import Sequence

from weir.errors import ConfigError
from weir.quality import kinds
from weir.quality.kinds import not_null
from weir.quality.kinds.base import ContextKind
from weir.quality.rules import CompiledChecks, ContextRule, RowRule, Rule, TableRule
from weir.spec.contract import Contract, Quality


def compile_checks(
    contract: Contract, keys: Sequence[str], required: Sequence[str] = ()
) -> CompiledChecks:
    """All rules of ``contract`` (+ implicit ones) as SQL over silver column names.

    Implicit rules: natural-key columns must not be null (error), ``required`` columns of
    the contract must not be null (error), nor the silver columns the load needs, named in
    ``required`` (an scd2 ``valid_from``, which may be a derived column) — a row without its
    key cannot be merged, a version without its start would be broken, and a contract's
    ``required`` is a promise to consumers.
    """
    rules: list[Rule] = []
    names = {prop.name for prop in contract.columns}
    for prop in contract.columns:
        if prop.required or prop.name in keys or prop.name in required:
            rules.append(_required(prop.name))
        for q in prop.quality:
            rules.append(_rule(q, q.name or f"{prop.name}.{q.rule}", prop.name))
    rules += [_required(name) for name in dict.fromkeys(required) if name not in names]
    for q in contract.table.quality:
        cols = q.columns or ([q.column] if q.column else [])
        default = f"{contract.id}.{q.rule}" + (f"({','.join(cols)})" if cols else "")
        rules.append(_rule(q, q.name or default, None))
    return _compiled(rules)


def compile_rules(rules: Sequence[Quality], owner: str) -> CompiledChecks:
    """Free-standing rules (a model's ``checks``), each naming its ``column`` or ``columns``;
    default names are ``<owner>.<column>.<rule>``."""
    compiled: list[Rule] = []
    for q in rules:
        cols = q.columns or ([q.column] if q.column else [])
        compiled.append(_rule(q, q.name or ".".join([owner, *cols[:1], q.rule]), None))
    return _compiled(compiled)


def _rule(q: Quality, name: str, column: str | None) -> Rule:
    """Entry ``q`` (declared on contract column ``column``, or not) compiled as ``name``."""
    kind = kinds.get(q.rule)
    problem = kind.problem(q, column)
    if problem is not None:  # validation (quality/validate.py) reports it with file:line
        raise ConfigError(f"check {name!r}: {problem}")
    if isinstance(kind, ContextKind):
        return ContextRule(name, q.severity, q.rule, q)
    return kind.compile(q, name, kind.columns(q, column))


def _required(column: str) -> RowRule:
    return RowRule(
        f"{column}.required", "error", not_null.violation(column), (column,), "required", True
    )


def _compiled(rules: Sequence[Rule]) -> CompiledChecks:
    names: set[str] = set()
    for rule in rules:
        if rule.name in names:
            raise ConfigError(f"two checks are named {rule.name!r}", hint="give one a 'name'")
        names.add(rule.name)
    return CompiledChecks(
        tuple(r for r in rules if isinstance(r, RowRule)),
        tuple(r for r in rules if isinstance(r, TableRule)),
        tuple(r for r in rules if isinstance(r, ContextRule)),
    )
