//! The engine against the in-memory fake backend: a perfect dataplane on which each test
//! injects one kind of trouble (wrong cells, flaky cells, late convergence, failing execs,
//! pods that never become ready) and checks what the engine makes of it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use netmatrix_cluster::fake::FakeBackend;
use netmatrix_cluster::{Backend, Capability, Outcome};
use netmatrix_engine::{Case, EngineError, Event, ManualClock, ProbeConfig, World, run, suites, world::node_names};
use netmatrix_results::{CaseResult, Check, Comparison, Observed, RunReport};

fn world() -> World {
    suites::world(&node_names(3), true)
}

/// The default configuration on a clock that never waits.
fn config() -> ProbeConfig {
    ProbeConfig { clock: Arc::new(ManualClock::default()), ..ProbeConfig::default() }
}

fn netpol(ids: &[&str]) -> Vec<Case> {
    let all = suites::cases(&["netpol".into()]).unwrap();
    ids.iter().map(|id| all.iter().find(|c| c.id == format!("netpol/{id}")).unwrap_or_else(|| panic!("no case {id}")).clone()).collect()
}

fn run_on(backend: &mut FakeBackend, cases: &[Case]) -> RunReport {
    run(backend, &world(), cases, &config(), &|_| {}).unwrap()
}

#[test]
fn a_perfect_dataplane_passes_every_case_with_one_batch_per_row() {
    let mut fake = FakeBackend::new(3);
    let cases: Vec<Case> = suites::cases(&suites::SUITES.map(String::from))
        .unwrap()
        .into_iter()
        .filter(|c| c.requires.iter().all(|r| r.unmet(&fake.capabilities).is_none()))
        .collect();
    let report = run_on(&mut fake, &cases);
    let failed: Vec<_> = report.cases.iter().filter(|c| c.result != CaseResult::Pass).map(|c| (&c.id, c.result)).collect();
    assert!(failed.is_empty(), "{failed:?}");
    let rows: usize = report.cases.iter().flat_map(|c| &c.steps).map(|s| s.cells.iter().map(|c| &c.src).collect::<std::collections::BTreeSet<_>>().len()).sum();
    let batches = fake.batches.lock().unwrap();
    assert_eq!(batches.len(), rows, "one batch per source pod per step, no retry when all cells are right");
    assert!(rows >= 9 * cases.len(), "every pod is a source");
    for suite in suites::SUITES {
        assert!(report.cases.iter().filter(|c| c.id.starts_with(&format!("{suite}/"))).count() >= 3, "suite {suite} ran");
    }
    assert!(report.summary.probes > 0 && report.summary.wrong == 0);
    let decided: Vec<_> = report.features.iter().filter(|f| !f.cases.is_empty()).map(|f| (f.feature.as_str(), f.result)).collect();
    assert!(decided.iter().all(|(_, r)| *r == netmatrix_results::FeatureResult::Pass), "{decided:?}");
    assert!(decided.len() * 10 >= report.features.len() * 7, "the built-in suites exercise most features: {decided:?}");
    // Positive and negative controls: every reachability step expects some allowed and some denied cells.
    for case in report.cases.iter().filter(|c| !c.id.starts_with("connectivity/")) {
        for step in case.steps.iter().filter(|s| s.cells.iter().all(|c| c.check == Check::Reach)) {
            let allowed = step.cells.iter().filter(|c| c.observed == Observed::Allow).count();
            assert!(allowed > 0 && allowed < step.cells.len(), "{} / {}: needs both allowed and denied cells", case.id, step.name);
        }
    }
}

