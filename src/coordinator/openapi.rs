//! The coordinator's OpenAPI 3.1 document, served at [`OPENAPI_PATH`] without authentication.
//!
//! Paths come from one table, [`DOCS`]: every route the coordinator serves has exactly one line
//! there (a test compares it with the agent routes and [`auth::ROLE_MATRIX`], so a new route
//! cannot go undocumented and a removed one cannot linger). The role a route needs is read from
//! the role matrix itself, never restated. Schemas are derived from the wire types
//! (`utoipa::ToSchema`), so the document cannot drift from what is encoded.
//!
//! This module builds a value; it serves nothing but that document and decides no access.

use std::collections::BTreeMap;

use axum::Json;
use axum::response::IntoResponse;
use utoipa::openapi::path::{Operation, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    ComponentsBuilder, ContentBuilder, HttpMethod, InfoBuilder, OpenApi, OpenApiBuilder, Paths,
    Ref, RefOr, Required, ResponseBuilder,
};
use utoipa::{PartialSchema, ToSchema};

use super::auth::{self, Access, Verb};
use crate::api;

/// Where the document is served.
pub const OPENAPI_PATH: &str = "/api/v1/openapi.json";

/// A list of named schemas, as components.
pub type Schemas = Vec<(String, RefOr<Schema>)>;

/// Adds `T` and every schema it refers to.
pub fn add<T: ToSchema>(out: &mut Schemas) {
    out.push((T::name().into_owned(), T::schema()));
    T::schemas(out);
}

/// Adds `T` and a schema `list_name`: a JSON array of `T`.
pub fn add_list<T: ToSchema>(out: &mut Schemas, list_name: &str) {
    use utoipa::openapi::schema::ArrayBuilder;
    out.push((
        list_name.to_string(),
        ArrayBuilder::new()
            .items(Ref::from_schema_name(T::name()))
            .into(),
    ));
    add::<T>(out);
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// An enrolled agent with its own token (or, for enrolment, a one-time token in the body).
    Agent,
    /// A person (session or API token), at the role the role matrix names; or anyone for a
    /// public route of the matrix.
    Person,
}

/// One route's documentation.
#[derive(Debug, Clone, Copy)]
pub struct Doc {
    pub verb: Verb,
    pub path: &'static str,
    pub caller: Caller,
    pub tag: &'static str,
    pub summary: &'static str,
    /// The JSON body's schema name, if the route takes one.
    pub request: Option<&'static str>,
    /// The success status and its JSON body's schema name (`None`: no body).
    pub response: (u16, Option<&'static str>),
    /// Query parameters: name and description.
    pub query: &'static [(&'static str, &'static str)],
}

const fn doc(
    verb: Verb,
    path: &'static str,
    caller: Caller,
    tag: &'static str,
    summary: &'static str,
) -> Doc {
    Doc {
        verb,
        path,
        caller,
        tag,
        summary,
        request: None,
        response: (200, None),
        query: &[],
    }
}

impl Doc {
    const fn takes(mut self, schema: &'static str) -> Self {
        self.request = Some(schema);
        self
    }

    const fn gives(mut self, status: u16, schema: &'static str) -> Self {
        self.response = (status, Some(schema));
        self
    }

    const fn empty(mut self, status: u16) -> Self {
        self.response = (status, None);
        self
    }

