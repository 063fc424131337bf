//! The policy model: tiers, sites, repositories and systems as typed values, exactly as the TOML
//! spells them (kebab-case keys, unknown keys refused).
//!
//! These types are both the serde shape of one policy entry and what the engine reads. Each value
//! is checked where it is parsed (a duration is a `Duration`, a path is absolute); rules that
//! span several keys or entries (RTO ordering, scheme-specific options, references, tier
//! feasibility) live in `validate`, so a value of these types on its own is only known to be
//! well-formed. Nothing here reads files, the clock or the environment; secrets are
//! [`SecretSource`]s, never values.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::cron::Cron;
use super::ids::{RepoId, SiteId, SystemId, TierId};
use super::repo_url::RepoUrl;
use super::types::{AbsPath, Argv, Duration, HttpUrl, TimeZone};
use super::types::{abs_paths, default_zstd_level, globs, non_empty, zstd_level};
use crate::secret::SecretSource;

fn ten_minutes() -> Duration {
    Duration::TEN_MINUTES
}

fn ten() -> u32 {
    10
}

// ---------------------------------------------------------------------------------------------
// Tier

/// A recovery class: the targets every system of the tier must meet (standards.md §2).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Tier {
    /// The table key (`[tiers.T1]`), set by the loader.
    pub id: TierId,
    #[serde(deserialize_with = "non_empty")]
    pub name: String,
    pub name_zh: Option<String>,
    pub description: Option<String>,
    /// Backup-derived recovery point objective.
    pub rpo: Duration,
    /// Time to have systems running at the standby site; must not exceed `rto_business`.
    pub rto_it: Duration,
    /// Time from outage to service reopened (the regulatory RTO).
    pub rto_business: Duration,
    /// 3-2-1-1-0 digits: total copies, production included.
    pub copies: u8,
    /// Distinct kinds of storage among the copies (local disk, object store).
    pub media: u8,
    /// Copies outside the site, counted by `offsite_class`.
    pub offsite: u8,
    /// The nearest location that still counts as off-site for this tier.
    #[serde(default)]
    pub offsite_class: OffsiteClass,
    /// Immutable (object lock, append-only) or offline copies.
    pub immutable: u8,
    /// Restore-to-standby drill cadence.
    pub drill_every: Duration,
    /// Automated restore test cadence.
    pub restore_test_every: Duration,
    /// Structure check cadence, per repository copy.
    pub check_every: Duration,
    /// Every pack is read at least once within this window, per repository copy.
    pub read_data_window: Duration,
}

/// Which repository locations count as off-site copies for a tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OffsiteClass {
    /// 同城: another building in the same city or further.
    #[default]
    SameCity,
    /// 异地: another region only (T0/T1, 114号 第三条(四)).
    Remote,
}

impl OffsiteClass {
    /// Whether a copy at `location` counts as off-site.
    pub fn admits(self, location: Location) -> bool {
        match self {
            OffsiteClass::SameCity => location >= Location::SameCity,
            OffsiteClass::Remote => location == Location::Remote,
        }
    }
}

impl fmt::Display for OffsiteClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OffsiteClass::SameCity => "same-city",
            OffsiteClass::Remote => "remote",
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Site

/// A place that can be lost as a whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Site {
    /// The table key (`[sites.linfen]`), set by the loader.
    pub id: SiteId,
    #[serde(deserialize_with = "non_empty")]
    pub name: String,
    pub name_zh: Option<String>,
    pub description: Option<String>,
    pub role: SiteRole,
    /// Sites in the same region are in the same city (同城); different regions are 异地.
    #[serde(deserialize_with = "non_empty")]
    pub region: String,
    /// Schedules of systems at this site run in this zone.
    pub timezone: TimeZone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SiteRole {
    Branch,
    HeadOffice,
    DataCentre,
    Standby,
}

impl fmt::Display for SiteRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SiteRole::Branch => "branch",
            SiteRole::HeadOffice => "head-office",
            SiteRole::DataCentre => "data-centre",
            SiteRole::Standby => "standby",
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Repository

