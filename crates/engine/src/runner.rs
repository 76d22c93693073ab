//! Runs cases on a backend: the world once, then per case its steps (actions, oracle, probes)
//! and a restore of the world, so that every case starts from the same objects.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Instant, SystemTime};

use netmatrix_cluster::{Backend, BackendError, ObjectKind, Profile};
use netmatrix_model::{Cluster, IpFamily, Labels, Namespace, PodKey, Protocol};
use netmatrix_results::{CaseReport, CaseResult, Check, ClusterInfo, Comparison, Expected, Feature, FeatureCoverage, RunReport, SCHEMA, StepReport, Summary};

use crate::case::{Action, Case, Step};
use crate::diagnose::diagnose;
use crate::features;
use crate::plan::{self, Planned};
use crate::probe::{ProbeConfig, probe_cells};
use crate::world::World;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("setting up the probe pods: {0}")]
    Setup(#[source] BackendError),
    #[error("interrupted after {done} of {total} cases; what the run created was removed")]
    Interrupted { done: usize, total: usize },
    #[error("restoring the probe pods after case {case}: {source} (later cases would not start from the same objects)")]
    Restore {
        case: String,
        #[source]
        source: BackendError,
    },
}

/// What the engine tells its caller while it runs (progress bars, streamed tables).
pub enum Event<'a> {
    CaseStarted {
        id: &'a str,
        index: usize,
        total: usize,
    },
    /// `count` cells were probed once more.
    Probed {
        count: usize,
    },
    CaseFinished(&'a CaseReport),
}