#[test]
fn a_wrong_cell_is_confirmed_by_every_try_and_fails_the_case() {
    let mut fake = FakeBackend::new(3);
    fake.inject(Box::new(|p| (p.src == "y/b" && p.dst == Some("x/a") && p.port == 80).then_some(Outcome::Timeout)));
    let report = run_on(&mut fake, &netpol(&["pod-selector"]));
    let case = &report.cases[0];
    assert_eq!(case.result, CaseResult::Pass);
    let wrong: Vec<_> = case.steps[0].cells.iter().filter(|c| c.comparison() == Comparison::Wrong).collect();
    assert_eq!(wrong.len(), 0, "y/b -> x/a is denied by the policy anyway: the fault changes nothing there");
    // Now a cell the policy allows: x/b -> x/a on 80.
    let mut fake = FakeBackend::new(3);
    fake.inject(Box::new(|p| (p.src == "x/b" && p.dst == Some("x/a") && p.port == 80).then_some(Outcome::Timeout)));
    let report = run_on(&mut fake, &netpol(&["pod-selector"]));
    let case = &report.cases[0];
    assert_eq!(case.result, CaseResult::Fail);
    let wrong: Vec<_> = case.steps[0].cells.iter().filter(|c| c.comparison() == Comparison::Wrong).collect();
    assert_eq!(wrong.len(), 1);
    assert_eq!((wrong[0].src.as_str(), wrong[0].dst.as_str(), wrong[0].port), ("x/b", "x/a", 80));
    assert_eq!(wrong[0].history, [Observed::Deny; 4]);
    assert_eq!(report.summary.verdict(), netmatrix_results::Verdict::Wrong);
    assert!(!case.findings.is_empty(), "the wrong cell is listed by a finding");
}

#[test]
fn a_cell_that_keeps_changing_is_inconclusive_with_its_history() {
    let mut fake = FakeBackend::new(3);
    // Every other answer from x/b to x/a:80 is lost.
    fake.inject(Box::new(|p| (p.src == "x/b" && p.dst == Some("x/a") && p.port == 80 && p.call % 2 == 0).then_some(Outcome::Timeout)));
    let report = run_on(&mut fake, &netpol(&["pod-selector"]));
    let case = &report.cases[0];
    let cell = case.steps[0].cells.iter().find(|c| c.src == "x/b" && c.dst == "x/a" && c.port == 80).unwrap();
    assert_eq!(cell.observed, Observed::Inconclusive);
    assert_eq!(cell.history, [Observed::Deny, Observed::Allow, Observed::Deny, Observed::Allow]);
    assert_eq!(case.result, CaseResult::Flaky);
}

#[test]
fn a_dataplane_that_converges_late_passes_after_retries() {
    let mut fake = FakeBackend::new(3);
    fake.inject(Box::new(|p| (p.src == "x/b" && p.dst == Some("x/a") && p.port == 80 && p.call == 0).then_some(Outcome::Timeout)));
    let report = run_on(&mut fake, &netpol(&["pod-selector"]));
    let cell = report.cases[0].steps[0].cells.iter().find(|c| c.src == "x/b" && c.dst == "x/a" && c.port == 80).unwrap();
    assert_eq!(cell.history, [Observed::Deny, Observed::Allow, Observed::Allow]);
    assert_eq!(report.cases[0].result, CaseResult::Pass);
    assert_eq!(report.cases[0].steps[0].tries, 3);
}

#[test]
fn a_cell_right_only_on_the_last_try_converged_late() {
    let mut fake = FakeBackend::new(3);
    fake.inject(Box::new(|p| (p.src == "x/b" && p.dst == Some("x/a") && p.port == 80 && p.call < 3).then_some(Outcome::Timeout)));
    let report = run_on(&mut fake, &netpol(&["pod-selector"]));
    let cell = report.cases[0].steps[0].cells.iter().find(|c| c.src == "x/b" && c.dst == "x/a" && c.port == 80).unwrap();
    assert_eq!(cell.history, [Observed::Deny, Observed::Deny, Observed::Deny, Observed::Allow]);
    assert_eq!(cell.observed, Observed::Allow, "wrong, then right for good: converged, not flapping");
    assert_eq!(report.cases[0].result, CaseResult::Pass);
}

#[test]
fn a_failing_exec_is_an_error_not_a_verdict() {
    let mut fake = FakeBackend::new(3);
    fake.failing_execs.insert("y/c".into());
    let report = run_on(&mut fake, &netpol(&["deny-all-ingress"]));
    let case = &report.cases[0];
    assert_eq!(case.result, CaseResult::Error);
    let row: Vec<_> = case.steps[0].cells.iter().filter(|c| c.src == "y/c").collect();
    assert!(!row.is_empty() && row.iter().all(|c| c.observed == Observed::Error && c.detail.as_deref().unwrap().contains("exec failed")));
    assert!(case.steps[0].cells.iter().filter(|c| c.src != "y/c").all(|c| c.comparison() == Comparison::AsExpected));
    assert_eq!(report.summary.verdict(), netmatrix_results::Verdict::Incomplete);
}

