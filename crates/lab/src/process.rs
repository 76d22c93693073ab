//! Child processes inside lab namespaces: the agents, `nft`, probes. Every wait has a deadline.

use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::netns;

/// The agent binary: `$NETMATRIX_AGENT`, else next to the running executable (or one directory
/// up, where `cargo test` binaries live).
pub fn agent() -> io::Result<PathBuf> {
    if let Some(path) = std::env::var_os("NETMATRIX_AGENT") {
        return Ok(path.into());
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().ok_or_else(|| io::Error::other("executable without a directory"))?;
    [dir.join("netmatrix-agent"), dir.join("../netmatrix-agent")].into_iter().find(|p| p.is_file()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("netmatrix-agent not found next to {} (build it with `cargo build -p netmatrix-agent`, or set NETMATRIX_AGENT)", exe.display()),
        )
    })
}

/// Why [`run`] failed. Entering the namespace and starting the program both fail with
/// `NotFound` when their file is missing: kept apart, a deleted namespace is not taken for a
/// missing program.
#[derive(Debug)]
pub enum RunError {
    Namespace(io::Error),
    Spawn(io::Error),
    /// Waiting for the program or reading its output failed, or the deadline passed.
    Wait(io::Error),
}

/// Runs `command` inside namespace `ns` with `input` on stdin; kills it at `deadline`.
pub fn run(ns: &str, mut command: Command, input: &[u8], deadline: Duration, what: &str) -> Result<Output, RunError> {
    command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = netns::enter(ns, || command.spawn()).map_err(RunError::Namespace)?.map_err(RunError::Spawn)?;
    wait(ns, child, input, deadline, what).map_err(RunError::Wait)
}

fn wait(ns: &str, mut child: std::process::Child, input: &[u8], deadline: Duration, what: &str) -> io::Result<Output> {
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let input = input.to_vec();
    // Separate threads so that a full pipe never blocks the deadline check.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stdout.read_to_end(&mut buf).map(|_| buf)
    });
    let err = std::thread::spawn(move || {
        let mut buf = Vec::new();
        stderr.read_to_end(&mut buf).map(|_| buf)
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(io::Error::new(io::ErrorKind::TimedOut, format!("{what} in {ns} did not finish within {deadline:?} and was killed")));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let _ = writer.join();
    let join = |h: std::thread::JoinHandle<io::Result<Vec<u8>>>| h.join().unwrap_or_else(|_| Err(io::Error::other("reader panicked")));
    Ok(Output { status, stdout: join(out)?, stderr: join(err)? })
}

/// An agent kept running in a namespace (`probe --stream`), answering batch after batch: a
/// churn round costs no process start-up per source. Killed when dropped.
pub struct KeptAgent {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    /// Result lines, read on a thread of their own so that a wait can have a deadline.
    lines: std::sync::mpsc::Receiver<io::Result<String>>,
    /// What it said on stderr, complete once it has exited.
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl KeptAgent {
    pub fn start(ns: &str) -> Result<KeptAgent, RunError> {
        let mut command = Command::new(agent().map_err(RunError::Spawn)?);
        // Its own process group: a Ctrl-C meant for netmatrix is handled by the run's teardown.
        command.args(["probe", "--stream", "--idle", "60s"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        let mut child = netns::enter(ns, || command.spawn()).map_err(RunError::Namespace)?.map_err(RunError::Spawn)?;
        let (stdout, mut stderr) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in io::BufRead::lines(io::BufReader::new(stdout)) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        let said = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Ok(KeptAgent { stdin: child.stdin.take().expect("piped"), child, lines, stderr: Some(said) })
    }

    /// One batch: written as a line, its `count` result lines read within `deadline`.
    pub fn probe(&mut self, batch: &str, count: usize, deadline: Duration) -> io::Result<String> {
        let started = Instant::now();
        writeln!(self.stdin, "{batch}").and_then(|()| self.stdin.flush()).map_err(|e| self.ended(format!("writing the batch: {e}")))?;
        let mut text = String::new();
        for _ in 0..count {
            match self.lines.recv_timeout(deadline.saturating_sub(started.elapsed())) {
                Ok(line) => {
                    text.push_str(&line?);
                    text.push('\n');
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, format!("the kept agent did not answer within {deadline:?}")));
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Err(self.ended("the kept agent ended".into())),
            }
        }
        Ok(text)
    }

    fn ended(&mut self, what: String) -> io::Error {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let said = self.stderr.take().and_then(|h| h.join().ok()).unwrap_or_default();
        io::Error::other(match said.trim() {
            "" => what,
            said => format!("{what}: {said}"),
        })
    }
}

impl Drop for KeptAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a long-running agent `serve` in namespace `ns`, in its own process group (a Ctrl-C
/// meant for netmatrix does not reach it), logging to `log`; waits for its `ready` line.
pub fn start_server(ns: &str, args: &[String], log: &std::path::Path, deadline: Duration) -> io::Result<u32> {
    let file = std::fs::File::create(log)?;
    let mut command = Command::new(agent()?);
    command.args(args).stdin(Stdio::null()).stdout(file.try_clone()?).stderr(file).process_group(0);
    let mut child = netns::enter(ns, || command.spawn())??;
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.lines().any(|l| l == "ready") {
            return Ok(child.id());
        }
        if let Some(status) = child.try_wait()? {
            return Err(io::Error::other(format!("agent in {ns} exited ({status}) before it was ready: {}", text.trim())));
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            return Err(io::Error::new(io::ErrorKind::TimedOut, format!("agent in {ns} not ready within {deadline:?}: {}", text.trim())));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Processes whose network namespace is one of `inodes`: everything that lives in the lab.
pub fn in_namespaces(inodes: &[u64]) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .ok()
                .and_then(|l| l.to_str()?.strip_prefix("net:[")?.strip_suffix(']')?.parse::<u64>().ok())
                .is_some_and(|ino| inodes.contains(&ino))
        })
        .collect()
}

/// SIGTERM, then SIGKILL for whatever is still there after `grace`.
pub fn terminate(pids: &[u32], grace: Duration) {
    for &pid in pids {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
    }
    let start = Instant::now();
    while start.elapsed() < grace && pids.iter().any(|&p| alive(p)) {
        std::thread::sleep(Duration::from_millis(10));
    }
    for &pid in pids.iter().filter(|&&p| alive(p)) {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
}

/// Alive and not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
}
