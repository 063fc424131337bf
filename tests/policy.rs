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
    let reversed = policy::load_files(&files).expect("valid policies");
    assert_eq!(by_dir.digest, reversed.digest);
    files.pop();
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
