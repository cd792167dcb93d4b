"""The Faust and aiokafka methods Nudge patches are still the ones its fixes were written for."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from broker.engine import bootstrap_of, detect_engine
from broker.offsets import UPSTREAM as OFFSETS_UPSTREAM
from streams.faust_fixes import UPSTREAM, source_hash, upstream_source

PATCHED = {**UPSTREAM, **OFFSETS_UPSTREAM}
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("module", "qualname"), sorted(PATCHED), ids=lambda v: v)
def test_patched_method_unchanged_upstream(module: str, qualname: str) -> None:
    """Each patched method's source hashes to what the fix was written against: an upgrade
    that changes one fails here, naming it, before any survive test runs."""
    expected = PATCHED[(module, qualname)]
    got = source_hash(module, qualname)
    assert got == expected, (
        f"{module}.{qualname} changed upstream (source hash {got}, fix written for "
        f"{expected}): re-read the fix that patches it (streams/faust_fixes.py, "
        "broker/offsets.py), run tests/integration/test_survive.py on both engines, "
        "then record the new hash"
    )


def test_upstream_source_ignores_patches_in_this_process() -> None:
    """The hash is of the module's file, not the live attribute: applying the fixes does not
    change what is compared."""
    from streams.faust_fixes import fetch_only_active_partitions

    before = upstream_source("faust.transport.drivers.aiokafka", "AIOKafkaConsumerThread.getmany")
    fetch_only_active_partitions()
    driver = importlib.import_module("faust.transport.drivers.aiokafka")
    assert getattr(driver.AIOKafkaConsumerThread.getmany, "_nudge_copies", False)
    after = upstream_source("faust.transport.drivers.aiokafka", "AIOKafkaConsumerThread.getmany")
    assert before == after
    assert "async def getmany" in after and "snapshot" not in after


def test_unknown_method_is_an_error() -> None:
    """A registry entry naming a method that no longer exists fails loudly."""
    with pytest.raises(LookupError):
        upstream_source("aiokafka.consumer.fetcher", "Fetcher.no_such_method")


def test_engine_without_kafka_url_is_the_embedded_tansu() -> None:
    """No KAFKA_URL: the worker starts Tansu itself, so no broker needs asking."""
    assert detect_engine(None) == "tansu"


def test_bootstrap_of_faust_urls() -> None:
    """Faust's ``kafka://a;b`` list becomes aiokafka's ``a,b``."""
    assert bootstrap_of("kafka://127.0.0.1:1;127.0.0.1:2") == "127.0.0.1:1,127.0.0.1:2"
    assert bootstrap_of("kafka://h:9092") == "h:9092"
    assert bootstrap_of("h1:1,h2:2") == "h1:1,h2:2"


PATCHES_APPLIED = """
import json
from aiokafka.consumer.fetcher import Fetcher
from faust.tables.recovery import Recovery
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread as T
from nudge.settings import Settings
from streams.app import make_app

make_app(Settings(), "kafka://127.0.0.1:9")
print(json.dumps({
    "batch_end_offsets": getattr(Fetcher.end_offsets, "_nudge_batch_end", False),
    "fetch_only_active": getattr(T.getmany, "_nudge_copies", False),
    "seek_before_resuming": getattr(Recovery.on_recovery_completed, "_nudge_fixed", False),
    "seek_uncommitted": getattr(T.seek_to_committed, "_nudge_rewinds", False),
    "fetch_wait": hasattr(T, "_nudge_original_create"),
}))
"""


@pytest.mark.parametrize("engine", ["tansu", "kafka"])
def test_tansu_corrections_only_on_tansu(engine: str, tmp_path: Path) -> None:
    """A worker on Apache Kafka gets the Faust/aiokafka fixes (client-side: they apply to
    any broker) but not the correction of Tansu's under-reported partition ends. A fresh
    process each, so no other test's patches are seen."""
    env = {
        **os.environ,
        "NUDGE_BROKER_ENGINE": engine,
        "NUDGE_DATA_DIR": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }
    out = subprocess.run(
        [sys.executable, "-c", PATCHES_APPLIED],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    applied = json.loads(out.strip().splitlines()[-1])
    assert applied.pop("batch_end_offsets") is (engine == "tansu")
    assert applied == dict.fromkeys(applied, True)
