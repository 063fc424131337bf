//! Policy loading, end to end: the example policies in `policies/` load without a problem, and
//! every broken policy in `tests/policy_errors/` gives exactly the report in its `.expected` file.
//!
//! A case is `NN-name.toml` (one file) or `NN-name/` (a directory loaded with `load_dir`), next
//! to `NN-name.expected`. The expectations are golden files, reviewed by eye: after a deliberate
//! change of wording, `LIFEBOAT_BLESS=1 cargo test --test policy` rewrites them, and `git diff`
//! shows what changed. Never bless in CI.

use std::path::{Path, PathBuf};

use lifeboat::policy::{self, Policy, PolicyReport};

const CORPUS: &str = "tests/policy_errors";

/// Problems name files relative to the crate root, as a user running `lifeboat policy check`
/// from there would see them.
fn at_crate_root() {
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or_else(|e| panic!("cannot enter the crate root: {e}"));
}

fn cases() -> Vec<PathBuf> {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(CORPUS)
        .unwrap_or_else(|e| panic!("cannot read {CORPUS}: {e}"))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("cannot read {CORPUS}: {e}"))
                .path()
        })
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "toml"))
        .collect();
    cases.sort();
    cases
}

fn load(case: &Path) -> Result<Policy, PolicyReport> {
    if case.is_dir() {
        policy::load_dir(case)
    } else {
        policy::load_files(&[case.to_path_buf()])
    }
}

/// A line diff (longest common subsequence), `-` expected, `+` actual.
fn diff(expected: &str, actual: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out += &format!("  {}\n", a[i]);
            (i, j) = (i + 1, j + 1);
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out += &format!("+ {}\n", b[j]);
            j += 1;
        } else {
            out += &format!("- {}\n", a[i]);
            i += 1;
        }
    }
    out
}

