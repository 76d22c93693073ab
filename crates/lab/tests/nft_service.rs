//! The Service chains of a node: rendering (snapshot, targeted assertions, determinism),
//! acceptance by the kernel, and real packets through them in namespaces built for the test.
//!
//! Kernel tests need root, `nft`, `ip` and (for packets) `python3`; without them they say why
//! on stderr and check nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use netmatrix_model::{Cluster, IpFamily, parse_str};

use netmatrix_lab::nft::service::render;

/// Two nodes. node0: shop/web-0 (http=8080), shop/dns-0 (dns 5353 UDP and TCP), shop/legacy-0
/// (app=web, no named port), other/web-x (app=web, another namespace). node1: shop/web-1
/// (http=8081) and shop/sig-1 (SCTP sig=9000).
const CLUSTER: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec:
  nodeName: node0
  containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]
status: {podIP: 10.244.0.10}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec:
  nodeName: node1
  containers: [{name: c, ports: [{name: http, containerPort: 8081}]}]
status: {podIP: 10.244.1.10}
---
apiVersion: v1
kind: Pod
metadata: {name: legacy-0, namespace: shop, labels: {app: web}}
spec:
  nodeName: node0
  containers: [{name: c, ports: [{containerPort: 8080}]}]
status: {podIP: 10.244.0.12}
---
apiVersion: v1
kind: Pod
metadata: {name: web-x, namespace: other, labels: {app: web}}
spec:
  nodeName: node0
  containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]
status: {podIP: 10.244.0.13}
---
apiVersion: v1
kind: Pod
metadata: {name: dns-0, namespace: shop, labels: {app: dns}}
spec:
  nodeName: node0
  containers: [{name: c, ports: [{name: dns, containerPort: 5353, protocol: UDP}, {name: dns-tcp, containerPort: 5353}]}]
status: {podIP: 10.244.0.11}
---
apiVersion: v1
kind: Pod
metadata: {name: sig-1, namespace: shop, labels: {app: sig}}
spec:
  nodeName: node1
  containers: [{name: c, ports: [{name: sig, containerPort: 9000, protocol: SCTP}]}]
status: {podIP: 10.244.1.11}
---
# Named targetPort (8080 on web-0, 8081 on web-1, legacy-0 lacks it); 443 has no endpoint.
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  clusterIP: 10.96.0.10
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}, {name: https, port: 443, targetPort: https}]
---
apiVersion: v1
kind: Service
metadata: {name: web-np, namespace: shop}
spec:
  type: NodePort
  clusterIP: 10.96.0.11
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080, nodePort: 30080}]
---
apiVersion: v1
kind: Service
metadata: {name: web-lb, namespace: shop}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.12
  externalTrafficPolicy: Local
  selector: {app: web}
  ports: [{port: 80, targetPort: http, nodePort: 30081}]
status: {loadBalancer: {ingress: [{ip: 172.18.255.1}, {ip: "fd00::255:1"}]}}
---
# Endpoints only on node1: external traffic to node0 is dropped there.
apiVersion: v1
kind: Service
metadata: {name: sig-lb, namespace: shop}
spec:
  type: LoadBalancer
  clusterIP: 10.96.0.13
  externalTrafficPolicy: Local
  selector: {app: sig}
  ports: [{port: 9000, protocol: SCTP, targetPort: sig, nodePort: 30082}]
status: {loadBalancer: {ingress: [{ip: 172.18.255.2}]}}
---
apiVersion: v1
kind: Service
metadata: {name: web-itp, namespace: shop}
spec:
  clusterIP: 10.96.0.14
  internalTrafficPolicy: Local
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: sig-itp, namespace: shop}
spec:
  clusterIP: 10.96.0.15
  internalTrafficPolicy: Local
  selector: {app: sig}
  ports: [{port: 9000, protocol: SCTP, targetPort: sig}]
---
apiVersion: v1
kind: Service
metadata: {name: sticky, namespace: shop}
spec:
  clusterIP: 10.96.0.16
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Service
metadata: {name: dns, namespace: shop}
spec:
  clusterIP: 10.96.0.17
  selector: {app: dns}
  ports: [{name: dns, port: 53, protocol: UDP, targetPort: dns}, {name: dns-tcp, port: 53, targetPort: dns-tcp}]
---
apiVersion: v1
kind: Service
metadata: {name: empty, namespace: shop}
spec:
  type: NodePort
  clusterIP: 10.96.0.18
  selector: {app: nothing}
  ports: [{name: a, port: 80, nodePort: 30083}, {name: b, port: 53, protocol: UDP, nodePort: 30083}]
---
# No selector: endpoints would be managed by hand; there are none.
apiVersion: v1
kind: Service
metadata: {name: manual, namespace: shop}
spec:
  clusterIP: 10.96.0.19
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: headless, namespace: shop}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: external, namespace: shop}
spec:
  type: ExternalName
  externalName: db.example.com
---
apiVersion: v1
kind: Service
metadata: {name: v6, namespace: shop}
spec:
  clusterIP: "fd00::10"
  selector: {app: web}
  ports: [{port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: unallocated, namespace: shop}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80}]
"#;

const NODE_IPS: [[IpAddr; 1]; 2] = [[IpAddr::V4(Ipv4Addr::new(172, 18, 0, 2))], [IpAddr::V4(Ipv4Addr::new(172, 18, 1, 2))]];

