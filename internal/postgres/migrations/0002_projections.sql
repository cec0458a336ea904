-- Read models of the Octavia API (projections/). Portable SQL: PostgreSQL
-- and CockroachDB (INSERT ... ON CONFLICT, no UPSERT, no triggers, no
-- advisory locks).
--
-- Every read-model row carries a generation. projection_generations names
-- the generation the API reads (current_generation) and, while a replay
-- rebuilds the model, the one being built (building_generation): the
-- projector writes both, the replay fills the new one and then swaps the
-- pointer, so live reads are never disturbed by a rebuild.

CREATE TABLE IF NOT EXISTS projection_generations (
    projection          TEXT   PRIMARY KEY,
    current_generation  BIGINT NOT NULL,
    building_generation BIGINT,
    next_generation     BIGINT NOT NULL
);

INSERT INTO projection_generations (projection, current_generation, building_generation, next_generation)
VALUES ('views', 1, NULL, 2) ON CONFLICT (projection) DO NOTHING;

-- Per generation and aggregate, the last applied aggregate version.
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    projection     TEXT   NOT NULL,
    generation     BIGINT NOT NULL,
    aggregate_type TEXT   NOT NULL,
    aggregate_id   TEXT   NOT NULL,
    version        BIGINT NOT NULL,
    PRIMARY KEY (projection, generation, aggregate_type, aggregate_id)
);

-- Audit trail: one row per event and object it changed, with the object's
-- API representation before and after the event (NULL when it did not
-- exist).
CREATE TABLE IF NOT EXISTS audit_log (
    generation        BIGINT      NOT NULL,
    event_id          UUID        NOT NULL,
    seq               INT         NOT NULL,
    global_position   BIGINT      NOT NULL,
    occurred_at       TIMESTAMPTZ NOT NULL,
    actor             TEXT        NOT NULL,
    project_id        TEXT        NOT NULL,
    correlation_id    TEXT        NOT NULL,
    aggregate_type    TEXT        NOT NULL,
    aggregate_id      TEXT        NOT NULL,
    aggregate_version BIGINT      NOT NULL,
    object_kind       TEXT        NOT NULL,
    object_id         TEXT        NOT NULL,
    event_type        TEXT        NOT NULL,
    before            JSONB,
    after             JSONB,
    PRIMARY KEY (generation, event_id, seq)
);

CREATE INDEX IF NOT EXISTS audit_log_object ON audit_log (generation, object_id, occurred_at);

-- loadbalancer objects: doc is the Octavia API object, aux extra data (the status
-- tree of a load balancer).
CREATE TABLE IF NOT EXISTS view_loadbalancer (
    generation          BIGINT NOT NULL,
    id                  TEXT   NOT NULL,
    aggregate_id        TEXT   NOT NULL,
    project_id          TEXT   NOT NULL DEFAULT '',
    loadbalancer_id     TEXT   NOT NULL DEFAULT '',
    parent_id           TEXT   NOT NULL DEFAULT '',
    name                TEXT   NOT NULL DEFAULT '',
    provisioning_status TEXT   NOT NULL DEFAULT '',
    operating_status    TEXT   NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ,
    tags                TEXT[] NOT NULL DEFAULT '{}',
    doc                 JSONB  NOT NULL,
    aux                 JSONB,
    PRIMARY KEY (generation, id)
);
CREATE INDEX IF NOT EXISTS view_loadbalancer_project ON view_loadbalancer (generation, project_id, created_at, id);
CREATE INDEX IF NOT EXISTS view_loadbalancer_aggregate ON view_loadbalancer (generation, aggregate_id);
CREATE INDEX IF NOT EXISTS view_loadbalancer_parent ON view_loadbalancer (generation, parent_id);

-- listener objects: doc is the Octavia API object, aux extra data (the status
-- tree of a load balancer).
CREATE TABLE IF NOT EXISTS view_listener (
    generation          BIGINT NOT NULL,
    id                  TEXT   NOT NULL,
    aggregate_id        TEXT   NOT NULL,
    project_id          TEXT   NOT NULL DEFAULT '',
    loadbalancer_id     TEXT   NOT NULL DEFAULT '',
    parent_id           TEXT   NOT NULL DEFAULT '',
    name                TEXT   NOT NULL DEFAULT '',
    provisioning_status TEXT   NOT NULL DEFAULT '',
    operating_status    TEXT   NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ,
    tags                TEXT[] NOT NULL DEFAULT '{}',
    doc                 JSONB  NOT NULL,
    aux                 JSONB,
    PRIMARY KEY (generation, id)
);
CREATE INDEX IF NOT EXISTS view_listener_project ON view_listener (generation, project_id, created_at, id);
CREATE INDEX IF NOT EXISTS view_listener_aggregate ON view_listener (generation, aggregate_id);
CREATE INDEX IF NOT EXISTS view_listener_parent ON view_listener (generation, parent_id);

