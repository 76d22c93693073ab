//! The churn driver on the in-memory fake backend: after every step of a long seeded churn of
//! each pattern, the incremental oracle (fed by the engine from what it applied and what the
//! backend allocated) equals a full recomputation of the backend's objects; and a whole
//! `churn::run` reports each pattern's changes, converged. The same on the fake made
//! dual-stack, where every watched cell is probed on both families.

#[macro_use]
#[path = "support/forward.rs"]
mod forward;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Duration;

use netmatrix_cluster::fake::FakeBackend;
use netmatrix_cluster::{Backend, BackendError, Row, RowResult, Target};
use netmatrix_engine::ManualClock;
use netmatrix_engine::churn::measure::Rounds;
use netmatrix_engine::churn::patterns::{Churner, Pattern};
use netmatrix_engine::churn::{ChurnConfig, step, world};
use netmatrix_model::{IpFamily, IpFamilyPolicy};
use netmatrix_oracle::incremental::{Incremental, full_cells};
use netmatrix_oracle::{Options, Profile};
use netmatrix_results::churn::{ChangeReport, Direction, Shape};
use rand::SeedableRng;
use rand::rngs::StdRng;

const OPTIONS: Options = Options { ipblocks_match_pods: true };

fn config(changes: usize) -> ChurnConfig {
    ChurnConfig {
        shape: Shape { nodes: 3, namespaces: 4, pods_per_namespace: 5, policies: 8, services: 3, changes, controls: 5 },
        seed: 42,
        patterns: Pattern::ALL.to_vec(),
        rounds: Rounds { interval: Duration::from_millis(10), deadline: Duration::from_secs(5), timeout: Duration::from_millis(100), parallel: 4, settle: 1 },
    }
}

/// The IPv6 twin of an IPv4 address: `10.244.1.12` is `fd00::10:244:1:12`, in decimal digits.
fn twin(ip: Ipv4Addr) -> Ipv6Addr {
    let [a, b, c, d] = ip.octets().map(u16::from);
    Ipv6Addr::new(0xfd00, 0, 0, 0, a, b, c, d)
}

fn untwin(ip: Ipv6Addr) -> Ipv4Addr {
    let [.., a, b, c, d] = ip.segments();
    let [a, b, c, d] = [a, b, c, d].map(|s| u8::try_from(s).unwrap());
    Ipv4Addr::new(a, b, c, d)
}

/// The fake as a dual-stack cluster, which it is not: every pod and node has the IPv6 twin of
/// its address too, every Service asking for two families an IPv6 ClusterIP; an IPv6 probe is
/// answered as its IPv4 twin would be, and logged.
struct DualFake {
    fake: FakeBackend,
    /// Every probe since the last take: source, address, port.
    probes: Mutex<Vec<(String, IpAddr, u16)>>,
}

impl DualFake {
    fn new(nodes: usize) -> DualFake {
        DualFake { fake: FakeBackend::new(nodes), probes: Mutex::default() }
    }
}

impl Backend for DualFake {
    forward_to_fake!(fake);
    fn model(&self) -> Result<netmatrix_model::Cluster, BackendError> {
        let mut model = self.fake.model()?;
        let v6 = |ips: &mut Vec<IpAddr>| {
            if let Some(&IpAddr::V4(v4)) = ips.first() {
                ips.push(IpAddr::V6(twin(v4)));
            }
        };
        model.pods.iter_mut().for_each(|p| v6(&mut p.ips));
        model.nodes.iter_mut().for_each(|n| v6(&mut n.addresses));
        for service in model.services.iter_mut().filter(|s| s.ip_family_policy != IpFamilyPolicy::SingleStack) {
            v6(&mut service.cluster_ips);
            service.ip_families = service.cluster_ips.iter().map(IpFamily::of).collect();
        }
        Ok(model)
    }
    fn probe_rows(&self, rows: &[Row], parallel: usize, on_row: &(dyn Fn(usize) + Sync)) -> Vec<RowResult> {
        let mut as_v4 = rows.to_vec();
        let mut probes = self.probes.lock().unwrap();
        for probe in as_v4.iter_mut().flat_map(|r| r.probes.iter_mut().map(|p| (r.source.to_string(), p))) {
            let (source, probe) = probe;
            let Target::Ip(ip) = probe.target else { panic!("churn probes addresses: {:?}", probe.target) };
            probes.push((source, ip, probe.port));
            if let IpAddr::V6(v6) = ip {
                probe.target = Target::Ip(IpAddr::V4(untwin(v6)));
            }
        }
        drop(probes);
        self.fake.probe_rows(&as_v4, parallel, on_row)
    }
}

