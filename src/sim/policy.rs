//! The simulated fleet's policy: `agents` hosts `sim-00001`… at one branch site, each with
//! `systems_per_agent` systems over tiers T1, T2 and T3 in turn, every system backing up to the
//! branch's local repository and copying to an off-site object store and an immutable vault at
//! a data centre in another region — the shape of `policies/`, minus the prose. The files load
//! and validate like any policy (`lifeboat policy check DIR`).
//!
//! Pure text generation: the caller writes the files.

use std::fmt::Write as _;

/// How many systems go into one systems file (keeps each file small enough to read).
const SYSTEMS_PER_FILE: usize = 1000;

/// The host name of simulated agent `i` (0-based): `sim-00001` for 0.
pub fn host(i: usize) -> String {
    format!("sim-{:05}", i + 1)
}

/// The id of system `j` (0-based) of agent `i`.
pub fn system(i: usize, j: usize) -> String {
    format!("{}-s{}", host(i), j + 1)
}

/// The tier of system `j` of any agent.
pub fn tier(j: usize) -> &'static str {
    ["T1", "T2", "T3"][j % 3]
}

/// The site every simulated host stands at.
pub const SITE: &str = "sim-branch";
/// The repositories of every simulated system, in chain order.
pub const REPOSITORIES: [&str; 3] = ["sim-local", "sim-offsite", "sim-vault"];

const TIERS: &str = r#"# Simulated fleet (lifeboat fleet-sim policy): the tiers of policies/tiers.toml, T1..T3.
[tiers.T1]
name = "Important"
rpo = "4h"
rto-it = "8h"
rto-business = "12h"
copies = 3
media = 2
offsite = 1
offsite-class = "remote"
immutable = 1
drill-every = "365d"
restore-test-every = "90d"
check-every = "1d"
read-data-window = "30d"

[tiers.T2]
name = "General"
rpo = "24h"
rto-it = "36h"
rto-business = "48h"
copies = 3
media = 2
offsite = 1
immutable = 0
drill-every = "365d"
restore-test-every = "90d"
check-every = "7d"
read-data-window = "90d"

[tiers.T3]
name = "Basic"
rpo = "7d"
rto-it = "7d"
rto-business = "7d"
copies = 2
media = 1
offsite = 1
immutable = 0
drill-every = "365d"
restore-test-every = "180d"
check-every = "30d"
read-data-window = "180d"
"#;

const SITES: &str = r#"# Simulated fleet: one branch, the data centre and the DR centre in other regions.
[sites.sim-branch]
name = "Simulated branch"
role = "branch"
region = "sim-a"
timezone = "Asia/Shanghai"

[sites.sim-dc]
name = "Simulated data centre"
role = "data-centre"
region = "sim-b"
timezone = "Asia/Shanghai"

[sites.sim-dr]
name = "Simulated DR centre"
role = "standby"
region = "sim-c"
timezone = "Asia/Shanghai"
"#;

const REPOS: &str = r#"# Simulated fleet: never opened (the simulator sends run records, it backs nothing up).
[repositories.sim-local]
site = "sim-branch"
url = "/var/lib/lifeboat/repos/sim"
location = "local"
password = { file = "/etc/lifeboat/keys/sim-local.pass" }

[repositories.sim-offsite]
site = "sim-dc"
url = "s3://sim-offsite/fleet"
location = "remote"
password = { file = "/etc/lifeboat/keys/sim-offsite.pass" }
endpoint = "https://s3.dc.example.cn"
region = "sim-dc"
access-key-id = { file = "/etc/lifeboat/s3/sim-offsite.key-id" }
secret-access-key = { file = "/etc/lifeboat/s3/sim-offsite.secret" }

[repositories.sim-vault]
site = "sim-dr"
url = "s3://sim-vault/fleet"
location = "remote"
immutable = true
password = { file = "/etc/lifeboat/keys/sim-vault.pass" }
endpoint = "https://s3.dr.example.cn"
region = "sim-dr"
access-key-id = { file = "/etc/lifeboat/s3/sim-vault.key-id" }
secret-access-key = { file = "/etc/lifeboat/s3/sim-vault.secret" }
"#;

/// The policy files, as `(relative path, content)`: `tiers.toml`, `sites.toml`,
/// `repositories.toml` and `systems/NNNN.toml`.
pub fn files(agents: usize, systems_per_agent: usize) -> Vec<(String, String)> {
    let mut out = vec![
        ("tiers.toml".to_string(), TIERS.to_string()),
        ("sites.toml".to_string(), SITES.to_string()),
        ("repositories.toml".to_string(), REPOS.to_string()),
    ];
    let mut text = String::new();
    let mut in_file = 0;
    for i in 0..agents {
        for j in 0..systems_per_agent {
            // T3 needs two copies only; the vault is T1's immutable one.
            let repos = match tier(j) {
                "T3" => &REPOSITORIES[..2],
                _ => &REPOSITORIES[..],
            };
            let repos = repos
                .iter()
                .map(|r| format!("\"{r}\""))
                .collect::<Vec<_>>()
                .join(", ");
            let id = system(i, j);
            // Writing into a String cannot fail.
            let _ = write!(
                text,
                "[systems.{id}]\nname = \"Simulated system {id}\"\ndepartment = \"sim\"\nsite = \"{SITE}\"\nhost = \"{host}\"\ntier = \"{tier}\"\n\
                 paths = [\"/srv/data{j}\"]\nrepositories = [{repos}]\n\
                 schedules = [\n  {{ job = \"backup\", cron = \"0 0 * * * *\" }},\n  \
                 {{ job = \"copy\", cron = \"0 30 * * * *\" }},\n  \
                 {{ job = \"check\", cron = \"0 0 3 * * *\" }},\n  \
                 {{ job = \"read-data\", cron = \"0 0 4 * * SUN\" }},\n  \
                 {{ job = \"forget\", cron = \"0 0 5 * * *\" }},\n]\n\
                 retention = {{ keep-daily = 30 }}\n\n",
                host = host(i),
                tier = tier(j),
            );
            in_file += 1;
            if in_file == SYSTEMS_PER_FILE {
                out.push((
                    format!("systems/{:04}.toml", out.len() - 3),
                    std::mem::take(&mut text),
                ));
                in_file = 0;
            }
        }
    }
    if !text.is_empty() {
        out.push((format!("systems/{:04}.toml", out.len() - 3), text));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_policy_loads_with_every_host_and_tier() {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files(3, 4) {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let policy = crate::policy::load_dir(dir.path()).unwrap_or_else(|r| panic!("{r}"));
        assert_eq!(policy.systems.len(), 12);
        let s = &policy.systems["sim-00003-s4"];
        assert_eq!((s.host.as_str(), s.tier.as_str()), ("sim-00003", "T1"));
        assert_eq!(policy.systems["sim-00001-s3"].repositories.len(), 2);
    }
}
