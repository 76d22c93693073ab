//! A minimal stub resolver (A, then AAAA) reading resolv.conf, so the static
//! binary never goes through libc NSS. Supports `nameserver`, `search`,
//! `domain` and `options ndots/timeout/attempts`, UDP with TCP fallback on
//! truncation. /etc/hosts is not read: Kubernetes names come from DNS.
//!
//! Extension for tests and labs: `nameserver ADDR:PORT` (IPv6 as
//! `[ADDR]:PORT`) picks a port other than 53.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::timeout;

const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;
const RCODE_NXDOMAIN: u8 = 3;
/// glibc's limit: later nameserver lines are ignored.
const MAX_NAMESERVERS: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    pub nameservers: Vec<SocketAddr>,
    pub search: Vec<String>,
    pub ndots: usize,
    pub timeout: Duration,
    pub attempts: u32,
}

/// Reads resolv.conf the way glibc does, leniently: unknown lines are skipped.
pub fn parse_resolv_conf(text: &str) -> ResolvConf {
    let mut conf = ResolvConf { nameservers: Vec::new(), search: Vec::new(), ndots: 1, timeout: Duration::from_secs(5), attempts: 2 };
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("nameserver") => {
                if let Some(addr) = words.next().and_then(parse_nameserver)
                    && conf.nameservers.len() < MAX_NAMESERVERS
                {
                    conf.nameservers.push(addr);
                }
            }
            // The last search/domain line wins, as in glibc.
            Some("search") => conf.search = words.map(|d| d.trim_end_matches('.').to_string()).collect(),
            Some("domain") => conf.search = words.next().map(|d| d.trim_end_matches('.').to_string()).into_iter().collect(),
            Some("options") => {
                for option in words {
                    let (key, value) = option.split_once(':').unwrap_or((option, ""));
                    let Ok(n) = value.parse::<u32>() else {
                        continue;
                    };
                    match key {
                        "ndots" => conf.ndots = n.min(15) as usize,
                        "timeout" => conf.timeout = Duration::from_secs(u64::from(n.clamp(1, 30))),
                        "attempts" => conf.attempts = n.clamp(1, 5),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    conf
}

fn parse_nameserver(text: &str) -> Option<SocketAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    text.parse::<SocketAddr>().ok()
}

/// The names to try for `name`, in order (resolv.conf(5) search rules).
pub fn candidates(name: &str, conf: &ResolvConf) -> Vec<String> {
    if let Some(absolute) = name.strip_suffix('.') {
        return vec![absolute.to_string()];
    }
    let dots = name.matches('.').count();
    let searched = conf.search.iter().map(|domain| format!("{name}.{domain}"));
    if dots >= conf.ndots { std::iter::once(name.to_string()).chain(searched).collect() } else { searched.chain(std::iter::once(name.to_string())).collect() }
}

/// Builds a recursive query for one name and type.
pub fn encode_query(id: u16, name: &str, qtype: u16) -> Result<Vec<u8>, String> {
    let mut msg = Vec::with_capacity(18 + name.len());
    msg.extend_from_slice(&id.to_be_bytes());
    msg.extend_from_slice(&0x0100u16.to_be_bytes()); // standard query, recursion desired
    msg.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]); // one question
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err(format!("{name:?} is not a valid DNS name"));
        }
        msg.push(label.len() as u8);
        msg.extend_from_slice(label.as_bytes());
    }
    msg.push(0);
    if msg.len() - 12 > 255 {
        return Err(format!("{name:?} is longer than 255 bytes"));
    }
    msg.extend_from_slice(&qtype.to_be_bytes());
    msg.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(msg)
}

#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub rcode: u8,
    pub truncated: bool,
    /// Records of the asked type from the answer section (CNAMEs are
    /// followed by the server, so their targets' records are here too).
    pub addresses: Vec<IpAddr>,
}

