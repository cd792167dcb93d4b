"""Issue 14, "Lock the doors": a live worker's HTTP surface, tried as an outsider would.

Each test starts ``nudge worker`` (this checkout) against the real Tansu broker and
talks to it over real sockets. The numbers in the docstrings are the issue's findings.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import socket
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from streams.server import FD_HEADROOM
from tests.conftest import ROOT, wait_for
from tests.integration.test_pipeline import hot_lead_events, produce

pytestmark = pytest.mark.slow

TOKENS = "tok-old-0123456789,tok-new-9876543210"
NDJSON = {"Content-Type": "application/x-ndjson"}


def call(
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    method: str | None = None,
    timeout: float = 10,
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) whatever the status."""
    req = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def error_of(answer: bytes) -> str:
    """The ``error`` reason of a JSON refusal (fails the test if it is not one)."""
    reason = json.loads(answer)["error"]
    assert isinstance(reason, str) and reason
    return reason


def listening_addresses(port: int) -> set[str]:
    """Local addresses of the LISTEN sockets on ``port``, from /proc/net/tcp{,6}."""
    found = set()
    for name in ("tcp", "tcp6"):
        path = Path("/proc/net") / name
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            addr, hexport = local.split(":")
            if state != "0A" or int(hexport, 16) != port:
                continue
            raw = bytes.fromhex(addr)
            if len(raw) == 4:
                found.add(socket.inet_ntop(socket.AF_INET, raw[::-1]))
            else:
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                found.add(socket.inet_ntop(socket.AF_INET6, words))
    return found


def test_only_nudge_routes_on_loopback(start_worker: Any) -> None:
    """Findings 1 and 2: Faust's table and router views are gone (404, JSON), and the
    server listens on 127.0.0.1 only, with no token needed there."""
    worker = start_worker()
    status, _ = worker.post_events(hot_lead_events(2, "Acme Lease"))
    assert status == 200
    wait_for(lambda: worker.stats().get("events.accepted", 0) >= 2)
    for path in ("/table/leads/", "/table/leads/L-1/", "/table/guards/rep-1/", "/router/", "/"):
        status, _, answer = call(worker.url + path)
        assert status == 404, (path, status, answer[:200])
        assert "no such path" in error_of(answer)
        assert b"@" not in answer
    assert listening_addresses(worker.web_port) == {"127.0.0.1"}
    status, _, answer = call(
        worker.url + "/events", b"{}", {"Content-Type": "application/json"}, "PUT"
    )
    assert status == 405 and error_of(answer)


