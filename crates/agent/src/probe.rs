//! One probe: resolve, connect, read the server's identity reply, and turn
//! what happened into a verdict about the network, or into an agent
//! failure, which is no verdict at all.
//!
//! What counts as connected follows agnhost's `connect`: for TCP the
//! handshake completing; for UDP and SCTP a reply to `hostname\n`.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use netmatrix_probe::{Outcome, Protocol, Target};
use socket2::{Domain, Protocol as SockProtocol, Socket, Type};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, UdpSocket};
use tokio::time::{Instant, timeout_at};

use crate::dns::Resolver;
use crate::identity::{Answer, MAX_REPLY, parse_reply};
use crate::sctp::{self, ClientError};

/// Payload for UDP and SCTP, as agnhost's `connect` sends it.
const REQUEST: &[u8] = b"hostname\n";

#[derive(Debug, Clone)]
pub struct Spec {
    pub host: Target,
    pub port: u16,
    pub protocol: Protocol,
    /// Bounds one attempt, name resolution included.
    pub timeout: Duration,
    /// Bound (with SO_REUSEADDR) before connecting, for session-affinity tests.
    pub source_port: Option<u16>,
    /// TCP only: after the handshake, read the server's identity line (until
    /// the server closes or the timeout). Off, the probe ends at the
    /// handshake, as agnhost's `connect` does. UDP and SCTP always need the
    /// reply.
    pub identify: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    // Verdicts about the network.
    Refused,
    Timeout,
    Unreachable(String),
    Dns(String),
    Other(String),
    /// Not a verdict: the agent could not carry out the probe (no socket,
    /// source port taken, SCTP missing from the kernel, ...).
    Agent(String),
}

impl Failure {
    /// The `outcome` value in a batch result line.
    pub fn outcome(&self) -> Outcome {
        match self {
            Failure::Refused => Outcome::Refused,
            Failure::Timeout => Outcome::Timeout,
            Failure::Unreachable(_) => Outcome::Unreachable,
            Failure::Dns(_) => Outcome::Dns,
            Failure::Other(_) => Outcome::Other,
            Failure::Agent(_) => Outcome::Error,
        }
    }

    pub fn detail(&self) -> Option<&str> {
        match self {
            Failure::Refused | Failure::Timeout => None,
            Failure::Unreachable(d) | Failure::Dns(d) | Failure::Other(d) | Failure::Agent(d) => Some(d),
        }
    }
}

#[derive(Debug)]
pub struct Attempt {
    /// The address probed; `None` when name resolution failed.
    pub address: Option<SocketAddr>,
    /// From the start of the connect (after name resolution) to the verdict;
    /// for a DNS failure, the time spent resolving.
    pub latency: Duration,
    pub result: Result<Answer, Failure>,
}

/// Runs up to `tries` attempts, stopping at the first connected one; the
/// reported attempt is that success or else the last failure.
pub async fn run(spec: &Spec, tries: u32, resolver: &Resolver) -> (Attempt, u32) {
    let mut attempts = 1;
    loop {
        let attempt = attempt(spec, resolver).await;
        if attempt.result.is_ok() || attempts >= tries {
            return (attempt, attempts);
        }
        attempts += 1;
    }
}

pub async fn attempt(spec: &Spec, resolver: &Resolver) -> Attempt {
    let start = Instant::now();
    let deadline = start + spec.timeout;
    let ip = match &spec.host {
        Target::Ip(ip) => *ip,
        Target::Name(name) => match timeout_at(deadline, resolver.resolve(name)).await {
            Ok(Ok(ip)) => ip,
            failed => {
                let error = match failed {
                    Ok(Err(e)) => e,
                    _ => format!("lookup {name}: timed out"),
                };
                return Attempt { address: None, latency: start.elapsed(), result: Err(Failure::Dns(error)) };
            }
        },
    };
    let address = SocketAddr::new(ip, spec.port);
    let connect_start = Instant::now();
    let result = match spec.protocol {
        Protocol::Tcp => tcp(address, spec.source_port, spec.identify, deadline).await,
        Protocol::Udp => udp(address, spec.source_port, deadline).await,
        Protocol::Sctp => sctp(address, spec.source_port, deadline).await,
    };
    let (latency, result) = match result {
        Ok((latency, answer)) => (latency, Ok(answer)),
        Err(failure) => (connect_start.elapsed(), Err(failure)),
    };
    Attempt { address: Some(address), latency, result }
}

/// Errors of the connect itself are verdicts; see `agent` for the others.
fn classify(e: io::Error) -> Failure {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => Failure::Refused,
        io::ErrorKind::TimedOut => Failure::Timeout,
        // EACCES: ICMPv6 "administratively prohibited", a rejecting policy (IPv4's is EHOSTUNREACH).
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable | io::ErrorKind::PermissionDenied => Failure::Unreachable(e.to_string()),
        // Local: ephemeral ports exhausted, or the source port's 4-tuple is taken.
        io::ErrorKind::AddrNotAvailable | io::ErrorKind::AddrInUse => Failure::Agent(format!("local address: {e}")),
        _ => Failure::Other(e.to_string()),
    }
}

