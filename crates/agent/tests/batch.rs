//! `probe --batch` over real loopback sockets.

mod common;

use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::*;

fn probe(batch: &str, extra: &[&str]) -> Output {
    let mut cmd = agent();
    cmd.args(["probe", "--batch", "-"]).args(extra);
    run(cmd, Some(batch), RUN_DEADLINE)
}

fn probe_ok(batch: &str, extra: &[&str]) -> Vec<std::collections::HashMap<String, String>> {
    let out = probe(batch, extra);
    assert_eq!(out.code(), Some(0), "stderr: {}", out.stderr);
    let results = out.results();
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["v"], "1", "schema version on every line");
        assert_eq!(r["index"], i.to_string(), "results in input order");
    }
    results
}

#[test]
fn batch_reports_who_answered_client_and_outcomes() {
    let a = Serve::start(&["--name", "pod-a", "--bind", "127.0.0.1", "--tcp", "0", "--udp", "0"]);
    let b = Serve::start(&["--name", "pod-b", "--bind", "127.0.0.1", "--tcp", "0"]);
    let (a_tcp, a_udp) = (a.addr("tcp", "127.0.0.1").port(), a.addr("udp", "127.0.0.1").port());
    let b_tcp = b.addr("tcp", "127.0.0.1").port();
    let (closed_tcp, closed_udp) = (closed_tcp_port(), closed_udp_port());
    let batch = format!(
        r#"[
          {{"id":"a-tcp","target":"127.0.0.1","port":{a_tcp},"protocol":"tcp"}},
          {{"id":"a-udp","target":"127.0.0.1","port":{a_udp},"protocol":"udp","timeout":"5s"}},
          {{"id":"b-tcp","target":"127.0.0.1","port":{b_tcp},"protocol":"tcp","v":1}},
          {{"id":"closed-tcp","target":"127.0.0.1","port":{closed_tcp},"protocol":"tcp","tries":3}},
          {{"id":"closed-udp","target":"127.0.0.1","port":{closed_udp},"protocol":"udp"}}
        ]"#
    );
    let r = probe_ok(&batch, &["--timeout", "5s"]);
    assert_eq!(r.len(), 5);
    for (i, who) in [(0, "pod-a"), (1, "pod-a"), (2, "pod-b")] {
        assert_eq!(r[i]["outcome"], "connected", "{:?}", r[i]);
        assert_eq!(r[i]["answered_by"], who);
        assert_eq!(r[i]["client_ip"], "127.0.0.1");
        assert_ne!(r[i]["client_port"], "null");
        assert_eq!(r[i]["attempts"], "1");
        assert_eq!(r[i]["detail"], "null");
        assert!(r[i]["latency_us"].parse::<u64>().expect("latency") < 5_000_000);
    }
    assert_eq!(r[0]["address"], format!("127.0.0.1:{a_tcp}"));
    assert_eq!((r[1]["protocol"].as_str(), r[1]["id"].as_str()), ("udp", "a-udp"));
    assert_eq!(r[3]["outcome"], "refused");
    assert_eq!(r[3]["attempts"], "3", "a failure uses every try");
    assert_eq!((r[3]["answered_by"].as_str(), r[3]["client_ip"].as_str()), ("null", "null"));
    assert_eq!(r[4]["outcome"], "refused");
}

#[test]
fn source_port_is_the_client_port_the_server_sees() {
    let serve = Serve::start(&["--name", "pod-s", "--bind", "127.0.0.1", "--tcp", "0", "--udp", "0"]);
    let (tcp, udp) = (serve.addr("tcp", "127.0.0.1").port(), serve.addr("udp", "127.0.0.1").port());
    let source = closed_tcp_port();
    let batch = format!(
        r#"[{{"target":"127.0.0.1","port":{tcp},"protocol":"tcp","source_port":{source}}},
            {{"target":"127.0.0.1","port":{udp},"protocol":"udp","source_port":{source}}}]"#
    );
    // Twice: the same 4-tuple must be reusable at once (affinity tests
    // probe repeatedly from one source port).
    for round in 0..2 {
        let r = probe_ok(&batch, &["--parallel", "1"]);
        for result in &r {
            assert_eq!(result["outcome"], "connected", "round {round}: {result:?}");
            assert_eq!(result["client_port"], source.to_string(), "round {round}");
        }
    }
}

