-- lifeboat coordinator store, PostgreSQL schema v2: commands waiting for an agent's next
-- heartbeat. Must stay equivalent to migrations/sqlite/0002_commands.sql. A command is addressed
-- to a host (whichever unrevoked agent of that host heartbeats next takes it), stored once per
-- (host, command) until delivered, and deleted in the statement that hands it out.

CREATE TABLE pending_commands (
    id         BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host       TEXT    NOT NULL,
    command    JSONB   NOT NULL,
    created_by TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    UNIQUE (host, command)
);
