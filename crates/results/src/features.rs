//! Feature coverage: the fixed list of NetworkPolicy, admin policy and Service features a run can
//! exercise, and per feature the cases that exercised it and how they ended (README, `netmatrix
//! run`). Which objects exercise which feature is the engine's business; this is the list and
//! the tally, shared by the engine and every renderer.

use serde::{Deserialize, Serialize};

use crate::{CaseReport, CaseResult};

/// What kind of object a feature belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Group {
    NetworkPolicy,
    /// AdminNetworkPolicy, BaselineAdminNetworkPolicy and ClusterNetworkPolicy.
    AdminPolicy,
    Service,
}

impl Group {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NetworkPolicy => "NetworkPolicy",
            Self::AdminPolicy => "AdminPolicy",
            Self::Service => "Service",
        }
    }
}

/// One definition per feature: its variant, its id (`group.name`, as reports spell it), its
/// group and what exercises it; the enum, the list and the accessors follow from it.
macro_rules! features {
    ($($variant:ident => $id:literal, $group:ident, $meaning:literal;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Feature { $($variant,)* }

        impl Feature {
            /// Every feature, in report order.
            pub const ALL: &'static [Feature] = &[$(Feature::$variant,)*];

            pub fn id(self) -> &'static str {
                match self { $(Feature::$variant => $id,)* }
            }

            pub fn group(self) -> Group {
                match self { $(Feature::$variant => Group::$group,)* }
            }

            /// What object in effect while a step probed counts as exercising it.
            pub fn meaning(self) -> &'static str {
                match self { $(Feature::$variant => $meaning,)* }
            }
        }
    };
}

