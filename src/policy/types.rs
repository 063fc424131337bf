//! Typed values used by the policy model: durations, non-empty text, absolute paths, globs, time
//! zones, compression levels, HTTP endpoints and hook command lines.
//!
//! Each is parsed once, from its TOML string, into a value that cannot be invalid (parse, don't
//! validate); each serialises back to a normalised string for `policy show --json` and the policy
//! digest. Error texts say what was wrong and what is accepted. This module knows nothing of
//! files, spans or other entries.

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

use super::problem::{did_you_mean, with_hint};

/// Deserialises any `FromStr` type from a TOML string, so that a wrong TOML type reads
/// "expected <what>, found integer" and a bad string carries the type's own message.
pub(crate) fn deserialize_from_str<'de, D, T>(de: D, expecting: &'static str) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    struct V<T>(PhantomData<T>, &'static str);
    impl<T: FromStr> serde::de::Visitor<'_> for V<T>
    where
        T::Err: fmt::Display,
    {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.1)
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<T, E> {
            s.parse().map_err(E::custom)
        }
    }
    de.deserialize_str(V(PhantomData, expecting))
}

macro_rules! from_str_serde {
    ($ty:ty, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
                deserialize_from_str(de, $expecting)
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Duration

/// A positive span of time written the humantime way: `"15m"`, `"4h"`, `"7d"`, `"90d"`,
/// `"1h 30m"`. Zero is refused: no policy duration (an RPO, a cadence, a timeout) means anything
/// at zero. Printed back in the largest unit that divides it (`"90m"`, `"365d"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(std::time::Duration);

impl Duration {
    /// The default hook timeout and object-store request timeout: packs on slow branch links
    /// take minutes.
    pub const TEN_MINUTES: Duration = Duration(std::time::Duration::from_secs(600));

    /// A duration of whole seconds; `None` for zero.
    pub const fn from_secs(secs: u64) -> Option<Self> {
        if secs == 0 {
            None
        } else {
            Some(Duration(std::time::Duration::from_secs(secs)))
        }
    }

    pub fn as_std(self) -> std::time::Duration {
        self.0
    }
}

impl From<Duration> for std::time::Duration {
    fn from(d: Duration) -> Self {
        d.0
    }
}

impl FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let d = humantime::parse_duration(s.trim()).map_err(|e| {
            with_hint(
                format!("invalid duration \"{s}\": {e}"),
                "write a number and a unit, e.g. \"15m\", \"4h\", \"7d\" or \"1h 30m\"",
            )
        })?;
        if d.is_zero() {
            return Err(format!(
                "duration \"{s}\" is zero, which makes no sense here"
            ));
        }
        Ok(Duration(d))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (secs, nanos) = (self.0.as_secs(), self.0.subsec_nanos());
        if nanos != 0 {
            let total = self.0.as_nanos();
            return match () {
                () if total.is_multiple_of(1_000_000) => write!(f, "{}ms", total / 1_000_000),
                () if total.is_multiple_of(1_000) => write!(f, "{}us", total / 1_000),
                () => write!(f, "{total}ns"),
            };
        }
        let unit = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")]
            .into_iter()
            .find(|(n, _)| secs % n == 0)
            .unwrap_or((1, "s"));
        write!(f, "{}{}", secs / unit.0, unit.1)
    }
}

from_str_serde!(Duration, "a duration such as \"4h\" or \"30d\"");

// ---------------------------------------------------------------------------------------------
// Required text

/// `deserialize_with` for required human-readable strings (names, departments, hosts): a
/// string that is not empty or only blanks. Kept as `String` for the engine's convenience.
pub(crate) fn non_empty<'de, D: serde::Deserializer<'de>>(de: D) -> Result<String, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a non-empty string")
        }
        fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<String, E> {
            if s.trim().is_empty() {
                Err(E::custom("must not be empty"))
            } else {
                Ok(s.to_owned())
            }
        }
    }
    de.deserialize_str(V)
}

// ---------------------------------------------------------------------------------------------
// AbsPath

/// An absolute filesystem path on the machine that uses it (a source path, a key file, a hook
/// program). Relative paths are refused: they would depend on the agent's working directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AbsPath(PathBuf);

