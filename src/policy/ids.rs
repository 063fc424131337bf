//! Identifiers of policy entries (tiers, sites, repositories, systems), each its own type so that
//! a site id can never be passed where a tier id is expected.
//!
//! An id is what a table is keyed by (`[systems.linfen-finance]`) and what other entries use to
//! refer to it. Ids end up in snapshot tags, file names and URLs, so they are kept to a safe
//! alphabet. This module only checks the spelling of an id; whether it refers to something that
//! exists is checked by `validate`.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The longest id accepted, in bytes (ids are ASCII).
pub const MAX_ID_LEN: usize = 64;

/// Why a string is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("an id must not be empty")]
    Empty,
    #[error("id \"{0}\" is longer than {MAX_ID_LEN} characters")]
    TooLong(String),
    #[error("id \"{0}\" must start with a letter or a digit")]
    BadStart(String),
    #[error("id \"{id}\" contains {ch:?}; use only letters, digits, '.', '_' and '-'")]
    BadChar { id: String, ch: char },
}

/// Checks the id alphabet: `[a-zA-Z0-9][a-zA-Z0-9._-]*`, at most [`MAX_ID_LEN`] characters.
pub fn check_id(s: &str) -> Result<(), IdError> {
    let mut chars = s.chars();
    match chars.next() {
        None => return Err(IdError::Empty),
        Some(c) if !c.is_ascii_alphanumeric() => return Err(IdError::BadStart(s.to_owned())),
        Some(_) => {}
    }
    if let Some(ch) = chars.find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))) {
        return Err(IdError::BadChar {
            id: s.to_owned(),
            ch,
        });
    }
    if s.len() > MAX_ID_LEN {
        return Err(IdError::TooLong(s.to_owned()));
    }
    Ok(())
}

/// The OpenAPI schema of every id type: a string in the id alphabet.
fn id_schema(name: &str) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some("^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$"))
        .max_length(Some(MAX_ID_LEN))
        .description(Some(format!("{name}: letters, digits, '.', '_' and '-'")))
        .into()
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                check_id(s).map(|()| $name(s.to_owned()))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
                super::types::deserialize_from_str(de, "an id such as \"linfen-finance\"")
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        // `String` and `str` order alike, so maps keyed by the id can be searched with a `&str`.
        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                id_schema(stringify!($name))
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

id_type!(
    /// Names a tier (`T0` … `T3` by default).
    TierId
);
id_type!(
    /// Names a site: a branch, the head office, the data centre, the standby site.
    SiteId
);
id_type!(
    /// Names a repository.
    RepoId
);
id_type!(
    /// Names a protected system.
    SystemId
);
id_type!(
    /// Names a drill plan.
    DrillId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_alphabet_table() {
        let long = "a".repeat(MAX_ID_LEN);
        let too_long = "a".repeat(MAX_ID_LEN + 1);
        let cases: &[(&str, Result<(), IdError>)] = &[
            ("T0", Ok(())),
            ("linfen-finance", Ok(())),
            ("shanxi.dc_offsite-2", Ok(())),
            ("9lives", Ok(())),
            (&long, Ok(())),
            ("", Err(IdError::Empty)),
            ("-x", Err(IdError::BadStart("-x".into()))),
            (".hidden", Err(IdError::BadStart(".hidden".into()))),
            (
                "a b",
                Err(IdError::BadChar {
                    id: "a b".into(),
                    ch: ' ',
                }),
            ),
            (
                "a/b",
                Err(IdError::BadChar {
                    id: "a/b".into(),
                    ch: '/',
                }),
            ),
            ("临汾", Err(IdError::BadStart("临汾".into()))),
            (
                "linfen临汾",
                Err(IdError::BadChar {
                    id: "linfen临汾".into(),
                    ch: '临',
                }),
            ),
            (&too_long, Err(IdError::TooLong(too_long.clone()))),
        ];
        for (input, want) in cases {
            assert_eq!(&check_id(input), want, "{input:?}");
        }
    }

    #[test]
    fn ids_parse_and_look_up_by_str() {
        let id: SystemId = "linfen-finance".parse().unwrap();
        let map = std::collections::BTreeMap::from([(id.clone(), 1)]);
        assert_eq!(map.get("linfen-finance"), Some(&1));
        assert_eq!(id.to_string(), "linfen-finance");
        assert!("bad id".parse::<TierId>().is_err());
    }
}
