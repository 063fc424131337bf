//! Who a person is and what they may do on the coordinator: password hashing (Argon2id, PHC
//! strings), session and API tokens, and the role matrix that every people-endpoint goes
//! through.
//!
//! # Invariants
//!
//! * A password or token never leaves this module in clear except once, to the caller that
//!   just created it (to show it to its owner). The store only ever sees a [`PasswordHash`] or a
//!   [`TokenHash`].
//! * Every route of the people routers ([`super::people_api`], [`super::fleet_api`],
//!   [`super::drills_api`], the alerts API, the dashboard's [`crate::web`]) is in
//!   [`ROLE_MATRIX`]; the [`gate`] middleware looks each request up there and *fails closed*: a
//!   route missing from the matrix answers 500, never runs its handler. A unit test checks that
//!   the routers and the matrix list the same routes.
//! * Roles are ordered viewer < operator < admin; a rule names the least role it needs.
//! * People's credentials are sessions and API tokens *owned by a user*. An agent's token is
//!   refused here (401), and a person's token is refused by the agent endpoints (they look in
//!   the agents table only).
//! * A wrong, expired or revoked credential is a 401 and an insufficient role a 403, each with an
//!   audit entry; the entry names the credential by a hash prefix, never the token.
//!
//! This module does no SQL (it calls [`Store`]) and holds no handler logic.

use std::sync::{Arc, OnceLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash as Phc, PasswordHasher, PasswordVerifier, SaltString};
use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodFilter;
use jiff::{SignedDuration, Timestamp};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::store::{
    NewAuditEntry, PasswordHash, Role, Store, StoreError, TokenHash, TokenOwner, User,
};
use crate::api::{ApiError, ErrorCode};
use crate::clock::Clock;
use crate::secret::Secret;

/// How long a login session lasts.
pub const SESSION_TTL: SignedDuration = SignedDuration::from_hours(12);
/// The shortest password accepted (characters).
pub const MIN_PASSWORD_CHARS: usize = 12;
/// The longest password accepted (bytes): hashing cost must not be chosen by the sender.
pub const MAX_PASSWORD_BYTES: usize = 1024;

// ---------------------------------------------------------------------------------------------
// Passwords

/// Why a password was not hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("a password needs at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("a password may have at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// Hashes `password` with Argon2id (the crate's defaults: 19 MiB, 2 passes, 1 lane) and a
/// random 16-byte salt; the result is a PHC string. CPU-heavy: call it from `spawn_blocking`
/// (see [`hash_password_blocking`]).
pub fn hash_password(password: &Secret) -> Result<PasswordHash, PasswordError> {
    let clear = password.expose();
    if clear.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    if clear.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    // uuid v4 takes its 122 random bits from the operating system's CSPRNG (getrandom).
    let salt = SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes())
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    let phc = Argon2::default()
        .hash_password(clear.as_bytes(), &salt)
        .map_err(|e| PasswordError::Hash(e.to_string()))?;
    PasswordHash::new(phc.to_string()).map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches `hash`. The comparison of the derived key is constant-time (the
/// `password-hash` crate's `Output` equality); an unparsable hash matches nothing.
pub fn verify_password(password: &Secret, hash: &PasswordHash) -> bool {
    let Ok(parsed) = Phc::new(hash.as_str()) else {
        return false;
    };
    password.expose().len() <= MAX_PASSWORD_BYTES
        && Argon2::default()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok()
}

/// [`hash_password`] on the blocking pool.
pub async fn hash_password_blocking(password: Secret) -> Result<PasswordHash, PasswordError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| PasswordError::Hash(format!("the hashing task failed: {e}")))?
}

/// Checks `password` against `hash` on the blocking pool. Without a hash (no such user) it
/// still verifies, against a fixed hash, so that the answer takes as long either way and does
/// not tell which user names exist.
pub async fn check_password(password: Secret, hash: Option<PasswordHash>) -> bool {
    tokio::task::spawn_blocking(move || match hash {
        Some(hash) => verify_password(&password, &hash),
        None => {
            if let Some(dummy) = dummy_hash() {
                verify_password(&password, dummy);
            }
            false
        }
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> Option<&'static PasswordHash> {
    static DUMMY: OnceLock<Option<PasswordHash>> = OnceLock::new();
    DUMMY
        .get_or_init(|| hash_password(&Secret::new(uuid::Uuid::new_v4().to_string())).ok())
        .as_ref()
}

// ---------------------------------------------------------------------------------------------
// Users and tokens

/// Why a user was not created.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error(
        "invalid user name {0:?}: use 1 to 64 characters a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
    )]
    InvalidName(String),
    #[error(transparent)]
    Password(#[from] PasswordError),
}