    const fn query(mut self, query: &'static [(&'static str, &'static str)]) -> Self {
        self.query = query;
        self
    }
}

use Caller::{Agent, Person};
use Verb::{Delete, Get, Patch, Post};

const PAGING: &[(&str, &str)] = &[
    (
        "limit",
        "at most this many items (default 100, at most 1000)",
    ),
    ("offset", "skip this many items"),
];

/// Every route of the coordinator's API.
pub const DOCS: &[Doc] = &[
    // Agents
    doc(
        Post,
        api::ENROL_PATH,
        Agent,
        "agents",
        "Enrol with a one-time token",
    )
    .takes("EnrolRequest")
    .gives(200, "EnrolResponse"),
    doc(
        Post,
        api::HEARTBEAT_PATH,
        Agent,
        "agents",
        "Report health; receive commands and drill tasks",
    )
    .takes("Heartbeat")
    .gives(200, "HeartbeatResponse"),
    doc(
        Get,
        api::ASSIGNMENT_PATH,
        Agent,
        "agents",
        "This host's part of the policy (ETag; 304 when unchanged)",
    )
    .gives(200, "Assignment"),
    doc(
        Post,
        api::RUNS_PATH,
        Agent,
        "agents",
        "Submit run records, idempotently by run id",
    )
    .takes("RunBatch")
    .gives(200, "RunBatchResponse"),
    doc(
        Post,
        api::DRILL_REPORTS_PATH,
        Agent,
        "agents",
        "Submit drill task reports, idempotently by task id (at most 100)",
    )
    .takes("DrillReportBatch")
    .gives(200, "DrillReportResponse"),
    // People: sessions
    doc(
        Post,
        auth::LOGIN_PATH,
        Person,
        "people",
        "Log in with name and password; returns a 12 h session token",
    )
    .takes("LoginRequest")
    .gives(200, "LoginResponse"),
    doc(
        Post,
        auth::LOGOUT_PATH,
        Person,
        "people",
        "End this session",
    )
    .empty(204),
    // People: administration
    doc(Get, auth::USERS_PATH, Person, "admin", "List users").gives(200, "UserList"),
    doc(Post, auth::USERS_PATH, Person, "admin", "Create a user")
        .takes("NewUserRequest")
        .gives(201, "UserView"),
    doc(
        Patch,
        auth::USER_PATH,
        Person,
        "admin",
        "Change a user's role, password, or disable them",
    )
    .takes("UserUpdate")
    .gives(200, "UserView"),
    doc(
        Get,
        auth::TOKENS_PATH,
        Person,
        "admin",
        "List API tokens (never their value)",
    )
    .gives(200, "TokenList"),
    doc(
        Post,
        auth::TOKENS_PATH,
        Person,
        "admin",
        "Issue an API token for a user (shown once)",
    )
    .takes("NewTokenRequest")
    .gives(201, "NewTokenResponse"),
    doc(
        Delete,
        auth::TOKEN_PATH,
        Person,
        "admin",
        "Revoke an API token",
    )
    .empty(204),
    doc(
        Get,
        auth::AUDIT_PATH,
        Person,
        "admin",
        "Read the append-only audit log",
    )
    .gives(200, "AuditList")
    .query(&[
        (
            "actor",
            "only entries by this actor (`user:alice`, `agent:<id>`)",
        ),
        ("action", "only this action"),
        ("target", "only this target"),
        ("since", "RFC 3339 time, inclusive"),
        ("until", "RFC 3339 time, exclusive"),
        (
            "limit",
            "at most this many entries (default 100, at most 1000)",
        ),
        ("offset", "skip this many entries"),
    ]),
    // Fleet: agents and enrolment
    doc(
        Get,
        auth::AGENTS_PATH,
        Person,
        "fleet",
        "List enrolled agents",
    )
    .gives(200, "AgentList")
    .query(PAGING),
    doc(
        Post,
        auth::AGENT_REVOKE_PATH,
        Person,
        "admin",
        "Revoke an agent's token",
    )
    .gives(200, "AgentView"),
    doc(
        Post,
        auth::ENROLMENT_TOKENS_PATH,
        Person,
        "fleet",
        "Issue a one-time enrolment token for a host (shown once)",
    )
    .takes("EnrolmentTokenRequest")
    .gives(201, "EnrolmentTokenResponse"),
    // Fleet: what is protected and how well
    doc(
        Get,
        auth::FLEET_PATH,
        Person,
        "fleet",
        "Fleet summary of the latest assessment sweep (503 not-ready before the first)",
    )
    .gives(200, "FleetSummaryView"),
    doc(
        Get,
        auth::SITES_PATH,
        Person,
        "fleet",
        "Sites of the policy with their systems and agents",
    )
    .gives(200, "SiteList"),
    doc(
        Get,
        auth::REPOSITORIES_PATH,
        Person,
        "fleet",
        "Repositories of the policy (never a credential)",
    )
    .gives(200, "RepositoryList"),
    doc(
        Get,
        auth::SYSTEMS_PATH,
        Person,
        "fleet",
        "Systems with status, exposure and predicted breach per scenario",
    )
    .gives(200, "SystemsPage")
    .query(&[
        ("tier", "only this tier"),
        ("site", "only this site"),
        (
            "scenario",
            "with `status`: the scenario it applies to (default site-loss)",
        ),
        (
            "status",
            "only systems in this status: compliant, at-risk, breached, no-evidence",
        ),
        (
            "limit",
            "at most this many systems (default 100, at most 1000)",
        ),
        ("after", "the `next_after` of the previous page"),
    ]),
    doc(
        Get,
        auth::SYSTEM_PATH,
        Person,
        "fleet",
        "One system: policy, full assessment with reasons, agent health, last runs",
    )
    .gives(200, "SystemDetail"),
    doc(
        Post,
        auth::BACKUP_NOW_PATH,
        Person,
        "fleet",
        "Ask the system's agent to back it up now (delivered with its next heartbeat)",
    )
    .gives(202, "BackupNowView"),
    doc(
        Get,
        auth::RUN_RECORDS_PATH,
        Person,
        "fleet",
        "Run records, newest first",
    )
    .gives(200, "RunsPage")
    .query(&[
        ("system", "only this system"),
        ("host", "only this host"),
        ("kind", "init, backup, copy, check, forget or restore"),
        ("outcome", "success, partial or failed"),
        ("since", "RFC 3339 time: started at or after"),
        ("until", "RFC 3339 time: started before"),
        (
            "limit",
            "at most this many runs (default 100, at most 1000)",
        ),
        ("after", "the `next_after` of the previous page"),
    ]),
    doc(
        Get,
        auth::SNAPSHOTS_PATH,
        Person,
        "fleet",
        "A system's snapshot inventory: capture times and copies per repository",
    )
    .gives(200, "SnapshotInventory")
    .query(&[("system", "the system (required)")]),
    doc(
        Get,
        auth::ASSESSMENTS_PATH,
        Person,
        "fleet",
        "One row per system and scenario, with reasons",
    )
    .gives(200, "AssessmentsPage")
    .query(&[
        ("scenario", "component-loss, site-loss or ransomware"),
        ("tier", "only this tier"),
        ("status", "compliant, at-risk, breached or no-evidence"),
        (
            "limit",
            "at most this many systems (default 100, at most 1000)",
        ),
        ("after", "the `next_after` of the previous page"),
    ]),
    doc(
        Get,
        auth::POLICY_PATH,
        Person,
        "admin",
        "The policy in force: digest, files and their sha256, counts",
    )
    .gives(200, "PolicyView"),
    doc(
        Get,
        auth::ALERTS_PATH,
        Person,
        "fleet",
        "Alerts firing or resolved",
    )
    .gives(200, "AlertList")
    .query(&[("state", "firing or resolved (default: both)")]),
    // Drills
    doc(
        Get,
        auth::DRILL_PLANS_PATH,
        Person,
        "drills",
        "Drill plans of the policy in force, their steps and when each is due",
    )
    .gives(200, "DrillPlanList"),
    doc(
        Get,
        auth::DRILL_PREVIEW_PATH,
        Person,
        "drills",
        "What a drill of the plan would do now: restore points, passed-over copies, estimated time",
    )
    .gives(200, "PreviewView"),
    doc(
        Get,
        auth::DRILLS_PATH,
        Person,
        "drills",
        "Drills, newest first",
    )
    .gives(200, "DrillsPage")
    .query(&[
        ("plan", "only drills of this plan"),
        (
            "status",
            "scheduled, running, finished, aborted, not-ready or failed",
        ),
        (
            "limit",
            "at most this many drills (default 50, at most 1000)",
        ),
        ("after", "the `next_after` of the previous page"),
    ]),
    doc(
        Post,
        auth::DRILLS_PATH,
        Person,
        "drills",
        "Start a drill now or at `at` (409 while one of the plan is active)",
    )
    .takes("StartDrillRequest")
    .gives(201, "StartedDrill"),
    doc(
        Get,
        auth::DRILL_PATH,
        Person,
        "drills",
        "One drill: timeline, steps, systems with their task reports, readiness, log, seal",
    )
    .gives(200, "DrillDetail"),
    doc(
        Post,
        auth::DRILL_APPROVE_PATH,
        Person,
        "drills",
        "Approve a gate that is waiting (the gate's role or above); applied at the next tick",
    )
    .takes("ApproveRequest")
    .gives(202, "InputAccepted"),
    doc(
        Post,
        auth::DRILL_ABORT_PATH,
        Person,
        "drills",
        "Abort a drill that has not ended; applied at the next tick",
    )
    .takes("AbortRequest")
    .gives(202, "InputAccepted"),
    doc(
        Get,
        auth::DRILL_RECORD_PATH,
        Person,
        "drills",
        "The sealed drill record as stored (JSON; 404 until sealed)",
    ),
    doc(
        Get,
        auth::DRILL_BUNDLE_PATH,
        Person,
        "drills",
        "The evidence bundle (application/zstd tar archive; 404 until sealed)",
    ),
    doc(
        Get,
        auth::DRILL_REPORT_PATH,
        Person,
        "drills",
        "The drill report (standards §4.1) from the sealed record, as a printable HTML page or \
         a PDF (404 until sealed; 503 when the coordinator has no Chromium or CJK font to print)",
    )
    .query(&[
        (
            "lang",
            "en or zh-CN (default: the Accept-Language header's choice, else en)",
        ),
        ("format", "html (default) or pdf"),
    ]),
    doc(
        Get,
        auth::DRILL_CHAIN_PATH,
        Person,
        "drills",
        "Verify the hash chain of sealed drill records",
    )
    .gives(200, "ChainView"),
    doc(
        Get,
        auth::DRILL_CALENDAR_PATH,
        Person,
        "drills",
        "Plans due by cadence, the regulatory calendar, systems never drilled or overdue",
    )
    .gives(200, "CalendarView"),
    doc(
        Get,
        auth::REPORTS_QUARTERLY_PATH,
        Person,
        "reports",
        "The quarterly recovery-objectives report (standards §4.2), audited as a privileged read \
         (503 for a PDF when the coordinator has no Chromium or CJK font to print)",
    )
    .query(&[
        (
            "quarter",
            "e.g. 2026Q4 (default: the last complete quarter in the head office's time zone)",
        ),
        (
            "lang",
            "en or zh-CN (default: the Accept-Language header's choice, else en)",
        ),
        ("format", "html (default), pdf, csv or json"),
    ]),
];

/// The document.
pub fn document(extra_schemas: Schemas) -> OpenApi {
    let mut paths = Paths::new();
    for d in DOCS {
        paths.add_path_operation(d.path, vec![method(d.verb)], operation(d));
    }
    let mut schemas = Schemas::new();
    add::<api::EnrolRequest>(&mut schemas);
    add::<api::EnrolResponse>(&mut schemas);
    add::<api::Heartbeat>(&mut schemas);
    add::<api::HeartbeatResponse>(&mut schemas);
    add::<api::Assignment>(&mut schemas);
    add::<api::RunBatch>(&mut schemas);
    add::<api::RunBatchResponse>(&mut schemas);
    add::<api::DrillReportBatch>(&mut schemas);
    add::<api::DrillReportResponse>(&mut schemas);
    add::<api::ApiError>(&mut schemas);
    schemas.extend(super::people_api::schemas());
    schemas.extend(super::fleet_api::schemas());
    add::<super::alerts::api::AlertList>(&mut schemas);
    schemas.extend(super::drills_api::schemas());
    schemas.extend(extra_schemas);
    let schemas: BTreeMap<String, RefOr<Schema>> = schemas.into_iter().collect();
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .security_scheme(
            "agent-token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        )
        .security_scheme(
            "person-token",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        )
        .build();
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("lifeboat coordinator")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Agents enrol, report heartbeats and run records, and fetch their host's \
                     policy; people (viewer < operator < admin) read the fleet's recovery \
                     objectives and administer it. Every error is an `ApiError`.",
                )),
        )
        .paths(paths)
        .components(Some(components))
        .build()
}

