//! Probing: one batched agent invocation per source pod per try, rows in parallel; a cell not yet
//! as expected twice in a row is probed again, pausing longer each time, until the budget is spent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use netmatrix_cluster::{Backend, Outcome, ProbeProtocol, ProbeRequest, ProbeResult, Profile, Row, Target};
use netmatrix_model::PodKey;
use netmatrix_results::{Comparison, Expected, Observed, compare};

use crate::clock::{Clock, SystemClock};
use crate::plan::Planned;

#[derive(Clone)]
pub struct ProbeConfig {
    /// Per probe attempt.
    pub timeout: Duration,
    /// Tries after the first for cells that are wrong or changed.
    pub retries: u32,
    /// The pause before the first retry, doubled before each further one, so a dataplane still
    /// converging (a real one under load takes seconds) gets time to.
    pub retry_interval: Duration,
    /// Source pods probing at once.
    pub parallel: usize,
    /// Set (by a Ctrl-C handler) to stop the run after the current step, restored.
    pub cancel: Option<&'static AtomicBool>,
    /// When tries happen, and the pause between them.
    pub clock: Arc<dyn Clock>,
    /// What the oracle expects where Kubernetes leaves the outcome open; `None`: the backend's
    /// default (`BackendKind::default_profile`).
    pub profile: Option<Profile>,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            timeout: Duration::from_secs(1),
            retries: 3,
            retry_interval: Duration::from_millis(200),
            parallel: 8,
            cancel: None,
            clock: Arc::new(SystemClock::new()),
            profile: None,
        }
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
        latency_ms: (!timed_out).then_some(result.latency.as_secs_f64() * 1000.0),
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

/// A cell needs no more tries when its first try matched the expectation, when its last two
/// did, or when its last two failed to run. A wrong cell is tried while the budget lasts: a
/// dataplane still converging gets every chance before a cell is called wrong.
fn settled(history: &[Observed], expected: Expected) -> bool {
    let right = |o: &Observed| matches!(compare(expected, *o), Comparison::AsExpected | Comparison::Undefined);
    match history {
        [only] => right(only),
        [.., a, b] => a == b && (right(b) || *b == Observed::Error),
        [] => false,
    }
}

/// What a cell's tries add up to: the last two agreeing, or wrong until it turned right on the
/// last try (a dataplane converging late); anything else kept changing.
fn conclusion(history: &[Observed], expected: Expected) -> Observed {
    let right = |o: &Observed| compare(expected, *o) == Comparison::AsExpected;
    match history {
        [] => Observed::Error,
        [only] => *only,
        [.., a, b] if a == b => *b,
        [wrong @ .., last] if right(last) && !wrong.iter().any(right) => *last,
        h if h.iter().all(|o| *o == Observed::Error) => Observed::Error,
        _ => Observed::Inconclusive,
    }
}

/// Probes every cell, retrying as configured; fills `observed`, `history` (with each try's
/// time), `tries`, latency, answer and detail. Returns the probe attempts made. `on_batch` is
/// told each batch's size.
pub fn probe_cells(backend: &dyn Backend, cells: &mut [Planned], config: &ProbeConfig, on_batch: &(dyn Fn(usize) + Sync)) -> usize {
    let mut sent = 0;
    for attempt in 0..=config.retries {
        let pending: Vec<usize> = (0..cells.len()).filter(|&i| !settled(&cells[i].cell.history, cells[i].cell.expected)).collect();
        if pending.is_empty() {
            break;
        }
        if attempt > 0 {
            config.clock.sleep(config.retry_interval * 2u32.saturating_pow(attempt - 1));
        }
        sent += pending.len();
        let at = config.clock.elapsed().as_millis() as u64;
        for (i, o) in run_try(backend, cells, &pending, config, on_batch) {
            let c = &mut cells[i].cell;
            c.history.push(o.observed);
            c.tried_at_ms.push(at);
            c.latency_ms = o.latency_ms;
            c.answered_by = o.answered_by;
            // A `#` cell keeps the reason it is open; what was observed there decides nothing.
            if c.expected != Expected::Undefined {
                c.detail = o.detail;
            }
        }
    }
    for p in cells.iter_mut() {
        let c = &mut p.cell;
        c.tries = c.history.len() as u32;
        c.observed = conclusion(&c.history, c.expected);
    }
    sent
}

