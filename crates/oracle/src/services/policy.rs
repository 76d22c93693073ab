//! NetworkPolicy on the connection to one endpoint, under every reading the profile leaves
//! possible: where the documentation does not fix the order of address rewriting and policy,
//! only what holds for every order is expected.

use std::net::IpAddr;

use netmatrix_model::Direction;

use super::decide::{Decider, Decision};
use super::endpoints::{Backend, Endpoint};
use super::scope::{Masquerade, Scope, on_node};
use super::{FrontendKind, pod_name};
use crate::ports::ConnId;
use crate::profile::RewriteOrder;
use crate::reach::Reachability;

/// What NetworkPolicy (and the way back) make of the connection to one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pass {
    Allowed,
    Denied,
    /// Allowed under one reading and denied under another: the documentation leaves which open.
    Open(String),
}

/// Who a policy sees at the other end.
#[derive(Debug, Clone, Copy)]
enum Peer {
    Pod(usize),
    Address(IpAddr),
    /// The node the pod runs on: "traffic to and from the node where a Pod is running is always
    /// allowed, regardless of the IP address of the Pod or the node" (Network Policies).
    OwnNode,
}

/// One way a policy may see the connection: the peer and the destination port.
#[derive(Debug, Clone, Copy)]
struct Reading {
    peer: Peer,
    port: u16,
}

pub(crate) fn endpoint_pass(d: &mut Decider, scope: &Scope, masquerade_to: Option<IpAddr>, e: &Endpoint) -> Result<Pass, Decision> {
    let profile = d.profile;
    let name = e.name(d.cluster);
    if let Some(via) = scope.replies_via {
        match on_node(e.node, Some(via)) {
            Some(true) => {}
            Some(false) => {
                d.reasons.push(format!("profile {profile}: {name}: its reply goes to the client past {via}'s connection tracking and is lost"));
                return Ok(Pass::Denied);
            }
            None => return Ok(Pass::Open(format!("profile {profile}: whether the reply of {name} passes {via} depends on its node, which is unknown"))),
        }
    }
    if e.backend == Backend::Pod(d.src_pod) && !profile.decisions().hairpin_own_policies {
        d.reasons.push(format!(
            "{name}: its connection to itself is allowed: \"a pod cannot block access to itself\" and \"traffic to and from the node where a Pod is running is always allowed\" (Network Policies)"
        ));
        return Ok(Pass::Allowed);
    }
    let src = pod_name(d.src());
    let src_class = d.reach.pod_class[d.src_pod];
    let egress = egress_readings(d, scope, e).into_iter().map(|r| check(d, Direction::Egress, src_class, r, "to")).collect::<Result<Vec<_>, _>>()?;
    let ingress = match e.backend {
        Backend::Pod(p) => {
            let class = d.reach.pod_class[p];
            ingress_readings(d, scope, masquerade_to, e)?.into_iter().map(|r| check(d, Direction::Ingress, class, r, "from")).collect::<Result<Vec<_>, _>>()?
        }
        // No NetworkPolicy selects what is outside the cluster.
        Backend::Address(_) => Vec::new(),
    };
    let egress_owner = format!("the egress policies of {src}");
    let ingress_owner = format!("the ingress policies of {name}");
    let pass = match (all(&egress), all(&ingress)) {
        (Some(false), _) => {
            d.reasons.push(format!("{name}: denied by the egress policies of {src} ({})", join(&egress)));
            Pass::Denied
        }
        (_, Some(false)) => {
            d.reasons.push(format!("{name}: denied by its ingress policies ({})", join(&ingress)));
            Pass::Denied
        }
        (Some(true), Some(true)) if ingress.is_empty() => {
            d.reasons.push(format!("{name}: allowed (egress of {src}: {}; no policy applies outside the cluster)", join(&egress)));
            Pass::Allowed
        }
        (Some(true), Some(true)) => {
            d.reasons.push(format!("{name}: allowed (egress of {src}: {}; ingress of {name}: {})", join(&egress), join(&ingress)));
            Pass::Allowed
        }
        (None, _) => Pass::Open(open(&name, &egress_owner, &egress)),
        (_, None) => Pass::Open(open(&name, &ingress_owner, &ingress)),
    };
    if let Pass::Open(why) = &pass {
        d.reasons.push(why.clone());
    }
    Ok(pass)
}

/// `Some(allowed)` when every reading agrees; `Some(true)` for none.
fn all(results: &[(bool, String)]) -> Option<bool> {
    match (results.iter().any(|r| r.0), results.iter().any(|r| !r.0)) {
        (true, true) => None,
        (false, true) => Some(false),
        (_, false) => Some(true),
    }
}

fn join(results: &[(bool, String)]) -> String {
    results.iter().map(|r| r.1.as_str()).collect::<Vec<_>>().join(" and ")
}

