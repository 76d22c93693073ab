//! SCTP through socket2, since tokio has no SCTP type and registering a
//! foreign socket with tokio now takes `unsafe` (which the workspace
//! denies). SCTP is the rare protocol in a matrix, so it uses blocking
//! one-to-one style (SOCK_STREAM) sockets with kernel timeouts, on the
//! blocking pool (probes) or plain threads (serve). On a kernel without the
//! sctp module, socket creation fails with "protocol not supported".

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};

use crate::identity;

/// A blocking SCTP socket of `addr`'s family.
pub fn socket(addr: &SocketAddr) -> io::Result<Socket> {
    Socket::new(Domain::for_address(*addr), Type::STREAM, Some(Protocol::SCTP))
}

/// Phases of a client exchange, so the caller can tell the agent's own
/// failures (no socket) from verdicts about the network.
pub enum ClientError {
    /// What was being set up, and how it failed.
    Setup(&'static str, io::Error),
    Network(io::Error),
    /// The budget ran out (connect, send or reply).
    Timeout,
    /// The peer closed without answering.
    NoReply,
}

/// Connects, sends `request` and waits for one reply, all within `budget`;
/// returns the time to establish the association and the reply.
pub fn exchange(address: SocketAddr, source: Option<SocketAddr>, request: &[u8], budget: Duration) -> Result<(Duration, Vec<u8>), ClientError> {
    let start = Instant::now();
    let setup = |context| move |e| ClientError::Setup(context, e);
    let socket = socket(&address).map_err(setup("sctp socket (is the kernel's sctp module loaded?)"))?;
    if let Some(source) = source {
        socket.set_reuse_address(true).map_err(setup("SO_REUSEADDR"))?;
        socket.bind(&source.into()).map_err(setup("bind source port"))?;
    }
    socket.connect_timeout(&address.into(), budget).map_err(network)?;
    let latency = start.elapsed();
    let rest = budget.checked_sub(latency).filter(|d| !d.is_zero()).ok_or(ClientError::Timeout)?;
    socket.set_read_timeout(Some(rest)).map_err(setup("SO_RCVTIMEO"))?;
    socket.set_write_timeout(Some(rest)).map_err(setup("SO_SNDTIMEO"))?;
    (&socket).write_all(request).map_err(network)?;
    let mut reply = vec![0u8; identity::MAX_REPLY];
    let n = (&socket).read(&mut reply).map_err(network)?;
    if n == 0 {
        return Err(ClientError::NoReply);
    }
    reply.truncate(n);
    Ok((latency, reply))
}

/// Kernel timeouts surface as TimedOut (connect) or WouldBlock (SO_RCVTIMEO).
fn network(e: io::Error) -> ClientError {
    match e.kind() {
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ClientError::Timeout,
        _ => ClientError::Network(e),
    }
}

/// A listening SCTP socket (IPv6 ones are v6-only, so `::` and `0.0.0.0`
/// can share a port) and its real address.
pub fn listen(addr: SocketAddr) -> io::Result<(Socket, SocketAddr)> {
    let socket = socket(&addr)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    let local = socket.local_addr()?.as_socket().unwrap_or(addr);
    Ok((socket, local))
}

/// Accepts forever, answering each association on its own thread, like
/// netexec's SCTP server: one identity line per message until the client
/// closes (closing with unread data would abort the association).
pub fn serve(listener: Socket, name: &str, idle: Duration) {
    loop {
        let (association, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) => {
                eprintln!("netmatrix-agent: serve: sctp accept: {e}");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let Some(peer) = peer.as_socket() else {
            continue;
        };
        let line = identity::line(name, peer);
        let spawned = std::thread::Builder::new().name("sctp-answer".into()).spawn(move || {
            if let Err(e) = answer(&association, line.as_bytes(), idle) {
                eprintln!("netmatrix-agent: serve: sctp {peer}: {e}");
            }
        });
        if let Err(e) = spawned {
            eprintln!("netmatrix-agent: serve: sctp {peer}: no thread: {e}");
        }
    }
}

fn answer(mut association: &Socket, line: &[u8], idle: Duration) -> io::Result<()> {
    association.set_read_timeout(Some(idle))?;
    association.set_write_timeout(Some(idle))?;
    let mut buf = [0u8; 2048];
    while association.read(&mut buf)? > 0 {
        association.write_all(line)?;
    }
    Ok(())
}