fn cluster() -> Cluster {
    parse_str("cluster.yaml", CLUSTER).unwrap_or_else(|e| panic!("{e}"))
}

fn rendered(cluster: &Cluster, node: usize) -> String {
    let mut out = String::new();
    render(&mut out, cluster, &format!("node{node}"), &NODE_IPS[node], &IpFamily::BOTH);
    out
}

fn table(body: &str) -> String {
    format!("table inet nm-test {{\n{body}}}\n")
}

/// Chain name -> its lines, trimmed (comments and multi-line map elements included).
fn chains(text: &str) -> BTreeMap<String, Vec<String>> {
    let mut chains: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    // Open `{` of a multi-line map inside the current chain.
    let mut depth = 0;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("chain ").and_then(|l| l.strip_suffix(" {")) {
            chains.insert(name.to_owned(), Vec::new());
            current = Some(name.to_owned());
        } else if line == "}" && depth == 0 {
            current = None;
        } else if let Some(name) = &current {
            if line.ends_with('{') {
                depth += 1;
            } else if line == "}" {
                depth -= 1;
            }
            chains.get_mut(name).unwrap().push(line.to_owned());
        }
    }
    chains
}

/// The verdict of each map element of `chain`, by key (`10.96.0.10 . tcp . 80`, `tcp . 30080`).
fn elements(chains: &BTreeMap<String, Vec<String>>, chain: &str) -> BTreeMap<String, String> {
    let lines = chains.get(chain).into_iter().flatten().filter(|l| !l.starts_with('#') && !l.contains("vmap"));
    lines.filter_map(|l| l.trim_end_matches(',').split_once(" : ")).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// The `ip:port` (`[ip6]:port`) targets of the endpoint chains that `chain` picks among.
fn targets(chains: &BTreeMap<String, Vec<String>>, chain: &str) -> BTreeSet<String> {
    let lines = &chains[chain];
    let endpoints: BTreeSet<&str> = lines.iter().flat_map(|l| l.split("goto ").skip(1)).map(|s| s.split([',', ' ']).next().unwrap()).collect();
    endpoints
        .iter()
        .map(|ep| {
            chains[*ep]
                .iter()
                .find_map(|l| l.split_once("dnat ip to ").or_else(|| l.split_once("dnat ip6 to ")))
                .unwrap_or_else(|| panic!("{ep} has no DNAT"))
                .1
                .to_owned()
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// The chain a map element leads to (`goto svc-3` -> `svc-3`).
fn goto(verdict: &str) -> &str {
    verdict.strip_prefix("goto ").unwrap_or_else(|| panic!("{verdict:?} is no goto"))
}

#[test]
fn snapshot_of_a_small_cluster() {
    insta::assert_snapshot!(rendered(&cluster(), 0));
}

#[test]
fn cluster_ips_lead_to_every_endpoint_with_the_target_port_resolved_per_pod() {
    let c = chains(&rendered(&cluster(), 0));
    let served = elements(&c, "services");
    // Named port http: 8080 on web-0, 8081 on web-1; legacy-0 has no such name, other/web-x is
    // in another namespace.
    assert_eq!(targets(&c, goto(&served["10.96.0.10 . tcp . 80"])), set(&["10.244.0.10:8080", "10.244.1.10:8081"]));
    // A numeric targetPort needs no container port: legacy-0 serves it too.
    assert_eq!(targets(&c, goto(&served["10.96.0.11 . tcp . 80"])), set(&["10.244.0.10:8080", "10.244.0.12:8080", "10.244.1.10:8080"]));
    // Named ports resolve per protocol.
    assert_eq!(targets(&c, goto(&served["10.96.0.17 . udp . 53"])), set(&["10.244.0.11:5353"]));
    assert_eq!(targets(&c, goto(&served["10.96.0.17 . tcp . 53"])), set(&["10.244.0.11:5353"]));
    // Every endpoint chain masquerades hairpin traffic and DNATs for its protocol.
    let ep = c
        .iter()
        .find(|(name, lines)| name.starts_with("ep-") && lines.iter().any(|l| l.ends_with("dnat ip to 10.244.0.11:5353") && l.contains("udp")))
        .unwrap()
        .1;
    assert_eq!(ep[1..], ["ip saddr 10.244.0.11 meta mark set mark or 0x4000", "meta l4proto udp dnat ip to 10.244.0.11:5353"]);
}

#[test]
fn ports_without_endpoints_are_rejected_before_dnat_would_have_happened() {
    let text = rendered(&cluster(), 0);
    let c = chains(&text);
    let unserved = elements(&c, "service-no-endpoints");
    for key in ["10.96.0.10 . tcp . 443", "10.96.0.18 . tcp . 80", "10.96.0.18 . udp . 53", "10.96.0.19 . tcp . 80", "tcp . 30083", "udp . 30083"] {
        assert_eq!(unserved.get(key).map(String::as_str), Some("goto service-reject"), "{key}");
    }
    assert_eq!(c["service-reject"], ["meta l4proto tcp reject with tcp reset", "reject"]);
    for hook in ["forward", "input", "output"] {
        assert_eq!(
            c[&format!("service-filter-{hook}")],
            [format!("type filter hook {hook} priority filter - 10; policy accept;"), "ct state new jump service-no-endpoints".to_owned()]
        );
    }
    // Only external keys of ETP Local without a local endpoint are both served (short-circuits
    // for this node's pods and the node) and unserved (dropped for the rest).
    let served = elements(&c, "services");
    let both: Vec<(&String, &String)> = unserved.iter().filter(|(k, _)| served.contains_key(*k)).collect();
    assert_eq!(both.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["172.18.255.2 . sctp . 9000", "sctp . 30082"]);
    assert!(both.iter().all(|(k, v)| *v == "drop" && served[*k].starts_with("goto ext-")), "{both:?}");
}

#[test]
fn node_ports_and_load_balancer_ips() {
    let c = chains(&rendered(&cluster(), 0));
    let served = elements(&c, "services");
    assert!(c["services"].contains(&"ip daddr 172.18.0.2 meta l4proto . th dport vmap {".to_owned()), "{:?}", c["services"]);
    // externalTrafficPolicy Cluster: masquerade, then any endpoint.
    let ext = goto(&served["tcp . 30080"]);
    assert_eq!(c[ext][1], "meta mark set mark or 0x4000");
    assert_eq!(goto(&c[ext][2]), goto(&served["10.96.0.11 . tcp . 80"]), "the same endpoints as the cluster IP");
    assert_eq!(c[ext].len(), 3);
    assert_eq!(c["service-postrouting"][1], "meta mark & 0x4000 != 0 masquerade");
    // externalTrafficPolicy Local: the node port and the load-balancer IP (on the Service port)
    // lead to this node's endpoint, without masquerade; this node's pods and the node itself
    // are short-circuited to every endpoint (the node masqueraded).
    let ext = goto(&served["tcp . 30081"]);
    assert_eq!(goto(&served["172.18.255.1 . tcp . 80"]), ext);
    let local_chain = format!("{ext}-local").replace("ext-", "svc-");
    let cluster_chain = local_chain.trim_end_matches("-local").to_owned();
    assert_eq!(
        c[ext][1..],
        [
            format!("ip saddr {{ 10.244.0.10, 10.244.0.11, 10.244.0.12, 10.244.0.13 }} goto {cluster_chain}"),
            "fib saddr type local meta mark set mark or 0x4000".to_owned(),
            format!("fib saddr type local goto {cluster_chain}"),
            format!("goto {local_chain}"),
        ]
    );
    assert_eq!(targets(&c, &local_chain), set(&["10.244.0.10:8080"]));
    assert_eq!(targets(&c, &cluster_chain), set(&["10.244.0.10:8080", "10.244.1.10:8081"]));
    // The cluster IP of an ETP-Local Service is not affected.
    assert_eq!(goto(&served["10.96.0.12 . tcp . 80"]), cluster_chain);

    // sig-lb has endpoints on node1 only: external traffic to node0 is dropped, SCTP included,
    // while its cluster IP and the short-circuits still work.
    let unserved = elements(&c, "service-no-endpoints");
    assert_eq!(unserved["172.18.255.2 . sctp . 9000"], "drop");
    assert_eq!(unserved["sctp . 30082"], "drop");
    let ext = goto(&served["sctp . 30082"]);
    assert!(!c[ext].iter().any(|l| l.contains("-local")), "{:?}", c[ext]);
    assert_eq!(targets(&c, goto(&served["10.96.0.13 . sctp . 9000"])), set(&["10.244.1.11:9000"]));
    // On node1 the same Service has a local endpoint.
    let c1 = chains(&rendered(&cluster(), 1));
    let served1 = elements(&c1, "services");
    assert!(c1["services"].contains(&"ip daddr 172.18.1.2 meta l4proto . th dport vmap {".to_owned()));
    assert!(c1[goto(&served1["sctp . 30082"])].last().unwrap().ends_with("-local"));
    assert!(!elements(&c1, "service-no-endpoints").contains_key("sctp . 30082"));
}

#[test]
fn internal_traffic_policy_local_keeps_to_this_node() {
    let (c0, c1) = (chains(&rendered(&cluster(), 0)), chains(&rendered(&cluster(), 1)));
    let (served0, served1) = (elements(&c0, "services"), elements(&c1, "services"));
    let chain = goto(&served0["10.96.0.14 . tcp . 80"]);
    assert!(chain.ends_with("-local"));
    assert_eq!(targets(&c0, chain), set(&["10.244.0.10:8080"]));
    assert_eq!(targets(&c1, goto(&served1["10.96.0.14 . tcp . 80"])), set(&["10.244.1.10:8081"]));
    // sig-itp's only endpoint is on node1: dropped on node0 (not rejected: it has endpoints).
    assert!(!served0.contains_key("10.96.0.15 . sctp . 9000"));
    assert_eq!(elements(&c0, "service-no-endpoints")["10.96.0.15 . sctp . 9000"], "drop");
    assert_eq!(targets(&c1, goto(&served1["10.96.0.15 . sctp . 9000"])), set(&["10.244.1.11:9000"]));
}

#[test]
fn client_ip_affinity_keeps_a_client_on_its_endpoint() {
    let text = rendered(&cluster(), 0);
    let c = chains(&text);
    let chain = goto(&elements(&c, "services")["10.96.0.16 . tcp . 80"]).to_owned();
    let n = chain.trim_start_matches("svc-");
    // Each endpoint's set, named after the endpoint.
    let sets: Vec<String> = c[&chain][1..3].iter().map(|l| l.strip_prefix("ip saddr @").unwrap().split(' ').next().unwrap().to_owned()).collect();
    assert_eq!(
        c[&chain][1..],
        [
            format!("ip saddr @{} goto ep-{n}-0", sets[0]),
            format!("ip saddr @{} goto ep-{n}-1", sets[1]),
            format!("numgen random mod 2 vmap {{ 0 : goto ep-{n}-0, 1 : goto ep-{n}-1 }}"),
        ]
    );
    assert_ne!(sets[0], sets[1]);
    for (m, set) in sets.iter().enumerate() {
        assert!(set.starts_with("affinity-"), "{set}");
        assert!(text.contains(&format!("\tset {set} {{\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout 600s\n\t}}")), "{text}");
        let ep = &c[&format!("ep-{n}-{m}")];
        assert_eq!(ep[2], format!("update @{set} {{ ip saddr }}"), "the client is recorded before the DNAT: {ep:?}");
    }
    assert_eq!(text.matches("set affinity-").count(), 2, "only the sticky Service has affinity sets");
}

#[test]
fn headless_external_name_ipv6_and_unallocated_services() {
    let text = rendered(&cluster(), 0);
    assert!(!text.contains("shop/headless") && !text.contains("shop/external"), "no virtual address, nothing to render");
    // An IPv6 Service gets IPv6 rules; no pod here has an IPv6 address, so it has no endpoints.
    let chains = chains(&text);
    assert_eq!(elements(&chains, "service-no-endpoints").get("fd00::10 . tcp . 80").map(String::as_str), Some("goto service-reject"), "{text}");
    assert!(text.contains("\t# shop/web-lb: load-balancer IP fd00::255:1 is IPv6, a family the Service does not have: not rendered\n"), "{text}");
    assert!(text.contains("\t# shop/unallocated: no clusterIP"), "{text}");
    assert!(text.contains("\t# shop/unallocated:80/TCP: no nodePort"), "{text}");
}

/// Two dual-stack pods of `app: web` (one IPv4 only) on two nodes, a PreferDualStack NodePort
/// Service with ClientIP affinity and a load-balancer address per family, and an IPv6-only one.
const DUAL: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: shop, labels: {app: web}}
spec: {nodeName: node0, containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
status: {podIPs: [{ip: 10.244.0.10}, {ip: "fd00:10:244:0::10"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: shop, labels: {app: web}}
spec: {nodeName: node1, containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
status: {podIPs: [{ip: 10.244.1.10}, {ip: "fd00:10:244:1::10"}]}
---
apiVersion: v1
kind: Pod
metadata: {name: old-0, namespace: shop, labels: {app: web}}
spec: {nodeName: node0, containers: [{name: c, ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.244.0.11}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  type: LoadBalancer
  ipFamilyPolicy: PreferDualStack
  clusterIPs: [10.96.0.10, "fd00:10:96::10"]
  sessionAffinity: ClientIP
  selector: {app: web}
  ports: [{port: 80, targetPort: http, nodePort: 30080}]
status: {loadBalancer: {ingress: [{ip: 172.18.255.1}, {ip: "fd00:172:18:255::1"}]}}
---
apiVersion: v1
kind: Service
metadata: {name: web6, namespace: shop}
spec:
  ipFamilies: [IPv6]
  clusterIP: "fd00:10:96::11"
  selector: {app: web}
  ports: [{port: 81, targetPort: http}]
"#;

const DUAL_NODE_IPS: [&str; 2] = ["172.18.0.2", "fd00:172:18:0::2"];

#[test]
fn dual_stack_services_get_rules_per_family_leading_to_that_familys_endpoints() {
    let c = parse_str("dual.yaml", DUAL).unwrap_or_else(|e| panic!("{e}"));
    let node_ips: Vec<IpAddr> = DUAL_NODE_IPS.iter().map(|ip| ip.parse().unwrap()).collect();
    let mut text = String::new();
    render(&mut text, &c, "node0", &node_ips, &IpFamily::BOTH);
    let chains = chains(&text);
    let services = &chains["services"];
    assert!(services.iter().any(|l| l == "ip6 daddr fd00:172:18::2 meta l4proto . th dport vmap {"), "node ports on the node's IPv6 address: {services:?}");
    let served = elements(&chains, "services");
    assert_eq!(goto(&served["10.96.0.10 . tcp . 80"]), "svc-0");
    assert_eq!(goto(&served["fd00:10:96::10 . tcp . 80"]), "svc6-0");
    assert_eq!(goto(&served["fd00:172:18:255::1 . tcp . 80"]), "ext6-0");
    assert_eq!(goto(&served["fd00:10:96::11 . tcp . 81"]), "svc6-1");
    // IPv4 has three endpoints (old-0 too), IPv6 the two with an IPv6 address.
    assert_eq!(targets(&chains, "svc-0").len(), 3, "{text}");
    assert_eq!(targets(&chains, "svc6-0"), set(&["[fd00:10:244::10]:8080", "[fd00:10:244:1::10]:8080"]), "{text}");
    let ep = &chains["ep6-0-1"];
    assert!(ep.iter().any(|l| l == "ip6 saddr fd00:10:244:1::10 meta mark set mark or 0x4000"), "hairpin per family: {ep:?}");
    assert!(ep.iter().any(|l| l.starts_with("update @affinity-") && l.ends_with("{ ip6 saddr }")), "affinity per family: {ep:?}");
    assert!(ep.iter().any(|l| l == "meta l4proto tcp dnat ip6 to [fd00:10:244:1::10]:8080"), "{ep:?}");
    assert!(text.contains("\t\ttype ipv6_addr\n"), "{text}");
    // A proxy serving IPv4 alone (the single-family-services fault) renders no IPv6 rule.
    let mut v4 = String::new();
    render(&mut v4, &c, "node0", &node_ips, &[IpFamily::IPv4]);
    assert!(!v4.contains("ip6") && !v4.contains("fd00") && v4.contains("10.96.0.10 . tcp . 80"), "{v4}");
    if privileged(false) {
        let mut namespaces = Namespaces::new("dual");
        let ns = namespaces.add("n");
        let out = Namespaces::nft(&ns, &["-c", "-f", "-"], &table(&text));
        assert!(out.status.success(), "nft -c rejected the dual-stack ruleset: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn node_ports_answer_on_every_local_address_without_node_ips() {
    let mut out = String::new();
    render(&mut out, &cluster(), "node0", &[], &IpFamily::BOTH);
    assert!(out.contains("\t\tfib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap {\n"), "{out}");
    let two = [Ipv4Addr::new(172, 18, 0, 2), Ipv4Addr::new(192, 168, 0, 2)].map(IpAddr::V4);
    out.clear();
    render(&mut out, &cluster(), "node0", &two, &IpFamily::BOTH);
    assert!(out.contains("\t\tip daddr { 172.18.0.2, 192.168.0.2 } meta l4proto . th dport vmap {\n"), "{out}");
}

#[test]
fn nothing_to_render_renders_nothing() {
    let mut c = cluster();
    c.services.retain(|s| s.headless || s.external_name.is_some());
    assert_eq!(rendered(&c, 0), "");
    assert_eq!(rendered(&netmatrix_model::Cluster::default(), 0), "");
}

#[test]
fn a_reused_address_is_rendered_once() {
    let mut c = cluster();
    let mut copy = c.services.iter().find(|s| s.name == "web").unwrap().clone();
    copy.name = "web-copy".into();
    c.services.push(copy);
    let text = rendered(&c, 0);
    assert_eq!(text.matches("\t\t\t10.96.0.10 . tcp . 80 :").count(), 1, "{text}");
    assert!(text.contains("\t# shop/web-copy:80/TCP: 10.96.0.10 . tcp . 80 is taken by an earlier Service, not rendered\n"), "{text}");
}

#[test]
fn the_same_input_in_any_order_renders_the_same_text() {
    let c = cluster();
    let text = rendered(&c, 0);
    let mut permuted = c.clone();
    permuted.pods.reverse();
    permuted.services.reverse();
    for s in &mut permuted.services {
        s.ports.reverse();
    }
    assert_eq!(rendered(&permuted, 0), text);
}

// --- The kernel -------------------------------------------------------------------------------

/// Whether kernel tests can run (root, `nft`, `ip`, and `python3` if `packets`); if not, why.
fn privileged(packets: bool) -> bool {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: network namespaces need root (CI runs as root)");
        return false;
    }
    let tools: &[(&str, &str)] = if packets { &[("nft", "--version"), ("ip", "-V"), ("python3", "--version")] } else { &[("nft", "--version"), ("ip", "-V")] };
    for (tool, flag) in tools {
        if !Command::new(tool).arg(flag).output().is_ok_and(|o| o.status.success()) {
            eprintln!("SKIPPED: `{tool}` not found");
            return false;
        }
    }
    true
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// Network namespaces `nm-svct-<pid>-<tag>` and the processes started in them; all killed and
/// deleted when dropped, also on panic.
struct Namespaces {
    prefix: String,
    names: Vec<String>,
    children: Vec<Child>,
}

impl Namespaces {
    fn new(test: &str) -> Self {
        Namespaces { prefix: format!("nm-svct-{}-{test}", std::process::id()), names: Vec::new(), children: Vec::new() }
    }

    fn add(&mut self, tag: &str) -> String {
        let name = format!("{}-{tag}", self.prefix);
        run("ip", &["netns", "add", &name]);
        self.names.push(name.clone());
        run("ip", &["-n", &name, "link", "set", "lo", "up"]);
        name
    }

    /// `command` run inside namespace `ns`.
    fn command(ns: &str, program: &str, args: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns, program]).args(args);
        command
    }

    /// Runs `nft args...` inside `ns` with `script` on stdin.
    fn nft(ns: &str, args: &[&str], script: &str) -> Output {
        let mut child = Self::command(ns, "nft", args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "delete", name]).output();
        }
    }
}

#[test]
fn the_kernel_accepts_the_rulesets() {
    if !privileged(false) {
        return;
    }
    let mut namespaces = Namespaces::new("check");
    let ns = namespaces.add("n");
    let c = cluster();
    let mut scripts: Vec<(String, String)> = (0..2).map(|node| (format!("node{node}"), table(&rendered(&c, node)))).collect();
    let mut without_node_ips = String::new();
    render(&mut without_node_ips, &c, "node0", &[], &IpFamily::BOTH);
    scripts.push(("node0 without node IPs".into(), table(&without_node_ips)));
    // Beside the NetworkPolicy chains, as the lab applies them: no name or hook clashes.
    let policy =
        parse_str("p.yaml", "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: shop}\nspec: {podSelector: {}}\n")
            .unwrap();
    let mut both = c.clone();
    both.policies = policy.policies;
    let mut body = String::new();
    netmatrix_lab::nft::policy::render(&mut body, &both, "node0");
    assert!(body.contains("policy-ingress"), "the policy renderer rendered nothing to combine with");
    body.push_str(&rendered(&both, 0));
    scripts.push(("node0 with a NetworkPolicy".into(), table(&body)));
    for (what, script) in &scripts {
        let out = Namespaces::nft(&ns, &["-c", "-f", "-"], script);
        assert!(out.status.success(), "{what}: nft -c rejected the ruleset: {}\n{script}", String::from_utf8_lossy(&out.stderr));
    }

    // Applied for real, then read back from the kernel.
    let out = Namespaces::nft(&ns, &["-f", "-"], &scripts[0].1);
    assert!(out.status.success(), "nft -f: {}", String::from_utf8_lossy(&out.stderr));
    let out = Namespaces::nft(&ns, &["list", "table", "inet", "nm-test"], "");
    assert!(out.status.success(), "nft list: {}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "type nat hook prerouting priority dstnat; policy accept;",
        "type nat hook output priority -100; policy accept;",
        "type filter hook forward priority filter - 10; policy accept;",
        "10.96.0.10 . tcp . 80 : goto svc-",
        "meta l4proto sctp dnat ip to 10.244.1.11:9000",
        "flags dynamic,timeout",
        "update @affinity-",
        "numgen random mod 2 vmap",
        "reject with tcp reset",
        "fib saddr type local goto svc-",
    ] {
        assert!(listed.contains(expected), "{expected:?} not in the kernel's table:\n{listed}");
    }
}

// --- Packets ----------------------------------------------------------------------------------

/// Serves TCP 8080 and UDP 5353, answering each connection or datagram with `<name> <client ip>`.
const SERVER: &str = r#"
import socket, sys, threading
name = sys.argv[1]
tcp = socket.socket()
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("0.0.0.0", 8080))
tcp.listen(128)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("0.0.0.0", 5353))
def serve_udp():
    while True:
        _, peer = udp.recvfrom(100)
        udp.sendto(f"{name} {peer[0]}".encode(), peer)
threading.Thread(target=serve_udp, daemon=True).start()
print("ready", flush=True)
while True:
    conn, peer = tcp.accept()
    try:
        conn.sendall(f"{name} {peer[0]}".encode())
    finally:
        conn.close()
"#;

/// Reads `tcp|udp host port count timeout` lines; prints per attempt `ok <name> <client ip>`,
/// `err timeout` or `err <errno> <seconds>`.
const CLIENT: &str = r#"
import errno, socket, sys, time
for line in sys.stdin:
    proto, host, port, count, timeout = line.split()
    for _ in range(int(count)):
        start = time.monotonic()
        try:
            if proto == "tcp":
                s = socket.create_connection((host, int(port)), timeout=float(timeout))
                data = b""
                while chunk := s.recv(100):
                    data += chunk
            else:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.settimeout(float(timeout))
                s.connect((host, int(port)))
                s.send(b"?")
                data = s.recv(100)
            s.close()
            print("ok", data.decode(), flush=True)
        except TimeoutError:
            print("err timeout", flush=True)
        except OSError as e:
            print("err", errno.errorcode.get(e.errno, e.errno), f"{time.monotonic() - start:.3f}", flush=True)
"#;

/// One node, two pods on its bridge. In the model p11 lives on node1, so that traffic policy
/// Local has a remote endpoint to leave out; the packets do not care where the model says it is.
const PACKET_CLUSTER: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: p10, namespace: t, labels: {app: a, both: "yes"}}
spec:
  nodeName: node0
  containers: [{name: c, ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 5353, protocol: UDP}]}]
status: {podIP: 10.244.0.10}
---
apiVersion: v1
kind: Pod
metadata: {name: p11, namespace: t, labels: {app: b, both: "yes"}}
spec:
  nodeName: node1
  containers: [{name: c, ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 5353, protocol: UDP}]}]
