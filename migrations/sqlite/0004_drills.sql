-- lifeboat coordinator store, SQLite schema v4: disaster-recovery drills. Must stay equivalent to
-- migrations/postgres/0004_drills.sql. A drill's own state is opaque JSON to the store (the
-- orchestrator owns it and updates it optimistically by `version`); a finished drill is sealed
-- once with its record (kept as exact text: its hash is over those bytes), the previous sealed
-- record's hash and the next `chain_seq`, so sealed drills form one hash chain.

CREATE TABLE drills (
    id            TEXT    PRIMARY KEY,
    plan          TEXT    NOT NULL,
    status        TEXT    NOT NULL
        CHECK (status IN ('scheduled', 'running', 'finished', 'aborted', 'not-ready', 'failed')),
    created_by    TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    scheduled_for INTEGER,
    started_at    INTEGER,
    finished_at   INTEGER,
    state         TEXT    NOT NULL,
    version       INTEGER NOT NULL,
    record        TEXT,
    record_hash   TEXT    CHECK (record_hash IS NULL OR length(record_hash) = 64),
    previous_hash TEXT    CHECK (previous_hash IS NULL OR length(previous_hash) = 64),
    chain_seq     INTEGER UNIQUE,
    bundle        BLOB,
    CHECK ((chain_seq IS NULL) = (record IS NULL)
       AND (chain_seq IS NULL) = (record_hash IS NULL)
       AND (chain_seq IS NULL) = (previous_hash IS NULL))
);
CREATE INDEX drills_created ON drills (created_at DESC, id DESC);
CREATE INDEX drills_active ON drills (status) WHERE status IN ('scheduled', 'running');

-- The tasks handed to agents in heartbeat answers until they are reported or withdrawn.
CREATE TABLE drill_tasks (
    task_id      TEXT    PRIMARY KEY,
    drill_id     TEXT    NOT NULL REFERENCES drills (id),
    host         TEXT    NOT NULL,
    task         TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    withdrawn_at INTEGER,
    report       TEXT,
    reported_at  INTEGER
);
CREATE INDEX drill_tasks_open ON drill_tasks (host)
    WHERE report IS NULL AND withdrawn_at IS NULL;
CREATE INDEX drill_tasks_drill ON drill_tasks (drill_id);

-- What happened to drills (reports, approvals, aborts, …), consumed in id order by the
-- orchestrator; append-only. Ids are taken from `drill_input_counter` in the appending
-- transaction: its row stays locked until that transaction ends, so ids become visible in
-- increasing order and a reader that has seen id n never sees a smaller one appear later (an
-- identity column does not promise that on PostgreSQL when appenders commit out of order).
CREATE TABLE drill_input_counter (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    last_id INTEGER NOT NULL
);
INSERT INTO drill_input_counter (id, last_id) VALUES (1, 0);

CREATE TABLE drill_inputs (
    id       INTEGER PRIMARY KEY,
    drill_id TEXT    NOT NULL REFERENCES drills (id),
    kind     TEXT    NOT NULL,
    actor    TEXT    NOT NULL,
    at       INTEGER NOT NULL,
    detail   TEXT    NOT NULL
);
CREATE INDEX drill_inputs_drill ON drill_inputs (drill_id, id);
CREATE TRIGGER drill_inputs_no_update BEFORE UPDATE ON drill_inputs
BEGIN
    SELECT RAISE(ABORT, 'drill_inputs is append-only');
END;
CREATE TRIGGER drill_inputs_no_delete BEFORE DELETE ON drill_inputs
BEGIN
    SELECT RAISE(ABORT, 'drill_inputs is append-only');
END;
-- A sealed drill's record, its links and its bundle never change, and it is never deleted.
CREATE TRIGGER drills_sealed_no_change
BEFORE UPDATE OF record, record_hash, previous_hash, chain_seq, bundle ON drills
WHEN OLD.chain_seq IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'a sealed drill record cannot be changed');
END;
CREATE TRIGGER drills_sealed_no_delete BEFORE DELETE ON drills
WHEN OLD.chain_seq IS NOT NULL
BEGIN
    SELECT RAISE(ABORT, 'a sealed drill record cannot be deleted');
END;
