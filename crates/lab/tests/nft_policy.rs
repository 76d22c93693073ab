//! The NetworkPolicy chains of a node: rendering (snapshot, targeted assertions, determinism),
//! acceptance by the kernel, and enforcement with real packets in a lab.
//!
//! Kernel and lab tests need root and `nft` (CI runs as root); without them they say why on
//! stderr and check nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::process::Command;

use netmatrix_lab::netns;
use netmatrix_lab::nft::policy::render;
use netmatrix_model::{Cluster, parse_str};

/// Two nodes. On n0: web/front (dual-stack, http=8080), web/api (http=80, metrics=9090),
/// db/cache, ops/sig (SCTP sig=9000), ops/agent (hostNetwork) and web/pending (no IP yet).
/// On n1: web/remote (http=81) and db/pg.
const CLUSTER: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: web, labels: {team: web}}
---
apiVersion: v1
kind: Namespace
metadata: {name: db, labels: {team: db}}
---
apiVersion: v1
kind: Namespace
metadata: {name: ops, labels: {team: ops}}
---
apiVersion: v1
kind: Pod
metadata: {name: front, namespace: web, labels: {app: front}}
spec:
  nodeName: n0
  containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]
status: {podIP: 10.244.0.10, podIPs: [{ip: 10.244.0.10}, {ip: "fd00::a"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: api, namespace: web, labels: {app: api}}
spec:
  nodeName: n0
  containers: [{name: c, ports: [{name: http, containerPort: 80}, {name: metrics, containerPort: 9090}]}]
status: {podIP: 10.244.0.11}
---
apiVersion: v1
kind: Pod
metadata: {name: pending, namespace: web, labels: {app: api}}
spec:
  nodeName: n0
  containers: [{name: c}]
---
apiVersion: v1
kind: Pod
metadata: {name: remote, namespace: web, labels: {app: api}}
spec:
  nodeName: n1
  containers: [{name: c, ports: [{name: http, containerPort: 81}]}]
status: {podIP: 10.244.1.12}
---
apiVersion: v1
kind: Pod
metadata: {name: cache, namespace: db, labels: {app: cache}}
spec:
  nodeName: n0
  containers: [{name: c, ports: [{name: dns, containerPort: 53, protocol: UDP}]}]
status: {podIP: 10.244.0.12}
---
apiVersion: v1
kind: Pod
metadata: {name: pg, namespace: db, labels: {app: pg}}
spec:
  nodeName: n1
  containers: [{name: c, ports: [{name: sql, containerPort: 5432}]}]
status: {podIP: 10.244.1.11}
---
apiVersion: v1
kind: Pod
metadata: {name: sig, namespace: ops, labels: {app: sig}}
spec:
  nodeName: n0
  containers: [{name: c, ports: [{name: sig, containerPort: 9000, protocol: SCTP}]}]
status: {podIP: 10.244.0.13}
---
apiVersion: v1
kind: Pod
metadata: {name: agent, namespace: ops, labels: {app: agent}}
spec:
  nodeName: n0
  hostNetwork: true
  containers: [{name: c}]
status: {podIP: 172.18.0.2}
---
# Ingress: deny all in web (a policy type with no rules).
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: web}
spec:
  podSelector: {}
  policyTypes: [Ingress]
---
# Ingress to web on the named port http (8080 on front, 80 on api) from ops and from app=front.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-http, namespace: web}
spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: ops}}
    - podSelector: {matchLabels: {app: front}}
    ports: [{port: http}]
---
# Egress of front: http on the api pods (80 here, 81 on n1), a range and DNS to an ipBlock
# with exceptions, all of SCTP to db, metrics anywhere.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: front-egress, namespace: web}
spec:
  podSelector: {matchLabels: {app: front}}
  policyTypes: [Egress]
  egress:
  - to: [{podSelector: {matchLabels: {app: api}}}]
    ports: [{port: http}]
  - to: [{ipBlock: {cidr: 10.0.0.0/8, except: [10.244.1.0/24, 10.1.0.0/16]}}]
    ports: [{port: 5000, endPort: 5010}, {port: 53, protocol: UDP}]
  - to: [{namespaceSelector: {matchLabels: {team: db}}}]
    ports: [{protocol: SCTP}]
  - ports: [{port: metrics}]
