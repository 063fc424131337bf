//! The per-drill report printed to PDF through real headless Chromium (Debian's `chromium`,
//! `fonts-noto-cjk`), checked with poppler (`pdftoppm`, `pdftotext`):
//!
//! * `report::pdf::html_to_pdf` on the drill page in English and in Chinese: every page,
//!   rasterised at 50 dpi in grey, has ink on it, and the text layer holds the section titles,
//!   the systems, the chart's title and the hashes in the page's language (Chinese text really
//!   printed, not boxes);
//! * `lifeboat drill record ID --format pdf --lang zh-CN --out FILE` on a record sealed in a
//!   SQLite coordinator database through the library writes that PDF; `--format html` prints
//!   the page; `--format pdf` without `--out` is a usage error (2); a `LIFEBOAT_CHROMIUM` that
//!   is not a browser fails with exit 1 and says so.
//!
//! A missing tool fails the test with the Debian package to install; nothing is skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::lifeboat;
use jiff::Timestamp;
use lifeboat::coordinator::store::{DrillStatus, NewDrill, SealedRecord, Store, StoreError};
use lifeboat::drill::measure::{Projection, SystemResult, Verdict};
use lifeboat::drill::record::{
    self, DrillEnd, DrillRecord, EvidenceItem, Header, OrganisationSection, ReadinessItem,
    ScenarioSection, Scope, StepLogEntry, SystemRecord, TimelineEntry,
};
use lifeboat::drill::render;
use lifeboat::drill::select::RestorePoint;
use lifeboat::i18n::Lang;
use lifeboat::policy::{DrillScenarioKind, DrillType, Location};
use lifeboat::report::pdf::html_to_pdf;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// tools

fn find_in_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Fails with the package to install when a tool these tests need is missing.
fn require_tools() {
    let browser = std::env::var_os("LIFEBOAT_CHROMIUM").is_some()
        || ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .any(|b| find_in_path(b).is_some());
    assert!(
        browser,
        "no Chromium: install Debian's chromium (apt-get install chromium), or run ./tests/run.sh"
    );
    for (tool, package) in [
        ("pdftoppm", "poppler-utils"),
        ("pdftotext", "poppler-utils"),
        ("fc-list", "fontconfig"),
    ] {
        assert!(
            find_in_path(tool).is_some(),
            "{tool} not found: install Debian's {package} (apt-get install {package}), or run \
             ./tests/run.sh"
        );
    }
    let fonts = Command::new("fc-list")
        .args([":lang=zh", "family"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&fonts.stdout).trim().is_empty(),
        "no Chinese font: install Debian's fonts-noto-cjk (apt-get install fonts-noto-cjk)"
    );
}

/// The text layer of `pdf`, as `pdftotext -layout` reads it.
fn pdf_text(pdf: &Path) -> String {
    let out = Command::new("pdftotext")
        .args(["-layout", "-enc", "UTF-8"])
        .arg(pdf)
        .arg("-")
        .output()
        .unwrap();
    assert!(out.status.success(), "pdftotext failed: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// A binary PGM (P5) image: width, height and its 8-bit grey pixels.
fn read_pgm(path: &Path) -> (usize, usize, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    // Header: "P5", width, height, maxval, each separated by whitespace, then one whitespace.
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..at]).to_string());
    }
    assert_eq!(fields[0], "P5", "{}: not a binary PGM", path.display());
    assert_eq!(fields[3], "255", "{}: not 8-bit", path.display());
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let pixels = bytes[at + 1..].to_vec();
    assert_eq!(pixels.len(), w * h, "{}", path.display());
    (w, h, pixels)
}