-- pool objects: doc is the Octavia API object, aux extra data (the status
-- tree of a load balancer).
CREATE TABLE IF NOT EXISTS view_pool (
    generation          BIGINT NOT NULL,
    id                  TEXT   NOT NULL,
    aggregate_id        TEXT   NOT NULL,
    project_id          TEXT   NOT NULL DEFAULT '',
    loadbalancer_id     TEXT   NOT NULL DEFAULT '',
    parent_id           TEXT   NOT NULL DEFAULT '',
    name                TEXT   NOT NULL DEFAULT '',
    provisioning_status TEXT   NOT NULL DEFAULT '',
    operating_status    TEXT   NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ,
    tags                TEXT[] NOT NULL DEFAULT '{}',
    doc                 JSONB  NOT NULL,
    aux                 JSONB,
    PRIMARY KEY (generation, id)
);
CREATE INDEX IF NOT EXISTS view_pool_project ON view_pool (generation, project_id, created_at, id);
CREATE INDEX IF NOT EXISTS view_pool_aggregate ON view_pool (generation, aggregate_id);
CREATE INDEX IF NOT EXISTS view_pool_parent ON view_pool (generation, parent_id);

-- member objects: doc is the Octavia API object, aux extra data (the status
-- tree of a load balancer).
CREATE TABLE IF NOT EXISTS view_member (
    generation          BIGINT NOT NULL,
    id                  TEXT   NOT NULL,
    aggregate_id        TEXT   NOT NULL,
    project_id          TEXT   NOT NULL DEFAULT '',
    loadbalancer_id     TEXT   NOT NULL DEFAULT '',
    parent_id           TEXT   NOT NULL DEFAULT '',
    name                TEXT   NOT NULL DEFAULT '',
    provisioning_status TEXT   NOT NULL DEFAULT '',
    operating_status    TEXT   NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ,
    tags                TEXT[] NOT NULL DEFAULT '{}',
    doc                 JSONB  NOT NULL,
    aux                 JSONB,
    PRIMARY KEY (generation, id)
);
CREATE INDEX IF NOT EXISTS view_member_project ON view_member (generation, project_id, created_at, id);
CREATE INDEX IF NOT EXISTS view_member_aggregate ON view_member (generation, aggregate_id);
CREATE INDEX IF NOT EXISTS view_member_parent ON view_member (generation, parent_id);

-- healthmonitor objects: doc is the Octavia API object, aux extra data (the status
-- tree of a load balancer).
CREATE TABLE IF NOT EXISTS view_healthmonitor (
    generation          BIGINT NOT NULL,
    id                  TEXT   NOT NULL,
    aggregate_id        TEXT   NOT NULL,
    project_id          TEXT   NOT NULL DEFAULT '',
    loadbalancer_id     TEXT   NOT NULL DEFAULT '',
    parent_id           TEXT   NOT NULL DEFAULT '',
    name                TEXT   NOT NULL DEFAULT '',
    provisioning_status TEXT   NOT NULL DEFAULT '',
    operating_status    TEXT   NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ,
    tags                TEXT[] NOT NULL DEFAULT '{}',
    doc                 JSONB  NOT NULL,
    aux                 JSONB,
    PRIMARY KEY (generation, id)
);
CREATE INDEX IF NOT EXISTS view_healthmonitor_project ON view_healthmonitor (generation, project_id, created_at, id);
CREATE INDEX IF NOT EXISTS view_healthmonitor_aggregate ON view_healthmonitor (generation, aggregate_id);
CREATE INDEX IF NOT EXISTS view_healthmonitor_parent ON view_healthmonitor (generation, parent_id);

-- l7policy objects: doc is the Octavia API object, aux extra data (the status
-- tree of a load balancer).
CREATE TABLE IF NOT EXISTS view_l7policy (
    generation          BIGINT NOT NULL,
    id                  TEXT   NOT NULL,
    aggregate_id        TEXT   NOT NULL,
    project_id          TEXT   NOT NULL DEFAULT '',
    loadbalancer_id     TEXT   NOT NULL DEFAULT '',
    parent_id           TEXT   NOT NULL DEFAULT '',
    name                TEXT   NOT NULL DEFAULT '',
    provisioning_status TEXT   NOT NULL DEFAULT '',
    operating_status    TEXT   NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ,
    tags                TEXT[] NOT NULL DEFAULT '{}',
    doc                 JSONB  NOT NULL,
    aux                 JSONB,
    PRIMARY KEY (generation, id)
);
CREATE INDEX IF NOT EXISTS view_l7policy_project ON view_l7policy (generation, project_id, created_at, id);
CREATE INDEX IF NOT EXISTS view_l7policy_aggregate ON view_l7policy (generation, aggregate_id);
CREATE INDEX IF NOT EXISTS view_l7policy_parent ON view_l7policy (generation, parent_id);

