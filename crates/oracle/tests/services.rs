//! One test per Service rule, each quoting the Kubernetes documentation it checks (the Service
//! concept page, "Virtual IPs and Service Proxies", "Service Internal Traffic Policy", "Debug
//! Services", the ServiceSpec API reference and "Network Policies"): what it promises holds
//! under every profile; where it leaves the choice to the implementation, `spec` says
//! undefined and `lab` and `kube-proxy` say what their dataplanes do.

use std::collections::BTreeSet;
use std::net::IpAddr;

use netmatrix_model::{Cluster, Protocol, parse_str};
use netmatrix_oracle::services::find_service;
use netmatrix_oracle::{Frontend, FrontendKind, Options, Profile, Reachability, ServiceVerdict, Verdict, evaluate, frontends};

const SPEC: Profile = Profile::Spec;
const LAB: Profile = Profile::Lab;
const KUBE_PROXY: Profile = Profile::KubeProxy;

/// Two nodes (node0 172.18.0.2, node1 172.18.1.2). Namespace x: web-0 (node0, http=8080) and
/// web-1 (node1, http=8081), both app=web; legacy (node0, app=web, no port named http); c0 and
/// c1, clients on node0 and node1. Namespace other: web-y (app=web, other namespace).
const NODES_AND_PODS: &str = r#"
apiVersion: v1
kind: Node
metadata: {name: node0}
status: {addresses: [{type: Hostname, address: node0}, {type: InternalIP, address: 172.18.0.2}]}
---
apiVersion: v1
kind: Node
metadata: {name: node1}
status: {addresses: [{type: InternalIP, address: 172.18.1.2}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web-0, namespace: x, labels: {app: web}}
spec: {nodeName: node0, containers: [{ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.244.0.10}
---
apiVersion: v1
kind: Pod
metadata: {name: web-1, namespace: x, labels: {app: web}}
spec: {nodeName: node1, containers: [{ports: [{name: http, containerPort: 8081}]}]}
status: {podIP: 10.244.1.10}
---
apiVersion: v1
kind: Pod
metadata: {name: legacy, namespace: x, labels: {app: web}}
spec: {nodeName: node0, containers: [{ports: [{containerPort: 8080}]}]}
status: {podIP: 10.244.0.11}
---
apiVersion: v1
kind: Pod
metadata: {name: c0, namespace: x, labels: {role: client}}
spec: {nodeName: node0}
status: {podIP: 10.244.0.20}
---
apiVersion: v1
kind: Pod
metadata: {name: c1, namespace: x, labels: {role: client}}
spec: {nodeName: node1}
status: {podIP: 10.244.1.20}
---
apiVersion: v1
kind: Pod
metadata: {name: web-y, namespace: other, labels: {app: web}}
spec: {nodeName: node0, containers: [{ports: [{name: http, containerPort: 8080}]}]}
status: {podIP: 10.244.0.30}
"#;

fn cluster(extra: &str) -> Cluster {
    parse_str("test.yaml", &format!("{NODES_AND_PODS}---\n{extra}")).unwrap_or_else(|e| panic!("{e}"))
}

fn service(name: &str, spec: &str) -> String {
    format!("apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: x}}\nspec: {spec}\n")
}

fn pod(cluster: &Cluster, name: &str) -> usize {
    let (ns, name) = name.split_once('/').unwrap();
    cluster.pods.iter().position(|p| p.namespace == ns && p.name == name).unwrap_or_else(|| panic!("no pod {ns}/{name}"))
}

/// The frontend of Service x/`svc` (first port) of `kind`.
fn frontend(cluster: &Cluster, svc: &str, kind: FrontendKind) -> Frontend {
    let s = find_service(cluster, &format!("svc:x/{svc}")).unwrap();
    frontends(cluster).into_iter().find(|f| f.service == s && f.kind == kind).unwrap_or_else(|| panic!("no {kind:?} frontend of {svc}"))
}

fn eval(cluster: &Cluster, src: &str, frontend: &Frontend, profile: Profile) -> ServiceVerdict {
    let mut reach = Reachability::compute(cluster, Options { ipblocks_match_pods: true });
    evaluate(cluster, &mut reach, pod(cluster, src), frontend, profile)
}

fn names(cluster: &Cluster, v: &ServiceVerdict) -> BTreeSet<String> {
    v.backends.iter().map(|&b| format!("{}/{}", cluster.pods[b].namespace, cluster.pods[b].name)).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn policy(name: &str, spec: &str) -> String {
    format!("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: x}}\nspec: {spec}\n")
}

#[test]
fn every_kind_of_frontend_in_a_deterministic_order() {
    let c = cluster(&[
        service("a-lb", "{type: LoadBalancer, clusterIP: 10.96.0.1, selector: {app: web}, ports: [{name: h, port: 80, nodePort: 30080}, {name: d, port: 53, protocol: UDP, nodePort: 30053}]}\nstatus: {loadBalancer: {ingress: [{ip: 172.18.255.1}, {hostname: lb.example.com}]}}"),
        service("b-ext", "{type: ExternalName, externalName: db.example.com, ports: [{port: 5432}]}"),
        // "Headless Services ... kube-proxy does not handle these Services, and there is no load
        // balancing or proxying done by the platform for them."
        service("c-headless", "{clusterIP: None, selector: {app: web}, ports: [{port: 80}]}"),
        // Not allocated yet: no address to connect to.
        service("d-unallocated", "{type: NodePort, selector: {app: web}, ports: [{port: 80}]}"),
    ]
    .join("---\n"));
    let labels: Vec<String> = frontends(&c).iter().map(|f| f.label(&c)).collect();
    assert_eq!(
        labels,
        [
            "svc:x/a-lb:80/TCP",
            "svc:x/a-lb:80/TCP[NodePort node0 172.18.0.2:30080]",
            "svc:x/a-lb:80/TCP[NodePort node1 172.18.1.2:30080]",
            "svc:x/a-lb:80/TCP[LoadBalancer 172.18.255.1]",
            "svc:x/a-lb:53/UDP",
            "svc:x/a-lb:53/UDP[NodePort node0 172.18.0.2:30053]",
            "svc:x/a-lb:53/UDP[NodePort node1 172.18.1.2:30053]",
            "svc:x/a-lb:53/UDP[LoadBalancer 172.18.255.1]",
            "svc:x/b-ext:5432/TCP[ExternalName db.example.com]",
        ]
    );
    let all = frontends(&c);
    // NodePort: "each node proxies that port (the same port number on every Node) into your
    // Service" (Service docs); a load-balancer IP keeps the Service port.
    assert_eq!((all[1].address, all[1].dst_port, all[1].protocol), (Some(ip("172.18.0.2")), 30080, Protocol::Tcp));
    assert_eq!((all[3].address, all[3].dst_port), (Some(ip("172.18.255.1")), 80));
    assert_eq!((all[4].address, all[4].dst_port, all[4].protocol), (Some(ip("10.96.0.1")), 53, Protocol::Udp));
    assert_eq!(all[8].address, None);
    let mut shuffled = c.clone();
    shuffled.pods.reverse();
    assert_eq!(frontends(&shuffled), all, "frontends do not depend on pod order");
}

#[test]
fn a_cluster_ip_reaches_every_ready_endpoint_on_its_resolved_target_port() {
    // "If this is a string, it will be looked up as a named port in the target Pod's container
    // ports" (ServicePort.targetPort): legacy has no port named http and is no endpoint;
    // other/web-y is in another namespace ("The set of Pods targeted by a Service is usually
    // determined by a selector", within the Service's namespace).
    let c = cluster(&service("web", "{clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http}]}"));
    let v = eval(&c, "x/c0", &frontend(&c, "web", FrontendKind::ClusterIp), SPEC);
    assert_eq!(v.verdict, Verdict::Allow, "{v:#?}");
    assert_eq!(names(&c, &v), set(&["x/web-0", "x/web-1"]));
    assert_eq!(v.snat, None, "cluster IP traffic from a pod keeps its source");
    assert!(v.reasons.iter().any(|r| r.contains("x/web-0 (port 8080)") && r.contains("x/web-1 (port 8081)")), "{:?}", v.reasons);
    // A numeric targetPort needs no container port: legacy serves it.
    let c = cluster(&service("web", "{clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}"));
    let v = eval(&c, "x/c1", &frontend(&c, "web", FrontendKind::ClusterIp), SPEC);
    assert_eq!(names(&c, &v), set(&["x/web-0", "x/web-1", "x/legacy"]));
}

#[test]
fn without_endpoints_nothing_answers() {
    // "If empty or not present, the service is assumed to have an external process managing its
    // endpoints" (ServiceSpec.selector): none are given here.
    let c = cluster(
        &[
            service("none", "{clusterIP: 10.96.0.1, selector: {app: nobody}, ports: [{port: 80}]}"),
            service("manual", "{clusterIP: 10.96.0.2, ports: [{port: 80}]}"),
        ]
        .join("---\n"),
    );
    for svc in ["none", "manual"] {
        let v = eval(&c, "x/c0", &frontend(&c, svc, FrontendKind::ClusterIp), SPEC);
        assert_eq!((v.verdict, v.backends.len()), (Verdict::Deny, 0), "{svc}: {v:#?}");
        assert!(v.reasons.last().unwrap().contains("no endpoints"), "{svc}: {:?}", v.reasons);
    }
}

#[test]
fn internal_traffic_policy_local_keeps_to_the_source_node() {
    // "When it's set to Local, only node local endpoints are considered." and (the note) a pod
    // on a node without endpoints sees the Service as if it had none.
    let c = cluster(
        &[
            service("itp", "{clusterIP: 10.96.0.1, internalTrafficPolicy: Local, selector: {app: web}, ports: [{port: 80, targetPort: http}]}"),
            service("remote", "{clusterIP: 10.96.0.2, internalTrafficPolicy: Local, selector: {app: web, only: node1}, ports: [{port: 80}]}"),
        ]
        .join("---\n"),
    );
    assert_eq!(names(&c, &eval(&c, "x/c0", &frontend(&c, "itp", FrontendKind::ClusterIp), SPEC)), set(&["x/web-0"]));
    assert_eq!(names(&c, &eval(&c, "x/c1", &frontend(&c, "itp", FrontendKind::ClusterIp), SPEC)), set(&["x/web-1"]));
    let mut c = c;
    let web1 = pod(&c, "x/web-1");
    c.pods[web1].labels.insert("only".into(), "node1".into());
    let v = eval(&c, "x/c0", &frontend(&c, "remote", FrontendKind::ClusterIp), SPEC);
    assert_eq!(v.verdict, Verdict::Deny, "{v:#?}");
    assert!(v.reasons.last().unwrap().contains("no endpoint on node0"), "{:?}", v.reasons);
    assert_eq!(eval(&c, "x/c1", &frontend(&c, "remote", FrontendKind::ClusterIp), SPEC).verdict, Verdict::Allow);
    // Without a node for the source, "local" has no meaning.
    let c0 = pod(&c, "x/c0");
    c.pods[c0].node = None;
    assert_eq!(eval(&c, "x/c0", &frontend(&c, "itp", FrontendKind::ClusterIp), SPEC).verdict, Verdict::Undefined);
}

#[test]
fn external_traffic_policy_cluster_masquerades_node_ports_and_load_balancer_ips() {
    // ETP Cluster "obscures the client source IP and may cause a second hop to another node"
    // (Service docs, external traffic policy): the source becomes the translating node.
    let c = cluster(&service(
        "np",
        "{type: LoadBalancer, clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http, nodePort: 30080}]}\nstatus: {loadBalancer: {ingress: [{ip: 172.18.255.1}]}}",
    ));
    for (src, kind, node_ip) in [
        ("x/c0", FrontendKind::NodePort { node: 1 }, "172.18.1.2"),
        ("x/c0", FrontendKind::NodePort { node: 0 }, "172.18.0.2"),
        ("x/c1", FrontendKind::LoadBalancer, "172.18.1.2"),
    ] {
        let v = eval(&c, src, &frontend(&c, "np", kind), SPEC);
        assert_eq!(v.verdict, Verdict::Allow, "{kind:?}: {v:#?}");
        assert_eq!(names(&c, &v), set(&["x/web-0", "x/web-1"]), "{kind:?}");
        assert_eq!(v.snat, Some(ip(node_ip)), "{kind:?}: masqueraded by the node that translated");
    }
}

#[test]
fn external_traffic_policy_local_serves_from_the_addressed_node_and_keeps_the_client() {
    // "each node will deliver traffic only to the node-local endpoints of the service, without
    // masquerading the client source IP. (Traffic mistakenly sent to a node with no endpoints
    // will be dropped.)" (ServiceSpec.externalTrafficPolicy): that is external traffic. From
    // within the cluster, "clients sending to a NodePort from within the cluster may need to
    // take traffic policy into account when picking a node": nothing is promised, so spec
    // leaves it open and the lab and kube-proxy profiles say what they do.
    let c = cluster(&[
        service("local", "{type: LoadBalancer, externalTrafficPolicy: Local, clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http, nodePort: 30080}]}\nstatus: {loadBalancer: {ingress: [{ip: 172.18.255.1}]}}"),
        service("only0", "{type: NodePort, externalTrafficPolicy: Local, clusterIP: 10.96.0.2, selector: {app: web, only: node0}, ports: [{port: 80, targetPort: http, nodePort: 30081}]}"),
    ]
    .join("---\n"));
    let remote = frontend(&c, "local", FrontendKind::NodePort { node: 1 });
    let v = eval(&c, "x/c0", &remote, SPEC);
    assert_eq!((v.verdict, v.backends.len()), (Verdict::Undefined, 0), "{v:#?}");
    assert!(v.reasons.last().unwrap().contains("may need to take traffic policy into account when picking a node"), "{:?}", v.reasons);
    assert_eq!(eval(&c, "x/c1", &remote, SPEC).verdict, Verdict::Undefined, "the node's own pods too");
    // The lab: a pod of another node is an external client of node1.
    let v = eval(&c, "x/c0", &remote, LAB);
    assert_eq!((v.verdict, names(&c, &v), v.snat), (Verdict::Allow, set(&["x/web-1"]), None), "{v:#?}");
    assert!(v.reasons.iter().any(|r| r.starts_with("profile lab: ")), "a profile rule says so: {:?}", v.reasons);
    // Traffic of the node's own pods is short-circuited to every endpoint, keeping the source
    // (the lab and kube-proxy alike).
    for profile in [LAB, KUBE_PROXY] {
        let v = eval(&c, "x/c1", &remote, profile);
        assert_eq!((v.verdict, names(&c, &v), v.snat), (Verdict::Allow, set(&["x/web-0", "x/web-1"]), None), "{profile}: {v:#?}");
    }
    // "traffic sent to an External IP or LoadBalancer IP from within the cluster will always get
    // 'Cluster' semantics": every endpoint, under every profile.
    for profile in Profile::ALL {
        let v = eval(&c, "x/c0", &frontend(&c, "local", FrontendKind::LoadBalancer), profile);
        assert_eq!((v.verdict, names(&c, &v), v.snat), (Verdict::Allow, set(&["x/web-0", "x/web-1"]), None), "{profile}: {v:#?}");
    }
    // A node without a local endpoint drops external traffic (the lab).
    let mut c = c;
    let web0 = pod(&c, "x/web-0");
    c.pods[web0].labels.insert("only".into(), "node0".into());
    let v = eval(&c, "x/c0", &frontend(&c, "only0", FrontendKind::NodePort { node: 1 }), LAB);
    assert_eq!(v.verdict, Verdict::Deny, "{v:#?}");
    assert!(v.reasons.last().unwrap().contains("no endpoint on node1"), "{:?}", v.reasons);
    assert_eq!(names(&c, &eval(&c, "x/c1", &frontend(&c, "only0", FrontendKind::NodePort { node: 0 }), LAB)), set(&["x/web-0"]));
}

#[test]
fn kube_proxy_short_circuits_every_pod_and_loses_replies_that_bypass_the_addressed_node() {
    // kube-proxy's default --detect-local-mode=ClusterCIDR: "kube-proxy will consider traffic to
    // be local if its source IP is in this range" (--cluster-cidr), so a pod reaching another
    // node's node port under externalTrafficPolicy Local goes to every endpoint with its own
    // address. An endpoint off the addressed node answers the pod directly, past the addressed
    // node's connection tracking: that reply is lost, as measured on a real kube-proxy.
    let c = cluster(&[
        service("local", "{type: NodePort, externalTrafficPolicy: Local, clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http, nodePort: 30080}]}"),
        service("only0", "{type: NodePort, externalTrafficPolicy: Local, clusterIP: 10.96.0.2, selector: {app: web, only: node0}, ports: [{port: 80, targetPort: http, nodePort: 30081}]}"),
    ]
    .join("---\n"));
    let v = eval(&c, "x/c0", &frontend(&c, "local", FrontendKind::NodePort { node: 1 }), KUBE_PROXY);
    assert_eq!((v.verdict, names(&c, &v), v.snat), (Verdict::Undefined, set(&["x/web-1"]), None), "{v:#?}");
    assert!(
        v.reasons.iter().any(|r| r == "profile kube-proxy: x/web-0: its reply goes to the client past node1's connection tracking and is lost"),
        "{:?}",
        v.reasons
    );
    let mut c = c;
    let web0 = pod(&c, "x/web-0");
    c.pods[web0].labels.insert("only".into(), "node0".into());
    let v = eval(&c, "x/c1", &frontend(&c, "only0", FrontendKind::NodePort { node: 0 }), KUBE_PROXY);
    assert_eq!((v.verdict, names(&c, &v)), (Verdict::Allow, set(&["x/web-0"])), "the only endpoint is on the addressed node: {v:#?}");
    let v = eval(&c, "x/c0", &frontend(&c, "only0", FrontendKind::NodePort { node: 1 }), KUBE_PROXY);
    assert_eq!(v.verdict, Verdict::Deny, "every reply is lost, where the lab drops at node1: {v:#?}");
}

#[test]
fn local_means_the_node_in_the_model_for_the_lab_and_any_pod_for_kube_proxy() {
    // The lab short-circuits ETP Local traffic from the pods it places on the node; kube-proxy
    // (--detect-local-mode=ClusterCIDR) from every pod address. A pod of node0 reaching node1's
    // node port shows the difference.
    let c = cluster(&service(
        "local",
        "{type: NodePort, externalTrafficPolicy: Local, clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http, nodePort: 30080}]}",
    ));
    let remote = frontend(&c, "local", FrontendKind::NodePort { node: 1 });
    assert_eq!(names(&c, &eval(&c, "x/c0", &remote, LAB)), set(&["x/web-1"]));
    assert!(eval(&c, "x/c0", &remote, KUBE_PROXY).reasons.iter().any(|r| r.contains("--detect-local-mode=ClusterCIDR")));
}

#[test]
fn readiness_and_terminating_endpoints() {
    // EndpointSlice conditions (KEP-1672): a pod that is not ready is no ready endpoint, nor is
    // a terminating one unless publishNotReadyAddresses is set; kube-proxy (KEP-1669, Proxy
    // Terminating Endpoints) falls back to terminating endpoints that are still serving only
    // when no endpoint is ready.
    let mut c = cluster(
        &[
            service("web", "{clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http}]}"),
            service("all", "{clusterIP: 10.96.0.2, publishNotReadyAddresses: true, selector: {app: web}, ports: [{port: 80, targetPort: http}]}"),
        ]
        .join("---\n"),
    );
    let (web0, web1) = (pod(&c, "x/web-0"), pod(&c, "x/web-1"));
    c.pods[web0].ready = false;
    let web = frontend(&c, "web", FrontendKind::ClusterIp);
    assert_eq!(names(&c, &eval(&c, "x/c0", &web, SPEC)), set(&["x/web-1"]), "not ready: left out");
    c.pods[web1].terminating = true;
    let v = eval(&c, "x/c0", &web, SPEC);
    assert_eq!((v.verdict, names(&c, &v)), (Verdict::Allow, set(&["x/web-1"])), "no ready endpoint: the serving terminating one is used");
    assert!(v.reasons.iter().any(|r| r.contains("terminating endpoints that still serve")), "{:?}", v.reasons);
    c.pods[web0].ready = true;
    assert_eq!(names(&c, &eval(&c, "x/c0", &web, SPEC)), set(&["x/web-0"]), "a ready endpoint exists: the terminating one is not used");
    c.pods[web0].ready = false;
    c.pods[web1].ready = false;
    assert_eq!(eval(&c, "x/c0", &web, SPEC).verdict, Verdict::Deny, "terminating and not serving: nothing");
    // "all endpoints are considered 'ready' even if the Pods themselves are not" (ServiceSpec.publishNotReadyAddresses)
    assert_eq!(names(&c, &eval(&c, "x/c0", &frontend(&c, "all", FrontendKind::ClusterIp), SPEC)), set(&["x/web-0", "x/web-1"]));
}

#[test]
fn a_pod_reaching_itself_through_its_service_is_promised() {
    // "A Pod fails to reach itself via the Service IP: This might sound unlikely, but it does
    // happen and it is supposed to work." (Debug Services)
    let c = cluster(&service("web", "{clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http}]}"));
    let web = frontend(&c, "web", FrontendKind::ClusterIp);
    for profile in Profile::ALL {
        let v = eval(&c, "x/web-0", &web, profile);
        assert_eq!((v.verdict, names(&c, &v)), (Verdict::Allow, set(&["x/web-0", "x/web-1"])), "{profile}: {v:#?}");
        assert!(v.reasons.iter().any(|r| r.contains("supposed to work")), "{:?}", v.reasons);
    }
    // Not an endpoint itself (legacy has no http port): an ordinary client.
    assert_eq!(eval(&c, "x/legacy", &web, SPEC).verdict, Verdict::Allow);
}

#[test]
fn a_pod_cannot_block_access_to_itself_through_its_service() {
    // "exception: a pod cannot block access to itself" and "traffic to and from the node where
    // a Pod is running is always allowed" (Network Policies): masqueraded to its node or not,
    // the pod's own leg passes. The lab checks it against the pod's own policies instead.
    let self_only = service("self", "{clusterIP: 10.96.0.9, selector: {app: web, only: me}, ports: [{port: 80, targetPort: http}]}");
    let isolated = policy("isolated", "{podSelector: {matchLabels: {app: web}}, ingress: [{from: [{podSelector: {matchLabels: {role: client}}}]}]}");
    let mut c = cluster(&[self_only.as_str(), &isolated].join("---\n"));
    let web0 = pod(&c, "x/web-0");
    c.pods[web0].labels.insert("only".into(), "me".into());
    let f = frontend(&c, "self", FrontendKind::ClusterIp);
    for profile in [SPEC, KUBE_PROXY] {
        let v = eval(&c, "x/web-0", &f, profile);
        assert_eq!(v.verdict, Verdict::Allow, "{profile}: {v:#?}");
        assert!(v.reasons.iter().any(|r| r.contains("a pod cannot block access to itself")), "{:?}", v.reasons);
    }
    let v = eval(&c, "x/web-0", &f, LAB);
    assert_eq!(v.verdict, Verdict::Deny, "{v:#?}");
    assert!(v.reasons.iter().any(|r| r.contains("x/web-0: denied by its ingress policies (TCP 8080 from x/web-0)")), "{:?}", v.reasons);
}

#[test]
fn external_name_is_dns_only_and_undefined() {
    // "Services of type ExternalName map a Service to a DNS name ... No proxying of any kind is set up."
    let c = cluster(&service("db", "{type: ExternalName, externalName: db.example.com, ports: [{port: 5432}]}"));
    let v = eval(&c, "x/c0", &frontend(&c, "db", FrontendKind::ExternalName), SPEC);
    assert_eq!((v.verdict, v.backends.len(), v.snat), (Verdict::Undefined, 0, None));
    assert!(v.reasons.last().unwrap().contains("CNAME for db.example.com"), "{:?}", v.reasons);
}

#[test]
fn network_policy_applies_to_the_translated_connection() {
    // NetworkPolicy selects pods and ports of pods, not Services: the lab checks it after the
    // Service address was translated, so rules name the target port, not the Service port.
    let svc = service("web", "{clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http}]}");
    let target =
        policy("target", "{podSelector: {matchLabels: {app: web}}, ingress: [{from: [{podSelector: {matchLabels: {role: client}}}], ports: [{port: http}]}]}");
    let c = cluster(&[svc.as_str(), &target].join("---\n"));
    let v = eval(&c, "x/c0", &frontend(&c, "web", FrontendKind::ClusterIp), SPEC);
    assert_eq!((v.verdict, names(&c, &v)), (Verdict::Allow, set(&["x/web-0", "x/web-1"])), "{v:#?}");
    let service_port = policy("service-port", "{podSelector: {matchLabels: {app: web}}, ingress: [{ports: [{port: 80}]}]}");
    let c = cluster(&[svc.as_str(), &service_port].join("---\n"));
    let v = eval(&c, "x/c0", &frontend(&c, "web", FrontendKind::ClusterIp), SPEC);
    assert_eq!(v.verdict, Verdict::Deny, "the Service port is not what the backend receives: {v:#?}");
    assert!(v.reasons.iter().any(|r| r.contains("x/web-0: denied by its ingress policies (TCP 8080 from x/c0)")), "{:?}", v.reasons);
    // Egress of the source, also on the target port; allowing one backend but not the other
    // leaves the outcome to the endpoint the proxy picks.
    let egress = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: egress, namespace: x}\nspec: {podSelector: {matchLabels: {role: client}}, policyTypes: [Egress], egress: [{ports: [{port: 8081}]}]}\n";
    let c = cluster(&[svc.as_str(), egress].join("---\n"));
    let v = eval(&c, "x/c0", &frontend(&c, "web", FrontendKind::ClusterIp), SPEC);
    assert_eq!((v.verdict, names(&c, &v)), (Verdict::Undefined, set(&["x/web-1"])), "{v:#?}");
    assert!(v.reasons.iter().any(|r| r.contains("x/web-0: denied by the egress policies of x/c0 (TCP 8080 to x/web-0)")), "{:?}", v.reasons);
}

#[test]
fn a_masqueraded_source_is_what_a_remote_backend_checks() {
    // "Cluster ingress and egress mechanisms often require rewriting the source or destination IP
    // of packets. In cases where this happens, it is not defined whether this happens before or
    // after NetworkPolicy processing" (Network Policies). The lab: masquerade comes after the
    // translating node's policy, so a backend on that node checks the client and a backend on
    // another node the translating node's address.
    let svc = service("np", "{type: NodePort, clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http, nodePort: 30080}]}");
    let from_clients = policy("from-clients", "{podSelector: {matchLabels: {app: web}}, ingress: [{from: [{podSelector: {matchLabels: {role: client}}}]}]}");
    let c = cluster(&[svc.as_str(), &from_clients].join("---\n"));
    let np0 = frontend(&c, "np", FrontendKind::NodePort { node: 0 });
    for profile in [LAB, KUBE_PROXY] {
        let v = eval(&c, "x/c0", &np0, profile);
        assert_eq!((v.verdict, names(&c, &v), v.snat), (Verdict::Undefined, set(&["x/web-0"]), Some(ip("172.18.0.2"))), "{profile}: {v:#?}");
        assert!(v.reasons.iter().any(|r| r.contains("x/web-1: denied by its ingress policies (TCP 8081 from 172.18.0.2)")), "{:?}", v.reasons);
    }
    // spec: web-1 may see the client (allowed) or node0 (denied); web-0 the client or its own
    // node, both allowed. So web-0 surely answers and web-1 perhaps.
    let v = eval(&c, "x/c0", &np0, SPEC);
    assert_eq!((v.verdict, names(&c, &v), v.snat), (Verdict::Undefined, set(&["x/web-0", "x/web-1"]), Some(ip("172.18.0.2"))), "{v:#?}");
    assert!(
        v.reasons.last().unwrap().contains("it is not defined whether this [rewriting] happens before or after NetworkPolicy processing"),
        "{:?}",
        v.reasons
    );
    let from_nodes = policy("from-nodes", "{podSelector: {matchLabels: {app: web}}, ingress: [{from: [{ipBlock: {cidr: 172.18.0.0/16}}]}]}");
    let c = cluster(&[svc.as_str(), &from_clients, &from_nodes].join("---\n"));
    for profile in Profile::ALL {
        let v = eval(&c, "x/c0", &frontend(&c, "np", FrontendKind::NodePort { node: 0 }), profile);
        assert_eq!((v.verdict, names(&c, &v)), (Verdict::Allow, set(&["x/web-0", "x/web-1"])), "allowed either way, {profile}: {v:#?}");
    }
}

#[test]
fn the_source_egress_sees_a_remote_node_port_untranslated() {
    // A node port of another node is translated there; the source's node sees the packet to the
    // node's address and node port (lab), so that is what egress policies must allow.
    let svc = service("np", "{type: NodePort, clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http, nodePort: 30080}]}");
    let to_pods = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: to-pods, namespace: x}\nspec: {podSelector: {matchLabels: {role: client}}, policyTypes: [Egress], egress: [{to: [{podSelector: {matchLabels: {app: web}}}]}]}\n";
    let c = cluster(&[svc.as_str(), to_pods].join("---\n"));
    let remote = frontend(&c, "np", FrontendKind::NodePort { node: 1 });
    let v = eval(&c, "x/c0", &remote, LAB);
    assert_eq!(v.verdict, Verdict::Deny, "{v:#?}");
    assert!(v.reasons.iter().any(|r| r.contains("denied by the egress policies of x/c0 (TCP 30080 to 172.18.1.2)")), "{:?}", v.reasons);
    assert_eq!(eval(&c, "x/c0", &frontend(&c, "np", FrontendKind::NodePort { node: 0 }), LAB).verdict, Verdict::Allow, "its own node translates first");
    // spec: the egress policies may see either side of the translation.
    let v = eval(&c, "x/c0", &remote, SPEC);
    assert_eq!(v.verdict, Verdict::Undefined, "{v:#?}");
    assert!(v.reasons.iter().any(|r| r.contains("the egress policies of x/c0 allow TCP 8081 to x/web-1 but not TCP 30080 to 172.18.1.2")), "{:?}", v.reasons);
    let to_nodes = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: to-nodes, namespace: x}\nspec: {podSelector: {matchLabels: {role: client}}, policyTypes: [Egress], egress: [{to: [{ipBlock: {cidr: 172.18.1.2/32}}], ports: [{port: 30080}]}]}\n";
    let c = cluster(&[svc.as_str(), to_nodes].join("---\n"));
    assert_eq!(eval(&c, "x/c0", &remote, LAB).verdict, Verdict::Allow);
}

#[test]
fn client_ip_affinity_keeps_every_endpoint_possible_for_a_first_connection() {
    // "connections from a particular client are passed to the same Pod each time": the first
    // connection decides which, so for one probe any endpoint may answer.
    let c = cluster(&service("sticky", "{clusterIP: 10.96.0.1, sessionAffinity: ClientIP, selector: {app: web}, ports: [{port: 80, targetPort: http}]}"));
    let v = eval(&c, "x/c0", &frontend(&c, "sticky", FrontendKind::ClusterIp), SPEC);
    assert_eq!((v.verdict, names(&c, &v)), (Verdict::Allow, set(&["x/web-0", "x/web-1"])));
    assert!(v.reasons.iter().any(|r| r.contains("ClientIP affinity") && r.contains("10800s")), "{:?}", v.reasons);
}

#[test]
fn node_ports_need_the_source_node() {
    let mut c = cluster(&service("np", "{type: NodePort, clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http, nodePort: 30080}]}"));
    let c0 = pod(&c, "x/c0");
    c.pods[c0].node = None;
    let v = eval(&c, "x/c0", &frontend(&c, "np", FrontendKind::NodePort { node: 0 }), SPEC);
    assert_eq!(v.verdict, Verdict::Undefined, "{v:#?}");
    assert!(v.reasons.last().unwrap().contains("spec.nodeName"), "{:?}", v.reasons);
    assert_eq!(eval(&c, "x/c0", &frontend(&c, "np", FrontendKind::ClusterIp), SPEC).verdict, Verdict::Allow, "a cluster IP does not care");
}

#[test]
fn service_lines_list_every_cell_that_is_not_denied() {
    let c = cluster(
        &[
            service("web", "{clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http}]}"),
            service("none", "{clusterIP: 10.96.0.2, selector: {app: nobody}, ports: [{port: 80}]}"),
        ]
        .join("---\n"),
    );
    let mut reach = Reachability::compute(&c, Options { ipblocks_match_pods: true });
    let lines = netmatrix_oracle::services::service_lines(&c, &mut reach, SPEC);
    let shown: Vec<(String, String, Verdict)> = lines.iter().map(|l| (l.src.clone(), l.frontend.clone(), l.verdict)).collect();
    let web = "svc:x/web:80/TCP".to_owned();
    assert_eq!(
        shown,
        [
            ("other/web-y[Pod]".to_owned(), web.clone(), Verdict::Allow),
            ("x/c0[Pod]".to_owned(), web.clone(), Verdict::Allow),
            ("x/c1[Pod]".to_owned(), web.clone(), Verdict::Allow),
            ("x/legacy[Pod]".to_owned(), web.clone(), Verdict::Allow),
            ("x/web-0[Pod]".to_owned(), web.clone(), Verdict::Allow),
            ("x/web-1[Pod]".to_owned(), web, Verdict::Allow),
        ],
        "sorted by source; the Service without endpoints denies everyone and is not listed"
    );
    assert_eq!(lines[1].backends, ["x/web-0[Pod]", "x/web-1[Pod]"]);
    assert_eq!(lines[4].reason, None, "{lines:#?}");
    // --explain: one entry per frontend of the Service, or of one of its ports.
    let s = find_service(&c, "svc:x/web").unwrap();
    let e = netmatrix_oracle::services::explain(&c, &mut reach, pod(&c, "x/c0"), s, Some((80, Protocol::Tcp)), SPEC);
    assert_eq!((e.len(), e[0].verdict, e[0].backends.len()), (1, Verdict::Allow, 2));
    assert!(netmatrix_oracle::services::explain(&c, &mut reach, pod(&c, "x/c0"), s, Some((81, Protocol::Tcp)), SPEC).is_empty());
    assert!(find_service(&c, "svc:x/nope").unwrap_err().contains("no Service x/nope"));
    assert!(find_service(&c, "x/web").is_err(), "the svc: prefix is required");
}

#[test]
fn endpoint_slices_when_given_replace_the_selector() {
    // "If empty or not present, the service is assumed to have an external process managing its
    // endpoints" (ServiceSpec.selector): that process writes EndpointSlices labelled
    // kubernetes.io/service-name, whose port of the Service port's name gives the target port
    // and whose conditions say which endpoints are ready.
    let slice = |name: &str, endpoints: &str| {
        format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {name}, namespace: x, labels: {{kubernetes.io/service-name: manual}}}}\naddressType: IPv4\nports: [{{name: http, port: 9090}}]\nendpoints: {endpoints}\n"
        )
    };
    let c = cluster(
        &[
            service("manual", "{clusterIP: 10.96.0.1, ports: [{name: http, port: 80}]}"),
            slice("manual-a", "[{addresses: [10.244.0.10]}, {addresses: [10.244.1.10], conditions: {ready: false, serving: true, terminating: true}}]"),
            slice("manual-b", "[{addresses: [10.244.0.11], targetRef: {kind: Pod, name: legacy}, conditions: {ready: false}}, {addresses: [192.0.2.9]}]"),
        ]
        .join("---\n"),
    );
    let v = eval(&c, "x/c0", &frontend(&c, "manual", FrontendKind::ClusterIp), SPEC);
    assert_eq!(
        (v.verdict, names(&c, &v), v.addresses.clone()),
        (Verdict::Allow, set(&["x/web-0"]), vec![ip("192.0.2.9")]),
        "ready only; a terminating one waits for none to be ready: {v:#?}"
    );
    assert!(v.reasons.iter().any(|r| r.contains("x/web-0 (port 9090)")), "the slice's port: {:?}", v.reasons);
    assert!(v.reasons.iter().any(|r| r.contains("endpoint 192.0.2.9 is no pod of the input: a backend outside it")), "{:?}", v.reasons);
    assert_eq!(v.backend_names(&c), ["192.0.2.9[External]", "x/web-0[Pod]"]);
    // Slices override the selector too: the selected pods are not endpoints then.
    let c = cluster(
        &[
            service("manual", "{clusterIP: 10.96.0.1, selector: {role: client}, ports: [{name: http, port: 80}]}"),
            slice("manual-a", "[{addresses: [10.244.1.10], conditions: {ready: false, serving: true, terminating: true}}]"),
        ]
        .join("---\n"),
    );
    let v = eval(&c, "x/c0", &frontend(&c, "manual", FrontendKind::ClusterIp), SPEC);
    assert_eq!((v.verdict, names(&c, &v)), (Verdict::Allow, set(&["x/web-1"])), "no ready endpoint: the serving terminating one: {v:#?}");
}

