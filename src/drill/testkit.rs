//! Fixtures for the drill tests: drill plans written as TOML (the loader's `id` added), on top
//! of the assessment tests' policy (`crate::assess::testkit`).

use crate::policy::{DrillPlan, Policy};

/// A plan from the TOML of its table (without the `[drills.<id>]` header).
pub fn plan(id: &str, body: &str) -> DrillPlan {
    let mut table: toml::Table = toml::from_str(body).unwrap();
    table.insert("id".into(), toml::Value::String(id.into()));
    toml::Value::Table(table).try_into().unwrap()
}

/// A minimal plan body: `scenario` and `scope` tables as TOML inline tables.
pub fn body(drill_type: &str, scenario: &str, scope: &str) -> String {
    format!(
        r#"
title = "test drill"
type = "{drill_type}"
scenario = {scenario}
scope = {scope}
standby = {{ site = "dc", host = "dr1", restore-root = "/srv/drill" }}
steps = [{{ name = "restore", action = "restore" }}]
"#
    )
}

/// The assessment tests' policy with `plans` added.
pub fn with_plans(policy: Policy, plans: Vec<DrillPlan>) -> Policy {
    policy.with_drills(plans.into_iter().map(|p| (p.id.clone(), p)).collect())
}
