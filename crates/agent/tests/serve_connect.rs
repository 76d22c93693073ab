//! `serve` and `connect` over real loopback sockets.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::Duration;

use common::*;

fn connect(args: &[&str]) -> Output {
    let mut cmd = agent();
    cmd.arg("connect").args(args);
    run(cmd, None, RUN_DEADLINE)
}

/// Reads the serve reply to a raw TCP connection.
fn tcp_identity(addr: SocketAddr) -> (String, SocketAddr) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let local = stream.local_addr().expect("local addr");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read identity");
    (reply, local)
}

#[test]
fn tcp_connect_succeeds_on_ipv4_and_ipv6() {
    let v6 = ipv6_loopback_available();
    let mut args = vec!["--name", "pod-a", "--bind", "127.0.0.1", "--tcp", "0"];
    if v6 {
        args.extend(["--bind", "::1"]);
    } else {
        eprintln!("skipping the IPv6 half: no ::1 on this machine");
    }
    let serve = Serve::start(&args);
    let out = connect(&[&serve.addr("tcp", "127.0.0.1").to_string(), "--timeout", "5s"]);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(out.stderr, "");
    if v6 {
        let out = connect(&[&serve.addr("tcp", "::1").to_string(), "--protocol", "tcp"]);
        assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    }
}

#[test]
fn tcp_connect_ends_at_the_handshake_like_agnhost() {
    // Never accepted, never answered: the kernel still completes the
    // handshake, and that is all agnhost's TCP `connect` waits for.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let out = connect(&[&silent.local_addr().expect("addr").to_string(), "--timeout", "10s"]);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert!(out.elapsed < Duration::from_secs(5), "waited for a reply: {:?}", out.elapsed);
}

#[test]
fn tcp_serve_answers_with_name_and_client_address() {
    let serve = Serve::start(&["--name", "pod-a", "--bind", "127.0.0.1", "--tcp", "0"]);
    let (reply, local) = tcp_identity(serve.addr("tcp", "127.0.0.1"));
    assert_eq!(reply, format!("{{\"v\":1,\"name\":\"pod-a\",\"client\":\"{local}\"}}\n"));
}

#[test]
fn serve_name_falls_back_to_pod_name_then_hostname() {
    let mut cmd = agent();
    cmd.env("POD_NAME", "from-env");
    let serve = Serve::start_with(cmd, &["--bind", "127.0.0.1", "--tcp", "0"]);
    let (reply, _) = tcp_identity(serve.addr("tcp", "127.0.0.1"));
    assert!(reply.contains("\"name\":\"from-env\""), "{reply}");

    let mut cmd = agent();
    cmd.env_remove("POD_NAME");
    let serve = Serve::start_with(cmd, &["--bind", "127.0.0.1", "--tcp", "0"]);
    let (reply, _) = tcp_identity(serve.addr("tcp", "127.0.0.1"));
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("hostname");
    assert!(reply.contains(&format!("\"name\":\"{}\"", hostname.trim())), "{reply}");
}

#[test]
fn tcp_connect_to_closed_port_is_refused() {
    let port = closed_tcp_port();
    let out = connect(&[&format!("127.0.0.1:{port}"), "--timeout", "5s"]);
    assert_eq!(out.code(), Some(1));
    assert_eq!(out.stderr, "REFUSED\n");
    assert_eq!(out.stdout, "");
}

#[test]
fn udp_serve_answers_every_datagram_with_name_and_client() {
    let serve = Serve::start(&["--name", "pod-u", "--bind", "127.0.0.1", "--udp", "0"]);
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    socket.connect(serve.addr("udp", "127.0.0.1")).expect("connect");
    let local = socket.local_addr().expect("local");
    for payload in [&b"hostname\n"[..], b"anything at all"] {
        socket.send(payload).expect("send");
        let mut buf = [0u8; 512];
        let n = socket.recv(&mut buf).expect("reply");
        assert_eq!(String::from_utf8_lossy(&buf[..n]), format!("{{\"v\":1,\"name\":\"pod-u\",\"client\":\"{local}\"}}\n"));
    }
}

