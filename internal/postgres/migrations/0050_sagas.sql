-- sagas_index: one row per saga, written in the same transaction as every
-- append to the saga's stream (aggregate type "saga"), plus the lease columns
-- the saga runners compete on.
CREATE TABLE IF NOT EXISTS sagas_index (
    saga_id        TEXT        PRIMARY KEY,
    saga_type      TEXT        NOT NULL,
    subject_id     TEXT        NOT NULL,
    status         TEXT        NOT NULL,
    version        BIGINT      NOT NULL,
    needs_cleanup  BOOLEAN     NOT NULL DEFAULT false,
    next_run_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_owner    TEXT        NOT NULL DEFAULT '',
    lease_until    TIMESTAMPTZ NOT NULL DEFAULT '1970-01-01T00:00:00Z',
    comp_attempts  INT         NOT NULL DEFAULT 0,
    correlation_id TEXT        NOT NULL DEFAULT '',
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sagas_index_due ON sagas_index (status, next_run_at);
CREATE INDEX IF NOT EXISTS sagas_index_subject ON sagas_index (subject_id);
