//! Fuzzing of every decoder at lifeboat's trust boundaries, on stable Rust with proptest (no
//! nightly, so no cargo-fuzz): the agent ↔ coordinator wire types (`src/api.rs`, `src/run.rs`),
//! the coordinator's HTTP application driven in-process over a real SQLite store, and the
//! configuration and policy loaders.
//!
//! The properties:
//! * decoding random bytes or a structurally mutated valid document never panics, and a value
//!   that decodes re-encodes and decodes to the same value;
//! * a random, mutated, truncated, mistyped or oversized request to any agent or people endpoint
//!   that takes a body, a query or a path parameter is answered — never a 5xx, a panic or a hang
//!   — and every refusal is a 4xx whose body is an `ApiError` with a reason; afterwards the store
//!   is consistent (no half-stored batch; valid calls still work);
//! * a mutated `deploy/*.toml` or policy file loads, or is refused with problems that name the
//!   file and a line (and column) inside it, never a panic.
//!
//! It must not touch the network or the repository's files (configurations and policies are
//! mutated in temporary copies), and it persists no proptest regression files: each property
//! prints its seed, and `PROPTEST_RNG_SEED=<seed> cargo test --test fuzz_decoders` replays it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, StatusCode, header};
use jiff::Timestamp;
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, RngSeed, TestCaseError, TestRunner};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value as Json, json};
use tower::ServiceExt;

use lifeboat::agent::config::AgentConfig;
use lifeboat::api::{
    ASSIGNMENT_PATH, ApiError, Assignment, AssignmentFile, Command, ENROL_PATH, EnrolRequest,
    EnrolResponse, HEARTBEAT_PATH, Heartbeat, HeartbeatResponse, LastRun, PolicyFileName,
    RUNS_PATH, RejectCode, Rejection, RunBatch, RunBatchResponse, RunEnvelope, RunningJob,
    SpoolStatus, SystemStatus, Token,
};
use lifeboat::clock::Clock;
use lifeboat::coordinator::config::CoordinatorConfig;
use lifeboat::coordinator::drills_api::{self, DrillsApi};
use lifeboat::coordinator::fleet_api::{self, FleetApi, PolicyLoads};
use lifeboat::coordinator::metrics::Metrics;
use lifeboat::coordinator::store::{Role, Store, StoreError};
use lifeboat::coordinator::sweep::{SweepConfig, Sweeper};
use lifeboat::coordinator::{auth, people_api, server};
use lifeboat::policy::{self, Problem};
use lifeboat::run::{CheckScope, Outcome, RepoResult, RunError, RunKind, RunRecord, SourceStats};
use lifeboat::secret::Secret;

// ---------------------------------------------------------------------------------------------
// Running properties

/// A proptest configuration of `cases` cases: no regression files, and a seed that is printed
/// (shown when the test fails) and taken from `PROPTEST_RNG_SEED` when set.
fn config(cases: u32) -> ProptestConfig {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
    eprintln!("proptest seed {seed}: PROPTEST_RNG_SEED={seed} replays this property");
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        ..ProptestConfig::default()
    }
}

/// Checks `property` on `cases` values of `strategy`; a failure panics with the minimal input.
fn check<S: Strategy>(
    cases: u32,
    strategy: S,
    property: impl Fn(S::Value) -> Result<(), TestCaseError>,
) where
    S::Value: Debug,
{
    let mut runner = TestRunner::new(config(cases));
    if let Err(e) = runner.run(&strategy, property) {
        panic!("{e}");
    }
}

fn fail(message: impl Into<String>) -> TestCaseError {
    TestCaseError::fail(message.into())
}

// ---------------------------------------------------------------------------------------------
// Structure-aware mutation of JSON documents

/// A string value rendered as raw JSON text (a number beyond every integer type, deep nesting):
/// what `serde_json::Value` cannot hold is spliced in after rendering.
const RAW: &str = "\u{1}raw:";
/// An object key rendered without this prefix: a duplicate of the key that follows.
const DUP: &str = "\u{1}dup:";

fn raw(text: &str) -> Json {
    Json::String(format!("{RAW}{text}"))
}

fn nested(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

/// Numbers at and beyond the edges of u64, i64 and f64, and things that are not JSON numbers.
const ODD_NUMBERS: &[&str] = &[
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "340282366920938463463374607431768211457",
    "-1",
    "-0",
    "0.5",
    "1e400",
    "-1e400",
    "1e-400",
    "1.7976931348623157e308",
    "5e-324",
    "NaN",
    "Infinity",
    "0x10",
    "00",
    "1.",
];

/// Timestamps at and beyond jiff's range, impossible dates, odd offsets, missing parts.
const ODD_TIMESTAMPS: &[&str] = &[
    "1970-01-01T00:00:00Z",
    "-009999-01-02T00:00:00Z",
    "-009999-01-01T00:00:00+23:59",
    "9999-12-30T23:59:59.999999999Z",
    "9999-12-31T23:59:59-23:59",
    "+010000-01-01T00:00:00Z",
    "0000-01-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-03-01T24:00:00Z",
    "2016-12-31T23:59:60Z",
    "2026-03-01T00:00:00+25:00",
    "2026-03-01T00:00:00",
    "2026-03-01",
    "1772330400",
    "",
];

/// Strings that have broken parsers and path handling elsewhere.
const ODD_STRINGS: &[&str] = &[
    "",
    " ",
    "../etc",
    "../../../../etc/passwd",
    "/etc/passwd",
    "a/../../b",
    "..",
    ".",
    "linfen-finance",
    "LINFEN-FINANCE",
    "linfen-fs01\u{0}",
    "\u{0}",
    "%2e%2e%2f",
    "C:\\Windows",
    "临汾支行",
    "👩‍👩‍👧‍👦🏳️‍🌈",
    "\u{202e}gnp.exe",
    "\u{feff}",
    "\u{10ffff}",
    "systems.toml",
    ".hidden.toml",
    "x.toml/",
    "Bearer ",
    "\r\nX-Injected: 1",
    "'; DROP TABLE runs; --",
    "null",
    "true",
    "1",
];

fn odd_value() -> impl Strategy<Value = Json> {
    prop_oneof![
        4 => prop_oneof![
            Just(Json::Null),
            any::<bool>().prop_map(Json::from),
            any::<i64>().prop_map(Json::from),
            any::<u64>().prop_map(Json::from),
            any::<f64>().prop_filter("JSON has no NaN", |f| f.is_finite()).prop_map(Json::from),
            Just(json!({})),
            Just(json!([])),
            Just(json!([null])),
            Just(json!({"": null})),
        ],
        3 => prop::sample::select(ODD_NUMBERS).prop_map(raw),
        3 => prop::sample::select(ODD_TIMESTAMPS).prop_map(Json::from),
        3 => prop::sample::select(ODD_STRINGS).prop_map(Json::from),
        2 => any::<String>().prop_map(Json::from),
        1 => (1usize..100_000).prop_map(|n| Json::from("ж".repeat(n))),
        1 => prop_oneof![Just(100usize), Just(129), Just(10_000)].prop_map(|d| raw(&nested(d))),
    ]
}

/// One change to a valid document. `at` picks a node (pre-order, modulo the number of nodes),
/// so that the same change applies to any sample.
#[derive(Debug, Clone)]
enum Mutation {
    /// Remove the node (an object member or array element; the root becomes `null`).
    Drop(usize),
    /// Replace the node by a value of another type or an odd value of the same type.
    Retype(usize, Json),
    /// Write the node twice: a duplicate object key, or a repeated array element.
    Duplicate(usize),
    /// Put the node into an array.
    Wrap(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        2 => any::<usize>().prop_map(Mutation::Drop),
        5 => (any::<usize>(), odd_value()).prop_map(|(at, v)| Mutation::Retype(at, v)),
        2 => any::<usize>().prop_map(Mutation::Duplicate),
        1 => any::<usize>().prop_map(Mutation::Wrap),
    ]
}

#[derive(Debug, Clone, PartialEq)]
enum Seg {
    Key(String),
    Index(usize),
}

fn node_paths(value: &Json, path: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    out.push(path.clone());
    match value {
        Json::Object(map) => {
            for (k, v) in map {
                path.push(Seg::Key(k.clone()));
                node_paths(v, path, out);
                path.pop();
            }
        }
        Json::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                node_paths(v, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn node_mut<'a>(value: &'a mut Json, path: &[Seg]) -> Option<&'a mut Json> {
    path.iter().try_fold(value, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k.as_str()),
        Seg::Index(i) => v.get_mut(*i),
    })
}

