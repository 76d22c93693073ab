//! Cases run concurrently on shards: backends of their own (a lab each, or a cluster's
//! namespaces of their own run), each holding the world, on a thread each. Cases are taken in
//! order, finished cases are told to the caller in order, and the report lists them in order,
//! so tables and reports are those of a serial run but for timings.
//!
//! Shards of a Kubernetes run share one cluster. A NetworkPolicy selects pods of its own
//! namespace only, so it changes traffic to or from its shard's pods alone, and every cell's
//! source and target are in one shard: a policy peer may select another shard's pods (their
//! namespaces carry the same labels), but that only admits traffic between shards, which no cell
//! probes. Services select pods of their namespace and get node ports allocated by the cluster.
//! What reaches across shards runs alone (see [`alone`]). Labs share nothing, but the engine does
//! not tell backends apart: there too those cases run alone (on the default suites, 15 cases and
//! under a second of a lab run).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use netmatrix_cluster::{Backend, ObjectKind};
use netmatrix_results::{CaseReport, RunReport};

use crate::case::{Action, Case, Requirement};
use crate::probe::ProbeConfig;
use crate::runner::{self, EngineError, Event};
use crate::world::World;

/// Runs `cases` on `backends` (one shard each, every one set up with `world`); the report is
/// that of the first backend with every case in `cases`' order. A shard's error stops every
/// shard, and so does a panic (raised again once all have stopped); removing the worlds is the
/// caller's, as it owns the backends.
pub fn run(
    backends: &mut [&mut dyn Backend],
    world: &World,
    cases: &[Case],
    config: &ProbeConfig,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<RunReport, EngineError> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let queue = Queue { cases, config, turns: Mutex::default(), changed: Condvar::new(), stop: AtomicBool::new(false) };
    let finished = InOrder { on_event, state: Mutex::new((0, cases.iter().map(|_| None).collect())) };
    let (queue, finished) = (&queue, &finished);
    let sharded = backends.len() > 1;
    let outcomes: Vec<_> = std::thread::scope(|scope| {
        let shards: Vec<_> = backends
            .iter_mut()
            .enumerate()
            .map(|(number, backend)| {
                scope.spawn(move || {
                    let _stop = StopOnPanic(queue);
                    let result = shard(&mut **backend, sharded.then_some(number + 1), world, queue, finished, on_event);
                    if result.is_err() {
                        queue.stop();
                    }
                    result
                })
            })
            .collect();
        shards.into_iter().map(|s| s.join()).collect()
    });
    let mut first_error = None;
    for outcome in outcomes {
        match outcome {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(Err(e)) => first_error = first_error.or(Some(e)),
            Ok(Ok(())) => {}
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let reports: Vec<CaseReport> = finished.state.lock().unwrap().1.drain(..).flatten().collect();
    if reports.len() < cases.len() {
        return Err(EngineError::Interrupted { done: reports.len(), total: cases.len() });
    }
    let mut report = runner::report(&*backends[0], config, started, clock, reports);
    if sharded && !report.cluster.namespaces.is_empty() {
        report.cluster.shards = backends.iter().map(|b| b.real_namespaces()).collect();
    }
    Ok(report)
}

/// One shard (`number`: 1, 2, ... when there are several): its world, then cases from the queue until none is left
/// or the run stops.
fn shard(
    backend: &mut dyn Backend,
    number: Option<usize>,
    world: &World,
    queue: &Queue,
    finished: &InOrder,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(), EngineError> {
    runner::setup(backend, world).map_err(EngineError::Setup)?;
    while let Some(index) = queue.take() {
        let case = &queue.cases[index];
        on_event(Event::CaseStarted { id: &case.id, index, total: queue.cases.len() });
        let report = runner::case(backend, world, case, queue.config, on_event);
        queue.release();
        let report = CaseReport { shard: number, ..report? };
        // A case cut short by an interrupt is not reported.
        if queue.config.cancelled() {
            break;
        }
        finished.add(index, report);
    }
    Ok(())
}

/// Whether a case must run while no other shard runs one: it makes something every shard of a
/// cluster sees. Admin policies are cluster-scoped and select namespaces by labels every shard's
/// namespaces carry; hostNetwork pods bind ports of the nodes all shards share; a node port
/// written in a Service is one per cluster. Manifests made from the model (ipBlocks of pod
/// addresses) are admin policies only in cases that require them (a test checks).
fn alone(case: &Case) -> bool {
    let cluster_wide = |m: &serde_json::Value| {
        ObjectKind::of(m).is_some_and(|k| !k.namespaced())
            || m["spec"]["ports"].as_array().is_some_and(|ports| ports.iter().any(|p| p.get("nodePort").is_some()))
    };
    case.requires.contains(&Requirement::AdminPolicies)
        || case.steps.iter().flat_map(|s| &s.actions).any(|a| match a {
            Action::Apply(manifests) => manifests.iter().any(cluster_wide),
            Action::AddHostPods => true,
            _ => false,
        })
}

/// Which case runs next: in order, a case that runs [`alone`] only once every other has finished,
/// and nothing else while it runs.
struct Queue<'a> {
    cases: &'a [Case],
    config: &'a ProbeConfig,
    turns: Mutex<Turns>,
    changed: Condvar,
    /// A shard failed: the others take no more cases.
    stop: AtomicBool,
}

#[derive(Default)]
struct Turns {
    next: usize,
    running: usize,
    alone: bool,
}

impl Queue<'_> {
    /// The index of the next case for a shard that is free, waiting for its turn; `None` when
    /// every case is taken or the run stops.
    fn take(&self) -> Option<usize> {
        let mut turns = self.turns.lock().unwrap();
        loop {
            if self.stop.load(Ordering::SeqCst) || self.config.cancelled() || turns.next == self.cases.len() {
                return None;
            }
            let alone = alone(&self.cases[turns.next]);
            if !turns.alone && (!alone || turns.running == 0) {
                turns.next += 1;
                turns.running += 1;
                turns.alone = alone;
                return Some(turns.next - 1);
            }
            // Also woken by time: an interrupt sets a flag and notifies no one.
            turns = self.changed.wait_timeout(turns, Duration::from_millis(100)).unwrap().0;
        }
    }

    /// A shard finished its case (restored, or failed).
    fn release(&self) {
        let mut turns = self.turns.lock().unwrap();
        turns.running -= 1;
        turns.alone = false;
        self.changed.notify_all();
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.changed.notify_all();
    }
}

/// Stops the other shards when this one panics.
struct StopOnPanic<'a>(&'a Queue<'a>);

impl Drop for StopOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.stop();
        }
    }
}

