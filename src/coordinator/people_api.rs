//! The people endpoints of the coordinator's HTTP API: login and logout, users and API tokens
//! (admin), the audit log (admin), the agents (viewers read, admins revoke) and enrolment tokens
//! (operators).
//!
//! Every route goes through [`auth::gate`] and its line in [`auth::ROLE_MATRIX`]; handlers find
//! the caller as a [`Principal`]. Every change and every privileged read appends to the audit
//! log as `user:<name>`. Answers never hold a password, a password hash or a token hash; a new
//! token is shown once, in the answer that creates it. No SQL here: the store does that.

use std::sync::{Arc, RwLock};

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::auth::{
    self, AGENT_REVOKE_PATH, AGENTS_PATH, AUDIT_PATH, Auth, Body, Credential,
    ENROLMENT_TOKENS_PATH, Failure, LOGIN_PATH, LOGOUT_PATH, Param, Principal, TOKEN_PATH,
    TOKENS_PATH, TokenKind, USER_PATH, USERS_PATH, Verb,
};
use super::routes::Routes;
use super::store::{
    Agent, ApiToken, AuditEntry, AuditFilter, EnrolmentToken, Page, Role, Session, Store,
    StoreError, TokenHash, TokenOwner, User,
};
use crate::api::{ErrorCode, Token};
use crate::clock::Clock;
use crate::policy::Policy;
use crate::secret::Secret;

/// The largest request body accepted: people send small JSON objects.
const MAX_BODY: usize = 64 << 10;
/// The longest an enrolment token may be valid.
const MAX_ENROLMENT_VALIDITY: std::time::Duration = std::time::Duration::from_secs(30 * 86_400);

/// What the people endpoints share.
#[derive(Clone)]
pub struct PeopleApi {
    pub auth: Auth,
    /// The current policy (enrolment tokens are issued for its hosts and sites only).
    pub policy: Arc<RwLock<Arc<Policy>>>,
}

impl PeopleApi {
    pub fn new(store: Store, policy: Arc<RwLock<Arc<Policy>>>, clock: Arc<dyn Clock>) -> Self {
        PeopleApi {
            auth: Auth::new(store, clock),
            policy,
        }
    }

    fn store(&self) -> &Store {
        &self.auth.store
    }

    fn now(&self) -> Timestamp {
        self.auth.clock.now()
    }

    fn policy(&self) -> Arc<Policy> {
        super::current_policy(&self.policy)
    }
}

/// The people router, every route behind the role-matrix gate.
pub fn router(api: PeopleApi) -> axum::Router {
    routes().finish(api.auth.clone(), MAX_BODY, api)
}

/// Every people route and its handler.
pub(super) fn routes() -> Routes<PeopleApi> {
    Routes::new()
        .add(Verb::Post, LOGIN_PATH, login)
        .add(Verb::Post, LOGOUT_PATH, logout)
        .add(Verb::Get, USERS_PATH, list_users)
        .add(Verb::Post, USERS_PATH, create_user)
        .add(Verb::Patch, USER_PATH, update_user)
        .add(Verb::Get, TOKENS_PATH, list_tokens)
        .add(Verb::Post, TOKENS_PATH, create_token)
        .add(Verb::Delete, TOKEN_PATH, revoke_token)
        .add(Verb::Get, AUDIT_PATH, read_audit)
        .add(Verb::Get, AGENTS_PATH, list_agents)
        .add(Verb::Post, AGENT_REVOKE_PATH, revoke_agent)
        .add(Verb::Post, ENROLMENT_TOKENS_PATH, create_enrolment_token)
}

fn query_rejection(e: &QueryRejection) -> Failure {
    Failure::bad_request(e.body_text())
}