/// A restic-format repository. Object-store options are flat keys valid only for their scheme
/// (`validate` refuses e.g. `endpoint` on a local path), so the engine reads them only for the
/// matching [`RepoUrl`] variant.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Repository {
    /// The table key (`[repositories.linfen-local]`), set by the loader.
    pub id: RepoId,
    pub description: Option<String>,
    /// Where the repository physically is, if it is at a site of the policy.
    pub site: Option<SiteId>,
    pub url: RepoUrl,
    /// Distance from the systems that use it.
    pub location: Location,
    /// Object lock or append-only: counts toward the tier's immutable copies.
    #[serde(default)]
    pub immutable: bool,
    /// zstd level, -7..=22.
    #[serde(default = "default_zstd_level", deserialize_with = "zstd_level")]
    pub compression: i32,
    /// The repository password (the key to every snapshot in it).
    pub password: SecretSource,
    /// S3 only: the endpoint of an S3-compatible store.
    pub endpoint: Option<HttpUrl>,
    /// S3 only.
    pub region: Option<String>,
    /// S3 only: permit an `http://` endpoint.
    #[serde(default)]
    pub allow_http: bool,
    /// S3 only.
    pub access_key_id: Option<SecretSource>,
    /// S3 only.
    pub secret_access_key: Option<SecretSource>,
    /// S3 only.
    pub session_token: Option<SecretSource>,
    /// GCS only: path of the service-account key file on the agent.
    pub service_account_key: Option<AbsPath>,
    /// Azure only: the storage account name.
    pub account: Option<String>,
    /// Azure only.
    pub access_key: Option<SecretSource>,
    /// Per-request timeout of the object store client.
    #[serde(default = "ten_minutes")]
    pub request_timeout: Duration,
    #[serde(default = "ten")]
    pub max_retries: u32,
}

/// How far a repository is from the systems that use it, nearest first (the order is used:
/// `Location::SameCity` and beyond survive the loss of the site).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Location {
    /// On the system's own machine or storage.
    Local,
    /// Another machine or medium in the same site: lost with the site.
    SameSite,
    /// 同城: another site in the same city.
    SameCity,
    /// 异地: another region.
    Remote,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Location::Local => "local",
            Location::SameSite => "same-site",
            Location::SameCity => "same-city",
            Location::Remote => "remote",
        })
    }
}

// ---------------------------------------------------------------------------------------------
// System

/// A department's data set protected as one unit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct System {
    /// The table key (`[systems.linfen-finance]`), set by the loader.
    pub id: SystemId,
    #[serde(deserialize_with = "non_empty")]
    pub name: String,
    /// The owner department (finance, credit, operations …).
    #[serde(deserialize_with = "non_empty")]
    pub department: String,
    pub description: Option<String>,
    pub site: SiteId,
    /// The machine the agent runs on (snapshot host).
    #[serde(deserialize_with = "non_empty")]
    pub host: String,
    pub tier: TierId,
    /// Source paths, absolute; at least one unless `stream` is given.
    #[serde(default, deserialize_with = "abs_paths")]
    pub paths: Vec<PathBuf>,
    /// Instead of paths: the standard output of a command (a database dump), streamed into
    /// the snapshot as one file, without a temporary copy on disk.
    #[serde(default)]
    pub stream: Option<Stream>,
    /// Exclude globs, checked at load time.
    #[serde(default, deserialize_with = "globs")]
    pub excludes: Vec<String>,
    /// The copy chain: backups go to the first, each copy to the next. At least one.
    pub repositories: Vec<RepoId>,
    /// Systems that must be restored before this one.
    #[serde(default)]
    pub depends_on: Vec<SystemId>,
    #[serde(default)]
    pub schedules: Vec<Schedule>,
    pub retention: Retention,
    #[serde(default)]
    pub hooks: Vec<Hook>,
}

/// When a job runs (in the site's time zone).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Schedule {
    pub job: JobKind,
    pub cron: Cron,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum JobKind {
    /// Snapshot the paths into the first repository.
    Backup,
    /// Copy new snapshots along the repository chain.
    Copy,
    /// Structure check of every repository.
    Check,
    /// Read a rotating subset of pack data.
    ReadData,
    /// Apply retention.
    Forget,
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobKind::Backup => "backup",
            JobKind::Copy => "copy",
            JobKind::Check => "check",
            JobKind::ReadData => "read-data",
            JobKind::Forget => "forget",
        })
    }
}

/// Which snapshots to keep; at least one `keep-*` must be set (non-zero).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Retention {
    pub keep_last: Option<u32>,
    pub keep_hourly: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_weekly: Option<u32>,
    pub keep_monthly: Option<u32>,
    pub keep_quarterly: Option<u32>,
    pub keep_yearly: Option<u32>,
    pub keep_within: Option<Duration>,
}

