//! The branch link gate: paces writes to repositories across the branch link (locations
//! `same-city` and `remote`) to the [`LinkPolicy`]'s limit of the moment, and refuses them
//! outside its windows.
//!
//! One [`LinkGate`] is shared (`Arc`) by every repository of an engine, so concurrent copies
//! share the line's budget. Writes pay before they are handed to the store, in
//! [`CHUNK`]-sized instalments through a token bucket whose rate is looked up in the policy at
//! the wall-clock time of every instalment (and at least every [`RECHECK`] while waiting): a
//! change of limit at 20:00 takes effect in the middle of a copy, and a 16 MiB pack is spread
//! over the seconds it costs rather than sent in a burst. When the window closes, the next
//! instalment is refused with [`Refusal::WindowClosed`], so the running rustic operation fails
//! at its next write and stops; the engine reports it as `window-closed`.
//!
//! The gate blocks (it sleeps the calling thread): call it only from rustic_core's threads,
//! never from an async task. It reads the wall clock through the [`Clock`] given to it and
//! measures waits with [`Instant`]; the bucket arithmetic itself is pure (`Bucket`).

use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::clock::Clock;
use crate::link::LinkPolicy;
use crate::policy::Location;

/// Bytes paid per instalment: small enough that the average rate is smooth and a window end
/// stops a pack within a fraction of a second, large enough that the lookups cost nothing.
pub const CHUNK: u64 = 128 << 10;

/// The longest a waiting writer sleeps before looking at the window and the limit again.
pub const RECHECK: Duration = Duration::from_millis(200);

/// Why the gate refused a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The link's window is closed; off-site traffic may flow again at `reopens`.
    WindowClosed { reopens: Option<Timestamp> },
    /// The caller's abort flag was set while the write waited.
    Aborted,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::WindowClosed {
                reopens: Some(reopens),
            } => write!(
                f,
                "the off-site transfer window is closed (it reopens at {reopens})"
            ),
            Refusal::WindowClosed { reopens: None } => {
                f.write_str("the off-site transfer window is closed")
            }
            Refusal::Aborted => f.write_str("operation aborted"),
        }
    }
}

/// What passed through a gate so far (for tests and metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Bytes of writes let through to the store, whole writes only.
    pub sent: u64,
    /// Bytes paid for, including the instalments of writes refused part-way.
    pub paid: u64,
    /// Writes refused (window closed or aborted).
    pub refused: u64,
    /// Total time writers spent waiting for the limit.
    pub waited: Duration,
}

/// The shared gate of the branch link. See the module documentation.
pub struct LinkGate {
    /// The schedule of limits and windows.
    policy: LinkPolicy,
    /// The zone the schedule's times are written in (the agent's site).
    tz: TimeZone,
    /// The wall clock the schedule is read against.
    clock: Arc<dyn Clock>,
    /// The token bucket, shared by every writer.
    bucket: Mutex<Bucket>,
    /// Counters behind [`LinkGate::stats`].
    sent: AtomicU64,
    paid: AtomicU64,
    refused: AtomicU64,
    waited_nanos: AtomicU64,
}

impl fmt::Debug for LinkGate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkGate")
            .field("policy", &self.policy)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl LinkGate {
    pub fn new(policy: LinkPolicy, tz: TimeZone, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(LinkGate {
            policy,
            tz,
            clock,
            bucket: Mutex::new(Bucket::new(Instant::now())),
            sent: AtomicU64::new(0),
            paid: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            waited_nanos: AtomicU64::new(0),
        })
    }

    /// Whether traffic to a repository at `location` crosses the branch link: another site in
    /// the same city or a remote region. Local disks and same-site stores do not.
    pub fn crosses_link(location: Location) -> bool {
        location >= Location::SameCity
    }

    pub fn policy(&self) -> &LinkPolicy {
        &self.policy
    }

    pub fn stats(&self) -> LinkStats {
        LinkStats {
            sent: self.sent.load(Ordering::Relaxed),
            paid: self.paid.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            waited: Duration::from_nanos(self.waited_nanos.load(Ordering::Relaxed)),
        }
    }

    /// Whether a transfer may start now: `Err` when the window is closed.
    pub fn admit(&self) -> Result<(), Refusal> {
        self.open_at(self.clock.now())
    }

    fn open_at(&self, now: Timestamp) -> Result<(), Refusal> {
        if self.policy.window_open(now, &self.tz) {
            Ok(())
        } else {
            Err(Refusal::WindowClosed {
                reopens: self.policy.next_window_opens(now, &self.tz),
            })
        }
    }

    /// Pays for a write of `bytes`, blocking as long as the limit requires. Fails when the
    /// window is closed (or closes while paying) or `abort` is set; the write must then not
    /// be made.
    pub fn pass(&self, bytes: u64, abort: &AtomicBool) -> Result<(), Refusal> {
        let result = self.pay(bytes, abort);
        match result {
            Ok(()) => self.sent.fetch_add(bytes, Ordering::Relaxed),
            Err(_) => self.refused.fetch_add(1, Ordering::Relaxed),
        };
        result
    }

    fn pay(&self, bytes: u64, abort: &AtomicBool) -> Result<(), Refusal> {
        if bytes == 0 {
            return self.admit();
        }
        let mut left = bytes;
        while left > 0 {
            let part = left.min(CHUNK);
            let now = self.clock.now();
            self.open_at(now)?;
            let rate = self.policy.limit_at(now, &self.tz);
            let wait = self.bucket.lock().unwrap_or_else(|p| p.into_inner()).take(
                Instant::now(),
                rate,
                part,
            );
            self.paid.fetch_add(part, Ordering::Relaxed);
            self.wait(wait, abort)?;
            left -= part;
        }
        Ok(())
    }

    /// Sleeps for `wait`, in slices of at most [`RECHECK`], stopping early when the limit is
    /// lifted and failing when the window closes or the caller aborts.
    fn wait(&self, wait: Duration, abort: &AtomicBool) -> Result<(), Refusal> {
        if wait.is_zero() {
            return Ok(());
        }
        let started = Instant::now();
        let deadline = started + wait;
        let result = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break Ok(());
            }
            std::thread::sleep(left.min(RECHECK));
            if abort.load(Ordering::Relaxed) {
                break Err(Refusal::Aborted);
            }
            let now = self.clock.now();
            if let Err(refusal) = self.open_at(now) {
                break Err(refusal);
            }
            if self.policy.limit_at(now, &self.tz).is_none() {
                // Unlimited from now on: the debt no longer applies.
                self.bucket
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take(Instant::now(), None, 0);
                break Ok(());
            }
        };
        let waited = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.waited_nanos.fetch_add(waited, Ordering::Relaxed);
        result
    }
}