fn mutate(value: &mut Json, m: &Mutation) {
    let mut paths = Vec::new();
    node_paths(value, &mut Vec::new(), &mut paths);
    let (Mutation::Drop(at)
    | Mutation::Retype(at, _)
    | Mutation::Duplicate(at)
    | Mutation::Wrap(at)) = m;
    let path = &paths[at % paths.len()];
    let Some((last, parent_path)) = path.split_last() else {
        *value = match m {
            Mutation::Drop(_) => Json::Null,
            Mutation::Retype(_, v) => v.clone(),
            Mutation::Duplicate(_) => json!([value.clone(), value.clone()]),
            Mutation::Wrap(_) => json!([value.clone()]),
        };
        return;
    };
    let Some(parent) = node_mut(value, parent_path) else {
        return;
    };
    match (m, last, parent) {
        (Mutation::Drop(_), Seg::Key(k), Json::Object(map)) => {
            map.remove(k);
        }
        (Mutation::Drop(_), Seg::Index(i), Json::Array(items)) => {
            items.remove(*i);
        }
        (Mutation::Duplicate(_), Seg::Key(k), Json::Object(map)) => {
            let copy = map[k].clone();
            map.insert(format!("{DUP}{k}"), copy);
        }
        (Mutation::Duplicate(_), Seg::Index(i), Json::Array(items)) => {
            let copy = items[*i].clone();
            items.insert(*i, copy);
        }
        (Mutation::Retype(_, v), Seg::Key(k), Json::Object(map)) => {
            map.insert(k.clone(), v.clone());
        }
        (Mutation::Retype(_, v), Seg::Index(i), Json::Array(items)) => items[*i] = v.clone(),
        (Mutation::Wrap(_), Seg::Key(k), Json::Object(map)) => {
            let inner = map[k].take();
            map.insert(k.clone(), json!([inner]));
        }
        (Mutation::Wrap(_), Seg::Index(i), Json::Array(items)) => {
            items[*i] = json!([items[*i].take()]);
        }
        _ => {}
    }
}