#[test]
fn a_node_client_of_a_cluster_ip_is_masqueraded_by_kube_proxy() {
    // kube-proxy's --cluster-cidr: "traffic sent to a Service cluster IP from outside this
    // range will be masqueraded". The lab keeps the node's address; Kubernetes does not say.
    let svc = service("web", "{clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http}]}");
    let mut c = cluster(&svc);
    let c0 = pod(&c, "x/c0");
    c.pods[c0].host_network = true;
    let web = frontend(&c, "web", FrontendKind::ClusterIp);
    let expect = [
        (SPEC, None, "is the implementation's choice"),
        (LAB, None, "profile lab: a hostNetwork client keeps"),
        (KUBE_PROXY, Some(ip("172.18.0.2")), "profile kube-proxy: the client is outside --cluster-cidr"),
    ];
    for (profile, snat, reason) in expect {
        let v = eval(&c, "x/c0", &web, profile);
        assert_eq!((v.verdict, v.snat), (Verdict::Allow, snat), "{profile}: {v:#?}");
        assert!(v.reasons.iter().any(|r| r.contains(reason)), "{profile}: {:?}", v.reasons);
    }
    // "NetworkPolicy behavior for hostNetwork pods is undefined" (Network Policies): with a
    // policy present, only the lab (which renders them as pods) decides.
    let any = policy("any", "{podSelector: {matchLabels: {app: other}}, ingress: [{}]}");
    c = cluster(&[svc.as_str(), &any].join("---\n"));
    c.pods[c0].host_network = true;
    for profile in [SPEC, KUBE_PROXY] {
        let v = eval(&c, "x/c0", &web, profile);
        assert_eq!(v.verdict, Verdict::Undefined, "{profile}: {v:#?}");
        assert!(v.reasons.last().unwrap().contains("NetworkPolicy behavior for hostNetwork pods is undefined"), "{:?}", v.reasons);
    }
    assert_eq!(eval(&c, "x/c0", &web, LAB).verdict, Verdict::Allow);
}