impl Retention {
    /// True if any rule keeps something.
    pub fn keeps_anything(&self) -> bool {
        [
            self.keep_last,
            self.keep_hourly,
            self.keep_daily,
            self.keep_weekly,
        ]
        .into_iter()
        .chain([self.keep_monthly, self.keep_quarterly, self.keep_yearly])
        .any(|n| n.is_some_and(|n| n > 0))
            || self.keep_within.is_some()
    }
}

/// A command whose standard output is backed up as one file (`[systems.X.stream]`), e.g.
/// `command = ["/usr/bin/pg_dump", "--format=custom", "ledger"]`, `filename = "ledger.dump"`.
/// A non-zero exit fails the backup and the snapshot is not kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Stream {
    pub command: Argv,
    /// The file's name in the snapshot (a plain name, no `/`).
    #[serde(deserialize_with = "non_empty")]
    pub filename: String,
    /// The command is killed after this long (and the backup fails).
    #[serde(default = "six_hours")]
    pub timeout: Duration,
    /// Plain environment; names that look like secrets are refused (use `secret_env`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Environment variables whose values are secrets, resolved just before the command runs.
    #[serde(default)]
    pub secret_env: BTreeMap<String, SecretSource>,
}

fn six_hours() -> Duration {
    Duration::from_secs(6 * 3600).unwrap_or(Duration::TEN_MINUTES)
}

/// A command run around a backup, without a shell.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Hook {
    pub when: HookWhen,
    pub command: Argv,
    #[serde(default = "ten_minutes")]
    pub timeout: Duration,
    /// Plain environment; names that look like secrets are refused (use `secret_env`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Environment variables whose values are secrets, resolved just before the hook runs.
    #[serde(default)]
    pub secret_env: BTreeMap<String, SecretSource>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HookWhen {
    /// Before the backup; a failure aborts it.
    Pre,
    /// After a successful backup.
    Post,
    /// After a failed backup.
    Failure,
}

impl fmt::Display for HookWhen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HookWhen::Pre => "pre",
            HookWhen::Post => "post",
            HookWhen::Failure => "failure",
        })
    }
}

/// The keys each kind of entry must have; the loader reports every missing one at once (serde
/// stops at the first). A test checks these lists against the structs above and the
/// placeholders below.
pub(crate) const TIER_REQUIRED: &[&str] = &[
    "name",
    "rpo",
    "rto-it",
    "rto-business",
    "copies",
    "media",
    "offsite",
    "immutable",
    "drill-every",
    "restore-test-every",
    "check-every",
    "read-data-window",
];
pub(crate) const SITE_REQUIRED: &[&str] = &["name", "role", "region", "timezone"];
pub(crate) const REPOSITORY_REQUIRED: &[&str] = &["url", "location", "password"];
pub(crate) const SYSTEM_REQUIRED: &[&str] = &[
    "name",
    "department",
    "site",
    "host",
    "tier",
    "repositories",
    "retention",
];

/// Stand-ins for missing or broken required keys, one table per kind of entry (TOML text).
/// With them an incomplete entry still deserialises, so that the rest of it (its references,
/// its hooks …) is checked too; `validate` skips every check that reads a stand-in, and a
/// policy with a stand-in is never returned, since the missing key is already a problem.
pub(crate) const TIER_PLACEHOLDERS: &str = r#"
name = "(missing)"
rpo = "1s"
rto-it = "1s"
rto-business = "1s"
copies = 1
media = 1
offsite = 0
immutable = 0
drill-every = "1s"
restore-test-every = "1s"
check-every = "1s"
read-data-window = "1s"
"#;
pub(crate) const SITE_PLACEHOLDERS: &str = r#"
name = "(missing)"
role = "branch"
region = "(missing)"
timezone = "UTC"
"#;
pub(crate) const REPOSITORY_PLACEHOLDERS: &str = r#"
url = "/"
location = "local"
password = { env = "MISSING" }
"#;
pub(crate) const SYSTEM_PLACEHOLDERS: &str = r#"
name = "(missing)"
department = "(missing)"
site = "missing"
host = "(missing)"
tier = "missing"
repositories = []
retention = { keep-last = 1 }
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::DeserializeOwned;

    #[test]
    fn placeholders_cover_exactly_the_required_keys() {
        fn check<T: DeserializeOwned + fmt::Debug>(placeholders: &str, required: &[&str]) {
            let table: toml::Table = toml::from_str(placeholders).unwrap();
            let mut keys: Vec<&str> = table.keys().map(String::as_str).collect();
            let mut want = required.to_vec();
            keys.sort_unstable();
            want.sort_unstable();
            assert_eq!(keys, want);
            toml::from_str::<T>(&format!("id = \"x\"\n{placeholders}")).unwrap();
        }
        check::<Tier>(TIER_PLACEHOLDERS, TIER_REQUIRED);
        check::<Site>(SITE_PLACEHOLDERS, SITE_REQUIRED);
        check::<Repository>(REPOSITORY_PLACEHOLDERS, REPOSITORY_REQUIRED);
        check::<System>(SYSTEM_PLACEHOLDERS, SYSTEM_REQUIRED);
    }

    const TIER: &str = r#"id = "T1"
