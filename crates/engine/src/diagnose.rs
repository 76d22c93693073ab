//! Diagnosis: from a comparison, the likely fault and the cells it explains.
//!
//! Every place a fault can sit (a pod, a node, a node pair, a protocol, a Service kind, ...) is a
//! hypothesis with a scope: the cells such a fault would make wrong. A hypothesis holds when every
//! cell of its scope that it requires is wrong (or inconclusive, a weak symptom) and at least two
//! (one for the checks that name their fault) support it. The findings are a greedy cover of the
//! wrong cells by the hypotheses that hold: the one explaining most uncovered cells first, ties
//! going to the order of [`Hypothesis`]. What no hypothesis explains is `unexplained`; probe
//! failures are `probe-errors`, never a dataplane fault.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use netmatrix_model::{IpFamily, Protocol};
use netmatrix_results::{Cell, Check, Comparison, Expected, Finding, Observed, StepReport, TargetKind};

/// `(step index, cell index)`.
type CellRef = (usize, usize);

/// Where a fault sits. The declaration order is the preference among hypotheses that explain
/// the same cells.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Hypothesis {
    AllBlocked,
    AllAllowed,
    SourceNode(String),
    SourcePod(String),
    TargetNode(String),
    Target(String),
    CrossNode(Pairs),
    /// `None`: the protocol everywhere.
    Protocol(Protocol, Option<String>),
    PolicyIgnored(String),
    ServiceKind(TargetKind),
    ServiceProxy(String),
    /// The node's proxy programs the other family's Services but not this one's.
    ServiceFamily(IpFamily, String),
    NodePortNode(String),
    /// The Service.
    Affinity(String),
    /// The sources' node, if known.
    Hairpin(Option<String>),
    StaleUdp(Option<String>),
    /// One IP family not forwarded for the node's pods; `None`: nowhere.
    Family(IpFamily, Option<String>),
}

/// Which node pairs a cross-node fault cuts; broadest first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Pairs {
    All,
    /// A node and every other node.
    Node(String),
    /// Sorted.
    Pair(String, String),
}

/// What a cell in a hypothesis's scope means for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// Must be a symptom, or the hypothesis does not hold; supports it when it is.
    Required,
    /// Supports the hypothesis when a symptom; a healthy one does not refute it.
    Support,
    /// Explained when a symptom, but neither supports nor refutes (e.g. an affinity check under
    /// a reachability hypothesis: it fails when nothing connects, but may fail on its own).
    Optional,
}

impl Hypothesis {
    /// Symptoms needed: one cell is enough only where the check itself names the fault.
    fn min_support(&self) -> usize {
        match self {
            Self::Affinity(_) | Self::Hairpin(_) | Self::StaleUdp(_) => 1,
            _ => 2,
        }
    }

    /// For node-level hypotheses, the pod (or address) whose distinct values must number two or
    /// more: a node with one wrong row is that row's pod.
    fn member(&self) -> Option<fn(&Cell) -> &str> {
        match self {
            Self::SourceNode(_) => Some(|c| &c.src),
            Self::TargetNode(_) => Some(|c| &c.dst),
            _ => None,
        }
    }

    /// How much of the network the fault would break beyond what it is blamed for: of two
    /// hypotheses explaining the same cells, the narrower claim is the one the evidence supports
    /// (a dead service proxy, not a node that cannot send, when only Services were probed).
    fn breadth(&self) -> u8 {
        match self {
            Self::AllBlocked | Self::AllAllowed => 2,
            Self::SourceNode(_) | Self::TargetNode(_) => 1,
            _ => 0,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Self::AllBlocked => "all-blocked",
            Self::AllAllowed => "all-allowed",
            Self::SourceNode(_) => "source-node",
            Self::SourcePod(_) => "source-pod",
            Self::TargetNode(_) => "target-node",
            Self::Target(_) => "target",
            Self::CrossNode(_) => "cross-node",
            Self::Protocol(..) => "protocol",
            Self::PolicyIgnored(_) => "policy-ignored",
            Self::ServiceKind(_) => "service-kind",
            Self::ServiceProxy(_) => "service-proxy",
            Self::ServiceFamily(..) => "service-family",
            Self::NodePortNode(_) => "node-port-node",
            Self::Affinity(_) => "affinity",
            Self::Hairpin(_) => "hairpin",
            Self::StaleUdp(_) => "stale-udp",
            Self::Family(..) => "family",
        }
    }
}

