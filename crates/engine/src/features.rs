//! Which features of the list ([`Feature`]) objects exercise: a pure function of the model
//! objects in effect while a step probed, so coverage follows what was applied, never what a
//! case's labels claim.

use std::collections::BTreeSet;

use netmatrix_model::{
    AdminAction, AdminPeer, AdminPolicyKind, AdminPort, Cluster, LabelSelector, NetworkPolicy, Operator, Peer, PortRef, Protocol, ServiceType, SessionAffinity,
    TargetPort, Tier, TrafficPolicy,
};
use netmatrix_results::Feature;

/// The features `model`'s NetworkPolicies, admin policies and Services exercise.
pub fn exercised(model: &Cluster) -> BTreeSet<Feature> {
    let mut found = BTreeSet::new();
    network_policies(model, &mut found);
    admin_policies(model, &mut found);
    services(model, &mut found);
    found
}

fn selects(policy: &NetworkPolicy, pod: &netmatrix_model::Pod) -> bool {
    pod.namespace == policy.namespace && policy.pod_selector.matches(&pod.labels)
}

fn operators(selector: &LabelSelector, found: &mut BTreeSet<Feature>) {
    found.extend(selector.match_expressions.iter().map(|r| match r.operator {
        Operator::In => Feature::NetpolExprIn,
        Operator::NotIn => Feature::NetpolExprNotIn,
        Operator::Exists => Feature::NetpolExprExists,
        Operator::DoesNotExist => Feature::NetpolExprDoesNotExist,
    }));
}

fn network_policies(model: &Cluster, found: &mut BTreeSet<Feature>) {
    for policy in &model.policies {
        let all_pods = policy.pod_selector.is_empty();
        found.insert(if all_pods { Feature::NetpolPodSelectorEmpty } else { Feature::NetpolPodSelector });
        operators(&policy.pod_selector, found);
        let (ingress, egress) = (policy.ingress.as_deref(), policy.egress.as_deref());
        let typed = [
            (ingress.is_some(), Feature::NetpolIngress),
            (egress.is_some(), Feature::NetpolEgress),
            (ingress.is_some() && egress.is_some(), Feature::NetpolBothTypes),
        ];
        let deny = [(ingress, Feature::NetpolDefaultDenyIngress), (egress, Feature::NetpolDefaultDenyEgress)];
        found.extend(typed.into_iter().filter(|(on, _)| *on).map(|(_, f)| f));
        found.extend(deny.into_iter().filter(|(rules, _)| all_pods && rules.is_some_and(|r| r.is_empty())).map(|(_, f)| f));
        for rule in ingress.into_iter().chain(egress).flatten() {
            found.extend(match rule.peers.len() {
                0 => Some(Feature::NetpolAnyPeer),
                1 => None,
                _ => Some(Feature::NetpolPeersOr),
            });
            for peer in &rule.peers {
                match peer {
                    Peer::Pods { namespaces: None, pods } => {
                        found.insert(Feature::NetpolPeerPods);
                        pods.iter().for_each(|s| operators(s, found));
                    }
                    Peer::Pods { namespaces: Some(namespaces), pods } => {
                        operators(namespaces, found);
                        pods.iter().for_each(|s| operators(s, found));
                        if namespaces.is_empty() {
                            found.insert(Feature::NetpolPeerAllNamespaces);
                        }
                        if pods.is_some() {
                            found.insert(Feature::NetpolPeerAnd);
                        } else if !namespaces.is_empty() {
                            found.insert(Feature::NetpolPeerNamespaces);
                        }
                    }
                    Peer::IpBlock(block) => {
                        found.insert(Feature::NetpolIpBlock);
                        if !block.except.is_empty() {
                            found.insert(Feature::NetpolIpBlockExcept);
                        }
                    }
                }
            }
            for port in &rule.ports {
                found.insert(match port.protocol {
                    Protocol::Tcp => Feature::NetpolTcp,
                    Protocol::Udp => Feature::NetpolUdp,
                    Protocol::Sctp => Feature::NetpolSctp,
                });
                found.extend(match &port.port {
                    Some(PortRef::Range { first, last }) if first == last => Some(Feature::NetpolPortNumber),
                    Some(PortRef::Range { .. }) => Some(Feature::NetpolEndPort),
                    Some(PortRef::Named(_)) => Some(Feature::NetpolPortNamed),
                    None => None,
                });
            }
        }
    }
    let stacked = model.pods.iter().any(|pod| {
        let isolating = |rules: fn(&NetworkPolicy) -> bool| model.policies.iter().filter(|p| rules(p) && selects(p, pod)).count();
        isolating(|p| p.ingress.is_some()) >= 2 || isolating(|p| p.egress.is_some()) >= 2
    });
    if stacked {
        found.insert(Feature::NetpolStacked);
    }
}

