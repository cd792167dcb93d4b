"""Issue 14: the OpenAPI document at /openapi.json matches the live worker (schemathesis).

schemathesis reads the document from a running worker and sends every operation
generated valid and invalid requests (with the bearer token, so the token routes are
exercised past their auth); every answer must be a non-5xx that the document
describes: status, content type, headers and body schema. The provider webhooks are
reached too, but without their providers' secrets schemathesis cannot sign a request,
so there it checks the refusals (401/403), not what lies behind them: that is what
tests/unit/notifiers/test_webhooks.py and tests/unit/connectors do with signed calls.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

TOKEN = "schema-token-0123456789"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)


def test_document_lists_every_route(start_worker: Any) -> None:
    """Every served route is in the document with its auth, and nothing else is."""
    import urllib.request

    worker = start_worker(NUDGE_API_TOKEN=TOKEN)
    with urllib.request.urlopen(worker.url + "/openapi.json", timeout=10) as r:
        doc = json.load(r)
    ops = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert ("/events", "post") in ops and ("/health", "get") in ops
    assert ("/webhooks/twilio/sms", "post") in ops and ("/openapi.json", "get") in ops
    assert not any(p.startswith(("/table", "/router")) for p, _ in ops)
    assert doc["paths"]["/events"]["post"]["security"] == [{"bearer": []}]
    assert doc["paths"]["/health"]["get"]["security"] == []


def test_schemathesis_finds_no_server_error_or_mismatch(start_worker: Any, tmp_path: Path) -> None:
    """schemathesis against a live worker with every endpoint: no 5xx, every response
    matches the document."""
    worker = start_worker(NUDGE_API_TOKEN=TOKEN)
    exe = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert exe, "schemathesis is a dev dependency (pip install -e '.[dev]')"
    done = subprocess.run(
        [
            exe, "run", worker.url + "/openapi.json",
            "--checks", CHECKS,
            "-H", f"Authorization: Bearer {TOKEN}",
            "--max-examples", "25",
            "--seed", "14",
            "--workers", "1",
            "--phases", "examples,coverage,fuzzing",
            "--generation-database", "none",
            "--request-timeout", "20",
            "--no-color",
            "--report-dir", str(tmp_path / "report"),
        ],
        cwd=tmp_path, capture_output=True, timeout=900,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )  # fmt: skip
    report = done.stdout.decode(errors="replace")
    assert done.returncode == 0, report[-6000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    tested = re.search(r"Tested: (\d+)", report)
    assert selected and tested, report[-3000:]
    assert selected[1] == selected[2] == tested[1], report[-3000:]  # every operation ran
    assert "Traceback" not in worker.output()