#[test]
fn endpoints_outside_the_cluster_are_backends_and_egress_may_see_either_address() {
    // "For egress, this means that connections from pods to Service IPs that get rewritten to
    // cluster-external IPs may or may not be subject to ipBlock-based policies" (Network
    // Policies): spec expects only what holds for both the Service and the endpoint address.
    let slice = "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: db-1, namespace: x, labels: {kubernetes.io/service-name: db}}\naddressType: IPv4\nports: [{name: sql, port: 5432}]\nendpoints: [{addresses: [192.0.2.9]}]\n";
    let svc = service("db", "{clusterIP: 10.96.0.5, ports: [{name: sql, port: 5432}]}");
    let egress = |cidr: &str| {
        format!(
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: out, namespace: x}}\nspec: {{podSelector: {{matchLabels: {{role: client}}}}, policyTypes: [Egress], egress: [{{to: [{{ipBlock: {{cidr: {cidr}}}}}]}}]}}\n"
        )
    };
    let c = cluster(&[svc.as_str(), slice].join("---\n"));
    let v = eval(&c, "x/c0", &frontend(&c, "db", FrontendKind::ClusterIp), SPEC);
    assert_eq!((v.verdict, v.addresses.clone(), v.backends.len()), (Verdict::Allow, vec![ip("192.0.2.9")], 0), "{v:#?}");
    let c = cluster(&[svc.as_str(), slice, &egress("192.0.2.0/24")].join("---\n"));
    let db = frontend(&c, "db", FrontendKind::ClusterIp);
    let v = eval(&c, "x/c0", &db, SPEC);
    assert_eq!(v.verdict, Verdict::Undefined, "{v:#?}");
    assert!(v.reasons.iter().any(|r| r.contains("allow TCP 5432 to 192.0.2.9 but not TCP 5432 to 10.96.0.5")), "{:?}", v.reasons);
    // The lab and kube-proxy translate before the forward hook: the endpoint address counts.
    for profile in [LAB, KUBE_PROXY] {
        assert_eq!(eval(&c, "x/c0", &db, profile).verdict, Verdict::Allow, "{profile}");
    }
    let c = cluster(&[svc.as_str(), slice, &egress("198.51.100.0/24")].join("---\n"));
    let v = eval(&c, "x/c0", &frontend(&c, "db", FrontendKind::ClusterIp), SPEC);
    assert_eq!(v.verdict, Verdict::Deny, "denied for both addresses: {v:#?}");
}