/// The JSON text of `value`, with the [`RAW`] values spliced in and the [`DUP`] keys renamed.
fn render(value: &Json) -> String {
    let text = serde_json::to_string(value).expect("a Value always renders");
    let text = text.replace("\\u0001dup:", "");
    let marker = "\"\\u0001raw:";
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(start) = rest.find(marker) {
        out.push_str(&rest[..start]);
        let after = &rest[start + marker.len()..];
        let end = after.find('"').unwrap_or(after.len());
        out.push_str(&after[..end]);
        rest = after.get(end + 1..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// A document to decode, derived from a valid sample (or not).
#[derive(Debug, Clone)]
enum Doc {
    /// The sample with a few structure-aware changes (or none).
    Mutated(Vec<Mutation>),
    /// The sample (maybe mutated) cut short at a char boundary.
    Truncated(Vec<Mutation>, usize),
    /// One byte of the sample's text replaced.
    ByteFlip(usize, u8),
    /// Anything at all.
    Bytes(Vec<u8>),
    /// The whole document nested in arrays this deep.
    Nested(usize),
}

impl Doc {
    fn bytes(&self, sample: &Json) -> Vec<u8> {
        let mutated = |ms: &[Mutation]| {
            let mut v = sample.clone();
            for m in ms {
                mutate(&mut v, m);
            }
            render(&v)
        };
        match self {
            Doc::Mutated(ms) => mutated(ms).into_bytes(),
            Doc::Truncated(ms, at) => {
                let text = mutated(ms);
                let mut cut = at % text.len().max(1);
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.as_bytes()[..cut].to_vec()
            }
            Doc::ByteFlip(at, byte) => {
                let mut bytes = render(sample).into_bytes();
                let i = at % bytes.len();
                bytes[i] = *byte;
                bytes
            }
            Doc::Bytes(b) => b.clone(),
            Doc::Nested(depth) => {
                let d = *depth;
                format!("{}{}{}", "[".repeat(d), render(sample), "]".repeat(d)).into_bytes()
            }
        }
    }

    /// Whether no valid request can come out of this document (so it must be refused).
    fn is_garbage(&self) -> bool {
        matches!(self, Doc::Truncated(..) | Doc::Nested(_))
    }
}

fn doc() -> impl Strategy<Value = Doc> {
    // Zero mutations too: valid documents must reach the handlers often.
    let mutations = || prop::collection::vec(mutation(), 0..4);
    prop_oneof![
        6 => mutations().prop_map(Doc::Mutated),
        2 => (prop::collection::vec(mutation(), 0..2), any::<usize>())
            .prop_map(|(ms, at)| Doc::Truncated(ms, at)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Doc::ByteFlip(at, b)),
        2 => prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            "[ -~]{0,200}".prop_map(String::into_bytes),
        ]
        .prop_map(Doc::Bytes),
        1 => prop_oneof![Just(1usize), Just(200), Just(10_000)].prop_map(Doc::Nested),
    ]
}

// ---------------------------------------------------------------------------------------------
// Valid samples of every wire type

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const HOST: &str = "linfen-fs01";
const SITE: &str = "linfen";
const SYSTEM: &str = "linfen-finance";

fn record(run_id: &str, seconds: f64) -> RunRecord {
    let mut r = RunRecord::start(
        RunKind::Backup,
        run_id.into(),
        HOST.into(),
        ts("2026-03-01T01:00:00Z"),
    );
    r.system = Some(SYSTEM.into());
    r.site = Some(SITE.into());
    r.tier = Some("T1".into());
    r.finished_at = ts("2026-03-01T01:10:00.123456789Z");
    r.capture_time = Some(ts("2026-03-01T01:00:05Z"));
    r.snapshot_id = Some("3f2a".into());
    r.source = Some(SourceStats {
        files: 10,
        files_new: 1,
        files_changed: 2,
        files_unmodified: 7,
        dirs: 3,
        bytes: 1 << 40,
    });
    r.repositories = vec![RepoResult {
        repository: "linfen-local".into(),
        location: "local".into(),
        immutable: false,
        outcome: Outcome::Success,
        available_at: Some(ts("2026-03-01T01:10:00Z")),
        snapshots: vec!["3f2a".into()],
        bytes_added: 4096,
        seconds,
        error: Some(RunError {
            kind: "none".into(),
            message: "m".into(),
        }),
    }];
    r.outcome = Outcome::Success;
    r.check = Some(CheckScope {
        read_data: true,
        subset: Some("1/7".into()),
    });
    r.warnings = vec!["w".into()];
    r
}

fn envelope(run_id: &str, seq: u64) -> RunEnvelope {
    RunEnvelope {
        key: run_id.into(),
        seq,
        system: Some(SYSTEM.into()),
        record: record(run_id, 1.5),
    }
}

fn heartbeat() -> Heartbeat {
    Heartbeat {
        drill_tasks_running: Vec::new(),
        host: HOST.into(),
        version: "0.1.0".into(),
        sent_at: ts("2026-03-01T12:00:00Z"),
        spool: SpoolStatus {
            depth: 2,
            oldest: Some(ts("2026-03-01T11:00:00Z")),
            dropped: 1,
            quarantined: 0,
        },
        assignment_digest: Some("ab12".into()),
        systems: vec![SystemStatus {
            system: SYSTEM.parse().unwrap(),
            last_backup: Some(LastRun {
                run_id: "r1".into(),
                started_at: ts("2026-03-01T10:00:00Z"),
                outcome: Outcome::Partial,
            }),
            last_success: Some(ts("2026-03-01T06:00:00Z")),
            offsite_lag_seconds: Some(3600),
            next_run: Some(ts("2026-03-01T14:00:00Z")),
            running: Some(RunningJob {
                run_id: "r2".into(),
                kind: RunKind::Copy,
                started_at: ts("2026-03-01T11:59:00Z"),
            }),
        }],
    }
}

fn to_json(value: &impl Serialize) -> Json {
    serde_json::to_value(value).unwrap()
}

/// Decodes `bytes` as `T`; when that works, the value must re-encode and decode to itself.
fn roundtrip<T: Serialize + DeserializeOwned + PartialEq + Debug>(
    bytes: &[u8],
) -> Result<Option<T>, TestCaseError> {
    let Ok(value) = serde_json::from_slice::<T>(bytes) else {
        return Ok(None);
    };
    let name = std::any::type_name::<T>();
    let wire = serde_json::to_vec(&value)
        .map_err(|e| fail(format!("{name} decoded but does not encode: {e}")))?;
    let again: T = serde_json::from_slice(&wire).map_err(|e| {
        fail(format!(
            "{name} re-encoded as {} does not decode: {e}",
            String::from_utf8_lossy(&wire)
        ))
    })?;
    prop_assert_eq!(&again, &value, "{} changed through re-encoding", name);
    Ok(Some(value))
}

/// Every wire decoder over the same bytes, with the pure helpers that take decoded values.
fn decode_everything(bytes: &[u8]) -> Result<(), TestCaseError> {
    roundtrip::<Token>(bytes)?;
    roundtrip::<EnrolRequest>(bytes)?;
    roundtrip::<EnrolResponse>(bytes)?;
    roundtrip::<Heartbeat>(bytes)?;
    roundtrip::<SpoolStatus>(bytes)?;
    roundtrip::<SystemStatus>(bytes)?;
    roundtrip::<Command>(bytes)?;
    roundtrip::<PolicyFileName>(bytes)?;
    roundtrip::<AssignmentFile>(bytes)?;
    roundtrip::<RunBatch>(bytes)?;
    roundtrip::<RunEnvelope>(bytes)?;
    roundtrip::<RunBatchResponse>(bytes)?;
    roundtrip::<Rejection>(bytes)?;
    roundtrip::<RejectCode>(bytes)?;
    roundtrip::<ApiError>(bytes)?;
    roundtrip::<RunRecord>(bytes)?;
    if let Some(answer) = roundtrip::<HeartbeatResponse>(bytes)? {
        // The agent's clock may be anywhere in jiff's range.
        for (sent, received) in [
            (Timestamp::MIN, Timestamp::MAX),
            (Timestamp::MAX, Timestamp::MIN),
            (answer.server_time, answer.server_time),
        ] {
            let _ = answer.clock_offset(sent, received);
        }
    }
    if let Some(assignment) = roundtrip::<Assignment>(bytes)? {
        let _ = assignment.verify();
    }
    let text = String::from_utf8_lossy(bytes);
    let _ = lifeboat::api::etag_matches(&text, "ab12");
    Ok(())
}

fn wire_samples() -> Vec<Json> {
    let t = ts("2026-03-01T12:00:00Z");
    let files = vec![
        AssignmentFile {
            name: "systems.toml".parse().unwrap(),
            content: "[systems.x]\n".into(),
        },
        AssignmentFile {
            name: "tiers.toml".parse().unwrap(),
            content: String::new(),
        },
    ];
    vec![
        to_json(&Token::new("lbe-0123456789")),
        to_json(&EnrolRequest {
            enrolment_token: Token::new("lbe-0123456789"),
            host: HOST.into(),
            site: SITE.parse().unwrap(),
            version: "0.1.0".into(),
        }),
        to_json(&EnrolResponse {
            agent_id: uuid::Uuid::from_u128(7),
            agent_token: Token::new("secret"),
        }),
        to_json(&heartbeat()),
        to_json(&HeartbeatResponse {
            drill_tasks: Vec::new(),
            server_time: t,
            assignment_digest: Some("ab12".into()),
            commands: vec![
                Command::BackupNow {
                    system: SYSTEM.parse().unwrap(),
                },
                Command::Unknown,
            ],
        }),
        to_json(&Assignment::new(t, files)),
        to_json(&RunBatch {
            records: vec![envelope("r1", 1), envelope("r2", u64::MAX)],
        }),
        to_json(&RunBatchResponse {
            accepted: vec!["r1".into()],
            duplicates: vec!["r1".into()],
            rejected: vec![Rejection {
                key: "r2".into(),
                code: RejectCode::Forbidden,
                reason: "not yours".into(),
            }],
        }),
        to_json(&ApiError::new(
            lifeboat::api::ErrorCode::TooLarge,
            "101 records",
        )),
        to_json(&record("r3", 0.25)),
    ]
}

#[test]
fn wire_types_decode_or_refuse_and_round_trip() {
    let samples = wire_samples();
    let n = samples.len();
    // Valid documents decode as what they are.
    for sample in &samples {
        decode_everything(render(sample).as_bytes()).unwrap();
    }
    check(3000, (0..n, doc()), |(i, doc)| {
        decode_everything(&doc.bytes(&samples[i]))
    });
}

#[test]
fn run_records_with_any_numbers_round_trip_exactly() {
    // The coordinator recognises a resent record by comparing it with the stored one, decoded
    // from JSON: every float and integer must survive the trip, or a resend is a "conflict".
    let numbers = (
        any::<f64>().prop_filter("JSON has no NaN", |f| f.is_finite()),
        any::<u64>(),
        any::<u64>(),
    );
    check(2000, numbers, |(seconds, bytes, seq)| {
        let mut r = record("r", seconds);
        r.repositories[0].bytes_added = bytes;
        let batch = RunBatch {
            records: vec![RunEnvelope {
                key: "r".into(),
                seq,
                system: None,
                record: r,
            }],
        };
        let wire = serde_json::to_vec(&batch).unwrap();
        let back: RunBatch = serde_json::from_slice(&wire).unwrap();
        prop_assert_eq!(back, batch);
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------------
// The coordinator's HTTP application, in-process over a real SQLite store

const ADMIN_PASSWORD: &str = "fuzz-admin-password";
const VICTIM_PASSWORD: &str = "fuzz-victim-password";
/// The agent endpoints' body limit (`agent_api::MAX_BODY`) and the people endpoints'.
const AGENT_LIMIT: usize = 8 << 20;
const PEOPLE_LIMIT: usize = 64 << 10;
/// A request that takes longer than this is a hang.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

struct FixedClock(Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

/// Whose credential a request carries.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Caller {
    Nobody,
    Agent,
    Admin,
}

struct Coordinator {
    rt: tokio::runtime::Runtime,
    app: axum::Router,
    store: Store,
    agent_token: String,
    admin_token: String,
    _dir: tempfile::TempDir,
}

struct Answer {
    status: StatusCode,
    body: Bytes,
}

impl Coordinator {
    /// A coordinator over a fresh SQLite store and the repository's `policies/`, with an
    /// enrolled agent of host linfen-fs01, a logged-in admin `root` and a viewer `victim`.
    fn start() -> Coordinator {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let now = ts("2026-03-01T12:00:00Z");
        let clock: Arc<dyn Clock> = Arc::new(FixedClock(now));
        let policies = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let loaded = policy::load_dir(&policies).unwrap_or_else(|r| panic!("{r}"));
        let url = format!("sqlite://{}", dir.path().join("coordinator.db").display());
        let store = rt.block_on(Store::open(&url)).unwrap();
        let enrol_token = rt.block_on(async {
            for (name, role, password) in [
                ("root", Role::Admin, ADMIN_PASSWORD),
                ("victim", Role::Viewer, VICTIM_PASSWORD),
            ] {
                let user = auth::new_user(name, role, Secret::new(password), now)
                    .await
                    .unwrap();
                store.create_user(&user).await.unwrap();
            }
            let (token, _) = people_api::issue_enrolment_token(
                &store,
                &loaded,
                HOST,
                SITE,
                Duration::from_secs(86_400),
                now,
                "test",
            )
            .await
            .unwrap();
            token
        });
        let policy = Arc::new(RwLock::new(Arc::new(loaded)));
        let (sweeper, sweep) = Sweeper::new(
            store.clone(),
            policy.clone(),
            clock.clone(),
            SweepConfig::default(),
        );
        // The sweep runs as in the coordinator (ingesting while requests arrive); the read API
        // answers 503 until its first view, so wait for that.
        rt.spawn(sweeper.run(std::future::pending::<()>()));
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while sweep.latest().is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "no first sweep in 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let loads = PolicyLoads::default();
        loads.record(&policies, &policy.read().unwrap(), now);
        let fleet = fleet_api::router(FleetApi::new(
            store.clone(),
            policy.clone(),
            clock.clone(),
            sweep.clone(),
            loads,
        ));
        let drills =
            drills_api::router(DrillsApi::new(store.clone(), policy.clone(), clock.clone()));
        let app = server::app(store.clone(), policy, clock, Metrics::new(), sweep)
            .merge(fleet)
            .merge(drills);
        let mut c = Coordinator {
            rt,
            app,
            store,
            agent_token: String::new(),
            admin_token: String::new(),
            _dir: dir,
        };
        let enrol = json!({
            "enrolment_token": enrol_token.expose(),
            "host": HOST, "site": SITE, "version": "0.1.0",
        });
        let a = c.json(Method::POST, ENROL_PATH, Caller::Nobody, &enrol);
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        let enrolled: EnrolResponse = serde_json::from_slice(&a.body).unwrap();
        c.agent_token = enrolled.agent_token.secret().expose().to_string();
        let login = json!({"name": "root", "password": ADMIN_PASSWORD});
        let a = c.json(Method::POST, "/api/v1/login", Caller::Nobody, &login);
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
        let session: Json = serde_json::from_slice(&a.body).unwrap();
        c.admin_token = session["token"].as_str().unwrap().to_string();
        c.assert_healthy("at start").unwrap();
        c
    }

    fn request(&self, method: Method, uri: &str, caller: Caller) -> axum::http::request::Builder {
        let builder = Request::builder().method(method).uri(uri);
        match caller {
            Caller::Nobody => builder,
            Caller::Agent => builder.header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.agent_token),
            ),
            Caller::Admin => builder.header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.admin_token),
            ),
        }
    }

    /// Sends `request` to the application; more than [`REQUEST_TIMEOUT`] is a failure.
    fn send(&self, request: Request<Body>) -> Result<Answer, TestCaseError> {
        let what = format!("{} {}", request.method(), request.uri());
        self.rt.block_on(async {
            let response = tokio::time::timeout(REQUEST_TIMEOUT, self.app.clone().oneshot(request))
                .await
                .map_err(|_| fail(format!("{what} hung for {REQUEST_TIMEOUT:?}")))?
                .map_err(|e| fail(format!("{what}: {e}")))?;
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .map_err(|e| fail(format!("{what}: the answer's body: {e}")))?;
            Ok(Answer { status, body })
        })
    }

    fn json(&self, method: Method, uri: &str, caller: Caller, body: &Json) -> Answer {
        let request = self
            .request(method, uri, caller)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(render(body)))
            .unwrap();
        self.send(request).unwrap()
    }

    fn count_runs(&self) -> u64 {
        self.rt.block_on(self.store.count_runs(None)).unwrap()
    }

    /// Valid calls still work: a heartbeat, a new run record (stored once, then a duplicate),
    /// the assignment, and an admin's read.
    fn assert_healthy(&self, when: &str) -> Result<(), TestCaseError> {
        let a = self.json(
            Method::POST,
            HEARTBEAT_PATH,
            Caller::Agent,
            &to_json(&heartbeat()),
        );
        prop_assert_eq!(a.status, StatusCode::OK, "heartbeat {}: {:?}", when, a.body);
        let key = uuid::Uuid::new_v4().to_string();
        let batch = to_json(&RunBatch {
            records: vec![envelope(&key, 1)],
        });
        let before = self.count_runs();
        for duplicate in [false, true] {
            let a = self.json(Method::POST, RUNS_PATH, Caller::Agent, &batch);
            prop_assert_eq!(a.status, StatusCode::OK, "runs {}: {:?}", when, a.body);
            let answer: RunBatchResponse =
                serde_json::from_slice(&a.body).map_err(|e| fail(format!("runs {when}: {e}")))?;
            prop_assert_eq!(&answer.accepted, &vec![key.clone()], "{}", when);
            prop_assert_eq!(answer.duplicates.len(), usize::from(duplicate), "{}", when);
        }
        prop_assert_eq!(self.count_runs(), before + 1, "{}", when);
        let request = self
            .request(Method::GET, ASSIGNMENT_PATH, Caller::Agent)
            .body(Body::empty())
            .unwrap();
        let a = self.send(request)?;
        prop_assert_eq!(a.status, StatusCode::OK, "assignment {}", when);
        let request = self
            .request(Method::GET, "/api/v1/users", Caller::Admin)
            .body(Body::empty())
            .unwrap();
        let a = self.send(request)?;
        prop_assert_eq!(a.status, StatusCode::OK, "users {}", when);
        Ok(())
    }
}

