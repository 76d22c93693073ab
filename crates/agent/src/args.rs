//! Command-line parsing, hand-written to keep the agent's dependencies at
//! std + tokio. Every error here is bad input: the caller exits 2.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use netmatrix_probe::{Protocol, Target, parse_duration};

pub const USAGE: &str = "\
netmatrix-agent: network probe agent (batch schema netmatrix.probe/v1)

Usage:
  netmatrix-agent connect HOST:PORT [--protocol tcp|udp|sctp] [--timeout DUR]
                  [--source-port N] [--resolv-conf FILE]
  netmatrix-agent serve [--name NAME] [--bind ADDR]... [--tcp PORTS] [--udp PORTS]
                  [--sctp PORTS] [--http PORTS]
  netmatrix-agent probe --batch FILE|-|JSON [--parallel N] [--timeout DUR] [--resolv-conf FILE]
  netmatrix-agent probe --stream [--idle DUR] [--parallel N] [--timeout DUR] [--resolv-conf FILE]
  netmatrix-agent help

connect  one agnhost-compatible probe: exit 0 on success, 1 on failure with one
         stderr line starting TIMEOUT, REFUSED, DNS:, UNKNOWN: or OTHER:
serve    answer every connection/datagram with the agent's name and the client
         address it saw; HTTP ports serve /hostname, /clientip and /healthz
probe    run a JSON batch of probes concurrently, one JSON result line each;
         --stream: batches read one per stdin line, each answered by its result
         lines, until stdin ends or no batch came for --idle (60s)

DUR is a whole number with a unit: 500ms, 5s, 2m, 1h. PORTS is a comma-separated
list (serve only: 0 lets the kernel pick; the chosen address is printed).
Flags take their value as `--flag VALUE` or `--flag=VALUE`. IPv6 HOST:PORT is [ADDR]:PORT.
Exit codes: 0 ok, 1 probe failed or runtime failure, 2 bad input or usage.";

pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(1);
pub const DEFAULT_PARALLEL: usize = 256;
/// Each probe in flight holds a socket; far beyond this the default
/// descriptor limit (1024) makes probes fail rather than go faster.
pub const MAX_PARALLEL: usize = 4096;
pub const DEFAULT_RESOLV_CONF: &str = "/etc/resolv.conf";
/// A streaming agent whose caller vanished without closing stdin still ends.
pub const DEFAULT_STREAM_IDLE: Duration = Duration::from_secs(60);

#[derive(Debug)]
pub enum Command {
    Help,
    Connect(ConnectArgs),
    Serve(ServeArgs),
    Probe(ProbeArgs),
}

#[derive(Debug)]
pub struct ConnectArgs {
    pub host: Target,
    pub port: u16,
    pub protocol: Protocol,
    pub timeout: Duration,
    pub source_port: Option<u16>,
    pub resolv_conf: PathBuf,
}

