-- The record (issue 12): the store owns what people and outside systems said about a lead.
-- state_json: the lead agent's last checkpoint of derived stream state (features, counters,
-- touches, score), read only to rebuild a Faust table entry that was lost; the profile
-- itself is profile_json, written only by crm.record.merge_fields.
ALTER TABLE leads ADD COLUMN state_json TEXT;
-- the event a field change came from (CRM events); answers name their session and question
ALTER TABLE field_changes ADD COLUMN event_id TEXT;
-- Deals: one row per deal of a lead; deal.* fields read and write the lead's current deal
-- (the open one changed last, else the one changed last).
CREATE TABLE deals (
    deal_id     TEXT PRIMARY KEY,
    lead_id     TEXT NOT NULL,
    name        TEXT,
    stage       TEXT,
    value       REAL,
    close_date  TEXT,
    next_step   TEXT,
    status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'won', 'lost')),
    fields_json TEXT NOT NULL DEFAULT '{}',
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX deals_lead ON deals (lead_id, status, updated_at)
