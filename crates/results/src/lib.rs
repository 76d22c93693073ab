//! The run report: what `netmatrix run` found, as the JSON schema `netmatrix.run/v1`
//! (../shared/DESIGN.md) and as the input of every run renderer (tables, JUnit, HTML).
//!
//! Fields beyond the DESIGN.md shape (`history`, `tried_at_ms`, `expected_before`, `src_node`,
//! `dst_node`, `target`, `service`, `hairpin`, `check`, `detail`, `skip_reason`, `error`,
//! `findings`, `features`) are additions: readers ignore what they do not know.

pub mod churn;
mod features;

use std::collections::BTreeMap;

use netmatrix_model::{IpFamily, Protocol};
use serde::{Deserialize, Serialize};

pub use features::{Feature, FeatureCoverage, FeatureResult, Group};

pub const SCHEMA: &str = "netmatrix.run/v1";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunReport {
    pub schema: String,
    /// `lab` or `kube`.
    pub backend: String,
    /// The implementation profile the expectations follow where Kubernetes leaves the outcome
    /// open: `spec`, `lab` or `kube-proxy` (empty in reports written before profiles).
    #[serde(default)]
    pub profile: String,
    /// RFC 3339.
    pub started: String,
    pub duration_ms: u64,
    pub cluster: ClusterInfo,
    pub summary: Summary,
    pub cases: Vec<CaseReport>,
    /// Every feature of the list with the cases that exercised it (none: not exercised).
    #[serde(default)]
    pub features: Vec<FeatureCoverage>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ClusterInfo {
    pub nodes: Vec<String>,
    pub server_version: String,
    /// Namespaces as the tables name them and their real names in the cluster.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub namespaces: BTreeMap<String, String>,
    /// On a sharded run whose backends rename namespaces: each shard's, the first being
    /// `namespaces` (a case's `shard` says which it ran in).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shards: Vec<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Summary {
    pub cases: usize,
    pub passed: usize,
    pub failed: usize,
    pub flaky: usize,
    pub errors: usize,
    pub skipped: usize,
    /// Probe attempts sent, over every try.
    pub probes: usize,
    /// Cells that were wrong (`X`) after every retry.
    pub wrong: usize,
}

/// What a whole run amounts to (the cli maps it onto exit codes 0, 1 and 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    AsExpected,
    Wrong,
    Incomplete,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum CaseResult {
    Pass,
    Fail,
    Flaky,
    Error,
    Skipped,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaseReport {
    /// `suite/case`.
    pub id: String,
    pub labels: BTreeMap<String, String>,
    pub result: CaseResult,
    pub duration_ms: u64,
    /// One sentence per finding (see `findings` for the cells each explains).
    pub diagnosis: Vec<String>,
    pub steps: Vec<StepReport>,
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// Why a skipped case did not run.
    #[serde(default)]
    pub skip_reason: Option<String>,
    /// What failed when the case could not be carried out (`error`).
    #[serde(default)]
    pub error: Option<String>,
    /// Ids of the features that the objects the case applied exercised while its steps probed,
    /// in list order.
    #[serde(default)]
    pub features: Vec<String>,
    /// The shard the case ran on (1, 2, ...) in a sharded run: its namespaces are
    /// `cluster.shards[shard - 1]`. Absent in serial runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<usize>,
}

/// A likely fault and the cells it explains.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    /// What kind of fault: `source-node`, `source-pod`, `target`, `target-node`, `cross-node`,
    /// `protocol`, `service-kind`, `node-port-node`, `affinity`, `hairpin`, `policy-ignored-on-node`, ...
    pub kind: String,
    /// The sentence also listed in `diagnosis`.
    pub summary: String,
    /// Indices into the step's `cells`, as `(step index, cell index)`.
    pub cells: Vec<(usize, usize)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepReport {
    pub name: String,
    /// Tries the step took (the most any cell needed).
    pub tries: u32,
    pub cells: Vec<Cell>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Expected {
    Allow,
    Deny,
    Undefined,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Observed {
    Allow,
    Deny,
    /// Results differed between tries and never settled.
    Inconclusive,
    /// The probe itself failed (exec error, agent error): no verdict about the network.
    Error,
}

/// What kind of address a cell's target is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TargetKind {
    #[default]
    Pod,
    ClusterIp,
    NodePort,
    LoadBalancer,
    /// One of a Service's `spec.externalIPs`.
    ExternalIp,
    ExternalName,
    /// A node's own address (pod-to-node).
    Node,
}

impl TargetKind {
    /// The JSON spelling, e.g. `cluster-ip`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pod => "pod",
            Self::ClusterIp => "cluster-ip",
            Self::NodePort => "node-port",
            Self::LoadBalancer => "load-balancer",
            Self::ExternalIp => "external-ip",
            Self::ExternalName => "external-name",
            Self::Node => "node",
        }
    }
}

/// One probed (source, target, port, protocol).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Cell {
    /// `ns/pod`.
    pub src: String,
    /// `ns/pod`, `svc:ns/name`, `node:NODE:PORT`, `lb:IP`, `dns:NAME`, `node:NODE`.
    pub dst: String,
    pub port: u16,
    pub protocol: Protocol,
    pub expected: Expected,
    pub observed: Observed,
    /// Tries this cell took.
    pub tries: u32,
    /// Latency of the last try, when it connected or was refused.
    pub latency_ms: Option<f64>,
    /// `ns/pod` of the server that answered the last try.
    pub answered_by: Option<String>,
    /// The observation of every try, in order.
    #[serde(default)]
    pub history: Vec<Observed>,
    /// When each try of `history` was sent, in milliseconds since the run started.
    #[serde(default)]
    pub tried_at_ms: Vec<u64>,
    /// The cell's expectation in the previous step, where the step changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_before: Option<Expected>,
    #[serde(default)]
    pub src_node: Option<String>,
    /// The target pod's node; for `node-port` and `node` targets, the node addressed.
    #[serde(default)]
    pub dst_node: Option<String>,
    #[serde(default)]
    pub target: TargetKind,
    /// `ns/name` of the Service a service target belongs to.
    #[serde(default)]
    pub service: Option<String>,
    /// The target is a Service the source itself backs (it may reach itself through it).
    #[serde(default)]
    pub hairpin: bool,
    /// What the cell checks.
    #[serde(default)]
    pub check: Check,
    /// The agent's error text, or why the cell is undefined.
    #[serde(default)]
    pub detail: Option<String>,
    /// Why the oracle expected what it did (the rules or tiers that decided, or the Service
    /// reasoning); given for the cells that were wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    /// The IP family probed, on runs whose pods have addresses of both (a single-family run's
    /// report stays as it was before IPv6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<IpFamily>,
}

