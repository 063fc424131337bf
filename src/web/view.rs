//! What the dashboard pages show, computed from the sweep's latest view and the policy: pure
//! functions, time passed in, no I/O. The pages only lay these values out.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};

use crate::assess::{AgentHealth, AgentStatus, Scenario, Status};
use crate::coordinator::auth::UI_SYSTEMS_PATH;
use crate::coordinator::sweep::FleetView;
use crate::policy::{Policy, SiteId, TierId};
use crate::report::chart::{HeatCell, HeatMap, Rag};

/// An agent online but silent for longer than this is *late*: several heartbeats (one a
/// minute by default) are missing, before the sweep's `offline-after` calls it offline.
pub const LATE_AFTER: SignedDuration = SignedDuration::from_mins(3);

/// How the overview counts an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AgentClass {
    Online,
    Late,
    Offline,
}

impl AgentClass {
    /// The CSS class word and the labels.
    pub fn word(self) -> &'static str {
        match self {
            AgentClass::Online => "online",
            AgentClass::Late => "late",
            AgentClass::Offline => "offline",
        }
    }
}

/// An agent's class at `now`: offline (or never seen) as the sweep says, late when online but
/// silent beyond [`LATE_AFTER`].
pub fn agent_class(h: &AgentHealth, now: Timestamp) -> AgentClass {
    match h.status {
        AgentStatus::Offline | AgentStatus::NeverSeen => AgentClass::Offline,
        AgentStatus::Online => match h.last_seen {
            Some(t) if now.duration_since(t) > LATE_AFTER => AgentClass::Late,
            _ => AgentClass::Online,
        },
    }
}

/// Agents counted by class: `[online, late, offline]`.
pub fn agent_counts(agents: &[AgentHealth], now: Timestamp) -> [usize; 3] {
    let mut counts = [0; 3];
    for a in agents {
        counts[agent_class(a, now) as usize] += 1;
    }
    counts
}

/// How bad a status is, for the worst of a heat-map cell: breached, then no evidence (no
/// backup ever recorded: nothing would come back), then at risk, then compliant.
fn badness(s: Status) -> u8 {
    match s {
        Status::Compliant => 0,
        Status::AtRisk => 1,
        Status::NoEvidence => 2,
        Status::Breached => 3,
    }
}

/// The colour of a status on the heat map: a system with no backup recorded is as red as a
/// breached one (the quarterly report's rule: no counted copy is red).
pub fn rag(s: Status) -> Rag {
    match s {
        Status::Compliant => Rag::Green,
        Status::AtRisk => Rag::Amber,
        Status::Breached | Status::NoEvidence => Rag::Red,
    }
}

/// The worse of two statuses.
pub fn worse(a: Status, b: Status) -> Status {
    if badness(b) > badness(a) { b } else { a }
}

/// One cell of the compliance heat map: the systems of one site and tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplianceCell {
    pub worst: Status,
    pub compliant: usize,
    pub total: usize,
    /// The system list filtered to this cell.
    pub href: String,
}

/// The branch × tier compliance heat map of one scenario: rows are the sites with systems,
/// columns the policy's tiers; `cells[row][col]` is `None` where no system is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplianceGrid {
    pub scenario: Scenario,
    /// Site id and name.
    pub rows: Vec<(SiteId, String)>,
    pub cols: Vec<TierId>,
    pub cells: Vec<Vec<Option<ComplianceCell>>>,
}

/// The heat map of `scenario` from the sweep's `view` (systems it has not assessed yet are left
/// out until the next sweep).
pub fn compliance_grid(policy: &Policy, view: &FleetView, scenario: Scenario) -> ComplianceGrid {
    let cols: Vec<TierId> = policy.tiers.keys().cloned().collect();
    let mut by_cell: BTreeMap<(SiteId, usize), ComplianceCell> = BTreeMap::new();
    for a in &view.assessments {
        let Some(col) = cols.iter().position(|t| *t == a.tier) else {
            continue;
        };
        let status = a.rpo(scenario).status;
        let cell = by_cell
            .entry((a.site.clone(), col))
            .or_insert_with(|| ComplianceCell {
                worst: Status::Compliant,
                compliant: 0,
                total: 0,
                href: systems_href(Some(&a.site), Some(&a.tier)),
            });
        cell.worst = worse(cell.worst, status);
        cell.total += 1;
        cell.compliant += usize::from(status == Status::Compliant);
    }
    let rows: Vec<(SiteId, String)> = policy
        .sites
        .values()
        .filter(|s| by_cell.keys().any(|(site, _)| *site == s.id))
        .map(|s| (s.id.clone(), s.name.clone()))
        .collect();
    let cells = rows
        .iter()
        .map(|(site, _)| {
            (0..cols.len())
                .map(|col| by_cell.get(&(site.clone(), col)).cloned())
                .collect()
        })
        .collect();
    ComplianceGrid {
        scenario,
        rows,
        cols,
        cells,
    }
}

