//! Batch output: one JSON result line per probe, in input order.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::json::{self, ObjectWriter};
use crate::object::Object;
use crate::{Protocol, SCHEMA_VERSION};

/// What a probe found. Every outcome but `Error` is a verdict about the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Connected,
    Refused,
    Timeout,
    Dns,
    Unreachable,
    Other,
    /// The agent could not probe: no verdict about the network.
    Error,
}

const OUTCOMES: [Outcome; 7] = [Outcome::Connected, Outcome::Refused, Outcome::Timeout, Outcome::Dns, Outcome::Unreachable, Outcome::Other, Outcome::Error];

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Connected => "connected",
            Outcome::Refused => "refused",
            Outcome::Timeout => "timeout",
            Outcome::Dns => "dns",
            Outcome::Unreachable => "unreachable",
            Outcome::Other => "other",
            Outcome::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        OUTCOMES
            .into_iter()
            .find(|o| o.as_str() == text)
            .ok_or_else(|| format!("unknown outcome {text:?} (expected connected, refused, timeout, dns, unreachable, other or error)"))
    }
}

/// The wire name, as `as_str`.
impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeResult {
    /// Position of the probe in the batch.
    pub index: usize,
    pub id: Option<String>,
    /// The probe's target, echoed as `Target` displays it.
    pub target: String,
    pub port: u16,
    pub protocol: Protocol,
    pub outcome: Outcome,
    /// The address probed; `None` when the name did not resolve.
    pub address: Option<SocketAddr>,
    /// Of the reported attempt, from the start of the connect to the
    /// verdict; for `dns`, the time spent resolving. Whole microseconds on
    /// the wire.
    pub latency: Duration,
    pub attempts: u32,
    /// The server's name from its reply (`connected` only).
    pub answered_by: Option<String>,
    /// The source address the server saw; differs from the agent's own when SNATed.
    pub client_ip: Option<IpAddr>,
    pub client_port: Option<u16>,
    /// Error text for `dns`, `unreachable`, `other` and `error`.
    pub detail: Option<String>,
}

impl ProbeResult {
    /// The result line as the agent prints it: every field, `null` when unknown.
    pub fn to_line(&self) -> String {
        ObjectWriter::new()
            .u64("v", SCHEMA_VERSION)
            .u64("index", self.index as u64)
            .opt_str("id", self.id.as_deref())
            .str("target", &self.target)
            .u64("port", u64::from(self.port))
            .str("protocol", self.protocol.as_str())
            .str("outcome", self.outcome.as_str())
            .opt_str("address", self.address.map(|a| a.to_string()).as_deref())
            .u64("latency_us", u64::try_from(self.latency.as_micros()).unwrap_or(u64::MAX))
            .u64("attempts", u64::from(self.attempts))
            .opt_str("answered_by", self.answered_by.as_deref())
            .opt_str("client_ip", self.client_ip.map(|ip| ip.to_string()).as_deref())
            .opt_u64("client_port", self.client_port.map(u64::from))
            .opt_str("detail", self.detail.as_deref())
            .finish()
    }

    /// Reads one result line. Unknown fields are ignored: a newer agent may
    /// add output fields within the same schema version.
    pub fn parse_line(line: &str) -> Result<ProbeResult, String> {
        let value = json::parse(line).map_err(|e| format!("not valid JSON: {e}"))?;
        let object = Object::new(&value)?;
        object.check_version()?;
        Ok(ProbeResult {
            index: object.required_integer("index", 0, usize::MAX as u64)? as usize,
            id: object.opt_string("id")?.map(str::to_string),
            target: object.string("target")?.to_string(),
            port: object.required_integer("port", 1, 65535)? as u16,
            protocol: object.parsed("protocol", Protocol::parse)?,
            outcome: object.parsed("outcome", Outcome::parse)?,
            address: object.opt_parsed("address", |a| a.parse().map_err(|_| format!("invalid socket address {a:?}")))?,
            latency: Duration::from_micros(object.required_integer("latency_us", 0, u64::MAX)?),
            attempts: object.required_integer("attempts", 1, u64::from(u32::MAX))? as u32,
            answered_by: object.opt_string("answered_by")?.map(str::to_string),
            client_ip: object.opt_parsed("client_ip", |ip| ip.parse().map_err(|_| format!("invalid IP address {ip:?}")))?,
            client_port: object.nullable_integer("client_port", 1, 65535)?.map(|p| p as u16),
            detail: object.opt_string("detail")?.map(str::to_string),
        })
    }
}

