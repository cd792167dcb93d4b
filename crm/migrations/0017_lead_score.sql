-- The lead's whole current score (value, previous, reasons, model version, expected value)
-- beside the bare value, so readers (the cockpit, `nudge leads`) can show why it scored so.
ALTER TABLE leads ADD COLUMN score_json TEXT
