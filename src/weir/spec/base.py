"""Strict pydantic models and the translation of their errors into ConfigError."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from weir.errors import ConfigError
from weir.hints import did_you_mean
from weir.spec.yamlsrc import Document, Loc

M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    """Base for every config model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def validate(doc: Document, model: type[M], data: Any = None, at: Loc = ()) -> M:
    """Validate ``data`` (default: the whole document) against ``model``.

    Every problem is reported together, each with file:line, the field path and a hint.
    """
    payload = doc.data if data is None else data
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise config_error(doc, model, exc, at) from None


def config_error(
    doc: Document, model: type[BaseModel], exc: ValidationError, at: Loc
) -> ConfigError:
    problems = []
    errors = exc.errors()
    for err in errors:
        loc = (*at, *(p for p in err["loc"] if not _is_union_tag(p)))
        path = ".".join(str(p) for p in loc) or "(top level)"
        hint = _hint(model, err, loc[len(at) :])
        line = f"{doc.where(loc)}: {path}: {_message(err)}"
        problems.append(line + (f" ({hint})" if hint else ""))
    first = problems[0]
    more = "\n".join(problems[1:])
    message = first + ("\n" + more if more else "")
    top = next((p for p in errors[0]["loc"] if not _is_union_tag(p)), None)
    return ConfigError(message, hint=f"see {_reference(model, top)}")


def _reference(model: type[BaseModel], field: object = None) -> str:
    """The docs page that describes ``model``'s fields (``field``'s, where a block of it
    has a page of its own: ``sections``)."""
    sections = getattr(model, "sections", None)
    if isinstance(sections, dict) and isinstance(sections.get(field), str):
        return str(sections[field])
    page = getattr(model, "reference", None)
    return page if isinstance(page, str) else "the reference in docs/"


def _is_union_tag(part: Any) -> bool:
    return isinstance(part, str) and (part.startswith("function-") or "[" in part)


def _message(err: Any) -> str:
    """pydantic's message in weir's words: no class names, no "Input should be"."""
    kind, ctx = err["type"], err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "field required"
    if kind == "literal_error":
        return _choice(err["input"], _options(ctx.get("expected", "")))
    if kind == "union_tag_invalid":
        return _choice(ctx.get("tag"), _options(ctx.get("expected_tags", "")))
    if kind == "union_tag_not_found":
        return f"needs {ctx.get('discriminator', 'a kind').strip(chr(39))}"
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(prefix)
    return re.sub(r"^Input should be\b", "must be", msg)


def _options(expected: str) -> list[str]:
    """pydantic's "'a', 'b' or 'c'" (or "1, 2 or 3") as its items, quotes kept."""
    quoted = re.findall(r"'[^']*'", expected)
    return quoted or [o for o in re.split(r", | or ", expected) if o]


def _choice(value: Any, options: list[str]) -> str:
    shown = repr(value) if isinstance(value, str) else str(value)
    message = f"{shown[:80]} is not one of {', '.join(options)}"
    names = [o.strip("'") for o in options]
    close = did_you_mean(str(value), names) if isinstance(value, str) else None
    return message + (f" ({close})" if close and close.startswith("did you") else "")


def _hint(model: type[BaseModel], err: Any, loc: Loc) -> str | None:
    if err["type"] != "extra_forbidden" or not loc:
        return None
    owner = _model_at(model, loc[:-1])
    if owner is None:
        return None
    names = {f.alias or n for n, f in owner.model_fields.items()}
    return did_you_mean(str(loc[-1]), names)


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        fields = {f.alias or n: f for n, f in current.model_fields.items()}
        if str(part) not in fields:
            return None
        current = _inner_model(fields[str(part)].annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None
