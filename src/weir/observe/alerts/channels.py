"""The senders: one alert to one channel, by its kind.

- ``webhook``: the alert as a JSON document, POSTed (its ``text`` is the summary, so a
  Slack-compatible receiver shows it too);
- ``slack``: a Slack incoming-webhook message, ``{"text": …, "blocks": […]}``;
- ``email``: a plain-text mail over SMTP (STARTTLS and login when configured);
- ``file``: the JSON document appended as one line.

A failed send raises :class:`DeliveryError`, whose message is safe to log and store: it
names the channel by its label and never holds its URL, password or any secret.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from weir.observe.record import Scrubber, scrubbed_logging
from weir.spec.alerts import Channel


class DeliveryError(Exception):
    """A channel did not take an alert; the message is scrubbed."""


def send(
    channel: Channel, alert: dict[str, Any], *, root: Path, timeout: float, secrets: frozenset[str]
) -> None:
    """Deliver ``alert`` (:func:`weir.observe.alerts.message.alert`) to ``channel``."""
    import smtplib  # imported when an alert goes out: a project without alerts never does

    import httpx

    hidden = {channel.url or "", channel.password or "", *channel.headers.values()}
    scrub = Scrubber(secrets | {s for s in hidden if s})
    try:
        with scrubbed_logging(scrub):  # httpx logs each request's URL
            _SENDERS[channel.kind](channel, alert, root, min(timeout, channel.timeout_seconds))
    except DeliveryError as exc:
        raise DeliveryError(scrub(str(exc))) from None
    except (httpx.HTTPError, smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(scrub(_describe(exc))) from None


def _describe(exc: BaseException) -> str:
    import smtplib

    import httpx

    if isinstance(exc, httpx.TimeoutException | socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, httpx.ConnectError | ConnectionRefusedError):
        return "could not connect (connection refused or host unreachable)"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"SMTP login refused ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP server answered {exc.smtp_code}"
    if isinstance(exc, httpx.HTTPError):
        return type(exc).__name__
    return f"{type(exc).__name__}: {exc.strerror or exc}" if isinstance(exc, OSError) else str(exc)


def _post(url: str, body: dict[str, Any], headers: dict[str, str], timeout: float) -> None:
    import httpx

    response = httpx.post(url, json=body, headers=headers, timeout=timeout)
    if response.status_code >= 300:
        raise DeliveryError(f"the receiver answered HTTP {response.status_code}")


def _webhook(channel: Channel, alert: dict[str, Any], root: Path, timeout: float) -> None:
    assert channel.url is not None  # the model requires it
    _post(channel.url, alert, channel.headers, timeout)


def slack_body(alert: dict[str, Any]) -> dict[str, Any]:
    """A Slack message: the summary as ``text`` (notifications), and blocks with the
    details and what to do first."""
    lines = [f"*{alert['title']}*"]
    if alert.get("error"):
        lines.append(f"```{alert['error'][:2500]}```")
    if alert.get("first_step"):
        lines.append(f"*First:* {alert['first_step']}")
    if alert.get("runbook_url"):
        lines.append(f"<{alert['runbook_url']}|Runbook>")
    context = f"{alert['node_kind']} {alert['node']} · tier {alert['tier']} · {alert['kind']}"
    context += f" · incident {alert['incident_id']}"
    return {
        "text": alert["text"],
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


def _slack(channel: Channel, alert: dict[str, Any], root: Path, timeout: float) -> None:
    assert channel.url is not None
    _post(channel.url, slack_body(alert), channel.headers, timeout)


def _email(channel: Channel, alert: dict[str, Any], root: Path, timeout: float) -> None:
    import smtplib
    from email.message import EmailMessage

    assert channel.host is not None and channel.sender is not None
    mail = EmailMessage()
    mail["Subject"] = alert["title"]
    mail["From"] = channel.sender
    mail["To"] = ", ".join(channel.to)
    mail.set_content(email_body(alert))
    with smtplib.SMTP(channel.host, channel.port, timeout=timeout) as smtp:
        if channel.starttls:
            smtp.starttls()
        if channel.user:
            smtp.login(channel.user, channel.password or "")
        smtp.send_message(mail)


def email_body(alert: dict[str, Any]) -> str:
    keys = ("severity", "node", "node_kind", "tier", "kind", "stage", "run_id", "occurrences")
    lines = [alert["text"], ""]
    lines += [f"{k}: {alert[k]}" for k in keys if alert.get(k) is not None]
    if alert.get("error"):
        lines += ["", "error:", alert["error"]]
    lines += ["", f"incident {alert['incident_id']}, opened {alert['opened_at']}"]
    return "\n".join(lines) + "\n"


def _file(channel: Channel, alert: dict[str, Any], root: Path, timeout: float) -> None:
    assert channel.path is not None
    path = Path(channel.path)
    path = path if path.is_absolute() else root / path
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(alert, sort_keys=True, default=str) + "\n")


_SENDERS = {"webhook": _webhook, "slack": _slack, "email": _email, "file": _file}
