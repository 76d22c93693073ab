//! `services`: the k8s-service-validator scenarios, written from the Service documentation
//! (concepts/services-networking/service, virtual-ips, service-traffic-policy). Backends are
//! the pods of namespace x (x/a on node0, x/b on node1, x/c on node2); every pod of the world is
//! a client. Every step also probes a Service without endpoints, the negative control: its
//! connections must fail ("a Service without ready endpoints rejects").

use netmatrix_model::{PodKey, Protocol};
use netmatrix_results::Check;
use serde_json::{Value, json};

use super::policy;
use crate::case::{Action, Case, ProbeSpec, Requirement, Step};
use crate::world::{WORLD_LABEL, port_name};

/// A Service in x with `spec` (type, ports, policies) and the given selector.
fn service(name: &str, selector: Value, spec: Value) -> Value {
    let mut s = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "x"}, "spec": {"selector": selector}});
    for (k, v) in spec.as_object().expect("spec is an object") {
        s["spec"][k] = v.clone();
    }
    s
}

/// Every pod of x.
fn all_of_x() -> Value {
    json!({WORLD_LABEL.0: WORLD_LABEL.1})
}

fn only_a() -> Value {
    json!({"pod": "a"})
}

fn tcp_port(port: u16, target: Value) -> Value {
    json!([{"name": "p", "port": port, "protocol": "TCP", "targetPort": target}])
}

/// The negative control: a Service that selects no pod.
fn no_endpoints() -> Value {
    service("no-endpoints", json!({"pod": "nobody"}), json!({"ports": tcp_port(8080, json!(80))}))
}

fn case(name: &str, feature: &str, what: &str, services: Vec<Value>) -> Case {
    let mut objects = services;
    objects.push(no_endpoints());
    Case::new(
        format!("services/{name}"),
        &[("type", "services"), ("feature", feature)],
        vec![Step::new(what, vec![Action::Apply(objects)], ProbeSpec::services())],
    )
}

pub fn cases() -> Vec<Case> {
    let udp_port = |port: u16| json!([{"name": "u", "port": port, "protocol": "UDP", "targetPort": 80}]);
    vec![
        case("cluster-ip", "cluster-ip", "ClusterIP 8080 to the pods of x on 80", vec![service("web", all_of_x(), json!({"ports": tcp_port(8080, json!(80))}))]),
        case(
            "named-target-port",
            "target-port",
            "ClusterIP 8081 to the port named serve-81-tcp",
            vec![service("web", all_of_x(), json!({"ports": tcp_port(8081, json!(port_name(81, Protocol::Tcp)))}))],
        ),
        case("udp", "protocol", "ClusterIP UDP 5353 to the pods of x on UDP 80", vec![service("web", all_of_x(), json!({"ports": udp_port(5353)}))]),
        case("node-port", "node-port", "NodePort: the cluster IP and the node port on every node", vec![service("web", all_of_x(), json!({"type": "NodePort", "ports": tcp_port(8080, json!(80))}))]),
        case("load-balancer", "load-balancer", "LoadBalancer: cluster IP, node ports and the load-balancer IP", vec![service("web", all_of_x(), json!({"type": "LoadBalancer", "ports": tcp_port(8080, json!(80))}))]),
        case(
            "external-traffic-policy-local",
            "traffic-policy",
            "NodePort with externalTrafficPolicy Local, one backend (x/a on node0)",
            vec![service("web", only_a(), json!({"type": "NodePort", "externalTrafficPolicy": "Local", "ports": tcp_port(8080, json!(80))}))],
        ),
        case(
            "internal-traffic-policy-local",
            "traffic-policy",
            "ClusterIP with internalTrafficPolicy Local, one backend (x/a on node0)",
            vec![service("web", only_a(), json!({"internalTrafficPolicy": "Local", "ports": tcp_port(8080, json!(80))}))],
        ),
        case(
            "policy-on-backends",
            "policy",
            "NodePort to x, whose pods accept only namespace y: policy applies after translation",
            vec![
                service("web", all_of_x(), json!({"type": "NodePort", "ports": tcp_port(8080, json!(80))})),
                policy("x", "from-y", json!({"podSelector": {}, "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]})),
            ],
        ),
        Case::new(
            "services/host-network-client",
            &[("type", "services"), ("feature", "host-network")],
            vec![Step::new(
                "NodePort to the pods of x, with hostNetwork clients on every node",
                vec![Action::AddHostPods, Action::Apply(vec![service("web", all_of_x(), json!({"type": "NodePort", "ports": tcp_port(8080, json!(80))})), no_endpoints()])],
                ProbeSpec::services(),
            )],
        ),
        case("hairpin", "hairpin", "ClusterIP whose only backend is x/a: x/a reaches itself through it", vec![service("web", only_a(), json!({"ports": tcp_port(8080, json!(80))}))]).requires(Requirement::Hairpin),
        Case::new(
            "services/session-affinity",
            &[("type", "services"), ("feature", "session-affinity")],
            vec![
                Step::new(
                    "ClusterIP with sessionAffinity ClientIP over the pods of x",
                    vec![Action::Apply(vec![service("web", all_of_x(), json!({"sessionAffinity": "ClientIP", "ports": tcp_port(8080, json!(80))})), no_endpoints()])],
                    ProbeSpec::services(),
                ),
                Step::new("every client keeps its backend", vec![], ProbeSpec::services().check(Check::Affinity)),
            ],
        ),
        Case::new(
            "services/udp-after-backend-replaced",
            &[("type", "services"), ("feature", "udp-stale-endpoints")],
            vec![
                Step::new(
                    "UDP ClusterIP to x/a, each client from a fixed source port",
                    vec![Action::Apply(vec![service("dns", only_a(), json!({"ports": udp_port(5353)})), no_endpoints()])],
                    ProbeSpec::services().fixed_source_port(),
                ),
                Step::new(
                    "x/a replaced (new address): the same flows reach the new backend",
                    vec![Action::RecreatePod(PodKey::new("x", "a"))],
                    ProbeSpec::services().fixed_source_port().check(Check::UdpAfterReplace),
                ),
            ],
        ),
        // Dual-stack Services (dual-stack docs, "Services"): each family's frontends lead to
        // the endpoints' addresses of that family.
        case(
            "dual-stack",
            "dual-stack",
            "SingleStack IPv6 ClusterIP, PreferDualStack NodePort, RequireDualStack (IPv6 first) LoadBalancer",
            vec![
                service("web6", all_of_x(), json!({"ipFamilyPolicy": "SingleStack", "ipFamilies": ["IPv6"], "ports": tcp_port(8080, json!(80))})),
                service("prefer", all_of_x(), json!({"type": "NodePort", "ipFamilyPolicy": "PreferDualStack", "ports": tcp_port(8081, json!(80))})),
                service(
                    "require",
                    only_a(),
                    json!({"type": "LoadBalancer", "ipFamilyPolicy": "RequireDualStack", "ipFamilies": ["IPv6", "IPv4"], "ports": tcp_port(8082, json!(80))}),
                ),
            ],
        )
        .requires(Requirement::DualStack),
        case(
            "external-name",
            "external-name",
            "ExternalName: a DNS alias of another Service",
            vec![json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "alias", "namespace": "x"}, "spec": {"type": "ExternalName", "externalName": "web.x.svc.cluster.local"}})],
        )
        .requires(Requirement::Dns),
    ]
}