#[test]
fn names_resolve_through_dns_and_ip_literals_skip_it() {
    let dns = FakeDns::start(&[("web.ns.test", "127.0.0.1"), ("v6only.test", "::1"), ("big.test", "127.0.0.1")], &["big.test"]);
    let dir = TempDir::new();
    let conf = dns.resolv_conf(&dir, "search ns.test\noptions ndots:1 timeout:2\n");
    let serve = Serve::start(&["--name", "pod-d", "--bind", "127.0.0.1", "--tcp", "0"]);
    let port = serve.addr("tcp", "127.0.0.1").port();

    let literal = format!(r#"[{{"target":"127.0.0.1","port":{port},"protocol":"tcp"}}]"#);
    let r = probe_ok(&literal, &["--resolv-conf", conf.to_str().expect("path")]);
    assert_eq!(r[0]["outcome"], "connected");
    assert!(dns.queries().is_empty(), "an IP literal went to DNS: {:?}", dns.queries());

    let batch = format!(
        r#"[{{"target":"web","port":{port},"protocol":"tcp"}},
            {{"target":"nowhere.test.","port":{port},"protocol":"tcp"}},
            {{"target":"big.test.","port":{port},"protocol":"tcp"}},
            {{"target":"v6only.test.","port":{port},"protocol":"tcp"}}]"#
    );
    let r = probe_ok(&batch, &["--resolv-conf", conf.to_str().expect("path"), "--parallel", "1"]);
    assert_eq!((r[0]["outcome"].as_str(), r[0]["answered_by"].as_str()), ("connected", "pod-d"));
    assert_eq!(r[0]["address"], format!("127.0.0.1:{port}"));
    assert_eq!(r[1]["outcome"], "dns");
    assert_eq!(r[1]["address"], "null");
    assert!(r[1]["detail"].contains("no such host"), "{:?}", r[1]);
    // Truncated over UDP, answered over TCP.
    assert_eq!(r[2]["outcome"], "connected", "{:?}", r[2]);
    assert!(dns.queries().contains(&"tcp:big.test".to_string()), "{:?}", dns.queries());
    // No A record: the AAAA answer is used.
    assert_eq!(r[3]["address"], format!("[::1]:{port}"));
}

