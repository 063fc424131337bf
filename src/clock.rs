//! The clock as an input: services take a [`Clock`], domain code takes `now` as a value.

use jiff::Timestamp;

/// Where "now" comes from. Tests pass a fixed or stepping clock.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}