/// The likely faults behind the wrong cells of `steps`, most explanatory first, then the cells
/// nothing explains (`unexplained`) and the probes that failed (`probe-errors`).
pub fn diagnose(steps: &[StepReport]) -> Vec<Finding> {
    let candidates: Vec<(Hypothesis, Vec<CellRef>)> =
        scopes(steps).into_iter().filter(|(h, _)| contrasted(h, steps)).filter_map(|(h, scope)| explained(&h, &scope, steps).map(|cells| (h, cells))).collect();
    let mut findings: Vec<Finding> = merge_sets(cover(candidates, steps)).into_iter().map(|(h, cells)| finding(&h, cells, steps)).collect();
    findings.extend(unexplained(steps, &findings));
    findings.extend(probe_errors(steps));
    findings
}

fn cell(steps: &[StepReport], (step, index): CellRef) -> &Cell {
    &steps[step].cells[index]
}

fn symptom(cell: &Cell) -> bool {
    matches!(cell.comparison(), Comparison::Wrong | Comparison::Inconclusive)
}

/// Every hypothesis with the cells of its scope. Undefined and failed cells say nothing about
/// the network, so they are in no scope.
fn scopes(steps: &[StepReport]) -> BTreeMap<Hypothesis, Vec<(CellRef, Need)>> {
    let mut scopes: BTreeMap<Hypothesis, Vec<(CellRef, Need)>> = BTreeMap::new();
    for (s, step) in steps.iter().enumerate() {
        for (i, c) in step.cells.iter().enumerate() {
            if matches!(c.comparison(), Comparison::Undefined | Comparison::Error) {
                continue;
            }
            for (h, need) in cell_scopes(c) {
                scopes.entry(h).or_default().push(((s, i), need));
            }
        }
    }
    scopes
}

fn cell_scopes(c: &Cell) -> Vec<(Hypothesis, Need)> {
    let (reach, support) = match c.check {
        Check::Reach => (Need::Required, Need::Support),
        Check::Affinity | Check::UdpAfterReplace => (Need::Optional, Need::Optional),
    };
    let mut out: Vec<(Hypothesis, Need)> = match c.expected {
        Expected::Allow => blocked_by(c).into_iter().map(|h| (h, reach)).collect(),
        Expected::Deny => leaked_by(c, reach, support),
        Expected::Undefined => Vec::new(),
    };
    if c.expected == Expected::Allow {
        let service = c.service.clone().unwrap_or_else(|| c.dst.clone());
        let checks = [
            (Hypothesis::Affinity(service), c.check == Check::Affinity),
            (Hypothesis::Hairpin(c.src_node.clone()), c.hairpin),
            (Hypothesis::StaleUdp(c.src_node.clone()), c.check == Check::UdpAfterReplace),
        ];
        out.extend(checks.into_iter().filter(|(_, applies)| *applies).map(|(h, _)| (h, Need::Support)));
        out.extend(family_broken(c, reach, support));
    }
    out
}

/// The hypotheses of a dataplane that forwards no packet of the cell's family for a node's pods
/// (or anywhere), on runs probing two families. A pod target on another node than the source's
/// is forwarded by its node whoever sends, so that cell must fail; the others may have a
/// hostNetwork end, whose packets its node sends or receives rather than forwards: they support
/// the hypothesis when they fail, but do not refute it.
fn family_broken(c: &Cell, reach: Need, support: Need) -> Vec<(Hypothesis, Need)> {
    let Some(family) = c.family else { return Vec::new() };
    let forwarded_to = c.dst_node.as_deref().filter(|_| c.target == TargetKind::Pod && c.src_node.is_some() && c.src_node != c.dst_node);
    let need = |node: Option<&str>| if forwarded_to.is_some() && node.is_none_or(|n| Some(n) == forwarded_to) { reach } else { support };
    let nodes = std::iter::once(None).chain(ends(c).into_iter().map(Some));
    nodes.map(|n| (Hypothesis::Family(family, n.map(str::to_owned)), need(n))).collect()
}

