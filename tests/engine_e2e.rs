//! End-to-end tests of the real `lifeboat` binary against real repositories: local directories
//! and a Garage S3 server on 127.0.0.1, read back by Debian's restic.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use common::{Garage, assert_same_tree, lifeboat, make_dataset, restic_bin};
use serde_json::Value;

const PASSWORD: &str = "correct-horse-battery-staple-7f3a";

/// One isolated lifeboat installation: policy, state, source data and repositories in a tempdir.
struct Env {
    dir: tempfile::TempDir,
    /// Extra environment for every command (password and S3 key variables).
    vars: Vec<(String, String)>,
    secrets: Vec<String>,
}

struct S3 {
    endpoint: String,
    key_id: String,
    secret: String,
    bucket: String,
}

impl S3 {
    fn of(g: &Garage) -> S3 {
        S3 {
            endpoint: g.endpoint.clone(),
            key_id: g.access_key_id.clone(),
            secret: g.secret_access_key.clone(),
            bucket: g.bucket.clone(),
        }
    }
}

impl Env {
    /// A policy with one system `branch-finance` backed up to a local repository and, if `s3`
    /// is given, copied to an S3 repository at `prefix`.
    fn new(s3: Option<(&S3, &str)>) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("policies")).unwrap();
        make_dataset(&root.join("src"));
        let mut repos = format!(
            r#"
[repositories.branch-local]
url = "{local}"
location = "local"
password = {{ env = "TEST_REPO_PASSWORD" }}
"#,
            local = root.join("repos/local").display()
        );
        let mut chain = vec!["branch-local"];
        let mut vars = vec![("TEST_REPO_PASSWORD".to_string(), PASSWORD.to_string())];
        let mut secrets = vec![PASSWORD.to_string()];
        let (tier_copies, tier_offsite) = if let Some((s3, prefix)) = s3 {
            repos.push_str(&format!(
                r#"
[repositories.dc-offsite]
url = "s3://{bucket}/{prefix}"
location = "remote"
endpoint = "{endpoint}"
allow-http = true
region = "us-east-1"
access-key-id = {{ env = "TEST_S3_KEY_ID" }}
secret-access-key = {{ env = "TEST_S3_SECRET" }}
password = {{ env = "TEST_REPO_PASSWORD" }}
request-timeout = "20s"
max-retries = 2
"#,
                bucket = s3.bucket,
                endpoint = s3.endpoint
            ));
            chain.push("dc-offsite");
            vars.push(("TEST_S3_KEY_ID".into(), s3.key_id.clone()));
            vars.push(("TEST_S3_SECRET".into(), s3.secret.clone()));
            secrets.push(s3.secret.clone());
            (2, 1)
        } else {
            (1, 0)
        };
        let policy = format!(
            r#"
{tier_and_site}
{repos}
[systems.branch-finance]
name = "Finance share"
department = "finance"
site = "branch"
host = "branch-fs01"
tier = "TT"
paths = ["{src}"]
excludes = ["*.tmp", "{src}/cache-dir"]
repositories = [{chain}]
schedules = [
    {{ job = "backup", cron = "@daily" }},
    {{ job = "copy", cron = "@daily" }},
    {{ job = "check", cron = "@daily" }},
    {{ job = "read-data", cron = "@weekly" }},
    {{ job = "forget", cron = "@weekly" }},
]

[systems.branch-finance.retention]
keep-last = 2
"#,
            tier_and_site =
                common::test_tier_and_site("24h", tier_copies, tier_offsite, "7d", "90d"),
            src = root.join("src").display(),
            chain = chain
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        std::fs::write(root.join("policies/policy.toml"), policy).unwrap();
        Env { dir, vars, secrets }
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn src(&self) -> PathBuf {
        self.root().join("src")
    }

    fn cmd(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = lifeboat();
        cmd.args(args)
            .env("LIFEBOAT_POLICY", self.root().join("policies"))
            .env("LIFEBOAT_STATE_DIR", self.root().join("state"))
            .env("LIFEBOAT_LOG", "debug")
            .envs(self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        cmd
    }

    /// Runs lifeboat; asserts that no secret appears in its output.
    fn run(&self, args: &[&str]) -> Output {
        let out = self.cmd(args).output().expect("run lifeboat");
        self.assert_no_secrets(&out, args);
        out
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "lifeboat {} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            tail(&String::from_utf8_lossy(&out.stderr), 40)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    fn assert_no_secrets(&self, out: &Output, args: &[&str]) {
        for stream in [&out.stdout, &out.stderr] {
            let text = String::from_utf8_lossy(stream);
            for s in &self.secrets {
                assert!(
                    !text.contains(s.as_str()),
                    "a secret leaked in the output of {args:?}"
                );
            }
        }
    }

    /// Asserts that no file under the state directory contains a secret (run journal, cache).
    fn assert_state_has_no_secrets(&self) {
        for entry in walk(&self.root().join("state")) {
            let Ok(bytes) = std::fs::read(&entry) else {
                continue;
            };
            let text = String::from_utf8_lossy(&bytes);
            for s in &self.secrets {
                assert!(
                    !text.contains(s.as_str()),
                    "a secret is stored in {}",
                    entry.display()
                );
            }
        }
    }

    fn restic(&self, repo: &str, args: &[&str]) -> Output {
        let mut cmd = std::process::Command::new(restic_bin());
        cmd.arg("-r")
            .arg(repo)
            .args(args)
            .env("RESTIC_PASSWORD", PASSWORD)
            .env("RESTIC_CACHE_DIR", self.root().join("restic-cache"));
        for (k, v) in &self.vars {
            if k == "TEST_S3_KEY_ID" {
                cmd.env("AWS_ACCESS_KEY_ID", v);
            }
            if k == "TEST_S3_SECRET" {
                cmd.env("AWS_SECRET_ACCESS_KEY", v);
            }
        }
        cmd.output().expect("run restic")
    }
}

fn dir_size(dir: &Path) -> u64 {
    walk(dir)
        .iter()
        .filter_map(|p| std::fs::symlink_metadata(p).ok())
        .map(|m| m.len())
        .sum()
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() && !p.is_symlink() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn stderr_error_lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.starts_with("error:"))
        .map(str::to_string)
        .collect()
}

