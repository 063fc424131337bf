//! Words for what serde and the TOML deserializer report: serde's messages are taken apart and
//! said in policy terms ("unknown key \"shedules\"", "did you mean \"schedules\"?"), and a
//! value under a secret-looking key is never repeated.

use toml::de::DeValue;

use super::spans::Found;
use crate::policy::problem::{KeyPath, Problem, SourceFile, did_you_mean, split_hint};
use crate::secret::INLINE_SECRET_HINT;

/// What serde said, taken apart so that we can say it our way.
#[derive(Debug, PartialEq)]
pub(super) enum SerdeMessage {
    MissingField(String),
    UnknownField {
        name: String,
        expected: Vec<String>,
    },
    UnknownVariant {
        name: String,
        expected: Vec<String>,
    },
    /// `invalid type` / `invalid value`: what was expected, and what was found as serde printed it.
    Invalid {
        expected: String,
        found: String,
    },
    /// Anything else: a message of ours (possibly with a hint), or of the TOML deserializer.
    Other(String),
}

/// The words between backticks, in order.
fn backticked(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

pub(super) fn parse_serde_message(message: &str) -> SerdeMessage {
    if let Some(rest) = message.strip_prefix("missing field `") {
        return SerdeMessage::MissingField(rest.trim_end_matches('`').to_owned());
    }
    for (prefix, is_field) in [("unknown field `", true), ("unknown variant `", false)] {
        if let Some(rest) = message.strip_prefix(prefix) {
            let (name, expected) = rest.split_once('`').unwrap_or((rest, ""));
            let expected = backticked(expected);
            let name = name.to_owned();
            return if is_field {
                SerdeMessage::UnknownField { name, expected }
            } else {
                SerdeMessage::UnknownVariant { name, expected }
            };
        }
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((found, expected)) = rest.split_once(", expected ")
        {
            return SerdeMessage::Invalid {
                expected: expected.to_owned(),
                found: found.to_owned(),
            };
        }
    }
    SerdeMessage::Other(message.to_owned())
}

/// serde's names for what it expected, in policy words.
fn expected_words(expected: &str) -> String {
    match expected {
        "u8" => "a whole number from 0 to 255".into(),
        "u32" => "a whole number from 0 to 4294967295".into(),
        "a sequence" => "an array".into(),
        "a map" => "a table".into(),
        "a boolean" => "true or false".into(),
        s if s.starts_with("struct ") => "a table".into(),
        s => s.to_owned(),
    }
}

/// A TOML value's kind with its article, for "found …".
pub(super) fn kind(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a date-time",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

/// True for key names that suggest a secret (`password`, `secret-access-key`, `PGPASSWORD`,
/// `token`, `access-key` …). Used to refuse inline secrets and to keep their values out of
/// messages.
pub(crate) fn looks_secret(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    ["password", "passwd", "secret", "token", "key", "credential"]
        .iter()
        .any(|w| lower.contains(w))
}

/// Turns one serde error into a problem.
pub(super) fn describe(
    file: &SourceFile,
    base: &KeyPath,
    found: &Found<'_>,
    message: SerdeMessage,
) -> Problem {
    let path = base.join(&found.path);
    let key = path.last_key().unwrap_or("").to_owned();
    let secret = looks_secret(&key);
    let (message, hint) = match message {
        SerdeMessage::UnknownField { name, expected } => {
            let candidates = expected.iter().map(String::as_str).filter(|k| *k != "id");
            let suggestion = did_you_mean(&name, candidates.clone());
            let inline = secret && !matches!(found.value, Some(DeValue::Table(_)));
            if inline {
                let hint = match suggestion {
                    Some(s) => format!("{s} {INLINE_SECRET_HINT}"),
                    None => INLINE_SECRET_HINT.to_owned(),
                };
                (
                    format!("unknown key \"{name}\": inline secrets are not allowed"),
                    Some(hint),
                )
            } else {
                let list: Vec<&str> = candidates.collect();
                let hint = suggestion.or_else(|| {
                    (!list.is_empty()).then(|| format!("known keys: {}", list.join(", ")))
                });
                (format!("unknown key \"{name}\""), hint)
            }
        }
        SerdeMessage::UnknownVariant { name, expected } => {
            let list = expected.join(", ");
            let hint = match did_you_mean(&name, expected.iter().map(String::as_str)) {
                Some(s) => format!("{s} (one of {list})"),
                None => format!("expected one of {list}"),
            };
            (format!("unknown value \"{name}\""), Some(hint))
        }
        SerdeMessage::Invalid {
            expected,
            found: serde_found,
        } => {
            let found_words = match found.value {
                // Name the value when it is harmless and short (a number that is out of range);
                // otherwise only its kind.
                Some(DeValue::Integer(_) | DeValue::Float(_)) if !secret => serde_found
                    .rsplit(' ')
                    .next()
                    .unwrap_or("")
                    .trim_matches('`')
                    .to_owned(),
                Some(value) => kind(value).to_owned(),
                None => "something else".to_owned(),
            };
            (
                format!(
                    "expected {}, found {found_words}",
                    expected_words(&expected)
                ),
                None,
            )
        }
        SerdeMessage::Other(text) if text.starts_with("inline secrets are not allowed") => (
            "inline secrets are not allowed".to_owned(),
            Some(INLINE_SECRET_HINT.to_owned()),
        ),
        SerdeMessage::Other(text) if text == "wanted string or table" => {
            let found_words = found.value.map_or("something else", kind);
            (format!("expected a string, found {found_words}"), None)
        }
        SerdeMessage::Other(text) => split_hint(&text),
        SerdeMessage::MissingField(name) => (format!("missing required key \"{name}\""), None),
    };
    let (message, hint) = match (secret, found.value) {
        (true, Some(DeValue::String(value))) if !value.is_empty() => {
            let scrub = |s: String| s.replace(value.as_ref(), "<redacted>");
            (scrub(message), hint.map(scrub))
        }
        _ => (message, hint),
    };
    file.problem(&found.span, &path, message, hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_table() {
        let cases = [
            (
                "missing field `cron`",
                SerdeMessage::MissingField("cron".into()),
            ),
            (
                "unknown field `shedules`, expected one of `id`, `schedules`",
                SerdeMessage::UnknownField {
                    name: "shedules".into(),
                    expected: vec!["id".into(), "schedules".into()],
                },
            ),
            (
                "unknown field `x`, expected `env`",
                SerdeMessage::UnknownField {
                    name: "x".into(),
                    expected: vec!["env".into()],
                },
            ),
            (
                "unknown field `x`, there are no fields",
                SerdeMessage::UnknownField {
                    name: "x".into(),
                    expected: vec![],
                },
            ),
            (
                "unknown variant `dayly`, expected one of `backup`, `copy`",
                SerdeMessage::UnknownVariant {
                    name: "dayly".into(),
                    expected: vec!["backup".into(), "copy".into()],
                },
            ),
            (
                "invalid type: integer `5`, expected a string",
                SerdeMessage::Invalid {
                    expected: "a string".into(),
                    found: "integer `5`".into(),
                },
            ),
            (
                "invalid value: integer `300`, expected u8",
                SerdeMessage::Invalid {
                    expected: "u8".into(),
                    found: "integer `300`".into(),
                },
            ),
            (
                "compression level 30 is out of range",
                SerdeMessage::Other("compression level 30 is out of range".into()),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_serde_message(input), want, "{input}");
        }
    }

    #[test]
    fn secret_looking_names_table() {
        let cases = [
            ("password", true),
            ("PGPASSWORD", true),
            ("secret-access-key", true),
            ("api_token", true),
            ("access-key", true),
            ("AWS_SECRET_ACCESS_KEY", true),
            ("credentials", true),
            ("PGDATABASE", false),
            ("PGHOST", false),
            ("keep-daily", false),
            ("PWD", false),
        ];
        for (name, want) in cases {
            assert_eq!(looks_secret(name), want, "{name}");
        }
    }
}
