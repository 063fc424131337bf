//! Where a repository lives: an absolute local path (or `file:///…`), or a bucket and prefix on
//! an object store (`s3://`, `gs://`, `az://`).
//!
//! Parsing refuses what would make a policy unsafe or ambiguous: relative paths (they depend on
//! the agent's working directory), unknown schemes, query strings (options are separate keys),
//! and user names or passwords in the URL (an inline secret). Error texts never repeat a URL that
//! carries credentials. This module does not touch the network or the filesystem.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

use super::problem::with_hint;
use super::types::deserialize_from_str;

/// A parsed repository location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoUrl {
    /// A directory on the agent's machine (`/var/lib/lifeboat/repos/linfen`, `file:///…`).
    Local(PathBuf),
    /// An S3-compatible bucket; `prefix` has no leading or trailing `/` and may be empty.
    S3 { bucket: String, prefix: String },
    /// A Google Cloud Storage bucket.
    Gcs { bucket: String, prefix: String },
    /// An Azure Blob Storage container.
    Azure { container: String, prefix: String },
}

/// The kind of storage behind a repository, for the "2" of 3-2-1 (copies on at least two kinds
/// of media). Production data counts as [`StorageKind::LocalDisk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StorageKind {
    LocalDisk,
    ObjectStore,
}

impl fmt::Display for StorageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StorageKind::LocalDisk => "local disk",
            StorageKind::ObjectStore => "object store",
        })
    }
}

impl RepoUrl {
    /// The URL scheme as written in policies (`local` for paths).
    pub fn scheme(&self) -> &'static str {
        match self {
            RepoUrl::Local(_) => "local",
            RepoUrl::S3 { .. } => "s3",
            RepoUrl::Gcs { .. } => "gs",
            RepoUrl::Azure { .. } => "az",
        }
    }

    pub fn storage_kind(&self) -> StorageKind {
        match self {
            RepoUrl::Local(_) => StorageKind::LocalDisk,
            _ => StorageKind::ObjectStore,
        }
    }
}

const FORMS_HINT: &str = "write an absolute path (\"/var/lib/lifeboat/repos/linfen\"), file:///path, \
     s3://bucket/prefix, gs://bucket/prefix or az://container/prefix";

impl FromStr for RepoUrl {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err(with_hint("a repository URL must not be empty", FORMS_HINT));
        }
        if s.starts_with('/') {
            return local_path(s);
        }
        let Some((scheme, _)) = s.split_once("://") else {
            return Err(with_hint(
                format!(
                    "\"{s}\" is neither an absolute path nor a URL; a local repository path must be absolute"
                ),
                FORMS_HINT,
            ));
        };
        let scheme = scheme.to_ascii_lowercase();
        if !matches!(scheme.as_str(), "file" | "s3" | "gs" | "az") {
            return Err(with_hint(
                format!("unsupported URL scheme \"{scheme}\""),
                FORMS_HINT,
            ));
        }
        // From here on the text may hold credentials: never echo it. Check for dot segments
        // before the URL parser silently resolves them.
        let rest = &s[scheme.len() + 3..];
        if rest
            .split(['/', '?', '#'])
            .skip(1)
            .any(|part| part == "." || part == "..")
        {
            return Err(format!(
                "a {scheme}:// URL must not contain \".\" or \"..\" segments"
            ));
        }
        let url = url::Url::parse(s)
            .map_err(|e| with_hint(format!("invalid {scheme}:// URL: {e}"), FORMS_HINT))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(with_hint(
                "the repository URL contains a user name or password: inline secrets are not allowed",
                "put credentials in their own keys (access-key-id, secret-access-key, access-key) as \
                 { env = \"VAR\" } or { file = \"/path\" }",
            ));
        }
        if url.query().is_some() {
            return Err(with_hint(
                "query strings are not allowed in repository URLs",
                "set options with their own keys, e.g. region = \"…\" or endpoint = \"https://…\"",
            ));
        }
        if url.fragment().is_some() {
            return Err("fragments (#…) are not allowed in repository URLs".into());
        }
        if scheme == "file" {
            if !matches!(url.host_str(), None | Some("") | Some("localhost")) {
                return Err(with_hint(
                    "a file:// URL must not name a host",
                    "write file:///absolute/path",
                ));
            }
            let path = url
                .to_file_path()
                .map_err(|()| with_hint("invalid file:// URL", FORMS_HINT))?;
            return Ok(RepoUrl::Local(path));
        }
        if url.port().is_some() {
            return Err(with_hint(
                format!("a {scheme}:// URL names a bucket, not a server: it has no port"),
                "set endpoint = \"https://host:port\" for an S3-compatible server",
            ));
        }
        let bucket = url.host_str().unwrap_or("").to_owned();
        let what = if scheme == "az" {
            "container"
        } else {
            "bucket"
        };
        check_bucket(&bucket, what, &scheme)?;
        let prefix = url.path().trim_matches('/').to_owned();
        Ok(match scheme.as_str() {
            "s3" => RepoUrl::S3 { bucket, prefix },
            "gs" => RepoUrl::Gcs { bucket, prefix },
            _ => RepoUrl::Azure {
                container: bucket,
                prefix,
            },
        })
    }
}

fn local_path(path: &str) -> Result<RepoUrl, String> {
    if path.split('/').any(|part| part == "..") {
        return Err(format!(
            "local repository path \"{path}\" must not contain \"..\""
        ));
    }
    Ok(RepoUrl::Local(PathBuf::from(path)))
}

