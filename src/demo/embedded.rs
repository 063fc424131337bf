//! The example bank's policy (`policies/` in the source tree), embedded in the binary so that
//! `lifeboat up` and `lifeboat demo` work from any directory.
//!
//! Only the text is here; nothing parses or rewrites it (see [`super::rewrite`]). A test checks
//! that every file under `policies/` is embedded, so a new example cannot be forgotten.

/// `(path relative to policies/, content)` of every example policy file.
pub const EXAMPLE_POLICY: &[(&str, &str)] = &[
    ("tiers.toml", include_str!("../../policies/tiers.toml")),
    ("sites.toml", include_str!("../../policies/sites.toml")),
    (
        "repositories.toml",
        include_str!("../../policies/repositories.toml"),
    ),
    (
        "systems/head-office.toml",
        include_str!("../../policies/systems/head-office.toml"),
    ),
    (
        "systems/linfen.toml",
        include_str!("../../policies/systems/linfen.toml"),
    ),
    (
        "systems/yuncheng.toml",
        include_str!("../../policies/systems/yuncheng.toml"),
    ),
    (
        "drills/linfen-site-loss.toml",
        include_str!("../../policies/drills/linfen-site-loss.toml"),
    ),
    (
        "drills/yuncheng-restore-test.toml",
        include_str!("../../policies/drills/yuncheng-restore-test.toml"),
    ),
    (
        "drills/yuncheng-full-switchover.toml",
        include_str!("../../policies/drills/yuncheng-full-switchover.toml"),
    ),
    (
        "drills/branch-ransomware.toml",
        include_str!("../../policies/drills/branch-ransomware.toml"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "toml") {
                let rel = path.strip_prefix(root).unwrap();
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }

    #[test]
    fn every_file_of_the_example_policy_is_embedded_as_it_is() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let mut on_disk = Vec::new();
        walk(&root, &root, &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<String> = EXAMPLE_POLICY.iter().map(|(n, _)| n.to_string()).collect();
        embedded.sort();
        assert_eq!(embedded, on_disk, "add the new file to EXAMPLE_POLICY");
        for (name, text) in EXAMPLE_POLICY {
            assert_eq!(std::fs::read_to_string(root.join(name)).unwrap(), *text);
        }
    }
}
