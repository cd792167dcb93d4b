"""The one thing the cockpit asks the running workers: a lead's decision trace.

Rule evaluations are not in the record: each worker keeps the last few per lead in
memory (:mod:`playbooks.trace`) and serves them at ``GET /playbooks/explain``, which is
what ``nudge playbooks explain`` reads too. A lead's evaluations are kept by the worker
whose partitions hold it, so the lead page asks every worker listed in
``NUDGE_UI_WORKER_URL`` (comma-separated; default: this machine's
``NUDGE_WEB_HOST:NUDGE_WEB_PORT``) at once, with the cockpit's token, merges what they
answer (newest first), and says plainly which workers could not be asked.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from playbooks.trace import Evaluation

TIMEOUT_S = 2.0


async def _ask(
    http: aiohttp.ClientSession, worker_url: str, token: str | None, lead_id: str
) -> tuple[list[Evaluation], str | None]:
    """One worker's kept evaluations of the lead, or why there are none from it."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = worker_url.rstrip("/") + "/playbooks/explain"
    try:
        async with http.get(url, params={"lead": lead_id}, headers=headers) as response:
            if response.status != 200:
                return [], f"the worker at {worker_url} answered {response.status}"
            body = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        return [], f"no worker answered at {worker_url} ({type(exc).__name__})"
    found = []
    for data in body.get("evaluations") or []:
        try:
            found.append(Evaluation.from_dict(data))
        except (TypeError, KeyError):
            continue
    return found, None


async def trace(
    worker_urls: str | list[str], token: str | None, lead_id: str
) -> tuple[list[dict[str, Any]], str | None]:
    """The lead's kept evaluations in words, newest first, from every worker asked; and a
    note naming the workers that could not be asked, or saying none held any."""
    urls = worker_urls.split(",") if isinstance(worker_urls, str) else worker_urls
    urls = [u.strip() for u in urls if u.strip()]
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as http:
        answers = await asyncio.gather(*(_ask(http, u, token, lead_id) for u in urls))
    evaluations = sorted((e for found, _ in answers for e in found), key=lambda e: e.at)
    out = []
    for evaluation in reversed(evaluations):
        lines = evaluation.lines()
        out.append(
            {"fired": evaluation.fired, "head": lines[0], "details": [x.strip() for x in lines[1:]]}
        )
    problems = [note for _, note in answers if note]
    if problems:
        return out, "; ".join(problems)
    return out, None if out else "no worker holds evaluations of this lead's rules"
