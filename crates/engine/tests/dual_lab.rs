//! The netpol suite on a dual-stack lab (issue 18): every pod cell is probed over IPv4 and over
//! IPv6 with real packets, and every cell of both families must be what the oracle predicts for
//! its family. Needs root (CI is root).

#[path = "support/lab.rs"]
mod support;

use std::collections::BTreeMap;

use netmatrix_cluster::Backend;
use netmatrix_cluster::lab::LabBackend;
use netmatrix_engine::{ProbeConfig, run, suites};
use netmatrix_lab::Lab;
use netmatrix_model::{IpFamilies, IpFamily};
use netmatrix_results::{CaseResult, Comparison, Expected};
use support::{Guard, ensure_agent, root};

/// This test's lab; other tests use other names.
const LAB: &str = "tdual";

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
