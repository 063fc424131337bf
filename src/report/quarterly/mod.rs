//! The quarterly recovery-objectives report (standards §4.2) for the BCM committee and senior
//! management: one value ([`QuarterlyReport`]) built from the coordinator's evidence, rendered as
//! a printable HTML page (English or Chinese), CSV, JSON, or PDF (the HTML printed).
//!
//! Shape: [`gather`] (the edge: reads the store) → [`ReportInputs`] → [`build()`] (pure, `now`
//! passed in) → [`QuarterlyReport`] → `html` / `csv` / JSON. [`render`] does all of it for the
//! CLI (`lifeboat report`) and the API (`GET /api/v1/reports/quarterly`). This module must not
//! write SQL (the store does), assess anything itself (`crate::assess` and `crate::drill` do;
//! here figures are only selected and grouped), read the clock, or print a secret (the report
//! names repositories by id and never shows URLs or secret sources).
//!
//! # Rules this report adds
//!
//! **Quarters** are calendar quarters in the *organisation's time zone*: the zone of the policy's
//! head-office site (`role = "head-office"`), else of the first site by id, else UTC. The
//! default quarter is the last complete one. A quarter not yet over is measured up to `now`
//! and marked provisional. Only run records that finished by the period's end are read, so a
//! past quarter's figures do not move when later records arrive (a check that fails later still
//! distrusts a repository from its start, as `Assessor::period` documents). Trends cover the
//! four previous quarters; a quarter that ended before a system's first recorded run is "not
//! measured", not 0 %.
//!
//! **RAG per tier** (and per tier × site in the heat map), from each system's figures over the
//! quarter (standards §3.2: the headline scenario is site loss):
//! - **red** when any system was within its site-loss RPO target less than
//!   [`build::RED_WITHIN_PERCENT`] (95 %) of the quarter, had no counted site-loss copy at all at
//!   its end (unbounded exposure), or failed its latest drill;
//! - **amber** when any system breached its site-loss target at all, was below 95 % in another
//!   scenario (component loss, ransomware), is never drilled or overdue for its tier's
//!   `drill-every`, or does not meet 3-2-1-1-0 at the quarter's end;
//! - **green** otherwise; **grey** for a tier without systems.
//!
//! Ransomware figures are reported for every system, but judged (status, findings) only for
//! tiers that require an immutable copy: a tier with `immutable = 0` accepts that exposure.
//!
//! The RPO groups of section 3 (tier × site × scenario) use the RPO part only: red below 95 % or
//! with nothing counted at the period's end, amber on any breach.
//!
//! **Breach causes**: for each breach, the run records from one target before it began to its
//! end: failed or partial backups, failed writes to a repository the scenario counts, failed
//! checks of such a repository (inconclusive ones prove nothing), snapshots that reached a
//! counted repository later than the target after capture, and no backup recorded at all (the
//! agent offline or nothing scheduled). When none of these shows, "no failure recorded": backups
//! ran, just not often enough.
//!
//! **Findings** are derived, most severe first: high for a site-loss breach below 95 %, a drill
//! that failed, a check failure still standing, an overdue regulatory drill and a drill's own
//! high finding; medium for other breaches below 95 % or on site loss, cleared check failures,
//! integrity coverage gaps, 3-2-1-1-0 gaps, systems never drilled or overdue, backup success
//! below 90 %; low otherwise.
//!
//! **CSV** (`--format csv`) is data for spreadsheets: one row per system × scenario, RFC 4180
//! (CRLF, fields with a comma, quote or line break quoted, quotes doubled), UTF-8 *with* a byte
//! order mark so that Excel opens Chinese names correctly; the header row is stable snake_case
//! column ids in every language, and a text field starting with `=`, `+`, `-` or `@` is prefixed
//! with `'` so a spreadsheet never runs it as a formula.

pub mod build;
mod csv;
mod html;
pub mod model;
mod quarter;
mod words;

use jiff::Timestamp;

pub use build::{BuildError, ReportInputs, build, organisation_zone};
pub use model::QuarterlyReport;
pub use quarter::{Quarter, QuarterError};

use crate::assess::Settings;
use crate::coordinator::store::{Page, Store, StoreError};
use crate::drill::record::DrillRecord;
use crate::i18n::Lang;
use crate::policy::Policy;

