//! The netpol and services suites on a dual-stack lab (issue 18): every pod cell, and every
//! Service frontend of each family its Service has, is probed with real packets, and every cell
//! of both families must be what the oracle predicts for its family; a node that forwards no
//! IPv6, and one whose proxy serves IPv4 Services only, are diagnosed as such. Needs root (CI is
//! root).

#[path = "support/lab.rs"]
mod support;

use std::collections::BTreeMap;

use netmatrix_cluster::Backend;
use netmatrix_cluster::lab::LabBackend;
use netmatrix_engine::{ProbeConfig, run, suites};
use netmatrix_lab::{Fault, FaultKind, Lab};
use netmatrix_model::{IpFamilies, IpFamily};
use netmatrix_results::{CaseResult, Comparison, Expected, Observed};
use support::{Guard, ensure_agent, root};

/// This test's lab; other tests use other names.
const LAB: &str = "tdual";
/// The services test's lab.
const SERVICES_LAB: &str = "tdsvc";

/// Every cell of every step that ran, as (case, step, cell) descriptions of those not as the
/// oracle expected.
fn wrong_cells(report: &netmatrix_results::RunReport) -> Vec<String> {
    let steps = report.cases.iter().flat_map(|case| case.steps.iter().map(move |s| (case, s)));
    let cells = steps.flat_map(|(case, step)| step.cells.iter().map(move |c| (case, step, c)));
    cells
        .filter(|(_, _, c)| c.comparison() != Comparison::AsExpected && c.comparison() != Comparison::Undefined)
        .map(|(case, step, c)| {
            format!(
                "{} / {}: {} -> {} {}/{} {:?}: expected {:?}, observed {:?}",
                case.id, step.name, c.src, c.dst, c.port, c.protocol, c.family, c.expected, c.observed
            )
        })
        .collect()
}

#[test]
fn service_frontends_of_each_family_hold_cell_by_cell_and_a_missing_family_is_diagnosed() {
    if !root("the dual-stack lab test") {
        return;
    }
    ensure_agent();
    let _ = Lab::down(SERVICES_LAB);
    let _guard = Guard(SERVICES_LAB);
    let mut backend = LabBackend::up(SERVICES_LAB, 3, IpFamilies::Dual).unwrap();
    let nodes: Vec<String> = backend.nodes().iter().map(|n| n.name.clone()).collect();
    let world = suites::world(&nodes, backend.capabilities().sctp.is_yes());
    let cases = suites::cases(&["services".into()]).unwrap();
    let report = run(&mut backend, &world, &cases, &ProbeConfig::default(), &|_| {}).unwrap();
    assert_eq!(wrong_cells(&report), Vec::<String>::new());
    assert_eq!(report.summary.failed + report.summary.errors + report.summary.flaky, 0, "{:?}", report.summary);
    let dual = report.cases.iter().find(|c| c.id == "services/dual-stack").expect("the dual-stack case");
    assert_eq!(dual.result, CaseResult::Pass, "a dual-stack lab runs it");
    // Each Service's cells come in the families it has: web6 IPv6 only, the others both, and
    // IPv6 node ports and load-balancer addresses answer as IPv4's do.
    let families = |service: &str, dst: &str| -> Vec<IpFamily> {
        let mut f: Vec<IpFamily> = dual.steps[0]
            .cells
            .iter()
            .filter(|c| c.service.as_deref() == Some(service) && c.dst.starts_with(dst) && c.expected == Expected::Allow)
            .filter_map(|c| c.family)
            .collect();
        f.sort();
        f.dedup();
        f
    };
    assert_eq!(families("x/web6", "svc:"), [IpFamily::IPv6]);
    assert_eq!(families("x/prefer", "svc:"), IpFamily::BOTH);
    assert_eq!(families("x/prefer", "node:"), IpFamily::BOTH);
    assert_eq!(families("x/require", "lb:"), IpFamily::BOTH);

    // A fresh lab whose node1 proxy serves IPv4 Services only.
    assert!(backend.teardown().is_empty());
    let mut backend = LabBackend::up(SERVICES_LAB, 3, IpFamilies::Dual).unwrap();
    backend.lab_mut().inject(Fault::new(FaultKind::SingleFamilyServices, 1)).unwrap();
    let case = suites::cases(&["services".into()]).unwrap().into_iter().filter(|c| c.id == "services/dual-stack").collect::<Vec<_>>();
    let report = run(&mut backend, &world, &case, &ProbeConfig::default(), &|_| {}).unwrap();
    let faulty = &report.cases[0];
    let wrong: Vec<_> = faulty.steps[0].cells.iter().filter(|c| c.comparison() == Comparison::Wrong).collect();
    assert!(!wrong.is_empty() && wrong.iter().all(|c| c.family == Some(IpFamily::IPv6)), "only IPv6 cells go wrong: {:?}", wrong_cells(&report));
    assert!(faulty.diagnosis.iter().any(|d| d.contains("one Service family not programmed: IPv6 Services on node1")), "{:#?}", faulty.diagnosis);
}

