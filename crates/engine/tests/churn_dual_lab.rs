//! `netmatrix churn` on a dual-stack lab, with real packets: every pattern's changes converge
//! on both families, each family's latency reported, no control changing; a node that forwards
//! no IPv6 (`drop-ipv6`) leaves IPv6 cells alone unconverged, named by their family. A file of
//! its own so that it never runs beside `churn_lab.rs`'s timing. Needs root (CI is root).

#[path = "support/lab.rs"]
mod support;

use std::time::Duration;

use netmatrix_cluster::lab::LabBackend;
use netmatrix_cluster::{Backend, ObjectKind};
use netmatrix_engine::SystemClock;
use netmatrix_engine::churn::measure::Rounds;
use netmatrix_engine::churn::patterns::{Act, Change, Pattern};
use netmatrix_engine::churn::{ChurnConfig, run, step, world};
use netmatrix_lab::{Fault, FaultKind, Lab};
use netmatrix_model::IpFamilies;
use netmatrix_oracle::Options;
use netmatrix_oracle::incremental::Incremental;
use netmatrix_results::churn::{CellRef, ChangeReport, Shape};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use support::{Guard, ensure_agent, root};

/// This test's lab; other tests use other names.
const LAB: &str = "tchd";

const ROUNDS: Rounds =
    Rounds { interval: Duration::from_millis(10), deadline: Duration::from_secs(10), timeout: Duration::from_millis(100), parallel: 6, settle: 2 };

fn problems(report: &ChangeReport) -> impl Iterator<Item = &CellRef> {
    report.not_converged.iter().chain(&report.regressed).chain(&report.controls_changed)
}

/// `ipv4 9.8, ipv6 10.1`.
fn by_family(report: &ChangeReport) -> String {
    let families = report.latency_by_family.iter().map(|(f, l)| format!("{f} {}", l.map_or("not converged".into(), |l| format!("{l:.1}"))));
    families.collect::<Vec<_>>().join(", ")
}

#[test]
fn churn_on_a_dual_stack_lab_converges_each_change_on_both_families() {
    if !root("the dual-stack churn lab test") {
        return;
    }
    ensure_agent();
    // A lab of this name left by a killed run of this test.
    let _ = Lab::down(LAB);
    let _guard = Guard(LAB);
    let mut backend = LabBackend::up(LAB, 3, IpFamilies::Dual).unwrap();
    let shape = Shape { nodes: 3, namespaces: 3, pods_per_namespace: 4, policies: 4, services: 2, changes: 3, controls: 6 };
    let config = ChurnConfig { shape, seed: 1, patterns: Pattern::ALL.to_vec(), rounds: ROUNDS };
    let report = run(&mut backend, &config, &SystemClock::new(), &|| false, &|_| {}).unwrap();
    for pattern in &report.patterns {
        let setup = pattern.setup.as_ref().expect("a setup");
        for change in std::iter::once(setup).chain(&pattern.changes) {
            let what = format!("{} #{} {}", pattern.pattern, change.index, change.description);
            eprintln!("{what}: {:?} -> {:?} ms ({})", change.cells, change.latency_ms, by_family(change));
            assert!(problems(change).next().is_none(), "{what}: no cell unconverged, regressed or a changed control: {change:?}");
            assert!(change.controls > 0 && change.controls % 2 == 0, "{what}: controls on both families: {}", change.controls);
            if change.cells.is_empty() {
                continue;
            }
            assert!(change.cells.values().all(|n| n % 2 == 0), "{what}: each changed cell on both families: {:?}", change.cells);
            let families: Vec<&str> = change.latency_by_family.keys().map(String::as_str).collect();
            assert_eq!(families, ["IPv4", "IPv6"], "{what}");
            let slowest = change.latency_by_family.values().map(|l| l.expect("converged")).fold(0.0, f64::max);
            assert_eq!(change.latency_ms, Some(slowest), "{what}: the change takes as long as its slower family");
        }
        let families: Vec<(&str, usize, usize)> = pattern.summary.iter().filter_map(|s| Some((s.family.as_deref()?, s.changes, s.converged))).collect();
        let changed = pattern.changes.iter().filter(|c| !c.cells.is_empty()).count();
        assert!(changed > 0, "{}: some change moved cells", pattern.pattern);
        assert_eq!(families, [("IPv4", changed, changed), ("IPv6", changed, changed)], "{}", pattern.pattern);
        let p50: Vec<String> = pattern
            .summary
            .iter()
            .map(|s| {
                format!("{} {}", s.direction.map_or(s.family.as_deref().unwrap_or("all"), |d| d.as_str()), s.p50_ms.map_or("-".into(), |v| format!("{v:.1}")))
            })
            .collect();
        eprintln!("MEASURED {} p50 ms: {}", pattern.pattern, p50.join(", "));
    }

    // node1 forwards no IPv6: admitting its pods again converges on IPv4 and never on IPv6.
    let mut oracle = Incremental::new(&backend.model().unwrap(), Options { ipblocks_match_pods: true }).unwrap();
    let namespace = world::namespace_name(0);
    let deny = Act::Apply(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "deny-ingress", "namespace": namespace},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }));
    let short = ChurnConfig { rounds: Rounds { deadline: Duration::from_secs(2), ..ROUNDS }, ..config };
    let (clock, mut rng) = (SystemClock::new(), StdRng::seed_from_u64(1));
    let mut measure = |backend: &mut LabBackend, description: &str, act: Act| {
        let change = Change { description: description.into(), acts: vec![act] };
        step(backend, &mut oracle, &change, &short, &clock, &mut rng, &|| false).unwrap()
    };
    let denied = measure(&mut backend, "deny ingress to churn1", deny);
    assert!(problems(&denied).next().is_none() && denied.latency_ms.is_some(), "{denied:?}");
    backend.lab_mut().inject(Fault::new(FaultKind::DropIpv6, 1)).unwrap();
    let admitted = measure(&mut backend, "admit churn1 again", Act::Delete { kind: ObjectKind::NetworkPolicy, namespace, name: "deny-ingress".into() });
    eprintln!(
        "with drop-ipv6 on node1: {:?} -> {:?} ({}), {} not converged",
        admitted.cells,
        admitted.latency_ms,
        by_family(&admitted),
        admitted.not_converged.len()
    );
    assert!(!admitted.not_converged.is_empty(), "IPv6 to and from node1's pods is dropped: {admitted:?}");
    let families: Vec<Option<&str>> = problems(&admitted).map(|c| c.family.as_deref()).collect();
    assert!(families.iter().all(|f| *f == Some("IPv6")), "only IPv6 cells went wrong, each named so: {families:?}");
    assert!(admitted.latency_by_family["IPv4"].is_some() && admitted.latency_by_family["IPv6"].is_none(), "{}", by_family(&admitted));
}