/// A token bucket in bytes whose rate may change at every call. Tokens may go negative: a
/// writer takes its instalment at once and waits off the debt, so concurrent writers queue in
/// the order they paid and the long-run rate is exact. Pure: time is passed in.
#[derive(Debug, Clone)]
struct Bucket {
    /// Bytes available (negative: owed).
    tokens: f64,
    /// When `tokens` was last brought up to date.
    last: Instant,
}

impl Bucket {
    /// An empty bucket: the first bytes are paced too (no burst at the start of a copy).
    fn new(now: Instant) -> Self {
        Bucket {
            tokens: 0.0,
            last: now,
        }
    }

    /// The most an idle bucket holds: [`CHUNK`] or 50 ms of traffic, whichever is more, so a
    /// writer that slept too long makes up for it without bursting far above the rate.
    fn capacity(rate: u64) -> f64 {
        (CHUNK as f64).max(rate as f64 / 20.0)
    }

    /// Takes `bytes` at `now` under `rate` (bytes per second; `None` unlimited) and returns
    /// how long the caller must wait before sending them.
    fn take(&mut self, now: Instant, rate: Option<u64>, bytes: u64) -> Duration {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        let Some(rate) = rate.filter(|&r| r > 0) else {
            // Unlimited: nothing is owed, nothing is saved up for a later limit.
            self.tokens = 0.0;
            return Duration::ZERO;
        };
        let rate_f = rate as f64;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * rate_f).min(Self::capacity(rate));
        self.tokens -= bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate_f)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[test]
    fn the_bucket_paces_debts_and_caps_savings() {
        let t0 = Instant::now();
        let at = |millis: u64| t0 + Duration::from_millis(millis);
        let mut b = Bucket::new(t0);
        let rate = Some(MIB); // 1 MiB/s: one CHUNK is 125 ms
        // (time, bytes, expected wait in ms)
        let steps: &[(u64, u64, u128)] = &[
            (0, CHUNK, 125),      // empty at the start: no burst
            (0, CHUNK, 250),      // a second writer queues behind the first
            (250, CHUNK, 125),    // the debt paid off at 250 ms; this one costs its own time
            (375, 0, 0),          // square
            (10_375, CHUNK, 0),   // idle for 10 s: saved up to capacity only…
            (10_375, CHUNK, 125), // …which was one CHUNK at this rate
        ];
        for &(t, bytes, want) in steps {
            assert_eq!(ms(b.take(at(t), rate, bytes)), want, "at {t} ms");
        }
        // 64 MiB/s: capacity is 50 ms of traffic (3.2 MiB), not one CHUNK.
        let mut fast = Bucket::new(t0);
        assert_eq!(ms(fast.take(at(1000), Some(64 * MIB), 3 * MIB)), 0);
        assert!(fast.take(at(1000), Some(64 * MIB), MIB).as_millis() >= 12);
        // Lifting the limit forgives the debt.
        let mut b = Bucket::new(t0);
        assert_eq!(ms(b.take(t0, rate, 4 * MIB)), 4000);
        assert_eq!(b.take(t0, None, 4 * MIB), Duration::ZERO);
        assert_eq!(ms(b.take(t0, rate, CHUNK)), 125);
    }

    /// A wall clock the test sets.
    struct SetClock(Mutex<Timestamp>);

    impl SetClock {
        fn at(civil: &str) -> Arc<Self> {
            Arc::new(SetClock(Mutex::new(utc(civil))))
        }
        fn set(&self, civil: &str) {
            *self.0.lock().unwrap() = utc(civil);
        }
    }

    impl Clock for SetClock {
        fn now(&self) -> Timestamp {
            *self.0.lock().unwrap()
        }
    }

    fn utc(civil: &str) -> Timestamp {
        format!("{civil}Z").parse().unwrap()
    }

    fn link(toml_text: &str) -> LinkPolicy {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn only_other_sites_cross_the_link() {
        let cases = [
            (Location::Local, false),
            (Location::SameSite, false),
            (Location::SameCity, true),
            (Location::Remote, true),
        ];
        for (location, crosses) in cases {
            assert_eq!(LinkGate::crosses_link(location), crosses, "{location:?}");
        }
    }

    #[test]
    fn a_closed_window_refuses_and_says_when_it_reopens() {
        let clock = SetClock::at("2026-03-06T12:00");
        let gate = LinkGate::new(
            link("windows = [\"20:00-06:00\"]\n"),
            TimeZone::UTC,
            clock.clone(),
        );
        let abort = AtomicBool::new(false);
        let closed = Refusal::WindowClosed {
            reopens: Some(utc("2026-03-06T20:00")),
        };
        assert_eq!(gate.admit(), Err(closed));
        assert_eq!(gate.pass(10, &abort), Err(closed));
        assert!(
            closed
                .to_string()
                .contains("reopens at 2026-03-06T20:00:00Z")
        );

        clock.set("2026-03-06T21:00");
        assert_eq!(gate.admit(), Ok(()));
        assert_eq!(gate.pass(3 * CHUNK + 1, &abort), Ok(()));
        assert_eq!(
            gate.stats(),
            LinkStats {
                sent: 3 * CHUNK + 1,
                paid: 3 * CHUNK + 1,
                refused: 1,
                waited: Duration::ZERO,
            }
        );
    }

    #[test]
    fn the_rate_holds_and_a_lifted_limit_applies_mid_write() {
        let clock = SetClock::at("2026-03-06T19:59:00");
        let gate = LinkGate::new(
            link("[[bandwidth]]\nhours = \"08:00-20:00\"\nlimit = \"4 MiB/s\"\n"),
            TimeZone::UTC,
            clock.clone(),
        );
        let abort = AtomicBool::new(false);
        // 1 MiB at 4 MiB/s from an empty bucket: at least 250 ms.
        let started = Instant::now();
        gate.pass(MIB, &abort).unwrap();
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(245), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");

        // 40 MiB would take 10 s at 4 MiB/s; at 20:00 the limit is lifted and it finishes.
        let lift = {
            let clock = clock.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                clock.set("2026-03-06T20:00:00");
            })
        };
        let started = Instant::now();
        gate.pass(40 * MIB, &abort).unwrap();
        let took = started.elapsed();
        lift.join().unwrap();
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert!(took < Duration::from_secs(2), "{took:?}");
        assert_eq!(gate.stats().sent, 41 * MIB);
    }

    #[test]
    fn a_window_closing_mid_write_refuses_the_rest() {
        let clock = SetClock::at("2026-03-06T19:59:59");
        let gate = LinkGate::new(
            link("windows = [\"08:00-20:00\"]\ndefault-limit = \"8 MiB/s\"\n"),
            TimeZone::UTC,
            clock.clone(),
        );
        let closer = {
            let clock = clock.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                clock.set("2026-03-06T20:00:00");
            })
        };
        let abort = AtomicBool::new(false);
        let started = Instant::now();
        // 16 MiB would take 2 s; the window closes after 300 ms.
        let result = gate.pass(16 * MIB, &abort);
        closer.join().unwrap();
        assert_eq!(
            result,
            Err(Refusal::WindowClosed {
                reopens: Some(utc("2026-03-07T08:00"))
            })
        );
        assert!(started.elapsed() < Duration::from_secs(1));
        let stats = gate.stats();
        assert_eq!((stats.sent, stats.refused), (0, 1));
        assert!(stats.paid > 0 && stats.paid < 16 * MIB, "{stats:?}");
    }

    #[test]
    fn an_abort_stops_a_waiting_write() {
        let gate = LinkGate::new(
            link("default-limit = \"1 MiB/s\"\n"),
            TimeZone::UTC,
            SetClock::at("2026-03-06T12:00"),
        );
        let abort = Arc::new(AtomicBool::new(false));
        let aborter = {
            let abort = abort.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(200));
                abort.store(true, Ordering::Relaxed);
            })
        };
        let started = Instant::now();
        assert_eq!(gate.pass(10 * MIB, &abort), Err(Refusal::Aborted));
        aborter.join().unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
