"""``GET /playbooks/explain?lead=ID[&rule=ID]``: the last evaluations a worker kept for a lead.

What ``nudge playbooks explain --lead ID`` reads from a running worker. The worker
keeps a bounded :class:`~playbooks.trace.TraceBook` (the last evaluations per lead,
for the most recently evaluated leads), filled by the playbook agent and annotated by
the delivery agent with what policy did. It is this worker's memory: with several
workers, ask the one whose partitions hold the lead's owner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from streams.views import json_response

if TYPE_CHECKING:
    from streams.pipeline import Pipeline

DOC: dict[str, Any] = {
    "parameters": [
        {"name": "lead", "in": "query", "required": True, "schema": {"type": "string"}},
        {"name": "rule", "in": "query", "required": False, "schema": {"type": "string"}},
    ],
    "responses": {
        "200": {
            "description": "the lead's kept evaluations, oldest first",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        "400": {
            "description": "no lead given",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        },
    },
}


def handler(p: Pipeline) -> Any:
    async def explain(request: web.Request) -> web.Response:
        lead = request.query.get("lead", "").strip()
        if not lead:
            return json_response({"error": "give the lead: ?lead=ID"}, status=400)
        rule = request.query.get("rule") or None
        found = [e.to_dict() for e in p.traces.last(lead, rule)]
        return json_response({"lead": lead, "rule": rule, "evaluations": found})

    return explain