/// Any answer: never a 5xx; a refusal is an `ApiError` with a reason, whose code matches the
/// status.
fn check_answer(what: &str, a: &Answer) -> Result<(), TestCaseError> {
    let body = String::from_utf8_lossy(&a.body);
    prop_assert!(
        !a.status.is_server_error(),
        "{} answered {}: {}",
        what,
        a.status,
        body
    );
    if a.status.is_client_error() {
        let error: ApiError = serde_json::from_slice(&a.body).map_err(|e| {
            fail(format!(
                "{what} answered {} without an ApiError body ({e}): {body:?}",
                a.status
            ))
        })?;
        prop_assert!(
            !error.message.trim().is_empty(),
            "{} answered {} without a reason",
            what,
            a.status
        );
        prop_assert_eq!(
            error.error.status(),
            a.status.as_u16(),
            "{} answered {} with code {:?}",
            what,
            a.status,
            error.error
        );
    }
    Ok(())
}

/// Every endpoint that reads a JSON body, with a valid body for it.
#[derive(Debug, Clone, Copy)]
enum BodyEndpoint {
    Enrol,
    Heartbeat,
    Runs,
    DrillReports,
    Login,
    CreateUser,
    UpdateUser,
    CreateToken,
    CreateEnrolmentToken,
    StartDrill,
    ApproveDrill,
    AbortDrill,
}