/// The restored copy of the source lives at target + the source's absolute path.
fn restored_src(target: &Path, src: &Path) -> PathBuf {
    target.join(src.strip_prefix("/").unwrap())
}

#[test]
fn backup_restore_incremental_retention_and_restic_interop_on_a_local_repository() {
    let env = Env::new(None);
    let init = env.json(&["init", "--system", "branch-finance"]);
    assert_eq!(init[0]["created"], true, "{init}");
    // Initialising again leaves the repository alone.
    let again = env.json(&["init", "--system", "branch-finance"]);
    assert_eq!(again[0]["created"], false);

    let first = env.json(&["backup", "--system", "branch-finance"]);
    assert_eq!(first["outcome"], "success", "{first}");
    assert_eq!(first["kind"], "backup");
    assert_eq!(first["system"], "branch-finance");
    assert_eq!(first["host"], "branch-fs01");
    let snap1 = first["snapshot_id"].as_str().unwrap().to_string();
    assert!(first["capture_time"].is_string());
    let repo0 = &first["repositories"][0];
    assert_eq!(repo0["repository"], "branch-local");
    assert!(repo0["available_at"].as_str().unwrap() >= first["capture_time"].as_str().unwrap());
    assert!(first["source"]["files"].as_u64().unwrap() > 40, "{first}");

    // Snapshot tags carry system, tier, site and department.
    let snaps = env.json(&["snapshots", "--system", "branch-finance"]);
    let tags: Vec<&str> = snaps[0]["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    for t in [
        "system=branch-finance",
        "tier=TT",
        "site=branch",
        "department=finance",
    ] {
        assert!(tags.contains(&t), "missing tag {t} in {tags:?}");
    }
    assert_eq!(snaps[0]["paths"][0], env.src().display().to_string());

    // Byte-identical restore (symlinks, empty files and dirs, unicode names), verified.
    let target = env.root().join("restore1");
    let report = env.json(&[
        "restore",
        "--system",
        "branch-finance",
        "--target",
        target.to_str().unwrap(),
        "--verify",
    ]);
    assert!(report["verified_files"].as_u64().unwrap() > 40, "{report}");
    assert_same_tree(&env.src(), &restored_src(&target, &env.src()));

    // A non-empty target is refused (exit 10) unless --overwrite.
    let out = env.run(&[
        "restore",
        "--system",
        "branch-finance",
        "--target",
        target.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(10),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Sub-path restore puts the path's contents into the target; dry-run writes nothing.
    let sub = env.src().join("docs");
    let dry = env.root().join("dry");
    let plan = env.json(&[
        "restore",
        "--system",
        "branch-finance",
        "--path",
        sub.to_str().unwrap(),
        "--target",
        dry.to_str().unwrap(),
        "--dry-run",
    ]);
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["files_to_restore"], 2, "{plan}");
    assert!(!dry.exists(), "dry-run created the target");
    let subt = env.root().join("sub");
    env.ok(&[
        "restore",
        "--system",
        "branch-finance",
        "--path",
        sub.to_str().unwrap(),
        "--target",
        subt.to_str().unwrap(),
    ]);
    assert_same_tree(&sub, &subt);

    // Incremental: change one file, add one, delete one; excluded files stay out.
    std::fs::write(env.src().join("docs/notes.md"), "# Notes\n\nchanged\n").unwrap();
    std::fs::write(env.src().join("new-file.txt"), "new\n").unwrap();
    std::fs::write(env.src().join("scratch.tmp"), "excluded\n").unwrap();
    std::fs::create_dir_all(env.src().join("cache-dir")).unwrap();
    std::fs::write(env.src().join("cache-dir/big.cache"), "excluded too\n").unwrap();
    std::fs::remove_file(env.src().join("small/file-03.txt")).unwrap();
    let second = env.json(&["backup", "--system", "branch-finance"]);
    assert_eq!(second["outcome"], "success");
    assert_eq!(second["source"]["files_new"], 1, "{second}");
    assert_eq!(second["source"]["files_changed"], 1, "{second}");
    assert!(
        second["repositories"][0]["bytes_added"].as_u64().unwrap() < 64 * 1024,
        "{second}"
    );
    let target2 = env.root().join("restore2");
    env.ok(&[
        "restore",
        "--system",
        "branch-finance",
        "--target",
        target2.to_str().unwrap(),
        "--verify",
    ]);
    assert!(
        !restored_src(&target2, &env.src())
            .join("cache-dir")
            .exists(),
        "an excluded directory was backed up"
    );
    std::fs::remove_file(env.src().join("scratch.tmp")).unwrap();
    std::fs::remove_dir_all(env.src().join("cache-dir")).unwrap();
    assert_same_tree(&env.src(), &restored_src(&target2, &env.src()));
    // The first snapshot is still restorable by id prefix.
    let target1b = env.root().join("restore1b");
    env.ok(&[
        "restore",
        "--system",
        "branch-finance",
        "--snapshot",
        &snap1[..8],
        "--target",
        target1b.to_str().unwrap(),
    ]);
    assert!(
        restored_src(&target1b, &env.src())
            .join("small/file-03.txt")
            .exists()
    );

    // Retention: keep-last 2 with three snapshots forgets the oldest, with reasons.
    env.ok(&["backup", "--system", "branch-finance"]);
    let plan = env.json(&["forget", "--system", "branch-finance", "--dry-run"]);
    let decisions = plan["repositories"][0]["decisions"].as_array().unwrap();
    assert_eq!(decisions.len(), 3);
    let kept: Vec<bool> = decisions
        .iter()
        .map(|d| d["keep"].as_bool().unwrap())
        .collect();
    assert_eq!(kept, vec![true, true, false], "{plan}");
    assert!(
        decisions[0]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().contains("last"))
    );
    assert_eq!(decisions[2]["snapshot"]["id"], snap1);
    assert_eq!(
        env.json(&["snapshots", "--system", "branch-finance"])
            .as_array()
            .unwrap()
            .len(),
        3,
        "dry-run deleted"
    );
    env.ok(&["forget", "--system", "branch-finance", "--prune"]);
    let left = env.json(&["snapshots", "--system", "branch-finance"]);
    assert_eq!(left.as_array().unwrap().len(), 2);
    assert!(left.as_array().unwrap().iter().all(|s| s["id"] != snap1));
    env.ok(&["check", "--repo", "branch-local", "--read-data"]);

    // restic reads the repository: snapshots, check --read-data, byte-identical restore.
    let repo = env.root().join("repos/local");
    let repo = repo.to_str().unwrap();
    let out = env.restic(repo, &["snapshots", "--json"]);
    assert!(
        out.status.success(),
        "restic snapshots: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    let out = env.restic(repo, &["check", "--read-data"]);
    assert!(
        out.status.success(),
        "restic check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rt = env.root().join("restic-restore");
    let out = env.restic(
        repo,
        &["restore", "latest", "--target", rt.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "restic restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_tree(&env.src(), &restored_src(&rt, &env.src()));

    // Run records were journalled, without secrets.
    assert!(walk(&env.root().join("state/runs")).len() >= 4);
    env.assert_state_has_no_secrets();
}

/// Runs `lifeboat ARGS` (with `env`'s environment) in a private mount namespace where a tmpfs
/// of `size` is mounted at `mnt`, after the shell commands `prepare`; util-linux's `unshare`
/// maps the caller to root inside, so no privileges are needed where user namespaces are
/// enabled. Afterwards the number of files left on the tmpfs is appended to stdout as
/// `files-left: N`.
fn run_on_small_fs(env: &Env, mnt: &Path, size: &str, prepare: &str, args: &[&str]) -> Output {
    std::fs::create_dir_all(mnt).unwrap();
    let base = env.cmd(args);
    let script = format!(
        r#"mount -t tmpfs -o size={size} lifeboat-test "$0" || exit 97
{prepare}
"$@"; rc=$?
echo "files-left: $(find "$0" -type f | wc -l)"
exit $rc"#
    );
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
        .arg(mnt)
        .arg(base.get_program())
        .args(base.get_args());
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run util-linux `unshare` ({e}): install util-linux"));
    assert_ne!(
        out.status.code(),
        Some(97),
        "cannot mount a tmpfs in a user namespace (enable them: sysctl kernel.unprivileged_userns_clone=1, or run as root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.assert_no_secrets(&out, args);
    out
}

#[test]
fn a_restore_to_a_full_file_system_fails_with_no_space_promptly_and_says_what_to_do() {
    let env = Env::new(None);
    env.ok(&["init", "--system", "branch-finance"]);
    env.ok(&["backup", "--system", "branch-finance"]);
    let mnt = env.root().join("small");
    let target = mnt.join("restore");
    let restore = [
        "restore",
        "--system",
        "branch-finance",
        "--target",
        target.to_str().unwrap(),
    ];

    // Too little space from the start: refused before anything is written.
    let out = run_on_small_fs(&env, &mnt, "2m", "", &restore);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(10), "{stderr}");
    assert!(stderr.contains("the file system is full"), "{stderr}");
    assert!(stderr.contains("nothing was written"), "{stderr}");
    assert!(stderr.contains("choose another target"), "{stderr}");
    assert!(stdout.contains("files-left: 0"), "{stdout}");

    // With --overwrite the space is not checked first (existing files may be replaced): the
    // file system fills during the restore, which stops at once with the same clear cause.
    let mut overwrite = restore.to_vec();
    overwrite.push("--overwrite");
    let started = Instant::now();
    let out = run_on_small_fs(
        &env,
        &mnt,
        "2m",
        &format!("mkdir -p {0} && echo old > {0}/old.txt", target.display()),
        &overwrite,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(10), "{stderr}");
    assert!(stderr.contains("the file system is full"), "{stderr}");
    assert!(stderr.contains("stopped part way"), "{stderr}");
    assert!(
        !stderr.contains("panicked"),
        "a full disk must not panic the restore: {stderr}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the failed restore took {:?}",
        started.elapsed()
    );
    // Both failures are in the run journal with their kind.
    let restores: Vec<Value> = walk(&env.root().join("state/runs"))
        .iter()
        .map(|p| serde_json::from_slice::<Value>(&std::fs::read(p).unwrap()).unwrap())
        .filter(|r| r["kind"] == "restore")
        .collect();
    assert_eq!(restores.len(), 2, "{restores:?}");
    for r in &restores {
        assert_eq!(r["outcome"], "failed", "{r}");
        assert_eq!(r["error"]["kind"], "no-space", "{r}");
    }
}

#[test]
fn check_finds_a_corrupted_pack() {
    let env = Env::new(None);
    env.ok(&["init", "--system", "branch-finance"]);
    env.ok(&["backup", "--system", "branch-finance"]);
    env.ok(&["check", "--repo", "branch-local", "--read-data"]);
    let subset = env.json(&[
        "check",
        "--repo",
        "branch-local",
        "--read-data-subset",
        "1/2",
    ]);
    assert_eq!(subset[0]["read_data"], true);
    assert_eq!(subset[0]["read_data_subset"], "1/2");
    assert_eq!(subset[0]["errors"], 0);
    // A malformed subset is a usage problem with a hint, not a crash.
    let bad = env.run(&[
        "check",
        "--repo",
        "branch-local",
        "--read-data-subset",
        "often",
    ]);
    assert_eq!(
        bad.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(String::from_utf8_lossy(&bad.stderr).contains("daily/week"));
    // Flip bytes in the middle of the largest pack file.
    let packs: Vec<PathBuf> = walk(&env.root().join("repos/local/data"));
    let pack = packs
        .iter()
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .expect("a pack");
    let mut bytes = std::fs::read(pack).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..mid + 16] {
        *b ^= 0xff;
    }
    std::fs::write(pack, bytes).unwrap();
    let out = env.run(&["check", "--repo", "branch-local", "--read-data"]);
    assert_eq!(
        out.status.code(),
        Some(6),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let name = pack.file_name().unwrap().to_str().unwrap();
    assert!(stdout.contains("ERRORS"), "{stdout}");
    assert!(
        stdout.contains(&name[..8]),
        "the damaged pack {name} is not named: {stdout}"
    );
    // Reading every pack through the subset syntax finds it too.
    let out = env.run(&[
        "check",
        "--repo",
        "branch-local",
        "--read-data-subset",
        "all",
    ]);
    assert_eq!(
        out.status.code(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // A structure-only check does not read data and so cannot see it: it passes.
    env.ok(&["check", "--repo", "branch-local"]);
    // A restore meets the damage: an integrity failure (exit 6) naming the cause, no panic.
    let target = env.root().join("restore-damaged");
    let out = env.run(&[
        "restore",
        "--system",
        "branch-finance",
        "--target",
        target.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(6), "{stderr}");
    assert!(
        stderr.contains("does not decrypt or match its hash"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn kill_during_backup_leaves_a_repository_the_next_backup_completes() {
    let env = Env::new(None);
    env.ok(&["init", "--system", "branch-finance"]);
    // 256 MiB of incompressible data so the backup runs long enough to be killed.
    let big = env.src().join("big");
    std::fs::create_dir_all(&big).unwrap();
    let mut rng = common::XorShift::new(42);
    for i in 0..8 {
        std::fs::write(big.join(format!("part-{i}.bin")), rng.bytes(32 << 20)).unwrap();
    }
    let mut child = env
        .cmd(&["backup", "--system", "branch-finance"])
        .spawn()
        .unwrap();
    let data = env.root().join("repos/local/data");
    let snapshots = env.root().join("repos/local/snapshots");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup finished before it could be killed"
        );
        if walk(&data).len() >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "no pack was written within 60 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL mid-backup: packs written, no snapshot yet.
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        walk(&snapshots).is_empty(),
        "the backup completed before the kill"
    );

    let record = env.json(&["backup", "--system", "branch-finance"]);
    assert_eq!(record["outcome"], "success");
    let report = env.json(&["check", "--repo", "branch-local", "--read-data"]);
    assert_eq!(report[0]["errors"], 0, "{report}");
    let target = env.root().join("restore");
    env.ok(&[
        "restore",
        "--system",
        "branch-finance",
        "--target",
        target.to_str().unwrap(),
        "--verify",
    ]);
    assert_same_tree(&env.src(), &restored_src(&target, &env.src()));
}

#[test]
fn copy_to_s3_then_restore_from_s3_only_and_restic_reads_it() {
    let garage = Garage::start();
    let s3 = S3::of(&garage);
    let env = Env::new(Some((&s3, "branches/e2e")));
    let init = env.json(&["init", "--system", "branch-finance"]);
    assert_eq!(init[1]["repository"], "dc-offsite");
    assert_eq!(init[1]["chunker_from"], "branch-local", "{init}");

    let record = env.json(&["backup", "--system", "branch-finance"]);
    assert_eq!(record["outcome"], "success", "{record}");
    let repos = record["repositories"].as_array().unwrap();
    assert_eq!(repos.len(), 2);
    assert_eq!(repos[1]["repository"], "dc-offsite");
    assert_eq!(repos[1]["location"], "remote");
    assert!(
        repos[1]["available_at"].as_str().unwrap() >= repos[0]["available_at"].as_str().unwrap()
    );
    assert_eq!(repos[1]["snapshots"][0], record["snapshot_id"]);

    // Lose the branch: delete the local repository, restore from S3 only.
    std::fs::remove_dir_all(env.root().join("repos/local")).unwrap();
    let target = env.root().join("from-s3");
    env.ok(&[
        "restore",
        "--system",
        "branch-finance",
        "--repo",
        "dc-offsite",
        "--target",
        target.to_str().unwrap(),
        "--verify",
    ]);
    assert_same_tree(&env.src(), &restored_src(&target, &env.src()));
    let report = env.json(&["check", "--repo", "dc-offsite", "--read-data"]);
    assert_eq!(report[0]["errors"], 0);

    // restic reads the S3 repository too.
    let url = format!("s3:{}/{}/branches/e2e", s3.endpoint, s3.bucket);
    let out = env.restic(&url, &["check", "--read-data"]);
    assert!(
        out.status.success(),
        "restic check over S3: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rt = env.root().join("restic-s3");
    let out = env.restic(
        &url,
        &["restore", "latest", "--target", rt.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "restic restore over S3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_tree(&env.src(), &restored_src(&rt, &env.src()));
    env.assert_state_has_no_secrets();
}

#[test]
fn s3_stopped_in_the_middle_of_a_copy_fails_clearly_and_the_next_copy_completes() {
    let mut garage = Garage::start();
    let s3 = S3::of(&garage);
    let env = Env::new(Some((&s3, "branches/cut")));
    let big = env.src().join("big");
    std::fs::create_dir_all(&big).unwrap();
    let mut rng = common::XorShift::new(7);
    for i in 0..6 {
        std::fs::write(big.join(format!("part-{i}.bin")), rng.bytes(32 << 20)).unwrap();
    }
    env.ok(&["init", "--system", "branch-finance"]);
    // The backup lands locally, then the copy to S3 starts: stop the S3 server in its middle.
    let before = dir_size(garage.dir());
    let mut child = env
        .cmd(&["backup", "--system", "branch-finance", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let local_snapshots = env.root().join("repos/local/snapshots");
    let deadline = Instant::now() + Duration::from_secs(120);
    while walk(&local_snapshots).is_empty() || dir_size(garage.dir()) < before + (16 << 20) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the backup and copy finished before the S3 server could be stopped"
        );
        assert!(
            Instant::now() < deadline,
            "the copy did not start within 120 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    garage.stop();
    let out = child.wait_with_output().unwrap();
    env.assert_no_secrets(&out, &["copy"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        panic!("the copy finished before the S3 server stopped; stderr: {stderr}");
    }
    // Partial: the local snapshot exists, the off-site copy failed with a clear cause.
    assert_eq!(out.status.code(), Some(8), "stderr: {stderr}");
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["outcome"], "partial");
    assert_eq!(record["repositories"][0]["outcome"], "success");
    assert_eq!(record["repositories"][1]["outcome"], "failed");
    assert_eq!(
        record["repositories"][1]["error"]["kind"], "unreachable",
        "{record}"
    );
    let snapshot = record["snapshot_id"].as_str().unwrap().to_string();
    let errors = stderr_error_lines(&out);
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("dc-offsite") && errors[0].contains("unreachable"),
        "{}",
        errors[0]
    );

    garage.restart();
    let report = env.json(&["check", "--repo", "dc-offsite", "--read-data"]);
    assert_eq!(
        report[0]["errors"], 0,
        "the interrupted copy left errors: {report}"
    );
    let copy = env.json(&["copy", "--system", "branch-finance"]);
    assert_eq!(copy["outcome"], "success", "{copy}");
    let off = env.json(&["snapshots", "--repo", "dc-offsite"]);
    assert_eq!(off.as_array().unwrap().len(), 1, "{off}");
    let target = env.root().join("from-s3");
    env.ok(&[
        "restore",
        "--system",
        "branch-finance",
        "--repo",
        "dc-offsite",
        "--snapshot",
        &snapshot[..8],
        "--target",
        target.to_str().unwrap(),
        "--verify",
    ]);
    assert_same_tree(&env.src(), &restored_src(&target, &env.src()));
}

#[test]
fn credential_and_connection_failures_give_one_clear_line_and_a_documented_exit_code() {
    let env = Env::new(None);
    env.ok(&["init", "--system", "branch-finance"]);
    env.ok(&["backup", "--system", "branch-finance"]);

    // Wrong password: exit 4.
    let out = env
        .cmd(&["snapshots", "--system", "branch-finance"])
        .env("TEST_REPO_PASSWORD", "not-the-password-123")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let errors = stderr_error_lines(&out);
    assert_eq!(errors.len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        errors[0].contains("branch-local") && errors[0].contains("wrong password"),
        "{}",
        errors[0]
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("not-the-password-123"));
    // A failed run is evidence too: the check that could not open the repository is journalled.
    let out = env
        .cmd(&["check", "--repo", "branch-local"])
        .env("TEST_REPO_PASSWORD", "not-the-password-123")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let failed_checks: Vec<Value> = walk(&env.root().join("state/runs"))
        .iter()
        .map(|p| serde_json::from_slice::<Value>(&std::fs::read(p).unwrap()).unwrap())
        .filter(|r| r["kind"] == "check")
        .collect();
    assert_eq!(failed_checks.len(), 1, "{failed_checks:?}");
    assert_eq!(failed_checks[0]["outcome"], "failed");
    assert_eq!(failed_checks[0]["error"]["kind"], "wrong-password");

    // Missing password source: exit 4, names the variable.
    let out = env
        .cmd(&["backup", "--system", "branch-finance"])
        .env_remove("TEST_REPO_PASSWORD")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let errors = stderr_error_lines(&out);
    assert_eq!(errors.len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        errors[0].contains("TEST_REPO_PASSWORD is not set"),
        "{}",
        errors[0]
    );

    // Unreachable endpoint: exit 5.
    let unreachable = S3 {
        endpoint: "http://127.0.0.1:9".into(),
        key_id: "GK00000000000000000000dead".into(),
        secret: "0000000000000000000000000000000000000000000000000000000000000dead".into(),
        bucket: "nowhere".into(),
    };
    let env = Env::new(Some((&unreachable, "x")));
    let out = env.run(&["init", "--repo", "dc-offsite"]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let errors = stderr_error_lines(&out);
    assert_eq!(errors.len(), 1, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        errors[0].contains("dc-offsite") && errors[0].contains("unreachable"),
        "{}",
        errors[0]
    );

    // Unknown system: exit 7 with the known ones listed.
    let out = env.run(&["backup", "--system", "nope"]);
    assert_eq!(out.status.code(), Some(7));
    assert!(stderr_error_lines(&out)[0].contains("branch-finance"));
}

#[test]
fn a_vanished_source_path_fails_the_run_with_a_precise_cause() {
    let env = Env::new(None);
    env.ok(&["init", "--system", "branch-finance"]);
    std::fs::rename(env.src(), env.root().join("moved")).unwrap();
    let out = env.run(&["backup", "--system", "branch-finance", "--json"]);
    assert_eq!(out.status.code(), Some(10));
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["outcome"], "failed");
    assert_eq!(record["error"]["kind"], "source-missing");
    assert!(
        record["error"]["message"]
            .as_str()
            .unwrap()
            .contains("does not exist")
    );
}

#[test]
fn hooks_dump_before_the_backup_report_after_it_and_a_failing_pre_hook_stops_it() {
    let env = Env::new(None);
    let policy = env.root().join("policies/policy.toml");
    let marker = env.root().join("post-hook.txt");
    let failed = env.root().join("failure-hook.txt");
    let hooks = format!(
        r#"
[[systems.branch-finance.hooks]]
when = "pre"
command = ["/bin/sh", "-c", "echo \"ledger dump $LIFEBOAT_SYSTEM\" > {src}/ledger.sql; test ! -e {root}/fail-pre"]
timeout = "30s"

[[systems.branch-finance.hooks]]
when = "post"
command = ["/bin/sh", "-c", "echo \"$LIFEBOAT_SNAPSHOT_ID $LIFEBOAT_OUTCOME\" > {marker}"]

[[systems.branch-finance.hooks]]
when = "failure"
command = ["/bin/sh", "-c", "echo \"$LIFEBOAT_ERROR\" > {failed}"]
"#,
        src = env.src().display(),
        root = env.root().display(),
        marker = marker.display(),
        failed = failed.display()
    );
    let mut text = std::fs::read_to_string(&policy).unwrap();
    text.push_str(&hooks);
    std::fs::write(&policy, text).unwrap();
    env.ok(&["init", "--system", "branch-finance"]);

    let before = jiff::Timestamp::now();
    let record = env.json(&["backup", "--system", "branch-finance"]);
    assert_eq!(record["outcome"], "success", "{record}");
    // The capture time is the start of the pre hook (the dump), not the file walk.
    let capture: jiff::Timestamp = record["capture_time"].as_str().unwrap().parse().unwrap();
    let started: jiff::Timestamp = record["started_at"].as_str().unwrap().parse().unwrap();
    assert!(capture >= before && capture >= started, "{record}");
    let snapshot = record["snapshot_id"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().trim(),
        format!("{snapshot} success")
    );
    // The dump the pre hook wrote is in the snapshot.
    let target = env.root().join("restore");
    env.ok(&[
        "restore",
        "--system",
        "branch-finance",
        "--path",
        env.src().join("ledger.sql").to_str().unwrap(),
        "--target",
        target.to_str().unwrap(),
    ]);
    let restored = std::fs::read_to_string(target.join("ledger.sql")).unwrap();
    assert_eq!(restored.trim(), "ledger dump branch-finance");

    // A failing pre hook: no snapshot, exit 9, the failure hook gets the error.
    std::fs::write(env.root().join("fail-pre"), "").unwrap();
    let out = env.run(&["backup", "--system", "branch-finance", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(9),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["outcome"], "failed");
    assert_eq!(record["error"]["kind"], "hook-failed");
    assert!(record.get("snapshot_id").is_none());
    assert!(
        std::fs::read_to_string(&failed)
            .unwrap()
            .contains("pre hook `/bin/sh` failed")
    );
    assert_eq!(
        env.json(&["snapshots", "--system", "branch-finance"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn a_stream_command_is_backed_up_without_a_temporary_file_and_a_failed_one_keeps_no_snapshot() {
    let env = Env::new(None);
    let policy = env.root().join("policies/policy.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    // The same system, backing up a "database dump" streamed from a command instead of files.
    let paths_line = text
        .lines()
        .find(|l| l.starts_with("paths = "))
        .unwrap()
        .to_string();
    let excludes_line = text
        .lines()
        .find(|l| l.starts_with("excludes = "))
        .unwrap()
        .to_string();
    let text = text
        .replace(&format!("{paths_line}\n"), "")
        .replace(&format!("{excludes_line}\n"), "");
    let stream = format!(
        r#"
[systems.branch-finance.stream]
command = ["/bin/sh", "-c", "printf 'ledger of %s for %s\n' \"$LIFEBOAT_SYSTEM\" \"$DUMP_USER\"; seq 1 300000; test ! -e {root}/fail-dump"]
filename = "ledger.sql"
timeout = "5m"
env = {{ DUMP_USER = "reporting" }}
secret-env = {{ DUMP_TOKEN = {{ env = "TEST_REPO_PASSWORD" }} }}
"#,
        root = env.root().display()
    );
    std::fs::write(&policy, format!("{text}{stream}")).unwrap();
    env.ok(&["policy", "check"]);
    env.ok(&["init", "--system", "branch-finance"]);

    let record = env.json(&["backup", "--system", "branch-finance"]);
    assert_eq!(record["outcome"], "success", "{record}");
    let target = env.root().join("restored");
    env.ok(&[
        "restore",
        "--system",
        "branch-finance",
        "--target",
        target.to_str().unwrap(),
        "--verify",
    ]);
    let dump = std::fs::read_to_string(target.join("ledger.sql")).unwrap();
    let mut want = String::from("ledger of branch-finance for reporting\n");
    for i in 1..=300000 {
        want.push_str(&format!("{i}\n"));
    }
    assert!(
        dump == want,
        "the restored dump differs ({} bytes)",
        dump.len()
    );
    // restic reads the stream snapshot too.
    let out = std::process::Command::new(restic_bin())
        .args([
            "-r",
            env.root().join("repos/local").to_str().unwrap(),
            "ls",
            "latest",
        ])
        .env("RESTIC_PASSWORD", PASSWORD)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("/ledger.sql"));

    // The dump fails after writing part of its output: the run fails, nothing is kept.
    std::fs::write(env.root().join("fail-dump"), b"").unwrap();
    let out = env.run(&["backup", "--system", "branch-finance", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(9),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let failed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(failed["outcome"], "failed", "{failed}");
    assert_eq!(failed["error"]["kind"], "hook-failed", "{failed}");
    let snaps = env.json(&["snapshots", "--system", "branch-finance"]);
    assert_eq!(
        snaps.as_array().unwrap().len(),
        1,
        "a failed dump left a snapshot: {snaps}"
    );
}