#[derive(Debug, Default)]
pub struct ServeArgs {
    pub name: Option<String>,
    /// Empty means the defaults: 0.0.0.0 and :: (IPv6 skipped if unavailable).
    pub binds: Vec<IpAddr>,
    pub tcp: Vec<u16>,
    pub udp: Vec<u16>,
    pub sctp: Vec<u16>,
    pub http: Vec<u16>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum BatchSource {
    Stdin,
    File(PathBuf),
    /// The batch itself (a value starting with `[`): an exec needs no stdin, whose end an
    /// older exec protocol (v4.channel.k8s.io) cannot signal.
    Inline(String),
    /// Batches one per line, each answered as it arrives (`--stream`): a caller that probes the
    /// same source again and again starts one agent, not one per batch.
    Stream {
        idle: Duration,
    },
}

#[derive(Debug)]
pub struct ProbeArgs {
    pub batch: BatchSource,
    pub parallel: usize,
    pub timeout: Duration,
    pub resolv_conf: PathBuf,
}

pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Command, String> {
    let mut words = VecDeque::new();
    for arg in args {
        let arg = arg.into_string().map_err(|bad| format!("argument {bad:?} is not valid UTF-8"))?;
        words.push_back(arg);
    }
    let Some(command) = words.pop_front() else {
        return Err("missing command (connect, serve or probe)".into());
    };
    // Help anywhere wins, so `connect --help` prints usage and exits 0.
    if ["help", "-h", "--help"].contains(&command.as_str()) || words.iter().any(|w| w == "-h" || w == "--help") {
        return Ok(Command::Help);
    }
    let mut words = Words { words };
    match command.as_str() {
        "connect" => parse_connect(&mut words).map(Command::Connect),
        "serve" => parse_serve(&mut words).map(Command::Serve),
        "probe" => parse_probe(&mut words).map(Command::Probe),
        other => Err(format!("unknown command {other:?} (expected connect, serve or probe)")),
    }
}

/// What is left of the command line, read as flags and positionals.
struct Words {
    words: VecDeque<String>,
}

enum Word {
    /// `--flag` or `--flag=value` (the inline value, if any).
    Flag(String, Option<String>),
    Positional(String),
}

impl Words {
    fn next(&mut self) -> Option<Word> {
        let word = self.words.pop_front()?;
        if word.starts_with("--") {
            return Some(match word.split_once('=') {
                Some((flag, value)) => Word::Flag(flag.to_string(), Some(value.to_string())),
                None => Word::Flag(word, None),
            });
        }
        Some(Word::Positional(word))
    }