const BODY_ENDPOINTS: &[BodyEndpoint] = &[
    BodyEndpoint::Enrol,
    BodyEndpoint::Heartbeat,
    BodyEndpoint::Runs,
    BodyEndpoint::DrillReports,
    BodyEndpoint::Login,
    BodyEndpoint::CreateUser,
    BodyEndpoint::UpdateUser,
    BodyEndpoint::CreateToken,
    BodyEndpoint::CreateEnrolmentToken,
    BodyEndpoint::StartDrill,
    BodyEndpoint::ApproveDrill,
    BodyEndpoint::AbortDrill,
];

impl BodyEndpoint {
    fn route(self) -> (Method, &'static str, Caller, usize) {
        match self {
            BodyEndpoint::Enrol => (Method::POST, ENROL_PATH, Caller::Nobody, AGENT_LIMIT),
            BodyEndpoint::Heartbeat => (Method::POST, HEARTBEAT_PATH, Caller::Agent, AGENT_LIMIT),
            BodyEndpoint::Runs => (Method::POST, RUNS_PATH, Caller::Agent, AGENT_LIMIT),
            BodyEndpoint::DrillReports => (
                Method::POST,
                lifeboat::api::DRILL_REPORTS_PATH,
                Caller::Agent,
                AGENT_LIMIT,
            ),
            BodyEndpoint::Login => (Method::POST, "/api/v1/login", Caller::Nobody, PEOPLE_LIMIT),
            BodyEndpoint::CreateUser => {
                (Method::POST, "/api/v1/users", Caller::Admin, PEOPLE_LIMIT)
            }
            BodyEndpoint::UpdateUser => (
                Method::PATCH,
                "/api/v1/users/victim",
                Caller::Admin,
                PEOPLE_LIMIT,
            ),
            BodyEndpoint::CreateToken => {
                (Method::POST, "/api/v1/tokens", Caller::Admin, PEOPLE_LIMIT)
            }
            BodyEndpoint::CreateEnrolmentToken => (
                Method::POST,
                "/api/v1/enrolment-tokens",
                Caller::Admin,
                PEOPLE_LIMIT,
            ),
            BodyEndpoint::StartDrill => {
                (Method::POST, "/api/v1/drills", Caller::Admin, PEOPLE_LIMIT)
            }
            // No such drill: a valid body answered 404.
            BodyEndpoint::ApproveDrill => (
                Method::POST,
                "/api/v1/drills/00000000-0000-0000-0000-000000000000/approve",
                Caller::Admin,
                PEOPLE_LIMIT,
            ),
            BodyEndpoint::AbortDrill => (
                Method::POST,
                "/api/v1/drills/00000000-0000-0000-0000-000000000000/abort",
                Caller::Admin,
                PEOPLE_LIMIT,
            ),
        }
    }