fn open(name: &str, owner: &str, results: &[(bool, String)]) -> String {
    let pick = |allowed: bool| results.iter().filter(|r| r.0 == allowed).map(|r| r.1.as_str()).collect::<Vec<_>>().join(" and ");
    format!(
        "{name}: {owner} allow {} but not {}, and \"it is not defined whether this [rewriting] happens before or after NetworkPolicy processing\" (Network Policies)",
        pick(true),
        pick(false)
    )
}

/// What the source's egress policies may see: the endpoint, or the address it connected to.
fn egress_readings(d: &Decider, scope: &Scope, e: &Endpoint) -> Vec<Reading> {
    let f = d.frontend;
    let translated = Reading { peer: peer_of(e.backend), port: e.target };
    let own_node = on_node(d.src().node.as_deref(), scope.node);
    let untranslated = Reading {
        peer: match f.kind {
            FrontendKind::NodePort { .. } if own_node == Some(true) => Peer::OwnNode,
            _ => Peer::Address(f.address.expect("frontends that are probed have an address")),
        },
        port: f.dst_port,
    };
    match (d.profile.decisions().rewrite_order, f.kind) {
        // Another node's node port is translated there: the source's node sees it untranslated.
        (Some(RewriteOrder::Netfilter), FrontendKind::NodePort { .. }) if own_node == Some(false) => vec![untranslated],
        (Some(RewriteOrder::Netfilter), _) => vec![translated],
        // Only "connections from pods to Service IPs that get rewritten to cluster-external IPs
        // may or may not be subject to ipBlock-based policies" (Network Policies): a cluster
        // IP rewritten to a pod is subject to the policies of pods.
        (None, FrontendKind::ClusterIp) if matches!(e.backend, Backend::Pod(_)) => vec![translated],
        (None, _) => vec![translated, untranslated],
    }
}

/// What the endpoint's ingress policies may see: the client, or the address it was
/// masqueraded to.
fn ingress_readings(d: &mut Decider, scope: &Scope, masquerade_to: Option<IpAddr>, e: &Endpoint) -> Result<Vec<Reading>, Decision> {
    let client = Reading { peer: Peer::Pod(d.src_pod), port: e.target };
    let Some(node_ip) = masquerade_to.filter(|_| scope.masquerade != Masquerade::No) else { return Ok(vec![client]) };
    let masqueraded = |peer| Reading { peer, port: e.target };
    let mut readings = match (d.profile.decisions().rewrite_order, on_node(e.node, scope.node)) {
        // Masquerade comes after the translating node's policy, before any other node's.
        (Some(RewriteOrder::Netfilter), Some(true)) => vec![client],
        (Some(RewriteOrder::Netfilter), Some(false)) => vec![masqueraded(Peer::Address(node_ip))],
        (Some(RewriteOrder::Netfilter), None) => {
            return Err(d.undefined(format!(
                "whether {} runs on {} decides the source its policies see, and its node is unknown (spec.nodeName)",
                e.name(d.cluster),
                scope.node.unwrap_or("the translating node")
            )));
        }
        (None, Some(true)) => vec![client, masqueraded(Peer::OwnNode)],
        (None, Some(false)) => vec![client, masqueraded(Peer::Address(node_ip))],
        (None, None) => vec![client, masqueraded(Peer::OwnNode), masqueraded(Peer::Address(node_ip))],
    };
    if scope.masquerade == Masquerade::Either && !readings.iter().any(|r| matches!(r.peer, Peer::Pod(_))) {
        readings.push(client);
    }
    Ok(readings)
}

fn peer_of(backend: Backend) -> Peer {
    match backend {
        Backend::Pod(p) => Peer::Pod(p),
        Backend::Address(ip) => Peer::Address(ip),
    }
}

/// Whether `owner`'s `direction` policies allow `reading`, and how to say so.
fn check(d: &mut Decider, direction: Direction, owner: usize, reading: Reading, word: &str) -> Result<(bool, String), Decision> {
    let protocol = d.cluster.services[d.frontend.service].ports[d.frontend.port].protocol;
    let port = reading.port;
    let (conn, what) = match reading.peer {
        Peer::OwnNode => return Ok((true, format!("{protocol} {port} {word} its own node"))),
        Peer::Pod(p) => (d.reach.allowed_by(direction, owner, d.reach.pod_class[p]), pod_name(&d.cluster.pods[p])),
        Peer::Address(ip) => match external(d.reach, direction, owner, ip) {
            Some(conn) => (conn, ip.to_string()),
            None => return Err(d.undefined(format!("{ip} is IPv6 and no ipBlock names IPv6 addresses: what policies allow for it is not computed"))),
        },
    };
    Ok((d.reach.conn(conn).allows(protocol, port), format!("{protocol} {port} {word} {what}")))
}

/// What `owner`'s `direction` policies allow with the outside address `ip`.
fn external(reach: &Reachability, direction: Direction, owner: usize, ip: IpAddr) -> Option<ConnId> {
    let range = reach.ranges.iter().position(|r| r.contains(&ip))?;
    Some(reach.allowed_external(direction, owner, range))
}