name = "Important"
rpo = "4h"
rto-it = "8h"
rto-business = "12h"
copies = 3
media = 2
offsite = 1
immutable = 1
drill-every = "365d"
restore-test-every = "90d"
check-every = "1d"
read-data-window = "30d""#;
    const SITE: &str = r#"id = "linfen"
name = "Linfen"
role = "branch"
region = "shanxi-linfen"
timezone = "Asia/Shanghai""#;
    const REPOSITORY: &str = r#"id = "linfen-local"
url = "/var/lib/lifeboat/repos/linfen"
location = "local"
password = { env = "PW" }"#;
    const SYSTEM: &str = r#"id = "linfen-finance"
name = "Finance"
department = "finance"
site = "linfen"
host = "linfen-fs01"
tier = "T1"
paths = ["/srv/finance"]
repositories = ["linfen-local"]
retention = { keep-daily = 7 }"#;

    /// The required-key lists match serde: a minimal entry parses, and leaving out any one key
    /// fails exactly when that key is in the list.
    fn check_required<T: DeserializeOwned + fmt::Debug>(minimal: &str, required: &[&str]) {
        toml::from_str::<T>(minimal).unwrap_or_else(|e| panic!("minimal entry: {e}"));
        for line in minimal.lines().filter(|l| !l.starts_with("id =")) {
            let key = line.split(" = ").next().unwrap_or_default();
            let without: String = minimal
                .lines()
                .filter(|l| *l != line)
                .collect::<Vec<_>>()
                .join("\n");
            let result = toml::from_str::<T>(&without);
            assert_eq!(
                result.is_err(),
                required.contains(&key),
                "{key}: {result:?}"
            );
        }
        for key in required {
            assert!(
                minimal.lines().any(|l| l.starts_with(&format!("{key} ="))),
                "{key} missing from the minimal entry"
            );
        }
    }

    #[test]
    fn required_lists_match_the_structs() {
        check_required::<Tier>(TIER, TIER_REQUIRED);
        check_required::<Site>(SITE, SITE_REQUIRED);
        check_required::<Repository>(REPOSITORY, REPOSITORY_REQUIRED);
        check_required::<System>(SYSTEM, SYSTEM_REQUIRED);
    }

    #[test]
    fn defaults_table() {
        let r: Repository = toml::from_str(REPOSITORY).unwrap();
        assert_eq!(
            (r.immutable, r.compression, r.max_retries, r.allow_http),
            (false, 3, 10, false)
        );
        assert_eq!(r.request_timeout.to_string(), "10m");
        let t: Tier = toml::from_str(TIER).unwrap();
        assert_eq!(t.offsite_class, OffsiteClass::SameCity);
        let s: System = toml::from_str(SYSTEM).unwrap();
        assert!(
            s.excludes.is_empty()
                && s.depends_on.is_empty()
                && s.schedules.is_empty()
                && s.hooks.is_empty()
        );
    }

    #[test]
    fn offsite_classes_table() {
        use Location::*;
        let cases = [
            (OffsiteClass::SameCity, Local, false),
            (OffsiteClass::SameCity, SameSite, false),
            (OffsiteClass::SameCity, SameCity, true),
            (OffsiteClass::SameCity, Remote, true),
            (OffsiteClass::Remote, SameCity, false),
            (OffsiteClass::Remote, Remote, true),
        ];
        for (class, location, want) in cases {
            assert_eq!(class.admits(location), want, "{class} admits {location}");
        }
    }

    #[test]
    fn retention_keeps_something_table() {
        let cases = [
            ("", false),
            ("keep-daily = 0", false),
            ("keep-daily = 7", true),
            ("keep-within = \"7d\"", true),
            ("keep-last = 0\nkeep-yearly = 1", true),
        ];
        for (input, want) in cases {
            let r: Retention = toml::from_str(input).unwrap();
            assert_eq!(r.keeps_anything(), want, "{input}");
        }
    }
}
