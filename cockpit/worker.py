"""The one thing the cockpit asks a running worker: a lead's decision trace.

Rule evaluations are not in the record: each worker keeps the last few per lead in
memory (:mod:`playbooks.trace`) and serves them at ``GET /playbooks/explain``, which is
what ``nudge playbooks explain`` reads too. The lead page asks the worker at
``NUDGE_UI_WORKER_URL`` (default: this machine's ``NUDGE_WEB_HOST:NUDGE_WEB_PORT``)
with the cockpit's token, and says so plainly when it cannot: no worker there, or the
lead's evaluations are kept by another worker (the one whose partitions hold it).
"""

from __future__ import annotations

from typing import Any

import aiohttp

from playbooks.trace import Evaluation

TIMEOUT_S = 2.0


async def trace(
    worker_url: str, token: str | None, lead_id: str
) -> tuple[list[dict[str, Any]], str | None]:
    """The lead's kept evaluations in words, newest first, and a note when none could be had."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = worker_url.rstrip("/") + "/playbooks/explain"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as http,
            http.get(url, params={"lead": lead_id}, headers=headers) as response,
        ):
            if response.status != 200:
                return [], f"the worker at {worker_url} answered {response.status}"
            body = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return [], f"no worker answered at {worker_url} ({type(exc).__name__})"
    out = []
    for data in reversed(body.get("evaluations") or []):
        try:
            evaluation = Evaluation.from_dict(data)
        except (TypeError, KeyError):
            continue
        lines = evaluation.lines()
        out.append(
            {"fired": evaluation.fired, "head": lines[0], "details": [x.strip() for x in lines[1:]]}
        )
    note = None if out else "the worker holds no evaluations of this lead's rules"
    return out, note
