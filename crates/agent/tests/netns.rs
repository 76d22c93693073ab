//! Timeout and unreachable verdicts, which loopback alone cannot produce:
//! the agent runs inside a network namespace this test creates (deleted on
//! drop), where nftables blackholes or rejects chosen ports on the
//! namespace's own loopback. Needs root (CI runs as root), iproute2 and
//! nftables.

mod common;

use std::time::Duration;

use common::*;

/// Why these tests cannot run here; missing tools fail loudly, because CI
/// (root) must run them.
fn skip_reason() -> Option<&'static str> {
    if !is_root() {
        return Some("not root: network namespaces and nftables need root");
    }
    for (program, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        assert!(have(program), "`{program}` not found: install the Debian package {package}");
    }
    None
}

/// A namespace with a serve on its loopback: TCP ports [dropped, rejected,
/// open] and UDP ports [dropped, open].
struct Lab {
    // Held for its drop; field order is drop order, so the server goes
    // before its namespace.
    _serve: Serve,
    ns: Netns,
    tcp: Vec<u16>,
    udp: Vec<u16>,
}

impl Lab {
    fn new() -> Lab {
        let ns = Netns::create();
        let serve = Serve::start_with(ns.command(AGENT), &["--name", "lab", "--bind", "127.0.0.1", "--tcp", "0,0,0", "--udp", "0,0"]);
        let ports = |proto: &str| serve.listening.iter().filter(|(p, _)| p == proto).map(|(_, a)| a.port()).collect::<Vec<_>>();
        let (tcp, udp) = (ports("tcp"), ports("udp"));
        assert_eq!((tcp.len(), udp.len()), (3, 2));
        // Dropping on input: the send succeeds and nothing ever comes back.
        // (Dropping on output would fail the send with EPERM instead.)
        ns.nft(&format!(
            "table inet nmtest {{
               chain input {{
                 type filter hook input priority 0; policy accept;
                 tcp dport {} drop
                 udp dport {} drop
                 tcp dport {} reject with icmpx type host-unreachable
               }}
             }}",
            tcp[0], udp[0], tcp[1]
        ));
        Lab { _serve: serve, ns, tcp, udp }
    }

    fn connect(&self, port: u16, protocol: &str) -> Output {
        let mut cmd = self.ns.command(AGENT);
        cmd.args(["connect", &format!("127.0.0.1:{port}"), "--protocol", protocol, "--timeout", "500ms"]);
        run(cmd, None, RUN_DEADLINE)
    }
}

#[test]
fn connect_times_out_on_blackholed_ports_and_reports_unreachable() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipping: {reason}");
        return;
    }
    let lab = Lab::new();

    let out = lab.connect(lab.tcp[2], "tcp");
    assert_eq!(out.code(), Some(0), "open port inside the namespace: {}", out.stderr);

    for (port, protocol) in [(lab.tcp[0], "tcp"), (lab.udp[0], "udp")] {
        let out = lab.connect(port, protocol);
        assert_eq!((out.code(), out.stderr.as_str()), (Some(1), "TIMEOUT\n"), "{protocol} {port}");
        assert!(out.elapsed >= Duration::from_millis(500), "{protocol}: gave up after {:?}", out.elapsed);
    }

    let out = lab.connect(lab.tcp[1], "tcp");
    assert_eq!(out.code(), Some(1));
    assert!(out.stderr.starts_with("OTHER: unreachable: "), "{}", out.stderr);
}

#[test]
fn batch_in_a_namespace_reports_every_verdict() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipping: {reason}");
        return;
    }
    let lab = Lab::new();
    let probe = |port: u16, protocol: &str, extra: &str| format!(r#"{{"target":"127.0.0.1","port":{port},"protocol":"{protocol}","timeout":"400ms"{extra}}}"#);
    let batch = format!(
        "[{}]",
        [
            probe(lab.tcp[0], "tcp", r#","tries":2"#),
            probe(lab.udp[0], "udp", ""),
            probe(lab.tcp[1], "tcp", ""),
            probe(lab.tcp[2], "tcp", ""),
            probe(lab.udp[1], "udp", ""),
        ]
        .join(",")
    );
    let mut cmd = lab.ns.command(AGENT);
    cmd.args(["probe", "--batch", "-"]);
    let out = run(cmd, Some(&batch), RUN_DEADLINE);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let r = out.results();
    assert_eq!(r.len(), 5);
    assert_eq!((r[0]["outcome"].as_str(), r[0]["attempts"].as_str()), ("timeout", "2"));
    assert!(r[0]["latency_us"].parse::<u64>().expect("latency") >= 400_000, "{:?}", r[0]);
    assert!(out.elapsed >= Duration::from_millis(800), "two 400ms tries took {:?}", out.elapsed);
    assert_eq!(r[1]["outcome"], "timeout");
    assert_eq!(r[2]["outcome"], "unreachable");
    assert!(r[2]["detail"].contains("No route to host"), "{:?}", r[2]);
    for i in [3, 4] {
        assert_eq!((r[i]["outcome"].as_str(), r[i]["answered_by"].as_str()), ("connected", "lab"), "{:?}", r[i]);
        assert_eq!(r[i]["client_ip"], "127.0.0.1");
    }
}

/// A rejecting policy is decided by its ICMP error, not by the connect's timeout, in both
/// families: on one host the error comes back while the connect still holds its socket, where
/// the kernel keeps ICMP errors only for sockets that asked for them (IP(V6)_RECVERR). Without
/// that, IPv6 waited for the SYN's retransmission (1 s), every time.
#[test]
fn rejected_connections_are_decided_at_once_in_both_families() {
    if let Some(reason) = skip_reason() {
        eprintln!("skipping: {reason}");
        return;
    }
    let lab = Lab::new();
    let port = lab.tcp[2] + 1;
    lab.ns.nft(&format!(
        "table inet nmtest-prohibited {{
           chain input {{
             type filter hook input priority -1; policy accept;
             tcp dport {port} reject with icmpx admin-prohibited
           }}
         }}"
    ));
    for host in ["127.0.0.1", "[::1]"] {
        for _ in 0..5 {
            let mut cmd = lab.ns.command(AGENT);
            cmd.args(["connect", &format!("{host}:{port}"), "--protocol", "tcp", "--timeout", "5s"]);
            let out = run(cmd, None, RUN_DEADLINE);
            assert_eq!(out.code(), Some(1), "{host}: {}", out.stderr);
            assert!(out.stderr.starts_with("OTHER: unreachable: "), "{host}: {}", out.stderr);
            assert!(out.elapsed < Duration::from_millis(900), "{host}: the reject took {:?} (a SYN retransmission)", out.elapsed);
        }
    }
}