/// What a cell checks; `observed` is `allow` when the check held.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// A connection is made (or not).
    #[default]
    Reach,
    /// Every try from one client reached the same backend (`sessionAffinity: ClientIP`).
    Affinity,
    /// A UDP flow to a Service reaches a live backend after its backend was replaced.
    UdpAfterReplace,
}

/// The state of a cell in the comparison table (in JSON, e.g. `as-expected`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Comparison {
    AsExpected,
    Wrong,
    Inconclusive,
    Error,
    Undefined,
}

impl Comparison {
    /// The DESIGN.md cell character.
    pub fn symbol(self) -> char {
        match self {
            Self::AsExpected => '.',
            Self::Wrong => 'X',
            Self::Inconclusive => '?',
            Self::Error => '!',
            Self::Undefined => '#',
        }
    }
}

impl Expected {
    pub fn symbol(self) -> char {
        match self {
            Self::Allow => '.',
            Self::Deny => 'X',
            Self::Undefined => '#',
        }
    }
}

impl Observed {
    pub fn symbol(self) -> char {
        match self {
            Self::Allow => '.',
            Self::Deny => 'X',
            Self::Inconclusive => '?',
            Self::Error => '!',
        }
    }
}

impl Cell {
    pub fn comparison(&self) -> Comparison {
        compare(self.expected, self.observed)
    }
}

