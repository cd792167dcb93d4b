"""scoring/ stays plain Python: no Kafka, no Faust, nothing from the floors above."""

from __future__ import annotations

import subprocess
import sys


def test_scoring_imports_no_kafka_faust_streams_or_crm() -> None:
    """Importing every scoring module loads neither faust, aiokafka, streams nor crm."""
    code = (
        "import sys, pkgutil, importlib, scoring\n"
        "for m in pkgutil.iter_modules(scoring.__path__):\n"
        "    importlib.import_module('scoring.' + m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in "
        "{'faust', 'aiokafka', 'streams', 'crm'})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