/// Checks a user name: 1 to 64 of `a-z 0-9 . _ -`, starting with a letter or digit.
pub fn check_user_name(name: &str) -> Result<(), UserError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(UserError::InvalidName(name.chars().take(80).collect()))
    }
}

/// A new (enabled) user with its password hashed; the caller stores and audits it.
pub async fn new_user(
    name: &str,
    role: Role,
    password: Secret,
    now: Timestamp,
) -> Result<User, UserError> {
    check_user_name(name)?;
    Ok(User {
        name: name.to_string(),
        password_hash: hash_password_blocking(password).await?,
        role,
        disabled: false,
        created_at: now,
    })
}

/// What a new bearer token is for; the prefix tells people which kind they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Session,
    Api,
}

/// A new random bearer token: a kind prefix and 244 random bits (two uuid v4, from the OS
/// CSPRNG) in hex.
pub fn new_token(kind: TokenKind) -> Secret {
    let prefix = match kind {
        TokenKind::Session => "lbs-",
        TokenKind::Api => "lbt-",
    };
    Secret::new(format!(
        "{prefix}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    ))
}

/// The public id of an API token (16 hex digits): derived from its stored hash by a second,
/// domain-separated hash, so it names the token in URLs and listings without revealing the
/// stored hash.
pub fn token_id(hash: &TokenHash) -> String {
    let mut h = Sha256::new();
    h.update(b"lifeboat api-token id\0");
    h.update(hash.as_str().as_bytes());
    hex::encode(h.finalize())[..16].to_string()
}

// ---------------------------------------------------------------------------------------------
// The role matrix

/// `POST`: name and password → a session token.
pub const LOGIN_PATH: &str = "/api/v1/login";
/// `POST`: ends the caller's session.
pub const LOGOUT_PATH: &str = "/api/v1/logout";
/// `GET` the users, `POST` a new one.
pub const USERS_PATH: &str = "/api/v1/users";
/// `PATCH` a user's role, disabled flag or password.
pub const USER_PATH: &str = "/api/v1/users/{name}";
/// `GET` the API tokens, `POST` a new one (shown once).
pub const TOKENS_PATH: &str = "/api/v1/tokens";
/// `DELETE`: revokes an API token by its id.
pub const TOKEN_PATH: &str = "/api/v1/tokens/{id}";
/// `GET`: the audit log, newest first.
pub const AUDIT_PATH: &str = "/api/v1/audit";
/// `GET`: the enrolled agents.
pub const AGENTS_PATH: &str = "/api/v1/agents";
/// `POST`: revokes an agent (its token is refused from then on).
pub const AGENT_REVOKE_PATH: &str = "/api/v1/agents/{id}/revoke";
/// `POST`: issues a one-time enrolment token for a host (shown once).
pub const ENROLMENT_TOKENS_PATH: &str = "/api/v1/enrolment-tokens";

/// `GET`: the fleet summary of the latest assessment sweep.
pub const FLEET_PATH: &str = "/api/v1/fleet";
/// `GET`: the policy's sites with their systems and agents.
pub const SITES_PATH: &str = "/api/v1/sites";
/// `GET`: the policy's repositories (never a credential).
pub const REPOSITORIES_PATH: &str = "/api/v1/repositories";
/// `GET`: the systems with their status per scenario, filtered and paged.
pub const SYSTEMS_PATH: &str = "/api/v1/systems";
/// `GET`: one system: its policy, full assessment, agent health and last runs.
pub const SYSTEM_PATH: &str = "/api/v1/systems/{id}";
/// `POST`: asks the system's agent to back it up at its next heartbeat.
pub const BACKUP_NOW_PATH: &str = "/api/v1/systems/{id}/backup-now";
/// `GET`: stored run records, newest first, keyset-paged.
pub const RUN_RECORDS_PATH: &str = "/api/v1/runs";
/// `GET`: a system's snapshot inventory, built from its run records.
pub const SNAPSHOTS_PATH: &str = "/api/v1/snapshots";
/// `GET`: every system's assessment per scenario, flat.
pub const ASSESSMENTS_PATH: &str = "/api/v1/assessments";
/// `GET`: the policy in force: digest, files, counts.
pub const POLICY_PATH: &str = "/api/v1/policy";

/// `GET`: the alert states (`?state=firing|resolved`).
pub const ALERTS_PATH: &str = "/api/v1/alerts";

/// `GET`: the drill plans of the policy in force, with when each is due.
pub const DRILL_PLANS_PATH: &str = "/api/v1/drill-plans";
/// `GET`: what a drill of the plan would do now (restore points, estimated time).
pub const DRILL_PREVIEW_PATH: &str = "/api/v1/drill-plans/{plan}/preview";
/// `GET` the drills, `POST` to start (or schedule) one.
pub const DRILLS_PATH: &str = "/api/v1/drills";
/// `GET`: one drill with its live state and seal.
pub const DRILL_PATH: &str = "/api/v1/drills/{id}";
/// `POST`: approves a drill's gate.
pub const DRILL_APPROVE_PATH: &str = "/api/v1/drills/{id}/approve";
/// `POST`: aborts a drill.
pub const DRILL_ABORT_PATH: &str = "/api/v1/drills/{id}/abort";
/// `GET`: a sealed drill's record as stored (JSON).
pub const DRILL_RECORD_PATH: &str = "/api/v1/drills/{id}/record";
/// `GET`: a sealed drill's evidence bundle (tar + zstd).
pub const DRILL_BUNDLE_PATH: &str = "/api/v1/drills/{id}/bundle";
/// `GET`: a sealed drill's record as an HTML page.
pub const DRILL_REPORT_PATH: &str = "/api/v1/drills/{id}/report";
/// `GET`: verifies the hash chain of sealed drill records.
pub const DRILL_CHAIN_PATH: &str = "/api/v1/drills/chain";
/// `GET`: drills due by cadence, the regulatory calendar, systems never drilled or overdue.
pub const DRILL_CALENDAR_PATH: &str = "/api/v1/drill-calendar";
/// `GET`: the quarterly recovery-objectives report (HTML, PDF, CSV or JSON).
pub const REPORTS_QUARTERLY_PATH: &str = "/api/v1/reports/quarterly";

/// The dashboard ([`crate::web`]): server-rendered pages for people, who carry their session in
/// a cookie instead of a bearer token. `GET /` redirects to [`UI_HOME_PATH`].
pub const UI_ROOT_PATH: &str = "/";
/// `GET`: the fleet overview and the compliance heat map.
pub const UI_HOME_PATH: &str = "/ui";
/// `GET` the login form, `POST` it.
pub const UI_LOGIN_PATH: &str = "/ui/login";
/// `POST`: ends the session.
pub const UI_LOGOUT_PATH: &str = "/ui/logout";
/// `GET`: systems by tier with their exposure per scenario and the reasons.
pub const UI_SYSTEMS_PATH: &str = "/ui/systems";
/// `GET`: one system's assessment, runs, snapshots, checks and drill results.
pub const UI_SYSTEM_PATH: &str = "/ui/systems/{id}";
/// `GET` the drill calendar and list, `POST` to start a drill.
pub const UI_DRILLS_PATH: &str = "/ui/drills";
/// `GET`: one drill's live timeline, steps and gates.
pub const UI_DRILL_PATH: &str = "/ui/drills/{id}";
/// `POST`: approves a drill's gate (the same drill input as [`DRILL_APPROVE_PATH`]).
pub const UI_DRILL_APPROVE_PATH: &str = "/ui/drills/{id}/approve";
/// `POST`: aborts a drill (the same drill input as [`DRILL_ABORT_PATH`]).
pub const UI_DRILL_ABORT_PATH: &str = "/ui/drills/{id}/abort";
/// Whether `path` (a route pattern) is one of the dashboard's pages rather than the API: the
/// pages are for browsers and are not in the OpenAPI document.
pub fn is_dashboard_path(path: &str) -> bool {
    path == UI_ROOT_PATH || path == UI_HOME_PATH || path.starts_with("/ui/")
}

/// `GET`: a sealed drill's report (`?lang=en|zh-CN&format=html|pdf`), for the browser.
pub const UI_DRILL_REPORT_PATH: &str = "/ui/drills/{id}/report";
/// `GET`: open and recent alerts.
pub const UI_ALERTS_PATH: &str = "/ui/alerts";
/// `GET`: the audit log, paged.
pub const UI_AUDIT_PATH: &str = "/ui/audit";
/// `GET`: the reports to download.
pub const UI_REPORTS_PATH: &str = "/ui/reports";
/// `GET`: the quarterly report, for the browser (its session cookie instead of a token).
pub const UI_QUARTERLY_PATH: &str = "/ui/reports/quarterly";

/// The HTTP methods the people API uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Patch,
    Delete,
}

impl Verb {
    pub fn filter(self) -> MethodFilter {
        match self {
            Verb::Get => MethodFilter::GET,
            Verb::Post => MethodFilter::POST,
            Verb::Patch => MethodFilter::PATCH,
            Verb::Delete => MethodFilter::DELETE,
        }
    }

    pub fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Patch => Method::PATCH,
            Verb::Delete => Method::DELETE,
        }
    }
}

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (the login itself).
    Public,
    /// A person whose role is at least this one.
    AtLeast(Role),
}

