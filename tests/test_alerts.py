"""Alerts: incidents from real runs of a files pipeline, delivered to real receivers on
127.0.0.1 (an HTTP webhook, an SMTP server, a file); the SLA watch ticked with chosen times."""

from __future__ import annotations

import datetime as dt
import json
import logging
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from weir.errors import ConfigError
from weir.observe.alerts import Alerting, incidents
from weir.observe.alerts.severity import DEFAULTS, severity
from weir.observe.events import NodeFinished, NodeStage, NodeStarted
from weir.observe.observers import observers_for
from weir.observe.record import RunRecord
from weir.run import api, dag
from weir.spec import load_project
from weir.spec.alerts import Alerts
from weir.state.sqlite import StateStore
from weirtest.modelkit import EVENTS_CONTRACT, events_csv, events_pipeline, events_project
from weirtest.receiver import Mailbox, Webhook, free_port

ROW = (1, dt.date(2024, 1, 1), "a", 5, dt.datetime(2024, 1, 1))


def make(
    root: Path,
    *,
    channels: list[str] | None = None,
    alerts: dict[str, Any] | None = None,
    defaults: list[str] | None = None,
    **pipeline: Any,
) -> Path:
    """The events files pipeline (a bad value fails the run: on_parse_error fail), its
    ``alert_channels``, and weir.yml's ``alerts:`` and default channels."""
    spec = events_pipeline("files", on_parse_error="fail", **pipeline)
    if channels is not None:
        spec["error_handling"] = {"alert_channels": channels, "retry_delay_seconds": 0}
    contract = {
        **EVENTS_CONTRACT,
        "slaProperties": [{"property": "freshness", "value": 24, "unit": "h"}],
    }
    events_project(root, {}, source="files", pipelines={"events": spec})
    (root / "contracts" / "events.yml").write_text(yaml.safe_dump(contract, sort_keys=False))
    project: dict[str, Any] = {"name": "test"}
    if alerts:
        project["alerts"] = alerts
    if defaults is not None:
        project["error_handling"] = {"alert_channels": defaults}
    (root / "weir.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    return root


def source(root: Path, bad: str | None = None) -> None:
    """The source file: one good row, or one whose amount is ``bad`` (the run fails)."""
    text = events_csv([ROW])
    (root / "data" / "a.csv").write_text(text.replace(",5,", f",{bad},") if bad else text)


def run(root: Path) -> RunRecord:
    (record,) = api.run(load_project(root))
    return record


def test_a_failure_alerts_once_repeats_silently_and_resolves_once(tmp_path: Path) -> None:
    with Webhook() as hook:
        root = make(tmp_path / "p", channels=[hook.url], tier=1)
        source(root, bad="zz")
        assert run(root).status == "failed"
        (opened,) = hook.wait(1)
        assert opened["event"] == "opened" and opened["kind"] == "failure"
        assert opened["severity"] == "P1"  # tier 1 failure, by default
        assert opened["node"] == "events" and opened["stage"] == "extract"
        assert "column amount, value 'zz' (line 2)" in opened["error"]
        assert opened["first_step"].startswith("fix the value")  # the error's own hint
        assert opened["text"].startswith("[P1] events failed at stage extract: data/a.csv")

        assert run(root).status == "failed"
        (incident,) = incidents(load_project(root))
        assert incident["occurrences"] == 2 and incident["status"] == "open"
        assert len(hook.posts) == 1

        source(root)
        assert run(root).status == "success"
        resolved = hook.wait(2)[1]
        assert resolved["event"] == "resolved" and resolved["incident_id"] == opened["incident_id"]
        assert resolved["text"].startswith("[P1] resolved: events runs again")
        assert run(root).status == "success"
    assert len(hook.posts) == 2
    (incident,) = incidents(load_project(root))
    assert incident["status"] == "resolved" and incident["resolved_at"]
    assert [(d["event"], d["status"]) for d in incident["deliveries"]] == [
        ("opened", "sent"),
        ("resolved", "sent"),
    ]


def test_slack_channel_gets_text_and_blocks(tmp_path: Path) -> None:
    with Webhook() as hook:
        alerts = {
            "channels": {"data-oncall": {"kind": "slack", "url": hook.url}},
            "runbook_url": "https://wiki.example/runbooks/{node}",
        }
        root = make(tmp_path / "p", alerts=alerts, defaults=["#data-oncall"])
        source(root, bad="zz")
        run(root)
        (message,) = hook.wait(1)
    assert set(message) == {"text", "blocks"}
    assert message["text"].startswith("[P2] events failed at stage extract")
    assert message["text"].endswith("Runbook: https://wiki.example/runbooks/events")
    section, context = message["blocks"]
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert "*First:* fix the value" in section["text"]["text"]
    assert "<https://wiki.example/runbooks/events|Runbook>" in section["text"]["text"]
    assert context["type"] == "context"
    assert "pipeline events · tier 2 · failure" in context["elements"][0]["text"]


def test_email_channel_sends_a_mail_over_smtp(tmp_path: Path) -> None:
    with Mailbox() as box:
        mail = {
            "kind": "email",
            "host": "127.0.0.1",
            "port": box.port,
            "from": "weir@example.com",
            "to": ["oncall@example.com", "lead@example.com"],
        }
        root = make(tmp_path / "p", alerts={"channels": {"mail": mail}}, channels=["#mail"])
        source(root, bad="zz")
        run(root)
        (message,) = box.wait(1)
    assert message["Subject"] == "[P2] events failed"
    assert message["To"] == "oncall@example.com, lead@example.com"
    body = message.get_payload()
    assert isinstance(body, str)
    assert "stage: extract" in body and "column amount, value 'zz'" in body


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_email_logs_in_with_a_password_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_PASSWORD", "smtp-pa55word-7c1e")
    with Mailbox(login=("weir", "smtp-pa55word-7c1e")) as box:
        mail = {
            "kind": "email",
            "host": "127.0.0.1",
            "port": box.port,
            "from": "weir@example.com",
            "to": ["oncall@example.com"],
            "user": "weir",
            "password": "${env:SMTP_PASSWORD}",
        }
        root = make(tmp_path / "p", alerts={"channels": {"mail": mail}}, channels=["#mail"])
        source(root, bad="zz")
        run(root)
        box.wait(1)
    assert box.logins == ["weir"]
    store = (root / ".weir" / "state.db").read_bytes()
    assert b"smtp-pa55word-7c1e" not in store


def test_file_channel_appends_json_lines(tmp_path: Path) -> None:
    root = make(tmp_path / "p", channels=["file:alerts/out.jsonl"])
    source(root, bad="zz")
    run(root)
    source(root)
    run(root)
    lines = (root / "alerts" / "out.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    assert [(e["event"], e["kind"], e["node"]) for e in events] == [
        ("opened", "failure", "events"),
        ("resolved", "failure", "events"),
    ]
    assert events[0]["incident_id"] == events[1]["incident_id"]


def test_named_channels_resolve_and_unknown_names_fail_with_file_and_line(
    tmp_path: Path,
) -> None:
    with Webhook() as hook:
        alerts = {"channels": {"data-oncall": {"kind": "webhook", "url": hook.url}}}
        root = make(tmp_path / "p", alerts=alerts, channels=["#data-oncall"])
        source(root, bad="zz")
        run(root)
        assert hook.wait(1)[0]["node"] == "events"
    (incident,) = incidents(load_project(root))
    assert incident["deliveries"][0]["channel"] == "#data-oncall"

    bad = make(tmp_path / "q", alerts=alerts, channels=["#data-oncal"])
    with pytest.raises(ConfigError) as err:
        load_project(bad)
    text = str(err.value)
    lines = (bad / "pipelines" / "events.yml").read_text().splitlines()
    line = next(i for i, t in enumerate(lines, 1) if "#data-oncal" in t)
    assert f"events.yml:{line}: error_handling.alert_channels: no channel named" in text
    assert "did you mean '#data-oncall'?" in text and "alerts.channels" in text

    default = make(tmp_path / "r", alerts=alerts, defaults=["#nowhere"])
    with pytest.raises(ConfigError, match=r"weir\.yml:\d+: .*'#nowhere'"):
        load_project(default)
    malformed = make(tmp_path / "s", channels=["slack-oncall"])
    with pytest.raises(ConfigError, match="is not a channel: give '#name'"):
        load_project(malformed)


def test_a_dead_channel_never_fails_a_run_and_is_retried_after_back_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens here yet
    url = f"http://127.0.0.1:{port}/hook"
    root = make(tmp_path / "p", channels=[url], alerts={"retry_seconds": 60})
    source(root, bad="zz")
    with caplog.at_level(logging.WARNING, logger="weir.alerts"):
        assert run(root).status == "failed"  # as it would without alerts
    project = load_project(root)
    (delivery,) = incidents(project)[0]["deliveries"]
    assert delivery["status"] == "queued" and delivery["attempts"] == 1
    assert "could not connect" in delivery["last_error"]
    assert any("alert delivery to webhook:127.0.0.1~" in r.getMessage() for r in caplog.records)
    assert url not in caplog.text and str(port) not in caplog.text

    alerting = Alerting(project)
    first = datetime.fromisoformat(delivery["created_at"])
    with Webhook(port) as hook:
        alerting.tick(first + timedelta(seconds=30))  # before the back-off: not tried
        assert incidents(project)[0]["deliveries"][0]["attempts"] == 1
        alerting.tick(first + timedelta(seconds=61))
        (post,) = hook.wait(1)
    assert post["event"] == "opened" and post["node"] == "events"
    (delivery,) = incidents(project)[0]["deliveries"]
    assert delivery["status"] == "sent" and delivery["attempts"] == 2


def test_a_delivery_gives_up_after_max_attempts(tmp_path: Path) -> None:
    with Webhook(status=500) as hook:
        alerts = {"max_attempts": 3, "retry_seconds": 10}
        root = make(tmp_path / "p", channels=[hook.url], alerts=alerts)
        source(root, bad="zz")
        run(root)
        project = load_project(root)
        alerting = Alerting(project)
        start = datetime.now(UTC)
        for seconds in (11, 15, 31, 100, 1000):
            alerting.tick(start + timedelta(seconds=seconds))
    assert len(hook.posts) == 3  # the run's attempt, then after 10 s and 20 s; then no more
    (delivery,) = incidents(project)[0]["deliveries"]
    assert delivery["status"] == "failed" and delivery["attempts"] == 3
    assert delivery["last_error"] == "the receiver answered HTTP 500"


def _finished(name: str, run_id: str, status: str, stage: str = "silver") -> NodeFinished:
    record = RunRecord(name, run_id)
    record.finish(status, "boom" if status == "failed" else None)  # type: ignore[arg-type]
    record.stage = stage
    return NodeFinished(name, "pipeline", record)


def test_rate_limit_drops_what_is_over_it(tmp_path: Path) -> None:
    with Webhook() as hook:
        root = make(tmp_path / "p", channels=[hook.url], alerts={"rate_limit_per_hour": 3})
        alerting = Alerting(load_project(root))
        for i in range(3):  # three failures, each resolved: six alerts
            alerting(_finished("events", f"f{i}", "failed"))
            alerting(_finished("events", f"s{i}", "success"))
        hook.wait(3)
    assert len(hook.posts) == 3
    statuses = [d["status"] for i in incidents(load_project(root)) for d in i["deliveries"]]
    assert sorted(statuses) == ["dropped"] * 3 + ["sent"] * 3
    out = subprocess.run(
        [sys.executable, "-m", "weir.cli", "alerts", "--project", str(root)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "3 sent, 0 queued, 0 failed, 3 dropped (rate limit)" in out


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def test_runtime_sla_warns_at_80_percent_and_breaches_at_100_while_running(
    tmp_path: Path,
) -> None:
    with Webhook() as hook:
        root = make(tmp_path / "p", channels=[hook.url], sla_minutes=10, tier=1)
        t0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
        clock = Clock(t0)
        alerting = Alerting(load_project(root), clock=clock)
        alerting(NodeStarted("events", "pipeline", "r1"))
        alerting(NodeStage("events", "pipeline", "r1", "transform"))
        alerting.tick(t0 + timedelta(minutes=7, seconds=59))  # 79.8 %: nothing
        assert incidents(alerting.project) == []
        alerting.tick(t0 + timedelta(minutes=8))
        (warning,) = hook.wait(1)
        assert (warning["kind"], warning["severity"], warning["stage"]) == (
            "sla_warning",
            "P3",
            "transform",
        )
        assert "events has run 8.0 min, 80% of its runtime SLA of 10 min" in warning["text"]
        alerting.tick(t0 + timedelta(minutes=9))  # the same warning goes on: silent
        alerting.tick(t0 + timedelta(minutes=10))
        breach = hook.wait(2)[1]
        assert (breach["kind"], breach["severity"]) == ("sla_breach", "P1")
        assert "past its runtime SLA of 10 min (stage transform)" in breach["text"]
        alerting.tick(t0 + timedelta(minutes=30))
        clock.now = t0 + timedelta(minutes=31)
        alerting(_finished("events", "r1", "success"))
        assert len(hook.posts) == 2  # the breach stays open: the run ended past the SLA
        found = {i["kind"]: i for i in incidents(alerting.project)}
        assert found["sla_breach"]["status"] == "open"
        assert found["sla_warning"]["status"] == "resolved"  # made way for the breach
        assert found["sla_warning"]["resolution"] == "escalated to sla_breach"

        clock.now = t0 + timedelta(hours=1)  # the next run finishes in time
        alerting(NodeStarted("events", "pipeline", "r2"))
        clock.now += timedelta(minutes=5)
        alerting(_finished("events", "r2", "success"))
        resolved = hook.wait(3)[2]
    assert (resolved["event"], resolved["kind"]) == ("resolved", "sla_breach")
    assert len(hook.posts) == 3


def test_a_warning_resolves_when_its_run_finishes_in_time(tmp_path: Path) -> None:
    with Webhook() as hook:
        root = make(tmp_path / "p", channels=[hook.url], sla_minutes=10)
        t0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)
        clock = Clock(t0)
        alerting = Alerting(load_project(root), clock=clock)
        alerting(NodeStarted("events", "pipeline", "r1"))
        alerting.tick(t0 + timedelta(minutes=9))
        clock.now = t0 + timedelta(minutes=9, seconds=30)
        alerting(_finished("events", "r1", "success"))
        warning, resolved = hook.wait(2)
    assert (warning["event"], warning["kind"]) == ("opened", "sla_warning")
    assert (resolved["event"], resolved["kind"]) == ("resolved", "sla_warning")
    assert len(hook.posts) == 2


def test_a_run_that_ended_past_its_sla_unwatched_is_a_breach(tmp_path: Path) -> None:
    root = make(tmp_path / "p", channels=["file:alerts.jsonl"], sla_minutes=1)
    event = _finished("events", "r1", "success")
    event.record.duration_seconds = 75.0
    Alerting(load_project(root))(event)  # no NodeStarted heard: the record's duration counts
    (incident,) = incidents(load_project(root))
    assert incident["kind"] == "sla_breach" and "events ran 1.2 min" in incident["message"]

    other = make(tmp_path / "q", channels=["file:alerts.jsonl"], sla_minutes=1)
    failed = _finished("events", "r2", "failed")
    failed.record.duration_seconds = 75.0
    Alerting(load_project(other))(failed)
    (incident,) = incidents(load_project(other))  # a failed run: the failure is the alert
    assert incident["kind"] == "failure"


def test_runtime_sla_of_a_real_slow_run_is_watched_while_it_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEIR_PAUSE", "silver.before_commit:3")
    with Webhook() as hook:
        root = make(tmp_path / "p", channels=[hook.url], sla_minutes=1)
        source(root)
        project = load_project(root)
        t0 = datetime.now(UTC)
        clock = Clock(t0)
        alerting = Alerting(project, clock=clock)
        node = dag.graph(project)["events"]
        records: list[RunRecord] = []
        heard: list[Any] = []
        worker = threading.Thread(
            target=lambda: records.append(
                api.runner(project, node).execute([alerting, heard.append])
            )
        )
        worker.start()
        while not any(isinstance(e, NodeStage) and e.stage == "silver" for e in heard):
            assert worker.is_alive()
            threading.Event().wait(0.02)
        alerting.tick(t0 + timedelta(seconds=50))  # paused before its silver commit
        warning = hook.wait(1)[0]
        clock.now = t0 + timedelta(seconds=55)
        worker.join(30)
    assert records[0].status == "success"
    assert warning["kind"] == "sla_warning" and warning["stage"] == "silver"
    resolved = hook.wait(2)[1]
    assert (resolved["event"], resolved["kind"]) == ("resolved", "sla_warning")


def test_stale_data_alerts_without_a_failure_and_resolves_after_a_fresh_run(
    tmp_path: Path,
) -> None:
    with Webhook() as hook:
        root = make(tmp_path / "p", channels=[hook.url], tier=1)
        project = load_project(root)
        old = datetime.now(UTC) - timedelta(hours=30)
        seeded = RunRecord("events", "seeded", started_at=old.isoformat())
        seeded.finish("success")
        seeded.completed_at, seeded.rows_extracted = old.isoformat(), 5
        StateStore(root / ".weir" / "state.db").save(seeded)
        alerting = Alerting(project)
        alerting.tick(datetime.now(UTC))
        (stale,) = hook.wait(1)
        assert (stale["kind"], stale["severity"]) == ("stale", "P1")
        assert "events: data is 30.0 h old" in stale["text"]
        assert "freshness SLA of 24 h" in stale["text"]
        alerting.tick(datetime.now(UTC) + timedelta(minutes=1))  # still stale: silent
        assert len(hook.posts) == 1
        source(root)
        assert run(root).status == "success"
        alerting.tick(datetime.now(UTC))
        resolved = hook.wait(2)[1]
    assert (resolved["event"], resolved["kind"]) == ("resolved", "stale")
    assert resolved["text"].startswith("[P1] resolved: events has fresh data again")


def test_secrets_never_reach_payloads_incidents_the_store_or_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token = "tok3n-s3cr3t-value-81f2"
    monkeypatch.setenv("HOOK_TOKEN", token)
    dead = free_port()
    with Webhook() as hook:
        alerts = {
            "channels": {
                "hook": {"kind": "webhook", "url": f"{hook.url}/${{env:HOOK_TOKEN}}"},
                "dead": {"kind": "slack", "url": f"http://127.0.0.1:{dead}/${{env:HOOK_TOKEN}}"},
            }
        }
        root = make(tmp_path / "p", alerts=alerts, channels=["#hook", "#dead"])
        source(root, bad=token)  # the secret is in the error message too
        with caplog.at_level(logging.DEBUG):
            assert run(root).status == "failed"
            (post,) = hook.wait(1)
            Alerting(load_project(root)).tick(datetime.now(UTC) + timedelta(hours=1))
    assert "'***'" in post["error"]
    found = json.dumps(incidents(load_project(root)))
    assert "could not connect" in found  # the dead channel's error is there, without its URL
    places = {
        "payload": hook.raw[0],
        "incidents": found,
        "store": (root / ".weir" / "state.db").read_bytes().decode("utf-8", "replace"),
        "logs": caplog.text,
        "runs.jsonl": (root / ".weir" / "runs.jsonl").read_text(),
    }
    for place, text in places.items():
        assert token not in text, place
        assert f"127.0.0.1:{dead}" not in text, place


def test_weir_alerts_json(tmp_path: Path) -> None:
    root = make(tmp_path / "p", channels=["file:alerts.jsonl"])
    source(root, bad="zz")
    run(root)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "weir.cli", "alerts", "--project", str(root), *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    done = cli("--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["ok"] is True and data["deliveries"] == {"sent": 1}
    (incident,) = data["incidents"]
    assert (incident["node"], incident["kind"], incident["status"]) == ("events", "failure", "open")
    assert incident["deliveries"][0]["channel"] == "file:alerts.jsonl"
    text = cli("--open").stdout
    assert "P2 open" in text and "events failure: events failed at stage extract" in text
    assert "opened   → file:alerts.jsonl: sent" in text
    source(root)
    run(root)
    assert cli("--open").stdout.strip() == "no open incidents"
    assert json.loads(cli("--json", "--open").stdout)["incidents"] == []


def test_projects_without_channels_have_no_alerting_observer(tmp_path: Path) -> None:
    plain = load_project(make(tmp_path / "p"))
    assert not any(isinstance(o, Alerting) for o in observers_for(plain))
    alerted = load_project(make(tmp_path / "q", defaults=["file:alerts.jsonl"]))
    assert any(isinstance(o, Alerting) for o in observers_for(alerted))
    off = load_project(make(tmp_path / "r", defaults=["file:a.jsonl"], channels=[]))
    assert not any(isinstance(o, Alerting) for o in observers_for(off))  # the pipeline's []


def test_severity_defaults_and_overrides(tmp_path: Path) -> None:
    assert [DEFAULTS["failure"][t] for t in (1, 2, 3)] == ["P1", "P2", "P3"]
    assert {DEFAULTS["sla_warning"][t] for t in (1, 2, 3)} == {"P3"}
    config = Alerts.model_validate({"severity": {"failure": {"1": "P0"}, "stale": "P2"}})
    assert severity(config, "failure", 1) == "P0" and severity(config, "failure", 2) == "P2"
    assert severity(config, "stale", 1) == "P2" and severity(config, "sla_breach", 1) == "P1"

    with Webhook() as urgent, Webhook() as everything:
        alerts = {
            "severity": {"failure": {"1": "P0"}},
            "channels": {
                "pager": {"kind": "webhook", "url": urgent.url, "min_severity": "P1"},
                "log": {"kind": "webhook", "url": everything.url},
            },
        }
        channels = ["#pager", "#log"]
        root = make(tmp_path / "p", alerts=alerts, channels=channels, tier=1, sla_minutes=5)
        alerting = Alerting(load_project(root))
        alerting(_finished("events", "r1", "failed"))
        assert urgent.wait(1)[0]["severity"] == "P0"
        alerting(NodeStarted("events", "pipeline", "r2"))  # a P3 warning: not for the pager
        alerting.tick(datetime.now(UTC) + timedelta(minutes=4, seconds=30))
        everything.wait(2)
    assert len(urgent.posts) == 1


def test_two_observers_hearing_one_run_alert_once(tmp_path: Path) -> None:
    with Webhook() as hook:
        project = load_project(make(tmp_path / "p", channels=[hook.url]))
        event = _finished("events", "r1", "failed")
        for alerting in (Alerting(project), Alerting(project)):  # weir serve's and the run's
            alerting(event)
        hook.wait(1)
    (incident,) = incidents(project)
    assert incident["occurrences"] == 1 and len(hook.posts) == 1


def test_alerting_never_fails_a_run(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = make(tmp_path / "p", channels=["file:alerts.jsonl"])
    project = load_project(root)
    alerting = Alerting(project)
    (root / ".weir" / "state.db").unlink()
    (root / ".weir" / "state.db").mkdir()  # the store cannot be opened now
    with caplog.at_level(logging.WARNING, logger="weir.alerts"):
        alerting(_finished("events", "r1", "failed"))
        alerting.tick(datetime.now(UTC))
    assert "alerting could not handle NodeFinished" in caplog.text


def test_channel_config_errors_say_what_is_missing(tmp_path: Path) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"kind": "email", "host": "smtp.example"}, "an email channel needs 'from'"),
        ({"kind": "slack"}, "a slack channel needs 'url'"),
        ({"kind": "webhook", "url": "ftp://x"}, "url must be an http(s) URL"),
        ({"kind": "pager", "url": "https://x"}, "'pager' is not one of"),
    ]
    for i, (channel, message) in enumerate(cases):
        root = make(tmp_path / str(i), alerts={"channels": {"c": channel}})
        with pytest.raises(ConfigError, match=r"weir\.yml:\d+: alerts\.channels\.c") as err:
            load_project(root)
        assert message in str(err.value), str(err.value)
    severities = make(
        tmp_path / "sev", alerts={"severity": {"failure": {"4": "P0"}, "stael": "P1"}}
    )
    with pytest.raises(ConfigError) as raised:
        load_project(severities)
    text = str(raised.value)
    assert "alerts.severity.failure.4: '4' is not one of '1', '2', '3'" in text
    assert "alerts.severity.stael: 'stael' is not one of" in text and "did you mean 'stale'" in text
    assert "is not one of 'P0'" not in text  # only the form the value has is reported


def test_concurrent_ticks_send_each_queued_alert_once(tmp_path: Path) -> None:
    port = free_port()
    root = make(tmp_path / "p", channels=[f"http://127.0.0.1:{port}/hook"])
    project = load_project(root)
    alerting = Alerting(project)
    alerting(_finished("events", "f1", "failed"))  # tried once: nothing listens
    alerting(_finished("events", "s1", "success"))  # waits: the channel is down
    queued = [d["status"] for d in incidents(project)[0]["deliveries"]]
    assert queued == ["queued", "queued"]
    later = datetime.now(UTC) + timedelta(hours=1)
    with Webhook(port) as hook:
        ticks = [threading.Thread(target=Alerting(project).tick, args=(later,)) for _ in range(4)]
        for t in ticks:
            t.start()
        for t in ticks:
            t.join()
        alerting.tick(later)  # "resolved" waits while "opened" is queued: maybe till now
        hook.wait(2)
    assert [p["event"] for p in hook.posts] == ["opened", "resolved"]
    assert [d["status"] for d in incidents(project)[0]["deliveries"]] == ["sent", "sent"]
