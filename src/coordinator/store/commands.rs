//! Commands for agents (`backup-now`, …) waiting for the next heartbeat of their host.
//!
//! Two invariants, both held by single SQL statements so that no interleaving breaks them:
//! a command is queued only while the host has an unrevoked agent (`INSERT … SELECT … WHERE
//! EXISTS`), and a command is handed out at most once (`DELETE … RETURNING`: reading it and
//! deleting it are one statement, so of two concurrent heartbeats of one host only one gets it).
//! The same command for the same host is stored once until delivered.

use jiff::Timestamp;
use sqlx::types::Json;

use super::{
    CommandQueued, PendingCommand, Store, StoreError, from_micros, micros, with_pool, with_writer,
};
use crate::api::Command;

type CommandRow = (i64, String, Json<Command>, String, i64);

fn command_from_row(row: CommandRow) -> Result<PendingCommand, StoreError> {
    let (id, host, Json(command), created_by, created_at) = row;
    Ok(PendingCommand {
        id,
        host,
        command,
        created_by,
        created_at: from_micros(created_at)?,
    })
}

impl Store {
    /// Queues `command` for the next heartbeat of an agent of `host`, as asked by `created_by`
    /// at `now`. [`CommandQueued::NoAgent`] (nothing stored) when no unrevoked agent is
    /// enrolled for the host; [`CommandQueued::AlreadyQueued`] when the same command waits for
    /// the host already (it is not stored twice).
    pub async fn queue_command(
        &self,
        host: &str,
        command: &Command,
        created_by: &str,
        now: Timestamp,
    ) -> Result<CommandQueued, StoreError> {
        let answer = with_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let inserted: Option<i64> = sqlx::query_scalar(
                "INSERT INTO pending_commands (host, command, created_by, created_at)
                 SELECT $1, $2, $3, $4
                 WHERE EXISTS (SELECT 1 FROM agents WHERE host = $1 AND revoked_at IS NULL)
                 ON CONFLICT (host, command) DO NOTHING
                 RETURNING id",
            )
            .bind(host)
            .bind(Json(command))
            .bind(created_by)
            .bind(micros(now))
            .fetch_optional(&mut *tx)
            .await?;
            let answer = match inserted {
                Some(id) => CommandQueued::Queued(id),
                None => {
                    let agents: i64 = sqlx::query_scalar(
                        "SELECT COUNT(*) FROM agents WHERE host = $1 AND revoked_at IS NULL",
                    )
                    .bind(host)
                    .fetch_one(&mut *tx)
                    .await?;
                    if agents == 0 {
                        CommandQueued::NoAgent
                    } else {
                        CommandQueued::AlreadyQueued
                    }
                }
            };
            tx.commit().await?;
            answer
        });
        Ok(answer)
    }

    /// Takes every command waiting for `host`, oldest first: they are deleted by the statement
    /// that reads them, so each is handed out once. A host with nothing waiting (nearly every
    /// heartbeat) costs one read and no write.
    pub async fn take_commands(&self, host: &str) -> Result<Vec<PendingCommand>, StoreError> {
        let waiting: Option<i64> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT id FROM pending_commands WHERE host = $1 LIMIT 1")
                .bind(host)
                .fetch_optional(pool)
                .await?
        });
        if waiting.is_none() {
            return Ok(Vec::new());
        }
        let rows: Vec<CommandRow> = with_writer!(self, |pool| {
            sqlx::query_as(
                "DELETE FROM pending_commands WHERE host = $1
                 RETURNING id, host, command, created_by, created_at",
            )
            .bind(host)
            .fetch_all(pool)
            .await?
        });
        let mut commands = rows
            .into_iter()
            .map(command_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING promises no order.
        commands.sort_by_key(|c| c.id);
        Ok(commands)
    }

    /// The commands waiting for `host`, oldest first, without taking them.
    pub async fn pending_commands(&self, host: &str) -> Result<Vec<PendingCommand>, StoreError> {
        let rows: Vec<CommandRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, host, command, created_by, created_at FROM pending_commands
                 WHERE host = $1 ORDER BY id",
            )
            .bind(host)
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(command_from_row).collect()
    }
}
