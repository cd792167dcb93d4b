-- Connectors' own durable state (connectors/, streams/connector_*.py).
-- zoom_participants: attendee emails seen join a Zoom meeting, until it ends.
CREATE TABLE zoom_participants (
    meeting_uuid TEXT NOT NULL,
    email TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (meeting_uuid, email)
);
-- crm_writes: one row per crm.updates message for an external CRM, and what became of it.
-- state: pending (to write, not before not_before) | done | failed (permanent) | ignored
CREATE TABLE crm_writes (
    system TEXT NOT NULL,
    update_id TEXT NOT NULL,
    lead_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before TEXT NOT NULL,
    last_error TEXT,
    remote_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (system, update_id)
);
CREATE INDEX crm_writes_due ON crm_writes (system, state, not_before);
-- crm_links: a Nudge lead's record in an external CRM (e.g. its HubSpot contact id).
CREATE TABLE crm_links (
    system TEXT NOT NULL,
    lead_id TEXT NOT NULL,
    object_type TEXT NOT NULL,
    remote_id TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (system, lead_id, object_type)
);
CREATE INDEX crm_links_remote ON crm_links (system, object_type, remote_id);
-- sync_checkpoints: how far an incremental sync has read, written after what it read is on the broker.
CREATE TABLE sync_checkpoints (
    system TEXT NOT NULL,
    object TEXT NOT NULL,
    cursor TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (system, object)
)