/// Runs each pattern's setup and changes step by step on a fresh backend from `new`, holding
/// the incremental oracle to a full recomputation after each; `check` sees each step's report.
fn every_pattern<B: Backend>(new: impl Fn() -> B, check: impl Fn(&B, &ChangeReport, &str)) {
    let config = config(40);
    for pattern in Pattern::ALL {
        let mut backend = new();
        let nodes: Vec<String> = backend.nodes().iter().map(|n| n.name.clone()).collect();
        let w = world::world(&config.shape, &nodes);
        for (name, labels) in &w.namespaces {
            backend.set_namespace(name, labels.clone()).unwrap();
        }
        backend.create_pods(w.pods.clone()).unwrap();
        let mut oracle = Incremental::new(&backend.model().unwrap(), OPTIONS).unwrap();
        let mut churner = Churner::new(pattern, config.shape, &w, config.seed);
        let (clock, mut rng) = (ManualClock::default(), StdRng::seed_from_u64(1));
        let mut changed = BTreeMap::<Direction, usize>::new();
        for i in 0..=config.shape.changes {
            let change = if i == 0 { churner.setup() } else { churner.next_change() };
            let report = step(&mut backend, &mut oracle, &change, &config, &clock, &mut rng, &|| false).unwrap();
            let full = full_cells(&backend.model().unwrap(), OPTIONS, Profile::Lab);
            let cells: BTreeMap<_, _> = oracle.cells().into_iter().collect();
            assert_eq!(cells, full, "{pattern} step {i}: {}", change.description);
            // The fake enforces at once: every change converges in its first round.
            assert!(report.latency_ms.is_some() || report.cells.is_empty(), "{pattern} step {i}: {report:?}");
            assert!(report.controls_changed.is_empty() && report.regressed.is_empty());
            check(&backend, &report, &format!("{pattern} step {i}: {}", change.description));
            for (d, n) in report.cells {
                *changed.entry(d).or_default() += n;
            }
        }
        // Every pattern moves cells both ways over its changes.
        assert!(changed.get(&Direction::DenyToAllow) > Some(&0) && changed.get(&Direction::AllowToDeny) > Some(&0), "{pattern}: {changed:?}");
    }
}

#[test]
fn every_pattern_keeps_the_incremental_oracle_equal_to_a_full_recomputation() {
    every_pattern(
        || FakeBackend::new(3),
        |_, report, what| {
            assert!(report.latency_by_family.is_empty(), "{what}: one family, none told apart");
        },
    );
}

#[test]
fn on_dual_stack_every_watched_cell_is_probed_on_both_families() {
    every_pattern(
        || DualFake::new(3),
        |backend, report, what| {
            let probes = std::mem::take(&mut *backend.probes.lock().unwrap());
            let of = |family: IpFamily| -> BTreeMap<(String, Ipv4Addr, u16), usize> {
                let mut seen = BTreeMap::new();
                for (src, ip, port) in probes.iter().filter(|(_, ip, _)| IpFamily::of(ip) == family) {
                    let v4 = match ip {
                        IpAddr::V4(v4) => *v4,
                        IpAddr::V6(v6) => untwin(*v6),
                    };
                    *seen.entry((src.clone(), v4, *port)).or_default() += 1;
                }
                seen
            };
            let (v4, v6) = (of(IpFamily::IPv4), of(IpFamily::IPv6));
            assert!(!v4.is_empty(), "{what}: cells or controls were probed");
            assert_eq!(v4, v6, "{what}: each (cell, address) probed as often on IPv6 as on IPv4");
            // Each changed cell counts once per family.
            assert!(report.cells.values().all(|n| n % 2 == 0), "{what}: {:?}", report.cells);
            assert_eq!(report.controls % 2, 0, "{what}");
            let families: Vec<&str> = report.latency_by_family.keys().map(String::as_str).collect();
            if report.cells.is_empty() {
                assert!(families.is_empty(), "{what}: no changed cell, no latency: {families:?}");
            } else {
                assert_eq!(families, ["IPv4", "IPv6"], "{what}");
                assert!(report.latency_by_family.values().all(|l| *l == report.latency_ms), "{what}: the fake converges at once on both");
            }
        },
    );
}