fn admin_peer(peer: &AdminPeer, namespaces: Feature, pods: Feature) -> Feature {
    match peer {
        // `namespaces: S` is a pod selection with an empty pod selector.
        AdminPeer::Pods { pods: selector, .. } if selector.is_empty() => namespaces,
        AdminPeer::Pods { .. } => pods,
        AdminPeer::Nodes(_) => Feature::AdminPeerNodes,
        AdminPeer::Networks(_) => Feature::AdminPeerNetworks,
    }
}

fn admin_policies(model: &Cluster, found: &mut BTreeSet<Feature>) {
    for policy in &model.admin_policies {
        found.insert(match policy.kind {
            AdminPolicyKind::AdminNetworkPolicy => Feature::AdminAnp,
            AdminPolicyKind::BaselineAdminNetworkPolicy => Feature::AdminBanp,
            AdminPolicyKind::ClusterNetworkPolicy => Feature::AdminCnp,
        });
        found.insert(match policy.tier {
            Tier::Admin => Feature::AdminTierAdmin,
            Tier::Baseline => Feature::AdminTierBaseline,
        });
        found.insert(admin_peer(&policy.subject, Feature::AdminSubjectNamespaces, Feature::AdminSubjectPods));
        for (rules, direction) in [(&policy.ingress, Feature::AdminIngress), (&policy.egress, Feature::AdminEgress)] {
            if !rules.is_empty() {
                found.insert(direction);
            }
            if rules.len() >= 2 {
                found.insert(Feature::AdminRuleOrder);
            }
            for rule in rules {
                found.insert(match rule.action {
                    AdminAction::Allow => Feature::AdminAllow,
                    AdminAction::Deny => Feature::AdminDeny,
                    AdminAction::Pass => Feature::AdminPass,
                });
                found.extend(rule.peers.iter().map(|p| admin_peer(p, Feature::AdminPeerNamespaces, Feature::AdminPeerPods)));
                found.extend(rule.ports.iter().map(|p| match p {
                    AdminPort::Range { first, last, .. } if first == last => Feature::AdminPortNumber,
                    AdminPort::Range { .. } => Feature::AdminPortRange,
                    AdminPort::Named(_) => Feature::AdminPortNamed,
                }));
            }
        }
    }
    let policies = &model.admin_policies;
    if policies.iter().any(|a| policies.iter().any(|b| a.tier == b.tier && a.priority != b.priority)) {
        found.insert(Feature::AdminPriorities);
    }
    if !policies.is_empty() && !model.policies.is_empty() {
        found.insert(Feature::AdminWithNetpol);
    }
}

