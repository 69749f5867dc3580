"""A throwaway PostgreSQL cluster for the tests: initdb + pg_ctl in a temporary directory.

The binaries are the system's (``pg_config --bindir``, ``/usr/lib/postgresql/*/bin``, PATH),
else the ones the PyPI package ``pgserver`` ships in its wheel (a dev dependency, so
``make setup`` brings them on any machine). Only its binaries are used, never its Python API.

initdb refuses to run as root: as root, the server runs as the ``postgres`` user (created
when missing) in a data directory it owns; the tests themselves stay root and connect over
TCP on 127.0.0.1 with a password (``scram-sha-256``), so URLs with passwords are exercised.

The server has ``wal_level=logical`` (and replication slots and WAL senders) so that change
data capture can be tested against the same cluster. :class:`Cluster` starts once per test
session (tests/conftest.py: ``postgres``); :meth:`Cluster.database` makes a fresh database
per test from a template in milliseconds.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec
from pathlib import Path
from typing import Any

USER = "weir"
PASSWORD = "pw-Qx7v9LmT3s"
"""The test role's password: a literal here, given to weir only through ${env:…}."""
SERVICE_USER = "postgres"


def find_bindir() -> Path:
    """A directory holding initdb, pg_ctl and postgres; the system's first, then pgserver's."""
    candidates: list[str] = []
    if shutil.which("pg_config"):
        out = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True)
        candidates.append(out.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    spec = find_spec("pgserver")  # located, not imported: its import has side effects
    if spec is not None and spec.submodule_search_locations:
        candidates += [str(Path(p) / "pginstall" / "bin") for p in spec.submodule_search_locations]
    for candidate in candidates:
        if candidate and all((Path(candidate) / b).is_file() for b in ("initdb", "pg_ctl")):
            return Path(candidate)
    raise RuntimeError(
        "no PostgreSQL binaries: looked in "
        + ", ".join(c for c in candidates if c)
        + "; `make setup` installs pgserver (dev group), or `apt-get install postgresql`"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Cluster:
    bindir: Path
    root: Path
    port: int
    started_seconds: float = 0.0
    """initdb + start, measured."""
    _as_service: bool = field(default=False, repr=False)

    @property
    def data(self) -> Path:
        return self.root / "data"

    # ------------------------------------------------------------ lifetime
    @classmethod
    def start(cls) -> Cluster:
        began = time.monotonic()
        bindir = find_bindir()
        root = Path(tempfile.mkdtemp(prefix="weir-pg-"))
        cluster = cls(bindir=bindir, root=root, port=free_port(), _as_service=os.geteuid() == 0)
        try:
            cluster._initdb()
            cluster._pg_ctl(
                "start", "-w", "-t", "60", "-l", str(root / "server.log"), "-o", cluster._options()
            )
            cluster.started_seconds = time.monotonic() - began
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._pg_ctl("stop", "-m", "immediate", "-w", "-t", "30")
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def _initdb(self) -> None:
        if self._as_service:
            _ensure_service_user()
            entry = pwd.getpwnam(SERVICE_USER)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        pwfile = self.root / "pwfile"
        pwfile.write_text(PASSWORD + "\n")
        if self._as_service:
            os.chown(pwfile, pwd.getpwnam(SERVICE_USER).pw_uid, -1)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            USER,
            f"--pwfile={pwfile}",
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )

    def _options(self) -> str:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.root),
            "wal_level": "logical",
            "max_replication_slots": "10",
            "max_wal_senders": "10",
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "max_connections": "100",
            "shared_buffers": "128MB",
        }
        return " ".join(f"-c {k}={v}" for k, v in settings.items())

    def _pg_ctl(self, *args: str) -> None:
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), *args)

    def _run(self, *argv: str) -> None:
        command = ["runuser", "-u", SERVICE_USER, "--", *argv] if self._as_service else list(argv)
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=self.root)
        if done.returncode != 0:
            raise RuntimeError(
                f"{Path(argv[0]).name} failed ({done.returncode}): {done.stderr.strip()}\n"
                f"{done.stdout.strip()}\n{self.log()}"
            )

    # ------------------------------------------------------------ databases
    def url(self, database: str = "postgres", *, password: bool = True) -> str:
        secret = f":{PASSWORD}" if password else ""
        return f"postgresql://{USER}{secret}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres", *, autocommit: bool = True) -> Any:
        """A psycopg connection for setting up test data."""
        import psycopg

        return psycopg.connect(self.url(database), autocommit=autocommit)

    def database(self, name: str | None = None) -> str:
        """A fresh, empty database (from ``template0``'s copy, ``template1``); its name."""
        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with self.connect() as con:
            con.execute(f'CREATE DATABASE "{name}" TEMPLATE template1')
        return name

    def drop(self, name: str) -> None:
        with self.connect() as con:
            con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _ensure_service_user() -> None:
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                SERVICE_USER,
            ],
            check=True,
            capture_output=True,
        )


@contextlib.contextmanager
def running() -> Iterator[Cluster]:
    cluster = Cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