def test_non_loopback_bind_needs_a_token(tmp_path: Path) -> None:
    """Finding 2: a worker told to bind 0.0.0.0 without NUDGE_API_TOKEN refuses to start,
    and says which setting to set."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NUDGE_DATA_DIR": str(tmp_path / "var"),
        "NUDGE_WEB_HOST": "0.0.0.0",
        "KAFKA_URL": "kafka://127.0.0.1:1",
    }
    env.pop("NUDGE_API_TOKEN", None)
    done = subprocess.run(
        [sys.executable, "-m", "cli", "worker"], env=env, capture_output=True, timeout=60
    )
    assert done.returncode == 2
    assert b"NUDGE_API_TOKEN" in done.stderr


def test_token_guards_ingest_and_reads(start_worker: Any, tmp_path: Path) -> None:
    """Finding 5: with NUDGE_API_TOKEN set, /events and /stats need a bearer token (either
    of two, for rotation); /health, /ready and /openapi.json stay open; /metrics is open
    to a loopback peer. `nudge events send` brings the token and splits a 2 MB file
    into bodies under the limit."""
    worker = start_worker(NUDGE_API_TOKEN=TOKENS)
    body = json.dumps(hot_lead_events(1, "Token Corp")[0]).encode()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "tok-old-0123456789"},
                    {"Authorization": "Basic dG9rLW9sZC0wMTIzNDU2Nzg5"}):  # fmt: skip
        status, got, answer = call(worker.url + "/events", body, {**NDJSON, **headers})
        assert status == 401, (headers, status)
        assert "bearer token" in error_of(answer)
        assert got.get("WWW-Authenticate", "").startswith("Bearer")
        assert call(worker.url + "/stats", headers=headers)[0] == 401
    for token in TOKENS.split(","):
        auth = {"Authorization": f"Bearer {token}"}
        assert call(worker.url + "/events", body, {**NDJSON, **auth})[0] == 200
        assert call(worker.url + "/stats", headers=auth)[0] == 200
    for path in ("/health", "/ready", "/openapi.json", "/metrics"):
        assert call(worker.url + path)[0] == 200, path
    text = call(worker.url + "/metrics")[2].decode()
    assert 'nudge_http_refused_total{reason="auth"} 8.0' in text

    # finding 8: a 2 MB file (over the 1 MiB body limit) goes through `nudge events send`
    path = tmp_path / "big.ndjson"
    lines = [
        json.dumps({
            "event_id": f"big-{i}", "type": "page.viewed", "occurred_at": "2026-03-02T10:00:00Z",
            "source": "web", "visitor_id": f"v-{i % 50}", "path": "/docs/" + "x" * 300,
        })
        for i in range(6000)
    ]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    assert path.stat().st_size > 2_000_000
    env = {k: v for k, v in worker.env.items() if k != "KAFKA_URL"}
    done = subprocess.run(
        [sys.executable, "-m", "cli", "events", "send", str(path)],
        env=env, capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    assert b"posted 6000 events" in done.stderr
    wait_for(lambda: worker.stats().get("events.in", 0) >= 6001, timeout=60)


HOSTILE: list[tuple[str, bytes, dict[str, str], int, str]] = [
    # (what, body, headers, status, words of the reason)
    ("gzip header, plain body", b'{"a": 1}', {**NDJSON, "Content-Encoding": "gzip"}, 400,
     "not valid gzip"),
    ("truncated gzip", gzip.compress(b'{"a": 1}')[:-6], {**NDJSON, "Content-Encoding": "gzip"},
     400, "not valid gzip"),
    ("brotli", b"x", {**NDJSON, "Content-Encoding": "br"}, 415, "Content-Encoding 'br'"),
    ("compress", b"x", {**NDJSON, "Content-Encoding": "compress"}, 415, "Content-Encoding"),
    ("deflate", b"x", {**NDJSON, "Content-Encoding": "deflate"}, 415, "use gzip"),
    ("text/plain", b"{}", {"Content-Type": "text/plain"}, 415, "Content-Type text/plain"),
    ("form", b"{}", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "Content-Type"),
    ("empty", b"", NDJSON, 400, "empty"),
    ("blank", b"  \n ", NDJSON, 400, "empty"),
    ("NaN", b'[{"type": "lead.created", "x": NaN}]', NDJSON, 400, "NaN"),
    ("Infinity", b'[{"a": Infinity}]', NDJSON, 400, "Infinity"),
    ("1e999", b'[{"a": 1e999}]', NDJSON, 400, "out of range"),
    ("duplicate keys", b'[{"a": 1, "a": 2}]', NDJSON, 400, "duplicate key"),
    ("lone surrogate", b'[{"a": "\\ud800"}]', NDJSON, 400, "surrogate"),
    ("too large", b"[" + b" " * (1024 * 1024 + 10) + b"]", NDJSON, 413, "larger than"),
    ("gzip bomb", gzip.compress(b" " * (8 * 1024 * 1024)), {**NDJSON, "Content-Encoding": "gzip"},
     413, "after decoding"),
]  # fmt: skip


def test_hostile_bodies_are_4xx_counted_and_dead_lettered(
    start_worker: Any, broker: Any, tmp_path: Path
) -> None:
    """Findings 4, 6 and 7: each hostile body gets a 4xx JSON reason (never a 5xx or a
    traceback); the rejected events among them are counted in /metrics by source and
    reason class, logged once each, and listed by `nudge dead list` with their reason.
    A gzip-encoded body within the limit is decoded and accepted."""
    worker = start_worker(NUDGE_API_TOKEN=TOKENS)
    auth = worker.headers
    for what, body, headers, want, words in HOSTILE:
        status, got, answer = call(worker.url + "/events", body, {**headers, **auth})
        assert status == want, (what, status, answer[:300])
        assert got["Content-Type"].startswith("application/json"), what
        assert words in error_of(answer), (what, answer[:300])
    # one event per line: the bad line is rejected by field, the good one goes through
    good, bad = hot_lead_events(2, "Gzip Partners")[0], '{"type": "lead.created", "x": NaN}'
    body = gzip.compress((json.dumps(good) + "\n" + bad).encode())
    status, _, answer = call(
        worker.url + "/events", body, {**NDJSON, "Content-Encoding": "gzip", **auth}
    )
    result = json.loads(answer)
    assert status == 207 and result["accepted"] == 1 and result["rejected"] == 1
    assert "NaN" in result["results"][1]["reason"]

    # a provider's webhook (Segment, with no secret: the token) that is not an event
    status, _, answer = call(
        worker.url + "/webhooks/segment", b'{"batch": 5}',
        {"Content-Type": "application/json", **auth},
    )  # fmt: skip
    assert status == 400 and error_of(answer)
    # the same classes for events produced straight to Kafka
    bad_kafka = [b'{"type": "page.viewed", "n": NaN}', b'{"type": "page.viewed"}']
    asyncio.run(produce(broker.bootstrap, "web.events", bad_kafka))
    wait_for(
        lambda: (
            'nudge_events_rejected_total{reason="schema",source="kafka"} 1.0'
            in call(worker.url + "/metrics")[2].decode()
        ),
        timeout=30,
    )
    text = call(worker.url + "/metrics")[2].decode()
    assert 'nudge_events_rejected_total{reason="json",source="kafka"} 1.0' in text
    # empty x2 ("body"), NaN/Infinity/1e999/duplicate/surrogate x5 + the gzip line ("json")
    assert 'nudge_events_rejected_total{reason="body",source="http"} 2.0' in text
    assert 'nudge_events_rejected_total{reason="json",source="http"} 6.0' in text
    assert 'nudge_events_rejected_total{reason="schema",source="http"} 1.0' in text
    assert 'nudge_http_refused_total{reason="content_type"} 2.0' in text
    assert 'nudge_http_refused_total{reason="encoding"} 5.0' in text
    assert 'nudge_http_refused_total{reason="too_large"} 2.0' in text
    logged = [json.loads(line) for line in worker.output().splitlines() if line.startswith("{")]
    rejected = [r for r in logged if r.get("event") == "event rejected"]
    assert [r["source"] for r in rejected].count("http") == 9
    assert [r["source"] for r in rejected].count("kafka") == 2
    assert "Traceback" not in worker.output()

    env = {**worker.env, "KAFKA_URL": broker.url}
    listed = wait_for(
        lambda: (
            out
            if (
                out := subprocess.run(
                    [sys.executable, "-m", "cli", "dead", "list", "--json"],
                    env=env, capture_output=True, timeout=60,
                ).stdout.decode()
            ).count("\n") >= 11
            else None
        ),
        timeout=30,
    )  # fmt: skip
    records = [json.loads(line) for line in listed.splitlines()]
    assert [r["source"] for r in records].count("http") == 9
    assert {r.get("route") for r in records} >= {"/webhooks/segment"}
    assert {r.get("topic") for r in records if r["source"] == "kafka"} == {"web.events"}
    assert sum("NaN" in r["reason"] for r in records) == 3
    assert sum("duplicate key" in r["reason"] for r in records) == 1


def test_aborted_requests_logged_once(start_worker: Any) -> None:
    """Finding 4: a client that goes away mid-body, or sends a header aiohttp cannot
    parse, costs one info line, no traceback."""
    worker = start_worker()
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", worker.web_port)) as s:
            s.sendall(
                b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                b"Content-Length: 5000\r\n\r\n" + b'{"event_id": "e'
            )
            time.sleep(0.2)
    with socket.create_connection(("127.0.0.1", worker.web_port)) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Bad: \x00\r\n\r\n")
        s.settimeout(5)
        assert s.recv(1000).split(b" ")[1] == b"400"
    assert call(worker.url + "/health")[0] == 200
    wait_for(lambda: worker.output().count("request aborted by the client") >= 3)
    wait_for(lambda: "malformed request refused" in worker.output())
    time.sleep(1)
    out = worker.output()
    lines = [json.loads(x) for x in out.splitlines() if "request aborted" in x]
    assert len(lines) == 3 and all(x["level"] == "info" for x in lines)
    assert "Traceback" not in out and "Error handling request" not in out


def test_limits_rate_header_and_body_timeouts(start_worker: Any) -> None:
    """Finding 3: a client over the request rate gets 429 with Retry-After (probes are
    never limited); a connection that does not finish its headers in time is closed; a
    body that does not arrive in time gets 408."""
    worker = start_worker(
        NUDGE_WEB_RATE_LIMIT="5", NUDGE_WEB_HEADER_TIMEOUT="1", NUDGE_WEB_BODY_TIMEOUT="1"
    )
    answers = [call(worker.url + "/stats") for _ in range(30)]
    limited = [a for a in answers if a[0] == 429]
    assert limited and all(a[0] in (200, 429) for a in answers)
    assert int(limited[0][1]["Retry-After"]) >= 1 and "requests per second" in error_of(
        limited[0][2]
    )
    assert all(call(worker.url + "/health")[0] == 200 for _ in range(30))

    with socket.create_connection(("127.0.0.1", worker.web_port)) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        s.settimeout(5)
        started = time.monotonic()
        assert s.recv(1000) == b""  # closed by the server
        assert time.monotonic() - started < 4

    time.sleep(2)  # the rate budget refills
    with socket.create_connection(("127.0.0.1", worker.web_port)) as s:
        s.sendall(
            b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        s.settimeout(5)
        answer = s.recv(4000)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"took longer than" in answer


def readme_curl_example() -> str:
    """The README's shell lines that split a file and post it with curl."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("split -C"))
    end = next(i for i in range(start, len(lines)) if lines[i].rstrip().endswith("done"))
    return "\n".join(lines[start : end + 1])