/// One line of the role matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub verb: Verb,
    /// The route as the router names it (`{param}` segments).
    pub path: &'static str,
    pub access: Access,
}

const fn rule(verb: Verb, path: &'static str, access: Access) -> Rule {
    Rule { verb, path, access }
}

/// Every people-endpoint and the least role that may call it. Reading the audit log, the users
/// and the tokens is an admin's privileged read; viewers read the fleet; operators act on it
/// (enrolment); admins change people, tokens and agents' standing.
pub const ROLE_MATRIX: &[Rule] = &[
    rule(Verb::Post, LOGIN_PATH, Access::Public),
    rule(Verb::Post, LOGOUT_PATH, Access::AtLeast(Role::Viewer)),
    rule(Verb::Get, AGENTS_PATH, Access::AtLeast(Role::Viewer)),
    rule(
        Verb::Post,
        ENROLMENT_TOKENS_PATH,
        Access::AtLeast(Role::Operator),
    ),
    rule(Verb::Get, FLEET_PATH, Access::AtLeast(Role::Viewer)),
    rule(Verb::Get, SITES_PATH, Access::AtLeast(Role::Viewer)),
    rule(Verb::Get, REPOSITORIES_PATH, Access::AtLeast(Role::Viewer)),
    rule(Verb::Get, SYSTEMS_PATH, Access::AtLeast(Role::Viewer)),
    rule(Verb::Get, SYSTEM_PATH, Access::AtLeast(Role::Viewer)),
    rule(Verb::Get, RUN_RECORDS_PATH, Access::AtLeast(Role::Viewer)),
    rule(Verb::Get, SNAPSHOTS_PATH, Access::AtLeast(Role::Viewer)),
    rule(Verb::Get, ASSESSMENTS_PATH, Access::AtLeast(Role::Viewer)),
    rule(Verb::Get, POLICY_PATH, Access::AtLeast(Role::Operator)),
    rule(Verb::Post, BACKUP_NOW_PATH, Access::AtLeast(Role::Operator)),
    rule(Verb::Get, ALERTS_PATH, Access::AtLeast(Role::Viewer)),
    rule(Verb::Get, DRILL_PLANS_PATH, Access::AtLeast(Role::Viewer)),
    rule(
        Verb::Get,
        DRILL_PREVIEW_PATH,
        Access::AtLeast(Role::Operator),
    ),
    rule(Verb::Get, DRILLS_PATH, Access::AtLeast(Role::Viewer)),
    rule(Verb::Post, DRILLS_PATH, Access::AtLeast(Role::Operator)),
    rule(Verb::Get, DRILL_PATH, Access::AtLeast(Role::Viewer)),
    rule(
        Verb::Post,
        DRILL_APPROVE_PATH,
        Access::AtLeast(Role::Operator),
    ),
    rule(
        Verb::Post,
        DRILL_ABORT_PATH,
        Access::AtLeast(Role::Operator),
    ),
    rule(Verb::Get, DRILL_RECORD_PATH, Access::AtLeast(Role::Viewer)),
    rule(
        Verb::Get,
        DRILL_BUNDLE_PATH,
        Access::AtLeast(Role::Operator),
    ),
    rule(Verb::Get, DRILL_REPORT_PATH, Access::AtLeast(Role::Viewer)),
    rule(Verb::Get, DRILL_CHAIN_PATH, Access::AtLeast(Role::Viewer)),
    rule(
        Verb::Get,
        DRILL_CALENDAR_PATH,
        Access::AtLeast(Role::Viewer),
    ),
    rule(
        Verb::Get,
        REPORTS_QUARTERLY_PATH,
        Access::AtLeast(Role::Viewer),
    ),
    rule(Verb::Post, AGENT_REVOKE_PATH, Access::AtLeast(Role::Admin)),
    rule(Verb::Get, USERS_PATH, Access::AtLeast(Role::Admin)),
    rule(Verb::Post, USERS_PATH, Access::AtLeast(Role::Admin)),
    rule(Verb::Patch, USER_PATH, Access::AtLeast(Role::Admin)),
    rule(Verb::Get, TOKENS_PATH, Access::AtLeast(Role::Admin)),
    rule(Verb::Post, TOKENS_PATH, Access::AtLeast(Role::Admin)),
    rule(Verb::Delete, TOKEN_PATH, Access::AtLeast(Role::Admin)),
    rule(Verb::Get, AUDIT_PATH, Access::AtLeast(Role::Admin)),
    // The dashboard: the same roles as the API routes it shows or acts through.
    rule(Verb::Get, UI_ROOT_PATH, Access::Public),
    rule(Verb::Get, UI_LOGIN_PATH, Access::Public),
    rule(Verb::Post, UI_LOGIN_PATH, Access::Public),
    rule(Verb::Post, UI_LOGOUT_PATH, Access::AtLeast(Role::Viewer)),
    rule(Verb::Get, UI_HOME_PATH, Access::AtLeast(Role::Viewer)),
    rule(Verb::Get, UI_SYSTEMS_PATH, Access::AtLeast(Role::Viewer)),
    rule(Verb::Get, UI_SYSTEM_PATH, Access::AtLeast(Role::Viewer)),
    rule(Verb::Get, UI_DRILLS_PATH, Access::AtLeast(Role::Viewer)),
    rule(Verb::Post, UI_DRILLS_PATH, Access::AtLeast(Role::Operator)),
    rule(Verb::Get, UI_DRILL_PATH, Access::AtLeast(Role::Viewer)),
    rule(
        Verb::Post,
        UI_DRILL_APPROVE_PATH,
        Access::AtLeast(Role::Operator),
    ),
    rule(
        Verb::Post,
        UI_DRILL_ABORT_PATH,
        Access::AtLeast(Role::Operator),
    ),
    rule(
        Verb::Get,
        UI_DRILL_REPORT_PATH,
        Access::AtLeast(Role::Viewer),
    ),
    rule(Verb::Get, UI_ALERTS_PATH, Access::AtLeast(Role::Viewer)),
    rule(Verb::Get, UI_AUDIT_PATH, Access::AtLeast(Role::Admin)),
    rule(Verb::Get, UI_REPORTS_PATH, Access::AtLeast(Role::Viewer)),
    rule(Verb::Get, UI_QUARTERLY_PATH, Access::AtLeast(Role::Viewer)),
];