---
# db may send nothing (an egress policy type with no rules).
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-egress, namespace: db}
spec:
  podSelector: {}
  policyTypes: [Egress]
---
# Anything may reach db/cache: one empty rule matches every peer and port.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: cache-open, namespace: db}
spec:
  podSelector: {matchLabels: {app: cache}}
  ingress: [{}]
---
# Selects only db/pg, which lives on n1.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: pg-ingress, namespace: db}
spec:
  podSelector: {matchLabels: {app: pg}}
  ingress:
  - from: [{podSelector: {}}]
---
# SCTP sig and UDP 53 to ops/sig from IPv6 and IPv4 blocks; the named port on UDP matches nothing.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: sig, namespace: ops}
spec:
  podSelector: {matchLabels: {app: sig}}
  ingress:
  - from: [{ipBlock: {cidr: "fd00::/8"}}, {ipBlock: {cidr: 192.168.0.0/16, except: [192.168.1.0/24]}}]
    ports: [{port: sig, protocol: SCTP}, {port: 53, protocol: UDP}]
  - from: [{ipBlock: {cidr: 192.168.0.0/16}}]
    ports: [{port: sig, protocol: UDP}]
"#;

fn cluster() -> Cluster {
    parse_str("cluster.yaml", CLUSTER).unwrap_or_else(|e| panic!("{e}"))
}

fn rendered(cluster: &Cluster, node: &str) -> String {
    let mut out = String::new();
    render(&mut out, cluster, node);
    out
}

fn table(cluster: &Cluster, node: &str) -> String {
    format!("table inet nm-test {{\n{}}}\n", rendered(cluster, node))
}

/// The rendering, parsed back just enough for assertions.
struct Parsed {
    /// Chain name -> its lines (comments included, without indentation).
    chains: BTreeMap<String, Vec<String>>,
    /// Set name -> elements.
    sets: BTreeMap<String, BTreeSet<IpAddr>>,
}

fn parse(text: &str) -> Parsed {
    let (mut chains, mut sets) = (BTreeMap::new(), BTreeMap::new());
    let mut current: Option<(bool, String)> = None;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("chain ").and_then(|l| l.strip_suffix(" {")) {
            chains.insert(name.to_owned(), Vec::new());
            current = Some((true, name.to_owned()));
        } else if let Some(name) = line.strip_prefix("set ").and_then(|l| l.strip_suffix(" {")) {
            current = Some((false, name.to_owned()));
        } else if line == "}" {
            current = None;
        } else if let Some((is_chain, name)) = &current {
            if *is_chain {
                chains.get_mut(name).unwrap().push(line.to_owned());
            } else if let Some(list) = line.strip_prefix("elements = { ").and_then(|l| l.strip_suffix(" }")) {
                sets.insert(name.clone(), list.split(", ").map(|ip| ip.parse().unwrap()).collect());
            }
        }
    }
    Parsed { chains, sets }
}

impl Parsed {
    /// Pods (`ns/name`) that have a pod chain of `direction`.
    fn isolated(&self, direction: &str) -> BTreeSet<String> {
        self.chains
            .iter()
            .filter(|(name, _)| {
                name.strip_prefix(direction).and_then(|n| n.strip_prefix('-')).is_some_and(|n| n.len() == 16 && u64::from_str_radix(n, 16).is_ok())
            })
            .flat_map(|(_, lines)| lines.iter().filter_map(|l| l.strip_prefix("# ").map(str::to_owned)))
            .collect()
    }

    /// Addresses dispatched by the verdict maps of base chain `chain`.
    fn dispatched(&self, chain: &str) -> BTreeSet<IpAddr> {
        let lines = self.chains.get(chain).map(Vec::as_slice).unwrap_or_default();
        lines
            .iter()
            .filter_map(|l| l.split_once("vmap { ")?.1.strip_suffix(" }"))
            .flat_map(|entries| entries.split(", ").map(|e| e.split_once(" : ").unwrap().0.parse().unwrap()))
            .collect()
    }

    /// The lines of `chain` that name `ip`, alone or in a set (shown as `{ip}`).
    fn rules_for(&self, chain: &str, ip: &str) -> Vec<String> {
        let ip: IpAddr = ip.parse().unwrap();
        self.chains[chain]
            .iter()
            .filter_map(|l| {
                if l.contains(&format!("addr {ip} ")) {
                    return Some(l.clone());
                }
                let (set, _) = l.split_once('@')?.1.split_once(' ')?;
                self.sets[set].contains(&ip).then(|| l.replace(&format!("@{set}"), &format!("{{{ip}}}")))
            })
            .collect()
    }