/// The hypotheses of a fault that drops traffic and would break this expected-allow cell.
fn blocked_by(c: &Cell) -> Vec<Hypothesis> {
    use Hypothesis as H;
    let mut out = vec![H::AllBlocked, H::SourcePod(c.src.clone()), H::Target(c.dst.clone()), H::Protocol(c.protocol, None)];
    out.extend(c.src_node.iter().map(|n| H::SourceNode(n.clone())));
    out.extend(c.dst_node.iter().map(|n| H::TargetNode(n.clone())));
    out.extend(ends(c).into_iter().map(|n| H::Protocol(c.protocol, Some(n.to_owned()))));
    out.extend(cross_node(c).into_iter().map(H::CrossNode));
    if is_service(c.target) {
        out.push(H::ServiceKind(c.target));
        // The source's node translates cluster and load-balancer IPs; a node port is translated
        // by the node it is addressed to, wherever the client is.
        let proxy = if c.target == TargetKind::NodePort { &c.dst_node } else { &c.src_node };
        if c.target == TargetKind::NodePort {
            out.extend(c.dst_node.iter().map(|n| H::NodePortNode(n.clone())));
        }
        out.extend(proxy.iter().map(|n| H::ServiceProxy(n.clone())));
        // Cells carry their family on two-family runs only, where one family can be missing.
        out.extend(proxy.iter().zip(c.family).map(|(n, f)| H::ServiceFamily(f, n.clone())));
    }
    out
}

/// The hypotheses of a fault that lets this expected-deny cell through. A node that enforces no
/// policy leaks a denied cell only if every side that denies it is on that node, which the
/// report does not say; a cell with both ends there must leak, one with one end may.
fn leaked_by(c: &Cell, reach: Need, support: Need) -> Vec<(Hypothesis, Need)> {
    let mut out = vec![(Hypothesis::AllAllowed, reach)];
    for n in ends(c) {
        let both = c.src_node.as_deref() == Some(n) && c.dst_node.as_deref() == Some(n);
        out.push((Hypothesis::PolicyIgnored(n.to_owned()), if both { reach } else { support }));
    }
    out
}

/// The known nodes of a cell's two ends.
fn ends(c: &Cell) -> BTreeSet<&str> {
    c.src_node.iter().chain(&c.dst_node).map(String::as_str).collect()
}

/// Cross-node scopes of a cell that crosses the router between pod networks: pod targets, and
/// ClusterIP, LoadBalancer and external addresses (translated on the source's node, then routed
/// to the backend pod). A node port is addressed to a node, not a pod network, so it is left out.
fn cross_node(c: &Cell) -> Vec<Pairs> {
    let routed = matches!(c.target, TargetKind::Pod | TargetKind::ClusterIp | TargetKind::LoadBalancer | TargetKind::ExternalIp);
    match (&c.src_node, &c.dst_node) {
        (Some(a), Some(b)) if routed && a != b => {
            let (lo, hi) = if a < b { (a, b) } else { (b, a) };
            vec![Pairs::All, Pairs::Node(a.clone()), Pairs::Node(b.clone()), Pairs::Pair(lo.clone(), hi.clone())]
        }
        _ => Vec::new(),
    }
}

/// "Only X is wrong" says something only if something other than X was probed.
fn contrasted(h: &Hypothesis, steps: &[StepReport]) -> bool {
    let mut verdicts = steps.iter().flat_map(|s| &s.cells).filter(|c| !matches!(c.comparison(), Comparison::Undefined | Comparison::Error));
    match h {
        Hypothesis::Protocol(p, _) => verdicts.any(|c| c.protocol != *p),
        Hypothesis::ServiceKind(k) => verdicts.any(|c| c.target != *k),
        Hypothesis::Family(f, node) => other_family_works(*f, node.as_deref(), steps),
        _ => true,
    }
}

