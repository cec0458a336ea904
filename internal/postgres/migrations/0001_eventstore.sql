-- Event store, transactional outbox, consumer deduplication and leases.
-- Portable SQL: accepted by PostgreSQL 15 and CockroachDB (no UPSERT, no
-- advisory locks, no triggers).

-- The append-only log. Rows are only ever inserted. global_position orders the
-- log for replay; within one aggregate, aggregate_version is gap-free.
CREATE TABLE IF NOT EXISTS events (
    global_position   BIGSERIAL PRIMARY KEY,
    event_id          UUID        NOT NULL UNIQUE,
    aggregate_type    TEXT        NOT NULL,
    aggregate_id      TEXT        NOT NULL,
    aggregate_version BIGINT      NOT NULL,
    event_type        TEXT        NOT NULL,
    project_id        TEXT        NOT NULL DEFAULT '',
    causation_id      TEXT        NOT NULL DEFAULT '',
    correlation_id    TEXT        NOT NULL DEFAULT '',
    actor             TEXT        NOT NULL DEFAULT '',
    occurred_at       TIMESTAMPTZ NOT NULL,
    recorded_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    payload           BYTEA       NOT NULL,
    CONSTRAINT events_stream_version UNIQUE (aggregate_type, aggregate_id, aggregate_version)
);

CREATE INDEX IF NOT EXISTS events_occurred_at ON events (occurred_at);

-- Head version of every stream. The optimistic concurrency check updates the
-- row only when it still holds the expected version.
CREATE TABLE IF NOT EXISTS streams (
    aggregate_type TEXT   NOT NULL,
    aggregate_id   TEXT   NOT NULL,
    version        BIGINT NOT NULL,
    project_id     TEXT   NOT NULL DEFAULT '',
    PRIMARY KEY (aggregate_type, aggregate_id)
);

-- Transactional outbox: one row per event still to be published, written in
-- the same transaction as the event. The relay joins it with events to build
-- the message, publishes it to topic keyed by message_key (the aggregate id)
-- and deletes the row once Kafka acknowledged it.
CREATE TABLE IF NOT EXISTS outbox (
    global_position BIGINT      PRIMARY KEY,
    topic           TEXT        NOT NULL,
    message_key     TEXT        NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Events a consumer has already applied, recorded in the same transaction as
-- the consumer's own change, so a redelivered event changes nothing.
CREATE TABLE IF NOT EXISTS processed_events (
    consumer     TEXT        NOT NULL,
    event_id     UUID        NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);

-- Time-limited leases for work that one replica at a time must do.
CREATE TABLE IF NOT EXISTS leases (
    name       TEXT        PRIMARY KEY,
    holder     TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
