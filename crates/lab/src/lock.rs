//! One command at a time per lab: an flock on a lock file per lab, held while a `Lab` value
//! lives. The kernel releases it when the process ends, however it ends.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::LabError;

/// A held lock, released when the last clone is dropped.
pub struct Held {
    path: PathBuf,
    flock: Flock<File>,
}

impl Held {
    /// Removes the lock file, with the lab: whoever waits on it then finds it gone and takes a
    /// new one, and so does this process.
    pub fn remove(&self) {
        HELD.lock().unwrap().remove(&self.path);
        let _ = std::fs::remove_file(&self.path);
    }

    /// Whether the lock file is still the one held: not removed with the lab (whose name a
    /// new lab may have taken since, with a lock file of its own).
    pub fn is_current(&self) -> bool {
        same_file(&self.flock, &self.path)
    }
}

/// The locks this process holds, by path.
static HELD: Mutex<BTreeMap<PathBuf, Weak<Held>>> = Mutex::new(BTreeMap::new());

/// Locks lab `lab` at `path`, waiting up to `wait` for another process to release it. A lock
/// this process holds already is shared: removing a lab after a failure, or from a signal
/// handler, must not wait for the command that holds it.
pub fn acquire(path: &Path, lab: &str, wait: Duration) -> Result<Arc<Held>, LabError> {
    if let Some(held) = HELD.lock().unwrap().get(path).and_then(Weak::upgrade) {
        return Ok(held);
    }
    let io = |source| LabError::Io { what: format!("locking lab {lab} ({})", path.display()), source };
    let start = Instant::now();
    let flock = loop {
        let mut file = File::options().read(true).write(true).create(true).truncate(false).open(path).map_err(io)?;
        let flock = loop {
            file = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(flock) => break flock,
                Err((file, Errno::EWOULDBLOCK)) if start.elapsed() < wait => file,
                Err((mut file, Errno::EWOULDBLOCK)) => return Err(LabError::Busy { lab: lab.to_owned(), holder: holder(&mut file), waited: wait }),
                Err((_, errno)) => return Err(io(errno.into())),
            };
            std::thread::sleep(Duration::from_millis(50));
        };
        // A file removed while this waited for it locks nothing: take the one at `path` now.
        if same_file(&flock, path) {
            break flock;
        }
    };
    // For the message of whoever waits next.
    flock.set_len(0).and_then(|()| flock.write_all_at(format!("{}\n", std::process::id()).as_bytes(), 0)).map_err(io)?;
    let held = Arc::new(Held { path: path.to_owned(), flock });
    let mut table = HELD.lock().unwrap();
    table.retain(|_, h| h.strong_count() > 0);
    table.insert(path.to_owned(), Arc::downgrade(&held));
    Ok(held)
}

fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    }
}

/// The pid the holder wrote, if it has yet.
fn holder(file: &mut File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    use super::*;

    #[test]
    fn a_process_shares_its_own_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.lock");
        let first = acquire(&path, "t", Duration::ZERO).unwrap();
        let again = acquire(&path, "t", Duration::ZERO).unwrap();
        assert!(Arc::ptr_eq(&first, &again) && first.is_current());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), format!("{}\n", std::process::id()));
        first.remove();
        assert!(!path.exists() && !first.is_current());
        let next = acquire(&path, "t", Duration::ZERO).unwrap();
        assert!(!Arc::ptr_eq(&first, &next) && path.exists(), "a removed lock is not shared: it locks nothing");
        assert!(next.is_current() && !first.is_current(), "the new lock file is not the removed one");
    }

    #[test]
    fn a_lab_another_process_holds_is_refused_after_the_wait_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.lock");
        std::fs::write(&path, "").unwrap();
        // In a group of its own: killing the group ends `sleep` too, which holds the lock as well.
        let mut other = Command::new("flock").arg(&path).args(["sleep", "30"]).process_group(0).spawn().expect("flock(1), of util-linux");
        let start = Instant::now();
        while acquire(&path, "t", Duration::ZERO).is_ok() {
            assert!(start.elapsed() < Duration::from_secs(10), "flock(1) took the lock");
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::write(&path, format!("{}\n", other.id())).unwrap();
        let start = Instant::now();
        let err = acquire(&path, "t", Duration::from_millis(300)).err().expect("busy");
        assert!(start.elapsed() >= Duration::from_millis(300), "waited");
        assert!(matches!(err, LabError::Busy { holder: Some(pid), .. } if pid == other.id()), "{err}");
        assert!(err.to_string().contains(&format!("lab t is in use by another netmatrix command (pid {})", other.id())), "{err}");
        kill(Pid::from_raw(-(other.id() as i32)), Signal::SIGKILL).unwrap();
        other.wait().unwrap();
        acquire(&path, "t", Duration::from_secs(5)).expect("released when its holder ends");
    }
}