/// The matrix line for a request's method and matched route.
pub fn rule_for(method: &Method, path: &str) -> Option<&'static Rule> {
    ROLE_MATRIX
        .iter()
        .find(|r| r.path == path && r.verb.method() == *method)
}

/// Whether `role` satisfies `access`.
pub fn allows(access: Access, role: Role) -> bool {
    match access {
        Access::Public => true,
        Access::AtLeast(min) => role >= min,
    }
}

// ---------------------------------------------------------------------------------------------
// Authentication

/// The person behind a request, put into the request's extensions by [`gate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user: String,
    /// The user's role now (a role change takes effect on the next request).
    pub role: Role,
    pub credential: Credential,
}

impl Principal {
    /// The audit log's actor: `user:<name>`.
    pub fn actor(&self) -> String {
        format!("user:{}", self.user)
    }
}

/// Which credential a request carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Session(TokenHash),
    ApiToken(TokenHash),
}

/// What authentication needs: the store and the clock. Cheap to clone.
#[derive(Clone)]
pub struct Auth {
    pub store: Store,
    pub clock: Arc<dyn Clock>,
}

impl Auth {
    pub fn new(store: Store, clock: Arc<dyn Clock>) -> Self {
        Auth { store, clock }
    }

    /// Appends to the audit log; a failure is logged (the request's answer does not depend on
    /// it).
    pub async fn audit(&self, actor: &str, action: &str, target: &str, detail: serde_json::Value) {
        let entry = NewAuditEntry {
            at: self.clock.now(),
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            detail,
        };
        if let Err(e) = self.store.append_audit(&entry).await {
            tracing::error!("cannot append to the audit log ({e}): {action} by {actor}");
        }
    }