/// Rasterises every page of `pdf` at 50 dpi in grey and returns, per page, the share of
/// pixels that are not white.
fn ink_per_page(pdf: &Path, dir: &Path) -> Vec<f64> {
    let prefix = dir.join("page");
    let out = Command::new("pdftoppm")
        .args(["-r", "50", "-gray"])
        .arg(pdf)
        .arg(&prefix)
        .output()
        .unwrap();
    assert!(out.status.success(), "pdftoppm failed: {out:?}");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pgm"))
        .collect();
    pages.sort();
    pages
        .iter()
        .map(|p| {
            let (w, h, pixels) = read_pgm(p);
            // A4 at 50 dpi is 413 × 585.
            assert!(w > 400 && h > 500, "{}: {w}×{h}", p.display());
            let ink = pixels.iter().filter(|&&g| g < 200).count();
            ink as f64 / (w * h) as f64
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// the record

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn result(system: &str, rto: Option<i64>, target: i64, verdict: Verdict) -> SystemResult {
    SystemResult {
        system: system.parse().unwrap(),
        tier: "T1".parse().unwrap(),
        achieved_rpo_seconds: rto.map(|_| 5_400),
        rpo_target_seconds: 14_400,
        it_rto_seconds: rto,
        it_rto_target_seconds: target,
        business_rto_seconds: rto.map(|r| r + 1_800),
        business_rto_target_seconds: target + 3_600,
        rto_from_declaration_seconds: rto.map(|r| r - 600),
        decision_latency_seconds: rto.map(|_| 600),
        throughput_bytes_per_second: rto.map(|_| 48.0 * 1024.0 * 1024.0),
        verdict,
        reasons: match verdict {
            Verdict::Fail => vec![format!(
                "IT RTO exceeds the T1 target of {}h.",
                target / 3600
            )],
            _ => vec![],
        },
    }
}

fn system(result: SystemResult, restored: bool) -> SystemRecord {
    SystemRecord {
        restore_point: restored.then(|| RestorePoint {
            system: result.system.clone(),
            snapshot: "4f2a9c01".into(),
            repository: "province-s3".parse().unwrap(),
            location: Location::Remote,
            immutable: true,
            t_cap: t("2026-10-14T00:30:00Z"),
            t_avail: t("2026-10-14T01:10:00Z"),
            bytes: Some(3 << 30),
            files: Some(41_000),
        }),
        bytes_restored: if restored { 3 << 30 } else { 0 },
        files_restored: if restored { 41_000 } else { 0 },
        tree_digest: restored.then(|| "9e".repeat(32)),
        result,
    }
}

/// A site-loss drill of three systems: one within its targets, one over its IT RTO, one only
/// extrapolated.
fn drill_record(id: Uuid) -> DrillRecord {
    let start = t("2026-10-14T02:00:00Z");
    let results = vec![
        system(
            result("linfen-core-banking", Some(9_000), 14_400, Verdict::Pass),
            true,
        ),
        system(
            result("linfen-credit", Some(30_600), 28_800, Verdict::Fail),
            true,
        ),
        system(
            result("linfen-mail", None, 86_400, Verdict::PassWithConditions),
            false,
        ),
    ];
    let rec = DrillRecord {
        header: Header {
            drill_id: id,
            plan: "linfen-site-loss".parse().unwrap(),
            title: "Linfen branch site loss".into(),
            title_zh: Some("临汾分行站点失效演练".into()),
            drill_type: DrillType::FullSwitchover,
            regulatory: record::regulatory_flag(DrillType::FullSwitchover),
            policy_digest: "5c".repeat(32),
            lifeboat_version: "0.1.0".into(),
            started_by: "user:wang.wei".into(),
            started_at: start,
            finished_at: Some(t("2026-10-14T12:30:00Z")),
            status: DrillEnd::Completed,
        },
        objectives: results
            .iter()
            .map(|s| record::Objective {
                system: s.result.system.clone(),
                tier: s.result.tier.clone(),
                rpo_target_seconds: s.result.rpo_target_seconds,
                it_rto_target_seconds: s.result.it_rto_target_seconds,
                business_rto_target_seconds: s.result.business_rto_target_seconds,
                verify_required: true,
            })
            .collect(),
        scope: Scope {
            restored: vec![
                "linfen-core-banking".parse().unwrap(),
                "linfen-credit".parse().unwrap(),
            ],
            extrapolated: vec!["linfen-mail".parse().unwrap()],
            excluded: vec![],
        },
        scenario: ScenarioSection {
            kind: DrillScenarioKind::SiteLoss,
            lost_site: Some("linfen".parse().unwrap()),
            lost_system: None,
            outage: start,
            declared_disaster: None,
            compromise_at: None,
            allowed_copies: "complete copies available by T_disaster at repositories off the \
                             lost site (linfen), never a local or same-site copy"
                .into(),
        },
        organisation: OrganisationSection {
            lead: Some("王伟 Wang Wei".into()),
            participants: vec!["IT operations".into(), "business verifiers".into()],
            observers: vec!["internal audit".into()],
        },
        readiness: vec![ReadinessItem {
            subject: "standby agent dr-taiyuan-1".into(),
            ok: true,
            detail: "online, 2.1 TiB free".into(),
        }],
        timeline: vec![
            TimelineEntry {
                mark: "outage".into(),
                at: start,
                recorded_by: "lifeboat".into(),
                source: "drill start".into(),
            },
            TimelineEntry {
                mark: "declare".into(),
                at: t("2026-10-14T02:10:00Z"),
                recorded_by: "user:wang.wei".into(),
                source: "gate approval".into(),
            },
        ],
        step_log: vec![StepLogEntry {
            at: t("2026-10-14T02:11:00Z"),
            step: "restore".into(),
            system: Some("linfen-credit".parse().unwrap()),
            event: "started".into(),
            detail: None,
        }],
        projection: Some(Projection {
            restored_bytes: 6 << 30,
            full_bytes: 40 << 30,
            fixed_overhead_seconds: 1_800,
            throughput_bytes_per_second: 48.0 * 1024.0 * 1024.0,
            projected_it_rto_seconds: 16_000,
            extrapolated: true,
        }),
        verdict: Verdict::Fail,
        deviations: vec!["health check of linfen-credit run by hand".into()],
        findings: record::findings(
            &results.iter().map(|s| s.result.clone()).collect::<Vec<_>>(),
            &[],
            &["health check of linfen-credit run by hand".into()],
        ),
        results,
        evidence: vec![EvidenceItem::of("plan.json", b"{}")],
        bundle_sha256: Some("ab".repeat(32)),
        sign_off: record::blank_sign_off(),
        previous_hash: record::GENESIS_HASH.into(),
        record_hash: String::new(),
    };
    record::seal(rec, record::GENESIS_HASH)
}

// ---------------------------------------------------------------------------------------------
// tests

/// The expected text of the report in each language (pdftotext keeps the words of one line
/// together, so each is checked on its own).
fn expected(lang: Lang) -> &'static [&'static str] {
    match lang {
        Lang::En => &[
            "Drill report: Linfen branch site loss",
            "1. Header",
            "8. Results per system",
            "14. Sign-off",
            "IT RTO vs target per system",
            "linfen-core-banking",
            "linfen-credit",
            "linfen-mail",
            "projected from the measured throughput",
        ],
        Lang::ZhCn => &[
            "演练报告",
            "临汾分行站点失效演练",
            "1. 基本信息",
            "8. 各系统结果",
            "14. 签字确认",
            "各系统技术 RTO 与目标",
            "linfen-core-banking",
            "业务负责人（业务验证）",
            "按实测吞吐量外推",
        ],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_drill_report_prints_to_pdf_in_english_and_chinese() {
    require_tools();
    let record = drill_record(Uuid::new_v4());
    for lang in [Lang::En, Lang::ZhCn] {
        let dir = tempfile::tempdir().unwrap();
        let html = render::page(&record, lang);
        let started = std::time::Instant::now();
        let pdf = html_to_pdf(&html)
            .await
            .unwrap_or_else(|e| panic!("{lang}: {e}"));
        eprintln!(
            "{lang}: {} bytes printed in {:?}",
            pdf.len(),
            started.elapsed()
        );
        assert!(pdf.starts_with(b"%PDF-"), "{lang}: not a PDF");
        let path = dir.path().join("report.pdf");
        std::fs::write(&path, &pdf).unwrap();

        let ink = ink_per_page(&path, dir.path());
        // Fourteen sections with page breaks before the timeline, the results and the annex.
        assert!(ink.len() >= 4, "{lang}: only {} pages", ink.len());
        for (n, share) in ink.iter().enumerate() {
            assert!(
                *share > 0.002,
                "{lang}: page {} is blank ({:.4}% ink)",
                n + 1,
                share * 100.0
            );
        }
        eprintln!("{lang}: ink per page {ink:.4?}");

        let text = pdf_text(&path);
        for want in expected(lang) {
            assert!(
                text.contains(want),
                "{lang}: {want:?} not in the PDF:\n{text}"
            );
        }
        assert!(text.contains(&record.record_hash), "{lang}: record hash");
        match lang {
            Lang::En => assert!(!text.contains("演练报告"), "an English page"),
            Lang::ZhCn => assert!(!text.contains("Results per system"), "a Chinese page"),
        }
    }
}

/// A coordinator's files in a tempdir: its config, its SQLite database, the example policies.
struct Coordinator {
    dir: tempfile::TempDir,
    config: PathBuf,
    db: PathBuf,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn coordinator() -> Coordinator {
    let dir = tempfile::tempdir().unwrap();
    let policies = dir.path().join("policies");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"),
        &policies,
    );
    let db = dir.path().join("coordinator.db");
    let config = dir.path().join("coordinator.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{}\"\ndatabase = \"sqlite://{}\"\npolicy-dir = \"{}\"\n",
            common::free_port(),
            db.display(),
            policies.display()
        ),
    )
    .unwrap();
    Coordinator { dir, config, db }
}

impl Coordinator {
    fn drill(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        lifeboat()
            .arg("drill")
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env("USER", "tester")
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }
}

#[test]
fn lifeboat_drill_record_writes_the_report_as_html_and_pdf() {
    require_tools();
    let c = coordinator();
    // The binary creates the database.
    let out = c.drill(&["verify-chain"], &[]);
    assert!(out.status.success(), "{out:?}");

    let id = Uuid::new_v4();
    let record = drill_record(id);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Store::open(&format!("sqlite://{}", c.db.display()))
            .await
            .unwrap();
        store
            .insert_drill(&NewDrill {
                id,
                plan: record.header.plan.clone(),
                status: DrillStatus::Finished,
                created_by: "user:wang.wei".into(),
                created_at: record.header.started_at,
                scheduled_for: None,
                started_at: Some(record.header.started_at),
                state: serde_json::json!({}),
            })
            .await
            .unwrap();
        store
            .seal_drill_with::<StoreError>(id, None, |link| {
                let sealed = record::seal(record.clone(), &link.previous_hash);
                Ok(SealedRecord {
                    record: serde_json::to_string(&sealed).unwrap(),
                    record_hash: sealed.record_hash,
                })
            })
            .await
            .unwrap();
        store.close().await;
    });
    let id_text = id.to_string();

    // PDF in Chinese.
    let pdf = c.dir.path().join("drill-report.zh-CN.pdf");
    let pdf_arg = pdf.to_str().unwrap();
    let started = std::time::Instant::now();
    let out = c.drill(
        &[
            "record", &id_text, "--format", "pdf", "--lang", "zh-CN", "--out", pdf_arg,
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "lifeboat drill record --format pdf: {:?}",
        started.elapsed()
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("written to"));
    assert!(std::fs::read(&pdf).unwrap().starts_with(b"%PDF-"));
    let text = pdf_text(&pdf);
    for want in expected(Lang::ZhCn) {
        assert!(text.contains(want), "{want:?} not in the PDF:\n{text}");
    }
    let pages = tempfile::tempdir().unwrap();
    assert!(ink_per_page(&pdf, pages.path()).iter().all(|s| *s > 0.002));

    // HTML in English on standard output.
    let out = c.drill(&["record", &id_text, "--format", "html"], &[]);
    assert!(out.status.success(), "{out:?}");
    let html = String::from_utf8(out.stdout).unwrap();
    assert!(html.starts_with("<!DOCTYPE html><html lang=\"en\">"));
    assert!(html.contains("Drill report: Linfen branch site loss"));
    assert!(html.contains(&record.record_hash));

    // The default is still the sealed JSON, exactly.
    let out = c.drill(&["record", &id_text], &[]);
    assert!(out.status.success(), "{out:?}");
    let back: DrillRecord = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(back.record_hash, record.record_hash);

    // A PDF needs --out.
    let out = c.drill(&["record", &id_text, "--format", "pdf"], &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out"));

    // A browser setting that names no browser: exit 1, and the message says what to do.
    let out = c.drill(
        &["record", &id_text, "--format", "pdf", "--out", pdf_arg],
        &[("LIFEBOAT_CHROMIUM", "/nonexistent/chromium")],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("LIFEBOAT_CHROMIUM=/nonexistent/chromium is not an executable file"),
        "{err}"
    );
}
