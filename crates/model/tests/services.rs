//! Services: types, virtual addresses, traffic policies, affinity, ports and their defaults,
//! endpoint selection, and errors that name the field.

use std::net::IpAddr;

use netmatrix_model::{
    ContainerPort, DEFAULT_AFFINITY_TIMEOUT_SECONDS, IpFamily, IpFamilyPolicy, Protocol, Service, ServiceType, SessionAffinity, TargetPort, TrafficPolicy,
    parse_str,
};

fn service(spec_and_status: &str) -> String {
    format!("apiVersion: v1\nkind: Service\nmetadata: {{name: s, namespace: ns}}\n{spec_and_status}")
}

fn load(spec_and_status: &str) -> Service {
    let cluster = parse_str("svc.yaml", &service(spec_and_status)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cluster.services.len(), 1);
    cluster.services.into_iter().next().unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// Asserts loading fails, every error naming svc.yaml and the Service, and each expected
/// (field, message fragment) pair appearing among them.
fn fails_with(spec_and_status: &str, expected: &[(&str, &str)]) {
    let errors = parse_str("svc.yaml", &service(spec_and_status)).expect_err("input must be rejected").0;
    for e in &errors {
        assert_eq!((e.file.as_str(), e.document, e.object.as_deref()), ("svc.yaml", Some(1), Some("Service ns/s")), "{e}");
    }
    for (field, fragment) in expected {
        assert!(
            errors.iter().any(|e| e.field.as_deref() == Some(*field) && e.message.contains(fragment)),
            "no error on {field} containing {fragment:?} in {errors:#?}"
        );
    }
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
}

#[test]
fn a_minimal_service_gets_the_api_defaults() {
    let s = load("spec: {selector: {app: a}, ports: [{port: 80}]}");
    assert_eq!(s.service_type, ServiceType::ClusterIp);
    assert_eq!((s.cluster_ip, s.headless, s.external_name.as_deref()), (None, false, None), "no clusterIP in the manifest: not allocated yet");
    assert_eq!((s.external_traffic_policy, s.internal_traffic_policy), (TrafficPolicy::Cluster, TrafficPolicy::Cluster));
    assert_eq!(s.session_affinity, SessionAffinity::None);
    assert!(s.load_balancer_ips.is_empty() && !s.publish_not_ready_addresses && s.traffic_distribution.is_none() && s.external_ips.is_empty());
    let p = &s.ports[0];
    assert_eq!((p.name.as_deref(), p.port, p.protocol, p.node_port), (None, 80, Protocol::Tcp, None));
    assert_eq!(p.target_port, TargetPort::Number(80), "targetPort defaults to port");
    // The API server also defaults a zero or empty targetPort, and "" type and clusterIP mean unset.
    let s = load("spec: {type: \"\", clusterIP: \"\", ports: [{name: a, port: 80, targetPort: 0}, {name: b, port: 81, targetPort: \"\"}]}");
    assert_eq!(s.service_type, ServiceType::ClusterIp);
    assert_eq!(s.cluster_ip, None);
    assert_eq!(s.ports.iter().map(|p| p.target_port.clone()).collect::<Vec<_>>(), [TargetPort::Number(80), TargetPort::Number(81)]);
}

#[test]
fn every_field_is_read() {
    let s = load(
        r#"spec:
  type: LoadBalancer
  clusterIP: 10.96.0.10
  clusterIPs: [10.96.0.10, "fd00::10"]
  ipFamilies: [IPv4, IPv6]
  ipFamilyPolicy: PreferDualStack
  selector: {app: web}
  externalTrafficPolicy: Local
  internalTrafficPolicy: Local
  sessionAffinity: ClientIP
  sessionAffinityConfig: {clientIP: {timeoutSeconds: 600}}
  publishNotReadyAddresses: true
  trafficDistribution: PreferClose
  externalIPs: [198.51.100.7]
  ports:
  - {name: http, port: 80, targetPort: http, nodePort: 30080}
  - {name: dns, port: 53, protocol: UDP, targetPort: 5353}
  - {name: dns-tcp, port: 53, protocol: TCP}
status:
  loadBalancer:
    ingress: [{ip: 172.18.255.1}, {hostname: lb.example.com}, {ip: "fd00::1", ipMode: VIP}]
"#,
    );
    assert_eq!((s.namespace.as_str(), s.name.as_str()), ("ns", "s"));
    assert_eq!(s.service_type, ServiceType::LoadBalancer);
    assert_eq!(s.cluster_ip, Some(ip("10.96.0.10")));
    assert_eq!(s.cluster_ips, [ip("10.96.0.10"), ip("fd00::10")]);
    assert_eq!((s.ip_families.as_slice(), s.ip_family_policy), (IpFamily::BOTH.as_slice(), IpFamilyPolicy::PreferDualStack));
    assert_eq!((s.external_traffic_policy, s.internal_traffic_policy), (TrafficPolicy::Local, TrafficPolicy::Local));
    assert_eq!(s.session_affinity, SessionAffinity::ClientIp { timeout_seconds: 600 });
    assert!(s.publish_not_ready_addresses);
    assert_eq!(s.traffic_distribution.as_deref(), Some("PreferClose"));
    assert_eq!(s.external_ips, [ip("198.51.100.7")]);
    assert_eq!(s.load_balancer_ips, [ip("172.18.255.1"), ip("fd00::1")], "hostname-only ingress entries have no IP");
    assert_eq!(s.ports[0].target_port, TargetPort::Name("http".into()));
    assert_eq!(s.ports[0].node_port, Some(30080));
    assert_eq!((s.ports[1].protocol, s.ports[1].target_port.clone()), (Protocol::Udp, TargetPort::Number(5353)));
    assert_eq!(s.ports[2].target_port, TargetPort::Number(53));
}

#[test]
fn headless_external_name_and_cluster_ips() {
    let s = load("spec: {clusterIP: None, selector: {app: a}, ports: [{port: 80}]}");
    assert!(s.headless);
    assert_eq!(s.cluster_ip, None);
    let s = load("spec: {clusterIPs: [None]}");
    assert!(s.headless, "clusterIPs alone also says headless");
    let s = load("spec: {ipFamilyPolicy: RequireDualStack, clusterIPs: [\"fd00::10\", 10.96.0.10]}");
    assert_eq!(s.cluster_ip, Some(ip("fd00::10")), "without clusterIP, the first of clusterIPs is the primary");
    assert_eq!(s.ip_families, [IpFamily::IPv6, IpFamily::IPv4], "without ipFamilies, the families of clusterIPs in their order");
    let s = load("spec: {type: ExternalName, externalName: db.example.com., ports: [{port: 5432}]}");
    assert_eq!(s.service_type, ServiceType::ExternalName);
    assert_eq!(s.external_name.as_deref(), Some("db.example.com"), "the trailing dot of a fully qualified name is dropped");
    assert_eq!(s.cluster_ip, None);
    let s = load("spec: {externalName: ignored.example.com, ports: [{port: 80}]}");
    assert_eq!(s.external_name, None, "only ExternalName Services use externalName");
}

#[test]
fn session_affinity_timeout_defaults_and_bounds() {
    let s = load("spec: {sessionAffinity: ClientIP}");
    assert_eq!(s.session_affinity, SessionAffinity::ClientIp { timeout_seconds: DEFAULT_AFFINITY_TIMEOUT_SECONDS });
    assert_eq!(DEFAULT_AFFINITY_TIMEOUT_SECONDS, 10_800, "three hours, as the API server defaults it");
    for (t, ok) in [(1, true), (86_400, true), (0, false), (86_401, false), (-5, false)] {
        let text = service(&format!("spec: {{sessionAffinity: ClientIP, sessionAffinityConfig: {{clientIP: {{timeoutSeconds: {t}}}}}}}"));
        assert_eq!(parse_str("svc.yaml", &text).is_ok(), ok, "timeoutSeconds {t}");
    }
    let s = load("spec: {sessionAffinity: None, sessionAffinityConfig: {clientIP: {timeoutSeconds: 0}}}");
    assert_eq!(s.session_affinity, SessionAffinity::None, "the config of an unused affinity is not read");
}

#[test]
fn an_absent_or_empty_selector_selects_nothing() {
    let pods = parse_str(
        "pods.yaml",
        r#"
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: ns, labels: {app: web, tier: front}}
spec: {containers: [{ports: [{name: http, containerPort: 8080}, {name: dns, containerPort: 5353, protocol: UDP}]}]}
---
apiVersion: v1
kind: Pod
metadata: {name: web, namespace: other, labels: {app: web}}
"#,
    )
    .unwrap()
    .pods;
    let (here, elsewhere) = (&pods[0], &pods[1]);
    assert_eq!((here.namespace.as_str(), elsewhere.namespace.as_str()), ("ns", "other"));
    assert!(load("spec: {selector: {app: web}}").selects(here));
    assert!(!load("spec: {selector: {app: web}}").selects(elsewhere), "only pods of the Service's namespace");
    assert!(!load("spec: {selector: {app: web, tier: back}}").selects(here), "every label must match");
    // "If empty or not present, the service is assumed to have an external process managing its endpoints."
    assert!(!load("spec: {selector: {}}").selects(here));
    assert!(!load("spec: {}").selects(here));
}

