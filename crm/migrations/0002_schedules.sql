-- The durable scheduler: one row per delayed thing (waits, escalations, date and
-- inactivity triggers, schedules, digests), keyed by a deterministic id so that
-- planning the same thing twice is a no-op. Claim-then-fire: a claimed row whose
-- lease ran out (the worker died) is offered again; its commands have
-- deterministic ids, so firing twice sends nothing twice.
CREATE TABLE schedules (
    schedule_id   TEXT PRIMARY KEY,
    partition_key TEXT NOT NULL,          -- the lead id (rep id for digests) that owns it
    due_at        TEXT NOT NULL,          -- UTC, fixed-width ISO (sorts as text)
    purpose       TEXT NOT NULL,
    state         TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'claimed', 'done', 'cancelled')),
    claimed_until TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    step_json     TEXT NOT NULL,          -- the ScheduleStep command
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX schedules_due ON schedules (state, due_at);
CREATE INDEX schedules_partition ON schedules (partition_key, state)
