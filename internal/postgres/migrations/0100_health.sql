-- Health manager: amphora liveness, failover claims and listener statistics.
-- Portable SQL (PostgreSQL 15 and CockroachDB): INSERT ... ON CONFLICT,
-- conditional UPDATEs, no triggers, no advisory locks.

-- One row per amphora that has sent a heartbeat the health manager applied.
-- last_seq/last_received_at are the newest heartbeat applied (they guard
-- against redelivered and reordered heartbeats); last_seen is the receive
-- time of the newest heartbeat that counted for liveness (NULL until one
-- did: a booting or misconfigured amphora is never considered stale before
-- its first good heartbeat). busy is the failover claim: set atomically by
-- exactly one health manager (UPDATE ... WHERE busy = false), cleared when
-- the amphora reports again after claimed_at, or the row is deleted.
CREATE TABLE IF NOT EXISTS amphora_health (
    amphora_id        TEXT        PRIMARY KEY,
    loadbalancer_id   TEXT        NOT NULL DEFAULT '',
    last_seq          BIGINT      NOT NULL,
    last_received_at  TIMESTAMPTZ NOT NULL,
    last_seen         TIMESTAMPTZ,
    busy              BOOLEAN     NOT NULL DEFAULT false,
    claimed_by        TEXT        NOT NULL DEFAULT '',
    claimed_at        TIMESTAMPTZ,
    failover_stopped  BOOLEAN     NOT NULL DEFAULT false,
    updated_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX IF NOT EXISTS amphora_health_stale ON amphora_health (busy, last_seen);

-- Cumulative listener counters per (listener, amphora): deltas are added,
-- so totals survive haproxy restarts and failovers (sum over amphorae for a
-- listener's totals). raw_* keep the last absolute counters of version 1/2
-- heartbeats to derive deltas from (NULL: no baseline).
CREATE TABLE IF NOT EXISTS listener_stats (
    listener_id         TEXT        NOT NULL,
    amphora_id          TEXT        NOT NULL,
    loadbalancer_id     TEXT        NOT NULL DEFAULT '',
    bytes_in            BIGINT      NOT NULL DEFAULT 0,
    bytes_out           BIGINT      NOT NULL DEFAULT 0,
    active_connections  BIGINT      NOT NULL DEFAULT 0,
    total_connections   BIGINT      NOT NULL DEFAULT 0,
    request_errors      BIGINT      NOT NULL DEFAULT 0,
    raw_bytes_in        BIGINT,
    raw_bytes_out       BIGINT,
    raw_total_connections BIGINT,
    raw_request_errors  BIGINT,
    updated_at          TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (listener_id, amphora_id)
);

-- Per-minute (configurable bucket) usage for billing: the counter
-- increments that arrived in the bucket, by receive time.
CREATE TABLE IF NOT EXISTS listener_stats_history (
    listener_id         TEXT        NOT NULL,
    amphora_id          TEXT        NOT NULL,
    bucket_start        TIMESTAMPTZ NOT NULL,
    loadbalancer_id     TEXT        NOT NULL DEFAULT '',
    bytes_in            BIGINT      NOT NULL DEFAULT 0,
    bytes_out           BIGINT      NOT NULL DEFAULT 0,
    total_connections   BIGINT      NOT NULL DEFAULT 0,
    request_errors      BIGINT      NOT NULL DEFAULT 0,
    max_active_connections BIGINT   NOT NULL DEFAULT 0,
    samples             BIGINT      NOT NULL DEFAULT 0,
    PRIMARY KEY (listener_id, amphora_id, bucket_start)
);

CREATE INDEX IF NOT EXISTS listener_stats_history_bucket ON listener_stats_history (bucket_start);