/// Decodes the reply to query `id` for `qtype`; malformed input is an error.
pub fn decode_response(msg: &[u8], id: u16, qtype: u16) -> Result<Response, String> {
    let mut r = Reader { msg, pos: 0 };
    if r.u16()? != id {
        return Err("reply id does not match the query".into());
    }
    let flags = r.u16()?;
    if flags & 0x8000 == 0 {
        return Err("message is not a reply".into());
    }
    let (questions, answers) = (r.u16()?, r.u16()?);
    r.skip(4)?; // authority and additional counts: not needed
    for _ in 0..questions {
        r.skip_name()?;
        r.skip(4)?;
    }
    let mut addresses = Vec::new();
    for _ in 0..answers {
        r.skip_name()?;
        let (rtype, class) = (r.u16()?, r.u16()?);
        r.skip(4)?; // TTL
        let len = usize::from(r.u16()?);
        let data = r.take(len)?;
        if class != CLASS_IN || rtype != qtype {
            continue;
        }
        match (rtype, data.len()) {
            (TYPE_A, 4) => addresses.push(IpAddr::V4(Ipv4Addr::new(data[0], data[1], data[2], data[3]))),
            (TYPE_AAAA, 16) => {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(data);
                addresses.push(IpAddr::V6(Ipv6Addr::from(octets)));
            }
            _ => return Err(format!("record of type {rtype} has a bad length {len}")),
        }
    }
    Ok(Response { rcode: (flags & 0x000f) as u8, truncated: flags & 0x0200 != 0, addresses })
}

struct Reader<'a> {
    msg: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.msg.len()).ok_or("reply is truncated")?;
        let bytes = &self.msg[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn skip(&mut self, n: usize) -> Result<(), String> {
        self.take(n).map(|_| ())
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Skips a name in place; a compression pointer ends it, so pointer
    /// loops cannot make this spin.
    fn skip_name(&mut self) -> Result<(), String> {
        loop {
            let len = self.take(1)?[0];
            match len {
                0 => return Ok(()),
                1..=63 => self.skip(usize::from(len))?,
                0xc0..=0xff => return self.skip(1),
                _ => return Err(format!("bad label byte {len:#04x} in reply")),
            }
        }
    }
}

/// Resolves names for probes. resolv.conf is read on first use, so probes
/// of IP literals never touch it, and a missing file fails only the probes
/// that need DNS.
pub struct Resolver {
    path: PathBuf,
    conf: OnceLock<Result<ResolvConf, String>>,
}

impl Resolver {
    pub fn new(path: &Path) -> Resolver {
        Resolver { path: path.to_path_buf(), conf: OnceLock::new() }
    }

    fn conf(&self) -> &Result<ResolvConf, String> {
        self.conf.get_or_init(|| {
            let text = std::fs::read_to_string(&self.path).map_err(|e| format!("cannot read {}: {e}", self.path.display()))?;
            let conf = parse_resolv_conf(&text);
            if conf.nameservers.is_empty() {
                return Err(format!("no nameserver in {}", self.path.display()));
            }
            Ok(conf)
        })
    }

    /// The first address of `name` (A records before AAAA). Callers bound
    /// the total time; each query is bounded by resolv.conf's timeout.
    pub async fn resolve(&self, name: &str) -> Result<IpAddr, String> {
        let conf = self.conf().as_ref().map_err(Clone::clone)?;
        for candidate in candidates(name, conf) {
            for qtype in [TYPE_A, TYPE_AAAA] {
                // A server failure ends the lookup: the other candidates
                // would go to the same failing servers.
                let response = query(conf, &candidate, qtype).await?;
                if response.rcode == RCODE_NXDOMAIN {
                    break;
                }
                if let Some(ip) = response.addresses.first() {
                    return Ok(*ip);
                }
            }
        }
        Err(format!("lookup {name}: no such host"))
    }
}

/// Asks each nameserver in turn, `attempts` rounds, until one gives a
/// definite answer (NOERROR or NXDOMAIN).
async fn query(conf: &ResolvConf, name: &str, qtype: u16) -> Result<Response, String> {
    let mut last_error = String::from("no nameserver answered");
    for _ in 0..conf.attempts {
        for server in &conf.nameservers {
            let id = next_id();
            let msg = encode_query(id, name, qtype)?;
            let reply = match timeout(conf.timeout, exchange(*server, &msg, id, qtype)).await {
                Ok(Ok(reply)) => reply,
                Ok(Err(e)) => {
                    last_error = format!("lookup {name} on {server}: {e}");
                    continue;
                }
                Err(_) => {
                    last_error = format!("lookup {name} on {server}: timed out");
                    continue;
                }
            };
            if reply.rcode == 0 || reply.rcode == RCODE_NXDOMAIN {
                return Ok(reply);
            }
            last_error = format!("lookup {name} on {server}: server answered rcode {}", reply.rcode);
        }
    }
    Err(last_error)
}

async fn exchange(server: SocketAddr, msg: &[u8], id: u16, qtype: u16) -> Result<Response, String> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.map_err(|e| e.to_string())?;
    // A connected socket only accepts replies from the server itself.
    socket.connect(server).await.map_err(|e| e.to_string())?;
    socket.send(msg).await.map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1232];
    loop {
        let n = socket.recv(&mut buf).await.map_err(|e| e.to_string())?;
        // Stray or forged replies are ignored; the caller's timeout ends the wait.
        let Ok(response) = decode_response(&buf[..n], id, qtype) else {
            continue;
        };
        if response.truncated {
            return exchange_tcp(server, msg, id, qtype).await;
        }
        return Ok(response);
    }
}

