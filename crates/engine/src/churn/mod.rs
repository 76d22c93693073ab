//! `netmatrix churn`: how fast a dataplane enforces change. For each load pattern, its objects
//! are made and converged, then each change is applied, the incremental oracle says which cells
//! it changed, and those cells (with unchanged controls) are probed at a fixed interval until
//! they are right: the latency per change, per direction and per node.

pub mod measure;
pub mod patterns;
pub mod world;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Instant, SystemTime};

use netmatrix_cluster::{Backend, BackendError};
use netmatrix_model::{Cluster, Pod, PodKey, parse_str};
use netmatrix_oracle::Options;
use netmatrix_oracle::incremental::{Cell, CellChange, CellTarget, Delta, Incremental};
use netmatrix_results::ClusterInfo;
use netmatrix_results::churn::{CHURN_SCHEMA, ChangeReport, ChurnReport, Direction, LatencySummary, PatternReport, Shape};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::clock::Clock;
use measure::{Rounds, Watched, converge};
use patterns::{Act, Change, Churner, Pattern};

#[derive(Debug, Clone)]
pub struct ChurnConfig {
    pub shape: Shape,
    pub seed: u64,
    pub patterns: Vec<Pattern>,
    pub rounds: Rounds,
}

#[derive(Debug, thiserror::Error)]
pub enum ChurnError {
    #[error("{what}: {source}")]
    Backend {
        what: String,
        #[source]
        source: BackendError,
    },
    #[error("{0}")]
    Oracle(String),
    #[error("interrupted during {0}; what the run created is removed")]
    Interrupted(Pattern),
}

impl ChurnError {
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::Backend { source, .. } if source.is_bad_input())
    }
}

fn backend_err(what: impl Into<String>) -> impl FnOnce(BackendError) -> ChurnError {
    let what = what.into();
    move |source| ChurnError::Backend { what, source }
}

/// What the driver tells its caller as it goes.
pub enum Progress<'a> {
    Pattern(Pattern),
    Change(Pattern, &'a ChangeReport),
}

/// Runs every pattern of `config` on `backend`, which must hold nothing of the world yet (a
/// fresh lab or run namespace).
pub fn run(
    backend: &mut dyn Backend,
    config: &ChurnConfig,
    clock: &dyn Clock,
    cancelled: &dyn Fn() -> bool,
    on: &dyn Fn(Progress),
) -> Result<ChurnReport, ChurnError> {
    let started = SystemTime::now();
    let wall = Instant::now();
    let nodes: Vec<String> = backend.nodes().iter().map(|n| n.name.clone()).collect();
    let world = world::world(&config.shape, &nodes);
    for (name, labels) in &world.namespaces {
        backend.set_namespace(name, labels.clone()).map_err(backend_err(format!("creating namespace {name}")))?;
    }
    backend.create_pods(world.pods.clone()).map_err(backend_err("creating the churn pods"))?;
    let mut patterns = Vec::new();
    for &pattern in &config.patterns {
        on(Progress::Pattern(pattern));
        let mut churner = Churner::new(pattern, config.shape, &world, config.seed);
        let measured = run_pattern(backend, config, clock, &mut churner, cancelled, on);
        // The pattern's objects go whatever happened, so the next pattern starts from the world.
        let undone = apply_acts(backend, &churner.teardown(&world)).map_err(backend_err(format!("removing what {pattern} made")));
        let (setup, changes) = measured?;
        undone?;
        patterns.push(PatternReport { pattern: pattern.as_str().to_owned(), summary: LatencySummary::all(&changes), setup: Some(setup), changes });
    }
    Ok(ChurnReport {
        schema: CHURN_SCHEMA.to_owned(),
        backend: backend.kind().as_str().to_owned(),
        started: humantime::format_rfc3339_seconds(started).to_string(),
        duration_ms: wall.elapsed().as_millis() as u64,
        cluster: ClusterInfo { nodes, server_version: backend.server_version().unwrap_or_default(), namespaces: backend.real_namespaces(), shards: Vec::new() },
        seed: config.seed,
        shape: config.shape,
        interval_ms: config.rounds.interval.as_secs_f64() * 1000.0,
        deadline_ms: config.rounds.deadline.as_millis() as u64,
        patterns,
    })
}

