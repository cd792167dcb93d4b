-- published_models: models promoted on one host, for workers on other hosts (a shared
-- PostgreSQL record, no shared files). Written by `nudge model promote/rollback/train
-- --promote`; each worker copies the promoted one into its own registry (streams/model_sync.py).
CREATE TABLE published_models (
    target TEXT NOT NULL,
    version TEXT NOT NULL,
    model_json TEXT NOT NULL,
    meta_json TEXT NOT NULL,
    published_at TEXT NOT NULL,
    PRIMARY KEY (target, version)
);
-- model_promotions: the model each target's workers use (version NULL: none, points for
-- conversion). With NUDGE_DATABASE_URL set this row, not a host's PROMOTED file, decides.
CREATE TABLE model_promotions (
    target TEXT PRIMARY KEY,
    version TEXT,
    promoted_at TEXT NOT NULL
)
