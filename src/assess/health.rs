//! Agent health from heartbeats: is the agent online, and how far is its clock from the
//! coordinator's — and, from that, how to treat the times in its run records (pitfall 7 of
//! standards §3.5).
//!
//! The offset is `received_at − sent_at`: the coordinator's clock when the heartbeat arrived
//! minus the agent's clock when it was sent. It includes the network latency (typically well
//! under a second), which is why only offsets beyond [`Settings::max_clock_skew`] count as skew.
//! Positive: the agent's clock is behind; negative: ahead.

use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::reason::Human;
use super::{Settings, plus, signed};
use crate::api::Heartbeat;

/// The last heartbeat the coordinator received from an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeartbeatSeen {
    pub host: String,
    /// The agent's clock when it sent the heartbeat.
    pub sent_at: Timestamp,
    /// The coordinator's clock when it received it.
    pub received_at: Timestamp,
}

impl HeartbeatSeen {
    pub fn new(heartbeat: &Heartbeat, received_at: Timestamp) -> Self {
        HeartbeatSeen {
            host: heartbeat.host.clone(),
            sent_at: heartbeat.sent_at,
            received_at,
        }
    }

    /// How far the coordinator's clock is ahead of the agent's (latency included).
    pub fn offset(&self) -> SignedDuration {
        self.received_at.duration_since(self.sent_at)
    }
}

/// Whether an agent is heard from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AgentStatus {
    Online,
    /// Silent for longer than [`Settings::offline_after`]: its newest results may be waiting in
    /// its spool.
    Offline,
    /// No heartbeat ever received.
    NeverSeen,
}

/// Something wrong with an agent, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "issue")]
pub enum HealthIssue {
    NeverSeen {
        host: String,
    },
    Offline {
        host: String,
        last_seen: Timestamp,
        silent_for: SignedDuration,
    },
    ClockSkew {
        host: String,
        offset: SignedDuration,
        limit: SignedDuration,
    },
}

impl fmt::Display for HealthIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HealthIssue::NeverSeen { host } => write!(
                f,
                "no heartbeat ever received from the agent on {host}: is it installed and enrolled?"
            ),
            HealthIssue::Offline {
                host,
                last_seen,
                silent_for,
            } => write!(
                f,
                "the agent on {host} is offline: last heartbeat {last_seen}, {} ago; its newest \
                 results may be waiting in its spool",
                Human(*silent_for)
            ),
            HealthIssue::ClockSkew {
                host,
                offset,
                limit,
            } => write!(
                f,
                "the clock of {host} is {} {} the coordinator's (limit {}): its capture and \
                 availability times are corrected pessimistically; fix its time synchronisation (NTP)",
                Human(offset.abs()),
                if offset.is_negative() {
                    "ahead of"
                } else {
                    "behind"
                },
                Human(*limit)
            ),
        }
    }
}

/// One agent's health at one instant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentHealth {
    pub host: String,
    pub status: AgentStatus,
    /// When the last heartbeat arrived (coordinator clock).
    pub last_seen: Option<Timestamp>,
    /// From the last heartbeat; see [`HeartbeatSeen::offset`].
    pub clock_offset: Option<SignedDuration>,
    /// `clock_offset` is beyond the limit: the agent's times are corrected.
    pub clock_skewed: bool,
    pub issues: Vec<HealthIssue>,
}

impl AgentHealth {
    /// Assesses an agent from its last heartbeat (`None`: never heard from). The offset of the
    /// last heartbeat stands even when the agent has gone offline since.
    pub fn assess(
        host: &str,
        last: Option<&HeartbeatSeen>,
        now: Timestamp,
        settings: &Settings,
    ) -> AgentHealth {
        let Some(last) = last else {
            return AgentHealth {
                host: host.to_string(),
                status: AgentStatus::NeverSeen,
                last_seen: None,
                clock_offset: None,
                clock_skewed: false,
                issues: vec![HealthIssue::NeverSeen {
                    host: host.to_string(),
                }],
            };
        };
        let mut issues = Vec::new();
        let silent_for = now.duration_since(last.received_at);
        let offline = silent_for > signed(settings.offline_after);
        if offline {
            issues.push(HealthIssue::Offline {
                host: host.to_string(),
                last_seen: last.received_at,
                silent_for,
            });
        }
        let offset = last.offset();
        let limit = signed(settings.max_clock_skew);
        let skewed = offset.abs() > limit;
        if skewed {
            issues.push(HealthIssue::ClockSkew {
                host: host.to_string(),
                offset,
                limit,
            });
        }
        AgentHealth {
            host: host.to_string(),
            status: if offline {
                AgentStatus::Offline
            } else {
                AgentStatus::Online
            },
            last_seen: Some(last.received_at),
            clock_offset: Some(offset),
            clock_skewed: skewed,
            issues,
        }
    }

