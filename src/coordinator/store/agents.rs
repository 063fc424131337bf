//! Agents, their one-time enrolment tokens, and what their heartbeats report.
//!
//! Enrolment is the one multi-row invariant here: consuming the token and creating the agent
//! happen in one transaction, and the token is claimed by a conditional `UPDATE ... WHERE used_at
//! IS NULL`, so of any number of concurrent claims exactly one changes the row.

use jiff::{SignedDuration, Timestamp};
use sqlx::types::Json;
use uuid::Uuid;

use super::{
    Agent, Enrolment, EnrolmentRefusal, EnrolmentToken, NewAgent, Page, Store, StoreError,
    StoredHeartbeat, StoredSystemStatus, TokenHash, from_micros, micros, opt_from_micros,
    parse_uuid, stored_hash, with_pool, with_writer,
};
use crate::api::{Heartbeat, SystemStatus};

const AGENT_COLUMNS: &str = "id, host, site, token_hash, enrolled_at, version, \
                             last_heartbeat_at, clock_offset_ms, revoked_at";

type AgentRow = (
    String,
    String,
    String,
    String,
    i64,
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

fn agent_from_row(row: AgentRow) -> Result<Agent, StoreError> {
    let (id, host, site, token_hash, enrolled_at, version, last_hb, offset_ms, revoked_at) = row;
    Ok(Agent {
        id: parse_uuid(&id)?,
        host,
        site,
        token_hash: stored_hash(&token_hash)?,
        enrolled_at: from_micros(enrolled_at)?,
        version,
        last_heartbeat_at: opt_from_micros(last_hb)?,
        clock_offset: offset_ms.map(SignedDuration::from_millis),
        revoked_at: opt_from_micros(revoked_at)?,
    })
}

const TOKEN_COLUMNS: &str =
    "hash, host, site, created_by, created_at, expires_at, used_at, used_by";

type TokenRow = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
);

fn token_from_row(row: TokenRow) -> Result<EnrolmentToken, StoreError> {
    let (hash, host, site, created_by, created_at, expires_at, used_at, used_by) = row;
    Ok(EnrolmentToken {
        hash: stored_hash(&hash)?,
        host,
        site,
        created_by,
        created_at: from_micros(created_at)?,
        expires_at: from_micros(expires_at)?,
        used_at: opt_from_micros(used_at)?,
        used_by: used_by.as_deref().map(parse_uuid).transpose()?,
    })
}

