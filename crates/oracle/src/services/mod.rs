//! Service semantics: which backends a source pod reaches through each frontend of a Service
//! (its cluster IP, its node port on each node, its load-balancer and external IPs, its
//! ExternalName), with NetworkPolicy applied to the translated connection. Pure: no I/O.
//!
//! Where Kubernetes leaves the outcome to the implementation, an implementation profile
//! ([`Profile`]) decides, or the cell is undefined with the sentence that leaves it open.

mod decide;
mod endpoints;
mod policy;
mod scope;

use std::net::IpAddr;

pub use decide::evaluate;
use netmatrix_model::{Cluster, IpFamily, Pod, Protocol, ServiceType};

use crate::profile::Profile;
use crate::reach::Reachability;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrontendKind {
    ClusterIp,
    /// The Service's node port on `cluster.nodes[node]`.
    NodePort {
        node: usize,
    },
    LoadBalancer,
    /// One of `spec.externalIPs`.
    ExternalIp,
    ExternalName,
}

/// One address and port a client connects to in order to reach a Service port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frontend {
    /// Index into `cluster.services`.
    pub service: usize,
    /// Index into that Service's `ports`.
    pub port: usize,
    pub kind: FrontendKind,
    /// What a client connects to; `None` for ExternalName (a DNS name). Its family is the
    /// frontend's: it leads to the endpoints' addresses of that family only.
    pub address: Option<IpAddr>,
    /// The Service port, or the node port.
    pub dst_port: u16,
    pub protocol: Protocol,
}

impl Frontend {
    /// `svc:ns/name:80/TCP` for the cluster IP (`svc:ns/name:80/TCP[ClusterIP fd00:10:96::a]`
    /// where the Service has two); other kinds add where they are reached:
    /// `[NodePort node0 172.18.0.2:30080]`, `[LoadBalancer 172.18.255.1]`,
    /// `[ExternalIP 198.51.100.7]`, `[ExternalName db.example.com]`.
    pub fn family(&self) -> Option<IpFamily> {
        self.address.as_ref().map(IpFamily::of)
    }

    pub fn label(&self, cluster: &Cluster) -> String {
        let s = &cluster.services[self.service];
        let port = &s.ports[self.port];
        let base = format!("svc:{}/{}:{}/{}", s.namespace, s.name, port.port, port.protocol);
        let address = self.address.map(|a| a.to_string()).unwrap_or_default();
        match self.kind {
            FrontendKind::ClusterIp if s.cluster_ips.len() > 1 => format!("{base}[ClusterIP {address}]"),
            FrontendKind::ClusterIp => base,
            FrontendKind::NodePort { node } => format!("{base}[NodePort {} {}]", cluster.nodes[node].name, socket(&address, self.dst_port)),
            FrontendKind::LoadBalancer => format!("{base}[LoadBalancer {address}]"),
            FrontendKind::ExternalIp => format!("{base}[ExternalIP {address}]"),
            FrontendKind::ExternalName => format!("{base}[ExternalName {}]", s.external_name.as_deref().unwrap_or_default()),
        }
    }
}

fn socket(address: &str, port: u16) -> String {
    if address.contains(':') { format!("[{address}]:{port}") } else { format!("{address}:{port}") }
}

/// Every frontend of every Service, by Service, then port, then family (the Service's order),
/// then kind (cluster IP, node port on each node in `cluster.nodes` order, load-balancer IPs,
/// external IPs). Headless Services have none: "a headless Service ... kube-proxy does not
/// handle these Services, and there is no load balancing or proxying done by the platform"
/// (Service docs, headless Services). A dual-stack Service has a frontend of each kind per
/// family: "Services can be dual-stack" with a cluster IP per family (dual-stack docs), and the
/// proxy of each family serves node ports on the nodes' addresses of it. Node ports answer on
/// each node's first address of the family (kube-proxy's nftables default, the node's primary
/// IPs; a node without one has none); unallocated cluster IPs and node ports give no frontend.
pub fn frontends(cluster: &Cluster) -> Vec<Frontend> {
    let cluster_families = cluster.families_primary_first();
    let mut out = Vec::new();
    for (s, service) in cluster.services.iter().enumerate() {
        if service.headless {
            continue;
        }
        // A Service the cluster cannot give its families (the API server would refuse it) has
        // the families it asks for.
        let families = service.families(&cluster_families).unwrap_or_else(|_| service.ip_families.clone());
        for (p, port) in service.ports.iter().enumerate() {
            let frontend = |kind, address, dst_port| Frontend { service: s, port: p, kind, address, dst_port, protocol: port.protocol };
            if service.service_type == ServiceType::ExternalName {
                out.push(frontend(FrontendKind::ExternalName, None, port.port));
                continue;
            }
            for &family in &families {
                let of_family = |ip: &&IpAddr| IpFamily::of(ip) == family;
                if let Some(&ip) = service.cluster_ips.iter().find(of_family) {
                    out.push(frontend(FrontendKind::ClusterIp, Some(ip), port.port));
                }
                if let Some(node_port) = port.node_port.filter(|_| service.service_type.has_node_ports()) {
                    for (n, node) in cluster.nodes.iter().enumerate() {
                        if let Some(&ip) = node.addresses.iter().find(of_family) {
                            out.push(frontend(FrontendKind::NodePort { node: n }, Some(ip), node_port));
                        }
                    }
                }
                if service.service_type == ServiceType::LoadBalancer {
                    for &ip in service.load_balancer_ips.iter().filter(of_family) {
                        out.push(frontend(FrontendKind::LoadBalancer, Some(ip), port.port));
                    }
                }
                // "Traffic that ingresses into the cluster with the external IP (as destination IP),
                // on the Service port, will be routed to one of the Service endpoints" (Service docs).
                for &ip in service.external_ips.iter().filter(of_family) {
                    out.push(frontend(FrontendKind::ExternalIp, Some(ip), port.port));
                }
            }
        }
    }
    out
}