    /// The person a request's bearer token (session or API token) belongs to; 401 otherwise,
    /// audited when a token was presented.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        route: &str,
    ) -> Result<Principal, Failure> {
        self.authenticate_token(bearer(headers), route).await
    }

    /// The person a session or API token belongs to, wherever the request carried it (the
    /// API: a bearer token; the dashboard: its session cookie); 401 otherwise, audited when a
    /// token was presented.
    pub async fn authenticate_token(
        &self,
        token: Option<Secret>,
        route: &str,
    ) -> Result<Principal, Failure> {
        let Some(token) = token else {
            return Err(Failure::new(
                StatusCode::UNAUTHORIZED,
                ErrorCode::Unauthorized,
                "not logged in: send Authorization: Bearer <session or API token> (POST /api/v1/login)",
            ));
        };
        let hash = TokenHash::of(&token);
        let now = self.clock.now();
        let found = match self
            .store
            .session(&hash, now)
            .await
            .map_err(Failure::store)?
        {
            Some(session) => Ok((session.user, Credential::Session(hash.clone()))),
            None => match self.store.api_token(&hash).await.map_err(Failure::store)? {
                Some(t) if t.revoked_at.is_some() => Err("revoked API token"),
                Some(t) => match t.owner {
                    TokenOwner::User(user) => Ok((user, Credential::ApiToken(hash.clone()))),
                    TokenOwner::Agent(_) => Err("an agent's token"),
                },
                // Agents' own tokens live with the agents; name them in the audit entry.
                None => match self.store.agent_by_token(&hash).await {
                    Ok(Some(_)) => Err("an agent's token"),
                    Ok(None) => Err("unknown or expired token"),
                    Err(e) => return Err(Failure::store(e)),
                },
            },
        };
        let refused = match found {
            Ok((name, credential)) => match self.store.user(&name).await.map_err(Failure::store)? {
                Some(user) if !user.disabled => {
                    return Ok(Principal {
                        user: user.name,
                        role: user.role,
                        credential,
                    });
                }
                Some(_) => "the user is disabled",
                None => "the user no longer exists",
            },
            Err(why) => why,
        };
        // The hash prefix identifies the attempt without being usable as a token.
        self.audit(
            "anonymous",
            "people.auth-refused",
            &format!("token:{}", &hash.as_str()[..12]),
            serde_json::json!({ "reason": refused, "route": route }),
        )
        .await;
        Err(Failure::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "the token is unknown, expired or revoked; log in again",
        ))
    }
}