fn services(model: &Cluster, found: &mut BTreeSet<Feature>) {
    for service in &model.services {
        found.insert(match service.service_type {
            ServiceType::ClusterIp if service.headless => Feature::ServiceHeadless,
            ServiceType::ClusterIp => Feature::ServiceClusterIp,
            ServiceType::NodePort => Feature::ServiceNodePort,
            ServiceType::LoadBalancer => Feature::ServiceLoadBalancer,
            ServiceType::ExternalName => Feature::ServiceExternalName,
        });
        if service.selector.is_none() && service.service_type != ServiceType::ExternalName {
            found.insert(Feature::ServiceSelectorless);
        }
        if service.ports.len() >= 2 {
            found.insert(Feature::ServiceMultiplePorts);
        }
        for port in &service.ports {
            found.insert(match port.protocol {
                Protocol::Tcp => Feature::ServiceTcp,
                Protocol::Udp => Feature::ServiceUdp,
                Protocol::Sctp => Feature::ServiceSctp,
            });
            if matches!(port.target_port, TargetPort::Name(_)) {
                found.insert(Feature::ServiceNamedTargetPort);
            }
        }
        let flags = [
            (service.external_traffic_policy == TrafficPolicy::Local, Feature::ServiceExternalLocal),
            (service.internal_traffic_policy == TrafficPolicy::Local, Feature::ServiceInternalLocal),
            (matches!(service.session_affinity, SessionAffinity::ClientIp { .. }), Feature::ServiceAffinity),
        ];
        found.extend(flags.into_iter().filter(|(on, _)| *on).map(|(_, f)| f));
        let backends: Vec<_> = model.pods.iter().filter(|p| service.selects(p)).collect();
        if backends.len() == 1 {
            found.insert(Feature::ServiceHairpin);
        }
        if backends.iter().any(|pod| model.policies.iter().any(|p| p.ingress.is_some() && selects(p, pod))) {
            found.insert(Feature::ServiceUnderPolicy);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmatrix_model::parse_str;

    fn features(yaml: &str) -> BTreeSet<Feature> {
        exercised(&parse_str("test", yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}")))
    }

    fn pod(namespace: &str, name: &str) -> String {
        format!(
            "---\napiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {namespace}, labels: {{pod: {name}}}}}\n\
             spec: {{nodeName: n0, containers: [{{name: c, ports: [{{containerPort: 80, name: web}}]}}]}}\n\
             status: {{podIP: 10.0.0.{}}}\n",
            name.len() + namespace.len()
        )
    }

    fn netpol(name: &str, spec: &str) -> String {
        format!("---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {{name: {name}, namespace: x}}\nspec: {spec}\n")
    }

    /// Ingress to pods a from pods b of x on TCP 80: what most NetworkPolicy rows vary.
    fn base_netpol(rule: &str) -> String {
        netpol("p", &format!("{{podSelector: {{matchLabels: {{pod: a}}}}, policyTypes: [Ingress], ingress: [{rule}]}}"))
    }

    const BASE_RULE: &str = "{from: [{podSelector: {matchLabels: {pod: b}}}], ports: [{port: 80, protocol: TCP}]}";

    fn anp(priority: u32, spec: &str) -> String {
        format!(
            "---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: AdminNetworkPolicy\nmetadata: {{name: p{priority}}}\nspec: {{priority: {priority}, {spec}}}\n"
        )
    }

    /// Denies ingress to the pods of x from namespace y on TCP 80.
    const BASE_ANP: &str = "subject: {namespaces: {matchLabels: {ns: x}}}, ingress: [{action: Deny, from: [{namespaces: {matchLabels: {ns: z}}}], ports: [{portNumber: {port: 80, protocol: TCP}}]}]";

    fn anp_rule(rule: &str) -> String {
        anp(10, &format!("subject: {{namespaces: {{matchLabels: {{ns: x}}}}}}, ingress: [{rule}]"))
    }

    fn service(spec: &str) -> String {
        format!("---\napiVersion: v1\nkind: Service\nmetadata: {{name: s, namespace: x}}\nspec: {spec}\n")
    }

    /// A ClusterIP over the pods of x named a or b, TCP 80 to 80.
    const BASE_SERVICE: &str = "{selector: {pod: a}, ports: [{port: 80, protocol: TCP, targetPort: 80}]}";

    fn pods() -> String {
        ["a", "b"].iter().map(|p| pod("x", p)).collect()
    }

    /// Per feature, objects that exercise it and the closest objects that do not.
    fn cases() -> Vec<(Feature, String, String)> {
        use Feature::*;
        let rule = |r: &str| base_netpol(r);
        let ports = |p: &str| rule(&format!("{{from: [{{podSelector: {{matchLabels: {{pod: b}}}}}}], ports: [{p}]}}"));
        let peer = |p: &str| rule(&format!("{{from: [{p}]}}"));
        let expr = |op: &str| {
            peer(&format!("{{podSelector: {{matchExpressions: [{{key: pod, operator: {op}{}}}]}}}}", if op.ends_with("In") { ", values: [b]" } else { "" }))
        };
        let base_policy = base_netpol(BASE_RULE);
        let base_anp = anp(10, BASE_ANP);
        let base_service = service(BASE_SERVICE);
        let svc = |extra: &str| service(&BASE_SERVICE.replacen('{', &format!("{{{extra}, "), 1));
        let svc_port = |p: &str| service(&format!("{{selector: {{pod: a}}, ports: [{p}]}}"));
        let deny_all = |types: &str| netpol("d", &format!("{{podSelector: {{}}, policyTypes: [{types}]}}"));
        let ingress_to = |name: &str, selector: &str| netpol(name, &format!("{{podSelector: {selector}, ingress: [{{}}]}}"));
        let cnp = |tier: &str| {
            format!(
                "---\napiVersion: policy.networking.k8s.io/v1alpha2\nkind: ClusterNetworkPolicy\nmetadata: {{name: c}}\n\
                 spec: {{tier: {tier}, priority: 1, subject: {{namespaces: {{}}}}, ingress: [{{action: Accept, from: [{{namespaces: {{}}}}]}}]}}\n"
            )
        };
        let banp = "---\napiVersion: policy.networking.k8s.io/v1alpha1\nkind: BaselineAdminNetworkPolicy\nmetadata: {name: default}\n\
                    spec: {subject: {namespaces: {}}, ingress: [{action: Deny, from: [{namespaces: {}}]}]}\n"
            .to_owned();
        vec![
            (NetpolPodSelectorEmpty, netpol("p", "{podSelector: {}, ingress: [{}]}"), base_policy.clone()),
            (NetpolPodSelector, base_policy.clone(), netpol("p", "{podSelector: {}, ingress: [{}]}")),
            (NetpolPeerPods, base_policy.clone(), peer("{namespaceSelector: {matchLabels: {ns: z}}}")),
            (NetpolPeerNamespaces, peer("{namespaceSelector: {matchLabels: {ns: z}}}"), peer("{namespaceSelector: {}}")),
            (NetpolPeerAllNamespaces, peer("{namespaceSelector: {}}"), peer("{namespaceSelector: {matchLabels: {ns: z}}}")),
            (
                NetpolPeerAnd,
                peer("{namespaceSelector: {matchLabels: {ns: z}}, podSelector: {matchLabels: {pod: b}}}"),
                peer("{namespaceSelector: {matchLabels: {ns: z}}}"),
            ),
            (NetpolPeersOr, peer("{podSelector: {matchLabels: {pod: b}}}, {namespaceSelector: {matchLabels: {ns: z}}}"), base_policy.clone()),
            (NetpolAnyPeer, rule("{ports: [{port: 80}]}"), base_policy.clone()),
            (NetpolExprIn, expr("In"), expr("NotIn")),
            (NetpolExprNotIn, expr("NotIn"), expr("In")),
            (NetpolExprExists, expr("Exists"), expr("DoesNotExist")),
            (NetpolExprDoesNotExist, expr("DoesNotExist"), expr("Exists")),
            (NetpolIpBlock, peer("{ipBlock: {cidr: 10.0.0.0/8}}"), base_policy.clone()),
            (NetpolIpBlockExcept, peer("{ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}}"), peer("{ipBlock: {cidr: 10.0.0.0/8}}")),
            (NetpolPortNumber, base_policy.clone(), ports("{port: 80, endPort: 90, protocol: TCP}")),
            (NetpolPortNamed, ports("{port: web}"), base_policy.clone()),
            (NetpolEndPort, ports("{port: 80, endPort: 90, protocol: TCP}"), base_policy.clone()),
            (NetpolTcp, base_policy.clone(), ports("{port: 80, protocol: UDP}")),
            (NetpolUdp, ports("{port: 80, protocol: UDP}"), base_policy.clone()),
            (NetpolSctp, ports("{port: 80, protocol: SCTP}"), base_policy.clone()),
            (NetpolIngress, base_policy.clone(), deny_all("Egress")),
            (NetpolEgress, deny_all("Egress"), base_policy.clone()),
            (NetpolBothTypes, deny_all("Ingress, Egress"), format!("{}{}", deny_all("Egress"), ingress_to("i", "{}"))),
            (NetpolDefaultDenyIngress, deny_all("Ingress"), ingress_to("i", "{}")),
            (NetpolDefaultDenyEgress, deny_all("Egress"), deny_all("Ingress")),
            (
                NetpolStacked,
                format!("{}{}{}", pods(), ingress_to("one", "{}"), ingress_to("two", "{matchLabels: {pod: a}}")),
                format!("{}{}{}", pods(), ingress_to("one", "{matchLabels: {pod: b}}"), ingress_to("two", "{matchLabels: {pod: a}}")),
            ),
            (AdminAnp, base_anp.clone(), banp.clone()),
            (AdminBanp, banp.clone(), base_anp.clone()),
            (AdminCnp, cnp("Admin"), base_anp.clone()),
            (AdminTierAdmin, cnp("Admin"), cnp("Baseline")),
            (AdminTierBaseline, cnp("Baseline"), cnp("Admin")),
            (AdminPriorities, format!("{}{}", anp(1, BASE_ANP), anp(2, BASE_ANP)), format!("{}{}", anp(1, BASE_ANP), banp)),
            (AdminRuleOrder, anp_rule("{action: Pass, from: [{namespaces: {}}]}, {action: Deny, from: [{namespaces: {}}]}"), base_anp.clone()),
            (AdminAllow, anp_rule("{action: Allow, from: [{namespaces: {}}]}"), base_anp.clone()),
            (AdminDeny, base_anp.clone(), anp_rule("{action: Allow, from: [{namespaces: {}}]}")),
            (AdminPass, anp_rule("{action: Pass, from: [{namespaces: {}}]}"), base_anp.clone()),
            (
                AdminSubjectNamespaces,
                base_anp.clone(),
                anp(10, "subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {pod: a}}}}, ingress: [{action: Deny, from: [{namespaces: {}}]}]"),
            ),
            (
                AdminSubjectPods,
                anp(10, "subject: {pods: {namespaceSelector: {}, podSelector: {matchLabels: {pod: a}}}}, ingress: [{action: Deny, from: [{namespaces: {}}]}]"),
                base_anp.clone(),
            ),
            (AdminPeerNamespaces, base_anp.clone(), anp_rule("{action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {pod: a}}}}]}")),
            (AdminPeerPods, anp_rule("{action: Deny, from: [{pods: {namespaceSelector: {}, podSelector: {matchLabels: {pod: a}}}}]}"), base_anp.clone()),
            (AdminPeerNodes, anp(10, "subject: {namespaces: {}}, egress: [{action: Deny, to: [{nodes: {matchLabels: {role: w}}}]}]"), base_anp.clone()),
            (AdminPeerNetworks, anp(10, "subject: {namespaces: {}}, egress: [{action: Deny, to: [{networks: [10.0.0.0/8]}]}]"), base_anp.clone()),
            (AdminIngress, base_anp.clone(), anp(10, "subject: {namespaces: {}}, egress: [{action: Deny, to: [{namespaces: {}}]}]")),
            (AdminEgress, anp(10, "subject: {namespaces: {}}, egress: [{action: Deny, to: [{namespaces: {}}]}]"), base_anp.clone()),
            (
                AdminPortNumber,
                base_anp.clone(),
                anp_rule("{action: Deny, from: [{namespaces: {}}], ports: [{portRange: {start: 80, end: 90, protocol: TCP}}]}"),
            ),
            (AdminPortRange, anp_rule("{action: Deny, from: [{namespaces: {}}], ports: [{portRange: {start: 80, end: 90, protocol: TCP}}]}"), base_anp.clone()),
            (AdminPortNamed, anp_rule("{action: Deny, from: [{namespaces: {}}], ports: [{namedPort: web}]}"), base_anp.clone()),
            (AdminWithNetpol, format!("{base_anp}{base_policy}"), base_anp.clone()),
            (ServiceClusterIp, base_service.clone(), svc("clusterIP: None")),
            (ServiceNodePort, svc("type: NodePort"), base_service.clone()),
            (ServiceLoadBalancer, svc("type: LoadBalancer"), svc("type: NodePort")),
            (ServiceExternalName, service("{type: ExternalName, externalName: web.x.svc.cluster.local}"), base_service.clone()),
            (ServiceHeadless, svc("clusterIP: None"), base_service.clone()),
            (ServiceSelectorless, service("{ports: [{port: 80}]}"), service("{type: ExternalName, externalName: web.x.svc.cluster.local}")),
            (ServiceNamedTargetPort, svc_port("{port: 80, targetPort: web}"), base_service.clone()),
            (ServiceMultiplePorts, svc_port("{name: a, port: 80}, {name: b, port: 81}"), base_service.clone()),
            (ServiceTcp, base_service.clone(), svc_port("{port: 80, protocol: UDP}")),
            (ServiceUdp, svc_port("{port: 80, protocol: UDP}"), base_service.clone()),
            (ServiceSctp, svc_port("{port: 80, protocol: SCTP}"), base_service.clone()),
            (ServiceExternalLocal, svc("type: NodePort, externalTrafficPolicy: Local"), svc("type: NodePort")),
            (ServiceInternalLocal, svc("internalTrafficPolicy: Local"), base_service.clone()),
            (ServiceAffinity, svc("sessionAffinity: ClientIP"), base_service.clone()),
            (ServiceHairpin, format!("{}{base_service}", pods()), format!("{}{}", pods(), service(&BASE_SERVICE.replace("{pod: a}", "{}")))),
            (
                ServiceUnderPolicy,
                format!("{}{base_service}{base_policy}", pods()),
                format!("{}{base_service}{}", pods(), ingress_to("i", "{matchLabels: {pod: b}}")),
            ),
        ]
    }

    #[test]
    fn each_feature_is_found_in_a_minimal_object_and_not_without_it() {
        let cases = cases();
        let tested: BTreeSet<Feature> = cases.iter().map(|(f, _, _)| *f).collect();
        let untested: Vec<&Feature> = Feature::ALL.iter().filter(|f| !tested.contains(f)).collect();
        assert!(untested.is_empty(), "features without a test: {untested:?}");
        for (feature, with, without) in &cases {
            assert!(features(with).contains(feature), "{feature:?} not found in\n{with}");
            assert!(!features(without).contains(feature), "{feature:?} found in\n{without}");
        }
    }

    #[test]
    fn nothing_is_exercised_without_policies_or_services() {
        assert!(features(&pods()).is_empty());
    }

    #[test]
    fn a_base_object_exercises_exactly_its_own_features() {
        use Feature::*;
        let found = features(&base_netpol(BASE_RULE));
        assert_eq!(found, BTreeSet::from([NetpolPodSelector, NetpolPeerPods, NetpolPortNumber, NetpolTcp, NetpolIngress]));
        let found = features(&format!("{}{}", pods(), service(BASE_SERVICE)));
        assert_eq!(found, BTreeSet::from([ServiceClusterIp, ServiceTcp, ServiceHairpin]));
    }
}