/// RFC 1035 4.2.2: the same query over TCP, length-prefixed.
async fn exchange_tcp(server: SocketAddr, msg: &[u8], id: u16, qtype: u16) -> Result<Response, String> {
    let mut stream = TcpStream::connect(server).await.map_err(|e| format!("tcp: {e}"))?;
    let len = u16::try_from(msg.len()).map_err(|_| "query too long".to_string())?;
    let mut framed = len.to_be_bytes().to_vec();
    framed.extend_from_slice(msg);
    stream.write_all(&framed).await.map_err(|e| format!("tcp: {e}"))?;
    let reply_len = stream.read_u16().await.map_err(|e| format!("tcp: {e}"))?;
    let mut reply = vec![0u8; usize::from(reply_len)];
    stream.read_exact(&mut reply).await.map_err(|e| format!("tcp: {e}"))?;
    decode_response(&reply, id, qtype)
}

/// Query ids need only be unpredictable enough not to collide; seeded from
/// the clock and pid, stepped by an odd constant.
fn next_id() -> u16 {
    static STATE: AtomicU32 = AtomicU32::new(0);
    let seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos()) ^ std::process::id();
    let _ = STATE.compare_exchange(0, seed | 1, Ordering::Relaxed, Ordering::Relaxed);
    let value = STATE.fetch_add(0x9E37_79B9, Ordering::Relaxed);
    (value >> 16) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_query() {
        let msg = encode_query(0xabcd, "web.ns", TYPE_AAAA).unwrap();
        assert_eq!(
            msg,
            [
                0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, //
                3, b'w', b'e', b'b', 2, b'n', b's', 0, //
                0, 28, 0, 1,
            ]
        );
        assert!(encode_query(1, "a..b", TYPE_A).is_err());
        assert!(encode_query(1, &"x".repeat(64), TYPE_A).is_err());
        let long = vec!["x".repeat(63); 5].join(".");
        assert!(encode_query(1, &long, TYPE_A).unwrap_err().contains("255"));
    }

    /// A reply to "web.ns A" with a CNAME to "pod.ns" (name compression)
    /// and an A record for it.
    fn reply(id: u16, flags: u16) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&id.to_be_bytes());
        m.extend_from_slice(&flags.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 2, 0, 0, 0, 0]);
        m.extend_from_slice(&[3, b'w', b'e', b'b', 2, b'n', b's', 0, 0, 1, 0, 1]); // question at offset 12
        m.extend_from_slice(&[0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 30, 0, 6, 3, b'p', b'o', b'd', 0xc0, 16]); // CNAME
        m.extend_from_slice(&[3, b'p', b'o', b'd', 0xc0, 16, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 1, 2, 3]); // A
        m
    }

    #[test]
    fn decodes_answers_through_compression_and_cnames() {
        let r = decode_response(&reply(7, 0x8180), 7, TYPE_A).unwrap();
        assert_eq!(r, Response { rcode: 0, truncated: false, addresses: vec!["10.1.2.3".parse().unwrap()] });
        // The same records asked as AAAA: nothing of that type.
        assert!(decode_response(&reply(7, 0x8180), 7, TYPE_AAAA).unwrap().addresses.is_empty());
        let nx = decode_response(&reply(7, 0x8383), 7, TYPE_A).unwrap();
        assert_eq!((nx.rcode, nx.truncated), (RCODE_NXDOMAIN, true));
    }

    #[test]
    fn rejects_malformed_replies() {
        let good = reply(7, 0x8180);
        assert!(decode_response(&good, 8, TYPE_A).unwrap_err().contains("id"));
        assert!(decode_response(&reply(7, 0x0100), 7, TYPE_A).unwrap_err().contains("not a reply"));
        for cut in [0, 5, 13, good.len() - 1] {
            assert!(decode_response(&good[..cut], 7, TYPE_A).is_err(), "cut at {cut}");
        }
        let mut bad_label = good.clone();
        bad_label[12] = 0x45;
        assert!(decode_response(&bad_label, 7, TYPE_A).unwrap_err().contains("label"));
        let mut bad_len = good;
        let last = bad_len.len() - 5; // rdlength low byte of the A record
        bad_len[last] = 3;
        bad_len.pop();
        assert!(decode_response(&bad_len, 7, TYPE_A).unwrap_err().contains("bad length"));
    }

    #[test]
    fn reads_resolv_conf() {
        let conf = parse_resolv_conf(
            "# comment\nnameserver 10.96.0.10\nnameserver [::1]:5353\nnameserver 127.0.0.1:53\n\
             nameserver 10.0.0.4\nnameserver bogus\nsearch ns.svc.cluster.local svc.cluster.local.\n\
             options ndots:5 timeout:2 attempts:9 rotate\n",
        );
        assert_eq!(conf.nameservers, vec!["10.96.0.10:53".parse::<SocketAddr>().unwrap(), "[::1]:5353".parse().unwrap(), "127.0.0.1:53".parse().unwrap()]);
        assert_eq!(conf.search, ["ns.svc.cluster.local", "svc.cluster.local"]);
        assert_eq!((conf.ndots, conf.timeout, conf.attempts), (5, Duration::from_secs(2), 5));
        assert_eq!(parse_resolv_conf("domain example.org\n").search, ["example.org"]);
    }

    #[test]
    fn search_order_follows_ndots() {
        let mut conf = parse_resolv_conf("search a.local b.local\noptions ndots:2\n");
        assert_eq!(candidates("web", &conf), ["web.a.local", "web.b.local", "web"]);
        assert_eq!(candidates("web.ns.svc", &conf), ["web.ns.svc", "web.ns.svc.a.local", "web.ns.svc.b.local"]);
        assert_eq!(candidates("web.", &conf), ["web"]);
        conf.search.clear();
        assert_eq!(candidates("web", &conf), ["web"]);
    }

    #[test]
    fn ids_vary() {
        let ids: std::collections::HashSet<u16> = (0..100).map(|_| next_id()).collect();
        assert!(ids.len() > 90);
    }
}