/// The grid as the shared chart draws it: `rows` and `cols` are the headings people read,
/// each cell `compliant/total` (the chart writes the status word under it).
pub fn heat_map(
    grid: &ComplianceGrid,
    title: String,
    rows: Vec<String>,
    cols: Vec<String>,
) -> HeatMap {
    HeatMap {
        title,
        rows,
        cols,
        cells: grid
            .cells
            .iter()
            .map(|row| {
                row.iter()
                    .map(|cell| {
                        cell.as_ref().map(|c| HeatCell {
                            rag: rag(c.worst),
                            text: format!("{}/{}", c.compliant, c.total),
                            href: Some(c.href.clone()),
                        })
                    })
                    .collect()
            })
            .collect(),
    }
}

/// The system list filtered by site and tier.
pub fn systems_href(site: Option<&SiteId>, tier: Option<&TierId>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if let Some(s) = site {
        q.append_pair("site", s.as_str());
    }
    if let Some(t) = tier {
        q.append_pair("tier", t.as_str());
    }
    let q = q.finish();
    if q.is_empty() {
        UI_SYSTEMS_PATH.to_string()
    } else {
        format!("{UI_SYSTEMS_PATH}?{q}")
    }
}

/// The quarter `now` falls in (in `zone`, the organisation's), and the three before it, newest
/// first, as `2026Q4`.
pub fn recent_quarters(now: Timestamp, zone: &jiff::tz::TimeZone) -> Vec<String> {
    let date = now.to_zoned(zone.clone()).date();
    let (mut year, mut q) = (i32::from(date.year()), (date.month() - 1) / 3 + 1);
    let mut out = Vec::new();
    for _ in 0..4 {
        out.push(format!("{year}Q{q}"));
        if q == 1 {
            year -= 1;
            q = 4;
        } else {
            q -= 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn health(status: AgentStatus, last_seen: Option<&str>) -> AgentHealth {
        AgentHealth {
            host: "h".into(),
            status,
            last_seen: last_seen.map(t),
            clock_offset: None,
            clock_skewed: false,
            issues: vec![],
        }
    }

    #[test]
    fn agents_are_online_late_or_offline() {
        let now = t("2026-11-01T12:00:00Z");
        let table = [
            (
                AgentStatus::Online,
                Some("2026-11-01T11:59:00Z"),
                AgentClass::Online,
            ),
            (
                AgentStatus::Online,
                Some("2026-11-01T11:57:00Z"),
                AgentClass::Online,
            ),
            (
                AgentStatus::Online,
                Some("2026-11-01T11:56:59Z"),
                AgentClass::Late,
            ),
            (
                AgentStatus::Offline,
                Some("2026-11-01T10:00:00Z"),
                AgentClass::Offline,
            ),
            (AgentStatus::NeverSeen, None, AgentClass::Offline),
        ];
        let mut all = Vec::new();
        for (status, seen, class) in table {
            let h = health(status, seen);
            assert_eq!(agent_class(&h, now), class, "{status:?} {seen:?}");
            all.push(h);
        }
        assert_eq!(agent_counts(&all, now), [2, 1, 2]);
    }

    #[test]
    fn the_worst_status_of_a_cell() {
        use Status::*;
        let table = [
            (Compliant, Compliant, Compliant),
            (Compliant, NoEvidence, NoEvidence),
            (NoEvidence, AtRisk, NoEvidence),
            (Compliant, AtRisk, AtRisk),
            (Breached, AtRisk, Breached),
            (AtRisk, Breached, Breached),
        ];
        for (a, b, w) in table {
            assert_eq!(worse(a, b), w, "{a:?} {b:?}");
            assert_eq!(worse(b, a), w, "{b:?} {a:?}");
        }
    }

    #[test]
    fn hrefs_and_quarters() {
        let site: SiteId = "linfen".parse().unwrap();
        let tier: TierId = "T1".parse().unwrap();
        assert_eq!(
            systems_href(Some(&site), Some(&tier)),
            "/ui/systems?site=linfen&tier=T1"
        );
        assert_eq!(systems_href(None, None), "/ui/systems");
        assert_eq!(
            recent_quarters(t("2026-02-10T00:00:00Z"), &jiff::tz::TimeZone::UTC),
            ["2026Q1", "2025Q4", "2025Q3", "2025Q2"]
        );
        assert_eq!(
            recent_quarters(t("2026-12-31T23:00:00Z"), &jiff::tz::TimeZone::UTC)[0],
            "2026Q4"
        );
        let shanghai = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
        assert_eq!(
            recent_quarters(t("2026-12-31T23:00:00Z"), &shanghai)[0],
            "2027Q1"
        );
    }
}
