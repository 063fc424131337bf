//! Prints an HTML page to PDF through headless Chromium, for the per-drill and quarterly
//! reports: [`html_to_pdf`].
//!
//! The page is written to a fresh private temporary directory with a fresh browser profile,
//! printed with `--print-to-pdf`, and the directory is removed whatever happens (the guard's
//! `Drop`). The browser runs in its own process group under a timeout; on timeout, or when the
//! caller gives up (an HTTP client disconnects), the whole group is killed, renderer and zygote
//! included. At most [`MAX_PRINTS`] browsers run at once.
//!
//! This module must not fetch anything: the pages it prints are self-contained (inline CSS and
//! SVG, no script), and the browser runs with background networking, component updates, sync
//! and QUIC off. It must not print a page whose Chinese text would come out as empty boxes: a
//! page with CJK characters needs a CJK font that fontconfig knows (`fc-list :lang=zh`), else
//! [`PdfError::NoCjkFont`].
//!
//! `--no-sandbox`: Chromium refuses to start as root with its sandbox on (the setuid and
//! namespace sandboxes cannot drop root's privileges), and in most containers the user
//! namespaces it needs are not available either. The sandbox protects against hostile web
//! content; what is printed here is our own page, built from escaped data, with no script and
//! no network, so running without it gives nothing away.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio::sync::Semaphore;

/// How lifeboat starts Chromium without a screen, here and in the dashboard's browser tests:
/// headless, without its sandbox (see the module doc), and with no network of its own (no
/// updates, sync, QUIC or background connections: a closed network would refuse them, many at
/// a time), `/dev/shm` not used (containers give it 64 MiB).
pub const HEADLESS_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

/// The environment variable naming the browser to print with.
pub const BROWSER_ENV: &str = "LIFEBOAT_CHROMIUM";

/// Browsers looked for on `PATH`, in this order, when [`BROWSER_ENV`] is not set.
const BROWSER_NAMES: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// How long one print may take, browser start included (a cold start on a busy machine takes
/// several seconds; a report page prints in one or two).
const PRINT_TIMEOUT: Duration = Duration::from_secs(120);

/// Browsers printing at the same time; more requests wait their turn (each is a few hundred MB).
const MAX_PRINTS: usize = 2;

static PRINTS: Semaphore = Semaphore::const_new(MAX_PRINTS);

/// Set once `fc-list :lang=zh` has listed a font (a missing font is looked for again next time,
/// so installing one needs no restart).
static CJK_FONT_FOUND: AtomicBool = AtomicBool::new(false);

/// Why no PDF was printed.
#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    /// No browser on `PATH` and [`BROWSER_ENV`] not set.
    #[error(
        "no Chromium to print the PDF with: install Debian's chromium and fonts-noto-cjk \
         (apt-get install chromium fonts-noto-cjk) or set LIFEBOAT_CHROMIUM"
    )]
    NoBrowser,
    /// [`BROWSER_ENV`] names something that is not an executable file.
    #[error(
        "LIFEBOAT_CHROMIUM={0} is not an executable file: point it at chromium or google-chrome, \
         or unset it to look on PATH"
    )]
    BrowserNotExecutable(PathBuf),
    /// The page has Chinese text and fontconfig knows no Chinese font.
    #[error(
        "the page has Chinese text but no Chinese font is installed (fc-list :lang=zh lists \
         none), so the PDF would show empty boxes: install fonts-noto-cjk \
         (apt-get install fonts-noto-cjk)"
    )]
    NoCjkFont,
    /// The temporary directory or its files could not be written or read.
    #[error("could not prepare the page for printing in {dir}: {source}")]
    TempFiles {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The browser could not be started.
    #[error("could not start {browser}: {source}")]
    Spawn {
        browser: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The browser ran past [`PRINT_TIMEOUT`] and was killed.
    #[error("{browser} did not finish printing within {seconds} s and was stopped")]
    Timeout { browser: PathBuf, seconds: u64 },
    /// The browser exited without writing a PDF.
    #[error("{browser} did not print the page ({status}): {stderr}")]
    Failed {
        browser: PathBuf,
        status: String,
        /// The end of the browser's error output.
        stderr: String,
    },
}

impl PdfError {
    /// True when the machine lacks something (a browser, a font) rather than the print failing:
    /// the operator can fix it with the hint in the message.
    pub fn is_missing_software(&self) -> bool {
        matches!(
            self,
            PdfError::NoBrowser | PdfError::BrowserNotExecutable(_) | PdfError::NoCjkFont
        )
    }
}

/// `html` (a complete, self-contained page) printed to PDF on A4 (or the page's `@page` size),
/// without the browser's header and footer, backgrounds included.
pub async fn html_to_pdf(html: &str) -> Result<Vec<u8>, PdfError> {
    let browser = find_browser()?;
    if has_cjk(html) && !cjk_font_installed().await {
        return Err(PdfError::NoCjkFont);
    }
    // A closed semaphore is impossible (it is never closed); printing without the permit then
    // only loses the limit.
    let _permit = PRINTS.acquire().await.ok();
    let dir = TempDir::create()?;
    let page = dir.path.join("page.html");
    let pdf = dir.path.join("page.pdf");
    let profile = dir.path.join("profile");
    let temp_err = |source| PdfError::TempFiles {
        dir: dir.path.clone(),
        source,
    };
    tokio::fs::write(&page, html).await.map_err(temp_err)?;

    let mut cmd = Command::new(&browser);
    cmd.args(HEADLESS_FLAGS)
        .arg("--no-pdf-header-footer")
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0);
    let mut child = cmd.spawn().map_err(|source| PdfError::Spawn {
        browser: browser.clone(),
        source,
    })?;
    let mut group = GroupGuard(child.id());
    let mut stderr = child.stderr.take();
    let waited = tokio::time::timeout(PRINT_TIMEOUT, async {
        let mut err = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut err).await;
        }
        (child.wait().await, err)
    })
    .await;
    let Ok((status, err)) = waited else {
        // The guard kills the group on the way out.
        return Err(PdfError::Timeout {
            browser,
            seconds: PRINT_TIMEOUT.as_secs(),
        });
    };
    // The browser has exited and its helpers exit with it: nothing left to kill.
    group.disarm();
    let status = status.map_err(|source| PdfError::Spawn {
        browser: browser.clone(),
        source,
    })?;
    match tokio::fs::read(&pdf).await {
        Ok(bytes) if status.success() && bytes.starts_with(b"%PDF-") => Ok(bytes),
        _ => Err(PdfError::Failed {
            browser,
            status: status.to_string(),
            stderr: stderr_tail(&err),
        }),
    }
}

