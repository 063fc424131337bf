//! The two languages of everything people read — reports, the drill record page, the dashboard:
//! English and Simplified Chinese.
//!
//! Only the choice of language lives here ([`Lang`]: parsed from `--lang`, a `lang=` query
//! parameter or an `Accept-Language` header). Each page keeps its own labels beside the code
//! that prints them (`lang.pick("Exposure", "暴露时长")`), so a label is read and changed where
//! it is used. Figures, identifiers and timestamps are never translated.

use serde::{Deserialize, Serialize};

/// A language a page can be rendered in.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
pub enum Lang {
    /// English.
    #[default]
    #[serde(rename = "en")]
    #[value(name = "en")]
    En,
    /// Simplified Chinese (简体中文).
    #[serde(rename = "zh-CN")]
    #[value(name = "zh-CN", alias = "zh")]
    ZhCn,
}

impl Lang {
    /// The BCP 47 tag, for `<html lang=…>` and file names.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::ZhCn => "zh-CN",
        }
    }

    /// The text for this language out of an English and a Chinese one.
    pub fn pick<'a>(self, en: &'a str, zh: &'a str) -> &'a str {
        match self {
            Lang::En => en,
            Lang::ZhCn => zh,
        }
    }

    /// A language tag as people and browsers write it (`en`, `en-GB`, `zh`, `zh-CN`,
    /// `zh-Hans-CN`, any case); `None` for any other language.
    pub fn from_tag(tag: &str) -> Option<Lang> {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or("");
        if primary.eq_ignore_ascii_case("en") {
            Some(Lang::En)
        } else if primary.eq_ignore_ascii_case("zh") {
            Some(Lang::ZhCn)
        } else {
            None
        }
    }

    /// The first language of an `Accept-Language` header that lifeboat speaks, in the header's
    /// order of preference (`q` weights); `None` when it names neither.
    pub fn from_accept_language(header: &str) -> Option<Lang> {
        let mut choices: Vec<(f32, usize, Lang)> = header
            .split(',')
            .enumerate()
            .filter_map(|(at, item)| {
                let mut parts = item.split(';');
                let lang = Lang::from_tag(parts.next()?)?;
                let q = parts
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                (q > 0.0).then_some((q, at, lang))
            })
            .collect();
        choices.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        choices.first().map(|c| c.2)
    }
}

impl std::fmt::Display for Lang {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.tag())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_accept_language_headers_choose_the_language() {
        assert_eq!(Lang::from_tag("zh-Hans-CN"), Some(Lang::ZhCn));
        assert_eq!(Lang::from_tag("EN_gb"), Some(Lang::En));
        assert_eq!(Lang::from_tag("fr"), None);
        assert_eq!(
            Lang::from_accept_language("fr-FR,zh-CN;q=0.9,en;q=0.8"),
            Some(Lang::ZhCn)
        );
        assert_eq!(
            Lang::from_accept_language("zh;q=0.5, en-US"),
            Some(Lang::En)
        );
        assert_eq!(Lang::from_accept_language("de, zh;q=0"), None);
        assert_eq!(Lang::ZhCn.pick("Tier", "等级"), "等级");
        assert_eq!(Lang::ZhCn.to_string(), "zh-CN");
    }
}