fn run_pattern(
    backend: &mut dyn Backend,
    config: &ChurnConfig,
    clock: &dyn Clock,
    churner: &mut Churner,
    cancelled: &dyn Fn() -> bool,
    on: &dyn Fn(Progress),
) -> Result<(ChangeReport, Vec<ChangeReport>), ChurnError> {
    let pattern = churner.pattern();
    let model = backend.model().map_err(backend_err("reading the objects"))?;
    let mut oracle = Incremental::new(&model, Options { ipblocks_match_pods: true }).map_err(|e| ChurnError::Oracle(e.to_string()))?;
    let mut rng = StdRng::seed_from_u64(config.seed.wrapping_add(pattern as u64));
    // The setup is measured like a change, not reported: every change starts converged.
    let setup = step(backend, &mut oracle, &churner.setup(), config, clock, &mut rng, cancelled)?;
    // Changes measured from a state that never converged would blame them for the setup's cells.
    if !setup.not_converged.is_empty() {
        return Ok((setup, Vec::new()));
    }
    let mut changes = Vec::new();
    for index in 0..config.shape.changes {
        if cancelled() {
            return Err(ChurnError::Interrupted(pattern));
        }
        let change = churner.next_change();
        let mut report = step(backend, &mut oracle, &change, config, clock, &mut rng, cancelled)?;
        report.index = index;
        on(Progress::Change(pattern, &report));
        changes.push(report);
    }
    Ok((setup, changes))
}

fn apply_acts(backend: &mut dyn Backend, acts: &[Act]) -> Result<(), BackendError> {
    for act in acts {
        match act {
            Act::SetNamespace { name, labels } => backend.set_namespace(name, labels.clone())?,
            Act::SetPodLabels { pod, labels } => backend.set_pod_labels(pod, labels.clone())?,
            Act::RecreatePod(spec) => {
                backend.delete_pod(&spec.key())?;
                backend.create_pods(vec![spec.clone()])?;
            }
            Act::Apply(manifest) => backend.apply(vec![manifest.clone()])?,
            Act::Delete { kind, namespace, name } => backend.delete(*kind, namespace, name)?,
        }
    }
    Ok(())
}

/// Applies one change, updates the oracle, and measures its convergence (`index` 0: the
/// caller numbers changes).
pub fn step(
    backend: &mut dyn Backend,
    oracle: &mut Incremental,
    change: &Change,
    config: &ChurnConfig,
    clock: &dyn Clock,
    rng: &mut StdRng,
    cancelled: &dyn Fn() -> bool,
) -> Result<ChangeReport, ChurnError> {
    let before = clock.elapsed();
    apply_acts(backend, &change.acts).map_err(backend_err(change.description.clone()))?;
    let applied = clock.elapsed();
    let server_time = backend.last_change_time();
    // Pods made and Services allocated by the backend are known only from it.
    let needs_model = change.acts.iter().any(|a| matches!(a, Act::RecreatePod(_)) || matches!(a, Act::Apply(m) if m["kind"] == "Service"));
    let model = if needs_model { Some(backend.model().map_err(backend_err("reading the objects"))?) } else { None };
    let deltas = deltas(&change.acts, model.as_ref(), oracle)?;
    let timer = Instant::now();
    let mut merged: BTreeMap<Cell, Merged> = BTreeMap::new();
    for delta in deltas {
        for c in oracle.apply(delta).map_err(|e| ChurnError::Oracle(e.to_string()))? {
            merge(&mut merged, c);
        }
    }
    let oracle_us = timer.elapsed().as_secs_f64() * 1e6;
    let mut watched: Vec<Watched> = Vec::new();
    let mut cells: BTreeMap<Direction, usize> = BTreeMap::new();
    for (cell, m) in &merged {
        let Some(after) = m.after else { continue };
        if m.before == Some(after) && !m.recreated {
            continue;
        }
        let direction = if after { Direction::DenyToAllow } else { Direction::AllowToDeny };
        // Each family of the destination: a dual-stack dataplane has rules per family.
        let addresses = oracle.addresses(&cell.dst);
        if addresses.is_empty() {
            return Err(ChurnError::Oracle(format!("no address for {:?}", cell.dst)));
        }
        for address in addresses {
            *cells.entry(direction).or_default() += 1;
            watched.push(Watched { cell: cell.clone(), address, expected: after, direction: Some(direction), nodes: m.nodes.clone() });
        }
    }
    let controls = controls(oracle, &merged, config.shape.controls, rng);
    let control_count = controls.len();
    watched.extend(controls);
    let seen = converge(backend, clock, applied, &watched, &config.rounds, cancelled);
    // Without changed cells there is nothing to converge: only the controls were watched.
    let latency_ms = seen.latency.filter(|_| !cells.is_empty());
    Ok(ChangeReport {
        index: 0,
        description: change.description.clone(),
        applied_at_ms: applied.as_secs_f64() * 1000.0,
        apply_ms: (applied - before).as_secs_f64() * 1000.0,
        server_time,
        oracle_us,
        cells,
        controls: control_count,
        latency_ms,
        last_wrong_ms: seen.last_wrong,
        latency_by_direction: seen.by_direction,
        latency_by_node: seen.by_node,
        latency_by_family: seen.by_family,
        rounds: seen.rounds,
        round_ms: seen.round_ms,
        not_converged: seen.not_converged,
        regressed: seen.regressed,
        controls_changed: seen.controls_changed,
        probe_errors: seen.probe_errors,
    })
}

