//! A run as the engine reports it: x/y namespaces with pods a b c on 80/TCP and 81/UDP, wrong,
//! inconclusive, error, undefined and missing cells, a service step with node ports and an
//! affinity check, a passing 3x3 case, an error case and a skipped case.

use std::collections::BTreeMap;

use netmatrix_model::Protocol;
use netmatrix_results::{
    CaseReport, CaseResult, Cell, Check, ClusterInfo, Expected, Feature, FeatureCoverage, Finding, Observed, RunReport, SCHEMA, StepReport, Summary, TargetKind,
};

pub fn cell(src: &str, dst: &str, port: u16, protocol: Protocol, expected: Expected, observed: Observed) -> Cell {
    Cell {
        src: src.into(),
        dst: dst.into(),
        port,
        protocol,
        expected,
        observed,
        tries: 1,
        latency_ms: matches!(observed, Observed::Allow).then_some(0.4),
        answered_by: matches!(observed, Observed::Allow).then(|| dst.into()),
        history: vec![observed],
        tried_at_ms: vec![0],
        expected_before: None,
        src_node: None,
        dst_node: None,
        target: TargetKind::Pod,
        service: None,
        hairpin: false,
        check: Check::Reach,
        detail: None,
        explanation: None,
        family: None,
    }
}

/// As the engine lists them: in the order of the list.
fn ids(features: &[Feature]) -> Vec<String> {
    let mut features = features.to_vec();
    features.sort();
    features.iter().map(|f| f.id().to_owned()).collect()
}

pub fn pods(namespaces: &[&str], names: &[&str]) -> Vec<String> {
    namespaces.iter().flat_map(|ns| names.iter().map(move |n| format!("{ns}/{n}"))).collect()
}

fn node_of(pod: &str) -> String {
    match pod.rsplit('/').next() {
        Some("a") => "n1".into(),
        Some("b") => "n2".into(),
        _ => "n3".into(),
    }
}

/// Ingress into x is denied from y; everything else is allowed.
fn policy_step() -> StepReport {
    let pods = pods(&["x", "y"], &["a", "b", "c"]);
    let mut cells = Vec::new();
    for (port, protocol) in [(80, Protocol::Tcp), (81, Protocol::Udp)] {
        for src in &pods {
            for dst in &pods {
                // Never probed: a blank in the tables.
                if (src, dst, port) == (&pods[0], &pods[0], 81) {
                    continue;
                }
                let expected = if src.starts_with("y/") && dst.starts_with("x/") { Expected::Deny } else { Expected::Allow };
                let observed = if expected == Expected::Allow { Observed::Allow } else { Observed::Deny };
                let mut c = cell(src, dst, port, protocol, expected, observed);
                c.src_node = Some(node_of(src));
                c.dst_node = Some(node_of(dst));
                cells.push(c);
            }
        }
    }
    let find =
        |cells: &[Cell], src: &str, dst: &str, port: u16| -> usize { cells.iter().position(|c| c.src == src && c.dst == dst && c.port == port).unwrap() };
    let wrong_allow = find(&cells, "y/a", "x/b", 80);
    cells[wrong_allow].observed = Observed::Allow;
    cells[wrong_allow].history = vec![Observed::Allow, Observed::Allow, Observed::Allow];
    cells[wrong_allow].tries = 3;
    cells[wrong_allow].latency_ms = Some(0.7);
    cells[wrong_allow].answered_by = Some("x/b".into());
    let wrong_deny = find(&cells, "x/c", "y/c", 80);
    cells[wrong_deny].observed = Observed::Deny;
    cells[wrong_deny].history = vec![Observed::Deny, Observed::Deny, Observed::Deny];
    cells[wrong_deny].tries = 3;
    cells[wrong_deny].latency_ms = None;
    cells[wrong_deny].answered_by = None;
    cells[wrong_deny].detail = Some("connect: i/o timeout after 1s".into());
    let flaky = find(&cells, "x/a", "y/b", 81);
    cells[flaky].observed = Observed::Inconclusive;
    cells[flaky].history = vec![Observed::Allow, Observed::Deny, Observed::Allow];
    cells[flaky].tries = 3;
    let failed = find(&cells, "y/c", "y/a", 81);
    cells[failed].observed = Observed::Error;
    cells[failed].history = vec![Observed::Error];
    cells[failed].latency_ms = None;
    cells[failed].answered_by = None;
    cells[failed].detail = Some("exec: netmatrix-agent not found in y/c <container \"agent\">".into());
    let undefined = find(&cells, "y/b", "y/b", 81);
    cells[undefined].expected = Expected::Undefined;
    cells[undefined].detail = Some("y/b is a hostNetwork pod".into());
    StepReport { name: "deny ingress into x from y".into(), tries: 3, cells }
}

fn service_cell(src: &str, dst: &str, port: u16, target: TargetKind, observed: Observed) -> Cell {
    let mut c = cell(src, dst, port, Protocol::Tcp, Expected::Allow, observed);
    c.target = target;
    c.service = Some("x/web".into());
    c.answered_by = matches!(observed, Observed::Allow).then(|| "x/a".into());
    c
}

