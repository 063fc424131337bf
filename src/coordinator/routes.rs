//! The router builder of the people-facing APIs ([`super::people_api`], [`super::fleet_api`]):
//! every route is added together with its verb, so that the finished router and the list of
//! what it routes cannot disagree, and a unit test can compare that list with
//! [`auth::ROLE_MATRIX`](super::auth::ROLE_MATRIX).
//!
//! [`Routes::finish`] puts every route behind [`auth::gate`] (the role matrix, fail-closed) and a
//! body limit. This module holds no handler and no rule of who may call what; it must never add
//! a route that bypasses the gate.

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::middleware::from_fn_with_state;
use axum::routing::on;

use super::auth::{self, Auth, Verb};

/// A router over state `S` being built, and the `(verb, path)` of every route it holds.
pub struct Routes<S> {
    router: axum::Router<S>,
    listed: Vec<(Verb, &'static str)>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Routes::new()
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    pub fn new() -> Self {
        Routes {
            router: axum::Router::new(),
            listed: Vec::new(),
        }
    }

    /// Routes `verb path` to `handler`.
    pub fn add<H, T>(mut self, verb: Verb, path: &'static str, handler: H) -> Self
    where
        H: Handler<T, S>,
        T: 'static,
    {
        self.router = self.router.route(path, on(verb.filter(), handler));
        self.listed.push((verb, path));
        self
    }

    /// What the router routes, in the order added.
    pub fn listed(&self) -> &[(Verb, &'static str)] {
        &self.listed
    }

    /// The finished router: every route behind the role-matrix gate of `auth`, bodies limited
    /// to `max_body` bytes.
    pub fn finish(self, auth: Auth, max_body: usize, state: S) -> axum::Router {
        self.router
            .route_layer(from_fn_with_state(auth, auth::gate))
            .layer(DefaultBodyLimit::max(max_body))
            .with_state(state)
    }

    /// The finished router behind another gate than [`auth::gate`]: for the dashboard, whose
    /// gate reads the session cookie. `gate` puts the routes behind a `route_layer` that
    /// decides through [`Auth::admit`](super::auth::Auth::admit), i.e. the role matrix.
    pub fn finish_with(
        self,
        gate: impl FnOnce(axum::Router<S>) -> axum::Router<S>,
        max_body: usize,
        state: S,
    ) -> axum::Router {
        gate(self.router)
            .layer(DefaultBodyLimit::max(max_body))
            .with_state(state)
    }
}

#[cfg(test)]
mod tests {
    use super::super::auth::{Access, ROLE_MATRIX, rule_for};
    use super::super::{alerts, drills_api, fleet_api, people_api};

    #[test]
    fn the_people_routers_route_exactly_the_role_matrix() {
        let mut listed = people_api::routes().listed().to_vec();
        listed.extend_from_slice(fleet_api::routes().listed());
        listed.extend_from_slice(alerts::api::routes().listed());
        listed.extend_from_slice(drills_api::routes().listed());
        listed.extend_from_slice(crate::web::routes().listed());
        for (verb, path) in &listed {
            assert!(
                rule_for(&verb.method(), path).is_some(),
                "{verb:?} {path} is not in the role matrix"
            );
        }
        for rule in ROLE_MATRIX {
            assert!(
                listed.contains(&(rule.verb, rule.path)),
                "{rule:?} is in the matrix but not routed"
            );
        }
        assert_eq!(listed.len(), ROLE_MATRIX.len(), "a route is added twice");
        assert!(ROLE_MATRIX.iter().any(|r| r.access == Access::Public));
    }
}