/// A cell over all the deltas of one change: its first verdict, its last, and whether it was
/// gone in between (a recreated pod's cells are new even when their verdict is the same).
#[derive(Debug, Default)]
struct Merged {
    before: Option<bool>,
    after: Option<bool>,
    recreated: bool,
    nodes: BTreeSet<String>,
}

fn merge(merged: &mut BTreeMap<Cell, Merged>, change: CellChange) {
    match merged.get_mut(&change.cell) {
        Some(m) => {
            m.recreated |= m.after.is_none() && change.after.is_some();
            m.after = change.after;
            m.nodes.extend(change.nodes.iter().map(|n| n.to_string()));
        }
        None => {
            merged.insert(
                change.cell,
                Merged { before: change.before, after: change.after, recreated: false, nodes: change.nodes.iter().map(|n| n.to_string()).collect() },
            );
        }
    }
}

/// The oracle's deltas for what `acts` did; `model` is the backend's objects after them.
fn deltas(acts: &[Act], model: Option<&Cluster>, oracle: &Incremental) -> Result<Vec<Delta>, ChurnError> {
    let from_model = |key: &PodKey| -> Result<Pod, ChurnError> {
        model
            .and_then(|m| m.pods.iter().find(|p| p.namespace == key.namespace && p.name == key.name))
            .cloned()
            .ok_or_else(|| ChurnError::Oracle(format!("pod {key} is not in the backend's objects")))
    };
    let mut out = Vec::new();
    for act in acts {
        match act {
            Act::SetNamespace { name, labels } => out.push(Delta::Namespace { name: name.clone(), labels: labels.clone() }),
            Act::SetPodLabels { pod, labels } => {
                let mut now = oracle.pod(pod).cloned().ok_or_else(|| ChurnError::Oracle(format!("pod {pod} unknown to the oracle")))?;
                now.labels = labels.clone();
                out.push(Delta::Pod(now));
            }
            Act::RecreatePod(spec) => {
                out.push(Delta::RemovePod(spec.key()));
                out.push(Delta::Pod(from_model(&spec.key())?));
            }
            Act::Apply(manifest) => {
                let parsed = parse_str("churn", &manifest.to_string()).map_err(|e| ChurnError::Oracle(e.to_string()))?;
                if let Some(policy) = parsed.policies.into_iter().next() {
                    out.push(Delta::Policy(policy));
                } else if let Some(service) = parsed.services.first() {
                    let allocated = model
                        .and_then(|m| m.services.iter().find(|s| s.namespace == service.namespace && s.name == service.name))
                        .ok_or_else(|| ChurnError::Oracle(format!("Service {}/{} is not in the backend's objects", service.namespace, service.name)))?;
                    out.push(Delta::Service(allocated.clone()));
                }
            }
            Act::Delete { kind, namespace, name } => out.push(match kind {
                netmatrix_cluster::ObjectKind::Service => Delta::RemoveService { namespace: namespace.clone(), name: name.clone() },
                _ => Delta::RemovePolicy { namespace: namespace.clone(), name: name.clone() },
            }),
        }
    }
    Ok(out)
}

/// Up to `count` cells the change did not touch, drawn at random among pod-to-pod cells, each
/// watched on every family of its destination.
fn controls(oracle: &Incremental, merged: &BTreeMap<Cell, Merged>, count: usize, rng: &mut StdRng) -> Vec<Watched> {
    let pods: Vec<std::sync::Arc<PodKey>> = oracle.pods().map(|p| std::sync::Arc::new(p.key())).collect();
    let mut cells: BTreeSet<Cell> = BTreeSet::new();
    let mut out: Vec<Watched> = Vec::new();
    for _ in 0..count * 20 {
        if cells.len() >= count || pods.len() < 2 {
            break;
        }
        let (src, dst) = (&pods[rng.random_range(0..pods.len())], &pods[rng.random_range(0..pods.len())]);
        let Some(port) = oracle.pod(dst).and_then(|p| p.ports.first()) else { continue };
        let cell = Cell { src: src.clone(), dst: CellTarget::Pod(dst.clone()), port: port.port, protocol: port.protocol };
        if merged.contains_key(&cell) || cells.contains(&cell) {
            continue;
        }
        let addresses = oracle.addresses(&cell.dst);
        let Some(expected) = oracle.verdict(&cell).filter(|_| !addresses.is_empty()) else { continue };
        out.extend(addresses.into_iter().map(|address| Watched { cell: cell.clone(), address, expected, direction: None, nodes: BTreeSet::new() }));
        cells.insert(cell);
    }
    out
}