#[test]
fn named_target_ports_resolve_per_pod_and_protocol() {
    let ports = [
        ContainerPort { name: Some("http".into()), port: 8080, protocol: Protocol::Tcp },
        ContainerPort { name: Some("dns".into()), port: 5353, protocol: Protocol::Udp },
    ];
    let http = TargetPort::Name("http".into());
    assert_eq!(http.resolve(Protocol::Tcp, &ports), Some(8080));
    assert_eq!(http.resolve(Protocol::Udp, &ports), None, "the name must belong to a port of the Service port's protocol");
    assert_eq!(TargetPort::Name("dns".into()).resolve(Protocol::Udp, &ports), Some(5353));
    assert_eq!(TargetPort::Name("grpc".into()).resolve(Protocol::Tcp, &ports), None, "a pod without the name is no endpoint");
    assert_eq!(TargetPort::Number(9000).resolve(Protocol::Sctp, &[]), Some(9000), "numbers need no container port");
}

#[test]
fn ip_families_and_clusterips_are_checked_as_the_api_server_does() {
    // The dual-stack docs and ServiceSpec: at most two families, distinct, matching clusterIPs
    // in order; SingleStack (also when absent) has one; ExternalName has none.
    fails_with("spec: {ipFamilies: [IPv4, IPv6]}", &[("spec.ipFamilyPolicy", "is absent, which means SingleStack")]);
    fails_with("spec: {ipFamilyPolicy: SingleStack, clusterIPs: [10.96.0.1, \"fd00::1\"]}", &[("spec.ipFamilyPolicy", "SingleStack allows one family")]);
    fails_with("spec: {ipFamilyPolicy: PreferDualStack, ipFamilies: [IPv4, IPv4]}", &[("spec.ipFamilies[1]", "IPv4 is listed twice")]);
    fails_with("spec: {ipFamilyPolicy: PreferDualStack, ipFamilies: [IPv4, IPv6, IPv4]}", &[("spec.ipFamilies", "at most two")]);
    fails_with("spec: {ipFamilies: [ipv6]}", &[("spec.ipFamilies[0]", "want IPv4 or IPv6")]);
    fails_with("spec: {ipFamilyPolicy: DualStack}", &[("spec.ipFamilyPolicy", "want SingleStack, PreferDualStack or RequireDualStack")]);
    fails_with("spec: {ipFamilies: [IPv6], clusterIP: 10.96.0.1}", &[("spec.clusterIPs[0]", "10.96.0.1 is IPv4, and spec.ipFamilies[0] is IPv6")]);
    fails_with(
        "spec: {ipFamilyPolicy: RequireDualStack, clusterIPs: [10.96.0.1, 10.96.0.2]}",
        &[("spec.clusterIPs[1]", "10.96.0.2 is IPv4 like clusterIPs[0]")],
    );
    fails_with("spec: {ipFamilyPolicy: RequireDualStack, clusterIPs: [None, \"fd00::1\"]}", &[("spec.clusterIPs[1]", "a headless Service")]);
    fails_with("spec: {clusterIPs: [10.96.0.1, \"fd00::1\", 10.96.0.2], ipFamilyPolicy: RequireDualStack}", &[("spec.clusterIPs", "at most two")]);
    fails_with(
        "spec: {type: ExternalName, externalName: a.example, ipFamilies: [IPv4], ipFamilyPolicy: SingleStack}",
        &[("spec.ipFamilies", "must not be set for type ExternalName"), ("spec.ipFamilyPolicy", "must not be set for type ExternalName")],
    );
    // A headless Service has families too (its DNS records' families), without addresses.
    let s = load("spec: {clusterIP: None, ipFamilyPolicy: PreferDualStack, ipFamilies: [IPv6, IPv4]}");
    assert!(s.headless && s.cluster_ips.is_empty());
    assert_eq!(s.ip_families, [IpFamily::IPv6, IpFamily::IPv4]);
}