fn agent(context: &'static str) -> impl Fn(io::Error) -> Failure {
    move |e| Failure::Agent(format!("{context}: {e}"))
}

fn local_address(remote: SocketAddr, port: u16) -> SocketAddr {
    let ip = match remote {
        SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        SocketAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    SocketAddr::new(ip, port)
}

async fn tcp(address: SocketAddr, source_port: Option<u16>, identify: bool, deadline: Instant) -> Result<(Duration, Answer), Failure> {
    let start = Instant::now();
    let socket = if address.is_ipv4() { TcpSocket::new_v4() } else { TcpSocket::new_v6() };
    let socket = socket.map_err(agent("tcp socket"))?;
    keep_icmp_errors(&socket, address).map_err(agent("IP_RECVERR"))?;
    if let Some(port) = source_port {
        socket.set_reuseaddr(true).map_err(agent("SO_REUSEADDR"))?;
        socket.bind(local_address(address, port)).map_err(agent("bind source port"))?;
    }
    let mut stream = match timeout_at(deadline, socket.connect(address)).await {
        Err(_) => return Err(Failure::Timeout),
        Ok(result) => result.map_err(classify)?,
    };
    let latency = start.elapsed();
    if !identify {
        return Ok((latency, Answer::default()));
    }
    // The agent's server writes its identity and closes. Reading to EOF lets
    // it close first, so the TIME_WAIT lands on the server and a fixed
    // source port can be reused at once. A silent server costs the rest of
    // the timeout but the verdict stays "connected".
    let mut buf = vec![0u8; MAX_REPLY];
    let mut len = 0;
    while len < buf.len() {
        match timeout_at(deadline, stream.read(&mut buf[len..])).await {
            Ok(Ok(n)) if n > 0 => len += n,
            _ => break,
        }
    }
    Ok((latency, parse_reply(&buf[..len])))
}

/// On one host a reject's ICMP error comes back within the SYN's own transmit, while `connect`
/// still holds the socket; the kernel then keeps the error only for a socket that asked for
/// errors (RECVERR), and otherwise waits for the SYN's retransmission (1 s) — every time for IPv6.
fn keep_icmp_errors(socket: &TcpSocket, address: SocketAddr) -> io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    match address {
        SocketAddr::V4(_) => setsockopt(socket, sockopt::Ipv4RecvErr, &true),
        SocketAddr::V6(_) => setsockopt(socket, sockopt::Ipv6RecvErr, &true),
    }
    .map_err(io::Error::from)
}

async fn udp(address: SocketAddr, source_port: Option<u16>, deadline: Instant) -> Result<(Duration, Answer), Failure> {
    let start = Instant::now();
    let socket = udp_socket(address, source_port)?;
    // Connecting lets ICMP port-unreachable come back as "refused".
    socket.connect(address).await.map_err(classify)?;
    socket.send(REQUEST).await.map_err(classify)?;
    let mut buf = vec![0u8; MAX_REPLY];
    let n = match timeout_at(deadline, socket.recv(&mut buf)).await {
        Err(_) => return Err(Failure::Timeout),
        Ok(result) => result.map_err(classify)?,
    };
    if n == 0 {
        // As agnhost: an empty datagram does not prove the request arrived.
        return Err(Failure::Other("empty reply from the server".into()));
    }
    Ok((start.elapsed(), parse_reply(&buf[..n])))
}

fn udp_socket(address: SocketAddr, source_port: Option<u16>) -> Result<UdpSocket, Failure> {
    let socket = Socket::new(Domain::for_address(address), Type::DGRAM, Some(SockProtocol::UDP)).map_err(agent("udp socket"))?;
    if source_port.is_some() {
        socket.set_reuse_address(true).map_err(agent("SO_REUSEADDR"))?;
    }
    let local = local_address(address, source_port.unwrap_or(0));
    socket.bind(&local.into()).map_err(agent("bind local address"))?;
    socket.set_nonblocking(true).map_err(agent("udp socket"))?;
    UdpSocket::from_std(socket.into()).map_err(agent("udp socket"))
}

async fn sctp(address: SocketAddr, source_port: Option<u16>, deadline: Instant) -> Result<(Duration, Answer), Failure> {
    let budget = deadline.saturating_duration_since(Instant::now());
    if budget.is_zero() {
        return Err(Failure::Timeout);
    }
    let source = source_port.map(|port| local_address(address, port));
    let exchange = tokio::task::spawn_blocking(move || sctp::exchange(address, source, REQUEST, budget));
    match exchange.await.map_err(|e| Failure::Agent(format!("sctp probe task: {e}")))? {
        Ok((latency, reply)) => Ok((latency, parse_reply(&reply))),
        Err(ClientError::Setup(context, e)) => Err(Failure::Agent(format!("{context}: {e}"))),
        Err(ClientError::Network(e)) => Err(classify(e)),
        Err(ClientError::Timeout) => Err(Failure::Timeout),
        Err(ClientError::NoReply) => Err(Failure::Other("association closed without a reply".into())),
    }
}