/// The bearer token of a request, if any.
fn bearer(headers: &HeaderMap) -> Option<Secret> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| Secret::new(t.to_string()))
}

/// Why [`Auth::admit`] refused a request; each carries the API's answer, which the dashboard
/// replaces by a page or a redirect to its login.
#[derive(Debug)]
pub enum Refusal {
    /// The route is not in [`ROLE_MATRIX`]: 500, fail closed.
    Unlisted(Failure),
    /// No credential, or one that is unknown, expired or revoked: 401 (audited when presented).
    Unauthenticated(Failure),
    /// The caller's role is below the route's: 403, audited.
    Forbidden(Failure),
}

impl Refusal {
    pub fn into_failure(self) -> Failure {
        match self {
            Refusal::Unlisted(f) | Refusal::Unauthenticated(f) | Refusal::Forbidden(f) => f,
        }
    }
}

impl Auth {
    /// The role-matrix decision for `method route` with the credential `token`: `Ok(None)` for
    /// a public route, `Ok(Some(person))` when the person may call it. The one check behind
    /// [`gate`] (bearer tokens) and the dashboard's gate (session cookie).
    pub async fn admit(
        &self,
        method: &Method,
        route: &str,
        token: Option<Secret>,
    ) -> Result<Option<Principal>, Refusal> {
        let Some(rule) = rule_for(method, route) else {
            return Err(Refusal::Unlisted(Failure::internal(format!(
                "{method} {route} is not in the role matrix (src/coordinator/auth.rs)"
            ))));
        };
        let Access::AtLeast(min) = rule.access else {
            return Ok(None);
        };
        let principal = self
            .authenticate_token(token, route)
            .await
            .map_err(Refusal::Unauthenticated)?;
        if !allows(rule.access, principal.role) {
            self.audit(
                &principal.actor(),
                "people.forbidden",
                &format!("{method} {route}"),
                serde_json::json!({ "role": principal.role.as_str(), "required": min.as_str() }),
            )
            .await;
            return Err(Refusal::Forbidden(Failure::new(
                StatusCode::FORBIDDEN,
                ErrorCode::Forbidden,
                format!(
                    "{method} {route} needs the {} role; you are {}",
                    min.as_str(),
                    principal.role.as_str()
                ),
            )));
        }
        Ok(Some(principal))
    }
}