#[test]
fn a_churn_run_reports_every_pattern_and_leaves_the_world_as_it_found_it() {
    let config = config(4);
    let mut backend = FakeBackend::new(3);
    let report = netmatrix_engine::churn::run(&mut backend, &config, &ManualClock::default(), &|| false, &|_| {}).unwrap();
    assert_eq!(report.schema, "netmatrix.churn/v1");
    let patterns: Vec<&str> = report.patterns.iter().map(|p| p.pattern.as_str()).collect();
    assert_eq!(patterns, ["ns-labels", "pod-ring", "policy-churn", "service-churn"]);
    for p in &report.patterns {
        assert_eq!(p.changes.len(), 4);
        assert_eq!(p.summary.len(), 3, "all, then each direction");
        assert!(p.changes.iter().all(|c| c.latency_by_family.is_empty()), "one family");
    }
    // Each pattern's objects and labels were undone: only the world remains.
    let model = backend.model().unwrap();
    assert!(model.policies.is_empty() && model.services.is_empty(), "{:?}", model.policies.iter().map(|p| &p.name).collect::<Vec<_>>());
    let w = world::world(&config.shape, &backend.nodes().iter().map(|n| n.name.clone()).collect::<Vec<_>>());
    for spec in &w.pods {
        let pod = model.pods.iter().find(|p| p.namespace == spec.namespace && p.name == spec.name).unwrap();
        assert_eq!(pod.labels, spec.labels, "{}", spec.key());
    }
}

#[test]
fn a_dual_stack_churn_run_summarises_each_family() {
    let report = netmatrix_engine::churn::run(&mut DualFake::new(3), &config(4), &ManualClock::default(), &|| false, &|_| {}).unwrap();
    for p in &report.patterns {
        let labels: Vec<(Option<Direction>, Option<&str>)> = p.summary.iter().map(|s| (s.direction, s.family.as_deref())).collect();
        assert_eq!(
            labels,
            [(None, None), (Some(Direction::DenyToAllow), None), (Some(Direction::AllowToDeny), None), (None, Some("IPv4")), (None, Some("IPv6"))],
            "{}",
            p.pattern
        );
        assert_eq!(p.summary[3].converged, p.summary[0].converged, "{}: every change converged on IPv4", p.pattern);
        assert_eq!(p.summary[4].converged, p.summary[0].converged, "{}: and on IPv6", p.pattern);
    }
}

mod convergence {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use netmatrix_cluster::fake::FakeBackend;
    use netmatrix_cluster::{Backend, ContainerPort, Outcome, PodSpec};
    use netmatrix_engine::ManualClock;
    use netmatrix_engine::churn::measure::{Rounds, Watched, converge};
    use netmatrix_model::{Labels, PodKey, Protocol};
    use netmatrix_oracle::incremental::{Cell, CellTarget};
    use netmatrix_results::churn::Direction;
    use std::time::Duration;

    const ROUNDS: Rounds =
        Rounds { interval: Duration::from_millis(10), deadline: Duration::from_secs(1), timeout: Duration::from_millis(100), parallel: 2, settle: 2 };