#[test]
fn families_default_as_the_api_server_defaults_them_on_the_cluster() {
    use IpFamily::{IPv4, IPv6};
    let (dual, v4, v6, unknown): (&[IpFamily], &[IpFamily], &[IpFamily], &[IpFamily]) = (&[IPv4, IPv6], &[IPv4], &[IPv6], &[]);
    // (spec, the cluster's families, the Service's families or why it cannot have them)
    type Case<'a> = (&'a str, &'a [IpFamily], Result<&'a [IpFamily], &'a str>);
    let cases: [Case; 11] = [
        ("spec: {}", dual, Ok(&[IPv4])),
        ("spec: {}", v6, Ok(&[IPv6])),
        ("spec: {}", unknown, Ok(&[IPv4])),
        ("spec: {ipFamilies: [IPv6]}", dual, Ok(&[IPv6])),
        ("spec: {ipFamilies: [IPv6]}", v4, Err("asks for IPv6, and the cluster's addresses are IPv4 only")),
        ("spec: {ipFamilyPolicy: PreferDualStack}", dual, Ok(&[IPv4, IPv6])),
        ("spec: {ipFamilyPolicy: PreferDualStack, ipFamilies: [IPv6]}", dual, Ok(&[IPv6, IPv4])),
        ("spec: {ipFamilyPolicy: PreferDualStack}", v4, Ok(&[IPv4])),
        ("spec: {ipFamilyPolicy: RequireDualStack}", v6, Err("RequireDualStack needs IPv4 and IPv6, and the cluster's addresses are IPv6 only")),
        ("spec: {ipFamilyPolicy: RequireDualStack}", unknown, Ok(&[IPv4, IPv6])),
        ("spec: {ipFamilyPolicy: PreferDualStack, clusterIP: \"fd00::1\"}", v4, Ok(&[IPv6])),
    ];
    for (spec, cluster, want) in cases {
        let got = load(spec).families(cluster);
        assert_eq!(got.as_deref().map_err(String::as_str), want.map(<[IpFamily]>::to_vec).as_deref().map_err(|e| *e), "{spec} on {cluster:?}");
    }
}