def test_data_files_private_and_lag_returns_to_zero(start_worker: Any, tmp_path: Path) -> None:
    """Finding 8: the data dir is 0700, the SQLite files and the dev token 0600; the
    consumer-lag gauge is 0 on every partition once the worker is idle; the README's
    curl example posts a 2 MB file without a 413."""
    worker = start_worker()
    events = [
        json.dumps({
            "event_id": f"curl-{i}", "type": "page.viewed", "occurred_at": "2026-03-02T10:00:00Z",
            "source": "web", "visitor_id": f"v-{i % 40}", "path": "/blog/" + "y" * 300,
        })
        for i in range(5500)
    ]  # fmt: skip
    (tmp_path / "events.ndjson").write_text("\n".join(events) + "\n")
    assert (tmp_path / "events.ndjson").stat().st_size > 2_000_000
    script = readme_curl_example().replace("localhost:6066", f"127.0.0.1:{worker.web_port}")
    done = subprocess.run(
        ["bash", "-c", "set -e\n" + script], cwd=tmp_path, capture_output=True, timeout=120,
        env={"PATH": os.environ["PATH"], "NUDGE_API_TOKEN": ""},
    )  # fmt: skip
    answers = [json.loads(a) for a in done.stdout.decode().replace("}{", "}\n{").splitlines()]
    assert done.returncode == 0 and len(answers) >= 3, done.stderr.decode()
    assert sum(a["accepted"] for a in answers) == 5500, answers[:1]
    status, _ = worker.post_events(hot_lead_events(4, "Lag Free"))
    assert status == 200
    wait_for(
        lambda: worker.stats().get("nudges.sent", 0) + worker.stats().get("events.accepted", 0) >= 4
    )
    assert stat.S_IMODE(worker.data_dir.stat().st_mode) == 0o700
    files = [*worker.data_dir.glob("nudge.db*"), worker.data_dir / "dev_twilio_token"]
    assert worker.data_dir / "nudge.db" in files
    for path in files:
        assert path.exists(), path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path

    def lags() -> dict[str, float]:
        text = call(worker.url + "/metrics")[2].decode()
        return {
            line.split(" ")[0]: float(line.split(" ")[1])
            for line in text.splitlines()
            if line.startswith("nudge_consumer_lag{")
        }

    wait_for(lambda: lags() and not any(lags().values()), timeout=30, message=lags)
    assert any('topic="lead.activity"' in k for k in lags())


