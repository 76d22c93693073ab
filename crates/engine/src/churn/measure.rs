//! Convergence of one change: its changed cells (and some unchanged controls) probed in rounds
//! at a fixed interval until every changed cell is as the oracle now expects, then a few rounds
//! more to catch regressions.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use netmatrix_cluster::{Backend, Outcome, ProbeRequest, Row, Target};
use netmatrix_model::{IpFamily, Protocol};
use netmatrix_oracle::incremental::{Cell, CellTarget};
use netmatrix_results::churn::{CellRef, Direction};

use crate::clock::Clock;

/// A cell to watch after a change, on one of its addresses: a cell of a dual-stack destination
/// is watched once per family.
#[derive(Debug, Clone)]
pub struct Watched {
    pub cell: Cell,
    pub address: IpAddr,
    pub expected: bool,
    /// `None` for a control.
    pub direction: Option<Direction>,
    pub nodes: BTreeSet<String>,
}

impl Watched {
    pub fn family(&self) -> IpFamily {
        IpFamily::of(&self.address)
    }
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
    /// By family name, when the watched cells have two families.
    pub by_family: BTreeMap<String, Option<f64>>,
    pub rounds: usize,
    pub round_ms: f64,
    pub not_converged: Vec<CellRef>,
    pub regressed: Vec<CellRef>,
    pub controls_changed: Vec<CellRef>,
    pub probes: usize,
    /// Probes that failed to run (exec errors, agent errors): no verdict either way.
    pub probe_errors: usize,
    /// The last moment a changed cell was seen wrong: the latency lies between it (or the
    /// apply, when none was) and `latency`.
    pub last_wrong: Option<f64>,
}

/// The cell as the report names it, with its family when the change's cells have two (`dual`).
pub fn cell_ref(w: &Watched, dual: bool) -> CellRef {
    let dst = match &w.cell.dst {
        CellTarget::Pod(p) => p.to_string(),
        CellTarget::Service { namespace, name } => format!("svc:{namespace}/{name}"),
    };
    CellRef {
        src: w.cell.src.to_string(),
        dst,
        port: w.cell.port,
        protocol: w.cell.protocol,
        expected: if w.expected { "allow" } else { "deny" }.into(),
        family: dual.then(|| w.family().as_str().to_owned()),
        wrong_outcomes: BTreeMap::new(),
    }
}

fn probe_protocol(p: Protocol) -> netmatrix_cluster::ProbeProtocol {
    match p {
        Protocol::Tcp => netmatrix_cluster::ProbeProtocol::Tcp,
        Protocol::Udp => netmatrix_cluster::ProbeProtocol::Udp,
        Protocol::Sctp => netmatrix_cluster::ProbeProtocol::Sctp,
    }
}

/// What one probe of a round saw, and when: the moment its connection was decided, taken as
/// its row's end less the probe's own latency (an agent starts, probes, and exits; the start
/// of a round would be early by the agent's start-up).
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// `None`: the probe itself failed (no verdict about the network).
    allowed: Option<bool>,
    outcome: Outcome,
    at: Duration,
}

/// One round: every watched cell once, one row per source pod.
fn round(backend: &dyn Backend, clock: &dyn Clock, watched: &[Watched], rounds: &Rounds) -> Vec<Seen> {
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
    let start = clock.elapsed();
    let finished = Mutex::new(vec![start; rows.len()]);
    let results = backend.probe_rows_again(&rows, rounds.parallel, &|row| finished.lock().unwrap()[row] = clock.elapsed());
    let finished = finished.into_inner().unwrap();
    let mut seen = vec![Seen { allowed: None, outcome: Outcome::Error, at: start }; watched.len()];
    for (((_, cells), result), &end) in by_source.iter().zip(results).zip(&finished) {
        let Ok(results) = result else { continue };
        for (&i, r) in cells.iter().zip(results) {
            let allowed = match r.outcome {
                Outcome::Connected => Some(true),
                Outcome::Error => None,
                Outcome::Refused | Outcome::Timeout | Outcome::Dns | Outcome::Unreachable | Outcome::Other => Some(false),
            };
            seen[i] = Seen { allowed, outcome: r.outcome, at: end.saturating_sub(r.latency).max(start) };
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
    // Families are told apart only where there are two: a single-family run reports as before.
    let dual = watched.iter().any(|w| w.family() != watched[0].family());
    // Per cell: the moment of the probe since which it has been right, and whether it went
    // wrong after being right.
    let mut right_since: Vec<Option<f64>> = vec![None; watched.len()];
    let mut regressed = vec![false; watched.len()];
    let mut wrong_outcomes: Vec<BTreeMap<String, usize>> = vec![BTreeMap::new(); watched.len()];
    let mut out = Convergence::default();
    let mut durations = Vec::new();
    let mut settled_rounds = 0;
    loop {
        let start = clock.elapsed();
        let seen = round(backend, clock, watched, rounds);
        out.probes += watched.len();
        out.rounds += 1;
        durations.push((clock.elapsed() - start).as_secs_f64() * 1000.0);
        for (i, w) in watched.iter().enumerate() {
            // A probe that failed to run says nothing about the dataplane: the cell keeps its state.
            let Some(allowed) = seen[i].allowed else {
                out.probe_errors += 1;
                continue;
            };
            let right = allowed == w.expected;
            if !right {
                *wrong_outcomes[i].entry(seen[i].outcome.as_str().to_owned()).or_default() += 1;
                if w.direction.is_some() {
                    out.last_wrong = Some(out.last_wrong.unwrap_or(0.0).max(ms(seen[i].at)));
                }
            }
            match (right, right_since[i]) {
                (true, None) => right_since[i] = Some(ms(seen[i].at)),
                (false, Some(_)) => {
                    right_since[i] = None;
                    regressed[i] = true;
                }
                _ => {}
            }
        }
        // The moment since which all of a group's cells have been right.
        let latency = |cells: &mut dyn Iterator<Item = usize>| -> Option<f64> {
            let mut latest = 0.0_f64;
            for i in cells {
                latest = latest.max(right_since[i]?);
            }
            Some(latest)
        };
        let all = latency(&mut changed.iter().copied());
        // Rounds since the change last converged: a regression starts the count again.
        settled_rounds = if all.is_some() { settled_rounds + 1 } else { 0 };
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
            if dual {
                let families: BTreeSet<IpFamily> = changed.iter().map(|&i| watched[i].family()).collect();
                for family in families {
                    out.by_family.insert(family.as_str().to_owned(), latency(&mut changed.iter().copied().filter(|&i| watched[i].family() == family)));
                }
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
    for ((w, wrong_outcomes), (right_since, regressed)) in watched.iter().zip(wrong_outcomes).zip(right_since.iter().zip(regressed)) {
        let problem = match w.direction {
            Some(_) if right_since.is_none() => &mut out.not_converged,
            Some(_) if regressed => &mut out.regressed,
            None if !wrong_outcomes.is_empty() => &mut out.controls_changed,
            _ => continue,
        };
        problem.push(CellRef { wrong_outcomes, ..cell_ref(w, dual) });
    }
    out
}