/// The browser to print with: [`BROWSER_ENV`] if set, else the first of [`BROWSER_NAMES`] on
/// `PATH`.
fn find_browser() -> Result<PathBuf, PdfError> {
    if let Some(path) = std::env::var_os(BROWSER_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(PdfError::BrowserNotExecutable(path))
        };
    }
    let dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    BROWSER_NAMES
        .iter()
        .flat_map(|name| dirs.iter().map(move |dir| dir.join(name)))
        .find(|candidate| is_executable(candidate))
        .ok_or(PdfError::NoBrowser)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Whether `text` has a character only a CJK font draws (ideographs, kana, hangul, CJK
/// punctuation and full-width forms).
fn has_cjk(text: &str) -> bool {
    text.chars().any(|c| {
        matches!(c as u32,
            0x1100..=0x11FF | 0x2E80..=0x2FDF | 0x3000..=0x303F | 0x3040..=0x31FF
            | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F | 0xFF00..=0xFFEF | 0x20000..=0x3FFFF)
    })
}

/// Whether fontconfig (which Chromium draws its fonts through) lists a font for Chinese. When
/// `fc-list` itself cannot run the answer is unknown: printing goes ahead with a warning.
async fn cjk_font_installed() -> bool {
    if CJK_FONT_FOUND.load(Ordering::Relaxed) {
        return true;
    }
    let listed = tokio::time::timeout(
        Duration::from_secs(20),
        Command::new("fc-list")
            .args([":lang=zh", "family"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await;
    match listed {
        Ok(Ok(out)) if out.status.success() => {
            let found = !String::from_utf8_lossy(&out.stdout).trim().is_empty();
            if found {
                CJK_FONT_FOUND.store(true, Ordering::Relaxed);
            }
            found
        }
        Ok(Ok(out)) => {
            tracing::warn!(status = %out.status, "fc-list failed; cannot tell whether a Chinese font is installed");
            true
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "fc-list not found (Debian: fontconfig); cannot tell whether a Chinese font is installed");
            true
        }
        Err(_) => {
            tracing::warn!("fc-list timed out; cannot tell whether a Chinese font is installed");
            true
        }
    }
}

fn stderr_tail(err: &[u8]) -> String {
    const KEEP: usize = 1500;
    let text = String::from_utf8_lossy(&err[err.len().saturating_sub(KEEP)..]);
    let text = text.trim();
    if text.is_empty() {
        "no error output".to_owned()
    } else {
        text.replace('\n', " | ")
    }
}

/// A private directory under the system's temporary directory, removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn create() -> Result<TempDir, PdfError> {
        use std::os::unix::fs::DirBuilderExt;
        let path = std::env::temp_dir().join(format!("lifeboat-pdf-{}", uuid::Uuid::new_v4()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|source| PdfError::TempFiles {
                dir: path.clone(),
                source,
            })?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(dir = %self.path.display(), error = %e, "could not remove the PDF print directory");
        }
    }
}

/// The browser's process group, killed on drop unless the browser was waited for: the browser's
/// helpers (zygote, renderer) are in the same group and `kill_on_drop` only ends the browser.
struct GroupGuard(Option<u32>);

impl GroupGuard {
    /// The browser was waited for: its group id may be reused from now on.
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0.take());
    }
}

fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid {
        // `kill -KILL -PGID`: std has no killpg and unsafe code is forbidden (as in hooks.rs).
        let _ = std::process::Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cjk_text_is_recognised() {
        let cases = [
            ("Drill report", false),
            ("演练报告", true),
            ("RTO 2h · target 4h — ok…", false),
            ("（", true),
            ("ｈ", true),
        ];
        for (text, cjk) in cases {
            assert_eq!(has_cjk(text), cjk, "{text}");
        }
    }

    #[test]
    fn errors_say_what_to_install() {
        let text = PdfError::NoBrowser.to_string();
        assert!(
            text.contains("apt-get install chromium fonts-noto-cjk"),
            "{text}"
        );
        assert!(text.contains("LIFEBOAT_CHROMIUM"), "{text}");
        assert!(PdfError::NoCjkFont.to_string().contains("fonts-noto-cjk"));
        assert!(PdfError::NoCjkFont.is_missing_software());
        assert_eq!(stderr_tail(b"a\nb\n"), "a | b");
        assert_eq!(stderr_tail(b""), "no error output");
    }

    #[test]
    fn the_temporary_directory_is_private_and_removed() {
        use std::os::unix::fs::PermissionsExt;
        let path = {
            let dir = TempDir::create().unwrap_or_else(|e| panic!("{e}"));
            let mode = std::fs::metadata(&dir.path)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or_default();
            assert_eq!(mode, 0o700);
            std::fs::write(dir.path.join("page.html"), "x").unwrap_or_else(|e| panic!("{e}"));
            dir.path.clone()
        };
        assert!(!path.exists());
    }
}
