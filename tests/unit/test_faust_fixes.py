"""The Faust and aiokafka methods Nudge patches are still the ones its fixes were written for."""

from __future__ import annotations

import importlib

import pytest

from broker.engine import bootstrap_of, detect_engine
from broker.offsets import UPSTREAM as OFFSETS_UPSTREAM
from streams.faust_fixes import UPSTREAM, source_hash, upstream_source

PATCHED = {**UPSTREAM, **OFFSETS_UPSTREAM}


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