#[test]
fn pods_that_never_become_ready_stop_the_run_with_their_names() {
    let mut fake = FakeBackend::new(3);
    fake.never_ready.insert("z/b".into());
    let err = run(&mut fake, &world(), &netpol(&["deny-all"]), &config(), &|_| {}).unwrap_err();
    assert!(matches!(err, EngineError::Setup(_)));
    assert!(err.to_string().contains("z/b"), "{err}");
}

#[test]
fn every_case_starts_from_the_world() {
    let mut fake = FakeBackend::new(3);
    let cases = netpol(&["relabel-namespace", "relabel-pod", "recreate-pod", "delete-policy", "deny-all"]);
    let starts = Mutex::new(Vec::new());
    run(&mut fake, &world(), &cases, &config(), &|e| {
        if let Event::CaseFinished(c) = e {
            starts.lock().unwrap().push(c.id.clone());
        }
    })
    .unwrap();
    assert_eq!(starts.into_inner().unwrap().len(), cases.len());
    let model = fake.model().unwrap();
    assert!(model.policies.is_empty(), "policies of the cases are deleted");
    let w = world();
    for spec in &w.pods {
        let pod = model.pods.iter().find(|p| p.namespace == spec.namespace && p.name == spec.name).expect("every world pod exists");
        assert_eq!(pod.labels, spec.labels);
    }
    let y = model.namespaces.iter().find(|n| n.name == "y").unwrap();
    assert!(!y.labels.contains_key("team"), "namespace labels restored");
}

#[test]
fn unmet_requirements_skip_the_case_with_the_reason() {
    let mut fake = FakeBackend::new(3);
    fake.capabilities.sctp = Capability::no("the test's nodes have no SCTP");
    let report = run_on(&mut fake, &netpol(&["protocol-sctp"]));
    assert_eq!(report.cases[0].result, CaseResult::Skipped);
    assert!(report.cases[0].skip_reason.as_deref().unwrap().contains("SCTP"));
    assert!(fake.batches.lock().unwrap().is_empty(), "nothing probed");
}

#[test]
fn rows_are_probed_concurrently_up_to_the_limit() {
    for parallel in [1, 4] {
        let mut fake = FakeBackend::new(3);
        fake.batch_time = std::time::Duration::from_millis(50);
        let config = ProbeConfig { parallel, ..config() };
        run(&mut fake, &world(), &netpol(&["deny-all"]), &config, &|_| {}).unwrap();
        assert_eq!(fake.max_in_flight.load(std::sync::atomic::Ordering::SeqCst), parallel, "--parallel {parallel}");
    }
}

#[test]
fn cells_of_host_network_pods_are_undefined_under_network_policy() {
    use netmatrix_engine::{Action, ProbeSpec, Step};
    use netmatrix_model::Protocol;
    let deny = serde_json::json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "deny", "namespace": "x"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}});
    let case = Case::new(
        "t/host",
        &[],
        vec![
            Step::new("no policy", vec![Action::AddHostPods], ProbeSpec::pods(&[(80, Protocol::Tcp)])),
            Step::new("a policy", vec![Action::Apply(vec![deny])], ProbeSpec::pods(&[(80, Protocol::Tcp)])),
        ],
    );
    let mut fake = FakeBackend::new(3);
    let report = run_on(&mut fake, &[case]);
    let [open, policed] = [0, 1].map(|s| &report.cases[0].steps[s].cells);
    let host = |c: &&netmatrix_results::Cell| c.src.starts_with("host/") || c.dst.starts_with("node:");
    assert!(
        open.iter().filter(host).count() > 0 && open.iter().filter(host).all(|c| c.expected == netmatrix_results::Expected::Allow),
        "defined without policies"
    );
    assert!(policed.iter().filter(host).all(|c| c.expected == netmatrix_results::Expected::Undefined && c.comparison() == Comparison::Undefined));
    assert!(policed.iter().filter(|c| !host(c)).all(|c| c.expected != netmatrix_results::Expected::Undefined));
    assert!(open.iter().any(|c| c.dst == "node:node1" && c.target == netmatrix_results::TargetKind::Node));
    assert_eq!(fake.model().unwrap().pods.len(), 9, "the case's hostNetwork pods are removed after it");
}