-- l7rule objects: doc is the Octavia API object, aux extra data (the status
-- tree of a load balancer).
CREATE TABLE IF NOT EXISTS view_l7rule (
    generation          BIGINT NOT NULL,
    id                  TEXT   NOT NULL,
    aggregate_id        TEXT   NOT NULL,
    project_id          TEXT   NOT NULL DEFAULT '',
    loadbalancer_id     TEXT   NOT NULL DEFAULT '',
    parent_id           TEXT   NOT NULL DEFAULT '',
    name                TEXT   NOT NULL DEFAULT '',
    provisioning_status TEXT   NOT NULL DEFAULT '',
    operating_status    TEXT   NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ,
    tags                TEXT[] NOT NULL DEFAULT '{}',
    doc                 JSONB  NOT NULL,
    aux                 JSONB,
    PRIMARY KEY (generation, id)
);
CREATE INDEX IF NOT EXISTS view_l7rule_project ON view_l7rule (generation, project_id, created_at, id);
CREATE INDEX IF NOT EXISTS view_l7rule_aggregate ON view_l7rule (generation, aggregate_id);
CREATE INDEX IF NOT EXISTS view_l7rule_parent ON view_l7rule (generation, parent_id);

-- amphora objects: doc is the Octavia API object, aux extra data (the status
-- tree of a load balancer).
CREATE TABLE IF NOT EXISTS view_amphora (
    generation          BIGINT NOT NULL,
    id                  TEXT   NOT NULL,
    aggregate_id        TEXT   NOT NULL,
    project_id          TEXT   NOT NULL DEFAULT '',
    loadbalancer_id     TEXT   NOT NULL DEFAULT '',
    parent_id           TEXT   NOT NULL DEFAULT '',
    name                TEXT   NOT NULL DEFAULT '',
    provisioning_status TEXT   NOT NULL DEFAULT '',
    operating_status    TEXT   NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ,
    tags                TEXT[] NOT NULL DEFAULT '{}',
    doc                 JSONB  NOT NULL,
    aux                 JSONB,
    PRIMARY KEY (generation, id)
);
CREATE INDEX IF NOT EXISTS view_amphora_project ON view_amphora (generation, project_id, created_at, id);
CREATE INDEX IF NOT EXISTS view_amphora_aggregate ON view_amphora (generation, aggregate_id);
CREATE INDEX IF NOT EXISTS view_amphora_parent ON view_amphora (generation, parent_id);

-- quota objects: doc is the Octavia API object, aux extra data (the status
-- tree of a load balancer).
CREATE TABLE IF NOT EXISTS view_quota (
    generation          BIGINT NOT NULL,
    id                  TEXT   NOT NULL,
    aggregate_id        TEXT   NOT NULL,
    project_id          TEXT   NOT NULL DEFAULT '',
    loadbalancer_id     TEXT   NOT NULL DEFAULT '',
    parent_id           TEXT   NOT NULL DEFAULT '',
    name                TEXT   NOT NULL DEFAULT '',
    provisioning_status TEXT   NOT NULL DEFAULT '',
    operating_status    TEXT   NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ,
    tags                TEXT[] NOT NULL DEFAULT '{}',
    doc                 JSONB  NOT NULL,
    aux                 JSONB,
    PRIMARY KEY (generation, id)
);
CREATE INDEX IF NOT EXISTS view_quota_project ON view_quota (generation, project_id, created_at, id);
CREATE INDEX IF NOT EXISTS view_quota_aggregate ON view_quota (generation, aggregate_id);
CREATE INDEX IF NOT EXISTS view_quota_parent ON view_quota (generation, parent_id);

