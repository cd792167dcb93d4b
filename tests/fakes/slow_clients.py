"""A slow-headers client flood ("slowloris"), run as its own process by the limits test.

``python -m tests.fakes.slow_clients PORT COUNT SECONDS`` keeps COUNT connections open
to 127.0.0.1:PORT for SECONDS, each sending a request line and then one header byte
every few seconds, never finishing its headers; a connection the server closes is
replaced (at most ``REOPEN_PER_S`` a second, as a single attacking host would manage on
a shared 2-core machine). Prints one JSON line of counts when done.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import selectors
import socket
import sys
import time

TRICKLE_EVERY = 3.0
REOPEN_PER_S = 200


def main(port: int, count: int, seconds: float) -> dict[str, int]:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    sel = selectors.DefaultSelector()
    next_send: dict[socket.socket, float] = {}
    stats = {"opened": 0, "closed_by_server": 0, "refused": 0, "max_open": 0}

    def open_one() -> None:
        s = socket.socket()
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        except OSError:
            stats["refused"] += 1
            s.close()
            return
        sel.register(s, selectors.EVENT_READ)
        next_send[s] = time.monotonic()
        stats["opened"] += 1

    started: set[socket.socket] = set()

    def drop(s: socket.socket) -> None:
        sel.unregister(s)
        next_send.pop(s, None)
        started.discard(s)
        s.close()

    end = time.monotonic() + seconds
    budget = float(count)  # all of them at once to begin with, then re-opened smoothly
    last = time.monotonic()
    while (now := time.monotonic()) < end:
        budget = max(budget, 0) + (now - last) * REOPEN_PER_S
        if len(next_send) >= count:
            budget = min(budget, REOPEN_PER_S / 10)
        last = now
        while len(next_send) < count and budget >= 1:
            open_one()
            budget -= 1
        stats["max_open"] = max(stats["max_open"], len(next_send))
        for s, due in list(next_send.items()):
            if due <= now:
                payload = b"X" if s in started else b"GET /health HTTP/1.1\r\nHost: x\r\n"
                try:
                    s.send(payload)
                    started.add(s)
                    next_send[s] = now + TRICKLE_EVERY
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError as exc:
                    if exc.errno != errno.ENOTCONN:  # still connecting: try again later
                        stats["closed_by_server"] += 1
                        drop(s)
        for key, _ in sel.select(timeout=0.05):
            s = key.fileobj  # type: ignore[assignment]
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                stats["closed_by_server"] += 1
                drop(s)
    for s in list(next_send):
        with contextlib.suppress(OSError):
            drop(s)
    return stats


if __name__ == "__main__":
    os.nice(19)  # the attacker is another machine: on a shared 2-core box it yields first
    port, count, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(main(port, count, seconds)))
