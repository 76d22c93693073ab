//! Probing: one batched agent invocation per source pod per try, rows in parallel; wrong and
//! unsettled cells are probed again until two tries in a row agree or the budget is spent.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use netmatrix_cluster::{Backend, Outcome, ProbeRequest, ProbeResult};
use netmatrix_report::run::{Expected, Observed};

use crate::plan::Planned;

#[derive(Debug, Clone, Copy)]
pub struct ProbeConfig {
    /// Per probe attempt.
    pub timeout: Duration,
    /// Tries after the first for cells that are wrong or changed.
    pub retries: u32,
    /// Source pods probing at once.
    pub parallel: usize,
    /// Set (by a Ctrl-C handler) to stop the run after the current step, restored.
    pub cancel: Option<&'static AtomicBool>,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig { timeout: Duration::from_secs(1), retries: 2, parallel: 8, cancel: None }
    }
}

impl ProbeConfig {
    pub fn cancelled(&self) -> bool {
        self.cancel.is_some_and(|c| c.load(Ordering::SeqCst))
    }
}

/// One try's observation of one cell.
struct Observation {
    observed: Observed,
    latency_ms: Option<f64>,
    answered_by: Option<String>,
    detail: Option<String>,
}

fn observe(result: &ProbeResult, backends: Option<&[String]>) -> Observation {
    let observed = match result.outcome {
        Outcome::Connected => Observed::Allow,
        Outcome::Error => Observed::Error,
        Outcome::Refused | Outcome::Timeout | Outcome::Dns | Outcome::Unreachable | Outcome::Other => Observed::Deny,
    };
    let mut detail = result.detail.clone();
    let stray = match (observed, backends, &result.answered_by) {
        (Observed::Allow, Some(backends), Some(who)) => !backends.contains(who),
        _ => false,
    };
    if stray {
        detail = Some(format!("connected, but answered by {}, which is no backend for this client", result.answered_by.as_deref().unwrap_or_default()));
    }
    let timed_out = result.outcome == Outcome::Timeout;
    Observation {
        // An answer from a pod that is no backend is not the connection the Service promises.
        observed: if stray { Observed::Deny } else { observed },
        latency_ms: (!timed_out).then_some(result.latency_us as f64 / 1000.0),
        answered_by: result.answered_by.clone(),
        detail,
    }
}

/// Affinity holds when every connection of the try succeeded and one backend answered them all.
fn observe_affinity(results: &[ProbeResult], backends: Option<&[String]>) -> Observation {
    let each: Vec<Observation> = results.iter().map(|r| observe(r, backends)).collect();
    if let Some(failed) = each.iter().find(|o| o.observed != Observed::Allow) {
        return Observation {
            observed: failed.observed,
            latency_ms: None,
            answered_by: None,
            detail: Some(format!("a connection failed: {}", failed.detail.as_deref().unwrap_or("no answer"))),
        };
    }
    let mut who: Vec<&str> = each.iter().filter_map(|o| o.answered_by.as_deref()).collect();
    who.sort_unstable();
    who.dedup();
    let one = who.len() == 1;
    Observation {
        observed: if one { Observed::Allow } else { Observed::Deny },
        latency_ms: each.last().and_then(|o| o.latency_ms),
        answered_by: one.then(|| who[0].to_owned()),
        detail: (!one).then(|| format!("{} connections answered by {}", each.len(), who.join(", "))),
    }
}

/// A cell is settled when its first try matched the expectation, or its last two tries agree.
fn settled(history: &[Observed], expected: Expected) -> bool {
    match history {
        [only] => matches!((expected, only), (Expected::Allow, Observed::Allow) | (Expected::Deny, Observed::Deny) | (Expected::Undefined, _)),
        [.., a, b] => a == b,
        [] => false,
    }
}

