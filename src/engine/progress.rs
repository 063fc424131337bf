//! Progress bars on a terminal for rustic_core's long phases (backing up, restoring, reading packs).
//!
//! rustic_core creates one progress per phase and updates it from many threads; indicatif's bars
//! are thread-safe, so [`Bars`] hands them out directly. When stderr is not a terminal (or with
//! `--json`/`--quiet`) every progress is hidden, which also lets the archiver skip its size pre-scan.

use std::fmt;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use rustic_core::{Progress, ProgressBars, ProgressType, RusticProgress};

/// The progress factory given to every repository.
#[derive(Clone)]
pub struct Bars {
    multi: Option<MultiProgress>,
}

impl fmt::Debug for Bars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bars(visible: {})", self.multi.is_some())
    }
}

impl Bars {
    /// Visible bars on stderr.
    pub fn terminal() -> Self {
        Bars {
            multi: Some(MultiProgress::with_draw_target(ProgressDrawTarget::stderr())),
        }
    }

    /// No output at all.
    pub fn hidden() -> Self {
        Bars { multi: None }
    }
}

#[derive(Debug)]
struct Bar(ProgressBar);

impl RusticProgress for Bar {
    fn is_hidden(&self) -> bool {
        false
    }
    fn set_length(&self, len: u64) {
        self.0.set_length(len);
    }
    fn set_title(&self, title: &str) {
        self.0.set_prefix(title.to_string());
    }
    fn inc(&self, inc: u64) {
        self.0.inc(inc);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}

impl ProgressBars for Bars {
    fn progress(&self, progress_type: ProgressType, prefix: &str) -> Progress {
        let Some(multi) = &self.multi else {
            return Progress::hidden();
        };
        let template = match progress_type {
            ProgressType::Spinner => "{spinner} {prefix} [{elapsed}]",
            ProgressType::Counter => "{prefix:30} [{elapsed}] {bar:30} {pos:>8}/{len:8}",
            ProgressType::Bytes => {
                "{prefix:30} [{elapsed}] {bar:30} {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12} eta {eta}"
            }
        };
        let style =
            ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = multi.add(
            ProgressBar::new(0)
                .with_style(style)
                .with_prefix(prefix.to_string()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Progress::new(Bar(bar))
    }
}
