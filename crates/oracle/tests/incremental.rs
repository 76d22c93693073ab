//! The incremental oracle against a full recomputation: after every delta of a random sequence
//! (namespace labels, pods made, relabelled, removed and made unready, NetworkPolicies with
//! random selectors, peers and ports made and removed, Services re-pointed), its cells equal
//! those of `Reachability::compute` and `services::evaluate` on the same objects, and the
//! changes it reports are exactly the difference between the full verdicts before and after.
//! With dual-stack pods and Services, its cells are those of each family's full recomputation.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netmatrix_model::{
    Cluster, ContainerPort, IpBlock, IpFamily, IpFamilyPolicy, LabelSelector, Labels, Namespace, NetworkPolicy, Operator, Origin, Peer, Pod, PodKey, PodSpec,
    PortRef, PortSpec, Protocol, Requirement, Rule, Service, ServicePort, ServiceType, SessionAffinity, TargetPort, TrafficPolicy,
};
use netmatrix_oracle::incremental::{Cell, CellTarget, Delta, Incremental, full_cells};
use netmatrix_oracle::{Options, Profile};
use proptest::prelude::*;

const NAMESPACES: usize = 3;
const PODS: usize = 9;
const POLICY_SLOTS: usize = 4;
const VALUES: [&str; 3] = ["a", "b", "c"];

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn ns_name(i: usize) -> String {
    format!("n{i}")
}

/// Pod `i`: namespace `i % 3`, node `i % 2`, labels role and ha (`a`..`c`), address 10.0.0.(10+i); every pod serves TCP 80
/// named http, odd pods also UDP 53 named dns, pods divisible by 3 also TCP 8080.
fn pod(i: usize, role: usize, ready: bool) -> Pod {
    let mut ports = vec![ContainerPort { name: Some("http".into()), port: 80, protocol: Protocol::Tcp }];
    if i % 2 == 1 {
        ports.push(ContainerPort { name: Some("dns".into()), port: 53, protocol: Protocol::Udp });
    }
    if i.is_multiple_of(3) {
        ports.push(ContainerPort { name: None, port: 8080, protocol: Protocol::Tcp });
    }
    let spec = PodSpec {
        namespace: ns_name(i % NAMESPACES),
        name: format!("p{i}"),
        labels: labels(&[("role", VALUES[role % 3]), ("ha", VALUES[i % 2])]),
        node: format!("node{}", i % 2),
        ports,
        host_network: false,
    };
    let mut pod = spec.to_pod(vec![IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10 + i as u8))], Origin::default());
    pod.ready = ready;
    pod
}

/// The pod with an IPv6 address too, `fd00::(10+i)`, listed second.
fn dual_pod(mut pod: Pod) -> Pod {
    let IpAddr::V4(v4) = pod.ips[0] else { unreachable!("pods start IPv4") };
    pod.ips.push(IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(v4.octets()[3]))));
    pod
}

/// The Service with an IPv6 ClusterIP too (PreferDualStack on a dual-stack cluster).
fn dual_service(mut service: Service) -> Service {
    let IpAddr::V4(v4) = service.cluster_ips[0] else { unreachable!("Services start IPv4") };
    service.cluster_ips.push(IpAddr::V6(Ipv6Addr::new(0xfd00, 0x96, 0, 0, 0, 0, 0, u16::from(v4.octets()[3]))));
    service.ip_families = IpFamily::BOTH.to_vec();
    service.ip_family_policy = IpFamilyPolicy::PreferDualStack;
    service
}

