-- lifeboat coordinator store, SQLite schema v2: commands waiting for an agent's next heartbeat.
-- Must stay equivalent to migrations/postgres/0002_commands.sql. A command is addressed to a
-- host (whichever unrevoked agent of that host heartbeats next takes it), stored once per
-- (host, command) until delivered, and deleted in the statement that hands it out.

CREATE TABLE pending_commands (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    host       TEXT    NOT NULL,
    command    TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (host, command)
);