// ---------------------------------------------------------------------------------------------
// Wire types (people-facing; never a hash)

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    name: String,
    password: Token,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct LoginResponse {
    token: Token,
    expires_at: Timestamp,
    role: &'static str,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct UserView {
    name: String,
    role: &'static str,
    disabled: bool,
    created_at: Timestamp,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            name: u.name.clone(),
            role: u.role.as_str(),
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

/// A role on the wire.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
enum WireRole {
    Viewer,
    Operator,
    Admin,
}

impl From<WireRole> for Role {
    fn from(r: WireRole) -> Role {
        match r {
            WireRole::Viewer => Role::Viewer,
            WireRole::Operator => Role::Operator,
            WireRole::Admin => Role::Admin,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewUserRequest {
    name: String,
    password: Token,
    role: WireRole,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UserUpdate {
    role: Option<WireRole>,
    disabled: Option<bool>,
    password: Option<Token>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTokenRequest {
    user: String,
    #[serde(default)]
    label: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct NewTokenResponse {
    id: String,
    /// Shown once; only its hash is kept.
    token: Token,
    user: String,
    label: String,
    created_at: Timestamp,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct TokenView {
    id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<Uuid>,
    label: String,
    created_at: Timestamp,
    revoked_at: Option<Timestamp>,
}

impl From<&ApiToken> for TokenView {
    fn from(t: &ApiToken) -> Self {
        let (user, agent) = match &t.owner {
            TokenOwner::User(u) => (Some(u.clone()), None),
            TokenOwner::Agent(a) => (None, Some(*a)),
        };
        TokenView {
            id: auth::token_id(&t.hash),
            user,
            agent,
            label: t.label.clone(),
            created_at: t.created_at,
            revoked_at: t.revoked_at,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    since: Option<Timestamp>,
    until: Option<Timestamp>,
    limit: Option<u32>,
    offset: Option<u64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct AuditView {
    id: i64,
    at: Timestamp,
    actor: String,
    action: String,
    target: String,
    detail: serde_json::Value,
}

impl From<AuditEntry> for AuditView {
    fn from(e: AuditEntry) -> Self {
        AuditView {
            id: e.id,
            at: e.at,
            actor: e.actor,
            action: e.action,
            target: e.target,
            detail: e.detail,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    limit: Option<u32>,
    offset: Option<u64>,
}

fn page(limit: Option<u32>, offset: Option<u64>) -> Page {
    Page {
        offset: offset.unwrap_or(0),
        limit: limit.unwrap_or(100).min(Page::MAX_LIMIT),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct AgentView {
    id: Uuid,
    host: String,
    site: String,
    version: String,
    enrolled_at: Timestamp,
    last_heartbeat_at: Option<Timestamp>,
    clock_offset_ms: Option<i64>,
    revoked_at: Option<Timestamp>,
}

impl From<&Agent> for AgentView {
    fn from(a: &Agent) -> Self {
        AgentView {
            id: a.id,
            host: a.host.clone(),
            site: a.site.clone(),
            version: a.version.clone(),
            enrolled_at: a.enrolled_at,
            last_heartbeat_at: a.last_heartbeat_at,
            clock_offset_ms: a
                .clock_offset
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            revoked_at: a.revoked_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EnrolmentTokenRequest {
    host: String,
    site: String,
    /// e.g. `"24h"` (the default); at most 30 days.
    #[schema(value_type = Option<String>)]
    valid: Option<crate::policy::Duration>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct EnrolmentTokenResponse {
    /// Shown once; only its hash is kept.
    token: Token,
    host: String,
    site: String,
    expires_at: Timestamp,
}

/// The schemas of this module's wire types, for the OpenAPI document.
pub(super) fn schemas() -> super::openapi::Schemas {
    use super::openapi::{add, add_list};
    let mut out = Vec::new();
    add::<LoginRequest>(&mut out);
    add::<LoginResponse>(&mut out);
    add::<NewUserRequest>(&mut out);
    add::<UserUpdate>(&mut out);
    add::<NewTokenRequest>(&mut out);
    add::<NewTokenResponse>(&mut out);
    add::<EnrolmentTokenRequest>(&mut out);
    add::<EnrolmentTokenResponse>(&mut out);
    add_list::<UserView>(&mut out, "UserList");
    add_list::<TokenView>(&mut out, "TokenList");
    add_list::<AuditView>(&mut out, "AuditList");
    add_list::<AgentView>(&mut out, "AgentList");
    out
}

// ---------------------------------------------------------------------------------------------
// Login and logout

/// A session just opened: its token (shown once, to its owner) and until when it lasts.
pub(crate) struct OpenedSession {
    pub token: Secret,
    pub expires_at: Timestamp,
    pub role: Role,
}

/// Checks `name` and `password` and opens a session: the one login of the API and the
/// dashboard. A refusal is audited and says nothing of which part was wrong.
pub(crate) async fn open_session(
    auth: &Auth,
    name: &str,
    password: Secret,
) -> Result<OpenedSession, Failure> {
    let user = auth.store.user(name).await.map_err(Failure::store)?;
    let matches =
        auth::check_password(password, user.as_ref().map(|u| u.password_hash.clone())).await;
    let refused = match &user {
        None => Some("unknown user"),
        Some(_) if !matches => Some("wrong password"),
        Some(u) if u.disabled => Some("user disabled"),
        Some(_) => None,
    };
    let target = format!("user:{}", name.chars().take(80).collect::<String>());
    let (Some(user), None) = (user, refused) else {
        auth.audit(
            "anonymous",
            "user.login-refused",
            &target,
            serde_json::json!({ "reason": refused }),
        )
        .await;
        return Err(Failure::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "wrong user name or password, or the user is disabled",
        ));
    };
    let now = auth.clock.now();
    let token = auth::new_token(TokenKind::Session);
    let expires_at = now.checked_add(auth::SESSION_TTL).unwrap_or(now);
    let session = Session {
        token_hash: TokenHash::of(&token),
        user: user.name.clone(),
        created_at: now,
        expires_at,
    };
    auth.store
        .create_session(&session)
        .await
        .map_err(Failure::store)?;
    // Housekeeping: a login is a fine moment to forget expired sessions.
    if let Err(e) = auth.store.delete_expired_sessions(now).await {
        tracing::warn!("cannot delete expired sessions: {e}");
    }
    auth.audit(
        &format!("user:{}", user.name),
        "user.login",
        &target,
        serde_json::json!({ "expires_at": expires_at.to_string() }),
    )
    .await;
    Ok(OpenedSession {
        token,
        expires_at,
        role: user.role,
    })
}

/// Ends the caller's session (audited): the one logout of the API and the dashboard.
pub(crate) async fn end_session(auth: &Auth, me: &Principal) -> Result<(), Failure> {
    let Credential::Session(hash) = &me.credential else {
        return Err(Failure::bad_request(
            "an API token has no session to end; an admin revokes it (DELETE /api/v1/tokens/{id})",
        ));
    };
    auth.store
        .delete_session(hash)
        .await
        .map_err(Failure::store)?;
    auth.audit(
        &me.actor(),
        "user.logout",
        &me.actor(),
        serde_json::Value::Null,
    )
    .await;
    Ok(())
}

async fn login(State(api): State<PeopleApi>, Body(req): Body<LoginRequest>) -> Response {
    match open_session(&api.auth, &req.name, req.password.into_secret()).await {
        Ok(opened) => Json(LoginResponse {
            token: Token::from(opened.token),
            expires_at: opened.expires_at,
            role: opened.role.as_str(),
        })
        .into_response(),
        Err(f) => f.into_response(),
    }
}

async fn logout(State(api): State<PeopleApi>, Extension(me): Extension<Principal>) -> Response {
    match end_session(&api.auth, &me).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(f) => f.into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// Users

async fn list_users(State(api): State<PeopleApi>, Extension(me): Extension<Principal>) -> Response {
    match api.store().list_users().await {
        Ok(users) => {
            api.auth
                .audit(&me.actor(), "users.read", "users", serde_json::Value::Null)
                .await;
            Json(users.iter().map(UserView::from).collect::<Vec<_>>()).into_response()
        }
        Err(e) => Failure::store(e).into_response(),
    }
}

async fn create_user(
    State(api): State<PeopleApi>,
    Extension(me): Extension<Principal>,
    Body(req): Body<NewUserRequest>,
) -> Response {
    let role = Role::from(req.role);
    let user = match auth::new_user(&req.name, role, req.password.into_secret(), api.now()).await {
        Ok(u) => u,
        Err(e) => return Failure::bad_request(e.to_string()).into_response(),
    };
    match api.store().create_user(&user).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Failure::new(
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                format!(
                    "user {} exists; change it with PATCH {USERS_PATH}/{}",
                    user.name, user.name
                ),
            )
            .into_response();
        }
        Err(e) => return Failure::store(e).into_response(),
    }
    api.auth
        .audit(
            &me.actor(),
            "user.created",
            &format!("user:{}", user.name),
            serde_json::json!({ "role": role.as_str() }),
        )
        .await;
    (StatusCode::CREATED, Json(UserView::from(&user))).into_response()
}

async fn update_user(
    State(api): State<PeopleApi>,
    Extension(me): Extension<Principal>,
    Param(name): Param<String>,
    Body(req): Body<UserUpdate>,
) -> Response {
    if req.role.is_none() && req.disabled.is_none() && req.password.is_none() {
        return Failure::bad_request("nothing to change: send role, disabled or password")
            .into_response();
    }
    let role = req.role.map(Role::from);
    // An admin cannot lock themselves out (another admin can).
    if name == me.user && (req.disabled == Some(true) || role.is_some_and(|r| r < Role::Admin)) {
        return Failure::new(
            StatusCode::CONFLICT,
            ErrorCode::Conflict,
            "you cannot disable yourself or lower your own role; ask another admin",
        )
        .into_response();
    }
    match api.store().user(&name).await {
        Ok(Some(_)) => {}
        Ok(None) => return Failure::not_found(format!("no user {name}")).into_response(),
        Err(e) => return Failure::store(e).into_response(),
    }
    let password_changed = req.password.is_some();
    if let Some(password) = req.password {
        let hash = match auth::hash_password_blocking(password.into_secret()).await {
            Ok(h) => h,
            Err(e) => return Failure::bad_request(e.to_string()).into_response(),
        };
        if let Err(e) = api.store().set_user_password(&name, &hash).await {
            return Failure::store(e).into_response();
        }
    }
    if let Some(role) = role
        && let Err(e) = api.store().set_user_role(&name, role).await
    {
        return Failure::store(e).into_response();
    }
    if let Some(disabled) = req.disabled
        && let Err(e) = api.store().set_user_disabled(&name, disabled).await
    {
        return Failure::store(e).into_response();
    }
    api.auth
        .audit(
            &me.actor(),
            "user.updated",
            &format!("user:{name}"),
            serde_json::json!({
                "role": role.map(Role::as_str),
                "disabled": req.disabled,
                "password_changed": password_changed,
            }),
        )
        .await;
    match api.store().user(&name).await {
        Ok(Some(u)) => Json(UserView::from(&u)).into_response(),
        Ok(None) => Failure::not_found(format!("no user {name}")).into_response(),
        Err(e) => Failure::store(e).into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// API tokens

async fn list_tokens(
    State(api): State<PeopleApi>,
    Extension(me): Extension<Principal>,
) -> Response {
    match api.store().list_api_tokens().await {
        Ok(tokens) => {
            api.auth
                .audit(
                    &me.actor(),
                    "api-tokens.read",
                    "api-tokens",
                    serde_json::Value::Null,
                )
                .await;
            Json(tokens.iter().map(TokenView::from).collect::<Vec<_>>()).into_response()
        }
        Err(e) => Failure::store(e).into_response(),
    }
}

async fn create_token(
    State(api): State<PeopleApi>,
    Extension(me): Extension<Principal>,
    Body(req): Body<NewTokenRequest>,
) -> Response {
    match api.store().user(&req.user).await {
        Ok(Some(u)) if !u.disabled => {}
        Ok(Some(_)) => {
            return Failure::new(
                StatusCode::CONFLICT,
                ErrorCode::Conflict,
                format!("user {} is disabled", req.user),
            )
            .into_response();
        }
        Ok(None) => return Failure::not_found(format!("no user {}", req.user)).into_response(),
        Err(e) => return Failure::store(e).into_response(),
    }
    if req.label.len() > 200 {
        return Failure::bad_request("a label has at most 200 bytes").into_response();
    }
    let token = auth::new_token(TokenKind::Api);
    let stored = ApiToken {
        hash: TokenHash::of(&token),
        owner: TokenOwner::User(req.user.clone()),
        label: req.label.clone(),
        created_at: api.now(),
        revoked_at: None,
    };
    if let Err(e) = api.store().create_api_token(&stored).await {
        return Failure::store(e).into_response();
    }
    let id = auth::token_id(&stored.hash);
    api.auth
        .audit(
            &me.actor(),
            "api-token.created",
            &format!("user:{}", req.user),
            serde_json::json!({ "id": id, "label": req.label }),
        )
        .await;
    (
        StatusCode::CREATED,
        Json(NewTokenResponse {
            id,
            token: Token::from(token),
            user: req.user,
            label: req.label,
            created_at: stored.created_at,
        }),
    )
        .into_response()
}

async fn revoke_token(
    State(api): State<PeopleApi>,
    Extension(me): Extension<Principal>,
    Param(id): Param<String>,
) -> Response {
    let tokens = match api.store().list_api_tokens().await {
        Ok(t) => t,
        Err(e) => return Failure::store(e).into_response(),
    };
    let Some(token) = tokens.iter().find(|t| auth::token_id(&t.hash) == id) else {
        return Failure::not_found(format!("no API token {id}")).into_response();
    };
    if let Err(e) = api.store().revoke_api_token(&token.hash, api.now()).await {
        return Failure::store(e).into_response();
    }
    api.auth
        .audit(
            &me.actor(),
            "api-token.revoked",
            &format!("api-token:{id}"),
            serde_json::json!({ "label": token.label }),
        )
        .await;
    StatusCode::NO_CONTENT.into_response()
}

// ---------------------------------------------------------------------------------------------
// Audit log

async fn read_audit(
    State(api): State<PeopleApi>,
    Extension(me): Extension<Principal>,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return query_rejection(&e).into_response(),
    };
    let filter = AuditFilter {
        actor: q.actor,
        action: q.action,
        target: q.target,
        since: q.since,
        until: q.until,
    };
    match api
        .store()
        .list_audit(&filter, page(q.limit, q.offset))
        .await
    {
        Ok(entries) => {
            api.auth
                .audit(
                    &me.actor(),
                    "audit.read",
                    "audit-log",
                    serde_json::json!({ "returned": entries.len() }),
                )
                .await;
            Json(entries.into_iter().map(AuditView::from).collect::<Vec<_>>()).into_response()
        }
        Err(e) => Failure::store(e).into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// Agents and enrolment

async fn list_agents(
    State(api): State<PeopleApi>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return query_rejection(&e).into_response(),
    };
    match api.store().list_agents(page(q.limit, q.offset)).await {
        Ok(agents) => Json(agents.iter().map(AgentView::from).collect::<Vec<_>>()).into_response(),
        Err(e) => Failure::store(e).into_response(),
    }
}

async fn revoke_agent(
    State(api): State<PeopleApi>,
    Extension(me): Extension<Principal>,
    Param(id): Param<String>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return Failure::bad_request(format!("{id:?} is not an agent id (a UUID)")).into_response();
    };
    if let Err(e) = api.store().revoke_agent(id, api.now()).await {
        return Failure::store(e).into_response();
    }
    api.auth
        .audit(
            &me.actor(),
            "agent.revoked",
            &format!("agent:{id}"),
            serde_json::Value::Null,
        )
        .await;
    match api.store().agent(id).await {
        Ok(Some(a)) => Json(AgentView::from(&a)).into_response(),
        Ok(None) => Failure::not_found(format!("no agent {id}")).into_response(),
        Err(e) => Failure::store(e).into_response(),
    }
}

/// Why an enrolment token was not issued.
#[derive(Debug, thiserror::Error)]
pub enum EnrolmentTokenError {
    #[error(
        "no system of the policy is on host {0}, and no drill plan restores there; check the host \
         against the systems' and the drill plans' standby host"
    )]
    UnknownHost(String),
    #[error("site {0} is not in the policy")]
    UnknownSite(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Issues a one-time enrolment token for `host` at `site`, valid for `valid` from `now`, and
/// audits it as `actor`; returns the token (to be shown once) and its expiry. Shared by the
/// API and `lifeboat coordinator enrol-token`.
pub async fn issue_enrolment_token(
    store: &Store,
    policy: &Policy,
    host: &str,
    site: &str,
    valid: std::time::Duration,
    now: Timestamp,
    actor: &str,
) -> Result<(Secret, Timestamp), EnrolmentTokenError> {
    // A host runs systems of the policy, or is the standby host drills restore at.
    let known = policy.systems.values().any(|s| s.host == host)
        || policy.drills.values().any(|d| d.standby.host == host);
    if !known {
        return Err(EnrolmentTokenError::UnknownHost(host.to_string()));
    }
    if !policy.sites.contains_key(site) {
        return Err(EnrolmentTokenError::UnknownSite(site.to_string()));
    }
    let token = Secret::new(format!(
        "lbe-{}{}",
        Uuid::new_v4().simple(),
        Uuid::new_v4().simple()
    ));
    let expires_at = jiff::SignedDuration::try_from(valid)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(now);
    store
        .create_enrolment_token(&EnrolmentToken {
            hash: TokenHash::of(&token),
            host: host.to_string(),
            site: site.to_string(),
            created_by: actor.to_string(),
            created_at: now,
            expires_at,
            used_at: None,
            used_by: None,
        })
        .await?;
    store
        .append_audit(&super::store::NewAuditEntry {
            at: now,
            actor: actor.to_string(),
            action: "enrolment-token.issued".into(),
            target: format!("host:{host}"),
            detail: serde_json::json!({ "site": site, "expires_at": expires_at.to_string() }),
        })
        .await?;
    Ok((token, expires_at))
}

async fn create_enrolment_token(
    State(api): State<PeopleApi>,
    Extension(me): Extension<Principal>,
    Body(req): Body<EnrolmentTokenRequest>,
) -> Response {
    let valid = req
        .valid
        .map_or(std::time::Duration::from_secs(86_400), |d| d.as_std());
    if valid > MAX_ENROLMENT_VALIDITY {
        return Failure::bad_request("an enrolment token is valid for at most 30d").into_response();
    }
    let policy = api.policy();
    match issue_enrolment_token(
        api.store(),
        &policy,
        &req.host,
        &req.site,
        valid,
        api.now(),
        &me.actor(),
    )
    .await
    {
        Ok((token, expires_at)) => (
            StatusCode::CREATED,
            Json(EnrolmentTokenResponse {
                token: Token::from(token),
                host: req.host,
                site: req.site,
                expires_at,
            }),
        )
            .into_response(),
        Err(EnrolmentTokenError::Store(e)) => Failure::store(e).into_response(),
        Err(e) => Failure::bad_request(e.to_string()).into_response(),
    }
}