fn service(i: usize, role: usize, target: TargetPort) -> Service {
    Service {
        namespace: ns_name(i % NAMESPACES),
        name: format!("s{i}"),
        service_type: ServiceType::ClusterIp,
        cluster_ip: Some(IpAddr::V4(Ipv4Addr::new(10, 96, 0, 10 + i as u8))),
        cluster_ips: vec![IpAddr::V4(Ipv4Addr::new(10, 96, 0, 10 + i as u8))],
        ip_families: vec![IpFamily::IPv4],
        ip_family_policy: IpFamilyPolicy::SingleStack,
        headless: false,
        external_name: None,
        selector: Some(labels(&[("role", VALUES[role % 3])])),
        ports: vec![ServicePort { name: None, port: 8000 + i as u16, protocol: Protocol::Tcp, target_port: target, node_port: None }],
        external_traffic_policy: TrafficPolicy::Cluster,
        internal_traffic_policy: TrafficPolicy::Cluster,
        session_affinity: SessionAffinity::None,
        load_balancer_ips: Vec::new(),
        external_ips: Vec::new(),
        publish_not_ready_addresses: false,
        traffic_distribution: None,
        origin: Origin::default(),
    }
}

fn selector() -> impl Strategy<Value = LabelSelector> {
    let requirement = (prop::sample::select(vec!["role", "ha", "area"]), 0..4usize, prop::collection::vec(prop::sample::select(VALUES.to_vec()), 1..3))
        .prop_map(|(key, op, values)| {
            let operator = [Operator::In, Operator::NotIn, Operator::Exists, Operator::DoesNotExist][op];
            let values =
                if matches!(operator, Operator::Exists | Operator::DoesNotExist) { Vec::new() } else { values.into_iter().map(String::from).collect() };
            Requirement { key: key.to_owned(), operator, values }
        });
    let match_labels = prop::option::of((prop::sample::select(vec!["role", "area"]), prop::sample::select(VALUES.to_vec())));
    (match_labels, prop::collection::vec(requirement, 0..2))
        .prop_map(|(ml, match_expressions)| LabelSelector { match_labels: ml.map(|(k, v)| labels(&[(k, v)])).unwrap_or_default(), match_expressions })
}

fn peer() -> impl Strategy<Value = Peer> {
    prop_oneof![
        3 => (prop::option::of(selector()), prop::option::of(selector())).prop_map(|(namespaces, pods)| Peer::Pods { namespaces, pods }),
        1 => (10u8..19, 28u8..32, prop::option::of(10u8..19)).prop_map(|(base, len, except)| {
            let cidr = format!("10.0.0.{base}/{len}").parse::<ipnet::Ipv4Net>().unwrap().trunc();
            let except = except.map(|e| ipnet::Ipv4Net::new(Ipv4Addr::new(10, 0, 0, e), 32).unwrap()).filter(|e| cidr.contains(e));
            Peer::IpBlock(IpBlock { cidr: cidr.into(), except: except.into_iter().map(Into::into).collect() })
        }),
    ]
}

fn port() -> impl Strategy<Value = PortSpec> {
    prop::sample::select(vec![
        PortSpec { protocol: Protocol::Tcp, port: Some(PortRef::Range { first: 80, last: 80 }) },
        PortSpec { protocol: Protocol::Tcp, port: Some(PortRef::Named("http".into())) },
        PortSpec { protocol: Protocol::Udp, port: Some(PortRef::Named("dns".into())) },
        PortSpec { protocol: Protocol::Udp, port: Some(PortRef::Range { first: 50, last: 60 }) },
        PortSpec { protocol: Protocol::Tcp, port: Some(PortRef::Range { first: 8000, last: 9000 }) },
        PortSpec { protocol: Protocol::Tcp, port: None },
    ])
}

fn rules() -> impl Strategy<Value = Option<Vec<Rule>>> {
    prop::option::of(prop::collection::vec(
        (prop::collection::vec(peer(), 0..3), prop::collection::vec(port(), 0..3)).prop_map(|(peers, ports)| Rule { peers, ports }),
        0..3,
    ))
}

