//! Batch input: the array of probe objects `netmatrix-agent probe --batch` reads.

use std::time::Duration;

use crate::json::{self, ObjectWriter, Value};
use crate::object::{Object, show};
use crate::{Protocol, Target, format_duration, parse_duration};

const FIELDS: [&str; 9] = ["v", "id", "target", "port", "protocol", "timeout", "tries", "source_port", "identify"];
/// Most attempts one probe may ask for.
pub const MAX_TRIES: u32 = 100;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeRequest {
    /// The caller's label, echoed in the result.
    pub id: Option<String>,
    pub target: Target,
    pub port: u16,
    pub protocol: Protocol,
    /// Bounds one attempt, name resolution included; `None` leaves it to
    /// the agent's `--timeout`.
    pub timeout: Option<Duration>,
    /// Attempts until one connects, 1..=`MAX_TRIES`.
    pub tries: u32,
    /// Bound (with SO_REUSEADDR) before connecting, for session-affinity tests.
    pub source_port: Option<u16>,
    /// TCP only: after the handshake, read the server's identity line. Off,
    /// the probe ends at the handshake (for targets that are not agents).
    pub identify: bool,
}

impl ProbeRequest {
    /// A probe with the schema's defaults: no id, the agent's timeout, one
    /// try, any source port, identify on.
    pub fn new(target: Target, port: u16, protocol: Protocol) -> Self {
        ProbeRequest { id: None, target, port, protocol, timeout: None, tries: 1, source_port: None, identify: true }
    }

    /// The probe as one batch object. Fields at their default are left out,
    /// so a batch says only what the caller chose. Nothing is checked here:
    /// the agent's `parse_batch` rejects values out of range.
    pub fn to_json(&self) -> String {
        let mut out = ObjectWriter::new();
        if let Some(id) = &self.id {
            out = out.str("id", id);
        }
        out = out.str("target", &self.target.to_string()).u64("port", u64::from(self.port)).str("protocol", self.protocol.as_str());
        if let Some(timeout) = self.timeout {
            out = out.str("timeout", &format_duration(timeout));
        }
        if self.tries != 1 {
            out = out.u64("tries", u64::from(self.tries));
        }
        if let Some(port) = self.source_port {
            out = out.u64("source_port", u64::from(port));
        }
        if !self.identify {
            out = out.bool("identify", false);
        }
        out.finish()
    }
}

/// A whole batch: the JSON array the agent reads.
pub fn batch_to_json(requests: &[ProbeRequest]) -> String {
    let objects: Vec<String> = requests.iter().map(ProbeRequest::to_json).collect();
    format!("[{}]", objects.join(","))
}

/// Parses and validates a whole batch; errors name the probe and field. A
/// probe without a timeout gets `default_timeout`, so every parsed request
/// says how long it may take.
pub fn parse_batch(text: &str, default_timeout: Duration) -> Result<Vec<ProbeRequest>, String> {
    let value = json::parse(text).map_err(|e| format!("batch is not valid JSON: {e}"))?;
    let Value::Array(items) = value else {
        return Err(format!("batch must be a JSON array of probe objects, got {}", value.kind()));
    };
    items.iter().enumerate().map(|(index, item)| parse_probe(item, default_timeout).map_err(|e| format!("probe {index}: {e}"))).collect()
}

fn parse_probe(item: &Value, default_timeout: Duration) -> Result<ProbeRequest, String> {
    let object = Object::new(item)?;
    if let Some(key) = object.unknown_key(&FIELDS) {
        return Err(format!("unknown field {key:?} (known: {})", FIELDS.join(", ")));
    }
    object.check_version()?;
    let id = object.opt_string("id")?.map(str::to_string);
    let target = object.parsed("target", Target::parse)?;
    let port = object.required_integer("port", 1, 65535)? as u16;
    let protocol = object.parsed("protocol", Protocol::parse)?;
    let timeout = match object.get("timeout") {
        None => default_timeout,
        Some(Value::String(t)) => parse_duration(t).map_err(|e| format!("field \"timeout\": {e}"))?,
        Some(other) => {
            return Err(format!("field \"timeout\": must be a duration string like \"500ms\", got {}", show(other)));
        }
    };
    let tries = object.integer("tries", 1, u64::from(MAX_TRIES))?.unwrap_or(1) as u32;
    let source_port = object.integer("source_port", 1, 65535)?.map(|p| p as u16);
    let identify = match object.get("identify") {
        None => true,
        Some(Value::Bool(identify)) => *identify,
        Some(other) => {
            return Err(format!("field \"identify\": must be true or false, got {}", show(other)));
        }
    };
    Ok(ProbeRequest { id, target, port, protocol, timeout: Some(timeout), tries, source_port, identify })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(probes[0].target, Target::Ip("10.0.0.1".parse().unwrap()));
        assert_eq!((probes[0].tries, probes[0].timeout, probes[0].source_port), (1, Some(T), None));
        assert!(probes[0].identify);
        let b = &probes[1];
        assert_eq!(b.id.as_deref(), Some("b"));
        assert_eq!(b.target, Target::Name("web.ns".into()));
        assert_eq!(b.protocol, Protocol::Udp);
        assert_eq!((b.tries, b.timeout, b.source_port), (3, Some(Duration::from_millis(250)), Some(40000)));
        assert!(!b.identify);
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
    fn requests_serialise_as_the_agent_reads_them() {
        let r = ProbeRequest {
            id: Some("x/a".into()),
            timeout: Some(Duration::from_secs(1)),
            ..ProbeRequest::new(Target::Ip("10.0.0.1".parse().unwrap()), 80, Protocol::Tcp)
        };
        assert_eq!(r.to_json(), r#"{"id":"x/a","target":"10.0.0.1","port":80,"protocol":"tcp","timeout":"1s"}"#);
        let full = ProbeRequest { tries: 3, source_port: Some(40000), identify: false, ..ProbeRequest::new(Target::Name("web.ns".into()), 53, Protocol::Udp) };
        let batch = batch_to_json(&[r.clone(), full.clone()]);
        assert_eq!(
            batch,
            r#"[{"id":"x/a","target":"10.0.0.1","port":80,"protocol":"tcp","timeout":"1s"},{"target":"web.ns","port":53,"protocol":"udp","tries":3,"source_port":40000,"identify":false}]"#
        );
        assert_eq!(parse_batch(&batch, T).unwrap(), [r, ProbeRequest { timeout: Some(T), ..full }]);
        assert_eq!(batch_to_json(&[]), "[]");
    }
}
