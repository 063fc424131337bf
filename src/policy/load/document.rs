//! One stand-alone TOML document (a service's configuration file, not a policy directory)
//! deserialised into a typed value, with the policy loader's error quality: a problem carries
//! the file, line, column and key path of the offending key or value.

use std::path::Path;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::spans::locate;
use crate::policy::problem::{KeyPath, Problem, SourceFile, split_hint};

/// Parses `text` (read from `path`, which is only used in the problem) into `T`. `T` should
/// deny unknown fields so that a misspelt key is reported rather than ignored.
pub fn parse_document<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, Problem> {
    let file = SourceFile {
        path: path.to_path_buf(),
        text: text.to_owned(),
    };
    let root = match DeTable::parse(text) {
        Ok(root) => root,
        Err(e) => {
            let (line, column) = file.line_col(e.span().map_or(0, |s| s.start));
            let message = e.message().trim().replace('\n', "; ");
            return Err(SourceFile::file_problem(
                path,
                line,
                column,
                format!("TOML syntax error: {message}"),
            ));
        }
    };
    match toml::from_str::<T>(text) {
        Ok(value) => Ok(value),
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let root_span = root.span();
            let tree = Spanned::new(root_span, DeValue::Table(root.into_inner()));
            let (key_path, at) = match locate(&tree, &span) {
                Some(found) => (KeyPath(found.path), found.span),
                None => (KeyPath::default(), span),
            };
            let (message, hint) = split_hint(e.message().trim());
            Err(file.problem(&at, &key_path, message, hint))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "kebab-case", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Conf {
        host: String,
        #[serde(default)]
        inner: Inner,
    }

    #[derive(Debug, Default, serde::Deserialize)]
    #[serde(rename_all = "kebab-case", deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        #[serde(default)]
        limit: u32,
    }

    fn problem(text: &str) -> Problem {
        match parse_document::<Conf>(Path::new("agent.toml"), text) {
            Ok(c) => panic!("accepted {c:?}"),
            Err(p) => p,
        }
    }

    #[test]
    fn names_file_line_and_key() {
        let p = problem("host = \"a\"\n[inner]\nlimit = \"x\"\n");
        assert_eq!((p.line, p.key_path.as_str()), (3, "inner.limit"), "{p}");
        let p = problem("host = \"a\"\n[inner]\nlimt = 3\n");
        assert_eq!((p.line, p.key_path.as_str()), (3, "inner.limt"), "{p}");
        assert!(p.message.contains("unknown field"), "{p}");
        let p = problem("host = \n");
        assert!(p.message.starts_with("TOML syntax error"), "{p}");
        assert_eq!(p.file, Path::new("agent.toml"));
        let p = problem("[inner]\nlimit = 1\n");
        assert!(p.message.contains("host"), "{p}");
    }
}
