//! Per-host assignments: the part of a policy one agent runs (its host's systems and the tiers,
//! sites and repositories they reference), written back as policy TOML files that the agent
//! loads with the normal loader. The coordinator serves them; an agent never sees another
//! host's systems or repositories. Drill plans are the coordinator's and are never part of an
//! assignment.
//!
//! Writing is the inverse of loading: every entry is serialised with the model's own serde
//! names, the `id` fields the loader fills in from table keys are dropped, and the result is
//! checked to load back to the same policy (the digests match) before it is returned.

use std::collections::{BTreeSet, HashMap};

use super::{Policy, RepoId, SiteId, SystemId, TierId};

/// Why an assignment could not be written.
#[derive(Debug, thiserror::Error)]
pub enum AssignError {
    #[error("cannot write the {section} of the assignment as TOML: {message}")]
    Encode {
        section: &'static str,
        message: String,
    },
    /// A bug: what was written does not load back to the same policy.
    #[error("the assignment does not load back to the policy it was written from: {0}")]
    RoundTrip(String),
}

impl Policy {
    /// The policy of `host`: its systems and everything they reference (dependencies on
    /// systems of other hosts are dropped, they are not the agent's to run). `None` when no
    /// system is on that host.
    pub fn for_host(&self, host: &str) -> Option<Policy> {
        let ids: Vec<&SystemId> = self
            .systems
            .iter()
            .filter(|(_, s)| s.host == host)
            .map(|(id, _)| id)
            .collect();
        self.for_systems(ids)
    }

    /// The systems of each host, for [`Policy::for_systems`]: one pass over the policy instead
    /// of one per host (a fleet of 10,000 hosts asks for all of them).
    pub fn systems_by_host(&self) -> HashMap<&str, Vec<&SystemId>> {
        let mut hosts: HashMap<&str, Vec<&SystemId>> = HashMap::new();
        for (id, s) in &self.systems {
            hosts.entry(s.host.as_str()).or_default().push(id);
        }
        hosts
    }

    /// Like [`Policy::for_host`], for a host's systems already known (from
    /// [`Policy::systems_by_host`]); ids not in the policy are ignored.
    pub fn for_systems<'a>(&self, ids: impl IntoIterator<Item = &'a SystemId>) -> Option<Policy> {
        let systems: std::collections::BTreeMap<_, _> = ids
            .into_iter()
            .filter_map(|id| self.systems.get(id).map(|s| (id.clone(), s.clone())))
            .collect();
        if systems.is_empty() {
            return None;
        }
        let ids: BTreeSet<_> = systems.keys().cloned().collect();
        let mut systems = systems;
        for s in systems.values_mut() {
            s.depends_on.retain(|d| ids.contains(d));
        }
        let tiers: BTreeSet<&TierId> = systems.values().map(|s| &s.tier).collect();
        let sites: BTreeSet<&SiteId> = systems.values().map(|s| &s.site).collect();
        let repos: BTreeSet<&RepoId> = systems.values().flat_map(|s| &s.repositories).collect();
        let mut sites: BTreeSet<SiteId> = sites.into_iter().cloned().collect();
        // A repository's own site must resolve too.
        for r in &repos {
            if let Some(site) = self.repositories.get(*r).and_then(|r| r.site.clone()) {
                sites.insert(site);
            }
        }
        let tiers = self
            .tiers
            .iter()
            .filter(|(id, _)| tiers.contains(id))
            .map(|(id, t)| (id.clone(), t.clone()))
            .collect();
        let repositories = self
            .repositories
            .iter()
            .filter(|(id, _)| repos.contains(id))
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect();
        let sites = self
            .sites
            .iter()
            .filter(|(id, _)| sites.contains(*id))
            .map(|(id, s)| (id.clone(), s.clone()))
            .collect();
        Some(Policy::assemble(tiers, sites, repositories, systems))
    }

    /// The policy as TOML files (`tiers.toml`, `sites.toml`, `repositories.toml`,
    /// `systems.toml`), checked to load back to this policy.
    pub fn to_files(&self) -> Result<Vec<(String, String)>, AssignError> {
        let files = vec![
            ("tiers.toml".to_string(), section("tiers", &self.tiers)?),
            ("sites.toml".to_string(), section("sites", &self.sites)?),
            (
                "repositories.toml".to_string(),
                section("repositories", &self.repositories)?,
            ),
            (
                "systems.toml".to_string(),
                section("systems", &self.systems)?,
            ),
        ];
        let back = super::load_texts(&files).map_err(|r| AssignError::RoundTrip(r.to_string()))?;
        if back.digest != self.digest {
            return Err(AssignError::RoundTrip(format!(
                "digest {} instead of {}",
                back.digest, self.digest
            )));
        }
        Ok(files)
    }
}

