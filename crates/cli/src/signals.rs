//! SIGINT, SIGTERM and SIGHUP: the first asks the run to stop after its current step and clean
//! up (the main thread does that: cleaning up here would race with its own writes); a second
//! quits at once after the quickest removal the backend offers.

use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::{Mutex, OnceLock};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// Set by the first signal: the engine stops after the current step.
pub static CANCEL: AtomicBool = AtomicBool::new(false);
/// The first signal's number, for the exit code.
static RECEIVED: AtomicI32 = AtomicI32::new(0);

type Abort = Box<dyn Fn() + Send + Sync>;

fn abort() -> &'static Mutex<Option<Abort>> {
    static ABORT: OnceLock<Mutex<Option<Abort>>> = OnceLock::new();
    ABORT.get_or_init(Mutex::default)
}

/// Handles the three signals from now on.
pub fn install() -> std::io::Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP])?;
    std::thread::spawn(move || {
        for signal in signals.forever() {
            if RECEIVED.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst).is_ok() {
                CANCEL.store(true, Ordering::SeqCst);
                eprintln!("\ninterrupted: stopping after this step and removing what the run created (again to quit at once)");
                continue;
            }
            if let Some(abort) = abort().lock().unwrap().as_ref() {
                abort();
            }
            std::process::exit(128 + signal);
        }
    });
    Ok(())
}

/// What a second signal runs before quitting (replacing what was set before).
pub fn on_abort(handle: Option<Abort>) {
    *abort().lock().unwrap() = handle;
}

/// The signal that interrupted the run, if one did.
pub fn received() -> Option<i32> {
    Some(RECEIVED.load(Ordering::SeqCst)).filter(|&s| s != 0)
}
