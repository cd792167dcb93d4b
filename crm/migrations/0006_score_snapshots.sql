-- Every live score, with the feature state it was computed from (for training).
CREATE TABLE score_snapshots (
    event_id       TEXT PRIMARY KEY,
    lead_id        TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    occurred_at    REAL NOT NULL,          -- epoch seconds of the event
    model_version  TEXT NOT NULL,
    score          REAL NOT NULL,
    state_json     TEXT NOT NULL           -- {"features": ..., "profile": ...} at that moment
);
CREATE INDEX score_snapshots_time ON score_snapshots (occurred_at);
