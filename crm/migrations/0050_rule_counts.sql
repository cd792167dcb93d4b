-- rule_counts: how often each rule was evaluated per UTC day, by outcome (fired, cooldown,
-- conditions, ...). Added to by every worker's periodic flush of its counters; a replayed
-- batch after a crash may count its evaluations twice (a counter, not a ledger).
CREATE TABLE rule_counts (
    day TEXT NOT NULL,
    playbook TEXT NOT NULL,
    rule TEXT NOT NULL,
    outcome TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (day, playbook, rule, outcome)
)
