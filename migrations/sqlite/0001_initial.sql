-- lifeboat coordinator store, SQLite schema v1 (see src/coordinator/store/mod.rs for the
-- contract). Must stay equivalent to migrations/postgres/0001_initial.sql: one conformance suite
-- runs against both. Times are INTEGER microseconds since the Unix epoch (UTC); ids of agents are
-- UUIDs as lowercase hyphenated TEXT; every *_hash column holds a sha256 hex digest (64 chars),
-- never the token itself; JSON columns hold serde_json text.

CREATE TABLE agents (
    id                TEXT    PRIMARY KEY,
    host              TEXT    NOT NULL,
    site              TEXT    NOT NULL,
    token_hash        TEXT    NOT NULL UNIQUE CHECK (length(token_hash) = 64),
    enrolled_at       INTEGER NOT NULL,
    version           TEXT    NOT NULL,
    last_heartbeat_at INTEGER,
    clock_offset_ms   INTEGER,
    revoked_at        INTEGER
);
CREATE INDEX agents_host ON agents (host);

CREATE TABLE enrolment_tokens (
    hash       TEXT    PRIMARY KEY CHECK (length(hash) = 64),
    host       TEXT    NOT NULL,
    site       TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER,
    used_by    TEXT    REFERENCES agents (id)
);

CREATE TABLE runs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    agent_id     TEXT    NOT NULL REFERENCES agents (id),
    run_key      TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    system       TEXT,
    host         TEXT    NOT NULL,
    kind         TEXT    NOT NULL,
    outcome      TEXT    NOT NULL,
    started_at   INTEGER NOT NULL,
    finished_at  INTEGER NOT NULL,
    capture_time INTEGER,
    received_at  INTEGER NOT NULL,
    record       TEXT    NOT NULL,
    UNIQUE (agent_id, run_key)
);
CREATE INDEX runs_system_started ON runs (system, started_at DESC, id DESC);
CREATE INDEX runs_finished ON runs (finished_at, id);

CREATE TABLE agent_heartbeats (
    agent_id    TEXT    PRIMARY KEY REFERENCES agents (id),
    received_at INTEGER NOT NULL,
    heartbeat   TEXT    NOT NULL
);

CREATE TABLE system_status (
    system      TEXT    PRIMARY KEY,
    agent_id    TEXT    NOT NULL REFERENCES agents (id),
    reported_at INTEGER NOT NULL,
    status      TEXT    NOT NULL
);

CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    target TEXT    NOT NULL,
    detail TEXT    NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_actor ON audit_log (actor);
CREATE INDEX audit_log_target ON audit_log (target);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TABLE users (
    name          TEXT    PRIMARY KEY,
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    INTEGER NOT NULL
);

CREATE TABLE sessions (
    token_hash TEXT    PRIMARY KEY CHECK (length(token_hash) = 64),
    user_name  TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_user ON sessions (user_name);

CREATE TABLE api_tokens (
    hash       TEXT    PRIMARY KEY CHECK (length(hash) = 64),
    user_name  TEXT    REFERENCES users (name) ON DELETE CASCADE,
    agent_id   TEXT    REFERENCES agents (id),
    label      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    CHECK ((user_name IS NULL) <> (agent_id IS NULL))
);

CREATE TABLE alert_state (
    rule             TEXT    NOT NULL,
    subject          TEXT    NOT NULL,
    state            TEXT    NOT NULL CHECK (state IN ('firing', 'resolved')),
    since            INTEGER NOT NULL,
    last_notified_at INTEGER,
    PRIMARY KEY (rule, subject)
);