-- flavor objects: doc is the Octavia API object, aux extra data (the status
-- tree of a load balancer).
CREATE TABLE IF NOT EXISTS view_flavor (
    generation          BIGINT NOT NULL,
    id                  TEXT   NOT NULL,
    aggregate_id        TEXT   NOT NULL,
    project_id          TEXT   NOT NULL DEFAULT '',
    loadbalancer_id     TEXT   NOT NULL DEFAULT '',
    parent_id           TEXT   NOT NULL DEFAULT '',
    name                TEXT   NOT NULL DEFAULT '',
    provisioning_status TEXT   NOT NULL DEFAULT '',
    operating_status    TEXT   NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ,
    tags                TEXT[] NOT NULL DEFAULT '{}',
    doc                 JSONB  NOT NULL,
    aux                 JSONB,
    PRIMARY KEY (generation, id)
);
CREATE INDEX IF NOT EXISTS view_flavor_project ON view_flavor (generation, project_id, created_at, id);
CREATE INDEX IF NOT EXISTS view_flavor_aggregate ON view_flavor (generation, aggregate_id);
CREATE INDEX IF NOT EXISTS view_flavor_parent ON view_flavor (generation, parent_id);

-- flavorprofile objects: doc is the Octavia API object, aux extra data (the status
-- tree of a load balancer).
CREATE TABLE IF NOT EXISTS view_flavorprofile (
    generation          BIGINT NOT NULL,
    id                  TEXT   NOT NULL,
    aggregate_id        TEXT   NOT NULL,
    project_id          TEXT   NOT NULL DEFAULT '',
    loadbalancer_id     TEXT   NOT NULL DEFAULT '',
    parent_id           TEXT   NOT NULL DEFAULT '',
    name                TEXT   NOT NULL DEFAULT '',
    provisioning_status TEXT   NOT NULL DEFAULT '',
    operating_status    TEXT   NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ,
    tags                TEXT[] NOT NULL DEFAULT '{}',
    doc                 JSONB  NOT NULL,
    aux                 JSONB,
    PRIMARY KEY (generation, id)
);
CREATE INDEX IF NOT EXISTS view_flavorprofile_project ON view_flavorprofile (generation, project_id, created_at, id);
CREATE INDEX IF NOT EXISTS view_flavorprofile_aggregate ON view_flavorprofile (generation, aggregate_id);
CREATE INDEX IF NOT EXISTS view_flavorprofile_parent ON view_flavorprofile (generation, parent_id);

-- availabilityzone objects: doc is the Octavia API object, aux extra data (the status
-- tree of a load balancer).
CREATE TABLE IF NOT EXISTS view_availabilityzone (
    generation          BIGINT NOT NULL,
    id                  TEXT   NOT NULL,
    aggregate_id        TEXT   NOT NULL,
    project_id          TEXT   NOT NULL DEFAULT '',
    loadbalancer_id     TEXT   NOT NULL DEFAULT '',
    parent_id           TEXT   NOT NULL DEFAULT '',
    name                TEXT   NOT NULL DEFAULT '',
    provisioning_status TEXT   NOT NULL DEFAULT '',
    operating_status    TEXT   NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ,
    tags                TEXT[] NOT NULL DEFAULT '{}',
    doc                 JSONB  NOT NULL,
    aux                 JSONB,
    PRIMARY KEY (generation, id)
);
CREATE INDEX IF NOT EXISTS view_availabilityzone_project ON view_availabilityzone (generation, project_id, created_at, id);
CREATE INDEX IF NOT EXISTS view_availabilityzone_aggregate ON view_availabilityzone (generation, aggregate_id);
CREATE INDEX IF NOT EXISTS view_availabilityzone_parent ON view_availabilityzone (generation, parent_id);

-- availabilityzoneprofile objects: doc is the Octavia API object, aux extra data (the status
-- tree of a load balancer).
CREATE TABLE IF NOT EXISTS view_availabilityzoneprofile (
    generation          BIGINT NOT NULL,
    id                  TEXT   NOT NULL,
    aggregate_id        TEXT   NOT NULL,
    project_id          TEXT   NOT NULL DEFAULT '',
    loadbalancer_id     TEXT   NOT NULL DEFAULT '',
    parent_id           TEXT   NOT NULL DEFAULT '',
    name                TEXT   NOT NULL DEFAULT '',
    provisioning_status TEXT   NOT NULL DEFAULT '',
    operating_status    TEXT   NOT NULL DEFAULT '',
    created_at          TIMESTAMPTZ,
    updated_at          TIMESTAMPTZ,
    tags                TEXT[] NOT NULL DEFAULT '{}',
    doc                 JSONB  NOT NULL,
    aux                 JSONB,
    PRIMARY KEY (generation, id)
);
CREATE INDEX IF NOT EXISTS view_availabilityzoneprofile_project ON view_availabilityzoneprofile (generation, project_id, created_at, id);
CREATE INDEX IF NOT EXISTS view_availabilityzoneprofile_aggregate ON view_availabilityzoneprofile (generation, aggregate_id);
CREATE INDEX IF NOT EXISTS view_availabilityzoneprofile_parent ON view_availabilityzoneprofile (generation, parent_id);
