"""weir.yml's targets and variables, and credentials in its storage options."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from weir.errors import ConfigError
from weir.hints import did_you_mean
from weir.spec.yamlsrc import (
    Document,
    Loc,
    resolve_vars,
)

if TYPE_CHECKING:
    pass


TARGET_ENV = "WEIR_TARGET"
"""The environment variable that picks a target when ``--target`` does not."""


def choose_target(doc: Document, given: str | None, env: dict[str, str]) -> str | None:
    """The target in effect: ``given`` (``--target``), else ``WEIR_TARGET``, else weir.yml's
    ``default_target``, else none. A name weir.yml does not define is a ConfigError."""
    data = doc.data if isinstance(doc.data, dict) else {}
    targets = data.get("targets")
    known = sorted(targets) if isinstance(targets, dict) else []
    default = data.get("default_target")
    if given:
        name, source, where = given, "--target", doc.where(("targets",))
    elif env.get(TARGET_ENV):
        name, source, where = env[TARGET_ENV], TARGET_ENV, doc.where(("targets",))
    elif isinstance(default, str):
        name, source, where = default, "default_target", doc.where(("default_target",))
    else:
        return None  # a default_target that is not text: validation names it
    if name in known:
        return name
    if not known:
        hint = "weir.yml defines no targets: add them under targets: (docs/pipelines.md)"
        where = str(doc.path) if source != "default_target" else where
    else:
        hint = f"{did_you_mean(name, known)} (weir.yml defines: {', '.join(known)})"
    raise ConfigError(f"unknown target {name!r} (from {source})", where=where, hint=hint)


@contextmanager
def only_target(doc: Document, chosen: str | None) -> Iterator[None]:
    """Within the block, weir.yml's ``targets`` holds only ``chosen``: the others' ``${env:…}``
    and ``${var:…}`` are neither needed nor substituted. They are back afterwards, in their
    order, to be validated like the rest."""
    targets = doc.data.get("targets") if isinstance(doc.data, dict) else None
    if not isinstance(targets, dict):
        yield
        return
    doc.data["targets"] = {n: t for n, t in targets.items() if n == chosen}
    try:
        yield
    finally:
        resolved = doc.data["targets"]
        doc.data["targets"] = {n: resolved.get(n, t) for n, t in targets.items()}


def resolve_project_vars(doc: Document, chosen: str | None) -> list[ConfigError]:
    """Substitute ``${var:…}`` in weir.yml with the variables in effect (top-level ``vars``
    and the chosen target's); the definitions of the variables stay as written."""
    data = doc.data if isinstance(doc.data, dict) else {}
    top = data.get("vars")
    values: dict[str, Any] = top if isinstance(top, dict) else {}
    target = (data.get("targets") or {}).get(chosen) if chosen else None
    if isinstance(target, dict) and isinstance(target.get("vars"), dict):
        values = {**values, **target["vars"]}
    skip: frozenset[Loc] = frozenset({("vars",), ("targets", chosen or "", "vars")})
    return resolve_vars(doc, var_text(values), skip=skip)


def var_text(values: dict[str, Any]) -> dict[str, str]:
    """Variables as the text ``${var:NAME}`` puts in place (YAML ``true`` is ``true``)."""
    return {
        k: ("true" if v else "false") if isinstance(v, bool) else str(v)
        for k, v in values.items()
        if isinstance(k, str) and v is not None and not isinstance(v, dict | list)
    }


_CREDENTIAL = ("secret", "key", "token", "password", "sas", "credential", "signature")
_NOT_SECRET = {
    "region",
    "default_region",
    "endpoint",
    "endpoint_url",
    "allow_http",
    "s3_locking_provider",
    "conditional_put",
    "virtual_hosted_style_request",
    "delta_dynamo_table_name",
    "bucket",
    "bucket_name",
    "timeout",
    "connect_timeout",
    "max_retries",
    "retry_timeout",
    "allow_unsafe_rename",
    "use_emulator",
}
"""Storage options whose values are settings, not credentials (``AWS_REGION``, …)."""


def _plain_key(key: str) -> str:
    key = key.lower()
    for prefix in ("aws_", "google_", "azure_", "storage_"):
        key = key.removeprefix(prefix)
    return key


def storage_secrets(options: dict[str, str]) -> frozenset[str]:
    """Storage option values to scrub: all but settings (``_NOT_SECRET``) and plain
    booleans and numbers, which are never credentials (and would mangle every JSON line)."""
    return frozenset(
        v
        for k, v in options.items()
        if _plain_key(k) not in _NOT_SECRET
        and v.lower() not in ("true", "false")
        and not v.replace(".", "", 1).isdigit()
    )


def literal_credentials(doc: Document) -> list[str]:
    """Warnings for credentials written into weir.yml's storage options rather than read
    with ``${env:…}`` (a committed weir.yml would hold them)."""
    data = doc.data if isinstance(doc.data, dict) else {}
    places: list[tuple[Loc, Any]] = [(("storage_options",), data.get("storage_options"))]
    targets = data.get("targets")
    for name, target in targets.items() if isinstance(targets, dict) else []:
        if isinstance(target, dict):
            places.append((("targets", name, "storage_options"), target.get("storage_options")))
    found = []
    for loc, options in places:
        for key, value in options.items() if isinstance(options, dict) else []:
            plain = _plain_key(str(key))
            if (
                isinstance(value, str)
                and value
                and "${env:" not in value
                and plain not in _NOT_SECRET
                and any(word in plain for word in _CREDENTIAL)
            ):
                found.append(
                    f"{doc.where((*loc, key))}: {'.'.join(map(str, (*loc, key)))} is written "
                    "in weir.yml; read credentials with ${env:NAME} instead (values are "
                    "scrubbed from output either way)"
                )
    return found


def missing_error(missing: list[str]) -> ConfigError:
    return ConfigError(
        "missing environment variables: " + "; ".join(missing),
        hint="export them (values are never logged); ${env:NAME:-default} gives a default",
    )
