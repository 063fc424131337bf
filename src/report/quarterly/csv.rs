//! The report's RPO compliance as CSV: one row per system × scenario, for spreadsheets (the
//! format's rules are in the parent module's documentation: RFC 4180, UTF-8 with a BOM, stable
//! column ids, formula-looking text neutralised).
//!
//! Pure: model in, text out. It computes no figure.

use super::model::{QuarterlyReport, RpoRow};
use super::words;
use crate::i18n::Lang;

/// The byte order mark that makes Excel read the file as UTF-8.
const BOM: &str = "\u{feff}";

/// One field, quoted when RFC 4180 requires it.
fn field(out: &mut String, value: &str) {
    if value.contains([',', '"', '\r', '\n']) {
        out.push('"');
        out.push_str(&value.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(value);
    }
}

/// A text field (never a number): one that a spreadsheet would run as a formula gets a `'`.
fn text(value: &str) -> String {
    if value.starts_with(['=', '+', '-', '@']) {
        format!("'{value}")
    } else {
        value.to_string()
    }
}

fn line(out: &mut String, fields: &[String]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        field(out, f);
    }
    out.push_str("\r\n");
}

fn num(v: Option<impl ToString>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

pub fn render(report: &QuarterlyReport, lang: Lang) -> String {
    let mut out = String::from(BOM);
    let mut header: Vec<String> = [
        "quarter",
        "system",
        "name",
        "department",
        "site",
        "tier",
        "scenario",
        "target_seconds",
        "worst_exposure_seconds",
        "unbounded",
        "worst_exposure",
        "within_target_percent",
        "breaches",
        "breached_seconds",
        "causes",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for q in &report.meta.trend_quarters {
        header.push(format!("within_target_percent_{q}"));
    }
    line(&mut out, &header);
    for row in &report.rpo.rows {
        line(&mut out, &fields(report, row, lang));
    }
    out
}

fn fields(report: &QuarterlyReport, row: &RpoRow, lang: Lang) -> Vec<String> {
    let system = report.inventory.systems.iter().find(|s| s.id == row.system);
    let causes: Vec<&str> = row
        .causes
        .iter()
        .map(|c| words::cause(lang, c.kind))
        .collect();
    let mut f = vec![
        report.meta.quarter.to_string(),
        text(row.system.as_str()),
        text(system.map_or("", |s| s.name.as_str())),
        text(system.map_or("", |s| s.department.as_str())),
        text(row.site.as_str()),
        text(row.tier.as_str()),
        row.scenario.as_str().to_string(),
        row.target_seconds.to_string(),
        num(row.worst_exposure_seconds),
        row.unbounded.to_string(),
        text(&words::exposure(
            lang,
            row.worst_exposure_seconds,
            row.unbounded,
        )),
        format!("{:.2}", row.within_percent),
        row.breaches.to_string(),
        row.breached_seconds.to_string(),
        text(&causes.join("; ")),
    ];
    for t in &row.trend {
        f.push(num(t.within_percent.map(|p| format!("{p:.2}"))));
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_as_rfc_4180_says_and_formulas_neutralised() {
        let mut out = String::new();
        line(
            &mut out,
            &[
                "plain".into(),
                "a,b".into(),
                "say \"hi\"".into(),
                "two\nlines".into(),
                text("=HYPERLINK(\"x\")"),
                text("财务"),
            ],
        );
        assert_eq!(
            out,
            "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\"'=HYPERLINK(\"\"x\"\")\",财务\r\n"
        );
    }
}
