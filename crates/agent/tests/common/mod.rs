//! Helpers shared by the integration tests: the real agent binary, servers
//! killed on drop, deadlines on every wait, a fake DNS server, and network
//! namespaces deleted on drop.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub const AGENT: &str = env!("CARGO_BIN_EXE_netmatrix-agent");
/// Upper bound for any single agent run in the tests.
pub const RUN_DEADLINE: Duration = Duration::from_secs(30);

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

pub fn agent() -> Command {
    Command::new(AGENT)
}

pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// Result lines of `probe --batch`, parsed by a tiny test-side reader.
    pub fn results(&self) -> Vec<HashMap<String, String>> {
        self.stdout.lines().map(parse_flat_object).collect()
    }
}

/// Runs `cmd` to completion with `stdin`, killing it (and failing the test)
/// after `deadline`.
pub fn run(mut cmd: Command, stdin: Option<&str>, deadline: Duration) -> Output {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("spawn agent");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        let input = input.to_string();
        // A writer thread, so a child that stops reading cannot block us.
        thread::spawn(move || {
            let _ = pipe.write_all(input.as_bytes());
        });
    }
    let stdout = drain(child.stdout.take().expect("stdout pipe"));
    let stderr = drain(child.stderr.take().expect("stderr pipe"));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if start.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after {deadline:?}");
        }
        thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    Output { status, stdout: join(stdout), stderr: join(stderr), elapsed }
}

fn drain(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

fn join(handle: JoinHandle<String>) -> String {
    handle.join().expect("pipe reader")
}

/// `netmatrix-agent serve`, killed on drop.
pub struct Serve {
    child: Child,
    /// (protocol, address) from the `listening` lines.
    pub listening: Vec<(String, SocketAddr)>,
}

impl Serve {
    /// Starts serve with `args` and waits (with a deadline) for `ready`.
    pub fn start(args: &[&str]) -> Serve {
        Serve::start_with(agent(), args)
    }

    /// As `start`, with a prepared command (e.g. `ip netns exec ... agent`).
    pub fn start_with(mut cmd: Command, args: &[&str]) -> Serve {
        cmd.arg("serve").args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn serve");
        let lines = line_reader(child.stdout.take().expect("stdout pipe"));
        let mut serve = Serve { child, listening: Vec::new() };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line == "ready" => return serve,
                Ok(line) => {
                    let mut words = line.split(' ');
                    assert_eq!(words.next(), Some("listening"), "unexpected serve output {line:?}");
                    let proto = words.next().expect("protocol").to_string();
                    let addr = words.next().expect("address").parse().expect("address");
                    serve.listening.push((proto, addr));
                }
                Err(_) => panic!("serve {args:?} did not become ready within 10s (exited: {:?})", serve.child.try_wait()),
            }
        }
    }

    /// The address serving `proto` on `ip`'s family/address.
    pub fn addr(&self, proto: &str, ip: &str) -> SocketAddr {
        let ip: IpAddr = ip.parse().expect("ip");
        self.listening
            .iter()
            .find(|(p, a)| p == proto && a.ip() == ip)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no {proto} listener on {ip} in {:?}", self.listening))
    }
}

impl Serve {
    /// Sends SIGTERM and waits (with a deadline) for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        sh("kill", &["-TERM", &pid]);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "serve ignored SIGTERM for 10s");
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn line_reader(pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A loopback TCP port with nothing listening (bound, then released).
pub fn closed_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

pub fn closed_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

pub fn ipv6_loopback_available() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// Why SCTP cannot be tested here, if it cannot.
pub fn sctp_unavailable() -> Option<String> {
    use socket2::{Domain, Protocol, Socket, Type};
    Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::SCTP)).err().map(|e| e.to_string())
}

