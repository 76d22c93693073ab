//! One (source pod, frontend) cell decided: endpoints in scope, hairpin and affinity,
//! masquerade, then NetworkPolicy on the translated connection to each endpoint.

use std::net::IpAddr;

use netmatrix_model::{Cluster, IpFamily, Pod, Service, SessionAffinity};

use super::endpoints::{Backend, Endpoint, endpoints};
use super::policy::{Pass, endpoint_pass};
use super::scope::{Masquerade, Scope, on_node, scope};
use super::{Frontend, FrontendKind, ServiceVerdict, Verdict, pod_name};
use crate::profile::Profile;
use crate::reach::Reachability;

/// What `src_pod` gets from `frontend`, with `profile` deciding what the documentation leaves
/// open.
pub fn evaluate(cluster: &Cluster, reach: &mut Reachability, src_pod: usize, frontend: &Frontend, profile: Profile) -> ServiceVerdict {
    let mut decider = Decider { cluster, reach, src_pod, frontend, profile, reasons: Vec::new() };
    let (verdict, backends, snat) = decider.decide().unwrap_or_else(|early| early);
    let pods = backends.iter().filter_map(|b| if let Backend::Pod(p) = b { Some(*p) } else { None }).collect();
    let addresses = backends.iter().filter_map(|b| if let Backend::Address(ip) = b { Some(*ip) } else { None }).collect();
    ServiceVerdict { verdict, backends: pods, addresses, snat, reasons: decider.reasons }
}

pub(crate) type Decision = (Verdict, Vec<Backend>, Option<IpAddr>);

/// One (source pod, frontend) cell being decided, with the reasons so far.
pub(crate) struct Decider<'a, 'c> {
    pub cluster: &'c Cluster,
    pub reach: &'a mut Reachability,
    pub src_pod: usize,
    pub frontend: &'a Frontend,
    pub profile: Profile,
    pub reasons: Vec<String>,
}

