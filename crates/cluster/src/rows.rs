//! Rows of probes: one source pod's batch, run in one exec of its agent.

use std::sync::Mutex;
use std::time::Duration;

use netmatrix_model::PodKey;

use crate::{BackendError, ProbeRequest, ProbeResult};

/// One source pod's probes for one try.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub source: PodKey,
    pub probes: Vec<ProbeRequest>,
    /// For the whole batch, exec included.
    pub deadline: Duration,
}

/// A row's results in probe order, or why the row could not be probed.
pub type RowResult = Result<Vec<ProbeResult>, BackendError>;

/// Runs `probe` over `rows` on `parallel` threads (for backends whose execs block), telling
/// `on_row` each row's index as it finishes; results in row order.
pub fn probe_rows_on_threads(rows: &[Row], parallel: usize, on_row: &(dyn Fn(usize) + Sync), probe: impl Fn(&Row) -> RowResult + Sync) -> Vec<RowResult> {
    let next = Mutex::new(0..rows.len());
    let results: Mutex<Vec<Option<RowResult>>> = Mutex::new((0..rows.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..parallel.clamp(1, rows.len().max(1)) {
            s.spawn(|| {
                loop {
                    // Taken in its own statement: a guard in the loop condition would be held
                    // for the whole row, and rows would run one at a time.
                    let index = next.lock().unwrap().next();
                    let Some(index) = index else { break };
                    let result = probe(&rows[index]);
                    results.lock().unwrap()[index] = Some(result);
                    on_row(index);
                }
            });
        }
    });
    results.into_inner().unwrap().into_iter().map(|r| r.expect("every row ran")).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Barrier};

    use super::*;

    fn row(name: &str) -> Row {
        Row { source: PodKey::new("x", name), probes: Vec::new(), deadline: Duration::from_secs(1) }
    }

    #[test]
    fn rows_run_in_parallel_and_results_keep_row_order() {
        let rows: Vec<Row> = ["a", "b", "c", "d"].map(row).to_vec();
        // Four rows can only pass a four-party barrier if they run at once.
        let barrier = Arc::new(Barrier::new(4));
        let finished = AtomicUsize::new(0);
        let results = probe_rows_on_threads(
            &rows,
            4,
            &|_| {
                finished.fetch_add(1, Ordering::SeqCst);
            },
            |r| {
                barrier.wait();
                Err(BackendError::BadInput(r.source.to_string()))
            },
        );
        let order: Vec<String> = results.into_iter().map(|r| r.unwrap_err().to_string()).collect();
        assert_eq!(order, ["x/a", "x/b", "x/c", "x/d"]);
        assert_eq!(finished.load(Ordering::SeqCst), 4);
    }
}
