//! `probe --batch`: a whole matrix row in one invocation. The batch is read
//! and validated completely before anything is probed (bad input: exit 2,
//! nothing sent); probes then run with bounded parallelism and one result
//! line per probe is printed, in input order, as soon as it and all earlier
//! ones are done. Schema `netmatrix.probe/v1`, documented in the README.
//! `probe --stream` does the same for each line of stdin, one batch a line.

use std::collections::BTreeMap;
use std::io::{self, BufRead, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use netmatrix_probe::{Outcome, ProbeRequest, ProbeResult, parse_batch};
use tokio::time::timeout;

use crate::args::{BatchSource, ProbeArgs};
use crate::dns::Resolver;
use crate::probe::{self, Attempt, Spec};

const FLUSH_AFTER: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub struct BatchProbe {
    pub request: ProbeRequest,
    pub spec: Spec,
}

impl BatchProbe {
    /// A request without a timeout takes `default_timeout` (`--timeout`).
    fn new(request: ProbeRequest, default_timeout: Duration) -> Self {
        let spec = Spec {
            host: request.target.clone(),
            port: request.port,
            protocol: request.protocol,
            timeout: request.timeout.unwrap_or(default_timeout),
            source_port: request.source_port,
            identify: request.identify,
        };
        BatchProbe { request, spec }
    }
}

pub fn main(args: ProbeArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("netmatrix-agent: probe: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let resolver = Arc::new(Resolver::new(&args.resolv_conf));
    if let BatchSource::Stream { idle } = args.batch {
        return runtime.block_on(stream(&args, idle, resolver));
    }
    let probes = match read_batch(&args.batch).and_then(|text| parse_batch(&text, args.timeout)) {
        Ok(requests) => requests.into_iter().map(|request| BatchProbe::new(request, args.timeout)).collect(),
        Err(e) => {
            eprintln!("netmatrix-agent: probe: {e}");
            return ExitCode::from(2);
        }
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    match runtime.block_on(run(probes, args.parallel, resolver, &mut out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netmatrix-agent: probe: writing results: {e}");
            ExitCode::from(1)
        }
    }
}

fn read_batch(source: &BatchSource) -> Result<String, String> {
    match source {
        BatchSource::Stdin => {
            let mut text = String::new();
            io::stdin().read_to_string(&mut text).map_err(|e| format!("reading the batch from stdin: {e}"))?;
            Ok(text)
        }
        BatchSource::File(path) => std::fs::read_to_string(path).map_err(|e| format!("reading the batch {}: {e}", path.display())),
        BatchSource::Inline(json) => Ok(json.clone()),
        BatchSource::Stream { .. } => unreachable!("a stream is read a line at a time"),
    }
}

/// `--stream`: each stdin line is a batch, answered by its result lines (flushed) before the
/// next line is taken. Ends at stdin's end, or when no batch came for `idle`: a caller that
/// vanished without closing stdin leaves no agent behind. A bad batch exits 2 as `--batch` does.
async fn stream(args: &ProbeArgs, idle: Duration, resolver: Arc<Resolver>) -> ExitCode {
    // Blocking reads on a thread of their own: the runtime is single-threaded.
    let (lines, mut received) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in io::stdin().lock().lines() {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut out = io::BufWriter::new(io::stdout().lock());
    let mut number = 0;
    loop {
        number += 1;
        let line = match timeout(idle, received.recv()).await {
            Err(_) => {
                eprintln!("netmatrix-agent: probe: no batch for {idle:?}; ending");
                return ExitCode::SUCCESS;
            }
            Ok(None) => return ExitCode::SUCCESS,
            Ok(Some(Err(e))) => {
                eprintln!("netmatrix-agent: probe: reading stdin: {e}");
                return ExitCode::from(1);
            }
            Ok(Some(Ok(line))) if line.trim().is_empty() => continue,
            Ok(Some(Ok(line))) => line,
        };
        let probes = match parse_batch(&line, args.timeout) {
            Ok(requests) => requests.into_iter().map(|request| BatchProbe::new(request, args.timeout)).collect(),
            Err(e) => {
                eprintln!("netmatrix-agent: probe: batch on line {number}: {e}");
                return ExitCode::from(2);
            }
        };
        if let Err(e) = run(probes, args.parallel, resolver.clone(), &mut out).await {
            eprintln!("netmatrix-agent: probe: writing results: {e}");
            return ExitCode::from(1);
        }
    }
}

/// Runs the probes on `parallel` workers and writes the result lines.
pub async fn run(probes: Vec<BatchProbe>, parallel: usize, resolver: Arc<Resolver>, out: &mut impl Write) -> io::Result<()> {
    let probes = Arc::new(probes);
    let next = Arc::new(AtomicUsize::new(0));
    let (results, mut done) = tokio::sync::mpsc::unbounded_channel();
    for _ in 0..parallel.min(probes.len()) {
        let (probes, resolver, next, results) = (probes.clone(), resolver.clone(), next.clone(), results.clone());
        tokio::spawn(async move {
            loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(probe) = probes.get(index) else {
                    break;
                };
                let (attempt, attempts) = probe::run(&probe.spec, probe.request.tries, &resolver).await;
                if results.send((index, result_line(index, probe, &attempt, attempts))).is_err() {
                    break;
                }
            }
        });
    }
    drop(results);
    // Results arrive in completion order; hold them until their turn.
    let mut waiting = BTreeMap::new();
    let mut next_out = 0;
    loop {
        // Flushing per line would cost a syscall per probe; flush once
        // results pause instead, so a reader still sees them promptly.
        let received = match timeout(FLUSH_AFTER, done.recv()).await {
            Ok(received) => received,
            Err(_) => {
                out.flush()?;
                done.recv().await
            }
        };
        let Some((index, line)) = received else { break };
        waiting.insert(index, line);
        while let Some(line) = waiting.remove(&next_out) {
            writeln!(out, "{line}")?;
            next_out += 1;
        }
    }
    out.flush()
}

pub fn result_line(index: usize, probe: &BatchProbe, attempt: &Attempt, attempts: u32) -> String {
    let (outcome, detail, answer) = match &attempt.result {
        Ok(answer) => (Outcome::Connected, None, Some(answer)),
        Err(failure) => (failure.outcome(), failure.detail(), None),
    };
    let client = answer.and_then(|a| a.client);
    let request = &probe.request;
    ProbeResult {
        index,
        id: request.id.clone(),
        target: request.target.to_string(),
        port: request.port,
        protocol: request.protocol,
        outcome,
        address: attempt.address,
        latency: attempt.latency,
        attempts,
        answered_by: answer.and_then(|a| a.name.clone()),
        client_ip: client.map(|c| c.ip()),
        client_port: client.map(|c| c.port()),
        detail: detail.map(str::to_string),
    }
    .to_line()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Answer;
    use crate::probe::Failure;

    #[test]
    fn result_lines() {
        let request = parse_batch(r#"[{"id":"x","target":"::1","port":80,"protocol":"tcp"}]"#, Duration::from_secs(1)).unwrap().remove(0);
        let probe = &BatchProbe::new(request, Duration::from_secs(1));
        let connected = Attempt {
            address: Some("[::1]:80".parse().unwrap()),
            latency: Duration::from_micros(1234),
            result: Ok(Answer { name: Some("pod-a".into()), client: Some("[::1]:5000".parse().unwrap()) }),
        };
        assert_eq!(
            result_line(4, probe, &connected, 2),
            r#"{"v":1,"index":4,"id":"x","target":"::1","port":80,"protocol":"tcp","outcome":"connected","address":"[::1]:80","latency_us":1234,"attempts":2,"answered_by":"pod-a","client_ip":"::1","client_port":5000,"detail":null}"#
        );
        let dns = Attempt { address: None, latency: Duration::ZERO, result: Err(Failure::Dns("lookup x: no such host".into())) };
        let line = result_line(0, probe, &dns, 1);
        assert!(line.contains(r#""outcome":"dns","address":null"#), "{line}");
        assert!(line.contains(r#""answered_by":null,"client_ip":null,"client_port":null,"detail":"lookup x: no such host""#), "{line}");
        let agent = Attempt { address: None, latency: Duration::ZERO, result: Err(Failure::Agent("no socket".into())) };
        assert!(result_line(0, probe, &agent, 1).contains(r#""outcome":"error""#));
    }
}
