//! One batch of probes in one exec of the agent: stdout and stderr read while the exec runs
//! (their buffers are small: an unread stream stalls the exec), then its status, all within a
//! deadline. A missing status is a failure, never a success.

use std::time::Duration;

use futures::future::join;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use tokio::io::AsyncReadExt;

use crate::config::error_chain;
use crate::pods::{AGENT, AGNHOST, CONTAINER};
use netmatrix_cluster::{Outcome, ProbeRequest, ProbeResult, Target};

/// Runs the agent's batch in `pod`; its stdout, or why the exec failed.
pub async fn run_batch(pods: &Api<Pod>, pod: &str, batch: String, deadline: Duration) -> Result<String, String> {
    // The batch is an argument, not stdin: an older exec protocol cannot signal stdin's end.
    let command = vec![AGENT.to_owned(), "probe".into(), "--batch".into(), batch];
    run(pods, pod, command, deadline).await.and_then(|(status, stdout, stderr)| outcome(status, stdout, stderr))
}

/// Runs each probe as the upstream e2e tests do, one `agnhost connect` exec each, one after
/// another; the exit status and agnhost's stderr prefix give the outcome. agnhost does not say
/// who answered.
pub async fn run_agnhost(pods: &Api<Pod>, pod: &str, probes: &[ProbeRequest], deadline: Duration) -> Result<Vec<ProbeResult>, String> {
    let mut results = Vec::with_capacity(probes.len());
    for (index, probe) in probes.iter().enumerate() {
        let host = match &probe.target {
            Target::Ip(ip) => std::net::SocketAddr::new(*ip, probe.port).to_string(),
            Target::Name(name) => format!("{name}:{}", probe.port),
        };
        let timeout = probe.timeout.unwrap_or(Duration::from_secs(1));
        let command =
            vec![AGNHOST.to_owned(), "connect".into(), host, format!("--timeout={}s", timeout.as_secs().max(1)), format!("--protocol={}", probe.protocol)];
        let started = std::time::Instant::now();
        let (status, _, stderr) = run(pods, pod, command, deadline).await?;
        let stderr = String::from_utf8_lossy(&stderr).trim().to_owned();
        let (outcome, detail) = agnhost_outcome(status.as_ref().and_then(|s| s.status.as_deref()), &stderr);
        results.push(ProbeResult {
            index,
            id: probe.id.clone(),
            target: probe.target.to_string(),
            port: probe.port,
            protocol: probe.protocol,
            outcome,
            address: None,
            latency: started.elapsed(),
            attempts: 1,
            answered_by: None,
            client_ip: None,
            client_port: None,
            detail,
        });
    }
    Ok(results)
}

/// agnhost connect's verdict: success, or its stderr's first word (TIMEOUT, REFUSED, DNS,
/// OTHER; UNKNOWN is agnhost's own failure, no verdict about the network).
fn agnhost_outcome(status: Option<&str>, stderr: &str) -> (Outcome, Option<String>) {
    if status == Some("Success") {
        return (Outcome::Connected, None);
    }
    let outcome = match stderr.split(|c: char| c == ':' || c.is_whitespace()).next().unwrap_or_default() {
        "TIMEOUT" => Outcome::Timeout,
        "REFUSED" => Outcome::Refused,
        "DNS" => Outcome::Dns,
        "OTHER" => Outcome::Other,
        _ => Outcome::Error,
    };
    (outcome, (!stderr.is_empty()).then(|| stderr.to_owned()))
}

type Finished = (Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>, Vec<u8>, Vec<u8>);

/// One exec: its status, stdout and stderr, read while it runs, within `deadline`.
async fn run(pods: &Api<Pod>, pod: &str, command: Vec<String>, deadline: Duration) -> Result<Finished, String> {
    let params = AttachParams::default().container(CONTAINER).stdin(false).stdout(true).stderr(true);
    let exec = async {
        let mut process = pods.exec(pod, command, &params).await.map_err(|e| format!("exec: {}", error_chain(&e)))?;
        let (mut out, mut err) = (process.stdout().expect("stdout requested"), process.stderr().expect("stderr requested"));
        let status = process.take_status().expect("status taken once");
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let (read_out, read_err) = join(out.read_to_end(&mut stdout), err.read_to_end(&mut stderr)).await;
        read_out.and(read_err).map_err(|e| format!("reading the agent's output: {e}"))?;
        let status = status.await;
        let _ = process.join().await;
        Ok((status, stdout, stderr))
    };
    tokio::time::timeout(deadline, exec).await.unwrap_or_else(|_| Err(format!("the exec did not finish within {deadline:?}")))
}

/// The exec's status decides: success gives stdout; otherwise the status and stderr say why.
fn outcome(status: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Status>, stdout: Vec<u8>, stderr: Vec<u8>) -> Result<String, String> {
    let stderr = String::from_utf8_lossy(&stderr).trim().to_owned();
    match status {
        None => Err(format!("the exec ended without an exit status{}", if stderr.is_empty() { String::new() } else { format!(" ({stderr})") })),
        Some(s) if s.status.as_deref() == Some("Success") => String::from_utf8(stdout).map_err(|e| format!("the agent's output is not UTF-8: {e}")),
        Some(s) => Err(format!("the agent failed: {}{}", s.message.unwrap_or_default(), if stderr.is_empty() { String::new() } else { format!(": {stderr}") })),
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;

    use super::*;

    #[test]
    fn agnhost_verdicts_come_from_its_stderr_prefixes() {
        assert_eq!(agnhost_outcome(Some("Success"), ""), (Outcome::Connected, None));
        assert_eq!(agnhost_outcome(Some("Failure"), "TIMEOUT").0, Outcome::Timeout);
        assert_eq!(agnhost_outcome(Some("Failure"), "REFUSED").0, Outcome::Refused);
        assert_eq!(agnhost_outcome(Some("Failure"), "DNS: no such host").0, Outcome::Dns);
        assert_eq!(agnhost_outcome(Some("Failure"), "OTHER: network is unreachable").0, Outcome::Other);
        assert_eq!(agnhost_outcome(None, "").0, Outcome::Error, "no status is no verdict");
        assert_eq!(agnhost_outcome(Some("Failure"), "UNKNOWN: bad flag").0, Outcome::Error);
    }

    #[test]
    fn the_status_decides() {
        let ok = Status { status: Some("Success".into()), ..Status::default() };
        assert_eq!(outcome(Some(ok), b"{\"v\":1}\n".to_vec(), Vec::new()).unwrap(), "{\"v\":1}\n");
        let failed =
            Status { status: Some("Failure".into()), message: Some("command terminated with non-zero exit code: exit status 2".into()), ..Status::default() };
        let err = outcome(Some(failed), Vec::new(), b"netmatrix-agent: probe: probe 0: missing field \"port\"\n".to_vec()).unwrap_err();
        assert!(err.contains("exit status 2") && err.contains("missing field"), "{err}");
        let err = outcome(None, b"{\"v\":1}\n".to_vec(), Vec::new()).unwrap_err();
        assert!(err.contains("without an exit status"), "output without a status is no success: {err}");
    }
}
