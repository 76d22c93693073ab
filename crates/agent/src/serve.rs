//! `serve`: listens on every requested protocol/port/address and answers
//! each TCP connection, UDP datagram and SCTP message with the identity
//! line (see `identity`), and HTTP requests with netexec's paths.
//!
//! The identity answers are one small write each, so TCP, UDP and SCTP
//! run on a plain thread per socket with blocking calls (accept, write,
//! close: the fewest syscalls per probe); HTTP, which must read requests
//! from slow clients, runs on tokio.
//!
//! stdout gets `listening PROTO ADDR:PORT` per socket (the real port when
//! 0 was asked for), then `ready` once all are bound. SIGTERM/SIGINT exit 0,
//! which matters when the agent is PID 1 in a container.

use std::future::poll_fn;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::{sleep, timeout};

use crate::args::ServeArgs;
use crate::{http, identity, sctp};

/// Bounds each connection's life, so stuck clients cannot pile up.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after a failed accept (e.g. out of descriptors) instead of spinning.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Copy)]
enum Kind {
    Tcp,
    Udp,
    Sctp,
    Http,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Tcp => "tcp",
            Kind::Udp => "udp",
            Kind::Sctp => "sctp",
            Kind::Http => "http",
        }
    }
}

enum Listener {
    Tcp(std::net::TcpListener),
    Udp(std::net::UdpSocket),
    Sctp(Socket),
    Http(TcpListener),
}

pub fn main(args: ServeArgs) -> ExitCode {
    // Only HTTP and signals run on tokio: one thread is plenty.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("netmatrix-agent: serve: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netmatrix-agent: serve: {e}");
            ExitCode::from(1)
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let name: Arc<str> = identity::own_name(args.name).into();
    let default_binds = args.binds.is_empty();
    let binds = if default_binds { vec![IpAddr::V4(Ipv4Addr::UNSPECIFIED), IpAddr::V6(Ipv6Addr::UNSPECIFIED)] } else { args.binds };
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| format!("cannot watch SIGINT: {e}"))?;

    let mut listeners = Vec::new();
    let wanted = [(Kind::Tcp, &args.tcp), (Kind::Udp, &args.udp), (Kind::Sctp, &args.sctp), (Kind::Http, &args.http)];
    for (kind, ports) in wanted {
        for &port in ports {
            for &ip in &binds {
                let address = SocketAddr::new(ip, port);
                match bind(kind, address) {
                    Ok((listener, local)) => {
                        announce(&format!("listening {} {local}", kind.name()));
                        listeners.push(listener);
                    }
                    // A node or pod without IPv6 still serves IPv4 by default.
                    Err(e) if default_binds && ip.is_ipv6() && ipv6_missing(&e) => {
                        eprintln!("netmatrix-agent: serve: skipping {} {address}: {e}", kind.name());
                    }
                    Err(e) => {
                        return Err(format!("cannot listen on {} {address}: {e}", kind.name()));
                    }
                }
            }
        }
    }
    announce("ready");

    for listener in listeners {
        let name = Arc::clone(&name);
        match listener {
            Listener::Tcp(l) => drop(std::thread::spawn(move || tcp_loop(&l, &name))),
            Listener::Udp(s) => drop(std::thread::spawn(move || udp_loop(&s, &name))),
            Listener::Sctp(l) => drop(std::thread::spawn(move || sctp::serve(l, &name, CONNECTION_TIMEOUT))),
            Listener::Http(l) => drop(tokio::spawn(http_loop(l, name))),
        }
    }
    poll_fn(|cx| if terminate.poll_recv(cx).is_ready() || interrupt.poll_recv(cx).is_ready() { Poll::Ready(()) } else { Poll::Pending }).await;
    Ok(())
}

/// Writes a status line to stdout; a closed stdout must not stop serving.
fn announce(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

fn ipv6_missing(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::AddrNotAvailable | io::ErrorKind::Unsupported)
}

fn bind(kind: Kind, address: SocketAddr) -> io::Result<(Listener, SocketAddr)> {
    if let Kind::Sctp = kind {
        let (listener, local) = sctp::listen(address)?;
        return Ok((Listener::Sctp(listener), local));
    }
    let (ty, protocol) = match kind {
        Kind::Udp => (Type::DGRAM, Protocol::UDP),
        _ => (Type::STREAM, Protocol::TCP),
    };
    let socket = Socket::new(Domain::for_address(address), ty, Some(protocol))?;
    // v6-only so that `::` and `0.0.0.0` can both hold the same port.
    if address.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&address.into())?;
    let local = socket.local_addr()?.as_socket().unwrap_or(address);
    let listener = match kind {
        Kind::Udp => Listener::Udp(socket.into()),
        _ => {
            socket.listen(1024)?;
            if let Kind::Http = kind {
                socket.set_nonblocking(true)?;
                Listener::Http(TcpListener::from_std(socket.into())?)
            } else {
                Listener::Tcp(socket.into())
            }
        }
    };
    Ok((listener, local))
}

/// Writes the identity line and closes (dropping the stream sends the FIN)
/// before the client does, so the TIME_WAIT lands here rather than on
/// probes that reuse a fixed source port. The line fits in an empty send
/// buffer, so the write does not block; the timeout is a backstop.
fn tcp_loop(listener: &std::net::TcpListener, name: &str) {
    loop {
        match listener.accept() {
            Ok((mut stream, peer)) => {
                let _ = stream.set_write_timeout(Some(CONNECTION_TIMEOUT));
                if let Err(e) = stream.write_all(identity::line(name, peer).as_bytes()) {
                    eprintln!("netmatrix-agent: serve: tcp reply to {peer}: {e}");
                }
            }
            Err(e) => {
                eprintln!("netmatrix-agent: serve: tcp accept: {e}");
                std::thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

fn udp_loop(socket: &std::net::UdpSocket, name: &str) {
    let mut buf = [0u8; 2048];
    loop {
        match socket.recv_from(&mut buf) {
            Ok((_, peer)) => {
                if let Err(e) = socket.send_to(identity::line(name, peer).as_bytes(), peer) {
                    eprintln!("netmatrix-agent: serve: udp reply to {peer}: {e}");
                }
            }
            Err(e) => {
                eprintln!("netmatrix-agent: serve: udp receive: {e}");
                std::thread::sleep(ACCEPT_BACKOFF);
            }
        }
    }
}

async fn http_loop(listener: TcpListener, name: Arc<str>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let name = Arc::clone(&name);
                tokio::spawn(timeout(CONNECTION_TIMEOUT, async move { http::handle(stream, peer, &name).await }));
            }
            Err(e) => {
                eprintln!("netmatrix-agent: serve: http accept: {e}");
                sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}