/// Bucket and container names: 3–63 characters of lowercase letters, digits, `-` (and `.` for
/// buckets), starting and ending with a letter or digit. Common to S3, GCS and Azure.
fn check_bucket(name: &str, what: &str, scheme: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err(with_hint(
            format!("the {scheme}:// URL has no {what} name"),
            FORMS_HINT,
        ));
    }
    let allowed = |c: char| {
        c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || (c == '.' && what == "bucket")
    };
    let ends_ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if !(3..=63).contains(&name.len()) || !name.chars().all(allowed) || !ends_ok {
        return Err(format!(
            "\"{name}\" is not a valid {what} name: use 3 to 63 lowercase letters, digits{} and '-'",
            if what == "bucket" { ", '.'" } else { "" }
        ));
    }
    Ok(())
}

impl fmt::Display for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (scheme, bucket, prefix) = match self {
            RepoUrl::Local(path) => return path.display().fmt(f),
            RepoUrl::S3 { bucket, prefix } => ("s3", bucket, prefix),
            RepoUrl::Gcs { bucket, prefix } => ("gs", bucket, prefix),
            RepoUrl::Azure { container, prefix } => ("az", container, prefix),
        };
        if prefix.is_empty() {
            write!(f, "{scheme}://{bucket}")
        } else {
            write!(f, "{scheme}://{bucket}/{prefix}")
        }
    }
}

impl<'de> Deserialize<'de> for RepoUrl {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        deserialize_from_str(de, "a repository path or URL")
    }
}

impl Serialize for RepoUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::problem::split_hint;

    fn s3(bucket: &str, prefix: &str) -> RepoUrl {
        RepoUrl::S3 {
            bucket: bucket.into(),
            prefix: prefix.into(),
        }
    }

    #[test]
    fn accepted_forms_table() {
        let cases = [
            (
                "/var/lib/lifeboat/repos/linfen",
                RepoUrl::Local("/var/lib/lifeboat/repos/linfen".into()),
                "/var/lib/lifeboat/repos/linfen",
            ),
            (
                "file:///var/lib/lifeboat/repos/x",
                RepoUrl::Local("/var/lib/lifeboat/repos/x".into()),
                "/var/lib/lifeboat/repos/x",
            ),
            (
                "file://localhost/srv/r",
                RepoUrl::Local("/srv/r".into()),
                "/srv/r",
            ),
            (
                "s3://lifeboat-offsite/linfen",
                s3("lifeboat-offsite", "linfen"),
                "s3://lifeboat-offsite/linfen",
            ),
            (
                "s3://lifeboat-offsite/a/b/",
                s3("lifeboat-offsite", "a/b"),
                "s3://lifeboat-offsite/a/b",
            ),
            (
                "s3://lifeboat-offsite",
                s3("lifeboat-offsite", ""),
                "s3://lifeboat-offsite",
            ),
            (
                "S3://backups.dc/x",
                s3("backups.dc", "x"),
                "s3://backups.dc/x",
            ),
            (
                "gs://bank-dr/yuncheng",
                RepoUrl::Gcs {
                    bucket: "bank-dr".into(),
                    prefix: "yuncheng".into(),
                },
                "gs://bank-dr/yuncheng",
            ),
            (
                "az://restic/linfen",
                RepoUrl::Azure {
                    container: "restic".into(),
                    prefix: "linfen".into(),
                },
                "az://restic/linfen",
            ),
        ];
        for (input, want, shown) in cases {
            let got: RepoUrl = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got, want, "{input}");
            assert_eq!(got.to_string(), shown, "{input}");
        }
    }

    #[test]
    fn rejected_forms_table() {
        let cases = [
            ("", "must not be empty"),
            ("repos/linfen", "must be absolute"),
            ("./repos", "must be absolute"),
            ("C:\\repos", "must be absolute"),
            ("sftp://host/repo", "unsupported URL scheme \"sftp\""),
            (
                "https://s3.example/bucket",
                "unsupported URL scheme \"https\"",
            ),
            ("rest:http://x", "unsupported URL scheme"),
            ("file:///srv/../etc", "must not contain"),
            (
                "s3://AKIAEXAMPLE:hunter2@bucket/x",
                "inline secrets are not allowed",
            ),
            ("s3://user@bucket/x", "inline secrets are not allowed"),
            (
                "s3://bucket/x?region=us-east-1",
                "query strings are not allowed",
            ),
            ("s3://bucket/x#frag", "fragments"),
            ("s3:///prefix", "has no bucket name"),
            ("s3://bucket:9000/x", "has no port"),
            ("s3://Bad_Bucket/x", "not a valid bucket name"),
            ("az://my.container/x", "not a valid container name"),
            ("s3://bucket/a/../b", "must not contain"),
            ("file://server/share", "must not name a host"),
            ("/srv/../etc", "must not contain \"..\""),
        ];
        for (input, part) in cases {
            let err = input.parse::<RepoUrl>().unwrap_err();
            let (message, _) = split_hint(&err);
            assert!(message.contains(part), "{input}: {message}");
            assert!(
                !err.contains("hunter2"),
                "{input}: the error echoes a password: {err}"
            );
        }
    }

    #[test]
    fn storage_kinds() {
        assert_eq!(
            "/r".parse::<RepoUrl>().unwrap().storage_kind(),
            StorageKind::LocalDisk
        );
        assert_eq!(
            "gs://abc/r".parse::<RepoUrl>().unwrap().storage_kind(),
            StorageKind::ObjectStore
        );
    }
}