fn method(verb: Verb) -> HttpMethod {
    match verb {
        Verb::Get => HttpMethod::Get,
        Verb::Post => HttpMethod::Post,
        Verb::Patch => HttpMethod::Patch,
        Verb::Delete => HttpMethod::Delete,
    }
}

/// What the role matrix says about a people route, for its description.
fn access_note(d: &Doc) -> String {
    match d.caller {
        Caller::Agent if d.path == api::ENROL_PATH => {
            "An agent with a one-time enrolment token (in the body).".into()
        }
        Caller::Agent => "An enrolled agent, with its own token; it sees only its host.".into(),
        Caller::Person => match auth::rule_for(&method_of(d.verb), d.path).map(|r| r.access) {
            Some(Access::Public) => "Public.".into(),
            Some(Access::AtLeast(role)) => format!("Role {} or above.", role.as_str()),
            None => "Not in the role matrix: answers 500 (fail closed).".into(),
        },
    }
}

fn method_of(verb: Verb) -> axum::http::Method {
    verb.method()
}

fn json_ref(schema: &str) -> ContentBuilder {
    ContentBuilder::new().schema(Some(Ref::from_schema_name(schema)))
}

fn operation(d: &Doc) -> Operation {
    let public = matches!(
        auth::rule_for(&method_of(d.verb), d.path).map(|r| r.access),
        Some(Access::Public)
    ) || d.path == api::ENROL_PATH;
    let mut op = OperationBuilder::new()
        .summary(Some(d.summary))
        .description(Some(access_note(d)))
        .tag(d.tag);
    if !public {
        let scheme = match d.caller {
            Caller::Agent => "agent-token",
            Caller::Person => "person-token",
        };
        op = op.security(SecurityRequirement::new(scheme, Vec::<String>::new()));
    }
    for name in path_params(d.path) {
        op = op.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        );
    }
    for (name, description) in d.query {
        op = op.parameter(
            ParameterBuilder::new()
                .name(*name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(*description))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        );
    }
    if let Some(schema) = d.request {
        op = op.request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", json_ref(schema).build())
                .required(Some(Required::True))
                .build(),
        ));
    }
    let (status, body) = d.response;
    let mut ok = ResponseBuilder::new().description("Success");
    if let Some(schema) = body {
        ok = ok.content("application/json", json_ref(schema).build());
    }
    op = op.response(status.to_string(), ok.build());
    let error = |what: &str| {
        ResponseBuilder::new()
            .description(what)
            .content("application/json", json_ref("ApiError").build())
            .build()
    };
    op = op.response("4XX", error("The request was refused; `message` says why"));
    op = op.response(
        "5XX",
        error("The coordinator or its database failed; retry later"),
    );
    op.build()
}