def proc_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_health_answers_through_a_slow_connection_flood(start_worker: Any) -> None:
    """Finding 3: 2,000 connections that never finish their headers, held (and re-opened
    when closed) for 20 s by another process: /health on a fresh connection answers in
    under 1 s throughout; the worker holds at most its connection cap of sockets, logs
    no "Too many open files" and no traceback."""
    worker = start_worker(NUDGE_WEB_MAX_CONNECTIONS="1000")
    assert worker.process is not None
    fds_before = proc_fds(worker.process.pid)
    flood_started = time.monotonic()
    flood = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.slow_clients", str(worker.web_port), "2000", "20"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
    )
    try:
        time.sleep(3)  # let the flood fill the server's cap
        latencies: list[float] = []
        probe_times: list[float] = []
        max_fds = 0
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            started = time.monotonic()
            probe_times.append(started - flood_started)
            status, _, answer = call(worker.url + "/health", timeout=5)
            latencies.append(time.monotonic() - started)
            assert status == 200 and json.loads(answer) == {"status": "ok"}
            max_fds = max(max_fds, proc_fds(worker.process.pid))
            time.sleep(0.2)
        out, _ = flood.communicate(timeout=30)
    finally:
        if flood.poll() is None:
            flood.kill()
    counts = json.loads(out)
    assert counts["opened"] >= 2000 and counts["max_open"] >= 1000, counts
    assert counts["closed_by_server"] >= 1000, counts  # the cap and the header timeout cut them
    assert len(latencies) >= 40
    slow = [
        (round(t, 1), round(lat, 3))
        for t, lat in zip(probe_times, latencies, strict=True)
        if lat >= 1.0
    ]
    assert not slow, f"/health took >= 1 s at (s into the flood, s): {slow}; counts {counts}"
    # bounded by the cap plus the worker's own files (broker, SQLite, logs), never the
    # 20,000 the flood would take
    assert max_fds <= 1000 + FD_HEADROOM, (fds_before, max_fds)
    output = worker.output()
    assert "Too many open files" not in output and "Traceback" not in output
    assert 1 <= output.count("connection cap reached") <= 2  # a warning a minute, not a flood
    metrics = call(worker.url + "/metrics")[2].decode()
    capped = [x for x in metrics.splitlines() if 'reason="connection_cap"' in x and "_total" in x]
    assert capped and float(capped[0].split()[-1]) >= 1000, capped
    assert call(worker.url + "/health")[0] == 200