impl<'c> Decider<'_, 'c> {
    pub fn undefined(&mut self, why: String) -> Decision {
        self.reasons.push(why);
        (Verdict::Undefined, Vec::new(), None)
    }

    pub fn src(&self) -> &'c Pod {
        &self.cluster.pods[self.src_pod]
    }

    /// `Err`: decided before NetworkPolicy was consulted for every endpoint.
    fn decide(&mut self) -> Result<Decision, Decision> {
        let cluster = self.cluster;
        let frontend = self.frontend;
        let service = &cluster.services[frontend.service];
        if frontend.kind == FrontendKind::ExternalName {
            // "Services of type ExternalName map a Service to a DNS name ... No proxying of any kind
            // is set up" (Service docs, type ExternalName).
            let name = service.external_name.as_deref().unwrap_or_default();
            return Err(self.undefined(format!(
                "ExternalName: cluster DNS answers with a CNAME for {name} and nothing is proxied, so what answers lies outside the cluster"
            )));
        }
        let Some(scope) = scope(cluster, self.src(), frontend, service, self.profile, &mut self.reasons) else {
            return Err((Verdict::Undefined, Vec::new(), None));
        };
        let chosen = self.choose_endpoints(service, &scope)?;
        self.hairpin_and_affinity(service, &chosen);
        let masquerade_to = self.masquerade(&scope)?;
        self.host_network()?;
        let snat = masquerade_to.filter(|_| scope.masquerade == Masquerade::Yes);
        self.policies(&scope, masquerade_to, &chosen).map(|(verdict, backends)| (verdict, backends, snat))
    }

    /// The endpoints the proxy may pick for this traffic, named in the reasons.
    fn choose_endpoints(&mut self, service: &Service, scope: &Scope) -> Result<Vec<Endpoint<'c>>, Decision> {
        let cluster = self.cluster;
        let label = self.frontend.label(cluster);
        let (ready, terminating) = endpoints(cluster, service, self.frontend.port, self.frontend.family(), &mut self.reasons);
        if ready.is_empty() && terminating.is_empty() {
            // kube-proxy rejects connections to a Service port without endpoints.
            self.reasons.push(format!("{label} has no endpoints: rejected"));
            return Err((Verdict::Deny, Vec::new(), None));
        }
        let in_scope = |list: &[Endpoint<'c>]| -> Vec<Endpoint<'c>> {
            list.iter().copied().filter(|e| !scope.local_only || on_node(e.node, scope.node) == Some(true)).collect()
        };
        let (ready, terminating) = (in_scope(&ready), in_scope(&terminating));
        let where_ = if scope.local_only { format!(" on {}", scope.node.unwrap_or_default()) } else { String::new() };
        // KEP-1669 (Proxy Terminating Endpoints): kube-proxy falls back to terminating endpoints
        // that are still serving only when the scope (cluster or node) has no ready one.
        let chosen = if !ready.is_empty() {
            ready
        } else if !terminating.is_empty() {
            self.reasons.push(format!("no ready endpoint{where_}: terminating endpoints that still serve are used"));
            terminating
        } else {
            self.reasons.push(format!("no endpoint{where_} for this traffic: dropped"));
            return Err((Verdict::Deny, Vec::new(), None));
        };
        if let Some(hint) = &service.traffic_distribution {
            // TrafficDistribution: "Implementations can use this field as a hint, but are not
            // required to guarantee strict adherence" (ServiceSpec).
            self.reasons.push(format!("trafficDistribution {hint} is a hint the proxy need not follow: any of these endpoints may serve"));
        }
        self.reasons
            .push(format!("endpoints{where_}: {}", chosen.iter().map(|e| format!("{} (port {})", e.name(cluster), e.target)).collect::<Vec<_>>().join(", ")));
        Ok(chosen)
    }

    /// A source among the endpoints, and client affinity: what the proxy does on top.
    fn hairpin_and_affinity(&mut self, service: &Service, chosen: &[Endpoint]) {
        if chosen.iter().any(|e| e.backend == Backend::Pod(self.src_pod)) {
            // "This might sound unlikely, but it does happen and it is supposed to work" (Debug
            // Services, "A Pod fails to reach itself via the Service IP"): hairpin is promised.
            self.reasons.push(format!("{} may reach itself through its Service, which is \"supposed to work\" (Debug Services)", pod_name(self.src())));
        }
        if let SessionAffinity::ClientIp { timeout_seconds } = service.session_affinity {
            // "connections from a particular client are passed to the same Pod each time" (Service
            // docs, session affinity): which one is not known in advance, so any may answer.
            self.reasons.push(format!(
                "ClientIP affinity: further connections from this client go to the same endpoint for {timeout_seconds}s (which one is decided by the first)"
            ));
        }
    }

    /// The address the connection is (or may be) masqueraded to.
    fn masquerade(&mut self, scope: &Scope) -> Result<Option<IpAddr>, Decision> {
        if scope.masquerade == Masquerade::No {
            return Ok(None);
        }
        // The node's address of the connection's family (its primary one for ExternalName).
        let family = self.frontend.family();
        let node = self.cluster.nodes.iter().find(|n| Some(n.name.as_str()) == scope.node);
        let address = node.and_then(|n| n.addresses.iter().find(|ip| family.is_none_or(|f| IpFamily::of(ip) == f)).copied());
        match (scope.node, address) {
            (_, Some(ip)) => Ok(Some(ip)),
            (None, None) => {
                Err(self.undefined(format!("the connection is masqueraded by the node of {}, which is unknown (spec.nodeName)", pod_name(self.src()))))
            }
            (Some(node), None) => {
                Err(self.undefined(format!("the connection is masqueraded by {node}, whose address is unknown (no Node with status.addresses)")))
            }
        }
    }

    /// hostNetwork clients under NetworkPolicy, where the profile does not decide.
    fn host_network(&mut self) -> Result<(), Decision> {
        if self.src().host_network && !self.cluster.policies.is_empty() && !self.profile.decisions().host_network_policy {
            return Err(self.undefined(format!(
                "{} is a hostNetwork pod, and \"NetworkPolicy behavior for hostNetwork pods is undefined\" (Network Policies)",
                pod_name(self.src())
            )));
        }
        Ok(())
    }

    /// NetworkPolicy (and lost replies) for the connection to each chosen endpoint.
    fn policies(&mut self, scope: &Scope, masquerade_to: Option<IpAddr>, chosen: &[Endpoint]) -> Result<(Verdict, Vec<Backend>), Decision> {
        let src = self.src();
        if matches!(self.frontend.kind, FrontendKind::NodePort { .. }) && on_node(src.node.as_deref(), scope.node).is_none() {
            return Err(self.undefined(format!(
                "whether {} runs on {} decides what its egress policies see, and its node is unknown (spec.nodeName)",
                pod_name(src),
                scope.node.unwrap_or_default()
            )));
        }
        let (mut answering, mut open, mut denied) = (Vec::new(), None, false);
        for e in chosen {
            match endpoint_pass(self, scope, masquerade_to, e)? {
                Pass::Allowed => answering.push(e.backend),
                Pass::Denied => denied = true,
                Pass::Open(why) => {
                    answering.push(e.backend);
                    open.get_or_insert(why);
                }
            }
        }
        if answering.is_empty() {
            self.reasons.push("no endpoint answers this source: no connection".into());
            return Ok((Verdict::Deny, Vec::new()));
        }
        if let Some(why) = open {
            self.reasons.push(format!("whether a connection succeeds is left open: {why}"));
            return Ok((Verdict::Undefined, answering));
        }
        if denied {
            // The proxy picks an endpoint per connection without regard to policy.
            self.reasons.push("some endpoints answer and some do not: whether a connection succeeds depends on the endpoint the proxy picks".into());
            return Ok((Verdict::Undefined, answering));
        }
        Ok((Verdict::Allow, answering))
    }
}
