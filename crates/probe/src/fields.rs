//! The typed values inside probe objects: protocol, target host and durations.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "tcp" => Ok(Protocol::Tcp),
            "udp" => Ok(Protocol::Udp),
            "sctp" => Ok(Protocol::Sctp),
            _ => Err(format!("unknown protocol {text:?} (expected tcp, udp or sctp)")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// The wire name, as `as_str`.
impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A probe destination host: IP literals never touch DNS; names are
/// resolved by the agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    Ip(IpAddr),
    Name(String),
}

impl Target {
    /// Parses an IP literal (IPv6 with or without brackets) or a DNS name.
    pub fn parse(text: &str) -> Result<Self, String> {
        let unbracketed = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'));
        if let Some(inner) = unbracketed {
            return inner.parse::<Ipv6Addr>().map(|ip| Target::Ip(IpAddr::V6(ip))).map_err(|_| format!("invalid IPv6 address {text:?}"));
        }
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(Target::Ip(ip));
        }
        if is_dns_name(text) { Ok(Target::Name(text.to_string())) } else { Err(format!("invalid host {text:?}: not an IP address or DNS name")) }
    }
}

/// IP literals in their canonical form (IPv6 without brackets), names as
/// given: what `Target::parse` reads back to the same value.
impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Ip(ip) => ip.fmt(f),
            Target::Name(name) => f.write_str(name),
        }
    }
}

/// RFC 1123 names (underscore allowed for SRV-style labels), optional final dot.
fn is_dns_name(text: &str) -> bool {
    let name = text.strip_suffix('.').unwrap_or(text);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| !label.is_empty() && label.len() <= 63 && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
}

/// Parses `500ms`, `5s`, `2m` or `1h` (whole numbers, one unit, > 0, at most a day).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?}: expected a whole number with a unit ms, s, m or h (e.g. 500ms, 5s, 2m)");
    let digits_end = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    let n: u64 = number.parse().map_err(|_| bad())?;
    let millis = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(bad()),
    };
    match millis {
        Some(0) => Err(format!("invalid duration {text:?}: must be greater than zero")),
        Some(ms) if ms <= 86_400_000 => Ok(Duration::from_millis(ms)),
        _ => Err(format!("invalid duration {text:?}: at most 24h")),
    }
}

/// Writes a duration as `parse_duration` reads it, in the largest unit that
/// keeps it exact (`1h`, `2m`, `90s`, `1500ms`). The unit is milliseconds,
/// so a fraction of one rounds up: a timeout is never shortened.
pub fn format_duration(duration: Duration) -> String {
    let ms = duration.as_nanos().div_ceil(1_000_000);
    for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
        if ms >= size && ms.is_multiple_of(size) {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "5", "s", "1.5s", "-1s", "5 s", "5sec", "1m30s", "0s", "25h", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn formatted_durations_use_the_largest_exact_unit() {
        let ms = Duration::from_millis;
        assert_eq!(format_duration(ms(500)), "500ms");
        assert_eq!(format_duration(ms(1_000)), "1s");
        assert_eq!(format_duration(ms(1_500)), "1500ms");
        assert_eq!(format_duration(ms(90_000)), "90s");
        assert_eq!(format_duration(ms(120_000)), "2m");
        assert_eq!(format_duration(ms(86_400_000)), "24h");
        assert_eq!(format_duration(Duration::from_micros(1)), "1ms");
        assert_eq!(format_duration(Duration::from_micros(2_001)), "3ms");
    }

    #[test]
    fn hosts() {
        assert_eq!(Target::parse("::1"), Ok(Target::Ip("::1".parse().unwrap())));
        assert_eq!(Target::parse("[::1]"), Ok(Target::Ip("::1".parse().unwrap())));
        assert_eq!(Target::parse("svc.ns.svc.cluster.local."), Ok(Target::Name("svc.ns.svc.cluster.local.".into())));
        for bad in ["", "a..b", "a b", "[1.2.3.4]", &"x".repeat(64), "ex!ample"] {
            assert!(Target::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(Target::parse("[FD00:0::12]").unwrap().to_string(), "fd00::12");
    }

    #[test]
    fn protocols() {
        for p in [Protocol::Tcp, Protocol::Udp, Protocol::Sctp] {
            assert_eq!(Protocol::parse(p.as_str()), Ok(p));
            assert_eq!(p.to_string(), p.as_str());
        }
        assert!(Protocol::parse("TCP").unwrap_err().contains("unknown protocol \"TCP\""));
    }
}
