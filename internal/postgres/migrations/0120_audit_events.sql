-- Audit trail without stored documents, one row per event (projections/,
-- issue 4: rendering and storing two JSONB documents per changed object
-- was most of a replay's time, and so was maintaining two indexes per
-- changed object).
--
-- audit_events has one row per projected event that changed objects: the
-- event (who, when, request id) and the objects it changed, in order
-- (object_kinds[i], object_ids[i]; i - 1 is the seq of the audit entry).
-- The objects' API representations before and after the event are not
-- stored: they are a function of the event log, and AuditTrail renders
-- them when the trail is read (the aggregate's events folded with the
-- aggregate's own Apply and rendered with the views, as the projector did),
-- then passes them through JSONB so they read exactly like stored ones.
-- audit_objects is the directory AuditTrail looks an object up in: which
-- aggregate's events changed it (one row per object, not per change).
--
-- audit_log keeps the rows older versions wrote (with their documents);
-- they are read as before and no new rows are added to it.
-- Portable SQL: PostgreSQL and CockroachDB.
CREATE TABLE IF NOT EXISTS audit_events (
    generation        BIGINT      NOT NULL,
    aggregate_type    TEXT        NOT NULL,
    aggregate_id      TEXT        NOT NULL,
    aggregate_version BIGINT      NOT NULL,
    event_id          UUID        NOT NULL,
    global_position   BIGINT      NOT NULL,
    occurred_at       TIMESTAMPTZ NOT NULL,
    actor             TEXT        NOT NULL,
    project_id        TEXT        NOT NULL,
    correlation_id    TEXT        NOT NULL,
    event_type        TEXT        NOT NULL,
    object_kinds      TEXT[]      NOT NULL,
    object_ids        TEXT[]      NOT NULL,
    PRIMARY KEY (generation, aggregate_type, aggregate_id, aggregate_version)
);

CREATE TABLE IF NOT EXISTS audit_objects (
    generation     BIGINT NOT NULL,
    object_id      TEXT   NOT NULL,
    aggregate_type TEXT   NOT NULL,
    aggregate_id   TEXT   NOT NULL,
    object_kind    TEXT   NOT NULL,
    PRIMARY KEY (generation, object_id, aggregate_type, aggregate_id)
);