#[test]
fn udp_connect_needs_a_reply() {
    let serve = Serve::start(&["--bind", "127.0.0.1", "--udp", "0"]);
    let out = connect(&[&serve.addr("udp", "127.0.0.1").to_string(), "--protocol", "udp", "--timeout", "5s"]);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);

    // A closed UDP port answers with ICMP port unreachable.
    let out = connect(&[&format!("127.0.0.1:{}", closed_udp_port()), "--protocol", "udp"]);
    assert_eq!((out.code(), out.stderr.as_str()), (Some(1), "REFUSED\n"));

    // A socket that reads but never answers: the probe must time out.
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let target = silent.local_addr().expect("addr").to_string();
    let out = connect(&[&target, "--protocol", "udp", "--timeout", "300ms"]);
    assert_eq!((out.code(), out.stderr.as_str()), (Some(1), "TIMEOUT\n"));
    assert!(out.elapsed >= Duration::from_millis(300), "gave up early: {:?}", out.elapsed);
    let mut buf = [0u8; 64];
    silent.set_read_timeout(Some(Duration::from_secs(1))).expect("timeout");
    let n = silent.recv(&mut buf).expect("the probe's datagram");
    assert_eq!(&buf[..n], b"hostname\n", "agnhost's UDP request");
}

#[test]
fn http_serves_netexec_paths() {
    let serve = Serve::start(&["--name", "pod-h", "--bind", "127.0.0.1", "--http", "0"]);
    let addr = serve.addr("http", "127.0.0.1");
    let get = |path: &str| {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        let local = stream.local_addr().expect("local");
        write!(stream, "GET {path} HTTP/1.1\r\nHost: test\r\n\r\n").expect("send");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response");
        let (head, body) = response.split_once("\r\n\r\n").expect("head and body");
        (head.lines().next().unwrap_or("").to_string(), body.to_string(), local)
    };
    let (status, body, _) = get("/hostname");
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", "pod-h"));
    let (status, body, local) = get("/clientip?x=1");
    assert_eq!((status.as_str(), body), ("HTTP/1.1 200 OK", local.to_string()));
    let (status, _, _) = get("/healthz");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (status, _, _) = get("/nope");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}

#[test]
fn connect_resolves_names_through_resolv_conf() {
    let dns = FakeDns::start(&[("web.ns.test", "127.0.0.1")], &[]);
    let dir = TempDir::new();
    let conf = dns.resolv_conf(&dir, "search ns.test\n");
    let conf = conf.to_str().expect("utf-8 path");
    let serve = Serve::start(&["--bind", "127.0.0.1", "--tcp", "0"]);
    let port = serve.addr("tcp", "127.0.0.1").port();

    // "web" has fewer dots than ndots (1): the search domain comes first.
    let out = connect(&[&format!("web:{port}"), "--resolv-conf", conf]);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    assert_eq!(dns.queries().first().map(String::as_str), Some("web.ns.test"));

    let out = connect(&[&format!("missing.test.:{port}"), "--resolv-conf", conf]);
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.starts_with("DNS: lookup missing.test.: no such host"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1);

    let out = connect(&[&format!("web:{port}"), "--resolv-conf", "/nonexistent/resolv.conf"]);
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.starts_with("DNS: cannot read /nonexistent/resolv.conf"), "{}", out.stderr);
}

#[test]
fn connect_rejects_bad_input_with_exit_2() {
    let cases: [(&[&str], &str); 7] = [
        (&["127.0.0.1:80", "--protocol", "icmp"], "unknown protocol \"icmp\""),
        (&["127.0.0.1:0"], "invalid port \"0\""),
        (&["127.0.0.1:65536"], "invalid port \"65536\""),
        (&["127.0.0.1:80", "--timeout", "5"], "invalid duration \"5\""),
        (&["::1:80"], "[ADDR]:PORT"),
        (&["127.0.0.1"], "expected HOST:PORT"),
        (&[], "missing HOST:PORT"),
    ];
    for (args, message) in cases {
        let out = connect(args);
        assert_eq!(out.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout, "");
    }
    let out = run(agent(), None, RUN_DEADLINE);
    assert_eq!(out.code(), Some(2));
    let mut help = agent();
    help.arg("--help");
    let out = run(help, None, RUN_DEADLINE);
    assert_eq!(out.code(), Some(0));
    assert!(out.stdout.contains("netmatrix-agent connect HOST:PORT"));
}

#[test]
fn serve_exits_0_on_sigterm() {
    // As PID 1 in a container, an agent that ignored SIGTERM would hold
    // every pod deletion for the whole grace period.
    let serve = Serve::start(&["--bind", "127.0.0.1", "--tcp", "0", "--http", "0"]);
    assert_eq!(serve.terminate().code(), Some(0));
}

#[test]
fn serve_fails_cleanly_when_a_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port().to_string();
    let mut cmd = agent();
    cmd.args(["serve", "--bind", "127.0.0.1", "--tcp", &port]);
    let out = run(cmd, None, RUN_DEADLINE);
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.contains(&format!("cannot listen on tcp 127.0.0.1:{port}")), "{}", out.stderr);
}
