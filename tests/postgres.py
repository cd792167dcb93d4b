"""A throw-away PostgreSQL server for tests: Debian's ``postgresql`` binaries, a temp dir.

``initdb`` makes a cluster in a temporary directory and ``postgres`` serves it on a
free loopback port (its socket in the same directory), with durability turned off
(``fsync=off``: a test database is thrown away). PostgreSQL refuses to run as root, so
when the tests run as root (CI) the server runs as the ``postgres`` system user the
Debian package creates, and the directory is handed to it. :meth:`PostgresServer.database`
creates a fresh database per test. ``PostgresServer(dir, host=..., clients=...)`` listens on
another local address instead and trusts connections from the ``clients`` network (tests
whose workers run in network namespaces of their own).
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import pwd
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from broker.processes import free_port


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries here (install Debian's ``postgresql``)."""


def bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    raise PostgresUnavailable("no initdb: apt-get install postgresql")


class PostgresServer:
    def __init__(
        self, directory: Path, host: str = "127.0.0.1", clients: str | None = None
    ) -> None:
        self.directory = directory
        self.host = host
        self.clients = clients
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.user = "nudge"
        self._counter = 0
        self._owner: tuple[int, int] | None = None
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            self._owner = (entry.pw_uid, entry.pw_gid)
        owner = self._owner

        def child() -> None:  # pragma: no cover - runs in the child
            if owner is not None:
                os.setgid(owner[1])
                os.setuid(owner[0])

        def child_dying_with_us() -> None:  # pragma: no cover - runs in the child
            child()
            # after setuid (a change of credentials clears it): if the test run dies, so
            # does the server (SIGQUIT: PostgreSQL's immediate shutdown)
            with contextlib.suppress(OSError):
                ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGQUIT)

        self._demote: Any = child
        self._demote_dying_with_us: Any = child_dying_with_us

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def start(self) -> PostgresServer:
        self._initdb()
        self._launch()
        return self

    def restart(self, pause: float = 0.0, sig: int = signal.SIGINT) -> None:
        """Stop the server (``SIGINT`` fast shutdown, ``SIGKILL`` a crash), wait ``pause``
        seconds, and start it again on the same directory and port."""
        self.stop(sig)
        time.sleep(pause)
        self._launch()

    def _initdb(self) -> None:
        binaries = bindir()
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._owner:
            os.chown(self.directory, *self._owner)
        result = subprocess.run(
            [
                str(binaries / "initdb"),
                "-D",
                str(self.data),
                "-U",
                self.user,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            ],
            capture_output=True,
            preexec_fn=self._demote,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout.decode()}{result.stderr.decode()}")
        if self.clients:  # initdb trusts loopback only
            with open(self.data / "pg_hba.conf", "a") as hba:
                hba.write(f"host all all {self.clients} trust\n")

    def _launch(self) -> None:
        binaries = bindir()
        log = open(self.directory / "postgres.log", "ab")  # noqa: SIM115
        if self._owner:
            os.chown(self.directory / "postgres.log", *self._owner)
        self.process = subprocess.Popen(
            [
                str(binaries / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-k",
                str(self.directory),
                "-c",
                f"listen_addresses={self.host}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "shared_buffers=32MB",
                "-c",
                "max_connections=100",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            # The kernel sends the parent-death signal when the *thread* that started the
            # child ends, not the process: a restart from a test's timer thread would be
            # shut down the moment that thread returns. Only the main thread sets it.
            preexec_fn=(
                self._demote_dying_with_us
                if threading.current_thread() is threading.main_thread()
                else self._demote
            ),
        )
        log.close()
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    "postgres exited:\n" + (self.directory / "postgres.log").read_text()[-2000:]
                )
            try:
                with psycopg.connect(self.url(), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"postgres not ready within {timeout} s")

    def database(self) -> str:
        """A new, empty database; its URL."""
        import psycopg

        self._counter += 1
        name = f"t{os.getpid()}_{self._counter}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self, sig: int = signal.SIGINT) -> None:
        """Stop (``SIGINT``: PostgreSQL's fast shutdown) or kill (``SIGKILL``) the server."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=30)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self.process = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