#[test]
fn objects_the_run_did_not_create_are_left_alone() {
    let mut fake = FakeBackend::new(3);
    // Somebody's own policy in a namespace of the world: the run must keep it, and expect it.
    let theirs = serde_json::json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "theirs", "namespace": "z"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}});
    fake.apply(vec![theirs]).unwrap();
    let report = run_on(&mut fake, &netpol(&["pod-selector", "delete-policy"]));
    assert!(report.cases.iter().all(|c| c.result == CaseResult::Pass), "{:?}", report.cases.iter().map(|c| (&c.id, c.result)).collect::<Vec<_>>());
    let into_z = report.cases[0].steps[0].cells.iter().find(|c| c.src == "y/a" && c.dst == "z/b").unwrap();
    assert_eq!(into_z.expected, netmatrix_results::Expected::Deny, "their policy counts");
    let model = fake.model().unwrap();
    let names: Vec<&str> = model.policies.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["theirs"], "the cases' policies are gone, theirs is not");
}

#[test]
fn retries_wait_the_interval_and_every_try_keeps_its_time() {
    let mut fake = FakeBackend::new(3);
    fake.inject(Box::new(|p| (p.src == "x/b" && p.dst == Some("x/a") && p.port == 80).then_some(Outcome::Timeout)));
    let clock = Arc::new(ManualClock::default());
    let config = ProbeConfig { retry_interval: Duration::from_millis(300), clock: clock.clone(), ..ProbeConfig::default() };
    let report = run(&mut fake, &world(), &netpol(&["pod-selector"]), &config, &|_| {}).unwrap();
    let cell = report.cases[0].steps[0].cells.iter().find(|c| c.src == "x/b" && c.dst == "x/a" && c.port == 80).unwrap();
    assert_eq!(cell.history, [Observed::Deny; 4]);
    assert_eq!(cell.tried_at_ms, [0, 300, 900, 2100], "the pause doubles each retry");
    let pauses = [300, 600, 1200].map(Duration::from_millis);
    assert_eq!(clock.sleeps(), pauses, "only the wrong cell was retried, while the budget lasted");
    let right = report.cases[0].steps[0].cells.iter().find(|c| c.comparison() == Comparison::AsExpected).unwrap();
    assert_eq!(right.tried_at_ms, [0]);
}

#[test]
fn each_step_marks_the_cells_whose_expectation_it_changed() {
    use netmatrix_results::Expected;
    let mut fake = FakeBackend::new(3);
    // Step 1 denies ingress to x and y; step 2 deletes x's policy: only cells into x change.
    let report = run_on(&mut fake, &netpol(&["delete-policy"]));
    let steps = &report.cases[0].steps;
    assert!(steps[0].cells.iter().all(|c| c.expected_before.is_none()), "a first step has nothing to compare with");
    let changed: Vec<_> = steps[1].cells.iter().filter(|c| c.expected_before.is_some()).collect();
    assert!(!changed.is_empty(), "deleting the policy opens cells");
    assert!(changed.iter().all(|c| c.dst.starts_with("x/") && c.expected_before == Some(Expected::Deny) && c.expected == Expected::Allow));
    let unchanged = steps[1].cells.iter().filter(|c| c.expected_before.is_none()).count();
    assert_eq!(changed.len() + unchanged, steps[1].cells.len());
}

#[test]
fn wrong_cells_say_why_the_oracle_expected_what_it_did() {
    let mut fake = FakeBackend::new(3);
    // y/b gets through to x/a, which only pods b of x may reach.
    fake.inject(Box::new(|p| (p.src == "y/b" && p.dst == Some("x/a") && p.port == 80).then_some(Outcome::Connected)));
    let report = run_on(&mut fake, &netpol(&["pod-selector"]));
    let cells = &report.cases[0].steps[0].cells;
    let wrong = cells.iter().find(|c| c.comparison() == Comparison::Wrong).expect("the leaked cell");
    assert_eq!((wrong.src.as_str(), wrong.dst.as_str()), ("y/b", "x/a"));
    assert_eq!(wrong.explanation.as_deref(), Some("denied: egress of y/b: no policy isolates it; ingress of x/a: isolated by x/allow-a, no rule allows it"));
    assert!(cells.iter().filter(|c| c.comparison() != Comparison::Wrong).all(|c| c.explanation.is_none()), "only wrong cells carry one");
}

