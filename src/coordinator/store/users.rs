//! People (users with a role), their login sessions, and API tokens. Only hashes are stored:
//! passwords as PHC strings made by the caller, session and API tokens as [`TokenHash`]es.
//! Whether a user may log in (disabled, wrong password) is the caller's decision.

use jiff::Timestamp;

use super::{
    ApiToken, PasswordHash, Role, Session, Store, StoreError, TokenHash, TokenOwner, User,
    from_micros, micros, opt_from_micros, parse_uuid, stored_hash, with_pool, with_writer,
};

type UserRow = (String, String, String, bool, i64);

fn user_from_row(row: UserRow) -> Result<User, StoreError> {
    let (name, password_hash, role, disabled, created_at) = row;
    Ok(User {
        name,
        password_hash: PasswordHash::new(password_hash)
            .map_err(|_| StoreError::corrupt("a stored password hash is not a PHC string"))?,
        role: role.parse()?,
        disabled,
        created_at: from_micros(created_at)?,
    })
}

type SessionRow = (String, String, i64, i64);

fn session_from_row(row: SessionRow) -> Result<Session, StoreError> {
    let (hash, user, created_at, expires_at) = row;
    Ok(Session {
        token_hash: stored_hash(&hash)?,
        user,
        created_at: from_micros(created_at)?,
        expires_at: from_micros(expires_at)?,
    })
}

type ApiTokenRow = (
    String,
    Option<String>,
    Option<String>,
    String,
    i64,
    Option<i64>,
);

fn api_token_from_row(row: ApiTokenRow) -> Result<ApiToken, StoreError> {
    let (hash, user, agent, label, created_at, revoked_at) = row;
    let owner = match (user, agent) {
        (Some(user), None) => TokenOwner::User(user),
        (None, Some(agent)) => TokenOwner::Agent(parse_uuid(&agent)?),
        _ => {
            return Err(StoreError::corrupt(
                "an API token must have exactly one owner",
            ));
        }
    };
    Ok(ApiToken {
        hash: stored_hash(&hash)?,
        owner,
        label,
        created_at: from_micros(created_at)?,
        revoked_at: opt_from_micros(revoked_at)?,
    })
}

fn not_found(what: String, changed: u64) -> Result<(), StoreError> {
    if changed == 0 {
        Err(StoreError::NotFound(what))
    } else {
        Ok(())
    }
}

impl Store {
    /// Creates `user`. `Conflict` if the name is taken.
    pub async fn create_user(&self, user: &User) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO users (name, password_hash, role, disabled, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&user.name)
            .bind(user.password_hash.as_str())
            .bind(user.role.as_str())
            .bind(user.disabled)
            .bind(micros(user.created_at))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn user(&self, name: &str) -> Result<Option<User>, StoreError> {
        let row: Option<UserRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT name, password_hash, role, disabled, created_at FROM users WHERE name = $1",
            )
            .bind(name)
            .fetch_optional(pool)
            .await?
        });
        row.map(user_from_row).transpose()
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<User>, StoreError> {
        let rows: Vec<UserRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT name, password_hash, role, disabled, created_at FROM users ORDER BY name",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(user_from_row).collect()
    }

    /// Replaces the user's password hash. `NotFound` if unknown.
    pub async fn set_user_password(
        &self,
        name: &str,
        hash: &PasswordHash,
    ) -> Result<(), StoreError> {
        let n = with_writer!(self, |pool| {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE name = $2")
                .bind(hash.as_str())
                .bind(name)
                .execute(pool)
                .await?
                .rows_affected()
        });
        not_found(format!("user {name}"), n)
    }

    /// Changes the user's role. `NotFound` if unknown.
    pub async fn set_user_role(&self, name: &str, role: Role) -> Result<(), StoreError> {
        let n = with_writer!(self, |pool| {
            sqlx::query("UPDATE users SET role = $1 WHERE name = $2")
                .bind(role.as_str())
                .bind(name)
                .execute(pool)
                .await?
                .rows_affected()
        });
        not_found(format!("user {name}"), n)
    }

    /// Disables (or enables) the user; disabling also ends every session of the user.
    /// `NotFound` if unknown.
    pub async fn set_user_disabled(&self, name: &str, disabled: bool) -> Result<(), StoreError> {
        let n = with_writer!(self, |pool| {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("UPDATE users SET disabled = $1 WHERE name = $2")
                .bind(disabled)
                .bind(name)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if disabled {
                sqlx::query("DELETE FROM sessions WHERE user_name = $1")
                    .bind(name)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            n
        });
        not_found(format!("user {name}"), n)
    }

    /// Stores a session. `NotFound` if the user is unknown, `Conflict` if the hash exists.
    pub async fn create_session(&self, session: &Session) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_name, created_at, expires_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(session.token_hash.as_str())
            .bind(&session.user)
            .bind(micros(session.created_at))
            .bind(micros(session.expires_at))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The session with this token hash if it has not expired at `now`.
    pub async fn session(
        &self,
        hash: &TokenHash,
        now: Timestamp,
    ) -> Result<Option<Session>, StoreError> {
        let row: Option<SessionRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT token_hash, user_name, created_at, expires_at FROM sessions
                 WHERE token_hash = $1 AND expires_at > $2",
            )
            .bind(hash.as_str())
            .bind(micros(now))
            .fetch_optional(pool)
            .await?
        });
        row.map(session_from_row).transpose()
    }

    /// Ends a session (logout); ending an unknown one is not an error.
    pub async fn delete_session(&self, hash: &TokenHash) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(hash.as_str())
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Deletes the sessions expired at `now`; returns how many.
    pub async fn delete_expired_sessions(&self, now: Timestamp) -> Result<u64, StoreError> {
        Ok(with_writer!(self, |pool| {
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(micros(now))
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    /// Stores an API token (`revoked_at` is ignored). `NotFound` if its owner is unknown,
    /// `Conflict` if the hash exists.
    pub async fn create_api_token(&self, token: &ApiToken) -> Result<(), StoreError> {
        let (user, agent) = match &token.owner {
            TokenOwner::User(name) => (Some(name.clone()), None),
            TokenOwner::Agent(id) => (None, Some(id.to_string())),
        };
        with_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO api_tokens (hash, user_name, agent_id, label, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(token.hash.as_str())
            .bind(user.as_deref())
            .bind(agent.as_deref())
            .bind(&token.label)
            .bind(micros(token.created_at))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    /// The API token with this hash, **revoked or not** (check `revoked_at`).
    pub async fn api_token(&self, hash: &TokenHash) -> Result<Option<ApiToken>, StoreError> {
        let row: Option<ApiTokenRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT hash, user_name, agent_id, label, created_at, revoked_at FROM api_tokens
                 WHERE hash = $1",
            )
            .bind(hash.as_str())
            .fetch_optional(pool)
            .await?
        });
        row.map(api_token_from_row).transpose()
    }

    /// Every API token, oldest first.
    pub async fn list_api_tokens(&self) -> Result<Vec<ApiToken>, StoreError> {
        let rows: Vec<ApiTokenRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT hash, user_name, agent_id, label, created_at, revoked_at FROM api_tokens
                 ORDER BY created_at, hash",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(api_token_from_row).collect()
    }

    /// Revokes an API token at `now` (kept if revoked before). `NotFound` if unknown.
    pub async fn revoke_api_token(
        &self,
        hash: &TokenHash,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let n = with_writer!(self, |pool| {
            sqlx::query(
                "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE hash = $2",
            )
            .bind(micros(now))
            .bind(hash.as_str())
            .execute(pool)
            .await?
            .rows_affected()
        });
        not_found("API token".into(), n)
    }
}
