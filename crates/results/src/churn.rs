//! What `netmatrix churn` measured: per change, how long the dataplane took to enforce it, as
//! the JSON schema `netmatrix.churn/v1` and as the input of its renderers (text, HTML).

use std::collections::{BTreeMap, BTreeSet};

use netmatrix_model::Protocol;
use serde::{Deserialize, Serialize};

pub const CHURN_SCHEMA: &str = "netmatrix.churn/v1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChurnReport {
    pub schema: String,
    /// `lab` or `kube`.
    pub backend: String,
    /// RFC 3339.
    pub started: String,
    pub duration_ms: u64,
    pub cluster: crate::ClusterInfo,
    /// The seed every pattern's changes were drawn with: the same seed, shape and flags give
    /// the same changes.
    pub seed: u64,
    pub shape: Shape,
    /// Pause between the starts of two probe rounds after a change; a round that takes longer
    /// starts the next at once (its duration is then the resolution: `rounds_ms`).
    pub interval_ms: f64,
    /// How long a change's cells may take to converge before they are reported as not converged.
    pub deadline_ms: u64,
    pub patterns: Vec<PatternReport>,
}

/// The world churned: nodes x namespaces x pods per namespace, and the objects patterns add.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Shape {
    pub nodes: usize,
    pub namespaces: usize,
    pub pods_per_namespace: usize,
    /// Policies `policy-churn` keeps in place.
    pub policies: usize,
    /// Services `service-churn` scales.
    pub services: usize,
    /// Changes per pattern.
    pub changes: usize,
    /// Unchanged cells probed with each change's cells, as controls.
    pub controls: usize,
}

/// Which way a cell's expected verdict went: deny to allow, allow to deny. A recreated pod's
/// cells count by their new verdict (its old cells were gone, not allowed or denied).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    DenyToAllow,
    AllowToDeny,
}

