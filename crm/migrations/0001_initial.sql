-- The system of record: reps, leads, their identities, activities, and the outbox.
CREATE TABLE reps (
    rep_id         TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    phone          TEXT,
    email          TEXT,
    slack_user_id  TEXT,
    timezone       TEXT NOT NULL DEFAULT 'UTC',
    manager_rep_id TEXT,
    team           TEXT,
    sms_opted_out  INTEGER NOT NULL DEFAULT 0,
    updated_at     TEXT NOT NULL
);

CREATE TABLE leads (
    lead_id       TEXT PRIMARY KEY,
    company       TEXT,
    contact_name  TEXT,
    owner_rep_id  TEXT,
    stage         TEXT,
    status        TEXT NOT NULL DEFAULT 'open',
    deal_value    REAL,
    score         REAL,
    model_version TEXT,
    profile_json  TEXT NOT NULL DEFAULT '{}',
    updated_at    TEXT NOT NULL
);

-- email / phone / visitor id → lead (identity resolution)
CREATE TABLE contacts (
    kind     TEXT NOT NULL CHECK (kind IN ('email', 'phone', 'visitor')),
    value    TEXT NOT NULL,
    lead_id  TEXT NOT NULL,
    seen_at  TEXT NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE INDEX contacts_lead ON contacts (lead_id);

CREATE TABLE activities (
    activity_id  TEXT PRIMARY KEY,       -- the event_id it came from
    lead_id      TEXT,                   -- NULL: matched no lead (kept, not dropped)
    rep_id       TEXT,
    type         TEXT NOT NULL,
    occurred_at  TEXT NOT NULL,
    duration_s   REAL,
    detail_json  TEXT NOT NULL DEFAULT '{}',
    -- for an unmatched activity: the identities to match it by when its lead appears
    email        TEXT,
    phone        TEXT,
    visitor_id   TEXT
);
CREATE INDEX activities_lead ON activities (lead_id, occurred_at);
CREATE INDEX activities_unmatched_email ON activities (email) WHERE lead_id IS NULL;
CREATE INDEX activities_unmatched_phone ON activities (phone) WHERE lead_id IS NULL;
CREATE INDEX activities_unmatched_visitor ON activities (visitor_id) WHERE lead_id IS NULL;

-- One row per nudge id: the only place that decides a nudge was delivered.
CREATE TABLE outbox (
    nudge_id     TEXT PRIMARY KEY,
    rep_id       TEXT NOT NULL,
    lead_id      TEXT NOT NULL,
    channel      TEXT,
    state        TEXT NOT NULL CHECK (state IN
                   ('queued', 'held', 'sending', 'sent', 'delivered', 'failed', 'suppressed')),
    reason       TEXT,
    provider_id  TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    playbook     TEXT NOT NULL,
    rule         TEXT NOT NULL,
    text         TEXT NOT NULL,
    command_json TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);
CREATE INDEX outbox_rep_state ON outbox (rep_id, state);