    /// The allow chain of policy `ns/name` for `direction`.
    fn allow_chain(&self, policy: &str, direction: &str) -> &str {
        self.chains
            .iter()
            .find(|(name, lines)| {
                name.ends_with(&format!("-{direction}")) && name.starts_with("np-") && lines.first().is_some_and(|l| l == &format!("# {policy}"))
            })
            .map(|(name, _)| name.as_str())
            .unwrap_or_else(|| panic!("no {direction} chain for {policy}"))
    }
}

fn set_of(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn ips(list: &[&str]) -> BTreeSet<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn snapshot_of_a_small_cluster() {
    insta::assert_snapshot!(rendered(&cluster(), "n0"));
}

#[test]
fn only_local_pods_with_addresses_and_own_network_get_chains() {
    let p = parse(&rendered(&cluster(), "n0"));
    // web/remote and db/pg live on n1; ops/agent uses the node's network; web/pending has no IP.
    assert_eq!(p.isolated("ingress"), set_of(&["db/cache", "ops/sig", "web/api", "web/front"]));
    assert_eq!(p.isolated("egress"), set_of(&["db/cache", "web/front"]));
    assert_eq!(p.dispatched("policy-ingress"), ips(&["10.244.0.10", "10.244.0.11", "10.244.0.12", "10.244.0.13", "fd00::a"]));
    assert_eq!(p.chains[p.allow_chain("db/cache-open", "ingress")], ["# db/cache-open", "# ingress rule 0", "accept"]);
    assert_eq!(p.dispatched("policy-egress"), ips(&["10.244.0.10", "10.244.0.12", "fd00::a"]));
    assert_eq!(p.dispatched("policy-input"), p.dispatched("policy-egress"));
    // ops/sig admits ipBlocks only.
    let sig = p.allow_chain("ops/sig", "ingress");
    assert!(p.chains[sig].contains(&"ip saddr 192.168.0.0/16 ip saddr != 192.168.1.0/24 sctp dport 9000 accept".to_owned()), "{:?}", p.chains[sig]);
    assert!(p.chains[sig].contains(&"ip6 saddr fd00::/8 udp dport 53 accept".to_owned()), "{:?}", p.chains[sig]);
    // Its second rule names a UDP port the pod does not have: it allows nothing.
    assert!(!p.chains[sig].iter().any(|l| l.contains("rule 1")), "{:?}", p.chains[sig]);
    assert!(!p.chains.keys().any(|c| c.contains("pg")) && !rendered(&cluster(), "n0").contains("db/pg-ingress"), "pg's policy is n1's business");

    let p1 = parse(&rendered(&cluster(), "n1"));
    assert_eq!(p1.isolated("ingress"), set_of(&["db/pg", "web/remote"]));
    assert_eq!(p1.isolated("egress"), set_of(&["db/pg"]));
    // web/front's egress is enforced on n0 only.
    assert!(!p1.dispatched("policy-egress").contains(&"10.244.0.10".parse().unwrap()));
}

#[test]
fn policies_without_local_selection_render_nothing() {
    let mut c = cluster();
    c.policies.clear();
    assert_eq!(rendered(&c, "n0"), "", "no policy: no chains, not even base chains");
    let c = cluster();
    assert_eq!(rendered(&c, "n9"), "", "a node without pods");
}

#[test]
fn a_policy_type_without_rules_isolates_and_allows_nothing() {
    let p = parse(&rendered(&cluster(), "n0"));
    // db/cache: only deny-egress selects it, so its chain holds nothing but the deny.
    let chain = p.chains.iter().find(|(n, l)| n.starts_with("egress-") && l.contains(&"# db/cache".to_owned())).unwrap().1;
    assert_eq!(chain, &["# db/cache", "reject with icmpx admin-prohibited"]);
    assert!(!p.chains.keys().any(|n| n.starts_with("np-") && p.chains[n][0] == "# db/deny-egress"));
}

#[test]
fn named_ports_resolve_per_destination_pod() {
    let p = parse(&rendered(&cluster(), "n0"));
    // Egress of front to app=api on `http`: 80 on api (same node), 81 on remote (other node).
    let egress = p.allow_chain("web/front-egress", "egress");
    assert_eq!(p.rules_for(egress, "10.244.0.11"), ["ip daddr 10.244.0.11 tcp dport 80 accept", "ip daddr 10.244.0.11 tcp dport 9090 accept"]);
    assert_eq!(p.rules_for(egress, "10.244.1.12"), ["ip daddr 10.244.1.12 tcp dport 81 accept"]);
    // SCTP, all ports, to both db pods (cache here, pg on n1).
    assert_eq!(p.rules_for(egress, "10.244.1.11"), ["ip daddr {10.244.1.11} meta l4proto sctp accept"]);
    // `metrics` with no peers: only api has it; for other addresses it names nothing.
    let metrics: Vec<&String> = p.chains[egress].iter().filter(|l| l.contains("9090")).collect();
    assert_eq!(metrics, ["ip daddr 10.244.0.11 tcp dport 9090 accept"]);
    // The ipBlock rule resolves numeric ports for every address in the block.
    assert!(
        p.chains[egress].contains(&"ip daddr 10.0.0.0/8 ip daddr != { 10.1.0.0/16, 10.244.1.0/24 } tcp dport 5000-5010 accept".to_owned()),
        "{:?}",
        p.chains[egress]
    );

    // Ingress on `http` resolves against the destination: 8080 on front, 80 on api.
    let ingress = p.allow_chain("web/allow-http", "ingress");
    let lines = &p.chains[ingress];
    let sources = lines.iter().find_map(|l| l.split_once(" ip saddr @")).map(|(_, rest)| rest.split_once(' ').unwrap().0).unwrap();
    assert_eq!(p.sets[sources], ips(&["10.244.0.13", "172.18.0.2"]), "the ops pods, hostNetwork ones too");
    let rules: Vec<String> = lines.iter().filter(|l| !l.starts_with('#')).map(|l| l.replace(sources, "OPS")).collect();
    assert_eq!(
        rules,
        [
            "ip daddr 10.244.0.11 ip saddr @OPS tcp dport 80 accept",
            "ip daddr 10.244.0.11 ip saddr 10.244.0.10 tcp dport 80 accept",
            "ip daddr 10.244.0.10 ip saddr @OPS tcp dport 8080 accept",
            "ip daddr 10.244.0.10 ip saddr 10.244.0.10 tcp dport 8080 accept",
            "ip6 daddr fd00::a ip6 saddr fd00::a tcp dport 8080 accept",
        ]
    );
}

#[test]
fn the_same_input_in_any_order_renders_the_same_text() {
    let c = cluster();
    let text = rendered(&c, "n0");
    assert_eq!(text, rendered(&c, "n0"));
    let mut permuted = c.clone();
    permuted.pods.reverse();
    permuted.pods.rotate_left(3);
    permuted.policies.reverse();
    for pod in &mut permuted.pods {
        pod.ips.reverse();
    }
    assert_eq!(rendered(&permuted, "n0"), text);
}

/// A synthetic cluster with addresses and nodes assigned: pods alternate between n0 and n1,
/// every third is dual-stack and the seventh is on the host network.
fn synthetic(params: &netmatrix_synth::Params) -> Cluster {
    let mut cluster = parse_str("synth.yaml", &netmatrix_synth::generate(params)).unwrap_or_else(|e| panic!("{e}"));
    for (i, pod) in cluster.pods.iter_mut().enumerate() {
        let n = i as u32;
        pod.node = Some(format!("n{}", n % 2));
        pod.ips = vec![IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 244, 0, 10)) + n))];
        if n.is_multiple_of(3) {
            pod.ips.push(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 10 + n as u16)));
        }
        pod.host_network = n == 7;
    }
    cluster
}

