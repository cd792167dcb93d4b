"""Every topic Nudge uses, declared once: name, key, what it carries.

Partition counts come from ``NUDGE_PARTITIONS`` (all topics alike, so topics
keyed by the same id are co-partitioned). Tables' changelog topics are made by
Faust: ``<app_id>-<table>-changelog``, compacted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str
    carries: str
    attr: str
    """The :class:`streams.pipeline.Pipeline` attribute that holds the Faust topic."""


TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec(
        "crm.events", "lead_id or identity", "CRM events (lead, deal, rep) as JSON", "crm_events"
    ),
    TopicSpec(
        "call.events", "lead_id or identity", "call and meeting events as JSON", "call_events"
    ),
    TopicSpec(
        "web.events",
        "lead_id or identity",
        "web, email, search, social events as JSON",
        "web_events",
    ),
    TopicSpec("events.dead", "source topic", "rejected messages: reason + raw payload", "dead"),
    TopicSpec(
        "lead.activity",
        "lead_id (envelopes: partition of their items' lead_ids)",
        "validated events, identity resolved; envelopes of them (streams/batching.py)",
        "activity",
    ),
    TopicSpec(
        "lead.signals",
        "owner rep_id (lead:<id> if none)",
        "a LeadSignal per event some rule could act on, or per due timer; in envelopes",
        "signals",
    ),
    TopicSpec("nudges", "rep_id", "NudgeCommands for the delivery agent", "nudges"),
    TopicSpec("replies", "rep_id", "replies from reps (SMS, Slack), from the webhooks", "replies"),
    TopicSpec(
        "conversations", "rep_id", "questionnaires to ask, and their due reminders", "conversations"
    ),
    TopicSpec("crm.updates", "lead_id", "field changes for external CRM connectors", "crm_updates"),
)

BY_NAME = {spec.name: spec for spec in TOPICS}
INBOUND = ("crm.events", "call.events", "web.events")
DEAD, ACTIVITY, REPLIES, CONVERSATIONS = "events.dead", "lead.activity", "replies", "conversations"

TOPIC_FOR_STREAM = {"crm": "crm.events", "call": "call.events", "web": "web.events"}
"""``nudge.events.STREAM_OF`` value → inbound topic."""

TABLES = ("leads", "guards")
"""Faust tables; each has a compacted changelog topic ``<app_id>-<table>-changelog``."""