impl Store {
    /// Stores a new enrolment token (issued by `token.created_by` for `token.host`; `used_*`
    /// are ignored). `Conflict` if the hash is stored already.
    pub async fn create_enrolment_token(&self, token: &EnrolmentToken) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO enrolment_tokens (hash, host, site, created_by, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(token.hash.as_str())
            .bind(&token.host)
            .bind(&token.site)
            .bind(&token.created_by)
            .bind(micros(token.created_at))
            .bind(micros(token.expires_at))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The enrolment token with this hash, used or not.
    pub async fn enrolment_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<EnrolmentToken>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM enrolment_tokens WHERE hash = $1");
        let row: Option<TokenRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(hash.as_str())
                .fetch_optional(pool)
                .await?
        });
        row.map(token_from_row).transpose()
    }

    /// Consumes the enrolment token `token` at `now` and creates the agent `agent` at the token's
    /// host and site, in one transaction. Of concurrent calls with one token exactly one gets
    /// [`Enrolment::Enrolled`]; the others get [`EnrolmentRefusal::AlreadyUsed`] and change
    /// nothing. `Conflict` if the agent id or token hash exists already (the token then stays
    /// unused).
    pub async fn enrol_agent(
        &self,
        token: &TokenHash,
        agent: &NewAgent,
        now: Timestamp,
    ) -> Result<Enrolment, StoreError> {
        let id = agent.id.to_string();
        let sql = format!(
            "INSERT INTO agents (id, host, site, token_hash, enrolled_at, version)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {AGENT_COLUMNS}"
        );
        let enrolled: Option<AgentRow> = with_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            // The claim comes first: on SQLite it takes the write lock before anything is read.
            let claimed: Option<(String, String)> = sqlx::query_as(
                "UPDATE enrolment_tokens SET used_at = $1
                 WHERE hash = $2 AND used_at IS NULL AND expires_at > $1
                 RETURNING host, site",
            )
            .bind(micros(now))
            .bind(token.as_str())
            .fetch_optional(&mut *tx)
            .await?;
            match claimed {
                None => None,
                Some((host, site)) => {
                    let row: AgentRow = sqlx::query_as(&sql)
                        .bind(&id)
                        .bind(&host)
                        .bind(&site)
                        .bind(agent.token_hash.as_str())
                        .bind(micros(now))
                        .bind(&agent.version)
                        .fetch_one(&mut *tx)
                        .await?;
                    sqlx::query("UPDATE enrolment_tokens SET used_by = $1 WHERE hash = $2")
                        .bind(&id)
                        .bind(token.as_str())
                        .execute(&mut *tx)
                        .await?;
                    tx.commit().await?;
                    Some(row)
                }
            }
        });
        if let Some(row) = enrolled {
            return Ok(Enrolment::Enrolled(agent_from_row(row)?));
        }
        // Not claimed: say why. A token never becomes unused again, so this cannot race into a
        // wrong answer except "expired" for one that was used meanwhile, which is also refused.
        let refusal = match self.enrolment_token(token).await? {
            None => EnrolmentRefusal::Unknown,
            Some(t) if t.used_at.is_some() => EnrolmentRefusal::AlreadyUsed,
            Some(_) => EnrolmentRefusal::Expired,
        };
        Ok(Enrolment::Refused(refusal))
    }

    /// The agent with this id, revoked or not.
    pub async fn agent(&self, id: Uuid) -> Result<Option<Agent>, StoreError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE id = $1");
        let row: Option<AgentRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(id.to_string())
                .fetch_optional(pool)
                .await?
        });
        row.map(agent_from_row).transpose()
    }

    /// The most recent heartbeat of any unrevoked agent enrolled for `host` (receive time),
    /// `None` when none has sent one.
    pub async fn last_heartbeat_of_host(
        &self,
        host: &str,
    ) -> Result<Option<Timestamp>, StoreError> {
        let at: Option<Option<i64>> = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT MAX(last_heartbeat_at) FROM agents WHERE host = $1 AND revoked_at IS NULL",
            )
            .bind(host)
            .fetch_optional(pool)
            .await?
        });
        at.flatten().map(super::from_micros).transpose()
    }

    /// The agent whose token has this hash, **revoked or not**: the caller must refuse a revoked
    /// agent ([`Agent::is_revoked`]) and may audit the attempt.
    pub async fn agent_by_token(&self, hash: &TokenHash) -> Result<Option<Agent>, StoreError> {
        let sql = format!("SELECT {AGENT_COLUMNS} FROM agents WHERE token_hash = $1");
        let row: Option<AgentRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(hash.as_str())
                .fetch_optional(pool)
                .await?
        });
        row.map(agent_from_row).transpose()
    }

    /// Agents ordered by host, then id.
    pub async fn list_agents(&self, page: Page) -> Result<Vec<Agent>, StoreError> {
        let (limit, offset) = page.sql();
        let sql =
            format!("SELECT {AGENT_COLUMNS} FROM agents ORDER BY host, id LIMIT $1 OFFSET $2");
        let rows: Vec<AgentRow> = with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(agent_from_row).collect()
    }

    /// Marks the agent revoked at `now` (kept if it was revoked before). `NotFound` if unknown.
    pub async fn revoke_agent(&self, id: Uuid, now: Timestamp) -> Result<(), StoreError> {
        let done = with_writer!(self, |pool| {
            sqlx::query("UPDATE agents SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
                .bind(micros(now))
                .bind(id.to_string())
                .execute(pool)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(StoreError::NotFound(format!("agent {id}")));
        }
        Ok(())
    }

    /// Records a heartbeat of `agent` received at `received_at`: the agent's last heartbeat
    /// time, version and clock offset, its latest heartbeat, and the status of each system it
    /// lists (latest report wins), in one transaction. `NotFound` if the agent is unknown.
    pub async fn record_heartbeat(
        &self,
        agent: Uuid,
        received_at: Timestamp,
        clock_offset: SignedDuration,
        heartbeat: &Heartbeat,
    ) -> Result<(), StoreError> {
        let id = agent.to_string();
        let offset_ms = i64::try_from(clock_offset.as_millis()).unwrap_or(i64::MAX);
        let at = micros(received_at);
        let found = with_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let found = sqlx::query(
                "UPDATE agents SET last_heartbeat_at = $1, version = $2, clock_offset_ms = $3
                 WHERE id = $4",
            )
            .bind(at)
            .bind(&heartbeat.version)
            .bind(offset_ms)
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if found > 0 {
                sqlx::query(
                    "INSERT INTO agent_heartbeats (agent_id, received_at, heartbeat)
                     VALUES ($1, $2, $3)
                     ON CONFLICT (agent_id) DO UPDATE
                     SET received_at = excluded.received_at, heartbeat = excluded.heartbeat",
                )
                .bind(&id)
                .bind(at)
                .bind(Json(heartbeat))
                .execute(&mut *tx)
                .await?;
                for status in &heartbeat.systems {
                    sqlx::query(
                        "INSERT INTO system_status (system, agent_id, reported_at, status)
                         VALUES ($1, $2, $3, $4)
                         ON CONFLICT (system) DO UPDATE
                         SET agent_id = excluded.agent_id, reported_at = excluded.reported_at,
                             status = excluded.status",
                    )
                    .bind(status.system.as_str())
                    .bind(&id)
                    .bind(at)
                    .bind(Json(status))
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?;
            }
            found
        });
        if found == 0 {
            return Err(StoreError::NotFound(format!("agent {agent}")));
        }
        Ok(())
    }

    /// The latest heartbeat of `agent`, if it sent one.
    pub async fn latest_heartbeat(
        &self,
        agent: Uuid,
    ) -> Result<Option<StoredHeartbeat>, StoreError> {
        let row: Option<(i64, Json<Heartbeat>)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT received_at, heartbeat FROM agent_heartbeats WHERE agent_id = $1",
            )
            .bind(agent.to_string())
            .fetch_optional(pool)
            .await?
        });
        row.map(|(at, Json(heartbeat))| {
            Ok(StoredHeartbeat {
                agent_id: agent,
                received_at: from_micros(at)?,
                heartbeat,
            })
        })
        .transpose()
    }

    /// The latest heartbeat of every agent that is not revoked, with the agent's host (as
    /// enrolled, not as the heartbeat claims it), ordered by host: one query for the whole fleet.
    pub async fn latest_heartbeats(&self) -> Result<Vec<(String, StoredHeartbeat)>, StoreError> {
        let rows: Vec<(String, String, i64, Json<Heartbeat>)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT a.host, h.agent_id, h.received_at, h.heartbeat
                 FROM agent_heartbeats h JOIN agents a ON a.id = h.agent_id
                 WHERE a.revoked_at IS NULL ORDER BY a.host, h.agent_id",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(host, agent_id, at, Json(heartbeat))| {
                Ok((
                    host,
                    StoredHeartbeat {
                        agent_id: parse_uuid(&agent_id)?,
                        received_at: from_micros(at)?,
                        heartbeat,
                    },
                ))
            })
            .collect()
    }

    /// The latest reported status of every system, ordered by system id.
    pub async fn system_statuses(&self) -> Result<Vec<StoredSystemStatus>, StoreError> {
        let rows: Vec<(String, String, i64, Json<SystemStatus>)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT system, agent_id, reported_at, status FROM system_status ORDER BY system",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(system, agent_id, at, Json(status))| {
                Ok(StoredSystemStatus {
                    system,
                    agent_id: parse_uuid(&agent_id)?,
                    reported_at: from_micros(at)?,
                    status,
                })
            })
            .collect()
    }
}