impl Direction {
    pub const BOTH: [Direction; 2] = [Direction::DenyToAllow, Direction::AllowToDeny];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DenyToAllow => "deny-to-allow",
            Self::AllowToDeny => "allow-to-deny",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PatternReport {
    /// `ns-labels`, `pod-ring`, `policy-churn` or `service-churn`.
    pub pattern: String,
    /// Over every change (`direction` null), then per direction.
    pub summary: Vec<LatencySummary>,
    /// Making the pattern's objects, measured like a change: when its cells did not converge,
    /// no change was made (they would be blamed for the setup's cells).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub setup: Option<ChangeReport>,
    pub changes: Vec<ChangeReport>,
}

/// Percentiles of convergence latency over the converged changes (nearest rank); `None` when
/// no change converged.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LatencySummary {
    /// `None`: every change, by the moment all its cells were right (or those of `family`).
    pub direction: Option<Direction>,
    /// `IPv4` or `IPv6`: over the changes' cells of that family (`latency_by_family`); absent
    /// from the summaries over both.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// Changes with cells of this direction (or family).
    pub changes: usize,
    pub converged: usize,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ChangeReport {
    /// 0-based, in the order applied.
    pub index: usize,
    /// What was done, e.g. `namespace ns2: maturity=production -> out-of-service`.
    pub description: String,
    /// When netmatrix's apply returned, since the run started.
    pub applied_at_ms: f64,
    /// How long the apply call took (API request, or the lab's rule update).
    pub apply_ms: f64,
    /// The API server's time of the change (`metadata.creationTimestamp` or the last
    /// managedFields time, RFC 3339, one-second resolution), where the backend has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_time: Option<String>,
    /// Time the incremental oracle took to update its verdicts, in microseconds.
    pub oracle_us: f64,
    /// Cells whose expected verdict changed, by direction: each counted once per IP family it
    /// was watched on, i.e. (cell, family) pairs.
    pub cells: BTreeMap<Direction, usize>,
    /// Control (cell, family) pairs watched.
    pub controls: usize,
    /// From `applied_at_ms` to the moment since which every changed cell has been right (each
    /// cell's moment: when its probe's connection was decided); `None`: not converged within
    /// the deadline, or no cell changed.
    pub latency_ms: Option<f64>,
    /// The last moment a changed cell was seen wrong (`None`: never, the dataplane had it
    /// before the first probe): the true latency lies between this (or 0) and `latency_ms`,
    /// whose excess over it is the measurement's resolution.
    #[serde(default)]
    pub last_wrong_ms: Option<f64>,
    /// The same over the cells of one direction.
    pub latency_by_direction: BTreeMap<Direction, Option<f64>>,
    /// The same over the cells whose rules live on each node (the node of the pod whose
    /// policy verdict changed).
    pub latency_by_node: BTreeMap<String, Option<f64>>,
    /// The same over the cells of each IP family (`IPv4`, `IPv6`), where the watched cells
    /// had two; empty (and absent) otherwise.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub latency_by_family: BTreeMap<String, Option<f64>>,
    pub rounds: usize,
    /// Median time one round of probes took: the measurement's resolution for this change.
    pub round_ms: f64,
    /// Cells still wrong at the deadline.
    pub not_converged: Vec<CellRef>,
    /// Cells that were right in one round and wrong in a later one.
    pub regressed: Vec<CellRef>,
    /// Control cells (expected unchanged) that were wrong in some round.
    pub controls_changed: Vec<CellRef>,
    /// Probes that failed to run (exec or agent errors): they count neither way.
    #[serde(default)]
    pub probe_errors: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct CellRef {
    pub src: String,
    /// `ns/pod` or `svc:ns/name`.
    pub dst: String,
    pub port: u16,
    pub protocol: Protocol,
    /// `allow` or `deny`.
    pub expected: String,
    /// The IP family probed, `IPv4` or `IPv6`, where the change's watched cells had two;
    /// absent otherwise (and in reports written before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    /// What the probes that saw the cell wrong got, by outcome (`connected`, `refused`,
    /// `timeout`, ...), e.g. to tell a dropped packet from a refusal. Absent in reports
    /// written before it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub wrong_outcomes: BTreeMap<String, usize>,
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    Some(sorted[rank.min(sorted.len()) - 1])
}

impl LatencySummary {
    /// The summary of `changes` over the direction (or all when `None`): changes without
    /// cells of that direction are left out.
    pub fn of(changes: &[ChangeReport], direction: Option<Direction>) -> LatencySummary {
        let relevant: Vec<Option<f64>> = changes
            .iter()
            .filter_map(|c| match direction {
                // A change that changed no cell has nothing to converge.
                None if c.cells.is_empty() => None,
                None => Some(c.latency_ms),
                Some(d) => c.latency_by_direction.get(&d).copied(),
            })
            .collect();
        LatencySummary { direction, ..Self::over(&relevant) }
    }

    /// The summary of `changes` over their cells of one family: changes without them are
    /// left out.
    pub fn of_family(changes: &[ChangeReport], family: &str) -> LatencySummary {
        let relevant: Vec<Option<f64>> = changes.iter().filter_map(|c| c.latency_by_family.get(family).copied()).collect();
        LatencySummary { family: Some(family.to_owned()), ..Self::over(&relevant) }
    }

    fn over(relevant: &[Option<f64>]) -> LatencySummary {
        let mut converged: Vec<f64> = relevant.iter().flatten().copied().collect();
        converged.sort_by(f64::total_cmp);
        LatencySummary {
            direction: None,
            family: None,
            changes: relevant.len(),
            converged: converged.len(),
            p50_ms: percentile(&converged, 50.0),
            p90_ms: percentile(&converged, 90.0),
            p99_ms: percentile(&converged, 99.0),
            max_ms: converged.last().copied(),
        }
    }

    /// Every change, then each direction, then each family of `latency_by_family` (none on
    /// single-family runs).
    pub fn all(changes: &[ChangeReport]) -> Vec<LatencySummary> {
        let families: BTreeSet<&String> = changes.iter().flat_map(|c| c.latency_by_family.keys()).collect();
        let by_direction = std::iter::once(None).chain(Direction::BOTH.map(Some)).map(|d| LatencySummary::of(changes, d));
        by_direction.chain(families.into_iter().map(|f| LatencySummary::of_family(changes, f))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), Some(5.0));
        assert_eq!(percentile(&values, 90.0), Some(9.0));
        assert_eq!(percentile(&values, 99.0), Some(10.0));
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[7.0], 1.0), Some(7.0));
    }

    fn change(latency: Option<f64>, by: &[(Direction, Option<f64>)]) -> ChangeReport {
        ChangeReport {
            index: 0,
            description: String::new(),
            applied_at_ms: 0.0,
            apply_ms: 0.0,
            server_time: None,
            oracle_us: 0.0,
            cells: by.iter().map(|&(d, _)| (d, 1)).collect(),
            controls: 0,
            latency_ms: latency,
            last_wrong_ms: None,
            latency_by_direction: by.iter().copied().collect(),
            latency_by_node: BTreeMap::new(),
            latency_by_family: BTreeMap::new(),
            rounds: 1,
            round_ms: 1.0,
            not_converged: Vec::new(),
            regressed: Vec::new(),
            controls_changed: Vec::new(),
            probe_errors: 0,
        }
    }

    #[test]
    fn summaries_count_unconverged_changes_apart_and_split_directions() {
        let changes = [
            change(Some(10.0), &[(Direction::DenyToAllow, Some(10.0))]),
            change(Some(30.0), &[(Direction::DenyToAllow, Some(5.0)), (Direction::AllowToDeny, Some(30.0))]),
            change(None, &[(Direction::AllowToDeny, None)]),
        ];
        let [all, to_allow, to_deny] = LatencySummary::all(&changes).try_into().unwrap();
        assert_eq!((all.changes, all.converged, all.max_ms), (3, 2, Some(30.0)));
        assert_eq!((to_allow.changes, to_allow.converged, to_allow.p50_ms), (2, 2, Some(5.0)));
        assert_eq!((to_deny.changes, to_deny.converged, to_deny.p99_ms), (2, 1, Some(30.0)));
    }

    #[test]
    fn families_get_summaries_of_their_own_only_where_changes_have_them() {
        let mut changes = vec![
            change(Some(10.0), &[(Direction::DenyToAllow, Some(10.0))]),
            change(Some(30.0), &[(Direction::AllowToDeny, Some(30.0))]),
            change(None, &[(Direction::AllowToDeny, None)]),
        ];
        assert_eq!(LatencySummary::all(&changes).len(), 3, "single-family runs: as before");
        changes[0].latency_by_family = [("IPv4".into(), Some(8.0)), ("IPv6".into(), Some(10.0))].into();
        changes[1].latency_by_family = [("IPv4".into(), Some(30.0)), ("IPv6".into(), Some(20.0))].into();
        changes[2].latency_by_family = [("IPv4".into(), Some(5.0)), ("IPv6".into(), None)].into();
        let [_, _, _, v4, v6] = LatencySummary::all(&changes).try_into().unwrap();
        assert_eq!((v4.family.as_deref(), v4.direction, v4.changes, v4.converged, v4.max_ms), (Some("IPv4"), None, 3, 3, Some(30.0)));
        assert_eq!((v6.family.as_deref(), v6.changes, v6.converged, v6.p50_ms), (Some("IPv6"), 3, 2, Some(10.0)));
    }

    #[test]
    fn reports_without_families_read_and_write_as_before() {
        let cell = r#"{"src":"a/b","dst":"a/c","port":80,"protocol":"TCP","expected":"allow"}"#;
        let parsed: CellRef = serde_json::from_str(cell).unwrap();
        assert_eq!(parsed.family, None);
        assert_eq!(serde_json::to_string(&parsed).unwrap(), cell);
        let json = serde_json::to_value(change(Some(1.0), &[(Direction::DenyToAllow, Some(1.0))])).unwrap();
        assert!(json.get("latency_by_family").is_none(), "{json}");
        let summary = serde_json::to_value(LatencySummary::of(&[], None)).unwrap();
        assert!(summary.get("family").is_none(), "{summary}");
    }
}
