-- decisions: every decision a rule made to nudge a lead or not (its trigger matched, or it
-- explored its trigger), with its propensity — how likely the rule as written was to decide
-- so: 1 unless an exploration coin was drawn — and the signal it decided on, as JSON. What
-- `nudge model evaluate-policy --from-store` weighs. Written by the playbook agent's worker.
CREATE TABLE decisions (
    event_id    TEXT NOT NULL,
    lead_id     TEXT NOT NULL,
    playbook    TEXT NOT NULL,
    rule        TEXT NOT NULL,
    at          TEXT NOT NULL,
    nudged      INTEGER NOT NULL,
    propensity  REAL NOT NULL,
    signal_json TEXT NOT NULL,
    PRIMARY KEY (event_id, lead_id, playbook, rule)
);
CREATE INDEX decisions_at ON decisions (at);