/// What the agent is asked for one cell (several connections for an affinity check).
fn requests(p: &Planned, timeout: Duration) -> impl Iterator<Item = ProbeRequest> {
    let request = ProbeRequest {
        id: Some(p.cell.dst.clone()),
        timeout: Some(timeout),
        source_port: p.source_port,
        ..ProbeRequest::new(Target::Ip(p.address), p.cell.port, probe_protocol(p.cell.protocol))
    };
    std::iter::repeat_n(request, p.repeat)
}

/// One try of the `pending` cells: one row per source, handed to the backend at once.
fn run_try(backend: &dyn Backend, cells: &[Planned], pending: &[usize], config: &ProbeConfig, on_batch: &(dyn Fn(usize) + Sync)) -> Vec<(usize, Observation)> {
    let mut by_source: BTreeMap<&PodKey, Vec<usize>> = BTreeMap::new();
    for &i in pending {
        by_source.entry(&cells[i].source).or_default().push(i);
    }
    let (rows, members): (Vec<Row>, Vec<Vec<usize>>) = by_source
        .into_iter()
        .map(|(source, indices)| {
            let probes: Vec<ProbeRequest> = indices.iter().flat_map(|&i| requests(&cells[i], config.timeout)).collect();
            // The agent runs up to 256 probes at once; a batch ends within a few timeouts.
            let deadline = config.timeout * (2 + probes.len() as u32 / 256) + Duration::from_secs(10);
            (Row { source: source.clone(), probes, deadline }, indices)
        })
        .unzip();
    let results = backend.probe_rows(&rows, config.parallel, &|row| on_batch(members[row].len())).into_iter().map(|r| r.map_err(|e| e.to_string()));
    let mut observed = Vec::with_capacity(pending.len());
    for ((indices, result), row) in members.into_iter().zip(results).zip(&rows) {
        // Cells take their answers by position: a short answer would hand them another's.
        let result = result.and_then(|answers| match answers.len() == row.probes.len() {
            true => Ok(answers),
            false => Err(format!("the backend answered {} of {} probes", answers.len(), row.probes.len())),
        });
        match result {
            Ok(answers) => {
                let mut answers = answers.as_slice();
                for i in indices {
                    let (mine, rest) = answers.split_at(cells[i].repeat);
                    answers = rest;
                    let backends = cells[i].backends.as_deref();
                    observed.push((i, if cells[i].repeat == 1 { observe(&mine[0], backends) } else { observe_affinity(mine, backends) }));
                }
            }
            Err(e) => observed.extend(
                indices.into_iter().map(|i| (i, Observation { observed: Observed::Error, latency_ms: None, answered_by: None, detail: Some(e.clone()) })),
            ),
        }
    }
    observed
}

fn probe_protocol(p: netmatrix_model::Protocol) -> ProbeProtocol {
    match p {
        netmatrix_model::Protocol::Tcp => ProbeProtocol::Tcp,
        netmatrix_model::Protocol::Udp => ProbeProtocol::Udp,
        netmatrix_model::Protocol::Sctp => ProbeProtocol::Sctp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settling() {
        use Observed::*;
        assert!(settled(&[Allow], Expected::Allow));
        assert!(!settled(&[Deny], Expected::Allow), "a wrong first try is tried again");
        assert!(!settled(&[Deny, Deny], Expected::Allow), "a wrong cell is tried while the budget lasts");
        assert!(!settled(&[Deny, Allow], Expected::Allow), "a cell that changed is probed again");
        assert!(settled(&[Deny, Allow, Allow], Expected::Allow));
        assert!(!settled(&[Error], Expected::Deny));
        assert!(settled(&[Error, Error], Expected::Deny), "a probe that cannot run is not run again and again");
    }

    #[test]
    fn concluding() {
        use Observed::*;
        assert_eq!(conclusion(&[Deny, Deny, Deny], Expected::Allow), Deny);
        assert_eq!(conclusion(&[Deny, Deny, Allow], Expected::Allow), Allow, "converged on the last try");
        assert_eq!(conclusion(&[Allow, Deny, Allow], Expected::Allow), Inconclusive, "right, wrong, right: flapping");
        assert_eq!(conclusion(&[Allow, Deny], Expected::Allow), Inconclusive);
        assert_eq!(conclusion(&[Error, Error], Expected::Allow), Error);
    }
}