features! {
    NetpolPodSelectorEmpty => "netpol.pod-selector-empty", NetworkPolicy, "a policy with an empty podSelector (every pod of its namespace)";
    NetpolPodSelector => "netpol.pod-selector", NetworkPolicy, "a policy with a non-empty podSelector";
    NetpolPeerPods => "netpol.peer-pod-selector", NetworkPolicy, "a peer with a podSelector only (pods of the policy's namespace)";
    NetpolPeerNamespaces => "netpol.peer-namespace-selector", NetworkPolicy, "a peer with a non-empty namespaceSelector only";
    NetpolPeerAllNamespaces => "netpol.peer-all-namespaces", NetworkPolicy, "a peer with an empty namespaceSelector (every namespace)";
    NetpolPeerAnd => "netpol.peer-namespace-and-pod", NetworkPolicy, "a peer with a namespaceSelector and a podSelector (pods matching both: AND)";
    NetpolPeersOr => "netpol.peers-or", NetworkPolicy, "a rule with two or more peers (any of them: OR)";
    NetpolAnyPeer => "netpol.any-peer", NetworkPolicy, "a rule without peers (from or to anywhere)";
    NetpolExprIn => "netpol.expr-in", NetworkPolicy, "a matchExpressions requirement with operator In in any selector of a policy";
    NetpolExprNotIn => "netpol.expr-not-in", NetworkPolicy, "a matchExpressions requirement with operator NotIn";
    NetpolExprExists => "netpol.expr-exists", NetworkPolicy, "a matchExpressions requirement with operator Exists";
    NetpolExprDoesNotExist => "netpol.expr-does-not-exist", NetworkPolicy, "a matchExpressions requirement with operator DoesNotExist";
    NetpolIpBlock => "netpol.ipblock", NetworkPolicy, "an ipBlock peer";
    NetpolIpBlockExcept => "netpol.ipblock-except", NetworkPolicy, "an ipBlock peer with except";
    NetpolPortNumber => "netpol.port-number", NetworkPolicy, "a numeric port without endPort";
    NetpolPortNamed => "netpol.port-named", NetworkPolicy, "a named port (resolved on the destination pod)";
    NetpolEndPort => "netpol.end-port", NetworkPolicy, "a port range (endPort above port)";
    NetpolTcp => "netpol.protocol-tcp", NetworkPolicy, "a rule port of protocol TCP";
    NetpolUdp => "netpol.protocol-udp", NetworkPolicy, "a rule port of protocol UDP";
    NetpolSctp => "netpol.protocol-sctp", NetworkPolicy, "a rule port of protocol SCTP";
    NetpolIngress => "netpol.ingress", NetworkPolicy, "a policy of type Ingress";
    NetpolEgress => "netpol.egress", NetworkPolicy, "a policy of type Egress";
    NetpolBothTypes => "netpol.ingress-and-egress", NetworkPolicy, "one policy of both types, Ingress and Egress";
    NetpolDefaultDenyIngress => "netpol.default-deny-ingress", NetworkPolicy, "an empty podSelector, type Ingress, no ingress rule";
    NetpolDefaultDenyEgress => "netpol.default-deny-egress", NetworkPolicy, "an empty podSelector, type Egress, no egress rule";
    NetpolStacked => "netpol.stacked", NetworkPolicy, "a pod selected by two or more policies for the same direction (their rules add up)";
    AdminAnp => "admin.anp", AdminPolicy, "an AdminNetworkPolicy (v1alpha1)";
    AdminBanp => "admin.banp", AdminPolicy, "a BaselineAdminNetworkPolicy (v1alpha1)";
    AdminCnp => "admin.cnp", AdminPolicy, "a ClusterNetworkPolicy (v1alpha2)";
    AdminTierAdmin => "admin.tier-admin", AdminPolicy, "a policy of the admin tier (before NetworkPolicy)";
    AdminTierBaseline => "admin.tier-baseline", AdminPolicy, "a policy of the baseline tier (after NetworkPolicy)";
    AdminPriorities => "admin.priorities", AdminPolicy, "two policies of one tier with different priorities";
    AdminRuleOrder => "admin.rule-order", AdminPolicy, "a policy with two or more rules in one direction (the first match decides)";
    AdminAllow => "admin.action-allow", AdminPolicy, "a rule with action Allow (v1alpha1) or Accept (v1alpha2)";
    AdminDeny => "admin.action-deny", AdminPolicy, "a rule with action Deny";
    AdminPass => "admin.action-pass", AdminPolicy, "a rule with action Pass";
    AdminSubjectNamespaces => "admin.subject-namespaces", AdminPolicy, "a subject selecting namespaces (every pod in them)";
    AdminSubjectPods => "admin.subject-pods", AdminPolicy, "a subject selecting pods by label";
    AdminPeerNamespaces => "admin.peer-namespaces", AdminPolicy, "a peer selecting namespaces";
    AdminPeerPods => "admin.peer-pods", AdminPolicy, "a peer selecting pods by label";
    AdminPeerNodes => "admin.peer-nodes", AdminPolicy, "an egress peer selecting nodes";
    AdminPeerNetworks => "admin.peer-networks", AdminPolicy, "an egress peer of networks (CIDRs)";
    AdminIngress => "admin.ingress", AdminPolicy, "an ingress rule";
    AdminEgress => "admin.egress", AdminPolicy, "an egress rule";
    AdminPortNumber => "admin.port-number", AdminPolicy, "a single port (portNumber, destinationPort)";
    AdminPortRange => "admin.port-range", AdminPolicy, "a port range (portRange)";
    AdminPortNamed => "admin.port-named", AdminPolicy, "a named port (namedPort)";
    AdminWithNetpol => "admin.with-networkpolicy", AdminPolicy, "an admin policy and a NetworkPolicy in effect together";
    ServiceClusterIp => "service.cluster-ip", Service, "a Service of type ClusterIP with a cluster IP";
    ServiceNodePort => "service.node-port", Service, "a Service of type NodePort";
    ServiceLoadBalancer => "service.load-balancer", Service, "a Service of type LoadBalancer";
    ServiceExternalName => "service.external-name", Service, "a Service of type ExternalName";
    ServiceHeadless => "service.headless", Service, "a headless Service (clusterIP None)";
    ServiceSelectorless => "service.selectorless", Service, "a Service without selector (endpoints managed elsewhere), not ExternalName";
    ServiceNamedTargetPort => "service.target-port-named", Service, "a port whose targetPort is a container port name";
    ServiceMultiplePorts => "service.multiple-ports", Service, "a Service with two or more ports";
    ServiceTcp => "service.protocol-tcp", Service, "a Service port of protocol TCP";
    ServiceUdp => "service.protocol-udp", Service, "a Service port of protocol UDP";
    ServiceSctp => "service.protocol-sctp", Service, "a Service port of protocol SCTP";
    ServiceExternalLocal => "service.external-traffic-policy-local", Service, "externalTrafficPolicy Local";
    ServiceInternalLocal => "service.internal-traffic-policy-local", Service, "internalTrafficPolicy Local";
    ServiceAffinity => "service.session-affinity", Service, "sessionAffinity ClientIP";
    ServiceHairpin => "service.hairpin", Service, "a Service whose selector selects exactly one pod (that pod, a client as well, reaches itself)";
    ServiceUnderPolicy => "service.backends-under-policy", Service, "a Service selecting a pod that a NetworkPolicy isolates for ingress";
}