impl AbsPath {
    pub fn as_path(&self) -> &Path {
        &self.0
    }
}

impl std::ops::Deref for AbsPath {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for AbsPath {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl From<AbsPath> for PathBuf {
    fn from(p: AbsPath) -> PathBuf {
        p.0
    }
}

impl FromStr for AbsPath {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("a path must not be empty".into());
        }
        if !s.starts_with('/') {
            return Err(with_hint(
                format!("path \"{s}\" is not absolute"),
                "write the full path from the root, e.g. \"/srv/finance\"",
            ));
        }
        if Path::new(s)
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        {
            return Err(format!("path \"{s}\" contains \"..\"; write it without"));
        }
        Ok(AbsPath(PathBuf::from(s)))
    }
}

impl fmt::Display for AbsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.display().fmt(f)
    }
}

from_str_serde!(AbsPath, "an absolute path");

/// `deserialize_with` for lists of absolute paths: each element is checked as an [`AbsPath`]
/// (so an error points at the one bad element) and kept as the `PathBuf` the engine takes.
pub(crate) fn abs_paths<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Vec<PathBuf>, D::Error> {
    Ok(Vec::<AbsPath>::deserialize(de)?
        .into_iter()
        .map(PathBuf::from)
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Glob

/// An exclude pattern, checked with globset at load time so that a typo fails `policy check`
/// rather than the first backup. Keeps the text as written.
#[derive(Debug, Clone)]
pub struct Glob {
    text: String,
    glob: globset::Glob,
}

impl Glob {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn glob(&self) -> &globset::Glob {
        &self.glob
    }
}

impl PartialEq for Glob {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}
impl Eq for Glob {}

impl FromStr for Glob {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("an exclude pattern must not be empty".into());
        }
        let glob =
            globset::Glob::new(s).map_err(|e| format!("invalid glob \"{s}\": {}", e.kind()))?;
        Ok(Glob {
            text: s.to_owned(),
            glob,
        })
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

from_str_serde!(Glob, "a glob pattern such as \"*.tmp\"");

/// `deserialize_with` for exclude lists: each pattern is checked as a [`Glob`] (so an error
/// points at the one bad element), and kept as the string the backup engine takes.
pub(crate) fn globs<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    Ok(Vec::<Glob>::deserialize(de)?
        .into_iter()
        .map(|g| g.text)
        .collect())
}

// ---------------------------------------------------------------------------------------------
// TimeZone

/// An IANA time zone (`"Asia/Shanghai"`), resolved with jiff's time zone database. Schedules of a
/// system run in its site's zone.
#[derive(Debug, Clone)]
pub struct TimeZone {
    name: String,
    tz: jiff::tz::TimeZone,
}

impl TimeZone {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn tz(&self) -> &jiff::tz::TimeZone {
        &self.tz
    }
}

impl PartialEq for TimeZone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for TimeZone {}

impl FromStr for TimeZone {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match jiff::tz::TimeZone::get(s) {
            Ok(tz) => Ok(TimeZone {
                name: s.to_owned(),
                tz,
            }),
            Err(_) => {
                let db = jiff::tz::db();
                let names: Vec<String> = db.available().map(|n| n.as_str().to_owned()).collect();
                let message = format!("unknown time zone \"{s}\"");
                match did_you_mean(s, names.iter().map(String::as_str)) {
                    Some(hint) => Err(with_hint(message, hint)),
                    None => Err(with_hint(
                        message,
                        "use an IANA name such as \"Asia/Shanghai\"",
                    )),
                }
            }
        }
    }
}

impl fmt::Display for TimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

from_str_serde!(TimeZone, "an IANA time zone name such as \"Asia/Shanghai\"");

// ---------------------------------------------------------------------------------------------
// Compression level

/// The zstd levels a repository may use (negative: faster and larger).
pub const ZSTD_LEVELS: std::ops::RangeInclusive<i32> = -7..=22;

/// Level 3, zstd's and restic's default: a good ratio at branch-server CPU cost.
pub(crate) const fn default_zstd_level() -> i32 {
    3
}