/// `{name}` segments of an axum path.
fn path_params(path: &str) -> impl Iterator<Item = &str> {
    path.split('/')
        .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
}

/// `GET /api/v1/openapi.json`.
pub async fn serve(document: std::sync::Arc<OpenApi>) -> impl IntoResponse {
    Json(document.as_ref().clone())
}

/// A string schema, for fields whose type has no schema of its own.
pub fn string_schema() -> RefOr<Schema> {
    String::schema()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    /// Every `$ref` in `value`.
    fn refs(value: &serde_json::Value, out: &mut BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    if k == "$ref" {
                        if let Some(s) = v.as_str() {
                            out.insert(s.to_string());
                        }
                    } else {
                        refs(v, out);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_route_is_documented_once_and_every_reference_resolves() {
        let documented: BTreeSet<(String, &str)> = DOCS
            .iter()
            .map(|d| (d.verb.method().to_string(), d.path))
            .collect();
        assert_eq!(documented.len(), DOCS.len(), "a route is documented twice");
        let mut served: BTreeSet<(String, &str)> = auth::ROLE_MATRIX
            .iter()
            .filter(|r| !auth::is_dashboard_path(r.path))
            .map(|r| (r.verb.method().to_string(), r.path))
            .collect();
        for (verb, path) in [
            (Post, api::ENROL_PATH),
            (Post, api::HEARTBEAT_PATH),
            (Get, api::ASSIGNMENT_PATH),
            (Post, api::RUNS_PATH),
            (Post, api::DRILL_REPORTS_PATH),
        ] {
            served.insert((verb.method().to_string(), path));
        }
        assert_eq!(
            documented.difference(&served).collect::<Vec<_>>(),
            Vec::<&(String, &str)>::new(),
            "documented but not served"
        );
        assert_eq!(
            served.difference(&documented).collect::<Vec<_>>(),
            Vec::<&(String, &str)>::new(),
            "served but not documented (add a line to DOCS)"
        );

        let doc = serde_json::to_value(document(Schemas::new())).unwrap();
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..3]), Some("3.1"));
        let mut found = BTreeSet::new();
        refs(&doc, &mut found);
        let components = doc["components"]["schemas"].as_object().unwrap();
        for r in &found {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(components.contains_key(name), "{r} does not resolve");
        }
        // The role comes from the matrix.
        let users = &doc["paths"]["/api/v1/users"]["get"]["description"];
        assert_eq!(users.as_str(), Some("Role admin or above."));
        let heartbeat = &doc["paths"][api::HEARTBEAT_PATH]["post"];
        assert_eq!(
            heartbeat["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Heartbeat"
        );
    }
}