#[test]
fn broken_policies_give_the_expected_reports() {
    at_crate_root();
    let bless = std::env::var_os("LIFEBOAT_BLESS").is_some();
    let cases = cases();
    assert!(
        cases.len() >= 25,
        "the corpus has only {} cases",
        cases.len()
    );
    let mut failures = Vec::new();
    for case in &cases {
        let actual = match load(case) {
            Ok(_) => "(no problems)".to_owned(),
            Err(report) => report.to_string(),
        };
        let expected_path = case.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, format!("{actual}\n")).expect("writable corpus");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected.trim_end() != actual.trim_end() {
            failures.push(format!(
                "{}: report differs from {}\n{}",
                case.display(),
                expected_path.display(),
                diff(expected.trim_end(), actual.trim_end())
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn every_case_is_a_problem_and_has_an_expectation() {
    at_crate_root();
    for case in cases() {
        assert!(
            load(&case).is_err(),
            "{} loads without problems",
            case.display()
        );
        assert!(
            case.with_extension("expected").is_file(),
            "{} has no .expected file",
            case.display()
        );
    }
}

/// Corpus cases write inline secrets as "hunter2"; no report may repeat one.
#[test]
fn reports_never_echo_secret_values() {
    at_crate_root();
    let mut checked = 0;
    for case in cases() {
        let Err(report) = load(&case) else { continue };
        let text = report.to_string();
        assert!(
            !text.contains("hunter2"),
            "{} echoes a secret:\n{text}",
            case.display()
        );
        if case.is_file() && std::fs::read_to_string(&case).is_ok_and(|t| t.contains("hunter2")) {
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} cases carry an inline secret");
}

#[test]
fn example_policies_load_without_problems() {
    at_crate_root();
    let policy = match policy::load_dir(Path::new("policies")) {
        Ok(policy) => policy,
        Err(report) => panic!("policies/ has problems:\n{report}"),
    };
    let counts = (
        policy.tiers.len(),
        policy.sites.len(),
        policy.repositories.len(),
        policy.systems.len(),
    );
    assert_eq!(counts, (4, 5, 9, 8), "tiers, sites, repositories, systems");
    let drills: Vec<&str> = policy.drills.keys().map(|id| id.as_str()).collect();
    assert_eq!(
        drills,
        [
            "branch-ransomware",
            "linfen-site-loss",
            "yuncheng-full-switchover",
            "yuncheng-restore-test"
        ]
    );
    assert_eq!(policy.digest.len(), 64);

    let finance = policy
        .system("linfen-finance")
        .expect("linfen-finance is defined");
    assert_eq!(policy.tier_of(finance).id.as_str(), "T1");
    assert_eq!(policy.site_of(finance).name_zh.as_deref(), Some("临汾支行"));
    let chain: Vec<&str> = policy
        .repositories_of(finance)
        .iter()
        .map(|r| r.id.as_str())
        .collect();
    assert_eq!(chain, ["linfen-local", "linfen-offsite", "linfen-vault"]);
    assert!(
        policy
            .repository("linfen-vault")
            .is_some_and(|r| r.immutable)
    );

    let text = policy.render_text();
    for id in policy.systems.keys() {
        assert!(text.contains(id.as_str()), "render_text lists {id}");
    }
    assert!(text.contains("\ndrills (4)\n"), "{text}");
    for id in policy.drills.keys() {
        assert!(
            text.contains(&format!("\n  {id}  ")),
            "render_text lists {id}"
        );
    }
    // A plan shows its resolved scope and each step with what it marks.
    for line in [
        "      scenario site-loss of linfen\n      scope linfen-credit, linfen-finance, linfen-operations\n",
        "      4. business-verification: gate by operator (Linfen finance and credit business owners) · timeout 4h -> verify-pass\n",
        "      5. switch-over: command /usr/local/lib/lifeboat/drill/switch-dns --branch linfen --to datong-dr · timeout 30m -> service\n",
        "      scope yuncheng-credit, yuncheng-finance, yuncheng-operations (sample 1 per tier)\n        from sites yuncheng\n",
    ] {
        assert!(text.contains(line), "render_text lacks {line:?}:\n{text}");
    }
    let json = serde_json::to_value(&policy).expect("the policy serialises");
    assert_eq!(
        json["systems"]["linfen-finance"]["schedules"][0]["cron"],
        "0 0 */4 * * *"
    );
    assert_eq!(json["tiers"]["T0"]["rpo"], "15m");
}

/// The digest depends on the policy, not on how it is split into files or in which order they
/// are given.
#[test]
fn digest_ignores_file_order() {
    at_crate_root();
    let by_dir = policy::load_dir(Path::new("policies")).expect("valid policies");
    let mut files = vec![
        PathBuf::from("policies/systems/yuncheng.toml"),
        PathBuf::from("policies/repositories.toml"),
        PathBuf::from("policies/systems/head-office.toml"),
        PathBuf::from("policies/sites.toml"),
        PathBuf::from("policies/tiers.toml"),
        PathBuf::from("policies/systems/linfen.toml"),
    ];
    let mut drills: Vec<PathBuf> = std::fs::read_dir("policies/drills")
        .expect("policies/drills")
        .map(|e| e.expect("a directory entry").path())
        .collect();
    drills.sort();
    drills.reverse();
    files.splice(0..0, drills);
    let reversed = policy::load_files(&files).expect("valid policies");
    assert_eq!(by_dir.digest, reversed.digest);
    files.pop();
    // Drill plans refer to Linfen's systems; without them, nothing does.
    files.retain(|f| !f.starts_with("policies/drills"));
    let without_linfen =
        policy::load_files(&files).expect("nothing else refers to Linfen's systems");
    assert_ne!(by_dir.digest, without_linfen.digest);
}

#[test]
fn directories_without_policies_are_problems() {
    let empty = tempfile::tempdir().unwrap();
    let report = policy::load_dir(empty.path()).unwrap_err();
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].message, "no policy files (*.toml) found");

    let missing = empty.path().join("nope");
    let report = policy::load_dir(&missing).unwrap_err();
    assert!(
        report.problems[0]
            .message
            .starts_with("cannot read directory"),
        "{report}"
    );

    // Hidden files and directories are not policy.
    std::fs::create_dir(empty.path().join(".git")).unwrap();
    std::fs::write(empty.path().join(".git/x.toml"), "garbage [").unwrap();
    std::fs::write(empty.path().join(".draft.toml"), "garbage [").unwrap();
    assert_eq!(
        policy::load_dir(empty.path()).unwrap_err().problems[0].message,
        "no policy files (*.toml) found"
    );
}

#[test]
fn a_single_file_loads_like_a_directory() {
    at_crate_root();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.toml");
    let mut text = String::new();
    for part in [
        "tiers.toml",
        "sites.toml",
        "repositories.toml",
        "systems/linfen.toml",
    ] {
        text += &std::fs::read_to_string(Path::new("policies").join(part)).unwrap();
        text += "\n";
    }
    std::fs::write(&file, text).unwrap();
    let policy = policy::load_dir(&file).unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(policy.systems.len(), 3);
}

#[test]
fn problems_serialise_for_json_output() {
    at_crate_root();
    let report =
        policy::load_files(&[PathBuf::from("tests/policy_errors/17-self-dependency.toml")])
            .unwrap_err();
    let json = report.problems_json();
    assert_eq!(json[0]["key_path"], "systems.linfen-finance.depends-on[0]");
    assert_eq!(json[0]["line"], 35);
    assert_eq!(json[0]["hint"], "remove it from depends-on");
}

/// The shipped drill plans, as the coordinator will read them: scopes resolved against the
/// policy, every system in scope restorable under its scenario, steps in timeline order.
#[test]
fn example_drill_plans_resolve_against_the_policy() {
    use lifeboat::policy::{DrillScenarioKind, DrillType, Mark, StepAction};
    at_crate_root();
    let policy = policy::load_dir(Path::new("policies")).unwrap_or_else(|r| panic!("{r}"));
    let scope = |id: &str| -> Vec<String> {
        policy.drills[id]
            .systems_in_scope(policy.systems.values())
            .iter()
            .map(|s| s.id.to_string())
            .collect()
    };
    assert_eq!(
        scope("linfen-site-loss"),
        ["linfen-credit", "linfen-finance", "linfen-operations"]
    );
    assert_eq!(
        scope("branch-ransomware"),
        [
            "linfen-credit",
            "linfen-finance",
            "yuncheng-credit",
            "yuncheng-finance"
        ]
    );
    assert_eq!(
        policy.drills["yuncheng-restore-test"].scope.sample_per_tier,
        Some(1)
    );
    for (id, plan) in &policy.drills {
        for system in plan.systems_in_scope(policy.systems.values()) {
            let repos = policy.repositories_of(system);
            assert!(
                repos.iter().any(|r| plan.scenario.allows(r)),
                "{id}: {} has no repository its scenario allows",
                system.id
            );
            // The branch-local repository burns with the branch and is not immutable.
            if plan.scenario.kind != DrillScenarioKind::ComponentLoss {
                assert!(!plan.scenario.allows(repos[0]), "{id}: {}", repos[0].id);
            }
        }
        assert_eq!(
            plan.steps[plan.steps.iter().position(|s| s.is_per_system()).unwrap()].action,
            StepAction::Restore,
            "{id}"
        );
        let marks: Vec<Mark> = plan
            .steps
            .iter()
            .filter_map(|s| s.effective_mark())
            .collect();
        let mut sorted = marks.clone();
        sorted.sort();
        assert_eq!(marks, sorted, "{id}: marks in timeline order");
    }
    let full = &policy.drills["yuncheng-full-switchover"];
    assert_eq!(full.drill_type, DrillType::FullSwitchover);
    let marks: Vec<String> = full
        .steps
        .iter()
        .filter_map(|s| s.effective_mark())
        .map(|m| m.to_string())
        .collect();
    assert_eq!(
        marks,
        [
            "declare",
            "verify-pass",
            "service",
            "failback-start",
            "failback-done"
        ]
    );
    assert_eq!(
        policy.drills["branch-ransomware"]
            .scenario
            .compromised_for
            .map(|d| d.to_string()),
        Some("3d".to_owned())
    );

    // `policy show --json` is the policy serialised: drill plans with their kebab-case keys.
    let json = serde_json::to_value(&policy).expect("the policy serialises");
    let linfen = &json["drills"]["linfen-site-loss"];
    assert_eq!(linfen["type"], "targeted-switchover");
    assert_eq!(linfen["scenario"]["lost-site"], "linfen");
    assert_eq!(linfen["standby"]["restore-root"], "/srv/lifeboat/drill");
    assert_eq!(linfen["steps"][2]["per-system"], true);
    assert_eq!(linfen["steps"][4]["mark"], "service");
    assert_eq!(linfen["steps"][0]["timeout"], "6h");
}

/// Drill plans are the coordinator's: no host's assignment holds one, and a host's assignment
/// is the same with or without them.
#[test]
fn drill_plans_are_never_part_of_an_assignment() {
    at_crate_root();
    let with = policy::load_dir(Path::new("policies")).unwrap_or_else(|r| panic!("{r}"));
    let mut files = Vec::new();
    for part in ["tiers.toml", "sites.toml", "repositories.toml"] {
        files.push(Path::new("policies").join(part));
    }
    for part in ["head-office.toml", "linfen.toml", "yuncheng.toml"] {
        files.push(Path::new("policies/systems").join(part));
    }
    let without = policy::load_files(&files).unwrap_or_else(|r| panic!("{r}"));
    assert!(without.drills.is_empty());
    assert_ne!(with.digest, without.digest, "the digest covers drill plans");
    for host in ["linfen-fs01", "yuncheng-fs02", "ho-report01"] {
        let mine = with.for_host(host).expect("a host with systems");
        assert!(mine.drills.is_empty(), "{host}");
        assert_eq!(
            mine.digest,
            without.for_host(host).expect("same host").digest,
            "{host}"
        );
        let text: String = mine
            .to_files()
            .unwrap_or_else(|e| panic!("{host}: {e}"))
            .into_iter()
            .map(|(_, t)| t)
            .collect();
        assert!(!text.contains("drills"), "{host}: {text}");
    }
}

/// Drill plans may live in any file of the policy.
#[test]
fn a_drill_plan_may_sit_in_any_file() {
    at_crate_root();
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for part in [
        "tiers.toml",
        "sites.toml",
        "repositories.toml",
        "systems/linfen.toml",
        "drills/linfen-site-loss.toml",
    ] {
        text += &std::fs::read_to_string(Path::new("policies").join(part)).unwrap();
        text += "\n";
    }
    let file = dir.path().join("all.toml");
    std::fs::write(&file, text).unwrap();
    let policy = policy::load_dir(&file).unwrap_or_else(|r| panic!("{r}"));
    assert_eq!(policy.drills.len(), 1);
}

/// A drill problem in JSON: file, line, column and the key path into the plan's steps.
#[test]
fn drill_problems_name_the_step_and_key() {
    at_crate_root();
    let report = policy::load_files(&[PathBuf::from("tests/policy_errors/44-drill-steps.toml")])
        .unwrap_err();
    let json = report.problems_json();
    let problems = json.as_array().expect("an array");
    let command = problems
        .iter()
        .find(|p| p["key_path"] == "drills.linfen-site-loss.steps[4].command")
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(command["file"], "tests/policy_errors/44-drill-steps.toml");
    assert_eq!(
        (command["line"].as_u64(), command["column"].as_u64()),
        (Some(84), Some(1))
    );
    assert_eq!(command["message"], "a command step needs command");
}