/// `deserialize_with` for a zstd compression level in [`ZSTD_LEVELS`].
pub(crate) fn zstd_level<'de, D: serde::Deserializer<'de>>(de: D) -> Result<i32, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = i32;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "a zstd level from {} to {}",
                ZSTD_LEVELS.start(),
                ZSTD_LEVELS.end()
            )
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i32, E> {
            match i32::try_from(v) {
                Ok(level) if ZSTD_LEVELS.contains(&level) => Ok(level),
                _ => Err(E::custom(with_hint(
                    format!(
                        "compression level {v} is out of range {}..={}",
                        ZSTD_LEVELS.start(),
                        ZSTD_LEVELS.end()
                    ),
                    "3 is the default; higher levels trade CPU for smaller uploads",
                ))),
            }
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i32, E> {
            self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
        }
    }
    de.deserialize_i64(V)
}

// ---------------------------------------------------------------------------------------------
// HttpUrl

/// An `http://` or `https://` endpoint (an S3-compatible store). Credentials in the URL are
/// refused: they would be an inline secret. Kept as written, without a trailing `/` (clients
/// append `/bucket` to it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    text: String,
    url: url::Url,
}

impl HttpUrl {
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }
}

impl FromStr for HttpUrl {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let url = url::Url::parse(s).map_err(|e| format!("invalid endpoint URL: {e}"))?;
        if !url.username().is_empty() || url.password().is_some() {
            // Do not echo the URL: it holds a credential.
            return Err(with_hint(
                "the endpoint URL contains a user name or password: inline secrets are not allowed",
                "put credentials in access-key-id and secret-access-key as { env = \"VAR\" } or { file = \"/path\" }",
            ));
        }
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!(
                "endpoint \"{s}\" must be an http:// or https:// URL"
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "endpoint \"{s}\" must not have a query or fragment"
            ));
        }
        Ok(HttpUrl {
            text: s.trim_end_matches('/').to_owned(),
            url,
        })
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

from_str_serde!(HttpUrl, "an http:// or https:// URL");

// ---------------------------------------------------------------------------------------------
// Argv

/// A command line run without a shell: the program (an absolute path, since hooks run without
/// a `PATH` search) followed by its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Argv(Vec<String>);

impl Argv {
    pub fn program(&self) -> &str {
        self.0.first().map_or("", String::as_str)
    }

    pub fn args(&self) -> &[String] {
        self.0.get(1..).unwrap_or(&[])
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }
}