/// Probes every cell, retrying as configured; fills `observed`, `history`, `tries`, latency,
/// answer and detail. Returns the probe attempts made. `on_batch` is told each batch's size.
pub fn probe_cells(backend: &dyn Backend, cells: &mut [Planned], config: ProbeConfig, on_batch: &(dyn Fn(usize) + Sync)) -> usize {
    let mut sent = 0;
    for _try in 0..=config.retries {
        let pending: Vec<usize> = (0..cells.len()).filter(|&i| !settled(&cells[i].cell.history, cells[i].cell.expected)).collect();
        if pending.is_empty() {
            break;
        }
        sent += pending.len();
        let observations = run_try(backend, cells, &pending, config, on_batch);
        for (i, o) in observations {
            let c = &mut cells[i].cell;
            c.history.push(o.observed);
            c.latency_ms = o.latency_ms;
            c.answered_by = o.answered_by;
            c.detail = o.detail;
        }
    }
    for p in cells.iter_mut() {
        let c = &mut p.cell;
        c.tries = c.history.len() as u32;
        c.observed = match c.history.as_slice() {
            [] => Observed::Error,
            [only] => *only,
            h if settled(h, c.expected) => h[h.len() - 1],
            h if h.iter().all(|o| *o == Observed::Error) => Observed::Error,
            _ => Observed::Inconclusive,
        };
    }
    sent
}

/// One try of the `pending` cells: rows grouped by source, `config.parallel` rows at a time.
fn run_try(backend: &dyn Backend, cells: &[Planned], pending: &[usize], config: ProbeConfig, on_batch: &(dyn Fn(usize) + Sync)) -> Vec<(usize, Observation)> {
    let mut rows: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for &i in pending {
        rows.entry((&cells[i].src_namespace, &cells[i].src_pod)).or_default().push(i);
    }
    let queue = Mutex::new(rows.into_iter().collect::<Vec<_>>());
    let results = Mutex::new(Vec::new());
    let timeout = format!("{}ms", config.timeout.as_millis().max(1));
    std::thread::scope(|s| {
        for _ in 0..config.parallel.max(1) {
            s.spawn(|| {
                loop {
                    // Taken in its own statement: a guard in the loop condition would be held
                    // for the whole row, and rows would run one at a time.
                    let next = queue.lock().unwrap().pop();
                    let Some(((ns, pod), indices)) = next else { break };
                    let requests: Vec<ProbeRequest> = indices
                        .iter()
                        .flat_map(|&i| {
                            let p = &cells[i];
                            let request = ProbeRequest {
                                id: p.cell.dst.clone(),
                                target: p.address.clone(),
                                port: p.cell.port,
                                protocol: protocol_name(p.cell.protocol),
                                timeout: timeout.clone(),
                                source_port: p.source_port,
                            };
                            std::iter::repeat_n(request, p.repeat)
                        })
                        .collect();
                    // The agent runs up to 256 probes at once; a batch ends within a few timeouts.
                    let deadline = config.timeout * (2 + requests.len() as u32 / 256) + Duration::from_secs(10);
                    let row: Vec<(usize, Observation)> = match backend.probe(ns, pod, &requests, deadline) {
                        Ok(answers) => {
                            let mut answers = answers.as_slice();
                            indices
                                .iter()
                                .map(|&i| {
                                    let (mine, rest) = answers.split_at(cells[i].repeat);
                                    answers = rest;
                                    (
                                        i,
                                        if cells[i].repeat == 1 {
                                            observe(&mine[0], cells[i].backends.as_deref())
                                        } else {
                                            observe_affinity(mine, cells[i].backends.as_deref())
                                        },
                                    )
                                })
                                .collect()
                        }
                        Err(e) => indices
                            .iter()
                            .map(|&i| (i, Observation { observed: Observed::Error, latency_ms: None, answered_by: None, detail: Some(e.to_string()) }))
                            .collect(),
                    };
                    on_batch(row.len());
                    results.lock().unwrap().extend(row);
                }
            });
        }
    });
    results.into_inner().unwrap()
}

fn protocol_name(p: netmatrix_model::Protocol) -> &'static str {
    match p {
        netmatrix_model::Protocol::Tcp => "tcp",
        netmatrix_model::Protocol::Udp => "udp",
        netmatrix_model::Protocol::Sctp => "sctp",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settling() {
        use Observed::*;
        assert!(settled(&[Allow], Expected::Allow));
        assert!(!settled(&[Deny], Expected::Allow), "a wrong first try is confirmed by a second");
        assert!(settled(&[Deny, Deny], Expected::Allow));
        assert!(!settled(&[Deny, Allow], Expected::Allow), "a cell that changed is probed again");
        assert!(settled(&[Deny, Allow, Allow], Expected::Allow));
        assert!(!settled(&[Error], Expected::Deny));
    }
}