#[test]
fn a_service_the_clusters_addresses_cannot_serve_is_refused_naming_its_field() {
    let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: ns}\nspec: {containers: [{name: c}]}\nstatus: {podIP: 10.244.0.10}\n---\n";
    let text = format!("{pod}{}", service("spec: {ipFamilyPolicy: RequireDualStack}"));
    let errors = parse_str("svc.yaml", &text).expect_err("a single-stack cluster cannot give two families").0;
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(
        errors[0].to_string(),
        "svc.yaml: document 2 (Service ns/s): field spec.ipFamilyPolicy: RequireDualStack needs IPv4 and IPv6, and the cluster's addresses are IPv4 only"
    );
    let text = format!("{pod}{}", service("spec: {ipFamilies: [IPv6]}"));
    assert_eq!(parse_str("svc.yaml", &text).unwrap_err().0[0].field.as_deref(), Some("spec.ipFamilies[0]"));
    // Without addresses the cluster's families are unknown: nothing to refuse.
    assert!(parse_str("svc.yaml", &service("spec: {ipFamilyPolicy: RequireDualStack}")).is_ok());
}

#[test]
fn invalid_values_name_their_field() {
    fails_with("spec: {type: Nodeport}", &[("spec.type", "\"Nodeport\" is not a Service type")]);
    fails_with("spec: {clusterIP: 10.96.0.300}", &[("spec.clusterIP", "not an IP address")]);
    fails_with("spec: {clusterIP: 10.96.0.1, clusterIPs: [10.96.0.2]}", &[("spec.clusterIPs[0]", "must equal spec.clusterIP")]);
    fails_with("spec: {clusterIPs: [10.96.0.1, nope]}", &[("spec.clusterIPs[1]", "not an IP address")]);
    fails_with("spec: {type: NodePort, clusterIP: None}", &[("spec.clusterIP", "only for type ClusterIP")]);
    fails_with("spec: {type: ExternalName, externalName: a.example, clusterIP: 10.96.0.1}", &[("spec.clusterIP", "must not be set for type ExternalName")]);
    fails_with("spec: {type: ExternalName}", &[("spec.externalName", "is required")]);
    fails_with("spec: {type: ExternalName, externalName: Bad_Name.example}", &[("spec.externalName", "invalid DNS name")]);
    fails_with("spec: {externalTrafficPolicy: Global}", &[("spec.externalTrafficPolicy", "want Cluster or Local")]);
    fails_with("spec: {internalTrafficPolicy: local}", &[("spec.internalTrafficPolicy", "want Cluster or Local")]);
    fails_with("spec: {sessionAffinity: Cookie}", &[("spec.sessionAffinity", "want None or ClientIP")]);
    fails_with(
        "spec: {sessionAffinity: ClientIP, sessionAffinityConfig: {clientIP: {timeoutSeconds: 86401}}}",
        &[("spec.sessionAffinityConfig.clientIP.timeoutSeconds", "1-86400")],
    );
    fails_with("status: {loadBalancer: {ingress: [{ip: 1.2.3}]}}", &[("status.loadBalancer.ingress[0].ip", "not an IP address")]);
    fails_with("spec: {ports: [{port: 80}], externalIPs: [198.51.100.7, web]}", &[("spec.externalIPs[1]", "\"web\" is not an IP address")]);
    fails_with("spec: {sessionAffinity: [ClientIP]}", &[("spec.sessionAffinity", "invalid type")]);
}

