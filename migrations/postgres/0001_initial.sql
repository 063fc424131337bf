-- lifeboat coordinator store, PostgreSQL schema v1 (see src/coordinator/store/mod.rs for the
-- contract). Must stay equivalent to migrations/sqlite/0001_initial.sql: one conformance suite
-- runs against both. Times are BIGINT microseconds since the Unix epoch (UTC); ids of agents are
-- UUIDs as lowercase hyphenated TEXT; every *_hash column holds a sha256 hex digest (64 chars),
-- never the token itself; JSON columns are JSONB.

CREATE TABLE agents (
    id                TEXT    PRIMARY KEY,
    host              TEXT    NOT NULL,
    site              TEXT    NOT NULL,
    token_hash        TEXT    NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    enrolled_at       BIGINT  NOT NULL,
    version           TEXT    NOT NULL,
    last_heartbeat_at BIGINT,
    clock_offset_ms   BIGINT,
    revoked_at        BIGINT
);
CREATE INDEX agents_host ON agents (host);

CREATE TABLE enrolment_tokens (
    hash       TEXT    PRIMARY KEY CHECK (length(hash) = 64),
    host       TEXT    NOT NULL,
    site       TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL,
    used_at    BIGINT,
    used_by    TEXT    REFERENCES agents (id)
);

CREATE TABLE runs (
    id           BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    agent_id     TEXT    NOT NULL REFERENCES agents (id),
    run_key      TEXT    NOT NULL,
    seq          BIGINT  NOT NULL,
    system       TEXT,
    host         TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,
    started_at   BIGINT  NOT NULL,
    finished_at  BIGINT  NOT NULL,
    capture_time BIGINT,
    received_at  BIGINT  NOT NULL,
    record       JSONB   NOT NULL,
    UNIQUE (agent_id, run_key)
);
CREATE INDEX runs_system_started ON runs (system, started_at DESC, id DESC);
CREATE INDEX runs_finished ON runs (finished_at, id);

CREATE TABLE agent_heartbeats (
    agent_id    TEXT    PRIMARY KEY REFERENCES agents (id),
    received_at BIGINT  NOT NULL,
    heartbeat   JSONB   NOT NULL
);

CREATE TABLE system_status (
    system      TEXT    PRIMARY KEY,
    agent_id    TEXT    NOT NULL REFERENCES agents (id),
    reported_at BIGINT  NOT NULL,
    status      JSONB   NOT NULL
);

CREATE TABLE audit_log (
    id     BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at     BIGINT  NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    target TEXT    NOT NULL,
    detail JSONB   NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor);
CREATE INDEX audit_log_target ON audit_log (target);
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE TABLE users (
    name          TEXT    PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT  NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT    PRIMARY KEY CHECK (length(token_hash) = 64),
    user_name  TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created_at BIGINT  NOT NULL,
    expires_at BIGINT  NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (user_name);

CREATE TABLE api_tokens (
    hash       TEXT    PRIMARY KEY CHECK (length(hash) = 64),
    user_name  TEXT    REFERENCES users (name) ON DELETE CASCADE,
    agent_id   TEXT    REFERENCES agents (id),
    label      TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    revoked_at BIGINT,
    CHECK ((user_name IS NULL) <> (agent_id IS NULL))
);

CREATE TABLE alert_state (
    rule             TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('firing', 'resolved')),
    since            BIGINT  NOT NULL,
    last_notified_at BIGINT,
    PRIMARY KEY (rule, subject)
);