#[test]
fn traffic_distribution_is_a_hint_that_narrows_nothing() {
    // "Implementations can use this field as a hint, but are not required to guarantee strict
    // adherence" (ServiceSpec.trafficDistribution).
    let c =
        cluster(&service("near", "{clusterIP: 10.96.0.1, trafficDistribution: PreferSameNode, selector: {app: web}, ports: [{port: 80, targetPort: http}]}"));
    let v = eval(&c, "x/c0", &frontend(&c, "near", FrontendKind::ClusterIp), SPEC);
    assert_eq!((v.verdict, names(&c, &v)), (Verdict::Allow, set(&["x/web-0", "x/web-1"])), "{v:#?}");
    assert!(v.reasons.iter().any(|r| r.contains("trafficDistribution PreferSameNode is a hint")), "{:?}", v.reasons);
}

#[test]
fn load_balancer_ips_from_within_the_cluster_may_or_may_not_be_masqueraded() {
    // "traffic sent to an External IP or LoadBalancer IP from within the cluster will always get
    // 'Cluster' semantics" (ServiceSpec): every endpoint; whether the source is masqueraded is
    // not said, so under spec a policy that admits clients but not nodes leaves web-1 open. The
    // lab and kube-proxy short-circuit pods with their own address.
    let svc = service(
        "lb",
        "{type: LoadBalancer, externalTrafficPolicy: Local, clusterIP: 10.96.0.1, selector: {app: web}, ports: [{port: 80, targetPort: http, nodePort: 30080}]}\nstatus: {loadBalancer: {ingress: [{ip: 172.18.255.1}]}}",
    );
    let from_clients = policy("from-clients", "{podSelector: {matchLabels: {app: web}}, ingress: [{from: [{podSelector: {matchLabels: {role: client}}}]}]}");
    let c = cluster(&[svc.as_str(), &from_clients].join("---\n"));
    let lb = frontend(&c, "lb", FrontendKind::LoadBalancer);
    let v = eval(&c, "x/c0", &lb, SPEC);
    assert_eq!((v.verdict, names(&c, &v), v.snat), (Verdict::Undefined, set(&["x/web-0", "x/web-1"]), None), "{v:#?}");
    assert!(
        v.reasons.iter().any(|r| r.contains("x/web-1: the ingress policies of x/web-1 allow TCP 8081 from x/c0 but not TCP 8081 from 172.18.0.2")),
        "{:?}",
        v.reasons
    );
    for profile in [LAB, KUBE_PROXY] {
        assert_eq!(eval(&c, "x/c0", &lb, profile).verdict, Verdict::Allow, "{profile}");
    }
}

