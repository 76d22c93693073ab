//! The churn driver on the in-memory fake backend: after every step of a long seeded churn of
//! each pattern, the incremental oracle (fed by the engine from what it applied and what the
//! backend allocated) equals a full recomputation of the backend's objects; and a whole
//! `churn::run` reports each pattern's changes, converged.

use std::collections::BTreeMap;
use std::time::Duration;

use netmatrix_cluster::Backend;
use netmatrix_cluster::fake::FakeBackend;
use netmatrix_engine::ManualClock;
use netmatrix_engine::churn::measure::Rounds;
use netmatrix_engine::churn::patterns::{Churner, Pattern};
use netmatrix_engine::churn::{ChurnConfig, step, world};
use netmatrix_oracle::incremental::{Incremental, full_cells};
use netmatrix_oracle::{Options, Profile};
use netmatrix_results::churn::{Direction, Shape};
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

#[test]
fn every_pattern_keeps_the_incremental_oracle_equal_to_a_full_recomputation() {
    let config = config(40);
    for pattern in Pattern::ALL {
        let mut backend = FakeBackend::new(3);
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
            for (d, n) in report.cells {
                *changed.entry(d).or_default() += n;
            }
        }
        // Every pattern moves cells both ways over its changes.
        assert!(changed.get(&Direction::DenyToAllow) > Some(&0) && changed.get(&Direction::AllowToDeny) > Some(&0), "{pattern}: {changed:?}");
    }
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
