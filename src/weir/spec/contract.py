"""Data contracts in ODCS v3 YAML, reduced to what weir enforces.

The fields of the Data Contract Template map onto ODCS like this (see docs/contracts.md):
owner → ``team[role=owner]``, consumers → ``customProperties[consumers]``, SLA freshness →
``slaProperties[freshness]``, column type → ``physicalType``, nullable → ``not required``,
pii → ``classification: pii``, checks → ``quality``, breaking-change policy →
``customProperties[breakingChangePolicy]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from weir.hints import did_you_mean
from weir.spec import names, types
from weir.spec.base import Strict
from weir.spec.yamlsrc import Document

Severity = Literal["error", "warn", "info"]
PII_CLASSES = ("pii", "sensitive", "restricted")
SCALAR_RULES = ("accepted_values", "range", "regex")
"""Column rules that compare values: not for struct, list or map columns."""


class Quality(Strict):
    """One ODCS quality entry, as written. ``rule`` names a weir check kind; which of the
    other fields an entry needs is the kind's business (weir/quality/kinds/), validated
    after loading with file:line (weir.quality.validate)."""

    rule: str
    severity: Severity = "error"
    name: str | None = None
    description: str | None = None
    validValues: list[Any] | None = None
    mustBeBetween: tuple[Any, Any] | None = None
    mustBeGreaterThanOrEqualTo: Any = None
    mustBeLessThanOrEqualTo: Any = None
    pattern: str | None = None
    condition: str | None = None
    columns: list[str] | None = None
    column: str | None = None
    maxAgeHours: float | None = None
    maxChangePercent: float | None = None

    @property
    def bounds(self) -> tuple[Any, Any]:
        if self.mustBeBetween is not None:
            return self.mustBeBetween
        return self.mustBeGreaterThanOrEqualTo, self.mustBeLessThanOrEqualTo


class Property(Strict):
    """One column. ``physicalName`` is the source's name, ``name`` the silver name."""

    name: str
    physicalName: str | None = None
    logicalType: str | None = None
    physicalType: str
    required: bool = False
    unique: bool = False
    primaryKey: bool = False
    primaryKeyPosition: int | None = None
    classification: str | None = None
    description: str | None = None
    examples: list[Any] | None = None
    quality: list[Quality] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return names.check_column(value)

    @field_validator("physicalName")
    @classmethod
    def _source_name(cls, value: str | None) -> str | None:
        return None if value is None else names.check_source_column(value)

    @field_validator("physicalType")
    @classmethod
    def _known_type(cls, value: str) -> str:
        return types.check(value)

    @model_validator(mode="after")
    def _nested(self) -> Property:
        if not types.is_nested(self.physicalType):
            return self
        if self.pii:
            raise ValueError(
                f"column {self.name!r} is {self.physicalType}: a nested column cannot be "
                f"classified {self.classification!r} (it would be hashed whole); set flatten: "
                "true on the source so that its PII field is a column of its own, and classify "
                "that one"
            )
        for check in self.quality:
            if check.rule in SCALAR_RULES:
                raise ValueError(
                    f"rule {check.rule!r} needs a scalar column; {self.name!r} is "
                    f"{self.physicalType} (check a field of it with row_condition)"
                )
        return self

    @property
    def source_name(self) -> str:
        return self.physicalName or self.name

    @property
    def pii(self) -> bool:
        return (self.classification or "").lower() in PII_CLASSES


class SchemaObject(Strict):
    name: str
    physicalName: str | None = None
    description: str | None = None
    properties: list[Property]
    quality: list[Quality] = Field(default_factory=list)


class TeamMember(Strict):
    username: str
    role: str | None = None
    name: str | None = None


class SlaProperty(Strict):
    property: str
    value: float | int | str
    unit: str | None = None
    element: str | None = None


class CustomProperty(Strict):
    property: str
    value: Any


class Description(Strict):
    purpose: str | None = None
    usage: str | None = None
    limitations: str | None = None


class ContractSpec(Strict):
    reference: ClassVar[str] = "docs/contracts.md"
    """Where the fields are documented (config errors point there)."""
    apiVersion: str
    kind: Literal["DataContract"]
    id: str
    name: str | None = None
    version: str
    status: str = "active"
    domain: str | None = None
    description: Description | None = None
    team: list[TeamMember] = Field(default_factory=list)
    slaProperties: list[SlaProperty] = Field(default_factory=list)
    customProperties: list[CustomProperty] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    schema_: list[SchemaObject] = Field(alias="schema", min_length=1, max_length=1)

    @field_validator("apiVersion")
    @classmethod
    def _v3(cls, value: str) -> str:
        if not value.startswith("v3."):
            raise ValueError(f"weir reads ODCS v3 contracts; got apiVersion {value!r}")
        return value

    @model_validator(mode="after")
    def _columns(self) -> ContractSpec:
        seen: set[str] = set()
        sources: set[str] = set()
        for prop in self.schema_[0].properties:
            if prop.name in seen:
                raise ValueError(f"column {prop.name!r} is declared twice")
            if prop.source_name.lower() in sources:
                raise ValueError(f"two columns read the source column {prop.source_name!r}")
            seen.add(prop.name)
            sources.add(prop.source_name.lower())
        for check in self.schema_[0].quality:
            for col in [*(check.columns or []), *([check.column] if check.column else [])]:
                if col not in seen:
                    raise ValueError(
                        f"table check {check.rule!r} names unknown column {col!r}; "
                        f"{did_you_mean(col, seen)}"
                    )
        return self


@dataclass(frozen=True)
class Contract:
    """The validated contract, with the views the engine needs."""

    spec: ContractSpec
    path: str
    doc: Document | None = field(default=None, compare=False, repr=False)
    """The file it came from, for file:line in errors about its fields."""

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def table(self) -> SchemaObject:
        return self.spec.schema_[0]

    @property
    def columns(self) -> list[Property]:
        return self.table.properties

    @property
    def keys(self) -> list[str]:
        keyed = [p for p in self.columns if p.primaryKey]
        keyed.sort(key=lambda p: p.primaryKeyPosition or 0)
        return [p.name for p in keyed]

    @property
    def pii_columns(self) -> list[str]:
        return [p.name for p in self.columns if p.pii]

    @property
    def owner(self) -> str | None:
        for member in self.spec.team:
            if (member.role or "").lower() == "owner":
                return member.username
        return self.spec.team[0].username if self.spec.team else None

    def custom(self, name: str) -> Any:
        for prop in self.spec.customProperties:
            if prop.property == name:
                return prop.value
        return None

    @property
    def freshness_hours(self) -> float | None:
        for sla in self.spec.slaProperties:
            if sla.property == "freshness":
                factor = {"d": 24.0, "day": 24.0, "days": 24.0, "m": 1 / 60, "min": 1 / 60}
                return float(sla.value) * factor.get((sla.unit or "h").lower(), 1.0)
        return None

    def column(self, name: str) -> Property:
        for prop in self.columns:
            if prop.name == name:
                return prop
        raise KeyError(name)
