"""Real alert receivers on 127.0.0.1, for the alert tests: a webhook endpoint that records
every POST, and an SMTP server (aiosmtpd) that records every mail.

    with Webhook() as hook:                 # a free port, answering 200
        ... alert_channels: [hook.url]
        assert hook.wait(1)[0]["severity"] == "P2"

A ``Webhook(port=…)`` given a port that was free (:func:`free_port`) plays a receiver that
comes up later; ``status`` makes it answer an error.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


def free_port() -> int:
    """A TCP port nothing listens on (yet) on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Webhook:
    def __init__(self, port: int = 0, *, status: int = 200, path: str = "/hook"):
        self.status = status
        self.path = path
        self.posts: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.raw: list[str] = []
        self._got = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with owner._got:
                    owner.raw.append(body.decode())
                    owner.posts.append(json.loads(body))
                    owner.headers.append(dict(self.headers))
                    owner._got.notify_all()
                self.send_response(owner.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = int(self.server.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}{path}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Webhook:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()

    def wait(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The posts, once there are at least ``n`` (fails after ``timeout`` seconds)."""
        with self._got:
            ok = self._got.wait_for(lambda: len(self.posts) >= n, timeout)
        assert ok, f"expected {n} posts, got {len(self.posts)}: {self.posts}"
        return list(self.posts)


class Mailbox:
    """An SMTP server (aiosmtpd) on a free port of 127.0.0.1; ``mails`` are the messages.
    ``login``: the user and password it requires (AUTH offered without TLS, for tests)."""

    def __init__(self, login: tuple[str, str] | None = None) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.mails: list[Message] = []
        self.logins: list[str] = []
        owner = self

        def authenticate(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> AuthResult:
            ok = isinstance(data, LoginPassword) and login is not None
            ok = ok and (data.login.decode(), data.password.decode()) == login
            if ok:
                owner.logins.append(data.login.decode())
            return AuthResult(success=ok)

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                owner.mails.append(message_from_bytes(envelope.content))
                return "250 OK"

        self.port = free_port()
        auth: dict[str, Any] = {}
        if login is not None:
            auth = {"authenticator": authenticate, "auth_require_tls": False, "auth_required": True}
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port, **auth)

    def __enter__(self) -> Mailbox:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def wait(self, n: int, timeout: float = 10.0) -> list[Message]:
        deadline = time.monotonic() + timeout
        while len(self.mails) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.mails) >= n, f"expected {n} mails, got {len(self.mails)}"
        return list(self.mails)