    fn value(&mut self, flag: &str, inline: Option<String>) -> Result<String, String> {
        match inline {
            Some(value) => Ok(value),
            None => self.words.pop_front().ok_or_else(|| format!("{flag} needs a value")),
        }
    }
}

fn parse_connect(words: &mut Words) -> Result<ConnectArgs, String> {
    let mut dest = None;
    let mut protocol = Protocol::Tcp;
    let mut timeout = DEFAULT_CONNECT_TIMEOUT;
    let mut source_port = None;
    let mut resolv_conf = PathBuf::from(DEFAULT_RESOLV_CONF);
    while let Some(word) = words.next() {
        match word {
            Word::Flag(flag, inline) => match flag.as_str() {
                "--protocol" => protocol = Protocol::parse(&words.value(&flag, inline)?)?,
                "--timeout" => timeout = parse_duration(&words.value(&flag, inline)?)?,
                "--source-port" => source_port = Some(parse_port(&words.value(&flag, inline)?)?),
                "--resolv-conf" => resolv_conf = PathBuf::from(words.value(&flag, inline)?),
                _ => return Err(format!("connect: unknown flag {flag}")),
            },
            Word::Positional(p) if dest.is_none() => dest = Some(p),
            Word::Positional(p) => return Err(format!("connect: unexpected argument {p:?}")),
        }
    }
    let dest = dest.ok_or("connect: missing HOST:PORT")?;
    let (host, port) = parse_host_port(&dest)?;
    Ok(ConnectArgs { host, port, protocol, timeout, source_port, resolv_conf })
}

fn parse_serve(words: &mut Words) -> Result<ServeArgs, String> {
    let mut args = ServeArgs::default();
    while let Some(word) = words.next() {
        let (flag, inline) = match word {
            Word::Flag(flag, inline) => (flag, inline),
            Word::Positional(p) => return Err(format!("serve: unexpected argument {p:?}")),
        };
        match flag.as_str() {
            "--name" => {
                let name = words.value(&flag, inline)?;
                if name.is_empty() || name.chars().any(char::is_control) {
                    return Err("serve: --name must be non-empty text without control characters".into());
                }
                args.name = Some(name);
            }
            "--bind" => {
                let text = words.value(&flag, inline)?;
                let ip = text.parse().map_err(|_| format!("serve: --bind {text:?} is not an IP address"))?;
                args.binds.push(ip);
            }
            "--tcp" => args.tcp.extend(parse_port_list(&words.value(&flag, inline)?)?),
            "--udp" => args.udp.extend(parse_port_list(&words.value(&flag, inline)?)?),
            "--sctp" => args.sctp.extend(parse_port_list(&words.value(&flag, inline)?)?),
            "--http" => args.http.extend(parse_port_list(&words.value(&flag, inline)?)?),
            _ => return Err(format!("serve: unknown flag {flag}")),
        }
    }
    if args.tcp.is_empty() && args.udp.is_empty() && args.sctp.is_empty() && args.http.is_empty() {
        return Err("serve: give at least one of --tcp, --udp, --sctp or --http".into());
    }
    Ok(args)
}

fn parse_probe(words: &mut Words) -> Result<ProbeArgs, String> {
    let mut batch = None;
    let mut parallel = DEFAULT_PARALLEL;
    let mut timeout = DEFAULT_PROBE_TIMEOUT;
    let mut resolv_conf = PathBuf::from(DEFAULT_RESOLV_CONF);
    let mut stream = false;
    let mut idle = None;
    while let Some(word) = words.next() {
        let (flag, inline) = match word {
            Word::Flag(flag, inline) => (flag, inline),
            Word::Positional(p) => return Err(format!("probe: unexpected argument {p:?}")),
        };
        match flag.as_str() {
            "--batch" => {
                let value = words.value(&flag, inline)?;
                batch = Some(match value.as_str() {
                    "-" => BatchSource::Stdin,
                    json if json.trim_start().starts_with('[') => BatchSource::Inline(value),
                    _ => BatchSource::File(value.into()),
                });
            }
            "--parallel" => {
                let text = words.value(&flag, inline)?;
                parallel = match text.parse::<usize>() {
                    Ok(n) if (1..=MAX_PARALLEL).contains(&n) => n,
                    _ => {
                        return Err(format!("probe: --parallel {text:?} must be an integer 1..={MAX_PARALLEL}"));
                    }
                };
            }
            "--timeout" => timeout = parse_duration(&words.value(&flag, inline)?)?,
            "--resolv-conf" => resolv_conf = PathBuf::from(words.value(&flag, inline)?),
            "--stream" if inline.is_none() => stream = true,
            "--idle" => idle = Some(parse_duration(&words.value(&flag, inline)?)?),
            _ => return Err(format!("probe: unknown flag {flag}")),
        }
    }
    let batch = match (batch, stream) {
        (Some(_), true) => return Err("probe: give --batch or --stream, not both".into()),
        (None, true) => BatchSource::Stream { idle: idle.unwrap_or(DEFAULT_STREAM_IDLE) },
        (_, false) if idle.is_some() => return Err("probe: --idle goes with --stream".into()),
        (batch, false) => batch.ok_or("probe: missing --batch FILE|- or --stream")?,
    };
    Ok(ProbeArgs { batch, parallel, timeout, resolv_conf })
}

/// Parses a destination port: 1..=65535.
pub fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u32>() {
        Ok(n) if (1..=65535).contains(&n) => Ok(n as u16),
        _ => Err(format!("invalid port {text:?}: must be an integer 1..65535")),
    }
}

/// Parses a serve port list; 0 asks the kernel for a free port.
fn parse_port_list(text: &str) -> Result<Vec<u16>, String> {
    text.split(',').map(|p| p.parse::<u16>().map_err(|_| format!("invalid port {p:?} in {text:?}: must be an integer 0..65535"))).collect()
}

