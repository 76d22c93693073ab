//! `probe --batch`: a whole matrix row in one invocation. The batch is read
//! and validated completely before anything is probed (bad input: exit 2,
//! nothing sent); probes then run with bounded parallelism and one result
//! line per probe is printed, in input order, as soon as it and all earlier
//! ones are done. Schema `netmatrix.probe/v1`, documented in the README.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::time::timeout;

use crate::args::{self, BatchSource, ProbeArgs, Protocol};
use crate::dns::Resolver;
use crate::json::{self, ObjectWriter, Value};
use crate::probe::{self, Attempt, Spec};

pub const SCHEMA_VERSION: u64 = 1;
const FIELDS: [&str; 9] = ["v", "id", "target", "port", "protocol", "timeout", "tries", "source_port", "identify"];
const MAX_TRIES: u64 = 100;
const FLUSH_AFTER: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub struct BatchProbe {
    pub id: Option<String>,
    /// As given, echoed in the result.
    pub target: String,
    pub spec: Spec,
    pub tries: u32,
}

pub fn main(args: ProbeArgs) -> ExitCode {
    let probes = match read_batch(&args.batch).and_then(|text| parse_batch(&text, args.timeout)) {
        Ok(probes) => probes,
        Err(e) => {
            eprintln!("netmatrix-agent: probe: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("netmatrix-agent: probe: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let resolver = Resolver::new(&args.resolv_conf);
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
    }
}

/// Parses and validates a whole batch; errors name the probe and field.
pub fn parse_batch(text: &str, default_timeout: Duration) -> Result<Vec<BatchProbe>, String> {
    let value = json::parse(text).map_err(|e| format!("batch is not valid JSON: {e}"))?;
    let Value::Array(items) = value else {
        return Err(format!("batch must be a JSON array of probe objects, got {}", value.kind()));
    };
    items.iter().enumerate().map(|(index, item)| parse_probe(item, default_timeout).map_err(|e| format!("probe {index}: {e}"))).collect()
}

fn parse_probe(item: &Value, default_timeout: Duration) -> Result<BatchProbe, String> {
    let Value::Object(members) = item else {
        return Err(format!("must be an object, got {}", item.kind()));
    };
    if let Some((key, _)) = members.iter().find(|(key, _)| !FIELDS.contains(&key.as_str())) {
        return Err(format!("unknown field {key:?} (known: {})", FIELDS.join(", ")));
    }
    let field = |key: &str| members.iter().find(|(k, _)| k == key).map(|(_, v)| v);

    if let Some(v) = field("v") {
        if v.as_u64() != Some(SCHEMA_VERSION) {
            return Err(format!("field \"v\": unsupported schema version {}, expected {SCHEMA_VERSION}", show(v)));
        }
    }
    let id = match field("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id.clone()),
        Some(other) => {
            return Err(format!("field \"id\": must be a string, got {}", show(other)));
        }
    };
    let target = match field("target") {
        Some(Value::String(target)) => target.clone(),
        Some(other) => {
            return Err(format!("field \"target\": must be a string, got {}", show(other)));
        }
        None => return Err("missing field \"target\"".into()),
    };
    let host = args::parse_host(&target).map_err(|e| format!("field \"target\": {e}"))?;
    let port = integer(field("port"), "port", 1, 65535)?.ok_or("missing field \"port\"")?;
    let protocol = match field("protocol") {
        Some(Value::String(p)) => Protocol::parse(p).map_err(|e| format!("field \"protocol\": {e}"))?,
        Some(other) => {
            return Err(format!("field \"protocol\": must be a string, got {}", show(other)));
        }
        None => return Err("missing field \"protocol\"".into()),
    };
    let timeout = match field("timeout") {
        None => default_timeout,
        Some(Value::String(t)) => args::parse_duration(t).map_err(|e| format!("field \"timeout\": {e}"))?,
        Some(other) => {
            return Err(format!("field \"timeout\": must be a duration string like \"500ms\", got {}", show(other)));
        }
    };
    let tries = integer(field("tries"), "tries", 1, MAX_TRIES)?.unwrap_or(1);
    let source_port = integer(field("source_port"), "source_port", 1, 65535)?;
    let identify = match field("identify") {
        None => true,
        Some(Value::Bool(identify)) => *identify,
        Some(other) => {
            return Err(format!("field \"identify\": must be true or false, got {}", show(other)));
        }
    };
    Ok(BatchProbe {
        id,
        target,
        spec: Spec { host, port: port as u16, protocol, timeout, source_port: source_port.map(|p| p as u16), identify },
        tries: tries as u32,
    })
}

/// An optional integer field within `min..=max`.
fn integer(value: Option<&Value>, key: &str, min: u64, max: u64) -> Result<Option<u64>, String> {
    match value {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(format!("field {key:?}: must be an integer {min}..{max}, got {}", show(v))),
        },
    }
}

/// A value as it appears in error messages.
fn show(value: &Value) -> String {
    match value {
        Value::Number(text) => text.clone(),
        Value::String(s) => format!("{s:?}"),
        Value::Bool(b) => b.to_string(),
        other => other.kind().to_string(),
    }
}

/// Runs the probes on `parallel` workers and writes the result lines.
pub async fn run(probes: Vec<BatchProbe>, parallel: usize, resolver: Resolver, out: &mut impl Write) -> io::Result<()> {
    let probes = Arc::new(probes);
    let resolver = Arc::new(resolver);
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
                let (attempt, attempts) = probe::run(&probe.spec, probe.tries, &resolver).await;
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
        Ok(answer) => ("connected", None, Some(answer)),
        Err(failure) => (failure.outcome(), failure.detail(), None),
    };
    let client = answer.and_then(|a| a.client);
    ObjectWriter::new()
        .u64("v", SCHEMA_VERSION)
        .u64("index", index as u64)
        .opt_str("id", probe.id.as_deref())
        .str("target", &probe.target)
        .u64("port", u64::from(probe.spec.port))
        .str("protocol", probe.spec.protocol.as_str())
        .str("outcome", outcome)
        .opt_str("address", attempt.address.map(|a| a.to_string()).as_deref())
        .u64("latency_us", u64::try_from(attempt.latency.as_micros()).unwrap_or(u64::MAX))
        .u64("attempts", u64::from(attempts))
        .opt_str("answered_by", answer.and_then(|a| a.name.as_deref()))
        .opt_str("client_ip", client.map(|c| c.ip().to_string()).as_deref())
        .opt_u64("client_port", client.map(|c| u64::from(c.port())))
        .opt_str("detail", detail)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::Host;
    use crate::identity::Answer;
    use crate::probe::Failure;

    const T: Duration = Duration::from_secs(1);

    fn err(text: &str) -> String {
        parse_batch(text, T).expect_err(text)
    }

    #[test]
    fn parses_probes_with_defaults() {
        let probes = parse_batch(
            r#"[{"target":"10.0.0.1","port":80,"protocol":"tcp"},
                {"v":1,"id":"b","target":"web.ns","port":53,"protocol":"udp","timeout":"250ms","tries":3,"source_port":40000,"identify":false}]"#,
            T,
        )
        .unwrap();
        assert_eq!(probes.len(), 2);
        assert_eq!(probes[0].spec.host, Host::Ip("10.0.0.1".parse().unwrap()));
        assert_eq!((probes[0].tries, probes[0].spec.timeout, probes[0].spec.source_port), (1, T, None));
        assert!(probes[0].spec.identify);
        let b = &probes[1];
        assert_eq!(b.id.as_deref(), Some("b"));
        assert_eq!(b.spec.host, Host::Name("web.ns".into()));
        assert_eq!(b.spec.protocol, Protocol::Udp);
        assert_eq!((b.tries, b.spec.timeout, b.spec.source_port), (3, Duration::from_millis(250), Some(40000)));
        assert!(!b.spec.identify);
        assert!(parse_batch("[]", T).unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_probe_and_field() {
        let ok = r#"{"target":"10.0.0.1","port":80,"protocol":"tcp"}"#;
        let cases = [
            ("{}".to_string(), "batch must be a JSON array of probe objects, got an object"),
            ("[1,]".to_string(), "batch is not valid JSON: line 1 column 4"),
            (format!("[{ok}, 3]"), "probe 1: must be an object, got a number"),
            (format!("[{ok}, {{\"target\":\"a\",\"port\":80,\"protocol\":\"icmp\"}}]"), "probe 1: field \"protocol\": unknown protocol \"icmp\""),
            (r#"[{"target":"a","port":0,"protocol":"tcp"}]"#.into(), "probe 0: field \"port\": must be an integer 1..65535, got 0"),
            (r#"[{"target":"a","port":65536,"protocol":"tcp"}]"#.into(), "probe 0: field \"port\": must be an integer 1..65535, got 65536"),
            (r#"[{"target":"a","port":"80","protocol":"tcp"}]"#.into(), "got \"80\""),
            (r#"[{"target":"a","port":80.5,"protocol":"tcp"}]"#.into(), "got 80.5"),
            (r#"[{"target":"a","protocol":"tcp"}]"#.into(), "probe 0: missing field \"port\""),
            (r#"[{"port":1,"protocol":"tcp"}]"#.into(), "probe 0: missing field \"target\""),
            (r#"[{"target":"a","port":1}]"#.into(), "probe 0: missing field \"protocol\""),
            (r#"[{"target":"a b","port":1,"protocol":"tcp"}]"#.into(), "probe 0: field \"target\": invalid host"),
            (r#"[{"target":"a","port":1,"protocol":"tcp","prot":"x"}]"#.into(), "probe 0: unknown field \"prot\""),
            (r#"[{"target":"a","port":1,"protocol":"tcp","timeout":5}]"#.into(), "field \"timeout\": must be a duration string"),
            (r#"[{"target":"a","port":1,"protocol":"tcp","timeout":"5"}]"#.into(), "field \"timeout\": invalid duration"),
            (r#"[{"target":"a","port":1,"protocol":"tcp","tries":0}]"#.into(), "field \"tries\": must be an integer 1..100"),
            (r#"[{"target":"a","port":1,"protocol":"tcp","source_port":0}]"#.into(), "field \"source_port\""),
            (r#"[{"target":"a","port":1,"protocol":"tcp","v":2}]"#.into(), "unsupported schema version 2"),
            (r#"[{"target":"a","port":1,"protocol":"tcp","id":7}]"#.into(), "field \"id\": must be a string"),
            (r#"[{"target":"a","port":1,"protocol":"tcp","identify":"no"}]"#.into(), "field \"identify\": must be true or false"),
        ];
        for (input, expected) in cases {
            let e = err(&input);
            assert!(e.contains(expected), "{input}\n  gave: {e}\n  want: {expected}");
        }
    }

    #[test]
    fn result_lines() {
        let probe = &parse_batch(r#"[{"id":"x","target":"::1","port":80,"protocol":"tcp"}]"#, T).unwrap()[0];
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