/// What one observation says against an expectation (a cell's, or one of its tries').
pub fn compare(expected: Expected, observed: Observed) -> Comparison {
    match (expected, observed) {
        (Expected::Undefined, _) => Comparison::Undefined,
        (_, Observed::Error) => Comparison::Error,
        (_, Observed::Inconclusive) => Comparison::Inconclusive,
        (Expected::Allow, Observed::Allow) | (Expected::Deny, Observed::Deny) => Comparison::AsExpected,
        _ => Comparison::Wrong,
    }
}

/// The counts of one step's comparison, as printed under its tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub correct: usize,
    pub incorrect: usize,
    pub inconclusive: usize,
    pub errors: usize,
    pub undefined: usize,
}

impl Tally {
    pub fn of(cells: &[Cell]) -> Tally {
        let mut t = Tally::default();
        for c in cells {
            match c.comparison() {
                Comparison::AsExpected => t.correct += 1,
                Comparison::Wrong => t.incorrect += 1,
                Comparison::Inconclusive => t.inconclusive += 1,
                Comparison::Error => t.errors += 1,
                Comparison::Undefined => t.undefined += 1,
            }
        }
        t
    }

    /// `result=true` only when nothing was wrong, inconclusive or failed.
    pub fn ok(&self) -> bool {
        self.incorrect == 0 && self.inconclusive == 0 && self.errors == 0
    }
}

impl CaseReport {
    /// A case of these steps, its result from their cells; no labels, findings or features yet.
    pub fn of_steps(id: impl Into<String>, steps: Vec<StepReport>) -> CaseReport {
        CaseReport {
            id: id.into(),
            labels: BTreeMap::new(),
            result: CaseReport::result_from_cells(&steps),
            duration_ms: 0,
            diagnosis: Vec::new(),
            steps,
            findings: Vec::new(),
            skip_reason: None,
            error: None,
            features: Vec::new(),
            shard: None,
        }
    }

    /// pass, fail (a wrong cell), flaky (no wrong cell, some inconclusive) or error (a probe
    /// or an action failed); skipped cases keep their result.
    pub fn result_from_cells(steps: &[StepReport]) -> CaseResult {
        let tallies: Vec<Tally> = steps.iter().map(|s| Tally::of(&s.cells)).collect();
        if tallies.iter().any(|t| t.incorrect > 0) {
            CaseResult::Fail
        } else if tallies.iter().any(|t| t.errors > 0) {
            CaseResult::Error
        } else if tallies.iter().any(|t| t.inconclusive > 0) {
            CaseResult::Flaky
        } else {
            CaseResult::Pass
        }
    }
}

impl Summary {
    pub fn of(cases: &[CaseReport]) -> Summary {
        let mut s = Summary { cases: cases.len(), ..Summary::default() };
        for c in cases {
            match c.result {
                CaseResult::Pass => s.passed += 1,
                CaseResult::Fail => s.failed += 1,
                CaseResult::Flaky => s.flaky += 1,
                CaseResult::Error => s.errors += 1,
                CaseResult::Skipped => s.skipped += 1,
            }
            for step in &c.steps {
                s.probes += step.cells.iter().map(|cell| cell.tries as usize).sum::<usize>();
                s.wrong += step.cells.iter().filter(|cell| cell.comparison() == Comparison::Wrong).count();
            }
        }
        s
    }

    /// What the run amounts to: as expected; some cell wrong (or, with none wrong,
    /// inconclusive); or incomplete, when with none wrong a case could not be carried out.
    pub fn verdict(&self) -> Verdict {
        if self.failed > 0 {
            Verdict::Wrong
        } else if self.errors > 0 {
            Verdict::Incomplete
        } else if self.flaky > 0 {
            Verdict::Wrong
        } else {
            Verdict::AsExpected
        }
    }
}