#[test]
fn invalid_ports_name_their_field() {
    fails_with("spec: {ports: [{port: 80, nodePort: 30080}]}", &[("spec.ports[0].nodePort", "may not be used when type is ClusterIP")]);
    fails_with("spec: {type: NodePort, ports: [{port: 80, nodePort: 70000}]}", &[("spec.ports[0].nodePort", "1-65535")]);
    fails_with("spec: {ports: [{port: 80, targetPort: 70000}]}", &[("spec.ports[0].targetPort", "1-65535")]);
    fails_with("spec: {ports: [{port: 80, targetPort: HTTP}]}", &[("spec.ports[0].targetPort", "lower-case")]);
    fails_with("spec: {ports: [{name: Web, port: 80}]}", &[("spec.ports[0].name", "lower-case")]);
    fails_with("spec: {ports: [{name: a, port: 80}, {name: a, port: 81}]}", &[("spec.ports[1].name", "\"a\" is used by an earlier port")]);
    fails_with("spec: {ports: [{name: a, port: 80}, {name: b, port: 80}]}", &[("spec.ports[1].port", "80/TCP is used by an earlier port")]);
    fails_with(
        "spec: {type: NodePort, ports: [{name: a, port: 80, nodePort: 30080}, {name: b, port: 81, nodePort: 30080}]}",
        &[("spec.ports[1].nodePort", "30080/TCP is used")],
    );
    // One port number for two protocols is fine, also as a node port.
    let s = load("spec: {type: NodePort, ports: [{name: a, port: 53, nodePort: 30053}, {name: b, port: 53, protocol: UDP, nodePort: 30053}]}");
    assert_eq!(s.ports.len(), 2);
}

#[test]
fn unnamed_ports_of_a_multi_port_service_are_accepted_with_a_warning() {
    // The API requires names then; netpol-analyzer's test inputs omit them, and numbers suffice.
    let list = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: s, namespace: ns}, spec: {ports: [{port: 80}, {name: b, port: 81}, {port: 82, name: \"\"}]}}\n";
    let c = parse_str("svc.yaml", list).unwrap();
    assert_eq!(c.services[0].ports.iter().map(|p| p.name.as_deref()).collect::<Vec<_>>(), [None, Some("b"), None]);
    assert_eq!(
        c.warnings,
        [
            "svc.yaml: document 1: Service ns/s: items[0].spec.ports[0], items[0].spec.ports[2] without a name, which the API requires when a Service has more than one port; accepted"
        ]
    );
    assert!(parse_str("svc.yaml", &service("spec: {ports: [{port: 80}]}")).unwrap().warnings.is_empty(), "one port needs no name");
}

#[test]
fn all_errors_are_reported_at_once() {
    fails_with(
        "spec: {type: LoadBalancer, clusterIP: None, externalTrafficPolicy: Nowhere, ports: [{port: 0}, {name: b, port: 80, protocol: ICMP}]}\nstatus: {loadBalancer: {ingress: [{ip: x}]}}",
        &[
            ("spec.clusterIP", "only for type ClusterIP"),
            ("spec.ports[0].port", "1-65535"),
            ("spec.ports[1].protocol", "unsupported protocol"),
            ("spec.externalTrafficPolicy", "Nowhere"),
            ("status.loadBalancer.ingress[0].ip", "not an IP address"),
        ],
    );
    // Inside a List the field path starts at the item.
    let list = "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Service, metadata: {name: s}, spec: {type: Bogus}}\n";
    let err = parse_str("list.yaml", list).unwrap_err();
    assert_eq!(err.0[0].field.as_deref(), Some("items[0].spec.type"), "{err}");
}
