//! Services for one node, as chains of the lab's `inet` table, in the manner of kube-proxy's
//! nftables mode: virtual addresses are DNATed to an endpoint when a connection starts, and
//! conntrack carries the rest of the connection (replies are un-DNATed by conntrack, also for
//! bridged same-node traffic, thanks to `bridge-nf-call-iptables`).
//!
//! Layout (`N` numbers the rendered Service ports in (namespace, name, port, protocol) order,
//! `M` an endpoint of port `N` in (pod namespace, name) order):
//!
//! - `service-prerouting` (nat, prerouting, dstnat: traffic from pods and from outside) and
//!   `service-output` (nat, output: the node itself and hostNetwork pods) jump to `services`,
//!   which dispatches on `ip daddr . meta l4proto . th dport` (cluster IPs, load-balancer IPs)
//!   and on `meta l4proto . th dport` for packets to the node's addresses (node ports).
//! - `svc-N`: picks one of all endpoints (`numgen random`), after the client's affinity if
//!   any; `svc-N-local`: the same among this node's endpoints (traffic policy `Local`).
//! - `ext-N`: node ports and load-balancer IPs. `externalTrafficPolicy: Cluster` masquerades
//!   and goes to `svc-N`; `Local` keeps the client address and goes to `svc-N-local`, except
//!   that traffic from this node's pods or from the node itself is not external and goes to
//!   `svc-N` (kube-proxy's "short-circuit"; from the node it is masqueraded).
//! - `ep-N-M`: marks hairpin traffic (a pod reaching itself) for masquerade, records the
//!   client in the endpoint's affinity set `affinity-<h>`, and DNATs. `h` hashes the Service
//!   port and the endpoint's address and port, not N and M: the set's clients stay with their
//!   endpoint through table updates that renumber, and leave with it.
//! - `service-postrouting` (nat, postrouting, srcnat) masquerades marked connections.
//! - `service-filter-{forward,input,output}` (filter - 10, before the NetworkPolicy chains)
//!   jump to `service-no-endpoints` for new connections, which rejects those to a Service port
//!   without endpoints (TCP reset, else ICMP port unreachable) and drops those to a port whose
//!   traffic policy is `Local` and that has no endpoint on this node. Packets that were DNATed
//!   no longer carry the virtual address there, so only unserved ones match.
//!
//! Each family a node's proxy serves gets its own rules, as kube-proxy runs a proxier per
//! family: a Service's frontends of a family (its cluster IP, node ports on the node's
//! addresses, load-balancer and external IPs of that family) lead to its endpoints' addresses of
//! that family. IPv4's chains are named as above, IPv6's `svc6-N`, `ext6-N`, `ep6-N-M`, and its
//! maps match `ip6 daddr`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use netmatrix_model::{Cluster, IpFamily, Pod, Protocol, Service, ServicePort, ServiceType, SessionAffinity, TrafficPolicy};

/// Marks a packet for `service-postrouting` to masquerade (kube-proxy's mark bit).
const MASQUERADE: &str = "meta mark set mark or 0x4000";
const REJECT: &str = "goto service-reject";

fn l4(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Sctp => "sctp",
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
    }
}

/// How one family's rules are spelled.
#[derive(Clone, Copy)]
struct Family {
    family: IpFamily,
    /// The nft address expression: `ip` or `ip6`.
    ip: &'static str,
    set_type: &'static str,
    /// Added to chain names (`svc6-N`).
    tag: &'static str,
    /// Before `clusterIP` in notes (`no IPv6 clusterIP`).
    word: &'static str,
    loopback: &'static str,
}

const FAMILIES: [Family; 2] = [
    Family { family: IpFamily::IPv4, ip: "ip", set_type: "ipv4_addr", tag: "", word: "", loopback: "127.0.0.0/8" },
    Family { family: IpFamily::IPv6, ip: "ip6", set_type: "ipv6_addr", tag: "6", word: "IPv6 ", loopback: "::1" },
];

impl Family {
    fn of(self, ip: &IpAddr) -> bool {
        IpFamily::of(ip) == self.family
    }

    /// `ADDRESS:PORT` as `dnat` takes it.
    fn socket(self, ip: IpAddr, port: u16) -> String {
        if ip.is_ipv6() { format!("[{ip}]:{port}") } else { format!("{ip}:{port}") }
    }