/// Finished cases, told to the caller in the cases' order: one that finishes before an earlier
/// one waits for it.
struct InOrder<'a> {
    on_event: &'a (dyn Fn(Event) + Sync),
    /// The next case to tell, and every case's report once finished.
    state: Mutex<(usize, Vec<Option<CaseReport>>)>,
}

impl InOrder<'_> {
    fn add(&self, index: usize, report: CaseReport) {
        let mut state = self.state.lock().unwrap();
        let (next, reports) = &mut *state;
        reports[index] = Some(report);
        while let Some(Some(report)) = reports.get(*next) {
            (self.on_event)(Event::CaseFinished(report));
            *next += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use netmatrix_cluster::Backend;
    use netmatrix_cluster::fake::FakeBackend;

    use super::*;
    use crate::suites;

    #[test]
    fn cases_that_reach_other_shards_run_alone() {
        let all = suites::cases(&suites::SUITES.map(String::from)).unwrap();
        let alone: Vec<&str> = all.iter().filter(|c| alone(c)).map(|c| c.id.as_str()).collect();
        assert!(all.iter().filter(|c| c.id.starts_with("anp/")).all(|c| alone.contains(&c.id.as_str())), "admin policies are cluster-scoped");
        for id in ["connectivity/pod-to-node-and-node-to-pod", "services/host-network-client"] {
            assert!(alone.contains(&id), "{id}: hostNetwork pods bind node ports: {alone:?}");
        }
        assert!(!alone.contains(&"netpol/deny-all") && !alone.contains(&"services/node-port"), "{alone:?}");
        // Manifests built from the model are only known at run time: built here on a world.
        let mut fake = FakeBackend::new(3);
        crate::runner::setup(&mut fake, &suites::world(&crate::world::node_names(3), true)).unwrap();
        let model = fake.model().unwrap();
        for case in all.iter().filter(|c| !alone.contains(&c.id.as_str())) {
            for action in case.steps.iter().flat_map(|s| &s.actions) {
                if let Action::ApplyFromModel(build) = action {
                    assert!(build(&model).iter().all(|m| ObjectKind::of(m).is_some_and(ObjectKind::namespaced)), "{}", case.id);
                }
            }
        }
    }

    #[test]
    fn a_fixed_node_port_runs_alone() {
        let service = serde_json::json!({"kind": "Service", "metadata": {"name": "s", "namespace": "x"}, "spec": {"ports": [{"port": 80, "nodePort": 30080}]}});
        let case = |m: serde_json::Value| Case::new("c/c", &[], vec![crate::Step::new("s", vec![Action::Apply(vec![m])], crate::ProbeSpec::services())]);
        assert!(alone(&case(service.clone())));
        let mut allocated = service;
        allocated["spec"]["ports"][0].as_object_mut().unwrap().remove("nodePort");
        assert!(!alone(&case(allocated)));
    }
}