    /// A valid body; `nonce` keeps run ids and user names fresh.
    fn sample(self, nonce: u64) -> Json {
        match self {
            BodyEndpoint::Enrol => json!({
                "enrolment_token": format!("lbe-{nonce:032x}"),
                "host": HOST, "site": SITE, "version": "0.1.0",
            }),
            BodyEndpoint::Heartbeat => to_json(&heartbeat()),
            BodyEndpoint::Runs => to_json(&RunBatch {
                records: vec![
                    envelope(&format!("fuzz-{nonce}-a"), nonce),
                    envelope(&format!("fuzz-{nonce}-b"), nonce.wrapping_add(1)),
                ],
            }),
            // No such task: a valid body answered 200 with the report rejected.
            BodyEndpoint::DrillReports => json!({"reports": [{
                "task_id": format!("fuzz-{nonce}.1.drill"),
                "drill_id": uuid::Uuid::from_u128(u128::from(nonce)),
                "host": HOST,
                "started_at": "2026-03-01T12:00:00Z",
                "finished_at": "2026-03-01T12:01:00Z",
                "outcome": "failed",
                "error": {"kind": "command", "message": "exit status 1"},
                "command": {"exit_code": 1, "output_tail": "no"},
            }]}),
            BodyEndpoint::Login => json!({"name": "victim", "password": VICTIM_PASSWORD}),
            BodyEndpoint::CreateUser => json!({
                "name": format!("u{nonce}"), "password": "a long enough password", "role": "viewer",
            }),
            BodyEndpoint::UpdateUser => json!({
                "role": "viewer", "disabled": false, "password": VICTIM_PASSWORD,
            }),
            BodyEndpoint::CreateToken => json!({"user": "victim", "label": format!("ci {nonce}")}),
            BodyEndpoint::CreateEnrolmentToken => json!({
                "host": HOST, "site": SITE, "valid": "24h",
            }),
            // No such plan: a valid body answered 404, and no drill is stored.
            BodyEndpoint::StartDrill => json!({
                "plan": format!("fuzz-{nonce}"), "at": "2026-03-02T08:00:00Z",
            }),
            BodyEndpoint::ApproveDrill => json!({"step": "business-check", "comment": "ok"}),
            BodyEndpoint::AbortDrill => json!({"reason": format!("fuzz {nonce}")}),
        }
    }
}

/// How the body is labelled.
const CONTENT_TYPES: &[Option<&str>] = &[
    Some("application/json"),
    Some("application/json"),
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    None,
    Some("text/plain"),
    Some("application/x-www-form-urlencoded"),
    Some("application/jsonx"),
    Some("multipart/form-data; boundary=x"),
];

fn is_json_type(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|t| t.starts_with("application/json"))
}

#[test]
fn malformed_bodies_are_refused_with_a_reason_and_the_store_stays_consistent() {
    let c = Coordinator::start();
    let cases = (
        0..BODY_ENDPOINTS.len(),
        doc(),
        prop::sample::select(CONTENT_TYPES),
        any::<u64>(),
    );
    let (taken, refused) = (AtomicUsize::new(0), AtomicUsize::new(0));
    check(1000, cases, |(e, doc, content_type, nonce)| {
        let endpoint = BODY_ENDPOINTS[e];
        let (method, path, caller, _) = endpoint.route();
        let body = doc.bytes(&endpoint.sample(nonce));
        let mut request = c.request(method.clone(), path, caller);
        if let Some(t) = content_type {
            request = request.header(header::CONTENT_TYPE, t);
        }
        let before = c.count_runs();
        let a = c.send(request.body(Body::from(body)).unwrap())?;
        let what = format!("{method} {path} ({content_type:?}, {doc:?})");
        check_answer(&what, &a)?;
        let counter = if a.status.is_success() {
            &taken
        } else {
            &refused
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if doc.is_garbage() || !is_json_type(content_type) {
            prop_assert!(a.status.is_client_error(), "{} answered {}", what, a.status);
        }
        // A batch is stored exactly as answered: nothing half-stored, nothing "retry" from a
        // healthy store (a record that can never be stored must not block the queue).
        let stored = c.count_runs() - before;
        if let BodyEndpoint::Runs = endpoint {
            if a.status == StatusCode::OK {
                let answer: RunBatchResponse =
                    serde_json::from_slice(&a.body).map_err(|e| fail(format!("{what}: {e}")))?;
                let new = answer.accepted.len() - answer.duplicates.len();
                prop_assert_eq!(stored, new as u64, "{}: {:?}", what, answer);
                let retry = answer.rejected.iter().find(|r| r.code == RejectCode::Retry);
                prop_assert!(retry.is_none(), "{}: {:?}", what, retry);
            } else {
                prop_assert_eq!(
                    stored,
                    0,
                    "{} stored records but answered {}",
                    what,
                    a.status
                );
            }
        } else {
            prop_assert_eq!(stored, 0, "{} stored run records", what);
        }
        Ok(())
    });
    c.assert_healthy("after the malformed bodies").unwrap();
    // Both outcomes happen, or the mutations never reach the handlers (or never leave them).
    let (taken, refused) = (taken.into_inner(), refused.into_inner());
    assert!(taken > 0 && refused > 0, "{taken} taken, {refused} refused");
}

#[test]
fn oversized_bodies_are_refused_as_too_large() {
    let c = Coordinator::start();
    let cases = (0..BODY_ENDPOINTS.len(), 1usize..4096, any::<bool>());
    check(24, cases, |(e, extra, streamed)| {
        let endpoint = BODY_ENDPOINTS[e];
        let (method, path, caller, limit) = endpoint.route();
        // Valid JSON but for its size: the sample followed by whitespace.
        let mut body = render(&endpoint.sample(1)).into_bytes();
        body.resize(limit + extra, b' ');
        let body = if streamed {
            // No Content-Length: the limit must hold while reading.
            let chunks: Vec<Result<Bytes, std::io::Error>> = body
                .chunks(64 << 10)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            Body::from_stream(futures::stream::iter(chunks))
        } else {
            Body::from(body)
        };
        let request = c
            .request(method.clone(), path, caller)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body)
            .unwrap();
        let before = c.count_runs();
        let a = c.send(request)?;
        let what = format!(
            "{method} {path} with {} bytes (streamed: {streamed})",
            limit + extra
        );
        check_answer(&what, &a)?;
        prop_assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", what);
        prop_assert_eq!(c.count_runs(), before, "{}", what);
        Ok(())
    });
    c.assert_healthy("after the oversized bodies").unwrap();
}

/// A query or path value: odd values, percent-encoded or raw (maybe invalid) escapes.
fn query_value() -> impl Strategy<Value = String> {
    fn encode(s: &str) -> String {
        url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
    }
    prop_oneof![
        prop::sample::select(ODD_NUMBERS).prop_map(str::to_string),
        prop::sample::select(ODD_TIMESTAMPS).prop_map(encode),
        prop::sample::select(ODD_STRINGS).prop_map(encode),
        any::<String>().prop_map(|s| encode(&s)),
        "[a-zA-Z0-9%+._~=&-]{0,40}",
        Just("%ff%fe".to_string()),
        Just("%".to_string()),
        (1usize..20_000).prop_map(|n| "a".repeat(n)),
    ]
}

const QUERY_KEYS: &[&str] = &[
    "actor", "action", "target", "since", "until", "limit", "offset", "after", "tier", "site",
    "scenario", "status", "system", "host", "kind", "outcome", "state", "plan", "quarter", "lang",
    "format", "unknown", "",
];