/// The middleware in front of every people-endpoint: looks the request up in [`ROLE_MATRIX`]
/// (500 if the route is missing: fail closed), authenticates it unless the route is public, and
/// checks the role (403, audited) — all in [`Auth::admit`]. The handler finds the
/// [`Principal`] in the extensions.
pub async fn gate(
    State(auth): State<Auth>,
    matched: Option<MatchedPath>,
    mut request: Request,
    next: Next,
) -> Response {
    let route = matched.as_ref().map_or("", MatchedPath::as_str).to_string();
    let token = bearer(request.headers());
    match auth.admit(request.method(), &route, token).await {
        Ok(Some(principal)) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Ok(None) => next.run(request).await,
        Err(refusal) => refusal.into_failure().into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// Error answers

/// An error answer of the people API: status and [`ApiError`] body. Internals are logged, never
/// returned.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub body: ApiError,
}

impl Failure {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Failure {
            status,
            body: ApiError::new(code, message),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Failure::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Failure::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    pub fn internal(message: String) -> Self {
        tracing::error!("internal error: {message}");
        Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error; see the coordinator's log",
        )
    }

    /// 503 for an unavailable database, 400/404/409 for the store's own refusals, else 500.
    pub fn store(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(m) => {
                tracing::warn!("database unavailable: {m}");
                Failure::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    "the coordinator's database is unavailable; retry later",
                )
            }
            StoreError::NotFound(what) => Failure::not_found(format!("{what} does not exist")),
            StoreError::Invalid(what) => Failure::bad_request(what),
            StoreError::Conflict(_) => Failure::new(
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                "the name or key is already taken",
            ),
            other => Failure::internal(other.to_string()),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

/// A JSON body whose rejection (not JSON, not the expected fields, no `Content-Type:
/// application/json`, over the route's body limit) is a [`Failure`] with the reason, like every
/// other refusal: 413 `too-large` over the limit, 400 `bad-request` otherwise. Both APIs take
/// their bodies through it; axum's own `Json` would answer in plain text.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Failure;

    async fn from_request(req: Request, state: &S) -> Result<Self, Failure> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Body(value)),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(Failure::new(e.status(), ErrorCode::TooLarge, e.body_text()))
            }
            Err(e) => Err(Failure::bad_request(e.body_text())),
        }
    }
}