#[derive(Debug, Clone)]
enum Op {
    NamespaceLabels { ns: usize, area: usize },
    TogglePod { pod: usize },
    Relabel { pod: usize, role: usize },
    Ready { pod: usize, ready: bool },
    Policy { slot: usize, ns: usize, subject: LabelSelector, ingress: Option<Vec<Rule>>, egress: Option<Vec<Rule>> },
    RemovePolicy { slot: usize },
    Service { i: usize, role: usize, named: bool },
    RemoveService { i: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..NAMESPACES, 0..3usize).prop_map(|(ns, area)| Op::NamespaceLabels { ns, area }),
        2 => (0..PODS).prop_map(|pod| Op::TogglePod { pod }),
        2 => (0..PODS, 0..3usize).prop_map(|(pod, role)| Op::Relabel { pod, role }),
        1 => (0..PODS, any::<bool>()).prop_map(|(pod, ready)| Op::Ready { pod, ready }),
        4 => (0..POLICY_SLOTS, 0..NAMESPACES, selector(), rules(), rules())
            .prop_map(|(slot, ns, subject, ingress, egress)| Op::Policy { slot, ns, subject, ingress, egress }),
        1 => (0..POLICY_SLOTS).prop_map(|slot| Op::RemovePolicy { slot }),
        1 => (0..2usize, 0..3usize, any::<bool>()).prop_map(|(i, role, named)| Op::Service { i, role, named }),
        1 => (0..2usize).prop_map(|i| Op::RemoveService { i }),
    ]
}

/// The test's own record of the objects, turning ops into deltas.
struct World {
    pods: BTreeMap<usize, Pod>,
    policy_ns: BTreeMap<usize, usize>,
    /// Pods and Services of both families; policies without ipBlock peers (refused then).
    dual: bool,
}

impl World {
    fn pod(&self, i: usize) -> Pod {
        let pod = pod(i, i / 3, true);
        if self.dual { dual_pod(pod) } else { pod }
    }

    fn service(&self, i: usize, role: usize, target: TargetPort) -> Service {
        let service = service(i, role, target);
        if self.dual { dual_service(service) } else { service }
    }

    fn delta(&mut self, op: Op) -> Delta {
        match op {
            Op::NamespaceLabels { ns, area } => Delta::Namespace { name: ns_name(ns), labels: labels(&[("area", VALUES[area])]) },
            Op::TogglePod { pod: i } => match self.pods.remove(&i) {
                Some(p) => Delta::RemovePod(p.key()),
                None => {
                    let p = self.pod(i);
                    self.pods.insert(i, p.clone());
                    Delta::Pod(p)
                }
            },
            Op::Relabel { pod: i, role } => {
                let new = self.pod(i);
                let p = self.pods.entry(i).or_insert(new);
                p.labels.insert("role".into(), VALUES[role].into());
                Delta::Pod(p.clone())
            }
            Op::Ready { pod: i, ready } => {
                let new = self.pod(i);
                let p = self.pods.entry(i).or_insert(new);
                p.ready = ready;
                Delta::Pod(p.clone())
            }
            Op::Policy { slot, ns, subject, mut ingress, mut egress } => {
                let ns = *self.policy_ns.entry(slot).or_insert(ns);
                if self.dual {
                    for rule in ingress.iter_mut().chain(egress.iter_mut()).flatten() {
                        rule.peers.retain(|p| !matches!(p, Peer::IpBlock(_)));
                    }
                }
                Delta::Policy(NetworkPolicy {
                    namespace: ns_name(ns),
                    name: format!("np{slot}"),
                    pod_selector: subject,
                    ingress,
                    egress,
                    origin: Origin::default(),
                })
            }
            Op::RemovePolicy { slot } => {
                let ns = self.policy_ns.remove(&slot).unwrap_or(0);
                Delta::RemovePolicy { namespace: ns_name(ns), name: format!("np{slot}") }
            }
            Op::Service { i, role, named } => {
                Delta::Service(self.service(i, role, if named { TargetPort::Name("http".into()) } else { TargetPort::Number(80) }))
            }
            Op::RemoveService { i } => Delta::RemoveService { namespace: ns_name(i % NAMESPACES), name: format!("s{i}") },
        }
    }
}