/// The ids of `features`.
fn ids(features: &[netmatrix_results::Feature]) -> Vec<String> {
    features.iter().map(|f| f.id().to_owned()).collect()
}

#[test]
fn a_failing_case_marks_the_features_its_objects_exercised_failed() {
    use netmatrix_results::{Feature, FeatureResult};
    let mut fake = FakeBackend::new(3);
    // Allowed only by netpol/pod-selector's policy (x/a from pods b of x); the others deny it anyway.
    fake.inject(Box::new(|p| (p.src == "x/b" && p.dst == Some("x/a") && p.port == 80).then_some(Outcome::Timeout)));
    let report = run_on(&mut fake, &netpol(&["pod-selector", "namespace-selector", "port-range"]));
    let results: Vec<CaseResult> = report.cases.iter().map(|c| c.result).collect();
    assert_eq!(results, [CaseResult::Fail, CaseResult::Pass, CaseResult::Pass]);
    assert_eq!(report.cases[0].features, ids(&[Feature::NetpolPodSelector, Feature::NetpolPeerPods, Feature::NetpolIngress]));
    let of = |f: Feature| report.features.iter().find(|c| c.feature == f.id()).unwrap();
    let peer_pods = of(Feature::NetpolPeerPods);
    assert_eq!((peer_pods.result, peer_pods.cases.as_slice(), peer_pods.failed), (FeatureResult::Fail, &["netpol/pod-selector".to_owned()][..], 1));
    let selected = of(Feature::NetpolPodSelector);
    assert_eq!((selected.result, selected.cases.len(), selected.passed, selected.failed), (FeatureResult::Fail, 3, 2, 1), "every case selects x/a");
    assert_eq!(of(Feature::NetpolPeerNamespaces).result, FeatureResult::Pass);
    assert_eq!(of(Feature::NetpolEndPort).result, FeatureResult::Pass);
    assert_eq!(of(Feature::NetpolSctp).result, FeatureResult::NotExercised);
    assert_eq!(report.features.len(), Feature::ALL.len());
}

#[test]
fn features_follow_the_applied_objects_not_the_labels() {
    use netmatrix_engine::{Action, ProbeSpec, Step};
    use netmatrix_results::Feature;
    let mut fake = FakeBackend::new(3);
    let all = suites::cases(&suites::SUITES.map(String::from)).unwrap();
    let case = |id: &str| all.iter().find(|c| c.id == id).unwrap().clone();
    let service = serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "x"},
        "spec": {"type": "NodePort", "selector": {"pod": "a"}, "ports": [{"port": 80, "targetPort": 80}]}});
    let unprobed = Case::new(
        "mine/service-not-probed",
        &[("feature", "node-port")],
        vec![Step::new("pods only", vec![Action::Apply(vec![service])], ProbeSpec::pods(&[(80, netmatrix_model::Protocol::Tcp)]))],
    );
    // In the cluster before the run: the oracle counts it, coverage does not.
    let theirs = serde_json::json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "theirs", "namespace": "z"},
        "spec": {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}]}});
    fake.apply(vec![theirs]).unwrap();
    let report = run_on(&mut fake, &[case("connectivity/pod-to-pod"), case("services/policy-on-backends"), unprobed]);
    assert!(report.cases[0].features.is_empty(), "no object of its own, no feature: {:?}", report.cases[0].features);
    let on_backends = &report.cases[1].features;
    for f in [Feature::ServiceNodePort, Feature::ServiceUnderPolicy, Feature::NetpolPeerNamespaces, Feature::NetpolPodSelectorEmpty] {
        assert!(on_backends.iter().any(|id| id == f.id()), "{f:?} in {on_backends:?}");
    }
    assert!(report.cases[2].features.is_empty(), "a Service no step probed, whatever the labels say: {:?}", report.cases[2].features);
}
