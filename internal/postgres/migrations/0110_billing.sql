-- Billing (projections/billing.go): per generation of the read models, the
-- billable interval of every load balancer, listener and amphora, derived
-- from the event log by the projector and by replays. Load balancers and
-- listeners are billable from the first time they became ACTIVE, amphorae
-- from their creation; active_until is the deletion (NULL: still there).
-- Portable SQL (PostgreSQL and CockroachDB): INSERT ... ON CONFLICT only.
CREATE TABLE IF NOT EXISTS billing_usage (
    generation      BIGINT      NOT NULL,
    resource_type   TEXT        NOT NULL,
    resource_id     TEXT        NOT NULL,
    project_id      TEXT        NOT NULL DEFAULT '',
    loadbalancer_id TEXT        NOT NULL DEFAULT '',
    active_from     TIMESTAMPTZ NOT NULL,
    active_until    TIMESTAMPTZ,
    PRIMARY KEY (generation, resource_type, resource_id)
);

CREATE INDEX IF NOT EXISTS billing_usage_project ON billing_usage (generation, project_id, active_from);
