//! The `delay-policy` fault's applier: one node's rule updates, each applied when it is due
//! (a while after it was made), in the order made, on a thread of its own so that
//! `Lab::sync` does not wait for them.

use std::collections::VecDeque;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crate::LabError;

/// An update of a node's table, held back until `due`.
pub struct Update {
    pub due: Instant,
    /// What the table holds when this is applied (the update queued before it), where known:
    /// the base of an incremental update. `None`: replace the whole table.
    pub old: Option<String>,
    pub script: String,
}

/// Applies an update, on the applier's thread.
pub type Apply = Box<dyn FnMut(&Update) -> Result<(), LabError> + Send>;

pub struct Delayed {
    /// Closing it ends the thread, once it has applied what was queued (at once, due or not).
    queue: Option<mpsc::Sender<Update>>,
    thread: Option<JoinHandle<()>>,
    /// The last failed update, until the lab takes it: it then replaces the whole table.
    failed: Arc<Mutex<Option<LabError>>>,
}

impl Delayed {
    pub fn start(what: &str, mut apply: Apply) -> Result<Self, LabError> {
        let (queue, updates) = mpsc::channel();
        let failed = Arc::new(Mutex::new(None));
        let failures = Arc::clone(&failed);
        let thread = std::thread::Builder::new()
            .name(format!("delay-policy {what}"))
            .spawn(move || {
                for update in due(updates) {
                    if let Err(e) = apply(&update) {
                        *failures.lock().unwrap() = Some(e);
                    }
                }
            })
            .map_err(|source| LabError::Io { what: format!("starting the delay-policy applier of {what}"), source })?;
        Ok(Delayed { queue: Some(queue), thread: Some(thread), failed })
    }

    pub fn push(&self, update: Update) {
        // The thread lives until `queue` is closed: sending cannot fail but by a panic there,
        // which `finish` reports.
        let _ = self.queue.as_ref().expect("open until finished").send(update);
    }

    /// The last update that failed since the last call, if one did.
    pub fn take_failure(&self) -> Option<LabError> {
        self.failed.lock().unwrap().take()
    }

    /// Applies what is still queued, at once, and ends the thread; the last failure, if any.
    pub fn finish(mut self) -> Result<(), LabError> {
        let panicked = self.stop();
        match self.take_failure() {
            Some(e) => Err(e),
            None if panicked => Err(LabError::Panicked("the delay-policy applier".into())),
            None => Ok(()),
        }
    }

    /// Closes the queue and waits for the thread to apply the rest; whether it panicked.
    fn stop(&mut self) -> bool {
        drop(self.queue.take());
        self.thread.take().is_some_and(|t| t.join().is_err())
    }
}

impl Drop for Delayed {
    /// A lab value that goes away applies what it held back (the saved state says it was
    /// applied), without waiting for it to be due.
    fn drop(&mut self) {
        self.stop();
    }
}

/// The updates received, each when it is due, in the order received; once the sender is gone,
/// the rest at once.
fn due(updates: mpsc::Receiver<Update>) -> impl Iterator<Item = Update> {
    let mut queue = VecDeque::new();
    let mut open = true;
    std::iter::from_fn(move || {
        // Takes in updates while waiting for the first one's due time: the sender must never
        // block on this thread.
        while open {
            let received = match queue.front() {
                None => updates.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(Update { due, .. }) => match due.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
                    Some(left) => updates.recv_timeout(left),
                    None => break,
                },
            };
            match received {
                Ok(update) => queue.push_back(update),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => open = false,
            }
        }
        queue.pop_front()
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Each update applied: its script, and when.
    type Log = Arc<Mutex<Vec<(String, Instant)>>>;

    /// Starts an applier that records what it applies and fails on script "bad".
    fn recording() -> (Delayed, Log) {
        let applied = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&applied);
        let delayed = Delayed::start(
            "test",
            Box::new(move |u: &Update| {
                log.lock().unwrap().push((u.script.clone(), Instant::now()));
                if u.script == "bad" { Err(LabError::BadInput("bad".into())) } else { Ok(()) }
            }),
        )
        .unwrap();
        (delayed, applied)
    }

    fn update(due: Instant, script: &str) -> Update {
        Update { due, old: None, script: script.into() }
    }

    #[test]
    fn updates_are_applied_when_due_in_the_order_made() {
        let (delayed, applied) = recording();
        let start = Instant::now();
        let ms = Duration::from_millis;
        delayed.push(update(start + ms(150), "a"));
        delayed.push(update(start + ms(200), "b"));
        // Due earlier but made later (the delay was shortened): still after "b".
        delayed.push(update(start + ms(50), "c"));
        std::thread::sleep(ms(100));
        assert!(applied.lock().unwrap().is_empty(), "nothing is due yet");
        std::thread::sleep(ms(250));
        let log = applied.lock().unwrap().clone();
        assert_eq!(log.iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert!(log[0].1 >= start + ms(150) && log[1].1 >= start + ms(200), "each when due");
        assert!(delayed.finish().is_ok());
    }

    #[test]
    fn finishing_applies_the_rest_at_once_and_reports_a_failure() {
        let (delayed, applied) = recording();
        let start = Instant::now();
        let later = start + Duration::from_secs(60);
        for script in ["a", "bad", "c"] {
            delayed.push(update(later, script));
        }
        let err = delayed.finish().unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(5), "not waiting for them to be due");
        assert_eq!(err.to_string(), "bad");
        assert_eq!(applied.lock().unwrap().iter().map(|(s, _)| s.as_str()).collect::<Vec<_>>(), ["a", "bad", "c"], "a failure stops nothing after it");
    }

    #[test]
    fn a_failure_is_taken_once_and_dropping_applies_what_is_queued() {
        let (delayed, applied) = recording();
        delayed.push(update(Instant::now(), "bad"));
        let start = Instant::now();
        while delayed.failed.lock().unwrap().is_none() {
            assert!(start.elapsed() < Duration::from_secs(5), "the update is due at once");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(delayed.take_failure().is_some() && delayed.take_failure().is_none());
        delayed.push(update(Instant::now() + Duration::from_secs(60), "d"));
        drop(delayed);
        assert_eq!(applied.lock().unwrap().last().unwrap().0, "d", "dropped: applied, not lost");
    }
}