/// Whether, of the symptoms of `family` touching `node` (anywhere if `None`), more have a twin
/// of the other family (same step, ends, port and protocol) as expected than one that is not:
/// then the family fails where the other works, which the pods or policies alone cannot explain.
fn other_family_works(family: IpFamily, node: Option<&str>, steps: &[StepReport]) -> bool {
    type Twin<'a> = (usize, &'a str, &'a str, u16, Protocol);
    let cells = || steps.iter().enumerate().flat_map(|(s, step)| step.cells.iter().map(move |c| (s, c)));
    fn key(s: usize, c: &Cell) -> Twin<'_> {
        (s, &c.src, &c.dst, c.port, c.protocol)
    }
    let twins: BTreeMap<Twin, Comparison> = cells().filter(|(_, c)| c.family.is_some_and(|g| g != family)).map(|(s, c)| (key(s, c), c.comparison())).collect();
    let mut balance = 0i64;
    for (s, c) in cells().filter(|(_, c)| c.family == Some(family) && symptom(c) && node.is_none_or(|n| ends(c).contains(n))) {
        match twins.get(&key(s, c)) {
            Some(Comparison::AsExpected) => balance += 1,
            Some(Comparison::Wrong | Comparison::Inconclusive) => balance -= 1,
            _ => {}
        }
    }
    balance > 0
}

fn is_service(kind: TargetKind) -> bool {
    matches!(kind, TargetKind::ClusterIp | TargetKind::NodePort | TargetKind::LoadBalancer | TargetKind::ExternalIp)
}

/// The symptoms a hypothesis explains, if it holds.
fn explained(h: &Hypothesis, scope: &[(CellRef, Need)], steps: &[StepReport]) -> Option<Vec<CellRef>> {
    if scope.iter().any(|&(r, need)| need == Need::Required && !symptom(cell(steps, r))) {
        return None;
    }
    let support: Vec<&Cell> = scope.iter().filter(|&&(_, need)| need != Need::Optional).map(|&(r, _)| cell(steps, r)).filter(|c| symptom(c)).collect();
    if support.len() < h.min_support() {
        return None;
    }
    if let Some(member) = h.member()
        && support.iter().map(|c| member(c)).collect::<BTreeSet<_>>().len() < 2
    {
        return None;
    }
    Some(scope.iter().map(|&(r, _)| r).filter(|&r| symptom(cell(steps, r))).collect())
}

/// Greedy cover: repeatedly the hypothesis adding most wrong cells, then most inconclusive
/// ones, the narrowest on ties, then the earliest.
fn cover(mut candidates: Vec<(Hypothesis, Vec<CellRef>)>, steps: &[StepReport]) -> Vec<(Hypothesis, Vec<CellRef>)> {
    let mut covered: BTreeSet<CellRef> = BTreeSet::new();
    let mut chosen = Vec::new();
    loop {
        let gain = |cells: &[CellRef]| {
            let new: Vec<&Cell> = cells.iter().filter(|r| !covered.contains(r)).map(|&r| cell(steps, r)).collect();
            let wrong = new.iter().filter(|c| c.comparison() == Comparison::Wrong).count();
            (wrong, new.len() - wrong)
        };
        let best = candidates.iter().enumerate().map(|(i, (h, cells))| (gain(cells), Reverse(h.breadth()), Reverse(i))).max();
        let Some((_, _, Reverse(i))) = best.filter(|&(g, _, _)| g != (0, 0)) else { break };
        let (h, cells) = candidates.remove(i);
        covered.extend(&cells);
        chosen.push((h, cells));
    }
    chosen
}

