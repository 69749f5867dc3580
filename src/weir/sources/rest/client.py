"""The HTTP side of the REST source: the httpx client, and what may be said about a request.

Header values are secrets: the client sends them only to the API's own origin, and
:class:`Redactor` takes them (and their words, like a bearer token) out of any text. A URL in
a message is :func:`public_url`: no credentials, query string or fragment.
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime

import httpx

from weir.errors import SourceError
from weir.sources.rest.config import RestConfig

_HINTS = {
    404: "check url; the resource or page does not exist",
    400: "the API rejected the query; check params, pagination and incremental.format",
    422: "the API rejected the query; check params, pagination and incremental.format",
}


def secret_headers(config: RestConfig) -> dict[str, str]:
    """The configured headers and the auth header, with their (secret) values."""
    secrets = {k: v.get_secret_value() for k, v in config.headers.items()}
    if config.auth is not None:
        secrets[config.auth.header] = config.auth.value.get_secret_value()
    return secrets


def make_client(config: RestConfig) -> httpx.Client:
    """A client sending the configured headers, but only to the API's own origin."""
    secrets = secret_headers(config)
    home = origin(config.url)

    def guard(request: httpx.Request) -> None:
        if origin(str(request.url)) != home:  # redirected elsewhere: no credentials
            for name in secrets:
                request.headers.pop(name, None)

    headers = httpx.Headers({"Accept": "application/json"})
    headers.update(secrets)
    return httpx.Client(
        headers=headers,
        timeout=config.timeout_seconds,
        follow_redirects=True,
        event_hooks={"request": [guard]},
    )


class Redactor:
    """Replaces header values (and the words of them, like a bearer token) with ``***``."""

    def __init__(self, config: RestConfig):
        secrets = secret_headers(config).values()
        words = {w for s in secrets for w in (s, *s.split()) if len(w) > 3}
        self.words = sorted(words, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.words:
            text = text.replace(secret, "***")
        return text


def status_error(response: httpx.Response, where: str, config: RestConfig) -> SourceError:
    """The error for a 4xx answer that asking again will not change."""
    status = response.status_code
    if status in (401, 403):
        names = [config.auth.header] if config.auth else []
        names += list(config.headers)
        sent = f"headers sent: {', '.join(names)}" if names else "no auth configured"
        hint = f"check the credentials in ${{env:…}} referenced by auth/headers ({sent})"
    else:
        hint = _HINTS.get(status, "the API refused the request; see its documentation")
    return SourceError(f"HTTP {status} {response.reason_phrase}".rstrip(), where=where, hint=hint)


def retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (seconds or an HTTP-date), or None."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def public_url(url: str) -> str:
    """``url`` without credentials, query string or fragment: safe for messages."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"


def origin(url: str) -> tuple[str, str, int | None]:
    parsed = httpx.URL(url)
    default = {"http": 80, "https": 443}.get(parsed.scheme)
    return parsed.scheme, parsed.host, parsed.port or default