    /// A match on `field` (`saddr`, `daddr`) being one of `ips`; `None` for none.
    fn any_of(self, field: &str, ips: &[IpAddr]) -> Option<String> {
        match ips {
            [] => None,
            [one] => Some(format!("{} {field} {one}", self.ip)),
            many => Some(format!("{} {field} {{ {} }}", self.ip, join(many.iter().map(ToString::to_string)))),
        }
    }
}

/// One element of a verdict map, with the comment that says whose it is.
struct Element {
    comment: String,
    key: String,
    verdict: String,
}

struct Endpoint<'c> {
    pod: &'c Pod,
    ip: IpAddr,
    port: u16,
    local: bool,
}

/// The four verdict maps: `services` (DNAT) and `service-no-endpoints` (reject or drop), each
/// keyed by virtual address, protocol and port, or by protocol and node port.
#[derive(Clone, Copy)]
enum Map {
    Served,
    ServedNodePorts,
    Unserved,
    UnservedNodePorts,
}

impl Map {
    fn node_ports(self) -> bool {
        matches!(self, Map::ServedNodePorts | Map::UnservedNodePorts)
    }
}

/// What one node's Services render to, gathered before writing so that base chains and maps
/// appear only when something uses them.
#[derive(Default)]
struct Rendering {
    /// Table-level comments: what is not rendered, and why.
    notes: String,
    sets: String,
    chains: String,
    /// The family being rendered (index into [`FAMILIES`]).
    family: usize,
    /// Per family: elements of each [`Map`], in its declaration order.
    maps: [[Vec<Element>; 4]; 2],
    /// Per family: owner (Service port) of each key, by address or by node port: a later
    /// Service reusing one (invalid input) is left out, since a duplicate element would make
    /// nft refuse the node's whole ruleset.
    owners: [[BTreeMap<String, String>; 2]; 2],
    /// Per family: what matches the node's addresses for node ports; `None`: the node has none.
    node_addresses: [Option<String>; 2],
}

impl Rendering {
    fn note(&mut self, text: &str) {
        let _ = writeln!(self.notes, "\t# {text}");
    }

    fn add(&mut self, map: Map, element: Element) {
        let owners = &mut self.owners[self.family][usize::from(map.node_ports())];
        if owners.entry(element.key.clone()).or_insert_with(|| element.comment.clone()) != &element.comment {
            let text = format!("{}: {} is taken by an earlier Service, not rendered", element.comment, element.key);
            self.note(&text);
            return;
        }
        self.maps[self.family][map as usize].push(element);
    }

    fn map(&self, family: usize, map: Map) -> &[Element] {
        &self.maps[family][map as usize]
    }

    fn any(&self, maps: [Map; 2]) -> bool {
        (0..2).any(|f| maps.iter().any(|&m| !self.map(f, m).is_empty()))
    }
}