fn initial(dual: bool) -> (Cluster, World) {
    let mut world = World { pods: BTreeMap::new(), policy_ns: BTreeMap::new(), dual };
    world.pods = (0..PODS).filter(|i| i % 4 != 3).map(|i| (i, world.pod(i))).collect();
    let cluster = Cluster {
        namespaces: (0..NAMESPACES).map(|i| Namespace::new(ns_name(i), labels(&[("area", VALUES[i % 3])]))).collect(),
        pods: world.pods.values().cloned().collect(),
        services: vec![world.service(0, 0, TargetPort::Number(80))],
        ..Cluster::default()
    };
    (cluster, world)
}

/// The full recomputation's cells; with `dual`, those of each family's view (the pods' and
/// Services' addresses of that family alone, as its packets see them), which must agree.
fn reference(cluster: &Cluster, options: Options, profile: Profile, dual: bool) -> Result<BTreeMap<Cell, bool>, TestCaseError> {
    if !dual {
        return Ok(full_cells(cluster, options, profile));
    }
    let [v4, v6] = IpFamily::BOTH.map(|family| {
        let mut view = cluster.of_family(family);
        for service in &mut view.services {
            service.cluster_ips.retain(|ip| IpFamily::of(ip) == family);
            service.cluster_ip = service.cluster_ips.first().copied();
        }
        full_cells(&view, options, profile)
    });
    prop_assert_eq!(&v4, &v6, "the families' full verdicts differ");
    Ok(v4)
}

fn diff(before: &BTreeMap<Cell, bool>, after: &BTreeMap<Cell, bool>) -> BTreeMap<Cell, (Option<bool>, Option<bool>)> {
    let keys: BTreeSet<&Cell> = before.keys().chain(after.keys()).collect();
    keys.into_iter()
        .filter_map(|k| {
            let (b, a) = (before.get(k).copied(), after.get(k).copied());
            (b != a).then(|| (k.clone(), (b, a)))
        })
        .collect()
}

