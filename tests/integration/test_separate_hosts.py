"""Workers on separate hosts that share nothing but the Kafka cluster and PostgreSQL.

Each worker runs in a network namespace of its own (``tests/netns.py``: its own loopback
and interfaces, one veth to a private bridge) with its own data dir: no file in common,
the record in PostgreSQL (``NUDGE_DATABASE_URL``). The three-node Apache Kafka cluster,
PostgreSQL and the fake Twilio (the real twilio client) listen on the bridge's address,
the only way out of a namespace. What reached a rep is what the fake received. Without
root (no namespaces) the module is skipped, saying so.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests import netns
from tests.conftest import wait_for
from tests.fakes.threaded import served
from tests.fakes.twilio_server import FakeTwilio
from tests.integration.test_survive import (
    OUTBOX_SETTLE,
    REP_PHONES,
    company,
    lead_events,
    texts_about,
    twilio_env,
)
from tests.kafka import KafkaCluster
from tests.postgres import PostgresServer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.parametrize(
        "broker", [pytest.param("kafka", marks=pytest.mark.kafka)], indirect=True
    ),
]

TOKEN = "separate-hosts-token"


@pytest.fixture(scope="module")
def lan() -> Iterator[netns.PrivateNetwork]:
    """The private network, with hosts ``a`` and ``b``; deleted at the end of the module,
    whatever the tests did."""
    reason = netns.unavailable()
    if reason:
        pytest.skip(reason)
    with netns.PrivateNetwork() as net:
        net.host("a")
        net.host("b")
        yield net


@pytest.fixture(scope="module")
def kafka_cluster(
    lan: netns.PrivateNetwork, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The three Kafka nodes on the bridge's address (the ``broker`` fixture uses this one
    in this module), reachable from every namespace."""
    with KafkaCluster(tmp_path_factory.mktemp("kafka-lan"), host=lan.server) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def postgres(lan: netns.PrivateNetwork) -> Iterator[PostgresServer]:
    """PostgreSQL on the bridge's address, trusting the private network."""
    directory = Path(tempfile.mkdtemp(prefix="nudge-pg-"))
    try:
        with PostgresServer(directory, host=lan.server, clients=str(lan.subnet)) as server:
            yield server
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def twilio(lan: netns.PrivateNetwork) -> Iterator[FakeTwilio]:
    with served(FakeTwilio(), host=lan.server) as fake:
        yield fake


def net_namespace(pid: int) -> str:
    return os.readlink(f"/proc/{pid}/ns/net")