status: {podIP: 10.244.0.11}
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Service, metadata: {name: both, namespace: t}, spec: {clusterIP: 10.96.0.10, selector: {both: "yes"}, ports: [{port: 80, targetPort: http}]}}
- {apiVersion: v1, kind: Service, metadata: {name: only-b, namespace: t}, spec: {clusterIP: 10.96.0.11, selector: {app: b}, ports: [{port: 80, targetPort: 8080}]}}
- {apiVersion: v1, kind: Service, metadata: {name: self, namespace: t}, spec: {clusterIP: 10.96.0.12, selector: {app: a}, ports: [{port: 80, targetPort: http}]}}
- {apiVersion: v1, kind: Service, metadata: {name: np, namespace: t}, spec: {type: NodePort, clusterIP: 10.96.0.13, selector: {app: b}, ports: [{port: 80, targetPort: 8080, nodePort: 30080}]}}
- {apiVersion: v1, kind: Service, metadata: {name: np-local, namespace: t}, spec: {type: NodePort, externalTrafficPolicy: Local, clusterIP: 10.96.0.14, selector: {app: b}, ports: [{port: 80, targetPort: 8080, nodePort: 30081}]}}
- {apiVersion: v1, kind: Service, metadata: {name: lb, namespace: t}, spec: {type: LoadBalancer, clusterIP: 10.96.0.15, selector: {app: b}, ports: [{port: 80, targetPort: 8080, nodePort: 30082}]}, status: {loadBalancer: {ingress: [{ip: 172.18.255.1}]}}}
- {apiVersion: v1, kind: Service, metadata: {name: sticky, namespace: t}, spec: {clusterIP: 10.96.0.16, sessionAffinity: ClientIP, selector: {both: "yes"}, ports: [{port: 80, targetPort: 8080}]}}
- {apiVersion: v1, kind: Service, metadata: {name: itp, namespace: t}, spec: {clusterIP: 10.96.0.17, internalTrafficPolicy: Local, selector: {both: "yes"}, ports: [{port: 80, targetPort: 8080}]}}
- {apiVersion: v1, kind: Service, metadata: {name: itp-remote, namespace: t}, spec: {clusterIP: 10.96.0.18, internalTrafficPolicy: Local, selector: {app: b}, ports: [{port: 80, targetPort: 8080}]}}
- {apiVersion: v1, kind: Service, metadata: {name: dns, namespace: t}, spec: {clusterIP: 10.96.0.19, selector: {app: b}, ports: [{port: 53, protocol: UDP, targetPort: dns}]}}
- {apiVersion: v1, kind: Service, metadata: {name: none, namespace: t}, spec: {clusterIP: 10.96.0.20, selector: {app: nobody}, ports: [{name: tcp, port: 80}, {name: udp, port: 53, protocol: UDP}]}}
"#;