/// Runs `cases` on `backend` after creating `world` there: [`crate::shards::run`] on one shard.
pub fn run(
    backend: &mut dyn Backend,
    world: &World,
    cases: &[Case],
    config: &ProbeConfig,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<RunReport, EngineError> {
    crate::shards::run(&mut [backend], world, cases, config, on_event)
}

/// One case on `backend`, which holds `world`: its steps, then the world restored.
pub(crate) fn case(
    backend: &mut dyn Backend,
    world: &World,
    case: &Case,
    config: &ProbeConfig,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<CaseReport, EngineError> {
    let mut created = Created::default();
    backend.begin_case(Some(&case.id));
    let report = run_case(backend, world, case, config, &mut created, on_event);
    let restored = restore(backend, world, &created);
    backend.begin_case(None);
    restored.map_err(|source| EngineError::Restore { case: case.id.clone(), source })?;
    Ok(report)
}

/// The run's report from its cases' and what `backend` (the first shard's) says about itself.
pub(crate) fn report(backend: &dyn Backend, config: &ProbeConfig, started: SystemTime, clock: Instant, reports: Vec<CaseReport>) -> RunReport {
    RunReport {
        schema: SCHEMA.to_owned(),
        backend: backend.kind().as_str().to_owned(),
        profile: profile(config, backend).name().to_owned(),
        started: humantime::format_rfc3339_seconds(started).to_string(),
        duration_ms: clock.elapsed().as_millis() as u64,
        cluster: ClusterInfo {
            nodes: backend.nodes().iter().map(|n| n.name.clone()).collect(),
            server_version: backend.server_version().unwrap_or_default(),
            namespaces: backend.real_namespaces(),
            shards: Vec::new(),
        },
        summary: Summary::of(&reports),
        features: FeatureCoverage::of(&reports),
        cases: reports,
    }
}

/// The profile the run's expectations follow: `config`'s, else the backend's default.
pub fn profile(config: &ProbeConfig, backend: &dyn Backend) -> Profile {
    config.profile.unwrap_or(backend.kind().default_profile())
}

pub(crate) fn setup(backend: &mut dyn Backend, world: &World) -> Result<(), BackendError> {
    for (name, labels) in &world.namespaces {
        backend.set_namespace(name, labels.clone())?;
    }
    backend.create_pods(world.pods.clone())
}

/// What a case added to the backend, so that restoring removes exactly that and never an
/// object the run did not create.
#[derive(Default)]
struct Created {
    objects: BTreeSet<(ObjectKind, String, String)>,
    pods: BTreeSet<PodKey>,
}

impl Created {
    fn manifests(&mut self, manifests: &[serde_json::Value]) {
        for m in manifests {
            if let Some(kind) = ObjectKind::of(m) {
                let (namespace, name) = kind.key(m);
                self.objects.insert((kind, namespace, name));
            }
        }
    }
}

fn run_case(
    backend: &mut dyn Backend,
    world: &World,
    case: &Case,
    config: &ProbeConfig,
    created: &mut Created,
    on_event: &(dyn Fn(Event) + Sync),
) -> CaseReport {
    let clock = Instant::now();
    let mut report = CaseReport { labels: case.labels.clone(), ..CaseReport::of_steps(case.id.clone(), Vec::new()) };
    if let Some(reason) = case.needs().find_map(|r| r.unmet(backend.capabilities())) {
        report.result = CaseResult::Skipped;
        report.skip_reason = Some(reason);
        return report;
    }
    let mut before = Expectations::new();
    let mut exercised: BTreeSet<Feature> = BTreeSet::new();
    for step in case.steps.iter().take_while(|_| !config.cancelled()) {
        match run_step(backend, world, step, config, created, &mut before, on_event) {
            Ok((s, features)) => {
                report.steps.push(s);
                exercised.extend(features);
            }
            Err(e) => {
                report.error = Some(format!("step {:?}: {e}", step.name));
                break;
            }
        }
    }
    report.features = exercised.iter().map(|f| f.id().to_owned()).collect();
    report.findings = diagnose(&report.steps);
    report.diagnosis = report.findings.iter().map(|f| f.summary.clone()).collect();
    report.result = if report.error.is_some() { CaseResult::Error } else { CaseReport::result_from_cells(&report.steps) };
    report.duration_ms = clock.elapsed().as_millis() as u64;
    report
}

/// Each cell's expectation in the last step that probed it.
type Expectations = HashMap<(String, String, u16, Protocol, Check, Option<IpFamily>), Expected>;

fn run_step(
    backend: &mut dyn Backend,
    world: &World,
    step: &Step,
    config: &ProbeConfig,
    created: &mut Created,
    before: &mut Expectations,
    on_event: &(dyn Fn(Event) + Sync),
) -> Result<(StepReport, BTreeSet<Feature>), BackendError> {
    for action in &step.actions {
        act(backend, world, action, created)?;
    }
    let mut model = backend.model()?;
    // Cells in the order of pod names, not of the backend's listing (where a recreated pod moves
    // last): a case's report does not depend on the cases run before it, on one backend or shards.
    model.pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let mut cells: Vec<Planned> = plan::cells(&model, &step.probe, profile(config, backend));
    // What the step changed: the cells whose verdict moved (what convergence is measured on).
    for p in &mut cells {
        let c = &mut p.cell;
        let previous = before.insert((c.src.clone(), c.dst.clone(), c.port, c.protocol, c.check, c.family), c.expected);
        c.expected_before = previous.filter(|&e| e != c.expected);
    }
    if cells.is_empty() {
        // A step without cells would pass whatever the dataplane does.
        return Err(BackendError::BadInput("the step has nothing to probe (no pod pairs, no Service frontend with an address)".into()));
    }
    let backend: &dyn Backend = backend;
    probe_cells(backend, &mut cells, config, &|count| on_event(Event::Probed { count }));
    // Each family's view of the model made once per step, not once per wrong cell.
    let mut views: BTreeMap<IpFamily, Cluster> = BTreeMap::new();
    for p in cells.iter_mut().filter(|p| p.cell.comparison() == Comparison::Wrong) {
        let view = match p.cell.family {
            Some(family) => &*views.entry(family).or_insert_with(|| model.of_family(family)),
            None => &model,
        };
        p.cell.explanation = p.explain(view);
    }
    let tries = cells.iter().map(|c| c.cell.tries).max().unwrap_or(0);
    let exercised = features::exercised(&applied(&model, created, step.probe.services));
    Ok((StepReport { name: step.name.clone(), tries, cells: cells.into_iter().map(|p| p.cell).collect() }, exercised))
}

/// The objects of `model` the case applied, with the pods they select: what a step exercised.
/// A cluster's other objects count for the oracle, not for coverage, and Services count only
/// when the step probed them.
fn applied(model: &Cluster, created: &Created, services_probed: bool) -> Cluster {
    let ours = |kind: &str, namespace: &str, name: &str| created.objects.iter().any(|(k, ns, n)| k.as_str() == kind && ns == namespace && n == name);
    Cluster {
        pods: model.pods.clone(),
        policies: model.policies.iter().filter(|p| ours(ObjectKind::NetworkPolicy.as_str(), &p.namespace, &p.name)).cloned().collect(),
        admin_policies: model.admin_policies.iter().filter(|p| ours(p.kind.as_str(), "", &p.name)).cloned().collect(),
        services: model.services.iter().filter(|s| services_probed && ours(ObjectKind::Service.as_str(), &s.namespace, &s.name)).cloned().collect(),
        ..Cluster::default()
    }
}

fn act(backend: &mut dyn Backend, world: &World, action: &Action, created: &mut Created) -> Result<(), BackendError> {
    match action {
        Action::Apply(manifests) => {
            created.manifests(manifests);
            backend.apply(manifests.clone())
        }
        Action::ApplyFromModel(build) => {
            let manifests = build(&backend.model()?);
            created.manifests(&manifests);
            backend.apply(manifests)
        }
        Action::Delete { kind, namespace, name } => backend.delete(*kind, namespace, name),
        Action::SetNamespaceLabels { namespace, labels } => backend.set_namespace(namespace, labels.clone()),
        Action::SetPodLabels { pod, labels } => backend.set_pod_labels(pod, labels.clone()),
        Action::AddHostPods => {
            let nodes: Vec<String> = backend.nodes().iter().map(|n| n.name.clone()).collect();
            let pods = World::host_pods(&nodes);
            created.pods.extend(pods.iter().map(|p| p.key()));
            backend.create_pods(pods)
        }
        Action::RecreatePod(pod) => {
            let spec = world.pod(pod).ok_or_else(|| BackendError::BadInput(format!("{pod} is not a probe pod of this run")))?;
            backend.delete_pod(pod)?;
            backend.create_pods(vec![spec.clone()])
        }
    }
}

/// Brings the backend back to the world: the case's objects and extra pods gone, the world's
/// labels, every world pod present. Compared with what the backend holds, so it also mends a
/// case that stopped half-way.
fn restore(backend: &mut dyn Backend, world: &World, created: &Created) -> Result<(), BackendError> {
    let model = backend.model()?;
    let present = |kind: ObjectKind, namespace: &str, name: &str| match kind {
        ObjectKind::NetworkPolicy => model.policies.iter().any(|p| p.namespace == namespace && p.name == name),
        ObjectKind::Service => model.services.iter().any(|s| s.namespace == namespace && s.name == name),
        _ => model.admin_policies.iter().any(|p| p.kind.as_str() == kind.as_str() && p.name == name),
    };
    for (kind, namespace, name) in &created.objects {
        if present(*kind, namespace, name) {
            backend.delete(*kind, namespace, name)?;
        }
    }
    let current: BTreeMap<&str, &Labels> = model.namespaces.iter().map(|n| (n.name.as_str(), &n.labels)).collect();
    for (name, labels) in &world.namespaces {
        if current.get(name.as_str()) != Some(&&Namespace::new(name.clone(), labels.clone()).labels) {
            backend.set_namespace(name, labels.clone())?;
        }
    }
    for extra in model.pods.iter().map(|p| p.key()).filter(|k| created.pods.contains(k)) {
        backend.delete_pod(&extra)?;
    }
    let mut missing = Vec::new();
    for spec in &world.pods {
        match model.pods.iter().find(|p| p.namespace == spec.namespace && p.name == spec.name) {
            Some(p) if p.labels != spec.labels => backend.set_pod_labels(&spec.key(), spec.labels.clone())?,
            Some(_) => {}
            None => missing.push(spec.clone()),
        }
    }
    if !missing.is_empty() {
        backend.create_pods(missing)?;
    }
    Ok(())
}