/// One finding per kind for the kinds that name a set (node pairs, nodes, Services), at the
/// place of the first.
fn merge_sets(chosen: Vec<(Hypothesis, Vec<CellRef>)>) -> Vec<(Hypothesis, Vec<CellRef>)> {
    let mut out: Vec<(Hypothesis, Vec<CellRef>)> = Vec::new();
    for (h, cells) in chosen {
        let names_a_set = matches!(h, Hypothesis::CrossNode(_) | Hypothesis::Affinity(_) | Hypothesis::Hairpin(_) | Hypothesis::StaleUdp(_));
        match out.iter_mut().find(|(o, _)| names_a_set && o.kind() == h.kind()) {
            Some((_, merged)) => merged.extend(cells),
            None => out.push((h, cells)),
        }
    }
    out
}

fn finding(h: &Hypothesis, cells: Vec<CellRef>, steps: &[StepReport]) -> Finding {
    let cells: Vec<CellRef> = cells.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
    let listed: Vec<&Cell> = cells.iter().map(|&r| cell(steps, r)).collect();
    let summary = format!("{} {}", summary(h, &listed), count(&listed));
    Finding { kind: h.kind().to_owned(), summary, cells }
}

fn summary(h: &Hypothesis, cells: &[&Cell]) -> String {
    let names = |f: fn(&Cell) -> Option<&str>| list(cells.iter().filter_map(|c| f(c)));
    match h {
        Hypothesis::AllBlocked => "the dataplane blocks everything: every connection that should be allowed failed, so the positive controls failed".into(),
        Hypothesis::AllAllowed => "the dataplane allows everything: every connection that should be denied got through, so the negative controls failed".into(),
        Hypothesis::SourceNode(n) => format!("the pods on {n} cannot send: every expected connection from {} fails", names(|c| Some(&c.src))),
        Hypothesis::SourcePod(p) => format!("{p} cannot send: every expected connection from it fails"),
        Hypothesis::TargetNode(n) => format!("nothing on {n} can be reached: every expected connection to {} fails", names(|c| Some(&c.dst))),
        Hypothesis::Target(t) => format!("{t} cannot be reached: every expected connection to it fails"),
        Hypothesis::CrossNode(Pairs::All) => "traffic between pods on different nodes fails between every pair of nodes, while same-node traffic works".into(),
        Hypothesis::CrossNode(_) => {
            format!("traffic between pods on different nodes fails for {}, while same-node traffic works", list(cells.iter().filter_map(|c| pair(c))))
        }
        Hypothesis::Protocol(p, None) => format!("only {p} is wrong: every expected {p} connection fails"),
        Hypothesis::Protocol(p, Some(n)) => format!("only {p} is wrong; on {n}: every expected {p} connection from or to {n} fails"),
        Hypothesis::PolicyIgnored(n) => format!("NetworkPolicy is not enforced on {n}: connections that should be denied to or from its pods get through"),
        Hypothesis::ServiceKind(k) => format!("only {} Services are wrong: every expected connection to a {0} address fails", k.as_str()),
        Hypothesis::ServiceProxy(n) => format!("the service proxy on {n} is down: its pods reach no Service address and its node ports do not answer"),
        Hypothesis::ServiceFamily(f, n) => format!(
            "one Service family not programmed: {} Services on {n} (its pods reach no {0} Service address and its {0} node ports do not answer, while {} works)",
            f.as_str(),
            f.other().as_str()
        ),
        Hypothesis::NodePortNode(n) => format!("node ports on {n} do not answer: every expected connection to them fails"),
        Hypothesis::Affinity(_) => {
            format!("session affinity is violated for {}: a client reached more than one backend", names(|c| Some(c.service.as_deref().unwrap_or(&c.dst))))
        }
        Hypothesis::Hairpin(_) => {
            format!("hairpin is broken{}: pods cannot reach themselves through their own Service", on(" on", names(|c| c.src_node.as_deref())))
        }
        Hypothesis::StaleUdp(_) => format!(
            "UDP{} to a Service fails after its backend was replaced: stale conntrack entries keep sending to the dead backend",
            on(" from pods on", names(|c| c.src_node.as_deref()))
        ),
        Hypothesis::Family(f, node) => {
            let (f, other) = (f.as_str(), f.other().as_str());
            match node {
                Some(n) => format!("{f} is broken on {n}: expected {f} connections to and from its pods fail, while {other} between the same pods works"),
                None => format!("{f} is broken everywhere: expected {f} connections between pods fail, while {other} between the same pods works"),
            }
        }
    }
}