#[test]
fn the_netpol_suite_holds_cell_by_cell_in_both_families() {
    if !root("the dual-stack lab test") {
        return;
    }
    ensure_agent();
    // A lab of this name left by a killed run of this test.
    let _ = Lab::down(LAB);
    let _guard = Guard(LAB);
    let mut backend = LabBackend::up(LAB, 3, IpFamilies::Dual).unwrap();
    let nodes: Vec<String> = backend.nodes().iter().map(|n| n.name.clone()).collect();
    assert!(backend.nodes().iter().all(|n| n.addresses.len() == 2 && n.addresses[0].is_ipv4()), "nodes list IPv4 first: {:?}", backend.nodes());
    let world = suites::world(&nodes, backend.capabilities().sctp.is_yes());
    let cases = suites::cases(&["netpol".into()]).unwrap();
    let report = run(&mut backend, &world, &cases, &ProbeConfig::default(), &|_| {}).unwrap();
    for case in &report.cases {
        if case.result == CaseResult::Skipped {
            continue;
        }
        for step in &case.steps {
            let wrong: Vec<String> = step
                .cells
                .iter()
                .filter(|c| c.comparison() != Comparison::AsExpected)
                .map(|c| format!("{} -> {} {}/{} {:?}: expected {:?}, observed {:?}", c.src, c.dst, c.port, c.protocol, c.family, c.expected, c.observed))
                .collect();
            assert!(wrong.is_empty(), "{} / {}: {wrong:#?}", case.id, step.name);
            let per_family: BTreeMap<Option<IpFamily>, usize> = step.cells.iter().fold(BTreeMap::new(), |mut m, c| {
                *m.entry(c.family).or_default() += 1;
                m
            });
            let both = per_family.get(&Some(IpFamily::IPv4)).is_some_and(|n| per_family.get(&Some(IpFamily::IPv6)) == Some(n));
            assert!(both && per_family.len() == 2, "{} / {}: every cell in each family: {per_family:?}", case.id, step.name);
        }
    }
    assert_eq!(report.summary.failed + report.summary.errors + report.summary.flaky, 0, "{:?}", report.summary);
    // The IPv6 ipBlock admits y/a's IPv6 packets into x/a and denies its IPv4 ones: the
    // families really were decided (and enforced) apart.
    let ipv6_only = report.cases.iter().find(|c| c.id == "netpol/ipblock-ipv6").expect("the IPv6 ipBlock case ran");
    let expected =
        |family| ipv6_only.steps[0].cells.iter().find(|c| c.src == "y/a" && c.dst == "x/a" && c.port == 80 && c.family == Some(family)).map(|c| c.expected);
    assert_eq!((expected(IpFamily::IPv4), expected(IpFamily::IPv6)), (Some(Expected::Deny), Some(Expected::Allow)));
}

#[test]
fn a_node_forwarding_no_ipv6_is_diagnosed_as_ipv6_broken_there() {
    const LAB: &str = "tdv6f";
    if !root("the dual-stack fault test") {
        return;
    }
    ensure_agent();
    let _ = Lab::down(LAB);
    let _guard = Guard(LAB);
    let mut backend = LabBackend::up(LAB, 3, IpFamilies::Dual).unwrap();
    backend.lab_mut().inject(Fault::new(FaultKind::DropIpv6, 1)).unwrap();
    let nodes: Vec<String> = backend.nodes().iter().map(|n| n.name.clone()).collect();
    let world = suites::world(&nodes, backend.capabilities().sctp.is_yes());
    // Pods to pods, and pods to nodes and back (hostNetwork ends); the Service case is IPv4 only.
    let cases = suites::cases(&["connectivity".into()]).unwrap();
    let report = run(&mut backend, &world, &cases, &ProbeConfig::default(), &|_| {}).unwrap();
    let results: Vec<(&str, CaseResult)> = report.cases.iter().map(|c| (c.id.as_str(), c.result)).collect();
    assert_eq!(
        results,
        [
            ("connectivity/pod-to-pod", CaseResult::Fail),
            ("connectivity/pod-to-node-and-node-to-pod", CaseResult::Fail),
            ("connectivity/pod-to-service", CaseResult::Pass)
        ]
    );
    for case in report.cases.iter().filter(|c| c.result == CaseResult::Fail) {
        let findings: Vec<(&str, &str)> = case.findings.iter().map(|f| (f.kind.as_str(), f.summary.as_str())).collect();
        assert!(matches!(findings[..], [("family", summary)] if summary.starts_with("IPv6 is broken on node1:")), "{}: {findings:#?}", case.id);
        let wrong = case.steps.iter().flat_map(|s| &s.cells).filter(|c| c.comparison() != Comparison::AsExpected);
        // Not the denial's outcome word: a dropped IPv6 connection may time out or be refused.
        for c in wrong {
            let node1 = [&c.src_node, &c.dst_node].iter().any(|n| n.as_deref() == Some("node1"));
            assert!(c.family == Some(IpFamily::IPv6) && node1 && c.observed != Observed::Allow, "{}: {c:?}", case.id);
        }
    }
}
