-- lifeboat coordinator store, PostgreSQL schema v4: disaster-recovery drills. Must stay
-- equivalent to migrations/sqlite/0004_drills.sql. A drill's own state is opaque JSON to the
-- store (the orchestrator owns it and updates it optimistically by `version`); a finished drill
-- is sealed once with its record (kept as exact TEXT, not JSONB: its hash is over those bytes),
-- the previous sealed record's hash and the next `chain_seq`, so sealed drills form one hash
-- chain.

CREATE TABLE drills (
    id            TEXT    PRIMARY KEY,
    plan          TEXT    NOT NULL,
    status        TEXT    NOT NULL
        CHECK (status IN ('scheduled', 'running', 'finished', 'aborted', 'not-ready', 'failed')),
    created_by    TEXT    NOT NULL,
    created_at    BIGINT  NOT NULL,
    scheduled_for BIGINT,
    started_at    BIGINT,
    finished_at   BIGINT,
    state         JSONB   NOT NULL,
    version       BIGINT  NOT NULL,
    record        TEXT,
    record_hash   TEXT    CHECK (record_hash IS NULL OR length(record_hash) = 64),
    previous_hash TEXT    CHECK (previous_hash IS NULL OR length(previous_hash) = 64),
    chain_seq     BIGINT  UNIQUE,
    bundle        BYTEA,
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
    task         JSONB   NOT NULL,
    created_at   BIGINT  NOT NULL,
    withdrawn_at BIGINT,
    report       JSONB,
    reported_at  BIGINT
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
    last_id BIGINT  NOT NULL
);
INSERT INTO drill_input_counter (id, last_id) VALUES (1, 0);

CREATE TABLE drill_inputs (
    id       BIGINT  PRIMARY KEY,
    drill_id TEXT    NOT NULL REFERENCES drills (id),
    kind     TEXT    NOT NULL,
    actor    TEXT    NOT NULL,
    at       BIGINT  NOT NULL,
    detail   JSONB   NOT NULL
);
CREATE INDEX drill_inputs_drill ON drill_inputs (drill_id, id);
CREATE FUNCTION drill_inputs_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'drill_inputs is append-only';
END;
$$;
CREATE TRIGGER drill_inputs_no_change BEFORE UPDATE OR DELETE ON drill_inputs
    FOR EACH ROW EXECUTE FUNCTION drill_inputs_append_only();
CREATE TRIGGER drill_inputs_no_truncate BEFORE TRUNCATE ON drill_inputs
    FOR EACH STATEMENT EXECUTE FUNCTION drill_inputs_append_only();

-- A sealed drill's record, its links and its bundle never change, and it is never deleted.
CREATE FUNCTION drills_sealed_unchanged() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'a sealed drill record cannot be deleted';
    END IF;
    IF NEW.record IS DISTINCT FROM OLD.record
       OR NEW.record_hash IS DISTINCT FROM OLD.record_hash
       OR NEW.previous_hash IS DISTINCT FROM OLD.previous_hash
       OR NEW.chain_seq IS DISTINCT FROM OLD.chain_seq
       OR NEW.bundle IS DISTINCT FROM OLD.bundle THEN
        RAISE EXCEPTION 'a sealed drill record cannot be changed';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER drills_sealed_no_change BEFORE UPDATE OR DELETE ON drills
    FOR EACH ROW WHEN (OLD.chain_seq IS NOT NULL) EXECUTE FUNCTION drills_sealed_unchanged();