/// Appends the Service chains of `node` to an open `table inet ... {` block, for the families
/// of `proxied` (the node's proxy serves those). `node_ips` are the addresses node ports answer
/// on (kube-proxy nftables' default, the node's primary IPs of each family); empty: every local
/// address except loopback. Service IPs must be allocated beforehand: a Service without a
/// cluster IP of a family gets no cluster-IP rules in it.
pub fn render(out: &mut String, cluster: &Cluster, node: &str, node_ips: &[IpAddr], proxied: &[IpFamily]) {
    let mut pods: Vec<&Pod> = cluster.pods.iter().collect();
    pods.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let mut services: Vec<&Service> = cluster.services.iter().collect();
    services.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    let cluster_families = cluster.families_primary_first();
    let mut r = Rendering::default();
    for (f, fam) in FAMILIES.iter().enumerate().filter(|(_, fam)| proxied.contains(&fam.family)) {
        r.family = f;
        // Addresses of this node's pods: their traffic to node ports and load-balancer IPs is
        // not external (kube-proxy's local-traffic detection, by node).
        let mut local_pods: Vec<IpAddr> =
            pods.iter().filter(|p| p.node.as_deref() == Some(node) && !p.host_network).flat_map(|p| p.ips.iter().copied().filter(|ip| fam.of(ip))).collect();
        local_pods.sort_unstable();
        local_pods.dedup();
        let local_pods = fam.any_of("saddr", &local_pods);
        let own: Vec<IpAddr> = node_ips.iter().copied().filter(|ip| fam.of(ip)).collect();
        r.node_addresses[f] = match (node_ips, fam.any_of("daddr", &own)) {
            ([], _) => Some(format!("fib daddr type local {} daddr != {}", fam.ip, fam.loopback)),
            (_, some) => some,
        };
        let mut n = 0;
        for &service in &services {
            // Headless and ExternalName Services have no virtual address: DNS does their work.
            if service.headless || service.service_type == ServiceType::ExternalName {
                continue;
            }
            let label = format!("{}/{}", service.namespace, service.name);
            let families = service.families(&cluster_families).unwrap_or_else(|_| service.ip_families.clone());
            let served = families.contains(&fam.family);
            let cluster_ip = service.cluster_ips.iter().copied().find(|ip| fam.of(ip));
            if served && cluster_ip.is_none() {
                r.note(&format!("{label}: no {}clusterIP (the lab allocates one before rendering), no cluster-IP rules", fam.word));
            }
            // Load-balancer and external IPs alike: kube-proxy treats both as externally-facing
            // addresses, translated where the packet enters (externalTrafficPolicy applies).
            let mut lb_ips = Vec::new();
            let balancer_ips = if service.service_type == ServiceType::LoadBalancer { service.load_balancer_ips.as_slice() } else { &[] };
            let external_ips = service.external_ips.iter().map(|ip| ("external IP", ip));
            for (what, ip) in balancer_ips.iter().map(|ip| ("load-balancer IP", ip)).chain(external_ips).filter(|(_, ip)| fam.of(ip)) {
                if served {
                    lb_ips.push(*ip);
                } else {
                    r.note(&format!("{label}: {what} {ip} is {}, a family the Service does not have: not rendered", fam.family.as_str()));
                }
            }
            if !served {
                continue;
            }
            let mut ports: Vec<&ServicePort> = service.ports.iter().collect();
            ports.sort_by_key(|p| (p.port, p.protocol));
            for port in ports {
                let node_port = port.node_port.filter(|_| service.service_type.has_node_ports());
                if service.service_type.has_node_ports() && node_port.is_none() && families.first() == Some(&fam.family) {
                    r.note(&format!("{label}:{}/{}: no nodePort (the lab allocates one before rendering)", port.port, port.protocol));
                }
                let node_port = node_port.filter(|_| r.node_addresses[f].is_some());
                let frontends = Frontends { cluster_ip, lb_ips: &lb_ips, node_port };
                if cluster_ip.is_some() || !lb_ips.is_empty() || node_port.is_some() {
                    let endpoints = endpoints(&pods, service, port, node, *fam);
                    render_port(&mut r, *fam, n, service, port, &frontends, &endpoints, local_pods.as_deref());
                    n += 1;
                }
            }
        }
    }
    write(out, &r);
}

/// Where a Service port is reached.
struct Frontends<'a> {
    cluster_ip: Option<IpAddr>,
    lb_ips: &'a [IpAddr],
    node_port: Option<u16>,
}