fn pair(c: &Cell) -> Option<String> {
    let (a, b) = (c.src_node.as_deref()?, c.dst_node.as_deref()?);
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    Some(format!("{lo}<->{hi}"))
}

/// `PREFIX NODES`, or nothing when no node is known.
fn on(prefix: &str, nodes: String) -> String {
    if nodes.is_empty() { nodes } else { format!("{prefix} {nodes}") }
}

/// Sorted distinct names, `a, b and c`; past five, the rest counted.
fn list<S: AsRef<str> + Ord>(names: impl Iterator<Item = S>) -> String {
    let names: Vec<String> = names.collect::<BTreeSet<_>>().into_iter().map(|n| n.as_ref().to_owned()).collect();
    const SHOWN: usize = 5;
    match names.len() {
        0 => String::new(),
        1 => names[0].clone(),
        n if n <= SHOWN => format!("{} and {}", names[..n - 1].join(", "), names[n - 1]),
        n => format!("{} and {} more", names[..SHOWN - 1].join(", "), n - (SHOWN - 1)),
    }
}

/// `(N cells)`, with how many of them are only inconclusive.
fn count(cells: &[&Cell]) -> String {
    let n = cells.len();
    let plural = if n == 1 { "" } else { "s" };
    match cells.iter().filter(|c| c.comparison() == Comparison::Inconclusive).count() {
        0 => format!("({n} cell{plural})"),
        k => format!("({n} cell{plural}, {k} inconclusive)"),
    }
}

/// The symptoms no finding lists.
fn unexplained(steps: &[StepReport], findings: &[Finding]) -> Option<Finding> {
    let listed: BTreeSet<CellRef> = findings.iter().flat_map(|f| f.cells.iter().copied()).collect();
    let cells: Vec<CellRef> = refs(steps).filter(|r| !listed.contains(r) && symptom(cell(steps, *r))).collect();
    let shown: Vec<&Cell> = cells.iter().map(|&r| cell(steps, r)).collect();
    let described =
        list(shown.iter().map(|c| {
            format!("{} -> {} {}/{} (expected {}, observed {})", c.src, c.dst, c.port, c.protocol, expected_word(c.expected), observed_word(c.observed))
        }));
    (!cells.is_empty()).then(|| Finding { kind: "unexplained".into(), summary: format!("cells that fit no known fault: {described} {}", count(&shown)), cells })
}

fn expected_word(e: Expected) -> &'static str {
    match e {
        Expected::Allow => "allow",
        Expected::Deny => "deny",
        Expected::Undefined => "undefined",
    }
}

fn observed_word(o: Observed) -> &'static str {
    match o {
        Observed::Allow => "allow",
        Observed::Deny => "deny",
        Observed::Inconclusive => "inconclusive",
        Observed::Error => "error",
    }
}

/// The cells whose probe failed, naming their sources.
fn probe_errors(steps: &[StepReport]) -> Option<Finding> {
    let cells: Vec<CellRef> = refs(steps).filter(|&r| cell(steps, r).comparison() == Comparison::Error).collect();
    let failed: Vec<&Cell> = cells.iter().map(|&r| cell(steps, r)).collect();
    let summary = format!(
        "the probes from {} could not run, so these cells say nothing about the network {}",
        list(failed.iter().map(|c| c.src.as_str())),
        count(&failed)
    );
    (!cells.is_empty()).then(|| Finding { kind: "probe-errors".into(), summary, cells })
}

fn refs(steps: &[StepReport]) -> impl Iterator<Item = CellRef> + '_ {
    steps.iter().enumerate().flat_map(|(s, step)| (0..step.cells.len()).map(move |i| (s, i)))
}
