//! SCTP serve + connect + batch on loopback, where the kernel has SCTP.
//! Without it (as on the development machine) the test prints why it
//! skips the real exchange and checks the agent's own report instead:
//! an agent failure, never a network verdict.

mod common;

use common::*;

#[test]
fn sctp_serve_connect_and_batch() {
    if let Some(reason) = sctp_unavailable() {
        eprintln!("skipping the SCTP exchange: this kernel cannot open SCTP sockets ({reason})");
        let mut cmd = agent();
        cmd.args(["connect", "127.0.0.1:9", "--protocol", "sctp", "--timeout", "1s"]);
        let out = run(cmd, None, RUN_DEADLINE);
        assert_eq!(out.code(), Some(1));
        assert!(out.stderr.starts_with("UNKNOWN: sctp socket"), "{}", out.stderr);

        let mut cmd = agent();
        cmd.args(["probe", "--batch", "-"]);
        let out = run(cmd, Some(r#"[{"target":"127.0.0.1","port":9,"protocol":"sctp"}]"#), RUN_DEADLINE);
        assert_eq!(out.code(), Some(0), "{}", out.stderr);
        let r = out.results();
        assert_eq!(r[0]["outcome"], "error", "{:?}", r[0]);

        let mut cmd = agent();
        cmd.args(["serve", "--bind", "127.0.0.1", "--sctp", "0"]);
        let out = run(cmd, None, RUN_DEADLINE);
        assert_eq!(out.code(), Some(1));
        assert!(out.stderr.contains("cannot listen on sctp 127.0.0.1:0"), "{}", out.stderr);
        return;
    }

    let serve = Serve::start(&["--name", "pod-sctp", "--bind", "127.0.0.1", "--sctp", "0"]);
    let addr = serve.addr("sctp", "127.0.0.1");
    let mut cmd = agent();
    cmd.args(["connect", &addr.to_string(), "--protocol", "sctp", "--timeout", "5s"]);
    let out = run(cmd, None, RUN_DEADLINE);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);

    let closed = closed_tcp_port();
    let batch = format!(
        r#"[{{"target":"127.0.0.1","port":{},"protocol":"sctp","timeout":"5s"}},
            {{"target":"127.0.0.1","port":{closed},"protocol":"sctp","timeout":"5s"}}]"#,
        addr.port()
    );
    let mut cmd = agent();
    cmd.args(["probe", "--batch", "-"]);
    let out = run(cmd, Some(&batch), RUN_DEADLINE);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let r = out.results();
    assert_eq!((r[0]["outcome"].as_str(), r[0]["answered_by"].as_str()), ("connected", "pod-sctp"), "{:?}", r[0]);
    assert_eq!(r[0]["client_ip"], "127.0.0.1");
    // An SCTP INIT to a closed port is answered with ABORT: refused.
    assert_eq!(r[1]["outcome"], "refused", "{:?}", r[1]);
}
