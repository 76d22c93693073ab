//! Named network namespaces, kept as `ip netns` keeps them (bind mounts under `/run/netns`, so
//! `ip netns list` shows them), and code run inside one. Each operation runs on a fresh thread
//! that enters the namespace: the caller's threads never change namespace, and no fork is needed.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

const NETNS_DIR: &str = "/run/netns";

pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Creates the namespace; an existing one of that name is an error, never taken over.
pub fn create(name: &str) -> io::Result<()> {
    std::fs::create_dir_all(NETNS_DIR)?;
    let target = path(name);
    File::options().write(true).create_new(true).open(&target)?;
    let made = std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            unshare(CloneFlags::CLONE_NEWNET)?;
            mount(Some("/proc/thread-self/ns/net"), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
    });
    if made.is_err() {
        let _ = std::fs::remove_file(&target);
    }
    made
}

/// Deletes the namespace: its links and nftables tables go with it once no process uses it.
pub fn delete(name: &str) -> io::Result<()> {
    let target = path(name);
    match umount2(&target, MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point, a creation cut short between the file and the mount.
        Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
        Err(e) => return Err(e.into()),
    }
    std::fs::remove_file(&target)
}

/// Names of the namespaces that start with `prefix`, sorted.
pub fn list(prefix: &str) -> io::Result<Vec<String>> {
    let mut names: Vec<String> = match std::fs::read_dir(NETNS_DIR) {
        Ok(entries) => entries.filter_map(|e| e.ok()?.file_name().into_string().ok()).filter(|n| n.starts_with(prefix)).collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    names.sort();
    Ok(names)
}

/// Runs `f` on a thread inside namespace `name`. Processes spawned by `f` start there too.
pub fn enter<T: Send>(name: &str, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    let ns = File::open(path(name)).map_err(|e| io::Error::new(e.kind(), format!("network namespace {name}: {e}")))?;
    std::thread::scope(|s| {
        s.spawn(|| -> io::Result<T> {
            setns(&ns, CloneFlags::CLONE_NEWNET)?;
            Ok(f())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("namespace thread panicked")))
    })
}

/// Runs an async netlink conversation inside namespace `name`.
pub fn netlink<T: Send>(name: &str, f: impl AsyncFnOnce(rtnetlink::Handle) -> Result<T, rtnetlink::Error> + Send) -> io::Result<T> {
    enter(name, || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_io().build()?;
        runtime.block_on(async {
            let (connection, handle, _) = rtnetlink::new_connection()?;
            tokio::spawn(connection);
            f(handle).await.map_err(|e| io::Error::other(format!("netlink in {name}: {e}")))
        })
    })?
}

/// Writes a sysctl of namespace `name` (`/proc/sys/net` shows the opening thread's namespace).
pub fn sysctl(name: &str, key: &str, value: &str) -> io::Result<()> {
    let file = Path::new("/proc/sys").join(key.replace('.', "/"));
    enter(name, || std::fs::write(&file, value))?.map_err(|e| io::Error::new(e.kind(), format!("sysctl {key} in {name}: {e}")))
}

/// Inode of a namespace, to find the processes living in it.
pub fn inode(name: &str) -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata(path(name))?.ino())
}