impl std::ops::Deref for Argv {
    type Target = [String];
    fn deref(&self) -> &[String] {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Argv {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        let argv = Vec::<String>::deserialize(de)?;
        match argv.first() {
            None => Err(serde::de::Error::custom(with_hint(
                "a command needs at least a program",
                "write command = [\"/usr/local/bin/prog\", \"arg\"]",
            ))),
            Some(program) if !program.starts_with('/') => Err(serde::de::Error::custom(with_hint(
                format!("program \"{program}\" is not an absolute path"),
                "hooks run without a shell or PATH search; write the full path, e.g. \"/usr/bin/pg_dump\"",
            ))),
            Some(_) => Ok(Argv(argv)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_table() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("15m", Ok("15m")),
            ("4h", Ok("4h")),
            ("24h", Ok("1d")),
            ("7d", Ok("7d")),
            ("90d", Ok("90d")),
            ("365d", Ok("365d")),
            ("1h 30m", Ok("90m")),
            ("90s", Ok("90s")),
            ("1500ms", Ok("1500ms")),
            (" 2h ", Ok("2h")),
            ("0s", Err("is zero")),
            ("4", Err("invalid duration \"4\"")),
            ("4x", Err("invalid duration \"4x\"")),
            ("", Err("invalid duration")),
            ("soon", Err("invalid duration")),
        ];
        for (input, want) in cases {
            match (input.parse::<Duration>(), want) {
                (Ok(d), Ok(text)) => assert_eq!(d.to_string(), *text, "{input}"),
                (Err(e), Err(part)) => assert!(e.contains(part), "{input}: {e}"),
                (got, _) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn durations_round_trip_through_their_text() {
        for input in ["15m", "4h", "36h", "7d", "180d", "1h 1s", "250ms"] {
            let d: Duration = input.parse().unwrap();
            assert_eq!(d.to_string().parse::<Duration>().unwrap(), d, "{input}");
        }
    }

    #[test]
    fn paths_table() {
        let cases: &[(&str, bool)] = &[
            ("/srv/finance", true),
            ("/", true),
            ("srv/finance", false),
            ("./srv", false),
            ("~/srv", false),
            ("", false),
            ("/srv/../etc", false),
        ];
        for (input, ok) in cases {
            assert_eq!(input.parse::<AbsPath>().is_ok(), *ok, "{input}");
        }
    }

    #[test]
    fn globs_table() {
        let cases: &[(&str, bool)] = &[
            ("*.tmp", true),
            ("/srv/finance/scratch", true),
            ("**/cache/**", true),
            ("[abc].log", true),
            ("[abc.log", false),
            ("{a,b", false),
            ("", false),
        ];
        for (input, ok) in cases {
            assert_eq!(input.parse::<Glob>().is_ok(), *ok, "{input}");
        }
    }

    #[test]
    fn time_zones_table() {
        assert_eq!(
            "Asia/Shanghai".parse::<TimeZone>().unwrap().name(),
            "Asia/Shanghai"
        );
        assert!("UTC".parse::<TimeZone>().is_ok());
        let err = "Asia/Shangai".parse::<TimeZone>().unwrap_err();
        assert_eq!(
            err,
            with_hint(
                "unknown time zone \"Asia/Shangai\"",
                "did you mean \"Asia/Shanghai\"?"
            )
        );
        let err = "Mars/Olympus".parse::<TimeZone>().unwrap_err();
        assert!(
            err.starts_with("unknown time zone \"Mars/Olympus\""),
            "{err}"
        );
    }

    #[test]
    fn endpoints_table() {
        let cases: &[(&str, Result<(), &str>)] = &[
            ("https://s3.dc.example.cn", Ok(())),
            ("https://s3.dc.example.cn/", Ok(())),
            ("http://10.1.2.3:9000", Ok(())),
            ("s3://bucket", Err("must be an http:// or https:// URL")),
            (
                "https://user:pw@s3.example",
                Err("inline secrets are not allowed"),
            ),
            ("https://s3.example/?x=1", Err("query")),
            ("not a url", Err("invalid endpoint URL")),
        ];
        for (input, want) in cases {
            match (input.parse::<HttpUrl>(), want) {
                (Ok(url), Ok(())) => assert_eq!(url.as_str(), input.trim_end_matches('/')),
                (Err(e), Err(part)) => {
                    assert!(e.contains(part), "{input}: {e}");
                    assert!(
                        !e.contains("pw@"),
                        "{input}: the error echoes a credential: {e}"
                    );
                }
                (got, _) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }

    /// Only whether each line parses matters; the fields are never read.
    #[allow(dead_code)]
    #[derive(Debug, Deserialize)]
    struct Holder {
        #[serde(default, deserialize_with = "some_level")]
        level: Option<i32>,
        command: Option<Argv>,
        #[serde(default, deserialize_with = "some_text")]
        name: Option<String>,
    }

    fn some_level<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<i32>, D::Error> {
        zstd_level(de).map(Some)
    }

    fn some_text<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
        non_empty(de).map(Some)
    }

    #[test]
    fn compression_argv_and_text_table() {
        let cases: &[(&str, Result<(), &str>)] = &[
            ("level = 3", Ok(())),
            ("level = -7", Ok(())),
            ("level = 22", Ok(())),
            ("level = 23", Err("out of range -7..=22")),
            ("level = -8", Err("out of range -7..=22")),
            ("level = \"3\"", Err("expected a zstd level")),
            ("command = [\"/usr/bin/pg_dump\", \"-Fc\"]", Ok(())),
            ("command = []", Err("needs at least a program")),
            ("command = [\"pg_dump\"]", Err("is not an absolute path")),
            ("name = \"Finance\"", Ok(())),
            ("name = \"  \"", Err("must not be empty")),
            ("name = 5", Err("expected a non-empty string")),
        ];
        for (input, want) in cases {
            match (toml::from_str::<Holder>(input), want) {
                (Ok(_), Ok(())) => {}
                (Err(e), Err(part)) => assert!(e.message().contains(part), "{input}: {e}"),
                (got, _) => panic!("{input}: got {got:?}, want {want:?}"),
            }
        }
    }
}
