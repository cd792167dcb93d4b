"""Start-up: a worker with no CRM, Twilio or Slack configured never imports their SDKs (~1.1 s), and
its first group join on the embedded broker waits ~2 s, not ~3 s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SDKS = ("hubspot", "simple_salesforce", "slack_bolt", "twilio.rest")

BUILD = """
import json, sys
from nudge.settings import Settings
from streams.app import build
build(Settings(data_dir=sys.argv[1]), "kafka://127.0.0.1:9")
print(json.dumps(sorted(m for m in %r if m in sys.modules)))
"""


def _loaded(tmp_path: Path, **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HUBSPOT_", "SALESFORCE_"))}
    clean = {k: v for k, v in clean.items() if not k.startswith("SLACK_")}
    out = subprocess.run(
        [sys.executable, "-c", BUILD % (SDKS,), str(tmp_path)],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return loaded


def test_unconfigured_worker_loads_no_provider_sdk(tmp_path: Path) -> None:
    assert _loaded(tmp_path) == []


def test_configured_hubspot_loads_its_sdk_at_build(tmp_path: Path) -> None:
    loaded = _loaded(tmp_path, HUBSPOT_ACCESS_TOKEN="pat-x", HUBSPOT_CLIENT_SECRET="s")
    assert "hubspot" in loaded
    assert "simple_salesforce" not in loaded


def test_session_on_the_embedded_broker_is_shorter(tmp_path: Path) -> None:
    """Tansu holds a first join for about half the session: ~2 s on the worker's own broker,
    whose group has no other member; ~3 s on a Kafka, where 6 s is the smallest allowed."""
    from nudge.settings import Settings
    from streams.app import make_app

    def session(**kw: object) -> float:
        app = make_app(Settings(data_dir=tmp_path, **kw), "kafka://127.0.0.1:9")
        return float(app.conf.broker_session_timeout)

    assert session() == 3.0
    assert session(kafka_url="127.0.0.1:9092") == 6.0
    assert session(session_timeout=10) == 10.0
