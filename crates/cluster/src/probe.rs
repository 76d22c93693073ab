//! The agent's batch schema `netmatrix.probe/v1` (crates/agent/README.md), as serde types.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeRequest {
    pub id: String,
    pub target: String,
    pub port: u16,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: &'static str,
    /// A duration such as `1s`.
    pub timeout: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
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

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProbeResult {
    pub index: usize,
    pub id: Option<String>,
    pub outcome: Outcome,
    pub latency_us: u64,
    pub answered_by: Option<String>,
    pub client_ip: Option<String>,
    pub detail: Option<String>,
}

impl ProbeResult {
    /// Parses the agent's output, one JSON object per line, checking it answers `count` probes.
    pub fn parse_lines(text: &str, count: usize) -> Result<Vec<ProbeResult>, String> {
        let results: Vec<ProbeResult> = text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .enumerate()
            .map(|(i, line)| serde_json::from_str(line).map_err(|e| format!("result line {}: {e}: {line}", i + 1)))
            .collect::<Result<_, _>>()?;
        if results.len() != count || results.iter().enumerate().any(|(i, r)| r.index != i) {
            return Err(format!("the agent answered {} of {count} probes", results.len()));
        }
        Ok(results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_serialise_as_the_agent_reads_them() {
        let r = ProbeRequest { id: "x/a".into(), target: "10.0.0.1".into(), port: 80, protocol: "tcp", timeout: "1s".into(), source_port: None };
        assert_eq!(serde_json::to_string(&r).unwrap(), r#"{"id":"x/a","target":"10.0.0.1","port":80,"protocol":"tcp","timeout":"1s"}"#);
    }

    #[test]
    fn results_parse_and_must_answer_every_probe() {
        let line = r#"{"v":1,"index":0,"id":"web","target":"10.96.0.15","port":80,"protocol":"tcp","outcome":"connected","address":"10.96.0.15:80","latency_us":412,"attempts":1,"answered_by":"x/a","client_ip":"10.244.1.7","client_port":41230,"detail":null}"#;
        let parsed = ProbeResult::parse_lines(line, 1).unwrap();
        assert_eq!((parsed[0].outcome, parsed[0].answered_by.as_deref()), (Outcome::Connected, Some("x/a")));
        assert!(ProbeResult::parse_lines(line, 2).unwrap_err().contains("1 of 2"));
        assert!(ProbeResult::parse_lines("{", 1).is_err());
    }
}
