-- A rep's "2 = snooze" on a nudge: no more nudges about that lead to that rep until `until`.
CREATE TABLE snoozes (
    rep_id   TEXT NOT NULL,
    lead_id  TEXT NOT NULL,
    until    TEXT NOT NULL,
    PRIMARY KEY (rep_id, lead_id)
);