/// Splits `HOST:PORT` / `[IPv6]:PORT` as agnhost's `connect` takes it.
pub fn parse_host_port(text: &str) -> Result<(Target, u16), String> {
    let Some((host, port)) = text.rsplit_once(':') else {
        return Err(format!("invalid destination {text:?}: expected HOST:PORT"));
    };
    if host.contains(':') && !host.starts_with('[') {
        return Err(format!("invalid destination {text:?}: write IPv6 addresses as [ADDR]:PORT"));
    }
    Ok((Target::parse(host)?, parse_port(port)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(line: &str) -> Result<Command, String> {
        parse(line.split_whitespace().map(OsString::from))
    }

    #[test]
    fn ports_and_hosts() {
        assert_eq!(parse_port("65535"), Ok(65535));
        for bad in ["0", "65536", "-1", "http", ""] {
            assert!(parse_port(bad).unwrap_err().contains("1..65535"), "{bad:?}");
        }
        assert_eq!(parse_host_port("[::1]:80"), Ok((Target::Ip("::1".parse().unwrap()), 80)));
        assert_eq!(parse_host_port("10.0.0.1:53"), Ok((Target::Ip("10.0.0.1".parse().unwrap()), 53)));
        assert!(parse_host_port("::1:80").unwrap_err().contains("[ADDR]:PORT"));
        assert!(parse_host_port("host").unwrap_err().contains("HOST:PORT"));
        assert!(parse_host_port("host:0").unwrap_err().contains("1..65535"));
    }

    #[test]
    fn connect_command() {
        let Ok(Command::Connect(c)) = cmd("connect 127.0.0.1:80 --protocol=udp --timeout 500ms --source-port 4000") else { panic!("not parsed") };
        assert_eq!(c.protocol, Protocol::Udp);
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert_eq!(c.source_port, Some(4000));
        assert_eq!(c.port, 80);
        let Ok(Command::Connect(c)) = cmd("connect example:443") else { panic!("not parsed") };
        assert_eq!((c.protocol, c.timeout), (Protocol::Tcp, DEFAULT_CONNECT_TIMEOUT));
        assert!(cmd("connect 1.2.3.4:80 --protocol icmp").unwrap_err().contains("unknown protocol \"icmp\""));
        assert!(cmd("connect").unwrap_err().contains("missing HOST:PORT"));
        assert!(cmd("connect a:1 b:2").unwrap_err().contains("unexpected argument"));
        assert!(cmd("connect a:1 --timeout").unwrap_err().contains("--timeout needs a value"));
        assert!(cmd("connect a:1 --bogus").unwrap_err().contains("unknown flag --bogus"));
    }

    #[test]
    fn serve_and_probe_commands() {
        let Ok(Command::Serve(s)) = cmd("serve --name a --bind 127.0.0.1 --bind ::1 --tcp 80,0 --udp 53 --http 8080") else { panic!("not parsed") };
        assert_eq!(s.binds.len(), 2);
        assert_eq!((s.tcp, s.udp, s.http), (vec![80, 0], vec![53], vec![8080]));
        assert!(cmd("serve").unwrap_err().contains("at least one"));
        assert!(cmd("serve --tcp 70000").unwrap_err().contains("0..65535"));
        assert!(cmd("serve --tcp 80 --bind nowhere").unwrap_err().contains("not an IP"));

        let Ok(Command::Probe(p)) = cmd("probe --batch - --parallel 8") else { panic!("not parsed") };
        assert_eq!((p.batch, p.parallel), (BatchSource::Stdin, 8));
        assert!(cmd("probe").unwrap_err().contains("--batch"));
        let Ok(Command::Probe(p)) = cmd("probe --batch=[]") else { panic!("not parsed") };
        assert_eq!(p.batch, BatchSource::Inline("[]".into()), "a JSON array is the batch itself");
        assert!(cmd("probe --batch x --parallel 0").unwrap_err().contains("1..=4096"));
        let Ok(Command::Probe(p)) = cmd("probe --stream --idle 5s") else { panic!("not parsed") };
        assert_eq!(p.batch, BatchSource::Stream { idle: Duration::from_secs(5) });
        let Ok(Command::Probe(p)) = cmd("probe --stream") else { panic!("not parsed") };
        assert_eq!(p.batch, BatchSource::Stream { idle: DEFAULT_STREAM_IDLE });
        assert!(cmd("probe --stream --batch -").unwrap_err().contains("not both"));
        assert!(cmd("probe --batch - --idle 5s").unwrap_err().contains("--idle goes with --stream"));
        assert!(matches!(cmd("help"), Ok(Command::Help)));
        assert!(matches!(cmd("connect --help"), Ok(Command::Help)));
        assert!(cmd("frobnicate").unwrap_err().contains("unknown command"));
        assert!(cmd("").unwrap_err().contains("missing command"));
    }
}