/// Reads the agent's output, one result per non-empty line, checking that
/// it answers all `count` probes in order.
pub fn parse_results(text: &str, count: usize) -> Result<Vec<ProbeResult>, String> {
    let results: Vec<ProbeResult> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| ProbeResult::parse_line(line).map_err(|e| format!("result line {}: {e}: {line}", i + 1)))
        .collect::<Result<_, _>>()?;
    if results.len() != count || results.iter().enumerate().any(|(i, r)| r.index != i) {
        return Err(format!("the agent answered {} of {count} probes", results.len()));
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONNECTED: &str = r#"{"v":1,"index":0,"id":"web","target":"10.96.0.15","port":80,"protocol":"tcp","outcome":"connected","address":"10.96.0.15:80","latency_us":412,"attempts":1,"answered_by":"x/a","client_ip":"10.244.1.7","client_port":41230,"detail":null}"#;

    #[test]
    fn results_parse_and_must_answer_every_probe() {
        let parsed = parse_results(CONNECTED, 1).unwrap();
        assert_eq!((parsed[0].outcome, parsed[0].answered_by.as_deref()), (Outcome::Connected, Some("x/a")));
        assert!(parse_results(CONNECTED, 2).unwrap_err().contains("1 of 2"));
        assert!(parse_results("{", 1).is_err());
    }

    #[test]
    fn lines_read_back_as_written() {
        let result = ProbeResult::parse_line(CONNECTED).unwrap();
        assert_eq!(
            result,
            ProbeResult {
                index: 0,
                id: Some("web".into()),
                target: "10.96.0.15".into(),
                port: 80,
                protocol: Protocol::Tcp,
                outcome: Outcome::Connected,
                address: Some("10.96.0.15:80".parse().unwrap()),
                latency: Duration::from_micros(412),
                attempts: 1,
                answered_by: Some("x/a".into()),
                client_ip: Some("10.244.1.7".parse().unwrap()),
                client_port: Some(41230),
                detail: None,
            }
        );
        assert_eq!(result.to_line(), CONNECTED);
    }

    #[test]
    fn unknown_fields_are_ignored_and_nullable_ones_may_be_missing() {
        let line = r#"{"index":0,"target":"web","port":80,"protocol":"udp","outcome":"dns","latency_us":7,"attempts":2,"detail":"no such host","new":[1]}"#;
        let result = ProbeResult::parse_line(line).unwrap();
        assert_eq!((result.outcome, result.address, result.client_port, result.detail.as_deref()), (Outcome::Dns, None, None, Some("no such host")));
    }

    #[test]
    fn bad_lines_name_the_line_and_field() {
        let line = |from: &str, to: &str| CONNECTED.replace(from, to);
        let cases = [
            (line(r#""outcome":"connected""#, r#""outcome":"up""#), "result line 1: field \"outcome\": unknown outcome \"up\""),
            (line(r#""v":1"#, r#""v":2"#), "field \"v\": unsupported schema version 2"),
            (line(r#""latency_us":412"#, r#""latency_us":-1"#), "field \"latency_us\": must be an integer"),
            (line(r#""latency_us":412,"#, ""), "missing field \"latency_us\""),
            (line(r#""address":"10.96.0.15:80""#, r#""address":"10.96.0.15""#), "field \"address\": invalid socket address"),
            (line(r#""client_ip":"10.244.1.7""#, r#""client_ip":7"#), "field \"client_ip\": must be a string, got 7"),
            (line(r#""index":0"#, r#""index":null"#), "field \"index\": must be an integer"),
            ("[]".to_string(), "result line 1: must be an object, got an array: []"),
        ];
        for (text, expected) in cases {
            let e = parse_results(&text, 1).expect_err(&text);
            assert!(e.contains(expected), "{text}\n  gave: {e}\n  want: {expected}");
        }
        let second = line(r#""index":0"#, r#""index":1"#);
        assert!(parse_results(&format!("{second}\n{CONNECTED}\n"), 2).is_err(), "results out of order");
    }

    #[test]
    fn outcomes_round_trip() {
        for outcome in OUTCOMES {
            assert_eq!(Outcome::parse(outcome.as_str()), Ok(outcome));
            assert_eq!(outcome.to_string(), outcome.as_str());
        }
        assert!(Outcome::parse("Connected").is_err());
    }
}