/// Keys written only when they differ from these values.
const CONTEXTUAL_DEFAULTS: &[(&str, toml::Value)] = &[("allow-http", toml::Value::Boolean(false))];

/// One section as a TOML document: `[<name>.<id>]` tables without the `id` key.
fn section<T: serde::Serialize>(
    name: &'static str,
    entries: &std::collections::BTreeMap<impl serde::Serialize + Ord, T>,
) -> Result<String, AssignError> {
    let encode = |message: String| AssignError::Encode {
        section: name,
        message,
    };
    let value = toml::Value::try_from(entries).map_err(|e| encode(e.to_string()))?;
    let toml::Value::Table(mut table) = value else {
        return Err(encode("not a table".into()));
    };
    for (_, entry) in table.iter_mut() {
        if let toml::Value::Table(t) = entry {
            t.remove("id");
            // Defaults of keys that are valid only for some entries (the validator refuses
            // them where they do not apply, whatever their value): leave them unwritten.
            for (key, default) in CONTEXTUAL_DEFAULTS {
                if t.get(*key) == Some(default) {
                    t.remove(*key);
                }
            }
        }
    }
    let mut root = toml::Table::new();
    root.insert(name.to_string(), toml::Value::Table(table));
    toml::to_string(&root).map_err(|e| encode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Policy {
        super::super::load_dir(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
            .unwrap_or_else(|r| panic!("{r}"))
    }

    #[test]
    fn every_host_of_the_example_bank_gets_a_policy_that_loads_back() {
        let policy = example();
        let hosts: BTreeSet<&str> = policy.systems.values().map(|s| s.host.as_str()).collect();
        assert!(hosts.len() >= 3, "{hosts:?}");
        for host in hosts {
            let mine = policy.for_host(host).unwrap();
            assert!(mine.systems.values().all(|s| s.host == host));
            assert!(!mine.systems.is_empty());
            let files = mine.to_files().unwrap_or_else(|e| panic!("{host}: {e}"));
            let back = crate::policy::load_texts(&files).unwrap_or_else(|r| panic!("{host}: {r}"));
            assert_eq!(back.digest, mine.digest, "{host}");
            // Nothing of another host leaks into it.
            let text: String = files.iter().map(|(_, t)| t.as_str()).collect();
            for other in policy.systems.values().filter(|s| s.host != host) {
                assert!(
                    !text.contains(&format!("[systems.{}]", other.id)),
                    "{host} sees {}",
                    other.id
                );
            }
        }
        assert!(policy.for_host("no-such-host").is_none());
    }

    #[test]
    fn the_host_index_gives_each_host_the_policy_a_scan_gives() {
        let policy = example();
        let index = policy.systems_by_host();
        assert_eq!(
            index.values().map(Vec::len).sum::<usize>(),
            policy.systems.len()
        );
        for (host, ids) in &index {
            let indexed = policy.for_systems(ids.iter().copied()).unwrap();
            assert_eq!(
                indexed.digest,
                policy.for_host(host).unwrap().digest,
                "{host}"
            );
        }
        assert!(policy.for_systems([]).is_none());
    }

    #[test]
    fn the_sources_digest_follows_the_files_not_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        for entry in std::fs::read_dir(&source).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
            }
        }
        let first = crate::policy::sources_digest(dir.path()).unwrap();
        assert_eq!(crate::policy::sources_digest(dir.path()).unwrap(), first);
        let tiers = dir.path().join("tiers.toml");
        let text = std::fs::read_to_string(&tiers).unwrap();
        std::fs::write(&tiers, format!("{text}\n# reviewed\n")).unwrap();
        assert_ne!(crate::policy::sources_digest(dir.path()).unwrap(), first);
        std::fs::write(&tiers, text).unwrap();
        assert_eq!(crate::policy::sources_digest(dir.path()).unwrap(), first);
        assert!(crate::policy::sources_digest(&dir.path().join("missing")).is_none());
    }
}