    /// Pods a (node0) and b, c (node1); the watched cells: a -> b changed to allowed, c -> b a control.
    fn setup() -> (FakeBackend, Vec<Watched>) {
        let mut fake = FakeBackend::new(2);
        let pod = |name: &str, node: &str| PodSpec {
            namespace: "x".into(),
            name: name.into(),
            labels: Labels::new(),
            node: node.into(),
            ports: vec![ContainerPort { name: None, port: 80, protocol: Protocol::Tcp }],
            host_network: false,
        };
        fake.create_pods(vec![pod("a", "node0"), pod("b", "node1"), pod("c", "node1")]).unwrap();
        let b_ip = fake.model().unwrap().pods.iter().find(|p| p.name == "b").unwrap().ips[0];
        let cell =
            |src: &str| Cell { src: Arc::new(PodKey::new("x", src)), dst: CellTarget::Pod(Arc::new(PodKey::new("x", "b"))), port: 80, protocol: Protocol::Tcp };
        let watched = vec![
            Watched { cell: cell("a"), address: b_ip, expected: true, direction: Some(Direction::DenyToAllow), nodes: BTreeSet::from(["node1".to_owned()]) },
            Watched { cell: cell("c"), address: b_ip, expected: true, direction: None, nodes: BTreeSet::new() },
        ];
        (fake, watched)
    }

    #[test]
    fn a_cell_converges_when_its_probes_turn_right_and_stay_so() {
        let (mut fake, watched) = setup();
        // a -> b refused on its first two probes: the dataplane catching up.
        fake.inject(Box::new(|p| (p.src == "x/a" && p.call < 2).then_some(Outcome::Refused)));
        let clock = ManualClock::default();
        let seen = converge(&fake, &clock, Duration::ZERO, &watched, &ROUNDS, &|| false);
        assert_eq!(seen.latency, Some(20.0), "right from the third round, 10 ms apart");
        assert_eq!(seen.last_wrong, Some(10.0), "wrong in the second: the latency lies in (10, 20] ms");
        assert_eq!(seen.by_node.get("node1"), Some(&Some(20.0)));
        assert_eq!(seen.rounds, 3 + ROUNDS.settle);
        assert!(seen.not_converged.is_empty() && seen.regressed.is_empty() && seen.controls_changed.is_empty());
    }

    #[test]
    fn a_regression_is_reported_and_restarts_the_settling() {
        let (mut fake, watched) = setup();
        // Right, wrong once in the second round, right again.
        fake.inject(Box::new(|p| (p.src == "x/a" && p.call == 1).then_some(Outcome::Timeout)));
        let seen = converge(&fake, &ManualClock::default(), Duration::ZERO, &watched, &ROUNDS, &|| false);
        assert_eq!(seen.regressed.len(), 1, "{seen:?}");
        assert_eq!(seen.regressed[0].wrong_outcomes, [("timeout".to_owned(), 1)].into(), "what the wrong probe got");
        assert_eq!(seen.latency, Some(20.0), "right for good since the third round");
        assert_eq!(seen.rounds, 3 + ROUNDS.settle, "settle rounds counted again after the regression");
    }

    #[test]
    fn failed_probes_count_neither_way_and_a_wrong_control_is_reported() {
        let (mut fake, watched) = setup();
        fake.failing_execs.insert("x/a".into());
        fake.inject(Box::new(|p| (p.src == "x/c").then_some(Outcome::Refused)));
        let seen = converge(&fake, &ManualClock::default(), Duration::ZERO, &watched, &ROUNDS, &|| false);
        assert!(seen.probe_errors > 0 && seen.regressed.is_empty());
        assert_eq!(seen.latency, None, "a cell never probed never converged");
        assert_eq!(seen.not_converged.len(), 1);
        assert!(seen.not_converged[0].wrong_outcomes.is_empty(), "failed probes saw nothing wrong");
        assert_eq!(seen.controls_changed.len(), 1, "the control x/c -> x/b was refused");
        assert_eq!(seen.controls_changed[0].wrong_outcomes, [("refused".to_owned(), seen.rounds)].into(), "refused in every round");
    }
}
