//! The coordinator's web dashboard: server-rendered pages (maud, every interpolation escaped)
//! for viewers, operators and admins, in English and Chinese, under `/ui` (`/` redirects
//! there). The fleet overview with the branch × tier compliance heat map, systems by tier with
//! their exposure and its reasons, one system's history, the drill calendar and list, a drill's
//! live timeline with its gates, alerts, the audit log and report downloads.
//!
//! Every route is a line of the API's role matrix ([`crate::coordinator::auth::ROLE_MATRIX`])
//! and sits behind [`gate::gate`], which decides through the same `Auth::admit` as the API with
//! the session cookie as the credential, and checks the CSRF token of every form.
//!
//! What it must not do: hold SQL or assess anything (it reads the sweep's latest view and calls
//! the API modules' own functions — an approval here is the API's approval, the same drill
//! input with the same checks and audit entry), run script in the browser (a drill page
//! refreshes itself with `<meta http-equiv=refresh>`), build HTML by concatenating strings, or
//! show a token, a password or a secret source.

mod admin;
mod drills;
mod fleet;
pub mod gate;
mod layout;
mod login;
pub mod view;

use axum::middleware::from_fn_with_state;

use crate::coordinator::auth::{
    Auth, UI_ALERTS_PATH, UI_AUDIT_PATH, UI_DRILL_ABORT_PATH, UI_DRILL_APPROVE_PATH, UI_DRILL_PATH,
    UI_DRILL_REPORT_PATH, UI_DRILLS_PATH, UI_HOME_PATH, UI_LOGIN_PATH, UI_LOGOUT_PATH,
    UI_QUARTERLY_PATH, UI_REPORTS_PATH, UI_ROOT_PATH, UI_SYSTEM_PATH, UI_SYSTEMS_PATH, Verb,
};
use crate::coordinator::drills_api::DrillsApi;
use crate::coordinator::fleet_api::FleetApi;
use crate::coordinator::routes::Routes;

/// What the dashboard's handlers share: the API modules whose functions they call. Cheap to
/// clone.
#[derive(Clone)]
pub struct Web {
    /// Sessions, the role matrix and the audit log.
    pub auth: Auth,
    /// The sweep's latest view, the policy in force, the fleet mappings.
    pub fleet: FleetApi,
    /// Drill plans, drills, approvals and aborts.
    pub drills: DrillsApi,
    /// Pages are served over TLS: cookies are `Secure`.
    pub secure_cookies: bool,
}

impl Web {
    pub fn new(fleet: FleetApi, drills: DrillsApi, secure_cookies: bool) -> Self {
        Web {
            auth: fleet.auth.clone(),
            fleet,
            drills,
            secure_cookies,
        }
    }
}

/// The dashboard router, every route behind [`gate::gate`].
pub fn router(web: Web) -> axum::Router {
    let gate_state = web.clone();
    routes().finish_with(
        |r| r.route_layer(from_fn_with_state(gate_state, gate::gate)),
        gate::MAX_FORM,
        web,
    )
}

/// Every dashboard route and its handler (compared with the role matrix by a test).
pub(crate) fn routes() -> Routes<Web> {
    Routes::new()
        .add(Verb::Get, UI_ROOT_PATH, login::root)
        .add(Verb::Get, UI_LOGIN_PATH, login::form)
        .add(Verb::Post, UI_LOGIN_PATH, login::submit)
        .add(Verb::Post, UI_LOGOUT_PATH, login::logout)
        .add(Verb::Get, UI_HOME_PATH, fleet::home)
        .add(Verb::Get, UI_SYSTEMS_PATH, fleet::systems)
        .add(Verb::Get, UI_SYSTEM_PATH, fleet::system)
        .add(Verb::Get, UI_DRILLS_PATH, drills::list)
        .add(Verb::Post, UI_DRILLS_PATH, drills::start)
        .add(Verb::Get, UI_DRILL_PATH, drills::detail)
        .add(Verb::Post, UI_DRILL_APPROVE_PATH, drills::approve)
        .add(Verb::Post, UI_DRILL_ABORT_PATH, drills::abort)
        .add(Verb::Get, UI_DRILL_REPORT_PATH, drills::report)
        .add(Verb::Get, UI_ALERTS_PATH, admin::alerts)
        .add(Verb::Get, UI_AUDIT_PATH, admin::audit)
        .add(Verb::Get, UI_REPORTS_PATH, admin::reports)
        .add(Verb::Get, UI_QUARTERLY_PATH, admin::quarterly)
}