/// Finds a Service by `svc:namespace/name` or `svc:name` (namespace `default`).
pub fn find_service(cluster: &Cluster, text: &str) -> Result<usize, String> {
    let path = text.strip_prefix("svc:").ok_or_else(|| format!("{text:?} is no Service (write svc:namespace/name)"))?;
    let (namespace, name) = path.split_once('/').unwrap_or(("default", path));
    cluster.services.iter().position(|s| s.namespace == namespace && s.name == name).ok_or_else(|| format!("no Service {namespace}/{name} in the input"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The source connects, and exactly the listed backends may answer.
    Allow,
    /// No backend answers: no endpoints, none usable under the traffic policy, or all denied
    /// by NetworkPolicy.
    Deny,
    /// The specification leaves the outcome open (`#`) and the profile does not decide it: an
    /// ExternalName, a choice between answering and silent endpoints, ...
    Undefined,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceVerdict {
    pub verdict: Verdict,
    /// Pod indices (`cluster.pods`) that may answer this source.
    pub backends: Vec<usize>,
    /// EndpointSlice addresses outside the input's pods that may answer this source.
    pub addresses: Vec<IpAddr>,
    /// The source address backends see when the connection is masqueraded: the translating
    /// node's primary address. (A backend on that node itself sees the node's address on the
    /// pod network instead, 10.244.n.1 in the lab; `reasons` say so.)
    pub snat: Option<IpAddr>,
    /// Sentences for `--explain`; for Deny and Undefined the last one is the decisive reason.
    pub reasons: Vec<String>,
}

impl ServiceVerdict {
    /// The backends that may answer, named as connlist names them: pods by [`endpoint_name`],
    /// addresses outside the input as `IP[External]`; sorted, each once.
    pub fn backend_names(&self, cluster: &Cluster) -> Vec<String> {
        let pods = self.backends.iter().map(|&b| endpoint_name(&cluster.pods[b]));
        let mut names: Vec<String> = pods.chain(self.addresses.iter().map(|ip| format!("{ip}[External]"))).collect();
        names.sort();
        names.dedup();
        names
    }
}

pub(crate) fn pod_name(pod: &Pod) -> String {
    format!("{}/{}", pod.namespace, pod.name)
}

/// One line of `analyze --services`: a source pod and a frontend it may use.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ServiceLine {
    /// The source as connlist names it: its workload, or `ns/pod[Pod]` for one pod of several.
    pub src: String,
    pub frontend: String,
    pub verdict: Verdict,
    /// Named like `src`, sorted.
    pub backends: Vec<String>,
    pub snat: Option<IpAddr>,
    /// Why the cell is undefined.
    pub reason: Option<String>,
}

/// A pod's connlist name: its workload when the pod stands for it, else the pod itself.
fn endpoint_name(pod: &Pod) -> String {
    if pod.workload.name == pod.name { pod.workload.to_string() } else { format!("{}/{}[Pod]", pod.namespace, pod.name) }
}

/// Every (source pod, frontend) cell that is not denied, sorted by source then frontend order;
/// duplicates (pods of one workload that agree) appear once.
pub fn service_lines(cluster: &Cluster, reach: &mut Reachability, profile: Profile) -> Vec<ServiceLine> {
    let fronts = frontends(cluster);
    let mut sources: Vec<(String, usize)> = cluster.pods.iter().enumerate().map(|(i, p)| (endpoint_name(p), i)).collect();
    sources.sort();
    let mut lines: Vec<ServiceLine> = Vec::new();
    for (src, pod) in sources {
        for f in &fronts {
            let v = evaluate(cluster, reach, pod, f, profile);
            if v.verdict == Verdict::Deny {
                continue;
            }
            let backends = v.backend_names(cluster);
            let reason = (v.verdict == Verdict::Undefined).then(|| v.reasons.last().cloned().unwrap_or_default());
            let line = ServiceLine { src: src.clone(), frontend: f.label(cluster), verdict: v.verdict, backends, snat: v.snat, reason };
            if !lines.contains(&line) {
                lines.push(line);
            }
        }
    }
    lines
}

/// `--explain SRC svc:ns/name [PORT/PROTO]`: one frontend's verdict with its reasons.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FrontendExplanation {
    pub src: String,
    pub frontend: String,
    pub verdict: Verdict,
    pub backends: Vec<String>,
    pub snat: Option<IpAddr>,
    pub reasons: Vec<String>,
}

/// Every frontend of Service `service` (only those of the Service port `port`, if given) as seen
/// from `src_pod`.
pub fn explain(
    cluster: &Cluster,
    reach: &mut Reachability,
    src_pod: usize,
    service: usize,
    port: Option<(u16, Protocol)>,
    profile: Profile,
) -> Vec<FrontendExplanation> {
    let selected = |f: &Frontend| f.service == service && port.is_none_or(|(n, p)| cluster.services[service].ports[f.port].port == n && f.protocol == p);
    frontends(cluster)
        .into_iter()
        .filter(selected)
        .map(|f| {
            let v = evaluate(cluster, reach, src_pod, &f, profile);
            let backends = v.backend_names(cluster);
            FrontendExplanation {
                src: endpoint_name(&cluster.pods[src_pod]),
                frontend: f.label(cluster),
                verdict: v.verdict,
                backends,
                snat: v.snat,
                reasons: v.reasons,
            }
        })
        .collect()
}

/// Objects the tests of this module and of `endpoints` share.
#[cfg(test)]
mod fixtures {
    pub const SERVICE: &str = "apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: x}\nspec: {clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http}]}\n";

    /// A pod of the Service `web` named `name` in state `state`: `ready`, `not-ready`,
    /// `terminating` (ready, deletion requested), `no-port` (without the named target port).
    pub fn pod(i: usize, name: &str, state: &str) -> String {
        let port = if state == "no-port" { "other" } else { "http" };
        let deleted = if state == "terminating" { ", deletionTimestamp: \"2026-12-01T10:00:00Z\"" } else { "" };
        let ready = if state == "not-ready" { "False" } else { "True" };
        format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: x, labels: {{app: web}}{deleted}}}\nspec: {{containers: [{{ports: [{{name: {port}, containerPort: 8080}}]}}]}}\nstatus: {{podIP: 10.0.0.{}, conditions: [{{type: Ready, status: \"{ready}\"}}]}}\n",
            i + 10
        )
    }
}

#[cfg(test)]
mod tests {
    use netmatrix_model::parse_str;

    use super::*;
    use crate::Options;

    use super::fixtures::{SERVICE, pod};

    /// (name, state) of pods of `web`, as [`pod`] takes them.
    type Pods<'a> = &'a [(&'a str, &'a str)];

    #[test]
    fn terminating_endpoints_serve_only_when_none_is_ready() {
        // KEP-1669: kube-proxy falls back to serving terminating endpoints without ready ones.
        let cases: [(Pods, Verdict, &[&str], &str); 4] = [
            (&[("up", "ready"), ("leaving", "terminating")], Verdict::Allow, &["up"], "endpoints: x/up (port 8080)"),
            (&[("leaving", "terminating")], Verdict::Allow, &["leaving"], "no ready endpoint: terminating endpoints that still serve are used"),
            (&[("slow", "not-ready")], Verdict::Deny, &[], "has no endpoints: rejected"),
            (&[("noport", "no-port")], Verdict::Deny, &[], "has no endpoints: rejected"),
        ];
        for (pods, verdict, backends, reason) in cases {
            let mut all = pods.to_vec();
            all.push(("client", "no-port"));
            let text: String = all.iter().enumerate().map(|(i, (name, state))| pod(i, name, state)).collect();
            let c = parse_str("svc.yaml", &format!("{SERVICE}{text}")).unwrap_or_else(|e| panic!("{e}"));
            let client = c.pods.iter().position(|p| p.name == "client").unwrap();
            let mut reach = Reachability::compute(&c, Options::default());
            let v = evaluate(&c, &mut reach, client, &frontends(&c)[0], Profile::Spec);
            let got: Vec<&str> = v.backends.iter().map(|&b| c.pods[b].name.as_str()).collect();
            assert_eq!((v.verdict, got.as_slice()), (verdict, backends), "{pods:?}: {:?}", v.reasons);
            assert!(v.reasons.iter().any(|r| r.contains(reason)), "{pods:?}: {:?}", v.reasons);
        }
    }
}