/// How the cases that exercised a feature ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FeatureResult {
    /// Every case that exercised it passed.
    Pass,
    /// A case that exercised it failed (a wrong cell).
    Fail,
    /// None failed, but one was flaky or could not be carried out.
    Incomplete,
    /// No case exercised it: a gap in what the run checked.
    NotExercised,
}

impl FeatureResult {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Incomplete => "incomplete",
            Self::NotExercised => "not-exercised",
        }
    }
}

/// One feature of the list and the cases that exercised it (JSON `features[]`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeatureCoverage {
    /// The feature's id, e.g. `netpol.ipblock-except`.
    pub feature: String,
    pub group: Group,
    pub result: FeatureResult,
    /// Ids of the cases that exercised it, in run order.
    pub cases: Vec<String>,
    pub passed: usize,
    pub failed: usize,
}

impl FeatureCoverage {
    /// Every feature of the list, exercised or not, tallied over `cases`' `features`.
    pub fn of(cases: &[CaseReport]) -> Vec<FeatureCoverage> {
        Feature::ALL
            .iter()
            .map(|feature| {
                let exercising: Vec<&CaseReport> = cases.iter().filter(|c| c.features.iter().any(|f| f == feature.id())).collect();
                let count = |result: CaseResult| exercising.iter().filter(|c| c.result == result).count();
                let (passed, failed) = (count(CaseResult::Pass), count(CaseResult::Fail));
                let result = if exercising.is_empty() {
                    FeatureResult::NotExercised
                } else if failed > 0 {
                    FeatureResult::Fail
                } else if passed == exercising.len() {
                    FeatureResult::Pass
                } else {
                    FeatureResult::Incomplete
                };
                FeatureCoverage {
                    feature: feature.id().to_owned(),
                    group: feature.group(),
                    result,
                    cases: exercising.iter().map(|c| c.id.clone()).collect(),
                    passed,
                    failed,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(id: &str, result: CaseResult, features: &[Feature]) -> CaseReport {
        CaseReport { result, features: features.iter().map(|f| f.id().to_owned()).collect(), ..CaseReport::of_steps(id, vec![]) }
    }

    #[test]
    fn ids_are_unique_and_prefixed_by_their_group() {
        let mut ids: Vec<&str> = Feature::ALL.iter().map(|f| f.id()).collect();
        for f in Feature::ALL {
            let prefix = match f.group() {
                Group::NetworkPolicy => "netpol.",
                Group::AdminPolicy => "admin.",
                Group::Service => "service.",
            };
            assert!(f.id().starts_with(prefix), "{}", f.id());
        }
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate feature ids");
    }

    #[test]
    fn a_feature_fails_when_any_case_exercising_it_failed() {
        let cases = [
            case("netpol/a", CaseResult::Pass, &[Feature::NetpolIpBlock, Feature::NetpolIngress]),
            case("netpol/b", CaseResult::Fail, &[Feature::NetpolIpBlock]),
            case("netpol/c", CaseResult::Flaky, &[Feature::NetpolEgress]),
            case("netpol/d", CaseResult::Error, &[Feature::NetpolEgress, Feature::NetpolIngress]),
        ];
        let coverage = FeatureCoverage::of(&cases);
        assert_eq!(coverage.len(), Feature::ALL.len(), "every feature, exercised or not");
        let of = |f: Feature| coverage.iter().find(|c| c.feature == f.id()).unwrap();
        let ipblock = of(Feature::NetpolIpBlock);
        assert_eq!((ipblock.result, ipblock.passed, ipblock.failed), (FeatureResult::Fail, 1, 1));
        assert_eq!(ipblock.cases, ["netpol/a", "netpol/b"]);
        assert_eq!(of(Feature::NetpolEgress).result, FeatureResult::Incomplete, "flaky and error cases, none failed");
        assert_eq!(of(Feature::NetpolIngress).result, FeatureResult::Incomplete, "one passed, one could not be carried out");
        let sctp = of(Feature::NetpolSctp);
        assert_eq!((sctp.result, sctp.cases.len()), (FeatureResult::NotExercised, 0));
        let only_passes = FeatureCoverage::of(&cases[..1]);
        assert!(only_passes.iter().filter(|c| !c.cases.is_empty()).all(|c| c.result == FeatureResult::Pass));
    }

    #[test]
    fn the_readme_documents_every_feature() {
        let readme = include_str!("../../../README.md");
        let missing: Vec<&str> = Feature::ALL.iter().map(|f| f.id()).filter(|id| !readme.contains(&format!("`{id}`"))).collect();
        assert!(missing.is_empty(), "README.md lacks {missing:?}");
    }
}
