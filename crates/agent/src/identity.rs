//! The identity reply that `serve` sends on every connection and datagram,
//! and how a probe reads it back. Wire format (one line, UTF-8):
//!
//! `{"v":1,"name":"<agent name>","client":"<ip>:<port>"}\n`
//!
//! `client` is the source address the server saw (IPv6 as `[addr]:port`),
//! which tells a probe whether it was SNATed. A reply that is not this JSON
//! (e.g. agnhost netexec's plain hostname) is taken whole as the name.

use std::net::SocketAddr;

use netmatrix_probe::json::{self, ObjectWriter, Value};

/// Longest reply a probe reads; identity lines are far shorter.
pub const MAX_REPLY: usize = 4096;

/// What a probe learned from the server's reply.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub name: Option<String>,
    pub client: Option<SocketAddr>,
}

/// The agent's own name: `--name`, else `$POD_NAME`, else the kernel
/// hostname (read from /proc so no libc NSS call is involved).
pub fn own_name(flag: Option<String>) -> String {
    flag.or_else(|| std::env::var("POD_NAME").ok().filter(|n| !n.trim().is_empty()))
        .or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
            Some(host.trim().to_string()).filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_string())
}

pub fn line(name: &str, client: SocketAddr) -> String {
    let mut line = ObjectWriter::new().u64("v", 1).str("name", name).str("client", &client.to_string()).finish();
    line.push('\n');
    line
}

/// Reads a server reply; an empty reply carries no answer.
pub fn parse_reply(bytes: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(bytes);
    let first_line = text.lines().next().unwrap_or("").trim();
    if first_line.is_empty() {
        return Answer::default();
    }
    if let Ok(Value::Object(members)) = json::parse(first_line) {
        let field = |key: &str| {
            members.iter().find(|(k, _)| k == key).and_then(|(_, v)| match v {
                Value::String(s) => Some(s.clone()),
                _ => None,
            })
        };
        if let Some(name) = field("name") {
            let client = field("client").and_then(|c| c.parse().ok());
            return Answer { name: Some(name), client };
        }
    }
    Answer { name: Some(first_line.to_string()), client: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_line_round_trips() {
        let client: SocketAddr = "[::1]:40000".parse().unwrap();
        let line = line("pod \"a\"", client);
        assert_eq!(line, "{\"v\":1,\"name\":\"pod \\\"a\\\"\",\"client\":\"[::1]:40000\"}\n");
        assert_eq!(parse_reply(line.as_bytes()), Answer { name: Some("pod \"a\"".into()), client: Some(client) });
    }

    #[test]
    fn plain_text_and_empty_replies() {
        assert_eq!(parse_reply(b"web-0\n"), Answer { name: Some("web-0".into()), client: None });
        assert_eq!(parse_reply(b"  \n"), Answer::default());
        assert_eq!(parse_reply(b"{\"name\":\"x\",\"client\":\"junk\"}"), Answer { name: Some("x".into()), client: None });
    }

    #[test]
    fn name_prefers_flag() {
        assert_eq!(own_name(Some("flagged".into())), "flagged");
        assert!(!own_name(None).is_empty());
    }
}
