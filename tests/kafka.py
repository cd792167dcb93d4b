"""The local Apache Kafka cluster of ``deploy/kafka/cluster.py``, importable by the tests.

``deploy/`` is not a package (the script runs on its own, with the standard library and
aiokafka), so the module is loaded from its file once and registered as
``nudge_kafka_cluster``.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

SCRIPT = Path(__file__).resolve().parent.parent / "deploy" / "kafka" / "cluster.py"


def _load() -> ModuleType:
    name = "nudge_kafka_cluster"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


cluster = _load()
KafkaCluster = cluster.KafkaCluster
ClusterError = cluster.ClusterError