/// The output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    #[default]
    Html,
    Pdf,
    Csv,
    Json,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Pdf => "pdf",
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }

    /// `html`, `pdf`, `csv` or `json`.
    pub fn parse(text: &str) -> Option<Format> {
        [Format::Html, Format::Pdf, Format::Csv, Format::Json]
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

/// A rendered report, ready to write to a file or answer with.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub content_type: &'static str,
    /// `lifeboat-report-2026Q4-zh-CN.html`.
    pub file_name: String,
    pub bytes: Vec<u8>,
}

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Build(#[from] BuildError),
    #[error("{0}")]
    Pdf(#[from] crate::report::pdf::PdfError),
    #[error("building the report failed: {0}")]
    Task(String),
}

/// Reads what the report is built from: every run record that finished by `until` and every
/// readable sealed drill record (an unreadable one is logged and left out, as the drills API
/// does). The policy is the caller's (the one in force).
pub async fn gather(
    store: &Store,
    policy: &Policy,
    until: Timestamp,
) -> Result<ReportInputs, StoreError> {
    // The store caps a page at this many; a shorter page is the last.
    const BATCH: u32 = Page::MAX_LIMIT;
    let mut runs = Vec::new();
    let mut after = 0;
    loop {
        let page = store.runs_after(after, BATCH).await?;
        let full = page.len() >= BATCH as usize;
        after = page.iter().map(|r| r.id).max().unwrap_or(after);
        runs.extend(
            page.into_iter()
                .map(|r| r.record)
                .filter(|r| r.finished_at <= until),
        );
        if !full {
            break;
        }
    }
    let drills = store
        .drill_chain()
        .await?
        .into_iter()
        .filter_map(
            |(id, seal)| match serde_json::from_str::<DrillRecord>(&seal.record) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(drill = %id, "sealed drill record cannot be read: {e}");
                    None
                }
            },
        )
        .collect();
    Ok(ReportInputs {
        time_zone: organisation_zone(policy),
        policy: policy.clone(),
        settings: Settings::default(),
        runs,
        drills,
    })
}

/// The report of `quarter` (default: the last complete one in the organisation's zone) in
/// `format` and `lang`, from the store and the policy in force, at `now`.
pub async fn render(
    store: &Store,
    policy: &Policy,
    quarter: Option<Quarter>,
    lang: Lang,
    format: Format,
    now: Timestamp,
) -> Result<Rendered, ReportError> {
    let quarter =
        quarter.unwrap_or_else(|| Quarter::last_complete(now, &organisation_zone(policy)));
    let (_, end) = quarter.bounds(&organisation_zone(policy));
    let inputs = gather(store, policy, end.min(now)).await?;
    // Building walks every record and samples the exposure: CPU work, off the async threads
    // when there is a runtime to hand it to.
    let report = tokio::task::spawn_blocking(move || build(&inputs, quarter, now))
        .await
        .map_err(|e| ReportError::Task(e.to_string()))??;
    render_report(&report, lang, format).await
}

/// One built report in `format` and `lang` (PDF: the HTML page printed by
/// [`crate::report::pdf::html_to_pdf`]).
pub async fn render_report(
    report: &QuarterlyReport,
    lang: Lang,
    format: Format,
) -> Result<Rendered, ReportError> {
    let name = |ext: &str| {
        format!(
            "lifeboat-report-{}-{}.{ext}",
            report.meta.quarter,
            lang.tag()
        )
    };
    Ok(match format {
        Format::Json => Rendered {
            content_type: "application/json",
            file_name: format!("lifeboat-report-{}.json", report.meta.quarter),
            bytes: json(report),
        },
        Format::Csv => Rendered {
            content_type: "text/csv; charset=utf-8",
            file_name: name("csv"),
            bytes: csv::render(report, lang).into_bytes(),
        },
        Format::Html => Rendered {
            content_type: "text/html; charset=utf-8",
            file_name: name("html"),
            bytes: html::render(report, lang).into_string().into_bytes(),
        },
        Format::Pdf => Rendered {
            content_type: "application/pdf",
            file_name: name("pdf"),
            bytes: crate::report::pdf::html_to_pdf(&html::render(report, lang).into_string())
                .await?,
        },
    })
}

/// The report as pretty JSON with a final newline (the golden file's form).
pub fn json(report: &QuarterlyReport) -> Vec<u8> {
    // The model holds only strings, numbers, timestamps and maps with string keys: serialising
    // it cannot fail.
    let mut out = serde_json::to_vec_pretty(report).unwrap_or_default();
    out.push(b'\n');
    out
}
