//! Debian's chromium driven through chromedriver (WebDriver) for the dashboard tests: one
//! chromedriver per test on a free port, a headless chromium with a fresh profile, both gone
//! when the [`Browser`] is dropped. A missing chromium or chromedriver fails the test with the
//! packages to install — never a silent skip.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

/// The flags every test browser starts with: lifeboat's own headless flags (those it prints
/// PDFs with) and a laptop-sized window.
pub fn chromium_flags() -> Vec<String> {
    lifeboat::report::pdf::HEADLESS_FLAGS
        .iter()
        .copied()
        .chain(["--window-size=1366,768"])
        .map(str::to_string)
        .collect()
}

fn find(candidates: &[&str], env: &str) -> Option<PathBuf> {
    if let Ok(p) = std::env::var(env) {
        return Some(PathBuf::from(p));
    }
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// chromium and chromedriver, or a panic naming the Debian packages.
pub fn binaries() -> (PathBuf, PathBuf) {
    let chromium = find(
        &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
        "LIFEBOAT_CHROMIUM",
    );
    let driver = find(&["/usr/bin/chromedriver"], "LIFEBOAT_CHROMEDRIVER");
    match (chromium, driver) {
        (Some(c), Some(d)) => (c, d),
        (c, d) => panic!(
            "the dashboard tests need Debian's chromium and chromedriver (found chromium: {}, \
             chromedriver: {}): apt-get install chromium chromium-driver fonts-noto-cjk \
             (tests/run.sh does)",
            c.is_some(),
            d.is_some()
        ),
    }
}

/// A chromedriver process and a WebDriver session of a headless chromium.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and a chromium session with [`chromium_flags`] and a
    /// fresh `--user-data-dir`; `log` receives chromedriver's output.
    pub async fn start(log: &Path) -> Browser {
        let (chromium, driver_bin) = binaries();
        let port = crate::common::free_port();
        let log_file = std::fs::File::create(log).unwrap();
        let driver = Command::new(&driver_bin)
            .arg(format!("--port={port}"))
            .stdout(Stdio::from(log_file.try_clone().unwrap()))
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", driver_bin.display()));
        let profile = tempfile::tempdir().unwrap();
        let mut args = chromium_flags();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({ "binary": chromium, "args": args }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        let client = loop {
            match ClientBuilder::rustls()
                .unwrap()
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if started.elapsed() < Duration::from_secs(30) => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!(
                    "no WebDriver session after 30 s ({e}); chromedriver's log: {}",
                    std::fs::read_to_string(log).unwrap_or_default()
                ),
            }
        };
        Browser {
            client,
            driver,
            _profile: profile,
        }
    }

    /// Ends the session (closes chromium).
    pub async fn quit(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }

    pub async fn goto(&self, url: &str) {
        self.client.goto(url).await.unwrap();
    }

    /// The page's visible text. A page that reloads itself (a live drill) may replace the body
    /// between finding and reading it: read again then.
    pub async fn text(&self) -> String {
        let mut tries = 0;
        loop {
            let read = match self.client.find(Locator::Css("body")).await {
                Ok(body) => body.text().await,
                Err(e) => Err(e),
            };
            match read {
                Ok(text) => return text,
                Err(e) if tries < 20 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("cannot read the page: {e}"),
            }
        }
    }

    pub async fn path(&self) -> String {
        self.client.current_url().await.unwrap().path().to_string()
    }

    /// Whether an element matches `css`.
    pub async fn has(&self, css: &str) -> bool {
        !self
            .client
            .find_all(Locator::Css(css))
            .await
            .unwrap()
            .is_empty()
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .click()
            .await
            .unwrap();
    }

    /// Clicks `css` and waits (up to 15 s) until the browser has left the page: WebDriver's
    /// click returns when the click is dispatched, not when the next page is there.
    pub async fn click_to_next_page(&self, css: &str) {
        let old = self.client.find(Locator::Css("html")).await.unwrap();
        self.click(css).await;
        let started = Instant::now();
        while old.tag_name().await.is_ok() {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "clicking {css} did not lead to another page"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The new document is parsed once its body can be read.
        let _ = self.text().await;
    }

    pub async fn fill(&self, css: &str, text: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"))
            .send_keys(text)
            .await
            .unwrap();
    }

    /// The value of cookie `name` the browser holds for the page's site.
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.client
            .get_all_cookies()
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.name() == name)
            .map(|c| c.value().to_string())
    }

    /// Saves a PNG screenshot of the viewport to `path`; returns its size in bytes.
    pub async fn screenshot(&self, path: &str) -> usize {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(path, &png).unwrap();
        png.len()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