/// A path parameter whose rejection (percent-escapes that are not UTF-8, a value of the wrong
/// type) is a 400 [`Failure`] with the reason; axum's own `Path` would answer in plain text.
pub struct Param<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Param<T> {
    type Rejection = Failure;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Failure> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Param(value)),
            Err(e) if e.status().is_server_error() => Err(Failure::internal(e.body_text())),
            Err(e) => Err(Failure::bad_request(e.body_text())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_hashes_to_a_salted_argon2id_phc_string_that_verifies() {
        let pw = Secret::new("correct horse battery");
        let a = hash_password(&pw).unwrap();
        let b = hash_password(&pw).unwrap();
        assert!(a.as_str().starts_with("$argon2id$v=19$"), "{}", a.as_str());
        assert!(!a.as_str().contains("correct horse"));
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify_password(&pw, &a) && verify_password(&pw, &b));
        assert!(!verify_password(&Secret::new("correct horse batterY"), &a));
        assert!(!verify_password(&Secret::new(""), &a));
        let not_argon = PasswordHash::new("$foo$bar").unwrap();
        assert!(!verify_password(&pw, &not_argon));
    }

    #[test]
    fn weak_or_huge_passwords_are_refused() {
        for (pw, short) in [
            ("", true),
            ("elevenchars", true),
            (&"x".repeat(1025), false),
        ] {
            let e = hash_password(&Secret::new(pw)).unwrap_err();
            assert_eq!(matches!(e, PasswordError::TooShort), short, "{e}");
            assert_eq!(matches!(e, PasswordError::TooLong), !short, "{e}");
        }
        // Characters, not bytes: twelve non-ASCII characters are enough.
        assert!(hash_password(&Secret::new("密码密码密码密码密码密码")).is_ok());
    }

    #[tokio::test]
    async fn an_unknown_user_is_checked_against_a_dummy_hash_and_fails() {
        let pw = Secret::new("whatever-you-like");
        assert!(!check_password(pw.clone(), None).await);
        let h = hash_password_blocking(pw.clone()).await.unwrap();
        assert!(check_password(pw, Some(h)).await);
    }

    #[test]
    fn roles_are_ordered_viewer_operator_admin() {
        use Role::*;
        assert!(Viewer < Operator && Operator < Admin);
        let table = [
            (Viewer, Viewer, true),
            (Viewer, Operator, false),
            (Viewer, Admin, false),
            (Operator, Viewer, true),
            (Operator, Operator, true),
            (Operator, Admin, false),
            (Admin, Viewer, true),
            (Admin, Operator, true),
            (Admin, Admin, true),
        ];
        for (role, min, expected) in table {
            assert_eq!(
                allows(Access::AtLeast(min), role),
                expected,
                "{role:?} {min:?}"
            );
            assert!(allows(Access::Public, role));
        }
    }

    #[test]
    fn the_matrix_has_one_line_per_route_and_the_expected_roles() {
        for (i, a) in ROLE_MATRIX.iter().enumerate() {
            assert!(
                a.path.starts_with(crate::api::API_PREFIX)
                    || a.path == UI_ROOT_PATH
                    || a.path.starts_with(UI_HOME_PATH),
                "{a:?}"
            );
            for b in &ROLE_MATRIX[i + 1..] {
                assert!(!(a.path == b.path && a.verb == b.verb), "twice: {a:?}");
            }
        }
        let access = |m: Method, p: &str| rule_for(&m, p).map(|r| r.access);
        assert_eq!(access(Method::POST, LOGIN_PATH), Some(Access::Public));
        assert_eq!(
            access(Method::GET, AGENTS_PATH),
            Some(Access::AtLeast(Role::Viewer))
        );
        assert_eq!(
            access(Method::POST, ENROLMENT_TOKENS_PATH),
            Some(Access::AtLeast(Role::Operator))
        );
        for (m, p) in [
            (Method::GET, AUDIT_PATH),
            (Method::POST, USERS_PATH),
            (Method::PATCH, USER_PATH),
            (Method::POST, TOKENS_PATH),
            (Method::DELETE, TOKEN_PATH),
            (Method::POST, AGENT_REVOKE_PATH),
        ] {
            assert_eq!(
                access(m.clone(), p),
                Some(Access::AtLeast(Role::Admin)),
                "{m} {p}"
            );
        }
        for (m, p) in [(Method::GET, POLICY_PATH), (Method::POST, BACKUP_NOW_PATH)] {
            assert_eq!(
                access(m.clone(), p),
                Some(Access::AtLeast(Role::Operator)),
                "{m} {p}"
            );
        }
        assert_eq!(
            access(Method::GET, SYSTEM_PATH),
            Some(Access::AtLeast(Role::Viewer))
        );
        assert_eq!(access(Method::DELETE, USERS_PATH), None);
        // Only the logins are public (and the dashboard's redirect to its home).
        let public: Vec<_> = ROLE_MATRIX
            .iter()
            .filter(|r| r.access == Access::Public)
            .map(|r| r.path)
            .collect();
        assert_eq!(
            public,
            [LOGIN_PATH, UI_ROOT_PATH, UI_LOGIN_PATH, UI_LOGIN_PATH]
        );
        // The dashboard acts with the roles of the API routes it acts through.
        for (ui, api) in [
            (UI_DRILLS_PATH, DRILLS_PATH),
            (UI_DRILL_APPROVE_PATH, DRILL_APPROVE_PATH),
            (UI_DRILL_ABORT_PATH, DRILL_ABORT_PATH),
        ] {
            assert_eq!(access(Method::POST, ui), access(Method::POST, api), "{ui}");
        }
        assert_eq!(
            access(Method::GET, UI_AUDIT_PATH),
            access(Method::GET, AUDIT_PATH)
        );
    }

    #[test]
    fn user_names_and_tokens() {
        for ok in ["alice", "ops.bot-2", "a", "0x"] {
            assert!(check_user_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "Alice", "-x", "a b", "a/b", &"a".repeat(65), "ü"] {
            assert!(check_user_name(bad).is_err(), "{bad}");
        }
        let s = new_token(TokenKind::Session);
        let t = new_token(TokenKind::Api);
        assert!(s.expose().starts_with("lbs-") && t.expose().starts_with("lbt-"));
        assert_eq!(s.expose().len(), 68);
        assert_ne!(new_token(TokenKind::Api), t);
        let hash = TokenHash::of(&t);
        let id = token_id(&hash);
        assert_eq!(id.len(), 16);
        assert!(
            !hash.as_str().contains(&id),
            "the id is not a piece of the stored hash"
        );
        assert_eq!(token_id(&hash), id);
    }
}