/// The endpoints that read a query (`{q}`) or a path parameter (`{v}`), and the headers the
/// agent endpoints read: `If-None-Match` from the agent, `Authorization` from anyone.
const URI_TARGETS: &[(&str, &str, Caller)] = &[
    ("GET", "/api/v1/audit?{q}", Caller::Admin),
    ("GET", "/api/v1/agents?{q}", Caller::Admin),
    ("GET", "/api/v1/systems?{q}", Caller::Admin),
    ("GET", "/api/v1/runs?{q}", Caller::Admin),
    ("GET", "/api/v1/snapshots?{q}", Caller::Admin),
    ("GET", "/api/v1/assessments?{q}", Caller::Admin),
    ("GET", "/api/v1/alerts?{q}", Caller::Admin),
    ("GET", "/api/v1/fleet?{q}", Caller::Admin),
    ("GET", "/api/v1/reports/quarterly?{q}", Caller::Admin),
    ("PATCH", "/api/v1/users/{v}", Caller::Admin),
    ("DELETE", "/api/v1/tokens/{v}", Caller::Admin),
    ("POST", "/api/v1/agents/{v}/revoke", Caller::Admin),
    ("GET", "/api/v1/systems/{v}", Caller::Admin),
    ("POST", "/api/v1/systems/{v}/backup-now", Caller::Admin),
    ("GET", "/api/v1/drills?{q}", Caller::Admin),
    ("GET", "/api/v1/drills/{v}", Caller::Admin),
    ("GET", "/api/v1/drills/{v}/report", Caller::Admin),
    ("GET", "/api/v1/drills/{v}/bundle", Caller::Admin),
    ("GET", "/api/v1/drill-plans/{v}/preview", Caller::Admin),
    ("GET", "/api/v1/{v}", Caller::Admin),
    ("GET", ASSIGNMENT_PATH, Caller::Agent),
    ("GET", ASSIGNMENT_PATH, Caller::Nobody),
];

#[test]
fn malformed_queries_paths_and_headers_are_refused_with_a_reason() {
    let c = Coordinator::start();
    let query = prop::collection::vec((prop::sample::select(QUERY_KEYS), query_value()), 0..4)
        .prop_map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&")
        });
    let cases = (0..URI_TARGETS.len(), query, query_value(), "[ -~]{0,80}");
    check(1000, cases, |(target, query, value, header_value)| {
        let (method, template, caller) = URI_TARGETS[target];
        let uri = template.replace("{q}", &query).replace("{v}", &value);
        let Ok(parsed) = uri.parse::<axum::http::Uri>() else {
            // Not a request any client can send.
            return Ok(());
        };
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = c.request(method.clone(), &parsed.to_string(), caller);
        if template == ASSIGNMENT_PATH {
            let name = match caller {
                Caller::Agent => header::IF_NONE_MATCH,
                _ => header::AUTHORIZATION,
            };
            request = request.header(name, header_value.as_str());
        }
        let request = if method == Method::PATCH {
            request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"role": "viewer"}"#))
        } else {
            request.body(Body::empty())
        }
        .unwrap();
        let a = c.send(request)?;
        let what = format!("{method} {uri} ({header_value:?})");
        check_answer(&what, &a)?;
        if template == ASSIGNMENT_PATH && caller == Caller::Nobody {
            prop_assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{}", what);
        }
        Ok(())
    });
    c.assert_healthy("after the malformed queries").unwrap();
}

/// What the fuzzing found, each pinned: refusals in plain text or empty, a record answered
/// `retry` forever, a resent record taken for a different one, a client error answered 500.
#[test]
fn regressions_found_by_fuzzing() {
    let c = Coordinator::start();
    let refused = |a: &Answer, status: StatusCode| {
        check_answer("regression", a).unwrap();
        assert_eq!(a.status, status, "{:?}", a.body);
    };
    // The agent endpoints took bodies through axum's `Json`, which refuses in plain text.
    let a = c.json(Method::POST, ENROL_PATH, Caller::Nobody, &Json::Null);
    refused(&a, StatusCode::BAD_REQUEST);
    let request = c
        .request(Method::POST, HEARTBEAT_PATH, Caller::Agent)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(vec![b' '; AGENT_LIMIT + 1]))
        .unwrap();
    refused(&c.send(request).unwrap(), StatusCode::PAYLOAD_TOO_LARGE);
    // A path parameter that is not UTF-8 was refused by axum's `Path`, in plain text.
    for (method, uri) in [
        (Method::PATCH, "/api/v1/users/%ff%fe"),
        (Method::DELETE, "/api/v1/tokens/%ff"),
        (Method::POST, "/api/v1/agents/%c0/revoke"),
        (Method::GET, "/api/v1/systems/%ff"),
    ] {
        let request = c
            .request(method, uri, Caller::Admin)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(r#"{"role": "viewer"}"#))
            .unwrap();
        refused(&c.send(request).unwrap(), StatusCode::BAD_REQUEST);
    }
    // A known route with a method it does not serve was an empty 405.
    let request = c
        .request(Method::PUT, HEARTBEAT_PATH, Caller::Agent)
        .body(Body::empty())
        .unwrap();
    refused(&c.send(request).unwrap(), StatusCode::METHOD_NOT_ALLOWED);
    // An unknown route was an empty 404.
    let request = c
        .request(Method::GET, "/api/v1/users/", Caller::Admin)
        .body(Body::empty())
        .unwrap();
    refused(&c.send(request).unwrap(), StatusCode::NOT_FOUND);
    // A sequence number above i64::MAX failed the whole batch's transaction, answered `retry`
    // for every record, forever. Now that record alone is malformed.
    let (big, next) = ("regression-seq-big", "regression-seq-next");
    let batch = to_json(&RunBatch {
        records: vec![envelope(big, u64::MAX), envelope(next, 7)],
    });
    let a = c.json(Method::POST, RUNS_PATH, Caller::Agent, &batch);
    assert_eq!(a.status, StatusCode::OK);
    let answer: RunBatchResponse = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(answer.accepted, vec![next.to_string()]);
    assert_eq!(answer.rejected.len(), 1, "{answer:?}");
    assert_eq!(answer.rejected[0].key, big);
    assert_eq!(answer.rejected[0].code, RejectCode::Malformed);
    // serde_json's default float parser is off by one ulp for some values: the stored record
    // read back differed from the resent one, which was refused as a different record.
    let mut env = envelope("regression-float", 8);
    env.record.repositories[0].seconds = 8.008350780075411e142;
    let batch = to_json(&RunBatch { records: vec![env] });
    for duplicate in [false, true] {
        let a = c.json(Method::POST, RUNS_PATH, Caller::Agent, &batch);
        let answer: RunBatchResponse = serde_json::from_slice(&a.body).unwrap();
        assert_eq!(answer.accepted, vec!["regression-float".to_string()]);
        assert_eq!(
            answer.duplicates.len(),
            usize::from(duplicate),
            "{answer:?}"
        );
    }
    // PostgreSQL cannot store a NUL character (text and JSONB refuse it): a record holding one
    // would fail its batch there forever. Every backend refuses it at the API alike.
    let mut env = envelope("regression-nul", 9);
    env.record.warnings.push("dump said \u{0}".into());
    let a = c.json(
        Method::POST,
        RUNS_PATH,
        Caller::Agent,
        &to_json(&RunBatch { records: vec![env] }),
    );
    let answer: RunBatchResponse = serde_json::from_slice(&a.body).unwrap();
    assert!(answer.accepted.is_empty(), "{answer:?}");
    assert_eq!(answer.rejected[0].code, RejectCode::Malformed, "{answer:?}");
    let mut beat = heartbeat();
    beat.version = "1.0\u{0}".into();
    let a = c.json(Method::POST, HEARTBEAT_PATH, Caller::Agent, &to_json(&beat));
    refused(&a, StatusCode::BAD_REQUEST);
    // The store's "invalid value" is the caller's mistake: 400, as store/error.rs documents.
    let f = auth::Failure::store(StoreError::Invalid("a value the store cannot hold".into()));
    assert_eq!(f.status, StatusCode::BAD_REQUEST);
    c.assert_healthy("after the regressions").unwrap();
}