def pg_outbox(url: str) -> list[dict[str, Any]]:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            cur = conn.execute("SELECT nudge_id, lead_id, rep_id, state FROM outbox ORDER BY seq")
            names = [c.name for c in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    except psycopg.Error:
        return []  # not migrated yet, or the server is restarting


def run_two_hosts(
    start_worker: Any,
    twilio: FakeTwilio,
    postgres: Any,
    lan: netns.PrivateNetwork,
    tmp_path: Path,
    disrupt: Any,
    first: int,
) -> tuple[Any, Any]:
    """Two hosts share 20 hot leads; ``disrupt()`` runs while the second half flows.
    Checks every nudge settled once; returns the two workers."""
    url = postgres.database()
    env = twilio_env(twilio, NUDGE_DATABASE_URL=url, NUDGE_API_TOKEN=TOKEN)
    host_a, host_b = lan.hosts
    a = start_worker(
        host=host_a.address, wrap=host_a.wrap, **env, NUDGE_DATA_DIR=str(tmp_path / "host-a")
    )
    b = start_worker(
        host=host_b.address, wrap=host_b.wrap, **env, NUDGE_DATA_DIR=str(tmp_path / "host-b")
    )
    assert a.data_dir != b.data_dir
    spaces = {net_namespace(os.getpid()), net_namespace(a.process.pid)}
    spaces.add(net_namespace(b.process.pid))
    assert len(spaces) == 3, "the workers do not each have a network of their own"
    reps = list(REP_PHONES)
    leads = {n: reps[n % len(reps)] for n in range(first, first + 20)}
    numbers = sorted(leads)
    for n in numbers[:10]:
        status, body = b.post_events(lead_events(n, leads[n]))
        assert status == 200, body
    wait_for(lambda: len(twilio.messages) >= 3, timeout=90, message=lambda: pg_outbox(url))
    timer = threading.Timer(0.6, disrupt, args=(a, b))
    timer.start()
    for n in numbers[10:]:
        status, body = b.post_events(lead_events(n, leads[n]))
        assert status == 200, body
        time.sleep(0.15)
    timer.join()

    def settled() -> bool:
        rows = pg_outbox(url)
        return len(rows) == 20 and all(r["state"] == "sent" for r in rows)

    wait_for(settled, timeout=120, message=lambda: (pg_outbox(url), texts_about(twilio)))
    time.sleep(OUTBOX_SETTLE)
    final = {r["lead_id"]: r for r in pg_outbox(url)}
    counts = texts_about(twilio)
    assert sorted(final) == sorted(f"lead-{n}" for n in leads)
    assert all(r["state"] == "sent" for r in final.values()), final
    assert counts == {company(n): 1 for n in leads}, counts
    assert len(twilio.messages) == 20
    for n, rep in leads.items():
        assert final[f"lead-{n}"]["rep_id"] == rep
    assert not (a.data_dir / "nudge.db").exists() and not (b.data_dir / "nudge.db").exists()
    return a, b


@pytest.fixture
def two_hosts(
    start_worker: Any,
    twilio: FakeTwilio,
    postgres: PostgresServer,
    lan: netns.PrivateNetwork,
    tmp_path: Path,
) -> Callable[[Callable[[Any, Any], None], int], tuple[Any, Any]]:
    """``two_hosts(disrupt, first)``: :func:`run_two_hosts` on this test's parts."""
    return functools.partial(run_two_hosts, start_worker, twilio, postgres, lan, tmp_path)


def test_worker_sigkilled_every_nudge_once(two_hosts: Any) -> None:
    """Host A's worker is SIGKILLed mid-stream: B takes its partitions over (tables from
    their changelogs on Kafka, the outbox in PostgreSQL) and every lead's nudge reaches the
    fake exactly once; none is left in ``sending``."""

    def kill_a(a: Any, b: Any) -> None:
        a.kill(signal.SIGKILL)

    two_hosts(kill_a, 101)


def test_kafka_broker_sigkilled_every_nudge_once(two_hosts: Any, broker: Any) -> None:
    """One of the three Kafka nodes (broker and controller) is SIGKILLed mid-stream: with
    replication 3 and min.insync.replicas=2 the workers carry on, and every nudge reaches
    the fake exactly once. The node is started again afterwards."""
    victim = broker.nodes[1]

    def kill_node(a: Any, b: Any) -> None:
        broker.kill(victim)

    try:
        two_hosts(kill_node, 201)
    finally:
        broker.start_node(victim)
        broker.wait_ready()


def test_kafka_controller_leader_sigkilled_every_nudge_once(two_hosts: Any, broker: Any) -> None:
    """The node that is the active KRaft controller (and a broker) is SIGKILLed mid-stream:
    the other two elect a new one and every nudge reaches the fake exactly once."""
    leader = broker.controller_leader()
    assert leader is not None

    def kill_leader(a: Any, b: Any) -> None:
        broker.kill(leader)

    try:
        two_hosts(kill_leader, 401)
        assert broker.controller_leader() not in (None, leader)
    finally:
        broker.start_node(leader)
        broker.wait_ready()


def test_postgres_restart_loses_nothing(two_hosts: Any, postgres: PostgresServer) -> None:
    """PostgreSQL is stopped (fast shutdown) mid-stream and started again 12 s later,
    longer than a worker waits for a pooled connection (10 s): the workers' failed writes
    are retried from Kafka, and every nudge reaches the fake exactly once. (A shorter
    outage can pass unnoticed: the pool waits and reconnects, and no write fails.)"""

    def restart_pg(a: Any, b: Any) -> None:
        postgres.restart(pause=12.0)

    a, b = two_hosts(restart_pg, 301)
    waited = [
        sum(v for k, v in w.stats().items() if k.endswith("store_retries") or "store_unavail" in k)
        for w in (a, b)
    ]
    assert sum(waited) > 0, "the restart never reached the workers: the test proved nothing"