#[test]
fn synthetic_clusters_render_rules_for_their_local_pods() {
    for seed in 0..20 {
        let c = synthetic(&netmatrix_synth::Params::small(seed));
        let p = parse(&rendered(&c, "n0"));
        for name in p.isolated("ingress").iter().chain(&p.isolated("egress")) {
            let pod = c.pods.iter().find(|q| format!("{}/{}", q.namespace, q.name) == *name).unwrap();
            assert_eq!(pod.node.as_deref(), Some("n0"), "seed {seed}: {name}");
            assert!(!pod.host_network, "seed {seed}: {name}");
        }
    }
}

#[path = "support/kernel.rs"]
mod kernel;
use kernel::{Namespace, privileged};

fn assert_kernel_accepts(ns: &Namespace, what: &str, script: &str) {
    let out = ns.nft(&["-c", "-f", "-"], Some(script));
    assert!(out.status.success(), "{what}: nft -c rejected the ruleset: {}\n{script}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn the_kernel_accepts_the_rulesets() {
    if !privileged() {
        return;
    }
    let ns = Namespace::new("nfttest", "check");
    let small = cluster();
    for node in ["n0", "n1"] {
        assert_kernel_accepts(&ns, &format!("snapshot cluster, {node}"), &table(&small, node));
    }
    for seed in 0..10 {
        let c = synthetic(&netmatrix_synth::Params::small(seed));
        assert_kernel_accepts(&ns, &format!("synthetic seed {seed}"), &table(&c, "n0"));
    }
    // The benchmark's shape: 500 pods, 200 policies.
    let large = synthetic(&netmatrix_synth::Params::scale(1, 500, 200));
    assert_kernel_accepts(&ns, "500 pods x 200 policies", &table(&large, "n0"));

    // Applied for real, then read back from the kernel.
    let out = ns.nft(&["-f", "-"], Some(&table(&small, "n0")));
    assert!(out.status.success(), "nft -f: {}", String::from_utf8_lossy(&out.stderr));
    let out = ns.nft(&["list", "table", "inet", "nm-test"], None);
    assert!(out.status.success(), "nft list: {}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "chain policy-ingress",
        "type filter hook forward priority filter + 1; policy accept;",
        "jump ingress-",
        "reject with icmpx admin-prohibited",
        "sctp dport 9000 accept",
    ] {
        assert!(listed.contains(expected), "{expected:?} not in the kernel's table:\n{listed}");
    }
}

/// Node n0 with pods a, b, c on one bridge (br_netfilter on, as in the lab): a may send to b on
/// b's `http` (80) and to c on c's `http` (8080); b admits only a, on `http`, and may send
/// nothing; c is not isolated.
const FUNCTIONAL: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: a, namespace: x, labels: {app: a}}
spec: {nodeName: n0, containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
status: {podIPs: [{ip: 10.99.0.10}, {ip: "fd99::10"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: b, namespace: x, labels: {app: b}}
spec: {nodeName: n0, containers: [{name: c, ports: [{name: http, containerPort: 80}, {name: other, containerPort: 81}]}]}
status: {podIPs: [{ip: 10.99.0.11}, {ip: "fd99::11"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: c, namespace: x, labels: {app: c}}
spec: {nodeName: n0, containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.99.0.12}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a-egress, namespace: x}
spec:
  podSelector: {matchLabels: {app: a}}
  policyTypes: [Egress]
  egress: [{to: [{podSelector: {matchLabels: {app: b}}}, {podSelector: {matchLabels: {app: c}}}], ports: [{port: http}]}]
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: b, namespace: x}
spec:
  podSelector: {matchLabels: {app: b}}
  policyTypes: [Ingress, Egress]
  ingress: [{from: [{podSelector: {matchLabels: {app: a}}}], ports: [{port: http}]}]
"#;

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().unwrap_or_else(|e| panic!("ip {args:?}: {e}"));
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// How a TCP connect from namespace `from` to `to` ends: `connected`, `refused` (RST: a closed
/// port), `prohibited` (ICMP admin-prohibited: a policy; Linux reports EHOSTUNREACH for IPv4,
/// EACCES for IPv6), or the error.
fn connect(from: &Namespace, to: &str) -> String {
    let address: std::net::SocketAddr = to.parse().unwrap();
    let result = netns::enter(&from.0, || std::net::TcpStream::connect_timeout(&address, std::time::Duration::from_secs(3))).unwrap();
    match result {
        Ok(_) => "connected".into(),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => "refused".into(),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::HostUnreachable | std::io::ErrorKind::PermissionDenied) => "prohibited".into(),
        Err(e) => format!("{:?}: {e}", e.kind()),
    }
}

#[test]
fn packets_are_allowed_and_denied_as_the_policies_say() {
    if !privileged() {
        return;
    }
    if Command::new("ip").arg("-V").output().is_err() {
        eprintln!("SKIPPED: `ip` not found (Debian package iproute2)");
        return;
    }
    let node = Namespace::new("nfttest", "node");
    let pods = [("a", "10.99.0.10", Some("fd99::10")), ("b", "10.99.0.11", Some("fd99::11")), ("c", "10.99.0.12", None)]
        .map(|(name, v4, v6)| (Namespace::new("nfttest", name), v4, v6));
    ip(&["-n", &node.0, "link", "add", "br0", "type", "bridge"]);
    ip(&["-n", &node.0, "link", "set", "br0", "up"]);
    // The node needs an address of each family towards the pods to send them its rejects.
    ip(&["-n", &node.0, "addr", "add", "10.99.0.1/24", "dev", "br0"]);
    ip(&["-n", &node.0, "addr", "add", "fd99::1/64", "dev", "br0", "nodad"]);
    ip(&["-n", &node.0, "link", "set", "lo", "up"]);
    netns::sysctl(&node.0, "net.bridge.bridge-nf-call-iptables", "1").unwrap();
    netns::sysctl(&node.0, "net.bridge.bridge-nf-call-ip6tables", "1").unwrap();
    for (i, (pod, v4, v6)) in pods.iter().enumerate() {
        let port = format!("v{i}");
        ip(&["-n", &node.0, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &pod.0]);
        ip(&["-n", &node.0, "link", "set", &port, "master", "br0", "up"]);
        ip(&["-n", &pod.0, "link", "set", "eth0", "up"]);
        ip(&["-n", &pod.0, "link", "set", "lo", "up"]);
        ip(&["-n", &pod.0, "addr", "add", &format!("{v4}/24"), "dev", "eth0"]);
        if let Some(v6) = v6 {
            ip(&["-n", &pod.0, "addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"]);
        }
    }
    // Listeners live in their namespace once bound; connects complete in the backlog.
    let mut listeners = Vec::new();
    for (pod, address) in [
        (&pods[1].0, "10.99.0.11:80"),
        (&pods[1].0, "10.99.0.11:81"),
        (&pods[1].0, "[fd99::11]:80"),
        (&pods[1].0, "[fd99::11]:81"),
        (&pods[2].0, "10.99.0.12:80"),
        (&pods[2].0, "10.99.0.12:8080"),
    ] {
        listeners.push(netns::enter(&pod.0, || std::net::TcpListener::bind(address)).unwrap().unwrap_or_else(|e| panic!("listening on {address}: {e}")));
    }
    let cluster = parse_str("functional.yaml", FUNCTIONAL).unwrap_or_else(|e| panic!("{e}"));
    let out = node.nft(&["-f", "-"], Some(&table(&cluster, "n0")));
    assert!(out.status.success(), "nft -f: {}", String::from_utf8_lossy(&out.stderr));

    let [(a, ..), _, (c, ..)] = &pods;
    let cases = [
        (a, "10.99.0.11:80", "connected", "a's egress and b's ingress allow b's http (80); b's reply passes as established although b may send nothing"),
        (a, "10.99.0.11:81", "prohibited", "81 is not http on b"),
        (a, "[fd99::11]:80", "connected", "the same over IPv6 (neighbour discovery passes)"),
        (a, "[fd99::11]:81", "prohibited", "the same over IPv6"),
        (a, "10.99.0.12:8080", "connected", "http is 8080 on c"),
        (a, "10.99.0.12:80", "prohibited", "80 is not http on c"),
        (c, "10.99.0.11:80", "prohibited", "b admits only a"),
        (c, "10.99.0.10:8080", "refused", "a is not isolated for ingress; nothing listens"),
        (a, "10.99.0.1:22", "prohibited", "a may not send to its node (input hook)"),
        (c, "10.99.0.1:22", "refused", "c may; nothing listens"),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(from, to, expected, why)| {
            let got = connect(from, to);
            (got != *expected).then(|| format!("{} -> {to}: {got}, expected {expected} ({why})", from.0))
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    drop(listeners);
}

/// Admin and baseline tiers over [`CLUSTER`]: web's pods deny db on `http` (resolved on each
/// web pod), pass everything else on to NetworkPolicy, and may send to `http` in 10.244.0.0/16;
/// the baseline denies web's egress to pods and admits ops on ingress.
const ADMIN: &str = r#"
apiVersion: policy.networking.k8s.io/v1alpha1
kind: AdminNetworkPolicy
metadata: {name: guard}
spec:
  priority: 5
  subject: {namespaces: {matchLabels: {team: web}}}
  ingress:
  - {action: Deny, from: [{namespaces: {matchLabels: {team: db}}}], ports: [{namedPort: http}]}
  - {action: Pass, from: [{namespaces: {}}]}
  egress:
  - {action: Allow, to: [{networks: [10.244.0.0/16]}], ports: [{namedPort: http}]}
---
apiVersion: policy.networking.k8s.io/v1alpha1
kind: BaselineAdminNetworkPolicy
metadata: {name: default}
spec:
  subject: {namespaces: {}}
  ingress:
  - {action: Allow, from: [{namespaces: {matchLabels: {team: ops}}}]}
  egress:
  - {action: Deny, to: [{pods: {namespaceSelector: {}, podSelector: {}}}]}
"#;

fn admin_cluster() -> Cluster {
    parse_str("cluster.yaml", &format!("{CLUSTER}---\n{ADMIN}")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn admin_tiers_come_before_and_after_networkpolicy() {
    let text = rendered(&admin_cluster(), "n0");
    let p = parse(&text);
    let pod_chain = |direction: &str, pod: &str| {
        let found = p.chains.iter().find(|(n, l)| n.starts_with(&format!("{direction}-")) && l.contains(&format!("# {pod}")));
        found.unwrap_or_else(|| panic!("no {direction} chain for {pod}:\n{text}")).1.clone()
    };
    let jumps = |lines: &[String]| lines.iter().filter_map(|l| l.strip_prefix("jump ")).map(|c| c.split('-').next().unwrap().to_owned()).collect::<Vec<_>>();
    // web/api is isolated for ingress: the admin tier, then its NetworkPolicies, then deny.
    let api = pod_chain("ingress", "web/api");
    assert_eq!(jumps(&api)[0], "admin");
    assert!(jumps(&api)[1..].iter().all(|j| j == "np") && api.last().unwrap().starts_with("reject"), "{api:?}");
    // ... and not for egress: the admin tier, then the baseline, then allowed.
    let api_out = pod_chain("egress", "web/api");
    assert_eq!(jumps(&api_out), ["admin", "baseline"]);
    assert!(!api_out.iter().any(|l| l.starts_with("reject")), "{api_out:?}");
    // db/cache: not the ANP's subject; isolated for both directions, so the baseline never applies.
    assert!(jumps(&pod_chain("ingress", "db/cache")).iter().all(|j| j == "np"));
    // The named port resolves on each web pod (the destination of ingress): 80 on api, 8080 on front.
    let admin_of = |pod: &str| pod_chain("ingress", pod).iter().find_map(|l| l.strip_prefix("jump admin-").map(|h| format!("admin-{h}"))).unwrap();
    assert!(
        p.rules_for(&admin_of("web/api"), "10.244.0.12").contains(&"ip saddr {10.244.0.12} tcp dport 80 reject with icmpx admin-prohibited".to_owned()),
        "{text}"
    );
    assert!(
        p.rules_for(&admin_of("web/front"), "10.244.0.12").contains(&"ip saddr {10.244.0.12} tcp dport 8080 reject with icmpx admin-prohibited".to_owned()),
        "{text}"
    );
    assert!(p.chains[&admin_of("web/api")].last().unwrap().ends_with(" return"), "Pass returns to the next tier");
    // Egress to `networks` with a named port: only pods there with that port, by their IPv4 address.
    let egress_admin = pod_chain("egress", "web/api").iter().find_map(|l| l.strip_prefix("jump admin-").map(|h| format!("admin-{h}"))).unwrap();
    assert_eq!(p.rules_for(&egress_admin, "10.244.0.10"), ["ip daddr 10.244.0.10 tcp dport 8080 accept"]);
    assert!(!p.chains[&egress_admin].iter().any(|l| l.contains("fd00::a")), "the IPv6 address is outside the network");
    // Without admin policies nothing of this is rendered (the snapshot shows the rest).
    assert!(!rendered(&cluster(), "n0").contains("chain admin-"));
}

#[test]
fn the_kernel_accepts_rulesets_with_admin_policies() {
    if !privileged() {
        return;
    }
    let ns = Namespace::new("nfttest", "admin");
    let c = admin_cluster();
    for node in ["n0", "n1"] {
        assert_kernel_accepts(&ns, &format!("admin cluster, {node}"), &table(&c, node));
    }
}