const DEADLINE: Duration = Duration::from_secs(30);

/// Output lines of `child`; a panic, with the lines so far, when it does not finish by the
/// deadline (it is then killed).
fn output_by_deadline(mut child: Child, what: &str) -> Vec<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + DEADLINE;
    let mut lines = Vec::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) => lines.push(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what}: not done within {DEADLINE:?}; answers so far: {lines:#?}");
            }
        }
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{what}: {status}");
    lines
}

/// Starts the server of pod `name` in `ns` and waits (bounded) until it listens.
fn start_server(namespaces: &mut Namespaces, ns: &str, name: &str) {
    let mut child = Namespaces::command(ns, "python3", &["-c", SERVER, name]).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    namespaces.children.push(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(DEADLINE).unwrap_or_else(|_| panic!("server {name} not ready within {DEADLINE:?}"));
    assert_eq!(line.trim(), "ready", "server {name}");
}

#[test]
fn packets_follow_the_service_rules() {
    if !privileged(true) {
        return;
    }
    let mut namespaces = Namespaces::new("pk");
    let node = namespaces.add("node");
    let ip = |args: &[&str]| run("ip", &[&["-n", &node][..], args].concat());
    ip(&["link", "add", "br0", "type", "bridge"]);
    ip(&["addr", "add", "10.244.0.1/24", "dev", "br0"]);
    ip(&["link", "set", "br0", "up"]);
    // An uplink holding the node IP and the default route: unserved virtual addresses are then
    // routed (and meet the forward hook) instead of failing the route lookup.
    ip(&["link", "add", "up0", "type", "veth", "peer", "name", "up1"]);
    ip(&["addr", "add", "172.18.0.2/24", "dev", "up0"]);
    ip(&["link", "set", "up0", "up"]);
    ip(&["link", "set", "up1", "up"]);
    ip(&["route", "add", "default", "via", "172.18.0.1"]);
    for (key, value) in [("net.ipv4.ip_forward", "1"), ("net.bridge.bridge-nf-call-iptables", "1")] {
        let out = Namespaces::command(&node, "sysctl", &["-qw", &format!("{key}={value}")]).output().unwrap();
        assert!(out.status.success(), "sysctl {key}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut pods = Vec::new();
    for (name, address) in [("p10", "10.244.0.10"), ("p11", "10.244.0.11")] {
        let ns = namespaces.add(name);
        let link = format!("v{name}");
        ip(&["link", "add", &link, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
        // Hairpin: traffic a pod sends to a Service that DNATs back to the pod itself leaves the
        // bridge by the port it came in (CNI bridge plugins set this for the same reason).
        ip(&["link", "set", &link, "master", "br0", "up"]);
        ip(&["link", "set", &link, "type", "bridge_slave", "hairpin", "on"]);
        run("ip", &["-n", &ns, "addr", "add", &format!("{address}/24"), "dev", "eth0"]);
        run("ip", &["-n", &ns, "link", "set", "eth0", "up"]);
        run("ip", &["-n", &ns, "route", "add", "default", "via", "10.244.0.1"]);
        start_server(&mut namespaces, &ns, name);
        pods.push(ns);
    }
    let cluster = parse_str("packets.yaml", PACKET_CLUSTER).unwrap_or_else(|e| panic!("{e}"));
    let mut body = String::new();
    render(&mut body, &cluster, "node0", &[IpAddr::V4(Ipv4Addr::new(172, 18, 0, 2))], &IpFamily::BOTH);
    let out = Namespaces::nft(&node, &["-f", "-"], &table(&body));
    assert!(out.status.success(), "nft -f: {}", String::from_utf8_lossy(&out.stderr));

    let answers = probe(
        &pods[0],
        &[
            ("tcp", "10.96.0.10", 80, 40, 2.0),
            ("tcp", "10.96.0.11", 80, 10, 2.0),
            ("tcp", "10.96.0.12", 80, 3, 2.0),
            ("tcp", "172.18.0.2", 30080, 3, 2.0),
            ("tcp", "172.18.0.2", 30081, 3, 2.0),
            ("tcp", "172.18.255.1", 80, 3, 2.0),
            ("tcp", "10.96.0.16", 80, 20, 2.0),
            ("tcp", "10.96.0.17", 80, 10, 2.0),
            ("tcp", "10.96.0.18", 80, 1, 1.0),
            ("udp", "10.96.0.19", 53, 3, 2.0),
            ("tcp", "10.96.0.20", 80, 3, 2.0),
            ("udp", "10.96.0.20", 53, 3, 2.0),
        ],
    );
    let distinct = |key: &str| answers[key].iter().cloned().collect::<BTreeSet<String>>();
    let refused_at_once = |key: &str, answers: &[String]| {
        for answer in answers {
            let seconds: f32 = answer.strip_prefix("err ECONNREFUSED ").unwrap_or_else(|| panic!("{key}: {answer}")).parse().unwrap();
            assert!(seconds < 0.5, "{key}: refused only after {seconds}s");
        }
    };

    // Both endpoints answer a cluster IP, p10 reaching itself (hairpin, masqueraded to the bridge).
    assert_eq!(distinct("tcp 10.96.0.10:80"), set(&["ok p10 10.244.0.1", "ok p11 10.244.0.10"]));
    // One endpoint: only it answers, and sees the client's own address.
    assert_eq!(distinct("tcp 10.96.0.11:80"), set(&["ok p11 10.244.0.10"]));
    assert_eq!(distinct("tcp 10.96.0.12:80"), set(&["ok p10 10.244.0.1"]), "hairpin");
    // Node port, externalTrafficPolicy Cluster: masqueraded.
    assert_eq!(distinct("tcp 172.18.0.2:30080"), set(&["ok p11 10.244.0.1"]));
    // Node port, Local: p11 is "remote", but traffic from this node's pods is short-circuited to
    // every endpoint, keeping its source.
    assert_eq!(distinct("tcp 172.18.0.2:30081"), set(&["ok p11 10.244.0.10"]));
    assert_eq!(distinct("tcp 172.18.255.1:80"), set(&["ok p11 10.244.0.1"]), "load-balancer IP, Cluster: masqueraded");
    // ClientIP affinity: one endpoint for all 20 connections (by chance: 2 in a million).
    assert_eq!(distinct("tcp 10.96.0.16:80").len(), 1, "{:?}", answers["tcp 10.96.0.16:80"]);
    // internalTrafficPolicy Local: only the endpoint on this node; none here: dropped.
    assert_eq!(distinct("tcp 10.96.0.17:80"), set(&["ok p10 10.244.0.1"]));
    assert_eq!(distinct("tcp 10.96.0.18:80"), set(&["err timeout"]));
    assert_eq!(distinct("udp 10.96.0.19:53"), set(&["ok p11 10.244.0.10"]));
    // No endpoints: refused at once (TCP reset, ICMP port unreachable), not a timeout.
    for key in ["tcp 10.96.0.20:80", "udp 10.96.0.20:53"] {
        refused_at_once(key, &answers[key]);
    }

    // From the node itself (output hook): the source is the node IP, except through an
    // ETP-Local node port, where it is masqueraded; rejects happen in the output hook.
    let answers = probe(
        &node,
        &[("tcp", "10.96.0.11", 80, 2, 2.0), ("tcp", "172.18.0.2", 30081, 2, 2.0), ("tcp", "10.96.0.17", 80, 2, 2.0), ("tcp", "10.96.0.20", 80, 2, 2.0)],
    );
    let distinct = |key: &str| answers[key].iter().cloned().collect::<BTreeSet<String>>();
    assert_eq!(distinct("tcp 10.96.0.11:80"), set(&["ok p11 172.18.0.2"]));
    assert_eq!(distinct("tcp 172.18.0.2:30081"), set(&["ok p11 10.244.0.1"]));
    assert_eq!(distinct("tcp 10.96.0.17:80"), set(&["ok p10 172.18.0.2"]), "internalTrafficPolicy Local applies to the node too");
    refused_at_once("tcp 10.96.0.20:80", &answers["tcp 10.96.0.20:80"]);
}

/// Runs `probes` (protocol, host, port, attempts, timeout in seconds) from namespace `ns` in one
/// client process; the answers of each probe, keyed `proto host:port`.
fn probe(ns: &str, probes: &[(&str, &str, u16, usize, f32)]) -> BTreeMap<String, Vec<String>> {
    let input: String = probes.iter().map(|(p, h, port, n, t)| format!("{p} {h} {port} {n} {t}\n")).collect();
    let mut client = Namespaces::command(ns, "python3", &["-c", CLIENT]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    client.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let lines = output_by_deadline(client, &format!("client in {ns}"));
    assert_eq!(lines.len(), probes.iter().map(|p| p.3).sum::<usize>(), "{lines:#?}");
    let mut answers = BTreeMap::new();
    let mut rest = lines.as_slice();
    for (proto, host, port, count, _) in probes {
        let (now, later) = rest.split_at(*count);
        answers.insert(format!("{proto} {host}:{port}"), now.to_vec());
        rest = later;
    }
    answers
}