fn check(ops: Vec<Op>, options: Options, profile: Profile, dual: bool) -> Result<(), TestCaseError> {
    let (cluster, mut world) = initial(dual);
    let mut oracle = Incremental::new(&cluster, options).unwrap();
    let mut expected = reference(&oracle.cluster(), options, profile, dual)?;
    prop_assert_eq!(&oracle.cells().into_iter().collect::<BTreeMap<_, _>>(), &expected, "initial cells");
    for (step, op) in ops.into_iter().enumerate() {
        let delta = world.delta(op);
        let changes = oracle.apply(delta.clone()).unwrap();
        let now = reference(&oracle.cluster(), options, profile, dual)?;
        let cells: BTreeMap<Cell, bool> = oracle.cells().into_iter().collect();
        prop_assert_eq!(&cells, &now, "cells after step {}: {:?}", step, delta);
        let reported: BTreeMap<Cell, (Option<bool>, Option<bool>)> = changes.into_iter().map(|c| (c.cell, (c.before, c.after))).collect();
        prop_assert_eq!(reported, diff(&expected, &now), "changes of step {}: {:?}", step, delta);
        for (cell, verdict) in &now {
            prop_assert_eq!(oracle.verdict(cell), Some(*verdict));
        }
        expected = now;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn incremental_equals_full_recomputation(ops in prop::collection::vec(op(), 1..40), ipblocks_match_pods in any::<bool>()) {
        check(ops, Options { ipblocks_match_pods }, Profile::Lab, false)?;
    }

    #[test]
    fn incremental_equals_each_familys_full_recomputation_on_dual_stack(ops in prop::collection::vec(op(), 1..25)) {
        check(ops, Options { ipblocks_match_pods: true }, Profile::Lab, true)?;
    }

    #[test]
    fn incremental_equals_full_recomputation_under_kube_proxy(ops in prop::collection::vec(op(), 1..25)) {
        check(ops, Options { ipblocks_match_pods: true }, Profile::KubeProxy, false)?;
    }
}

#[test]
fn admin_policies_and_host_network_pods_are_refused() {
    let (mut cluster, _) = initial(false);
    let mut host = pod(1, 1, true);
    host.host_network = true;
    cluster.pods.push(host.clone());
    assert!(Incremental::new(&cluster, Options::default()).err().unwrap().to_string().contains("hostNetwork"));
    let (cluster, _) = initial(false);
    let mut oracle = Incremental::new(&cluster, Options::default()).unwrap();
    assert!(oracle.apply(Delta::Pod(host)).is_err());
}

#[test]
fn a_policy_on_the_one_endpoint_changes_the_service_cells() {
    let (cluster, _) = initial(false);
    let mut oracle = Incremental::new(&cluster, Options::default()).unwrap();
    let to_service = |oracle: &Incremental| oracle.cells().into_iter().filter(|(c, _)| matches!(c.dst, CellTarget::Service { .. })).collect::<Vec<_>>();
    let before = to_service(&oracle);
    assert_eq!(before.len(), 6, "{before:?}");
    assert!(before.iter().all(|(_, allowed)| *allowed));
    let deny = NetworkPolicy {
        namespace: "n0".into(),
        name: "deny".into(),
        pod_selector: LabelSelector { match_labels: labels(&[("role", "a")]), match_expressions: Vec::new() },
        ingress: Some(Vec::new()),
        egress: None,
        origin: Origin::default(),
    };
    let changes = oracle.apply(Delta::Policy(deny)).unwrap();
    let to_service_changes = changes.iter().filter(|c| matches!(c.cell.dst, CellTarget::Service { .. })).count();
    assert_eq!(to_service_changes, 6);
    assert!(to_service(&oracle).iter().all(|(_, allowed)| !*allowed));
}

#[test]
fn a_cells_addresses_are_one_per_family_the_primary_first() {
    let (cluster, _) = initial(true);
    let oracle = Incremental::new(&cluster, Options::default()).unwrap();
    let p0 = CellTarget::Pod(std::sync::Arc::new(PodKey::new("n0", "p0")));
    assert_eq!(oracle.addresses(&p0), ["10.0.0.10".parse::<IpAddr>().unwrap(), "fd00::a".parse().unwrap()]);
    let s0 = CellTarget::Service { namespace: "n0".into(), name: "s0".into() };
    assert_eq!(oracle.addresses(&s0), ["10.96.0.10".parse::<IpAddr>().unwrap(), "fd00:96::a".parse().unwrap()]);
    assert!(oracle.addresses(&CellTarget::Service { namespace: "n0".into(), name: "gone".into() }).is_empty());
    let (single, _) = initial(false);
    assert_eq!(Incremental::new(&single, Options::default()).unwrap().addresses(&p0), ["10.0.0.10".parse::<IpAddr>().unwrap()]);
}

#[test]
fn ip_blocks_are_refused_where_pods_have_two_families() {
    let block = |name: &str| NetworkPolicy {
        namespace: "n0".into(),
        name: name.into(),
        pod_selector: LabelSelector::default(),
        ingress: Some(vec![Rule { peers: vec![Peer::IpBlock(IpBlock { cidr: "10.0.0.0/24".parse().unwrap(), except: Vec::new() })], ports: Vec::new() }]),
        egress: None,
        origin: Origin::default(),
    };
    let refused = |e: netmatrix_oracle::incremental::Unsupported| {
        let text = e.to_string();
        assert!(text.contains("ipBlock peers (NetworkPolicy n0/") && text.contains("two IP families"), "{text}");
    };
    // At the start, by a new policy, by a new dual-stack pod.
    let (mut cluster, _) = initial(true);
    cluster.policies.push(block("b"));
    refused(Incremental::new(&cluster, Options::default()).err().unwrap());
    let (cluster, world) = initial(true);
    let mut oracle = Incremental::new(&cluster, Options::default()).unwrap();
    refused(oracle.apply(Delta::Policy(block("b"))).unwrap_err());
    let (mut single, _) = initial(false);
    single.policies.push(block("b"));
    let mut oracle = Incremental::new(&single, Options::default()).unwrap();
    refused(oracle.apply(Delta::Pod(world.pod(3))).unwrap_err());
    // One family: an ipBlock sees every packet's address.
    assert!(oracle.apply(Delta::Pod(pod(3, 1, true))).is_ok());
}
