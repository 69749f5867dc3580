"""YAML with line numbers: every value of a loaded document knows where it came from.

A config file is read with limits, so a hostile or broken one is a ConfigError with
file:line, never a crash or a hang: at most :data:`MAX_BYTES` per file, :data:`MAX_DEPTH`
levels of nesting (PyYAML composes recursively, and so does everything that walks the
result), :data:`MAX_NODES` values once aliases are expanded (a "billion laughs" file is a
few lines that expand to 10⁹ values), no alias that contains itself, no duplicate keys, and
only the plain YAML scalar types (no ``!!binary``, ``!!set``, ``!!python/…`` or custom tags).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from weir.errors import ConfigError
from weir.hints import did_you_mean

Loc = tuple[str | int, ...]
_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
"""``${env:NAME}``, or ``${env:NAME:-default}`` (the default when NAME is unset or empty)."""
_VAR = re.compile(r"\$\{var:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
"""``${var:NAME}``, or ``${var:NAME:-default}``: a project variable (weir.yml ``vars``)."""

MAX_DEPTH = 64
"""Nesting levels a config document may have (weir's own files need fewer than ten)."""
MAX_NODES = 100_000
"""Values a config document may hold once its aliases are expanded."""
MAX_BYTES = 4 * 1024 * 1024
"""Size of a config file (weir.yml, a pipeline, a contract, a model): 4 MiB."""

_CORE = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_CORE + t for t in ("null", "bool", "int", "float", "str", "timestamp")}
_COLLECTION_TAGS = {_CORE + "map", _CORE + "seq"}


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


def read_text(path: Path) -> str:
    """A config file's text; unreadable files and invalid UTF-8 are ConfigError."""
    try:
        with path.open("rb") as file:
            raw = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", where=str(path)) from exc
    if len(raw) > MAX_BYTES:
        raise ConfigError(
            f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB",
            where=str(path),
            hint="weir's config files are small; is this the file you meant?",
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"the file is not valid UTF-8 (byte 0x{raw[exc.start]:02x})",
            where=f"{path}:{line}",
            hint="save the file as UTF-8 text",
        ) from None


def load(path: Path) -> Document:
    """Parse one YAML file; syntax errors become ConfigError with file:line."""
    return loads(read_text(path), path)


def loads(text: str, path: Path, first_line: int = 1) -> Document:
    """Parse YAML ``text`` found in ``path`` starting at line ``first_line``."""
    text = "\n" * (first_line - 1) + text
    doc = Document(path=path, data={})
    bad = Reader.NON_PRINTABLE.search(text)  # what PyYAML's reader refuses, found up front
    if bad is not None:
        line = text[: bad.start()].count("\n") + 1
        raise ConfigError(
            f"invalid YAML: the control character U+{ord(bad.group()):04X} is not allowed in YAML",
            where=f"{path}:{line}",
            hint="remove control characters from the file",
        )
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:  # an empty file: errors about its missing fields point at its start
            doc.lines[()] = first_line
        else:
            doc.data = _Converter(loader, doc).convert(node, (), 0)
    except _Refused as exc:
        raise ConfigError(exc.problem or "", where=f"{path}:{_line(exc)}", hint=exc.hint) from None
    except yaml.MarkedYAMLError as exc:
        raise ConfigError(
            f"invalid YAML: {exc.problem or exc.context}",
            where=f"{path}:{_line(exc)}",
            hint="check indentation and quoting around this line",
        ) from None
    finally:
        loader.dispose()
    return doc


class _Refused(yaml.MarkedYAMLError):
    """Valid YAML that weir does not accept (too deep, too big, an odd tag …)."""

    def __init__(self, mark: yaml.Mark | None, problem: str, hint: str):
        super().__init__(problem=problem, problem_mark=mark)
        self.hint = hint


def _line(exc: yaml.MarkedYAMLError) -> int:
    mark = exc.problem_mark or exc.context_mark
    return mark.line + 1 if mark is not None else 1


_DEEP_HINT = "weir's files need only a few levels; look for runaway or unclosed brackets"


class _Alias(yaml.Node):
    """An alias (``*name``) where it is used: its own place, and the node it repeats."""

    def __init__(self, target: yaml.Node, mark: Any, name: str):
        super().__init__(target.tag, target.value, mark, mark)
        self.target = target
        self.name = name


class _Composer(Composer, SafeConstructor, Resolver):
    """PyYAML's safe composer with a depth limit, keeping aliases as :class:`_Alias`. The
    events come from libyaml's parser where PyYAML has it (6× faster than PyYAML's own,
    with the same events and marks), else from PyYAML's (:data:`_Loader`)."""

    depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[attr-defined]  # from the parser it is mixed with
        if isinstance(event, yaml.AliasEvent):
            target = super().compose_node(parent, index)
            assert target is not None  # an undefined alias raised ComposerError
            return _Alias(target, event.start_mark, str(event.anchor))
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise _Refused(
                    event.start_mark, f"nested deeper than {MAX_DEPTH} levels", _DEEP_HINT
                )
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


class _PyLoader(_Composer, Reader, Scanner, Parser):
    def __init__(self, stream: str):
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)


def _loader_class() -> type[Any]:
    if not yaml.__with_libyaml__:
        return _PyLoader
    from yaml._yaml import CParser

    class _CLoader(_Composer, CParser):
        def __init__(self, stream: str):
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    return _CLoader


_Loader = _loader_class()


