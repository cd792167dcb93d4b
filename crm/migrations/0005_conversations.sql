-- Conversations (issue 6): questionnaire sessions, their answers, the audit trail of
-- CRM field changes, and notes (texts that arrived outside any questionnaire).

-- One row per questionnaire session; session_json is the whole playbooks.conversation.Session.
CREATE TABLE conversation_sessions (
    session_id       TEXT PRIMARY KEY,
    rep_id           TEXT NOT NULL,
    channel          TEXT NOT NULL,
    questionnaire_id TEXT NOT NULL,
    lead_id          TEXT,
    request_id       TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN
                       ('queued', 'active', 'completed', 'stopped', 'expired')),
    session_json     TEXT NOT NULL,
    requested_at     TEXT NOT NULL,
    updated_at       TEXT NOT NULL
);
CREATE INDEX conversation_sessions_rep ON conversation_sessions (rep_id, status, requested_at);

-- Per rep: ids of requests and replies already handled, so a redelivery is a no-op.
CREATE TABLE conversation_reps (
    rep_id          TEXT PRIMARY KEY,
    recent_ids_json TEXT NOT NULL DEFAULT '[]',
    updated_at      TEXT NOT NULL
);

-- Every answer given, whether or not it changed a field. The primary key makes
-- applying the same answers twice (redelivery) a no-op.
CREATE TABLE questionnaire_answers (
    session_id       TEXT NOT NULL,
    question_id      TEXT NOT NULL,
    questionnaire_id TEXT NOT NULL,
    rep_id           TEXT NOT NULL,
    lead_id          TEXT,
    field            TEXT,
    value_json       TEXT NOT NULL,
    raw_text         TEXT NOT NULL,
    answered_at      TEXT NOT NULL,
    PRIMARY KEY (session_id, question_id)
);
CREATE INDEX questionnaire_answers_lead ON questionnaire_answers (lead_id, answered_at);

-- The audit trail: one row per CRM field an answer changed.
CREATE TABLE field_changes (
    change_id            INTEGER PRIMARY KEY AUTOINCREMENT,
    lead_id              TEXT NOT NULL,
    field                TEXT NOT NULL,
    old_value_json       TEXT,
    new_value_json       TEXT,
    source               TEXT NOT NULL,
    source_questionnaire TEXT,
    session_id           TEXT,
    question_id          TEXT,
    rep_id               TEXT,
    answered_at          TEXT NOT NULL,
    recorded_at          TEXT NOT NULL
);
CREATE INDEX field_changes_lead ON field_changes (lead_id, answered_at);

-- Texts outside any questionnaire, attached to the rep's most recent activity
-- (activity_id NULL: the rep had none; kept, not dropped).
CREATE TABLE activity_notes (
    note_id     TEXT PRIMARY KEY,
    rep_id      TEXT NOT NULL,
    activity_id TEXT,
    lead_id     TEXT,
    channel     TEXT NOT NULL,
    text        TEXT NOT NULL,
    received_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX activity_notes_activity ON activity_notes (activity_id);
