//! The README's quick start (`examples/quickstart.sh`) runs end to end with the binary under test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[test]
fn the_quickstart_script_backs_up_restores_and_verifies() {
    common::restic_bin(); // the script's last step reads the repository with restic
    let work = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("bash")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/examples/quickstart.sh"
        ))
        .arg(work.path().join("qs"))
        .env("LIFEBOAT_BIN", env!("CARGO_BIN_EXE_lifeboat"))
        .env_remove("LIFEBOAT_POLICY")
        .env_remove("LIFEBOAT_STATE_DIR")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "quickstart failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    for expected in [
        "policy OK",
        "created quickstart-offsite",
        "restored tree is identical to the source",
        "verified:",
        "keep",
        "2 snapshots",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}
