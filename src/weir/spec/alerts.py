"""The ``alerts:`` block of weir.yml: named channels, severities, rate limits (docs/alerts.md).

A pipeline's ``error_handling.alert_channels`` (or weir.yml's, the project default) lists
where its alerts go; each entry is one of:

- ``#name``: a channel of ``alerts.channels`` below;
- ``https://…`` or ``http://…``: a webhook (generic JSON POST); a Slack incoming-webhook
  URL (``https://hooks.slack.com/…``) is a ``slack`` channel;
- ``file:PATH``: JSON lines appended to PATH (relative to the project).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Discriminator, Field, Tag, field_validator, model_validator

from weir.spec.base import Strict

Level = Literal["P0", "P1", "P2", "P3"]
"""Alert severities, P0 (critical) to P3 (warning); docs/alerts.md has the table."""
AlertKind = Literal["failure", "sla_breach", "sla_warning", "stale"]
"""What an incident is about: a failed run, a run past its ``sla_minutes``, a run past 80 %
of it, data older than the contract's freshness SLA."""
TierKey = Literal["1", "2", "3"]
LEVELS: tuple[Level, ...] = ("P0", "P1", "P2", "P3")


class Channel(Strict):
    """A named channel (``alerts.channels.NAME``), used as ``#NAME`` in alert_channels."""

    kind: Literal["webhook", "slack", "email", "file"]
    url: str | None = None
    """webhook and slack: the endpoint (put its secret in ``${env:…}``)."""
    path: str | None = None
    """file: the JSON-lines file, relative to the project."""
    host: str | None = None
    """email: the SMTP server."""
    port: int = Field(default=25, ge=1, le=65535)
    sender: str | None = Field(default=None, alias="from")
    to: list[str] = Field(default_factory=list)
    starttls: bool = False
    user: str | None = None
    password: str | None = None
    """email: the SMTP password; give it as ``${env:…}`` (never written in the file)."""
    headers: dict[str, str] = Field(default_factory=dict)
    """webhook: extra HTTP headers (an ``Authorization`` from ``${env:…}``)."""
    min_severity: Level = "P3"
    """The least severe alert this channel gets: ``P1`` sends P0 and P1 only."""
    timeout_seconds: float = Field(default=5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _needs(self) -> Channel:
        need: dict[str, tuple[str, ...]] = {"webhook": ("url",), "slack": ("url",)}
        need |= {"file": ("path",), "email": ("host", "sender", "to")}
        for name in need[self.kind]:
            if not getattr(self, name):
                shown = "from" if name == "sender" else name
                article = "an" if self.kind == "email" else "a"
                raise ValueError(f"{article} {self.kind} channel needs '{shown}'")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError("url must be an http(s) URL")
        if self.password is not None and not self.user:
            raise ValueError("password is given without user")
        return self


SeverityRule = Annotated[
    Annotated[Level, Tag("[level]")] | Annotated[dict[TierKey, Level], Tag("[tiers]")],
    Discriminator(lambda v: "[tiers]" if isinstance(v, dict) else "[level]"),
]
"""One level for every tier, or a level per tier (``{1: P0, 2: P2}``; tiers left out keep
the default). The tags (in brackets: config errors leave them out of the path) make an
error name the one form the value has."""


class Alerts(Strict):
    """Where and how alerts go."""

    channels: dict[str, Channel] = Field(default_factory=dict)
    """Named channels, used as ``#name`` in ``error_handling.alert_channels``."""
    severity: dict[AlertKind, SeverityRule] = Field(default_factory=dict)
    """Overrides of the default severities (weir.observe.alerts.severity.DEFAULTS)."""
    runbook_url: str | None = None
    """A link put in every alert; ``{node}`` and ``{kind}`` are replaced by the node's name
    and the incident's kind (``https://wiki/runbooks/{node}``)."""
    rate_limit_per_hour: int = Field(default=20, ge=1, le=10_000)
    """Deliveries per channel in any hour; the ones over it are recorded as ``dropped``."""
    max_attempts: int = Field(default=6, ge=1, le=50)
    """Tries of a delivery before it is ``failed``."""
    retry_seconds: float = Field(default=30.0, gt=0, le=3600)
    """The first back-off; each retry waits twice as long as the one before (at most 1 h)."""
    warn_at: Annotated[float, Field(gt=0, lt=1)] = 0.8
    """The share of ``sla_minutes`` a running node passes to raise an ``sla_warning``."""

    @field_validator("channels")
    @classmethod
    def _names(cls, value: dict[str, Channel]) -> dict[str, Channel]:
        for name in value:
            if not name or name.startswith("#") or any(c.isspace() for c in name):
                raise ValueError(f"channel name {name!r}: letters, digits, - and _ (no #)")
        return value

    @field_validator("runbook_url")
    @classmethod
    def _placeholders(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            value.format(node="n", kind="k")
        except (KeyError, IndexError, ValueError):
            raise ValueError(
                "runbook_url may hold only the placeholders {node} and {kind}"
            ) from None
        return value


ENTRY_FORMS = "'#name' (a channel of alerts.channels), an http(s) URL, or 'file:PATH'"


def entry_problem(entry: str) -> str | None:
    """Why ``entry`` (an item of ``alert_channels``) is not a channel, None when it is one
    (a ``#name`` is only checked for its form here: weir.yml's channels are checked at load)."""
    if entry.startswith("#"):
        return None if len(entry) > 1 else "'#' needs a channel name after it"
    if entry.startswith(("http://", "https://")):
        return None if len(entry) > len("https://") else "the URL has no host"
    if entry.startswith("file:"):
        return None if entry.removeprefix("file:").strip() else "'file:' needs a path after it"
    return f"{entry[:40]!r} is not a channel: give {ENTRY_FORMS}"


def resolve(entry: str, alerts: Alerts) -> tuple[str, Channel]:
    """The label (what logs, the store and ``weir alerts`` show: never a URL) and the
    channel of an ``alert_channels`` entry. KeyError: a ``#name`` weir.yml does not define."""
    import hashlib
    from urllib.parse import urlsplit

    if entry.startswith("#"):
        return entry, alerts.channels[entry[1:]]
    if entry.startswith("file:"):
        path = entry.removeprefix("file:").strip()
        return f"file:{path}", Channel(kind="file", path=path)
    host = urlsplit(entry).hostname or "?"
    kind: Literal["slack", "webhook"] = "slack" if host == "hooks.slack.com" else "webhook"
    digest = hashlib.sha256(entry.encode()).hexdigest()[:8]
    return f"{kind}:{host}~{digest}", Channel(kind=kind, url=entry)
