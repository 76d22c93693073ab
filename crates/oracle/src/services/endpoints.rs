//! A Service port's endpoints: from its EndpointSlices when the input has any, else as the
//! EndpointSlice controller would publish them from the selector.

use std::net::IpAddr;

use netmatrix_model::{Cluster, EndpointSlice, IpFamily, Service, ServicePort};

/// Who serves an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// A pod of the input (index into `cluster.pods`).
    Pod(usize),
    /// An EndpointSlice address that is no pod of the input: a backend outside the cluster, or
    /// a pod the input does not describe.
    Address(IpAddr),
}

/// An endpoint of the Service port: who serves it, where it runs, and the port traffic is
/// translated to.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Endpoint<'c> {
    pub backend: Backend,
    /// The pod's node, or the EndpointSlice's `nodeName` for an address.
    pub node: Option<&'c str>,
    pub target: u16,
}

impl Endpoint<'_> {
    pub fn name(&self, cluster: &Cluster) -> String {
        match self.backend {
            Backend::Pod(p) => format!("{}/{}", cluster.pods[p].namespace, cluster.pods[p].name),
            Backend::Address(ip) => ip.to_string(),
        }
    }
}

/// Whether an address list serves a frontend of `family` (`None`: any): it has an address of
/// it, or no address at all (a pod from a manifest without status). The EndpointSlice
/// controller publishes a slice per family of the Service, of the pods' addresses of that
/// family (`addressType`), and each family's proxy reads its own.
fn serves(ips: &[IpAddr], family: Option<IpFamily>) -> bool {
    ips.is_empty() || family.is_none_or(|f| ips.iter().any(|ip| IpFamily::of(ip) == f))
}

/// The ready and the serving-but-terminating endpoints of `service`'s port `port` for a
/// frontend of `family`, with the conditions kube-proxy reads.
pub(crate) fn endpoints<'c>(
    cluster: &'c Cluster,
    service: &Service,
    port: usize,
    family: Option<IpFamily>,
    reasons: &mut Vec<String>,
) -> (Vec<Endpoint<'c>>, Vec<Endpoint<'c>>) {
    let port = &service.ports[port];
    let mut ready = Vec::new();
    let mut terminating = Vec::new();
    let slices: Vec<&EndpointSlice> = cluster.endpoint_slices.iter().filter(|e| e.namespace == service.namespace && e.service == service.name).collect();
    if !slices.is_empty() {
        reasons.push(format!("endpoints from EndpointSlices {}", slices.iter().map(|e| e.name.as_str()).collect::<Vec<_>>().join(", ")));
        for slice in slices {
            slice_endpoints(cluster, slice, port, family, reasons, &mut ready, &mut terminating);
        }
        return (ready, terminating);
    }
    if service.selector.is_none() {
        reasons.push(format!("{}/{} has no selector: its endpoints would be managed by hand, and no EndpointSlice is given", service.namespace, service.name));
    }
    for (i, pod) in cluster.pods.iter().enumerate() {
        if !service.selects(pod) {
            continue;
        }
        // A hostNetwork pod without addresses of its own has its node's.
        if !serves(crate::matching::pod_addresses(cluster, pod), family) {
            reasons.push(format!(
                "{}/{} has no {} address: no endpoint of this frontend",
                pod.namespace,
                pod.name,
                family.map(IpFamily::as_str).unwrap_or_default()
            ));
            continue;
        }
        // "If this is a string, it will be looked up as a named port in the target Pod's
        // container ports" (ServicePort.targetPort): a pod without the name is no endpoint.
        let Some(target) = port.target_port.resolve(port.protocol, &pod.ports) else { continue };
        let endpoint = Endpoint { backend: Backend::Pod(i), node: pod.node.as_deref(), target };
        // publishNotReadyAddresses: "all endpoints are considered 'ready' even if the Pods
        // themselves are not" (ServiceSpec), terminating ones included.
        if service.publish_not_ready_addresses || (pod.ready && !pod.terminating) {
            ready.push(endpoint);
        } else if pod.ready {
            terminating.push(endpoint);
        }
    }
    (ready, terminating)
}

/// The endpoints `slice` gives for Service port `port`, by their conditions. An address that is
/// no pod of the input is a backend all the same: "the service is assumed to have an external
/// process managing its endpoints" (ServiceSpec.selector), which may name any address.
fn slice_endpoints<'c>(
    cluster: &'c Cluster,
    slice: &'c EndpointSlice,
    port: &ServicePort,
    family: Option<IpFamily>,
    reasons: &mut Vec<String>,
    ready: &mut Vec<Endpoint<'c>>,
    terminating: &mut Vec<Endpoint<'c>>,
) {
    // An EndpointSlice port serves the Service port of the same name and protocol.
    let Some(target) = slice.ports.iter().find(|p| p.name == port.name && p.protocol == port.protocol).map(|p| p.port) else { return };
    for e in slice.endpoints.iter().filter(|e| serves(&e.addresses, family)) {
        let by_ref = e.pod.as_ref().and_then(|(ns, name)| cluster.pods.iter().position(|p| &p.namespace == ns && &p.name == name));
        let pod = by_ref.or_else(|| cluster.pods.iter().position(|p| p.ips.iter().any(|ip| e.addresses.contains(ip))));
        let endpoint = match (pod, e.addresses.first()) {
            (Some(p), _) => Endpoint { backend: Backend::Pod(p), node: cluster.pods[p].node.as_deref().or(e.node.as_deref()), target },
            (None, Some(&ip)) => {
                reasons.push(format!("EndpointSlice {}: endpoint {ip} is no pod of the input: a backend outside it", slice.name));
                Endpoint { backend: Backend::Address(ip), node: e.node.as_deref(), target }
            }
            (None, None) => continue,
        };
        if e.ready {
            ready.push(endpoint);
        } else if e.serving && e.terminating {
            terminating.push(endpoint);
        }
    }
}

#[cfg(test)]
mod tests {
    use netmatrix_model::parse_str;

    use super::*;

    use super::super::fixtures::{SERVICE, pod};

    const PODS: [(&str, &str); 4] = [("leaving", "terminating"), ("noport", "no-port"), ("slow", "not-ready"), ("up", "ready")];

    #[test]
    fn endpoints_follow_readiness_unless_not_ready_addresses_are_published() {
        // "publishNotReadyAddresses ... all endpoints are considered 'ready' even if the Pods
        // themselves are not" (ServiceSpec); a named targetPort a pod lacks makes it no endpoint.
        let cases: [(&str, &[&str], &[&str]); 2] = [("", &["up"], &["leaving"]), ("publishNotReadyAddresses: true", &["leaving", "slow", "up"], &[])];
        for (extra, ready, terminating) in cases {
            let service = if extra.is_empty() { SERVICE.to_owned() } else { SERVICE.replace("ports:", &format!("{extra}, ports:")) };
            let text: String = PODS.iter().enumerate().map(|(i, (name, state))| pod(i, name, state)).collect();
            let c = parse_str("svc.yaml", &format!("{service}{text}")).unwrap_or_else(|e| panic!("{e}"));
            let (got_ready, got_terminating) = endpoints(&c, &c.services[0], 0, None, &mut Vec::new());
            let names = |list: Vec<Endpoint>| list.iter().map(|e| e.name(&c)).collect::<Vec<_>>();
            let want = |list: &[&str]| list.iter().map(|n| format!("x/{n}")).collect::<Vec<_>>();
            assert_eq!((names(got_ready), names(got_terminating)), (want(ready), want(terminating)), "{extra}");
        }
    }
}