/// x/web is backed by x/a: a ClusterIP, its node port on two nodes, and ClientIP affinity.
fn service_step() -> StepReport {
    let mut cells = Vec::new();
    for src in ["x/a", "x/b", "y/a"] {
        let mut cluster_ip = service_cell(src, "svc:x/web", 80, TargetKind::ClusterIp, Observed::Allow);
        if src == "x/a" {
            cluster_ip.expected = Expected::Undefined;
            cluster_ip.hairpin = true;
            cluster_ip.detail = Some("x/a backs x/web: a pod to itself through its Service".into());
        }
        cells.push(cluster_ip);
        for node in ["n1", "n2"] {
            let dst = format!("node:{node}:30080");
            let observed = if (src, node) == ("y/a", "n2") { Observed::Deny } else { Observed::Allow };
            let mut c = service_cell(src, &dst, 30080, TargetKind::NodePort, observed);
            c.dst_node = Some(node.into());
            if observed == Observed::Deny {
                c.detail = Some("connect: connection refused".into());
            }
            cells.push(c);
        }
        let mut affinity = service_cell(src, "svc:x/web", 80, TargetKind::ClusterIp, Observed::Allow);
        affinity.check = Check::Affinity;
        affinity.tries = 5;
        affinity.history = vec![Observed::Allow; 5];
        cells.push(affinity);
    }
    StepReport { name: "x/web services".into(), tries: 1, cells }
}

fn policy_case() -> CaseReport {
    let steps = vec![policy_step(), service_step()];
    let cross_node: Vec<(usize, usize)> = steps
        .iter()
        .enumerate()
        .flat_map(|(s, step)| {
            step.cells.iter().enumerate().filter(|(_, c)| c.observed == Observed::Deny && c.expected == Expected::Allow).map(move |(i, _)| (s, i))
        })
        .collect();
    let diagnosis = "2 allowed connections are dropped: x/c -> y/c 80/TCP and y/a -> node:n2:30080".to_string();
    CaseReport {
        id: "netpol/deny-ingress-from-y".into(),
        labels: BTreeMap::from([("area".into(), "netpol".into()), ("conformance".into(), "true".into())]),
        result: CaseReport::result_from_cells(&steps),
        duration_ms: 4210,
        diagnosis: vec![diagnosis.clone()],
        findings: vec![Finding { kind: "target-node".into(), summary: diagnosis, cells: cross_node }],
        steps,
        skip_reason: None,
        error: None,
        shard: None,
        features: ids(&[
            Feature::NetpolPodSelectorEmpty,
            Feature::NetpolPeerNamespaces,
            Feature::NetpolIngress,
            Feature::ServiceNodePort,
            Feature::ServiceTcp,
            Feature::ServiceAffinity,
            Feature::ServiceHairpin,
        ]),
    }
}

/// Every pod of x reaches every other on 80/TCP; a pod to itself is not probed.
pub fn allow_all_step() -> StepReport {
    let pods = pods(&["x"], &["a", "b", "c"]);
    let mut cells = Vec::new();
    for src in &pods {
        for dst in &pods {
            if src != dst {
                cells.push(cell(src, dst, 80, Protocol::Tcp, Expected::Allow, Observed::Allow));
            }
        }
    }
    StepReport { name: "allow all within x".into(), tries: 1, cells }
}

fn passing_case() -> CaseReport {
    let steps = vec![allow_all_step()];
    CaseReport {
        labels: BTreeMap::from([("area".into(), "netpol".into())]),
        duration_ms: 850,
        features: ids(&[Feature::NetpolPodSelectorEmpty, Feature::NetpolIngress, Feature::NetpolAnyPeer]),
        ..CaseReport::of_steps("netpol/allow-all", steps)
    }
}

fn error_case() -> CaseReport {
    CaseReport {
        id: "services/session-affinity".into(),
        labels: BTreeMap::new(),
        result: CaseResult::Error,
        duration_ms: 60000,
        diagnosis: vec![],
        steps: vec![],
        findings: vec![],
        skip_reason: None,
        error: Some("pods never ready: x/web-2 is Pending on node <none> after 60s".into()),
        features: Vec::new(),
        shard: None,
    }
}

fn skipped_case() -> CaseReport {
    CaseReport {
        id: "netpol/sctp".into(),
        labels: BTreeMap::from([("protocol".into(), "sctp".into())]),
        result: CaseResult::Skipped,
        duration_ms: 0,
        diagnosis: vec![],
        steps: vec![],
        findings: vec![],
        skip_reason: Some("the lab's kernel has no sctp module".into()),
        error: None,
        features: Vec::new(),
        shard: None,
    }
}

pub fn report() -> RunReport {
    let cases = vec![policy_case(), passing_case(), error_case(), skipped_case()];
    RunReport {
        schema: SCHEMA.into(),
        backend: "lab".into(),
        profile: "lab".into(),
        started: "2025-05-01T10:00:00Z".into(),
        duration_ms: 65_060,
        cluster: ClusterInfo { nodes: vec!["n1".into(), "n2".into(), "n3".into()], server_version: String::new(), ..ClusterInfo::default() },
        summary: Summary::of(&cases),
        features: FeatureCoverage::of(&cases),
        cases,
    }
}