#[test]
fn dns_server_that_never_answers_is_a_dns_outcome_within_the_timeout() {
    let silent = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let dir = TempDir::new();
    let conf = dir.write("resolv.conf", &format!("nameserver {}\n", silent.local_addr().expect("addr")));
    let start = Instant::now();
    let r = probe_ok(r#"[{"target":"web.test","port":80,"protocol":"tcp","timeout":"300ms"}]"#, &["--resolv-conf", conf.to_str().expect("path")]);
    assert_eq!(r[0]["outcome"], "dns");
    assert!(r[0]["detail"].contains("timed out"), "{:?}", r[0]);
    assert!(start.elapsed() < Duration::from_secs(5), "the probe timeout must bound DNS");
}

#[test]
fn plain_text_replies_count_as_the_answering_name() {
    // An agnhost-style UDP server: replies to "hostname" with a bare name.
    let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
    server.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let port = server.local_addr().expect("addr").port();
    let responder = thread::spawn(move || {
        let mut buf = [0u8; 64];
        if let Ok((n, peer)) = server.recv_from(&mut buf)
            && &buf[..n] == b"hostname\n"
        {
            let _ = server.send_to(b"netexec-0", peer);
        }
    });
    let r = probe_ok(&format!(r#"[{{"target":"127.0.0.1","port":{port},"protocol":"udp","timeout":"5s"}}]"#), &[]);
    responder.join().expect("responder");
    assert_eq!((r[0]["outcome"].as_str(), r[0]["answered_by"].as_str()), ("connected", "netexec-0"));
    assert_eq!(r[0]["client_ip"], "null");
}

/// A TCP server that accepts and stays silent, recording how many
/// connections were open at once.
fn silent_tcp_server() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (open, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (o, p) = (open.clone(), peak.clone());
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let now = o.fetch_add(1, Ordering::SeqCst) + 1;
            p.fetch_max(now, Ordering::SeqCst);
            let o = o.clone();
            thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let mut buf = [0u8; 16];
                let _ = stream.read(&mut buf); // until the probe closes
                o.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (port, peak)
}

#[test]
fn parallelism_is_bounded() {
    let (port, peak) = silent_tcp_server();
    let probe_line = format!(r#"{{"target":"127.0.0.1","port":{port},"protocol":"tcp","timeout":"300ms"}}"#);
    let batch = format!("[{}]", vec![probe_line; 6].join(","));

    let out = probe(&batch, &["--parallel", "2"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let results = out.results();
    assert_eq!(results.len(), 6);
    for r in &results {
        // Connected, but a silent server names nobody.
        assert_eq!((r["outcome"].as_str(), r["answered_by"].as_str()), ("connected", "null"));
    }
    // Each probe holds its connection for its whole 300ms timeout, so two at
    // a time need three rounds.
    assert!(out.elapsed >= Duration::from_millis(850), "finished too fast for --parallel 2: {:?}", out.elapsed);

    // And with room for all six, all six are open at once.
    let out = probe(&batch, &["--parallel", "6"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(peak.load(Ordering::SeqCst), 6, "probes did not run concurrently");
}

#[test]
fn identify_false_ends_tcp_probes_at_the_handshake() {
    let (port, _) = silent_tcp_server();
    let batch = format!(r#"[{{"target":"127.0.0.1","port":{port},"protocol":"tcp","timeout":"10s","identify":false}}]"#);
    let out = probe(&batch, &[]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.results()[0]["outcome"], "connected");
    assert!(out.elapsed < Duration::from_secs(5), "waited for an identity anyway: {:?}", out.elapsed);
}

#[test]
fn batch_from_a_file_and_an_empty_batch() {
    let serve = Serve::start(&["--bind", "127.0.0.1", "--tcp", "0"]);
    let dir = TempDir::new();
    let port = serve.addr("tcp", "127.0.0.1").port();
    let file = dir.write("batch.json", &format!(r#"[{{"target":"127.0.0.1","port":{port},"protocol":"tcp"}}]"#));
    let mut cmd = agent();
    cmd.args(["probe", "--batch"]).arg(&file);
    let out = run(cmd, None, RUN_DEADLINE);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.results()[0]["outcome"], "connected");

    let out = probe(" [ ] ", &[]);
    assert_eq!((out.code(), out.stdout.as_str()), (Some(0), ""));
}

#[test]
fn bad_batches_exit_2_and_probe_nothing() {
    // The first probe is valid and aims at this listener: it must see no
    // connection, because validation happens before any probe.
    let witness = TcpListener::bind("127.0.0.1:0").expect("bind");
    witness.set_nonblocking(true).expect("nonblocking");
    let port = witness.local_addr().expect("addr").port();
    let good = format!(r#"{{"target":"127.0.0.1","port":{port},"protocol":"tcp"}}"#);
    let cases = [
        (format!("[{good},"), "batch is not valid JSON: line 1 column"),
        (format!("[{good}, {{\"target\":\"127.0.0.1\",\"port\":80,\"protocol\":\"icmp\"}}]"), "probe 1: field \"protocol\": unknown protocol \"icmp\""),
        (format!("[{good}, {{\"target\":\"127.0.0.1\",\"port\":0,\"protocol\":\"tcp\"}}]"), "probe 1: field \"port\": must be an integer 1..65535, got 0"),
        (
            format!("[{good}, {{\"target\":\"127.0.0.1\",\"port\":65536,\"protocol\":\"udp\"}}]"),
            "probe 1: field \"port\": must be an integer 1..65535, got 65536",
        ),
        (format!("[{good}, {{\"target\":\"127.0.0.1\",\"port\":80}}]"), "probe 1: missing field \"protocol\""),
        (format!("[{good}, {{\"target\":\"127.0.0.1\",\"port\":80,\"protocol\":\"tcp\",\"extra\":1}}]"), "probe 1: unknown field \"extra\""),
        (good.clone(), "batch must be a JSON array"),
    ];
    for (batch, message) in cases {
        let out = probe(&batch, &[]);
        assert_eq!(out.code(), Some(2), "{batch}: {}", out.stderr);
        assert!(out.stderr.contains(message), "{batch}\n  stderr: {}\n  want: {message}", out.stderr);
        assert_eq!(out.stdout, "", "nothing is printed");
        assert!(witness.accept().is_err(), "{batch}: a probe was sent");
    }
    let mut cmd = agent();
    cmd.args(["probe", "--batch", "/nonexistent/batch.json"]);
    let out = run(cmd, None, RUN_DEADLINE);
    assert_eq!(out.code(), Some(2));
    assert!(out.stderr.contains("reading the batch /nonexistent/batch.json"), "{}", out.stderr);
    let out = probe("[]", &["--parallel", "0"]);
    assert_eq!(out.code(), Some(2));
}

/// `probe --stream`: one agent answers batch after batch, each as soon as its line arrives.
#[test]
fn stream_answers_each_line_before_the_next_and_ends_with_stdin() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let server = Serve::start(&["--name", "pod-s", "--bind", "127.0.0.1", "--tcp", "0"]);
    let port = server.addr("tcp", "127.0.0.1").port();
    let closed = closed_tcp_port();
    let mut child = agent().args(["probe", "--stream"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("agent starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = || parse_flat_object(&lines.next().expect("a result line").expect("readable"));
    for round in 0..3 {
        // stdin stays open: results must come while the agent waits for the next batch.
        writeln!(stdin, r#"[{{"target":"127.0.0.1","port":{port},"protocol":"tcp"}},{{"target":"127.0.0.1","port":{closed},"protocol":"tcp"}}]"#).unwrap();
        stdin.flush().unwrap();
        let (open, shut) = (next(), next());
        assert_eq!((open["index"].as_str(), open["outcome"].as_str(), open["answered_by"].as_str()), ("0", "connected", "pod-s"), "round {round}");
        assert_eq!((shut["index"].as_str(), shut["outcome"].as_str()), ("1", "refused"), "round {round}");
    }
    drop(stdin);
    let deadline = Instant::now() + RUN_DEADLINE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the agent did not end within {RUN_DEADLINE:?} of stdin's end");
        thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn stream_ends_when_idle_and_refuses_a_bad_line() {
    use std::process::Stdio;
    // stdin held open and silent: the agent ends by itself.
    let mut child = agent()
        .args(["probe", "--stream", "--idle", "200ms"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("agent starts");
    let started = Instant::now();
    let _stdin = child.stdin.take();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < RUN_DEADLINE, "an idle stream did not end");
        thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.code(), Some(0));
    assert!(started.elapsed() >= Duration::from_millis(200), "ended before --idle");

    let mut cmd = agent();
    cmd.args(["probe", "--stream"]);
    let out = run(cmd, Some("[]\n[{\"target\":\"127.0.0.1\",\"port\":70000,\"protocol\":\"tcp\"}]\n"), RUN_DEADLINE);
    assert_eq!(out.code(), Some(2), "stderr: {}", out.stderr);
    assert!(out.stderr.contains("line 2") && out.stderr.contains("port"), "names the line and field: {}", out.stderr);
}