    /// How to treat this agent's times: corrected when its clock is skewed, as they are
    /// otherwise.
    pub fn correction(&self) -> ClockCorrection {
        match self.clock_offset {
            Some(offset) if self.clock_skewed => ClockCorrection {
                offset: Some(offset),
            },
            _ => ClockCorrection::none(),
        }
    }
}

/// How an agent's timestamps are turned into coordinator time. With no offset, they are used as
/// they are. With one (the agent's clock is skewed), each time is moved by the offset only in
/// the direction that makes the evidence look *worse*: capture times only earlier, availability
/// times only later. The offset was measured now; it may not have held when the snapshot was
/// taken, so it is trusted to condemn, never to excuse.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ClockCorrection {
    /// Coordinator clock minus agent clock.
    pub offset: Option<SignedDuration>,
}

impl ClockCorrection {
    /// Times are used as they are.
    pub fn none() -> Self {
        ClockCorrection { offset: None }
    }

    pub fn is_active(self) -> bool {
        self.offset.is_some()
    }

    /// A capture time in coordinator time: `min(t, t + offset)`.
    pub fn capture(self, t: Timestamp) -> Timestamp {
        match self.offset {
            Some(o) if o.is_negative() => plus(t, o),
            _ => t,
        }
    }

    /// An availability time in coordinator time: `max(t, t + offset)`.
    pub fn available(self, t: Timestamp) -> Timestamp {
        match self.offset {
            Some(o) if o.is_positive() => plus(t, o),
            _ => t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::*;

    #[test]
    fn offline_and_skew_table() {
        let settings = Settings::default(); // offline after 5 min, skew limit 60 s
        let now = t("03-01 12:00");
        let seen = |received: &str, offset_secs: i64| HeartbeatSeen {
            host: "h1".into(),
            sent_at: plus(t(received), SignedDuration::from_secs(-offset_secs)),
            received_at: t(received),
        };
        let cases = [
            (
                "fresh, clock fine",
                Some(seen("03-01 11:59", 1)),
                AgentStatus::Online,
                false,
            ),
            (
                "silent exactly 5 min",
                Some(seen("03-01 11:55", 0)),
                AgentStatus::Online,
                false,
            ),
            (
                "silent 6 min",
                Some(seen("03-01 11:54", 0)),
                AgentStatus::Offline,
                false,
            ),
            (
                "agent 2 h ahead",
                Some(seen("03-01 11:59", -7200)),
                AgentStatus::Online,
                true,
            ),
            (
                "agent 61 s behind",
                Some(seen("03-01 11:59", 61)),
                AgentStatus::Online,
                true,
            ),
            (
                "offline and skewed",
                Some(seen("03-01 10:00", 300)),
                AgentStatus::Offline,
                true,
            ),
            ("never seen", None, AgentStatus::NeverSeen, false),
        ];
        for (what, last, status, skewed) in cases {
            let h = AgentHealth::assess("h1", last.as_ref(), now, &settings);
            assert_eq!((h.status, h.clock_skewed), (status, skewed), "{what}");
            assert_eq!(h.correction().is_active(), skewed, "{what}");
            let expected_issues = usize::from(status != AgentStatus::Online) + usize::from(skewed);
            assert_eq!(h.issues.len(), expected_issues, "{what}: {:?}", h.issues);
        }
        let h = AgentHealth::assess("h1", Some(&seen("03-01 11:59", -7200)), now, &settings);
        assert_eq!(
            h.issues[0].to_string(),
            "the clock of h1 is 2h ahead of the coordinator's (limit 1m): its capture and \
             availability times are corrected pessimistically; fix its time synchronisation (NTP)"
        );
    }

    /// Pessimistic correction: only ever towards a larger exposure.
    #[test]
    fn corrections_only_make_evidence_worse() {
        let at = t("03-01 02:00");
        let ahead = ClockCorrection {
            offset: Some(SignedDuration::from_hours(-1)),
        };
        let behind = ClockCorrection {
            offset: Some(SignedDuration::from_hours(1)),
        };
        assert_eq!(ahead.capture(at), t("03-01 01:00"));
        assert_eq!(ahead.available(at), at);
        assert_eq!(behind.capture(at), at);
        assert_eq!(behind.available(at), t("03-01 03:00"));
        assert_eq!(ClockCorrection::none().capture(at), at);
        assert_eq!(ClockCorrection::none().available(at), at);
    }
}
