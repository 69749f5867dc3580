"""YAML with line numbers: every value of a loaded document knows where it came from."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from weir.errors import ConfigError

Loc = tuple[str | int, ...]
_SCALARS = yaml.SafeLoader("")
_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass
class Document:
    """A parsed YAML file: its data and the line of each path inside it."""

    path: Path
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def where(self, loc: Loc = ()) -> str:
        """``file:line`` for the deepest known prefix of ``loc``."""
        for cut in range(len(loc), -1, -1):
            line = self.lines.get(tuple(loc[:cut]))
            if line is not None:
                return f"{self.path}:{line}"
        return str(self.path)


def load(path: Path) -> Document:
    """Parse one YAML file; syntax errors become ConfigError with file:line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", where=str(path)) from exc
    return loads(text, path)


def loads(text: str, path: Path, first_line: int = 1) -> Document:
    """Parse YAML ``text`` found in ``path`` starting at line ``first_line``."""
    text = "\n" * (first_line - 1) + text
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 1
        raise ConfigError(
            f"invalid YAML: {exc.problem}",
            where=f"{path}:{line}",
            hint="check indentation and quoting around this line",
        ) from exc
    doc = Document(path=path, data=None)
    doc.data = _convert(node, (), doc.lines) if node is not None else {}
    return doc


def _convert(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> Any:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            lines[(*loc, key)] = key_node.start_mark.line + 1
            out[key] = _convert(value_node, (*loc, key), lines)
            lines[(*loc, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*loc, i), lines) for i, item in enumerate(node.value)]
    return _SCALARS.construct_object(node)


def resolve_env(doc: Document, environ: dict[str, str] | None = None) -> list[str]:
    """Replace ``${env:NAME}`` in every string; return ``file:line NAME`` for missing ones."""
    env = os.environ if environ is None else environ
    missing: list[str] = []

    def walk(value: Any, loc: Loc) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, (*loc, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*loc, i)) for i, v in enumerate(value)]
        if isinstance(value, str) and "${env:" in value:

            def sub(match: re.Match[str]) -> str:
                name = match[1]
                if name not in env:
                    missing.append(f"{name} (used at {doc.where(loc)})")
                    return ""
                return env[name]

            return _ENV.sub(sub, value)
        return value

    doc.data = walk(doc.data, ())
    return missing


def env_names(value: Any) -> set[str]:
    """Names of the environment variables a config value refers to (for secret scrubbing)."""
    if isinstance(value, dict):
        return set().union(*(env_names(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(env_names(v) for v in value)) if value else set()
    if isinstance(value, str):
        return set(_ENV.findall(value))
    return set()
