"""Naming and layering conventions of models, reported by ``weir validate`` as warnings.

A model's name prefix says its layer:

    stg_                         staging       one silver table, cleaned for use
    int_                         intermediate  business logic over staging models
    fct_ dim_ mrt_ bridge_       marts         what analysts and BI tools read
    snp_                         snapshots     SCD Type 2 history

Reading ``silver.<table>`` is weir's equivalent of dbt's ``source()``. Each rule below is one
function of the same name; a rule returns a :class:`Finding` or None. Findings never fail
validation: they are advice, named by rule so a team can track them (docs/lineage.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from weir.spec.project import Layer, RuleName

if TYPE_CHECKING:
    from weir.spec.loaded import Model

PREFIXES: dict[str, Layer] = {
    "stg_": "staging",
    "int_": "intermediate",
    "fct_": "mart",
    "dim_": "mart",
    "mrt_": "mart",
    "bridge_": "mart",
    "snp_": "snapshot",
}


@dataclass(frozen=True)
class Finding:
    rule: str
    model: str
    path: str
    message: str
    hint: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "model": self.model,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }


@dataclass(frozen=True)
class Naming:
    """The prefixes in force: weir's (:data:`PREFIXES`), with the layers a project's
    ``conventions.prefixes`` names replaced."""

    prefixes: Mapping[str, Layer]

    @classmethod
    def of(cls, overrides: Mapping[Layer, list[str]] | None = None) -> Naming:
        overrides = overrides or {}
        kept = {p: layer for p, layer in PREFIXES.items() if layer not in overrides}
        given = {p: layer for layer, ps in overrides.items() for p in ps}
        # the longest prefix first, so that `stg_` and `stg_raw_` can both be a layer's
        ordered = sorted({**kept, **given}.items(), key=lambda item: -len(item[0]))
        return cls(dict(ordered))

    def layer_of(self, name: str) -> Layer | None:
        return next((lay for prefix, lay in self.prefixes.items() if name.startswith(prefix)), None)

    def of_layer(self, layer: Layer) -> tuple[str, ...]:
        return tuple(p for p, lay in self.prefixes.items() if lay == layer)


def _is_snapshot(model: Model, naming: Naming) -> bool:
    return naming.layer_of(model.name) == "snapshot" or model.spec.materialized == "snapshot"


def _reads(model: Model, layer: str) -> list[str]:
    """Names of the tables of ``layer`` (silver or gold) the model reads."""
    return [d.partition(".")[2] for d in model.depends_on if d.partition(".")[0] == layer]


def _finding(rule: str, model: Model, message: str, hint: str) -> Finding:
    return Finding(rule, model.name, str(model.path), message, hint)


# ---------------------------------------------------------------- the rules
def naming_prefix(model: Model, models: Mapping[str, Model], naming: Naming) -> Finding | None:
    """A model's name starts with the prefix of its layer."""
    if naming.layer_of(model.name) is not None:
        return None
    return _finding(
        "naming.prefix",
        model,
        f"model {model.name!r} has no layer prefix",
        "rename the file: stg_<source>__<entity> (staging), int_<entity>_<verb> "
        "(intermediate), fct_/dim_/mrt_/bridge_ (marts) or snp_<entity>_<grain> (snapshots)",
    )


def snapshot_prefix(model: Model, models: Mapping[str, Model], naming: Naming) -> Finding | None:
    """A ``materialized: snapshot`` model is named snp_ (or dim_, an SCD2 dimension)."""
    allowed = (*naming.of_layer("snapshot"), "dim_")
    if model.spec.materialized != "snapshot" or model.name.startswith(allowed):
        return None
    return _finding(
        "naming.snapshot-prefix",
        model,
        f"snapshot model {model.name!r} is not named snp_… or dim_…",
        f"rename it to snp_{model.name.split('_', 1)[-1]} (or dim_… for an SCD2 dimension)",
    )


def mart_reads_raw(model: Model, models: Mapping[str, Model], naming: Naming) -> Finding | None:
    """Marts read models only, never silver directly."""
    silver = _reads(model, "silver")
    if naming.layer_of(model.name) != "mart" or not silver:
        return None
    return _finding(
        "layers.mart-reads-raw",
        model,
        f"mart {model.name!r} reads silver directly: " + ", ".join(f"silver.{t}" for t in silver),
        "read staging or intermediate models instead (e.g. a stg_ model over the silver table)",
    )


def intermediate_reads_raw(
    model: Model, models: Mapping[str, Model], naming: Naming
) -> Finding | None:
    """Intermediate models read models only, never silver directly."""
    silver = _reads(model, "silver")
    if naming.layer_of(model.name) != "intermediate" or not silver:
        return None
    return _finding(
        "layers.intermediate-reads-raw",
        model,
        f"intermediate model {model.name!r} reads silver directly: "
        + ", ".join(f"silver.{t}" for t in silver),
        "add a stg_ model over the silver table and read that",
    )


def staging_reads_staging(
    model: Model, models: Mapping[str, Model], naming: Naming
) -> Finding | None:
    """A staging model cleans one source; it does not read (or join) other staging models."""
    staging = [g for g in _reads(model, "gold") if naming.layer_of(g) == "staging"]
    if naming.layer_of(model.name) != "staging" or not staging:
        return None
    return _finding(
        "layers.staging-reads-staging",
        model,
        f"staging model {model.name!r} reads staging models: "
        + ", ".join(f"gold.{g}" for g in staging),
        "read silver here, and combine staging models in an int_ model",
    )


def snapshot_source(model: Model, models: Mapping[str, Model], naming: Naming) -> Finding | None:
    """Snapshots read staging models or silver, never intermediate models or marts."""
    others = [g for g in _reads(model, "gold") if naming.layer_of(g) != "staging" and g in models]
    if not _is_snapshot(model, naming) or not others:
        return None
    return _finding(
        "layers.snapshot-source",
        model,
        f"snapshot {model.name!r} reads models that are not staging: "
        + ", ".join(f"gold.{g}" for g in others),
        "snapshot a stg_ model (or the silver table): history of derived logic "
        "records changes of that logic, not of the data",
    )


Rule = Callable[["Model", Mapping[str, "Model"], Naming], "Finding | None"]
RULES: dict[RuleName, Rule] = {
    "naming.prefix": naming_prefix,
    "naming.snapshot-prefix": snapshot_prefix,
    "layers.mart-reads-raw": mart_reads_raw,
    "layers.intermediate-reads-raw": intermediate_reads_raw,
    "layers.staging-reads-staging": staging_reads_staging,
    "layers.snapshot-source": snapshot_source,
}


def check_conventions(
    models: Mapping[str, Model],
    *,
    disable: Iterable[str] = (),
    prefixes: Mapping[Layer, list[str]] | None = None,
) -> list[Finding]:
    """Every rule not in ``disable`` over every model, in model then rule order;
    ``prefixes``: layer → the prefixes that replace weir's for that layer."""
    naming = Naming.of(prefixes)
    rules = [rule for name, rule in RULES.items() if name not in set(disable)]
    findings = []
    for name in sorted(models):
        for rule in rules:
            found = rule(models[name], models, naming)
            if found is not None:
                findings.append(found)
    return findings