#[test]
fn external_ips_are_frontends_with_cluster_semantics_from_within() {
    // "Traffic that ingresses into the cluster with the external IP (as destination IP), on the
    // Service port, will be routed to one of the Service endpoints" (Service docs, external IPs),
    // and "traffic sent to an External IP or LoadBalancer IP from within the cluster will always
    // get 'Cluster' semantics" (ServiceSpec.externalTrafficPolicy).
    let c = cluster(&[
        service("ext", "{clusterIP: 10.96.0.1, externalIPs: [198.51.100.7], selector: {app: web}, ports: [{port: 80, targetPort: http}]}"),
        service("ext-local", "{type: NodePort, externalTrafficPolicy: Local, clusterIP: 10.96.0.2, externalIPs: [198.51.100.8], selector: {app: web}, ports: [{port: 80, targetPort: http, nodePort: 30080}]}"),
    ]
    .join("---\n"));
    let labels: Vec<String> = frontends(&c).iter().map(|f| f.label(&c)).collect();
    assert_eq!(labels[..2], ["svc:x/ext:80/TCP", "svc:x/ext:80/TCP[ExternalIP 198.51.100.7]"]);
    let ext = frontend(&c, "ext", FrontendKind::ExternalIp);
    assert_eq!((ext.address, ext.dst_port), (Some(ip("198.51.100.7")), 80), "the Service port on the external IP");
    for profile in Profile::ALL {
        let v = eval(&c, "x/c1", &ext, profile);
        assert_eq!(
            (v.verdict, names(&c, &v), v.snat),
            (Verdict::Allow, set(&["x/web-0", "x/web-1"]), Some(ip("172.18.1.2"))),
            "Cluster masquerades, {profile}: {v:#?}"
        );
        let v = eval(&c, "x/c1", &frontend(&c, "ext-local", FrontendKind::ExternalIp), profile);
        assert_eq!((v.verdict, names(&c, &v)), (Verdict::Allow, set(&["x/web-0", "x/web-1"])), "Local, from within: every endpoint, {profile}: {v:#?}");
    }
}