/// The endpoints of one Service port in family `fam`: selected pods with an address of it on
/// which the target port resolves.
fn endpoints<'c>(pods: &[&'c Pod], service: &Service, port: &ServicePort, node: &str, fam: Family) -> Vec<Endpoint<'c>> {
    pods.iter()
        .filter(|p| service.selects(p))
        .filter_map(|p| {
            let target = port.target_port.resolve(port.protocol, &p.ports)?;
            let ip = p.ips.iter().copied().find(|ip| fam.of(ip))?;
            Some(Endpoint { pod: p, ip, port: target, local: p.node.as_deref() == Some(node) })
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn render_port(
    r: &mut Rendering,
    fam: Family,
    n: usize,
    service: &Service,
    port: &ServicePort,
    frontends: &Frontends,
    endpoints: &[Endpoint],
    local_pods: Option<&str>,
) {
    let label = format!("{}/{}:{}/{}", service.namespace, service.name, port.port, port.protocol);
    let (svc, ext, ep) = (format!("svc{}-{n}", fam.tag), format!("ext{}-{n}", fam.tag), format!("ep{}-{n}", fam.tag));
    let proto = l4(port.protocol);
    let ip_key = |ip: IpAddr, p: u16| format!("{ip} . {proto} . {p}");
    let element = |key: String, verdict: &str| Element { comment: label.clone(), key, verdict: verdict.to_owned() };
    let external = frontends.node_port.is_some() || !frontends.lb_ips.is_empty();
    let add_external = |r: &mut Rendering, served: bool, verdict: &str| {
        let (by_address, by_node_port) = if served { (Map::Served, Map::ServedNodePorts) } else { (Map::Unserved, Map::UnservedNodePorts) };
        for &ip in frontends.lb_ips {
            r.add(by_address, element(ip_key(ip, port.port), verdict));
        }
        if let Some(node_port) = frontends.node_port {
            r.add(by_node_port, element(format!("{proto} . {node_port}"), verdict));
        }
    };

    if endpoints.is_empty() {
        if let Some(ip) = frontends.cluster_ip {
            r.add(Map::Unserved, element(ip_key(ip, port.port), REJECT));
        }
        add_external(r, false, REJECT);
        return;
    }
    let local: Vec<usize> = (0..endpoints.len()).filter(|&m| endpoints[m].local).collect();
    let internal_local = service.internal_traffic_policy == TrafficPolicy::Local;
    let external_local = service.external_traffic_policy == TrafficPolicy::Local;
    // `svc-N` serves cluster-policy traffic, and the external short-circuits of policy Local.
    let cluster_chain = (frontends.cluster_ip.is_some() && !internal_local) || external;
    let local_chain = !local.is_empty() && ((frontends.cluster_ip.is_some() && internal_local) || (external && external_local));

    if let Some(ip) = frontends.cluster_ip {
        match (internal_local, local.is_empty()) {
            (false, _) => r.add(Map::Served, element(ip_key(ip, port.port), &format!("goto {svc}"))),
            (true, false) => r.add(Map::Served, element(ip_key(ip, port.port), &format!("goto {svc}-local"))),
            // No endpoint on this node: kube-proxy drops (rejecting is for no endpoints at all).
            (true, true) => r.add(Map::Unserved, element(ip_key(ip, port.port), "drop")),
        }
    }
    if external {
        add_external(r, true, &format!("goto {ext}"));
        let _ = writeln!(r.chains, "\tchain {ext} {{\n\t\t# {label} from outside, externalTrafficPolicy {:?}", service.external_traffic_policy);
        if external_local {
            if let Some(local_pods) = local_pods {
                let _ = writeln!(r.chains, "\t\t{local_pods} goto {svc}");
            }
            let _ = writeln!(r.chains, "\t\tfib saddr type local {MASQUERADE}\n\t\tfib saddr type local goto {svc}");
            if local.is_empty() {
                // External traffic falls through, not DNATed, to be dropped by `service-no-endpoints`.
                add_external(r, false, "drop");
            } else {
                let _ = writeln!(r.chains, "\t\tgoto {svc}-local");
            }
        } else {
            let _ = writeln!(r.chains, "\t\t{MASQUERADE}\n\t\tgoto {svc}");
        }
        r.chains.push_str("\t}\n");
    }

    let affinity = match service.session_affinity {
        SessionAffinity::ClientIp { timeout_seconds } => Some(timeout_seconds),
        SessionAffinity::None => None,
    };
    let sets: Option<Vec<String>> = affinity
        .map(|_| endpoints.iter().map(|e| format!("affinity-{:016x}", super::fnv1a(format!("{label} {}", fam.socket(e.ip, e.port)).as_bytes()))).collect());
    let sets = sets.as_deref();
    let all: Vec<usize> = (0..endpoints.len()).collect();
    if cluster_chain {
        pick(r, fam, &svc, &label, &ep, &all, sets);
    }
    if local_chain {
        pick(r, fam, &format!("{svc}-local"), &format!("{label}, endpoints on this node"), &ep, &local, sets);
    }
    for (m, e) in endpoints.iter().enumerate() {
        if !cluster_chain && !e.local {
            continue;
        }
        let _ = writeln!(r.chains, "\tchain {ep}-{m} {{\n\t\t# {label} -> {}/{}", e.pod.namespace, e.pod.name);
        // A pod reaching itself: without masquerade its reply would not pass the node to be un-DNATed.
        let _ = writeln!(r.chains, "\t\t{} saddr {} {MASQUERADE}", fam.ip, e.ip);
        if let (Some(timeout), Some(sets)) = (affinity, sets) {
            let _ = writeln!(r.sets, "\tset {} {{\n\t\ttype {}\n\t\tflags dynamic,timeout\n\t\ttimeout {timeout}s\n\t}}", sets[m], fam.set_type);
            let _ = writeln!(r.chains, "\t\tupdate @{} {{ {} saddr }}", sets[m], fam.ip);
        }
        let _ = writeln!(r.chains, "\t\tmeta l4proto {proto} dnat {} to {}\n\t}}", fam.ip, fam.socket(e.ip, e.port));
    }
}

/// A chain that sends a new connection to one of `members` (endpoint indices; `ep` prefixes
/// their chains): the endpoint the client has affinity to (in the endpoint's set of
/// `affinity`), else one at random.
fn pick(r: &mut Rendering, fam: Family, chain: &str, comment: &str, ep: &str, members: &[usize], affinity: Option<&[String]>) {
    let _ = writeln!(r.chains, "\tchain {chain} {{\n\t\t# {comment}");
    if let Some(sets) = affinity {
        for &m in members {
            let _ = writeln!(r.chains, "\t\t{} saddr @{} goto {ep}-{m}", fam.ip, sets[m]);
        }
    }
    match members {
        [m] => {
            let _ = writeln!(r.chains, "\t\tgoto {ep}-{m}");
        }
        _ => {
            let arms = join(members.iter().enumerate().map(|(i, m)| format!("{i} : goto {ep}-{m}")));
            let _ = writeln!(r.chains, "\t\tnumgen random mod {} vmap {{ {arms} }}", members.len());
        }
    }
    r.chains.push_str("\t}\n");
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(", ")
}

/// A verdict-map rule over `elements`, one per line under its comment; nothing when empty.
fn vmap(out: &mut String, selector: &str, elements: &[Element]) {
    if elements.is_empty() {
        return;
    }
    let _ = writeln!(out, "\t\t{selector} vmap {{");
    for (i, e) in elements.iter().enumerate() {
        let _ = writeln!(out, "\t\t\t# {}\n\t\t\t{} : {}{}", e.comment, e.key, e.verdict, if i + 1 < elements.len() { "," } else { "" });
    }
    out.push_str("\t\t}\n");
}

/// The verdict maps of `maps` (by address, by node port) of each family, in one chain.
fn vmaps(out: &mut String, r: &Rendering, maps: [Map; 2]) {
    for (f, fam) in FAMILIES.iter().enumerate() {
        vmap(out, &format!("{} daddr . meta l4proto . th dport", fam.ip), r.map(f, maps[0]));
        if let Some(node_addresses) = &r.node_addresses[f] {
            vmap(out, &format!("{node_addresses} meta l4proto . th dport"), r.map(f, maps[1]));
        }
    }
}

fn write(out: &mut String, r: &Rendering) {
    out.push_str(&r.notes);
    out.push_str(&r.sets);
    if r.any([Map::Served, Map::ServedNodePorts]) {
        // nft 1.0.6 knows the name `dstnat` only for prerouting; -100 is its value.
        out.push_str(concat!(
            "\tchain service-prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\t\tjump services\n\t}\n",
            "\tchain service-output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tjump services\n\t}\n",
            "\tchain service-postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n\t\tmeta mark & 0x4000 != 0 masquerade\n\t}\n",
            "\tchain services {\n",
        ));
        vmaps(out, r, [Map::Served, Map::ServedNodePorts]);
        out.push_str("\t}\n");
    }
    out.push_str(&r.chains);
    if r.any([Map::Unserved, Map::UnservedNodePorts]) {
        for hook in ["forward", "input", "output"] {
            let _ = write!(
                out,
                "\tchain service-filter-{hook} {{\n\t\ttype filter hook {hook} priority filter - 10; policy accept;\n\t\tct state new jump service-no-endpoints\n\t}}\n"
            );
        }
        out.push_str("\tchain service-no-endpoints {\n");
        vmaps(out, r, [Map::Unserved, Map::UnservedNodePorts]);
        out.push_str("\t}\n");
        let rejects = (0..2).flat_map(|f| r.map(f, Map::Unserved).iter().chain(r.map(f, Map::UnservedNodePorts)));
        if rejects.into_iter().any(|e| e.verdict == REJECT) {
            out.push_str("\tchain service-reject {\n\t\tmeta l4proto tcp reject with tcp reset\n\t\treject\n\t}\n");
        }
    }
}