class _Converter:
    """Nodes → plain values, recording lines, within the depth and size limits."""

    def __init__(self, loader: _Composer, doc: Document):
        self.loader = loader
        self.lines = doc.lines
        self.nodes = 0
        self.expanding: list[_Alias] = []

    def convert(self, node: yaml.Node, loc: Loc, depth: int) -> Any:
        if isinstance(node, _Alias):
            return self._expand(node, loc, depth)
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self._too_many(node)
        if depth >= MAX_DEPTH:
            raise _Refused(node.start_mark, f"nested deeper than {MAX_DEPTH} levels", _DEEP_HINT)
        self.lines[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node, loc, depth)
        if isinstance(node, yaml.SequenceNode):
            self._tag(node, _COLLECTION_TAGS)
            return [self.convert(item, (*loc, i), depth + 1) for i, item in enumerate(node.value)]
        return self._scalar(node)

    def _too_many(self, node: yaml.Node) -> None:
        used = self.expanding[0] if self.expanding else None
        if used is None:
            raise _Refused(
                node.start_mark,
                f"the file holds more than {MAX_NODES:,} values",
                "split it: no weir file needs that many",
            )
        raise _Refused(
            used.start_mark,
            f"alias *{used.name} expands the file to more than {MAX_NODES:,} values",
            "an alias may repeat a value, not multiply it: write the values out",
        )

    def _expand(self, alias: _Alias, loc: Loc, depth: int) -> Any:
        if any(a.target is alias.target for a in self.expanding):
            raise _Refused(
                alias.start_mark,
                f"alias *{alias.name} contains itself",
                "an alias cannot stand for the value that holds it",
            )
        self.expanding.append(alias)
        try:
            value = self.convert(alias.target, loc, depth)
        finally:
            self.expanding.pop()
        self.lines[loc] = alias.start_mark.line + 1
        return value

    def _mapping(self, node: yaml.MappingNode, loc: Loc, depth: int) -> dict[str, Any]:
        self._tag(node, _COLLECTION_TAGS)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                raise _Refused(
                    key_node.start_mark,
                    "a key must be plain text, not a list, map or alias",
                    "write the key as text",
                )
            key = str(key_node.value)
            if key in out:
                raise _Refused(
                    key_node.start_mark,
                    f"key {key[:60]!r} appears twice in the same map",
                    "keep one of them",
                )
            self.lines[(*loc, key)] = key_line
            out[key] = self.convert(value_node, (*loc, key), depth + 1)
            self.lines[(*loc, key)] = key_line
        return out

    def _scalar(self, node: yaml.Node) -> Any:
        self._tag(node, _SCALAR_TAGS)
        try:
            return self.loader.construct_object(node)
        except (ValueError, TypeError, AttributeError, OverflowError):
            raise _Refused(
                node.start_mark,
                f"{str(node.value)[:40]!r} is not a valid {node.tag.removeprefix(_CORE)}",
                "remove the tag, or quote the value to make it text",
            ) from None

    @staticmethod
    def _tag(node: yaml.Node, allowed: set[str]) -> None:
        if node.tag not in allowed:
            tag = node.tag.replace(_CORE, "!!")
            raise _Refused(
                node.start_mark,
                f"the tag {tag[:40]} is not supported in weir's files",
                "remove the tag: weir reads plain maps, lists, text, numbers, booleans and dates",
            )


def resolve_env(doc: Document, environ: dict[str, str] | None = None) -> list[str]:
    """Replace ``${env:NAME}`` in every string; return ``NAME (used at file:line)`` for each
    one that is unset, or set but empty (an empty secret is a mistake; ``${env:NAME:-}``
    allows it). ``${env:NAME:-default}`` takes the default instead."""
    env = os.environ if environ is None else environ
    missing: list[str] = []

    def walk(value: Any, loc: Loc) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, (*loc, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*loc, i)) for i, v in enumerate(value)]
        if isinstance(value, str) and "${env:" in value:

            def sub(match: re.Match[str]) -> str:
                name, default = match[1], match[2]
                value = env.get(name, "")
                if value:
                    return value
                if default is not None:
                    return default
                state = "is empty" if name in env else "is not set"
                missing.append(f"{name} {state} (used at {doc.where(loc)})")
                return ""

            return _ENV.sub(sub, value)
        return value

    doc.data = walk(doc.data, ())
    return missing


def resolve_vars(
    doc: Document, values: dict[str, str], *, skip: frozenset[Loc] = frozenset()
) -> list[ConfigError]:
    """Replace ``${var:NAME}`` in every string outside the paths ``skip`` (a variable's own
    definition is not substituted); an unknown NAME without a default is a ConfigError at
    its file:line, naming the variables there are."""
    errors: list[ConfigError] = []

    def walk(value: Any, loc: Loc) -> Any:
        if loc in skip:
            return value
        if isinstance(value, dict):
            return {k: walk(v, (*loc, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, (*loc, i)) for i, v in enumerate(value)]
        if isinstance(value, str) and "${var:" in value:

            def sub(match: re.Match[str]) -> str:
                name, default = match[1], match[2]
                if name in values:
                    return values[name]
                if default is not None:
                    return default
                close = did_you_mean(name, values) or "weir.yml defines no variables"
                errors.append(
                    ConfigError(
                        f"unknown variable {name!r}",
                        where=doc.where(loc),
                        hint=f"{close}; variables are defined under vars: in weir.yml or in "
                        "a target's vars (${var:NAME:-default} gives a default)",
                    )
                )
                return ""

            return _VAR.sub(sub, value)
        return value

    doc.data = walk(doc.data, ())
    return errors


def env_names(value: Any) -> set[str]:
    """Names of the environment variables a config value refers to (for secret scrubbing)."""
    if isinstance(value, dict):
        return set().union(*(env_names(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(env_names(v) for v in value)) if value else set()
    if isinstance(value, str):
        return {m[1] for m in _ENV.finditer(value)}
    return set()