/// Reads one flat JSON object line of string/number/null/bool values into
/// strings (null as "null"). Deliberately independent of the agent's JSON
/// module, so a bug there cannot hide itself.
pub fn parse_flat_object(line: &str) -> HashMap<String, String> {
    let body = line.trim().strip_prefix('{').and_then(|l| l.strip_suffix('}')).unwrap_or_else(|| panic!("not an object: {line}"));
    let chars: Vec<char> = body.chars().collect();
    let mut map = HashMap::new();
    let mut i = 0;
    let string = |i: &mut usize| -> String {
        assert_eq!(chars[*i], '"', "expected a string in {line}");
        *i += 1;
        let mut s = String::new();
        while chars[*i] != '"' {
            if chars[*i] == '\\' {
                *i += 1;
                s.push(match chars[*i] {
                    'n' => '\n',
                    c => c,
                });
            } else {
                s.push(chars[*i]);
            }
            *i += 1;
        }
        *i += 1;
        s
    };
    while i < chars.len() {
        let key = string(&mut i);
        assert_eq!(chars[i], ':', "expected ':' in {line}");
        i += 1;
        let value = if chars[i] == '"' {
            string(&mut i)
        } else {
            let start = i;
            while i < chars.len() && chars[i] != ',' {
                i += 1;
            }
            chars[start..i].iter().collect()
        };
        assert!(map.insert(key.clone(), value).is_none(), "duplicate key {key} in {line}");
        if i < chars.len() {
            assert_eq!(chars[i], ',', "expected ',' in {line}");
            i += 1;
        }
    }
    map
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        let path = std::env::temp_dir().join(unique("nm-agent-test"));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).expect("write temp file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fake DNS server on loopback (UDP and TCP on one port) answering A and
/// AAAA from a table; unknown names get NXDOMAIN. Names in `truncated` get
/// an empty truncated reply over UDP and the full one over TCP.
pub struct FakeDns {
    pub addr: SocketAddr,
    pub queries: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

type Records = Arc<HashMap<String, Vec<IpAddr>>>;

impl FakeDns {
    pub fn start(records: &[(&str, &str)], truncated: &[&str]) -> FakeDns {
        let mut table: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for (name, ip) in records {
            table.entry(name.to_string()).or_default().push(ip.parse().expect("record ip"));
        }
        let table: Records = Arc::new(table);
        let truncated: Arc<Vec<String>> = Arc::new(truncated.iter().map(|s| s.to_string()).collect());
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind dns udp");
        let addr = udp.local_addr().expect("addr");
        let tcp = TcpListener::bind(addr).expect("bind dns tcp on the same port");
        udp.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
        tcp.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let queries = Arc::new(Mutex::new(Vec::new()));

        let (t, q, s, tr) = (table.clone(), queries.clone(), stop.clone(), truncated.clone());
        let udp_thread = thread::spawn(move || {
            let mut buf = [0u8; 512];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, peer)) = udp.recv_from(&mut buf) else {
                    continue;
                };
                if let Some((name, reply)) = answer(&buf[..n], &t, |name| tr.contains(&name.to_string())) {
                    q.lock().unwrap().push(name);
                    let _ = udp.send_to(&reply, peer);
                }
            }
        });
        let (q, s) = (queries.clone(), stop.clone());
        let tcp_thread = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = tcp.accept() else {
                    thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).is_err() {
                    continue;
                }
                let mut query = vec![0u8; usize::from(u16::from_be_bytes(len))];
                if stream.read_exact(&mut query).is_err() {
                    continue;
                }
                if let Some((name, reply)) = answer(&query, &table, |_| false) {
                    q.lock().unwrap().push(format!("tcp:{name}"));
                    let mut framed = (reply.len() as u16).to_be_bytes().to_vec();
                    framed.extend_from_slice(&reply);
                    let _ = stream.write_all(&framed);
                }
            }
        });
        FakeDns { addr, queries, stop, threads: vec![udp_thread, tcp_thread] }
    }

    /// A resolv.conf pointing at this server (port via the agent's
    /// `nameserver ADDR:PORT` extension).
    pub fn resolv_conf(&self, dir: &TempDir, extra: &str) -> PathBuf {
        dir.write(&unique("resolv.conf"), &format!("nameserver {}\n{extra}", self.addr))
    }

    pub fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().clone()
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Builds the reply to `query`: (asked name, reply bytes).
fn answer(query: &[u8], table: &Records, truncate: impl Fn(&str) -> bool) -> Option<(String, Vec<u8>)> {
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(pos)?);
        pos += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(pos..pos + len)?).to_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*query.get(pos)?, *query.get(pos + 1)?]);
    let question = query.get(12..pos + 4)?;
    let name = labels.join(".");
    let records = table.get(&name);
    let truncated = records.is_some() && truncate(&name);
    let answers: Vec<&IpAddr> = match records {
        Some(ips) if !truncated => ips.iter().filter(|ip| matches!((ip, qtype), (IpAddr::V4(_), 1) | (IpAddr::V6(_), 28))).collect(),
        _ => Vec::new(),
    };
    let mut flags: u16 = 0x8180;
    if records.is_none() {
        flags |= 3; // NXDOMAIN
    }
    if truncated {
        flags |= 0x0200;
    }
    let mut reply = query[..2].to_vec();
    reply.extend_from_slice(&flags.to_be_bytes());
    reply.extend_from_slice(&[0, 1]);
    reply.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(question);
    for ip in answers {
        reply.extend_from_slice(&[0xc0, 12]);
        reply.extend_from_slice(&qtype.to_be_bytes());
        reply.extend_from_slice(&[0, 1, 0, 0, 0, 30]);
        match ip {
            IpAddr::V4(v4) => {
                reply.extend_from_slice(&[0, 4]);
                reply.extend_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                reply.extend_from_slice(&[0, 16]);
                reply.extend_from_slice(&v6.octets());
            }
        }
    }
    Some((name, reply))
}

/// A network namespace (name starts with `nm-`) with lo up, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn create() -> Netns {
        let name = unique("nm-agenttest");
        sh("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        sh("ip", &["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// A command run inside the namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Loads an nftables ruleset into the namespace.
    pub fn nft(&self, ruleset: &str) {
        let path = std::env::temp_dir().join(unique("nm-agenttest-nft"));
        std::fs::write(&path, ruleset).expect("write ruleset");
        let out = run(
            {
                let mut c = self.command("nft");
                c.arg("-f").arg(&path);
                c
            },
            None,
            Duration::from_secs(10),
        );
        let _ = std::fs::remove_file(&path);
        assert!(out.status.success(), "nft -f failed: {}\n{ruleset}", out.stderr);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Runs a setup command that must succeed.
pub fn sh(program: &str, args: &[&str]) {
    let mut cmd = Command::new(program);
    cmd.args(args);
    let out = run(cmd, None, Duration::from_secs(10));
    assert!(out.status.success(), "{program} {args:?} failed: {}", out.stderr);
}

/// Whether `program` is on PATH (for tests needing iproute2/nftables).
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH").map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file())).unwrap_or(false)
}
