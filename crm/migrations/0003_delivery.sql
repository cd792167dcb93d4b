-- Delivery: when a queued nudge may go (quiet hours, retry backoff), the provider's
-- error code, every attempt, per-rep channel preferences, and our own SMS suppression list.
ALTER TABLE outbox ADD COLUMN not_before TEXT;
ALTER TABLE outbox ADD COLUMN error_code TEXT;
ALTER TABLE outbox ADD COLUMN sent_at TEXT;
ALTER TABLE outbox ADD COLUMN delivered_at TEXT;
CREATE INDEX outbox_pending ON outbox (state, not_before);
CREATE INDEX outbox_provider ON outbox (provider_id);

ALTER TABLE reps ADD COLUMN preferred_channel TEXT;
ALTER TABLE reps ADD COLUMN quiet_start TEXT;
ALTER TABLE reps ADD COLUMN quiet_end TEXT;
ALTER TABLE reps ADD COLUMN daily_limit INTEGER;

-- One row per send attempt: what happened and the provider's code.
CREATE TABLE delivery_attempts (
    nudge_id    TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    channel     TEXT,
    at          TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('sent', 'transient', 'permanent')),
    error_code  TEXT,
    detail      TEXT,
    PRIMARY KEY (nudge_id, attempt)
);

-- Numbers that texted STOP (also numbers that match no rep): never text them until START.
CREATE TABLE sms_suppressions (
    phone   TEXT PRIMARY KEY,
    reason  TEXT NOT NULL,
    at      TEXT NOT NULL
);

-- Inbound message ids already handled: a provider retrying a webhook is answered once.
CREATE TABLE inbound_seen (
    reply_id     TEXT PRIMARY KEY,
    received_at  TEXT NOT NULL
);
