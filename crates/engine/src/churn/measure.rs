//! Convergence of one change: its changed cells (and some unchanged controls) probed in rounds
//! at a fixed interval until every changed cell is as the oracle now expects, then a few rounds
//! more to catch regressions.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use netmatrix_cluster::{Backend, Outcome, ProbeRequest, Row, Target};
use netmatrix_model::Protocol;
use netmatrix_oracle::incremental::{Cell, CellTarget};
use netmatrix_results::churn::{CellRef, Direction};

use crate::clock::Clock;

/// A cell to watch after a change.
#[derive(Debug, Clone)]
pub struct Watched {
    pub cell: Cell,
    pub address: IpAddr,
    pub expected: bool,
    /// `None` for a control.
    pub direction: Option<Direction>,
    pub nodes: BTreeSet<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Rounds {
    pub interval: Duration,
    pub deadline: Duration,
    pub timeout: Duration,
    pub parallel: usize,
    /// Rounds probed after convergence, to see cells that go wrong again.
    pub settle: usize,
}

/// What the rounds saw, in milliseconds since the change was applied.
#[derive(Debug, Default)]
pub struct Convergence {
    pub latency: Option<f64>,
    pub by_direction: BTreeMap<Direction, Option<f64>>,
    pub by_node: BTreeMap<String, Option<f64>>,
    pub rounds: usize,
    pub round_ms: f64,
    pub not_converged: Vec<CellRef>,
    pub regressed: Vec<CellRef>,
    pub controls_changed: Vec<CellRef>,
    pub probes: usize,
}

pub fn cell_ref(w: &Watched) -> CellRef {
    let dst = match &w.cell.dst {
        CellTarget::Pod(p) => p.to_string(),
        CellTarget::Service { namespace, name } => format!("svc:{namespace}/{name}"),
    };
    CellRef { src: w.cell.src.to_string(), dst, port: w.cell.port, protocol: w.cell.protocol, expected: if w.expected { "allow" } else { "deny" }.into() }
}

fn probe_protocol(p: Protocol) -> netmatrix_cluster::ProbeProtocol {
    match p {
        Protocol::Tcp => netmatrix_cluster::ProbeProtocol::Tcp,
        Protocol::Udp => netmatrix_cluster::ProbeProtocol::Udp,
        Protocol::Sctp => netmatrix_cluster::ProbeProtocol::Sctp,
    }
}

/// One round: every watched cell once, one row per source pod. `Some(allowed)` per cell, `None`
/// where the probe itself failed.
fn round(backend: &dyn Backend, watched: &[Watched], rounds: &Rounds) -> Vec<Option<bool>> {
    let mut by_source: BTreeMap<&netmatrix_model::PodKey, Vec<usize>> = BTreeMap::new();
    for (i, w) in watched.iter().enumerate() {
        by_source.entry(&w.cell.src).or_default().push(i);
    }
    let rows: Vec<Row> = by_source
        .iter()
        .map(|(src, cells)| Row {
            source: (*src).clone(),
            probes: cells
                .iter()
                .map(|&i| {
                    let w = &watched[i];
                    ProbeRequest {
                        timeout: Some(rounds.timeout),
                        identify: false,
                        ..ProbeRequest::new(Target::Ip(w.address), w.cell.port, probe_protocol(w.cell.protocol))
                    }
                })
                .collect(),
            // The exec itself may take a while on a loaded cluster.
            deadline: rounds.timeout + Duration::from_secs(10),
        })
        .collect();
    let results = backend.probe_rows(&rows, rounds.parallel, &|_| {});
    let mut seen = vec![None; watched.len()];
    for ((_, cells), result) in by_source.iter().zip(results) {
        let Ok(results) = result else { continue };
        for (&i, r) in cells.iter().zip(results) {
            seen[i] = match r.outcome {
                Outcome::Connected => Some(true),
                Outcome::Error => None,
                Outcome::Refused | Outcome::Timeout | Outcome::Dns | Outcome::Unreachable | Outcome::Other => Some(false),
            };
        }
    }
    seen
}

/// Probes `watched` in rounds from the moment `applied` (the clock's time when the change's
/// apply returned) until every changed cell is right and `settle` rounds more passed, or the
/// deadline.
pub fn converge(
    backend: &dyn Backend,
    clock: &dyn Clock,
    applied: Duration,
    watched: &[Watched],
    rounds: &Rounds,
    cancelled: &dyn Fn() -> bool,
) -> Convergence {
    let ms = |d: Duration| d.saturating_sub(applied).as_secs_f64() * 1000.0;
    let changed: Vec<usize> = (0..watched.len()).filter(|&i| watched[i].direction.is_some()).collect();
    // Per cell: the start of the round since which it has been right, and whether it went
    // wrong after being right.
    let mut right_since: Vec<Option<f64>> = vec![None; watched.len()];
    let mut regressed = vec![false; watched.len()];
    let mut control_wrong = vec![false; watched.len()];
    let mut out = Convergence::default();
    let mut durations = Vec::new();
    let mut settled_rounds = 0;
    loop {
        let start = clock.elapsed();
        let at = ms(start);
        let seen = round(backend, watched, rounds);
        out.probes += watched.len();
        out.rounds += 1;
        durations.push((clock.elapsed() - start).as_secs_f64() * 1000.0);
        for (i, w) in watched.iter().enumerate() {
            let right = seen[i] == Some(w.expected);
            match (right, right_since[i]) {
                (true, None) => right_since[i] = Some(at),
                (false, Some(_)) => {
                    right_since[i] = None;
                    regressed[i] = true;
                }
                _ => {}
            }
            if w.direction.is_none() && !right {
                control_wrong[i] = true;
            }
        }
        // The first round since which all of a group's cells have been right.
        let latency = |cells: &mut dyn Iterator<Item = usize>| -> Option<f64> {
            let mut latest = 0.0_f64;
            for i in cells {
                latest = latest.max(right_since[i]?);
            }
            Some(latest)
        };
        let all = latency(&mut changed.iter().copied());
        if all.is_some() {
            settled_rounds += 1;
        }
        let now = clock.elapsed();
        if (all.is_some() && settled_rounds > rounds.settle) || now.saturating_sub(applied) >= rounds.deadline || cancelled() {
            out.latency = all;
            for d in Direction::BOTH {
                let mut of_direction = changed.iter().copied().filter(|&i| watched[i].direction == Some(d)).peekable();
                if of_direction.peek().is_some() {
                    out.by_direction.insert(d, latency(&mut of_direction));
                }
            }
            let nodes: BTreeSet<&String> = changed.iter().flat_map(|&i| &watched[i].nodes).collect();
            for node in nodes {
                out.by_node.insert(node.clone(), latency(&mut changed.iter().copied().filter(|&i| watched[i].nodes.contains(node))));
            }
            break;
        }
        let next = start + rounds.interval;
        if next > now {
            clock.sleep(next - now);
        }
    }
    durations.sort_by(f64::total_cmp);
    out.round_ms = durations[durations.len() / 2];
    for (i, w) in watched.iter().enumerate() {
        if w.direction.is_some() && right_since[i].is_none() {
            out.not_converged.push(cell_ref(w));
        } else if w.direction.is_some() && regressed[i] {
            out.regressed.push(cell_ref(w));
        }
        if control_wrong[i] {
            out.controls_changed.push(cell_ref(w));
        }
    }
    out
}