// ---------------------------------------------------------------------------------------------
// Configuration and policy files

/// One edit of a TOML text. Positions are taken modulo the text's length or line count.
#[derive(Debug, Clone)]
enum Edit {
    DeleteChar(usize),
    InsertChar(usize, char),
    SwapLines(usize, usize),
    DeleteLine(usize),
    DuplicateLine(usize),
    /// Append a copy of the `[table]` or `[[array]]` block at this index of the headers.
    DuplicateTable(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let odd_char = prop_oneof![
        prop::sample::select(
            &[
                '"',
                '\'',
                '[',
                ']',
                '{',
                '}',
                '=',
                ',',
                '.',
                '#',
                '\\',
                '\n',
                '\r',
                '\t',
                ' ',
                '0',
                'x',
                '-',
                '中',
                '\u{0}',
                '\u{feff}',
                '\u{1f600}',
            ][..]
        ),
        any::<char>(),
    ];
    prop_oneof![
        3 => any::<usize>().prop_map(Edit::DeleteChar),
        3 => (any::<usize>(), odd_char).prop_map(|(at, ch)| Edit::InsertChar(at, ch)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
        1 => any::<usize>().prop_map(Edit::DeleteLine),
        1 => any::<usize>().prop_map(Edit::DuplicateLine),
        1 => any::<usize>().prop_map(Edit::DuplicateTable),
    ]
}

fn apply(text: &str, edit: &Edit) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let n = lines.len().max(1);
    match edit {
        Edit::DeleteChar(at) => {
            let mut chars = chars;
            if !chars.is_empty() {
                let at = at % chars.len();
                chars.remove(at);
            }
            return chars.into_iter().collect();
        }
        Edit::InsertChar(at, ch) => {
            let mut chars = chars;
            chars.insert(at % (chars.len() + 1), *ch);
            return chars.into_iter().collect();
        }
        Edit::SwapLines(a, b) if !lines.is_empty() => lines.swap(a % n, b % n),
        Edit::DeleteLine(at) if !lines.is_empty() => {
            lines.remove(at % n);
        }
        Edit::DuplicateLine(at) if !lines.is_empty() => {
            let line = lines[at % n].clone();
            lines.insert(at % n, line);
        }
        Edit::DuplicateTable(at) => {
            let headers: Vec<usize> = (0..lines.len())
                .filter(|&i| lines[i].trim_start().starts_with('['))
                .collect();
            if !headers.is_empty() {
                let start = headers[at % headers.len()];
                let end = headers
                    .iter()
                    .find(|&&h| h > start)
                    .copied()
                    .unwrap_or(lines.len());
                let block = lines[start..end].to_vec();
                lines.extend(block);
            }
        }
        _ => {}
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec(edit(), 1..4)
}

/// A problem names `file` and a place inside the text it was read from.
fn check_problem(p: &Problem, file: &Path, text: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(&p.file, file, "{}", p);
    prop_assert!(!p.message.trim().is_empty(), "{}", p);
    // A text ending in a newline has an empty last line where the end of input is reported.
    let lines: Vec<&str> = text.split('\n').collect();
    prop_assert!(
        (1..=lines.len()).contains(&p.line),
        "line {} is not in the file's 1..={} lines: {}\n--- text ---\n{}",
        p.line,
        lines.len(),
        p,
        text
    );
    let line = lines[p.line - 1];
    let width = line.chars().count() + 1;
    prop_assert!(
        (1..=width).contains(&p.column),
        "column {} is not in line {} ({} chars): {}\n--- line ---\n{:?}",
        p.column,
        p.line,
        width - 1,
        p,
        line
    );
    Ok(())
}

fn deploy_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn mutated_agent_and_coordinator_configs_are_refused_with_file_and_line() {
    let agent = deploy_file("agent.toml");
    let coordinator = deploy_file("coordinator.toml");
    let dir = tempfile::tempdir().unwrap();
    let (loaded, refused) = (AtomicUsize::new(0), AtomicUsize::new(0));
    check(600, (any::<bool>(), edits()), |(is_agent, edits)| {
        let original = if is_agent { &agent } else { &coordinator };
        let text = edits.iter().fold(original.clone(), |t, e| apply(&t, e));
        let path = dir.path().join(if is_agent {
            "agent.toml"
        } else {
            "coordinator.toml"
        });
        std::fs::write(&path, &text).unwrap();
        let problem = if is_agent {
            AgentConfig::load(&path).err()
        } else {
            CoordinatorConfig::load(&path).err()
        };
        if let Some(p) = problem {
            refused.fetch_add(1, Ordering::Relaxed);
            check_problem(&p, &path, &text)?;
        } else {
            loaded.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    });
    let (loaded, refused) = (loaded.into_inner(), refused.into_inner());
    assert!(
        loaded > 0 && refused > 0,
        "{loaded} loaded, {refused} refused"
    );
}

/// The `*.toml` files under `dir`, relative, sorted.
fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "toml") {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn mutated_policy_files_are_refused_with_file_and_line() {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let files = toml_files(&source);
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(source.join(f)).unwrap())
        .collect();
    check(300, (0..files.len(), edits()), |(i, edits)| {
        let dir = tempfile::tempdir().unwrap();
        let mut written = Vec::new();
        for (j, (file, original)) in files.iter().zip(&texts).enumerate() {
            let text = if i == j {
                edits.iter().fold(original.clone(), |t, e| apply(&t, e))
            } else {
                original.clone()
            };
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &text).unwrap();
            written.push((path, text));
        }
        if let Err(report) = policy::load_dir(dir.path()) {
            prop_assert!(!report.problems.is_empty());
            for p in &report.problems {
                let Some((path, text)) = written.iter().find(|(path, _)| *path == p.file) else {
                    return Err(fail(format!("a problem names no policy file: {p}")));
                };
                check_problem(p, path, text)?;
            }
        }
        Ok(())
    });
}
