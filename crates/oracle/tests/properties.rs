//! Properties of NetworkPolicy semantics over seeded random clusters (netmatrix-synth).

use netmatrix_model::{Cluster, Direction, LabelSelector, NetworkPolicy, Origin, Rule, parse_str};
use netmatrix_oracle::explain::{Endpoint, explain};
use netmatrix_oracle::{ConnSet, Options, Reachability};
use netmatrix_synth::{Params, generate};
use proptest::prelude::*;

const OPTIONS: Options = Options { ipblocks_match_pods: true };

fn cluster(seed: u64) -> Cluster {
    parse_str("synth.yaml", &generate(&Params { pods: 12, policies: 8, ..Params::small(seed) })).expect("synth makes valid manifests")
}

/// Every pod pair's allowed connections, and every pod's to and from each address range start.
fn matrix(cluster: &Cluster) -> Vec<ConnSet> {
    let mut reach = Reachability::compute(cluster, OPTIONS);
    let mut out = Vec::new();
    for s in 0..cluster.pods.len() {
        for d in 0..cluster.pods.len() {
            let id = reach.pair(reach.pod_class[s], reach.pod_class[d]);
            out.push(reach.conn(id).clone());
        }
    }
    out
}

fn subset(a: &ConnSet, b: &ConnSet) -> bool {
    a.intersect(b) == *a
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// "Network policies do not conflict; they are additive": one more allow rule never removes
    /// a connection.
    #[test]
    fn adding_an_allow_rule_never_removes_a_connection(seed in any::<u64>(), pick in any::<prop::sample::Index>(), donor in any::<prop::sample::Index>(), egress in any::<bool>()) {
        let before = cluster(seed);
        let direction = if egress { Direction::Egress } else { Direction::Ingress };
        let with_rules: Vec<usize> = (0..before.policies.len()).filter(|&i| before.policies[i].rules(direction).is_some()).collect();
        prop_assume!(!with_rules.is_empty());
        let all_rules: Vec<Rule> = before.policies.iter().flat_map(|p| p.rules(direction).unwrap_or_default().iter().cloned()).collect();
        let new_rule = if all_rules.is_empty() { Rule { peers: vec![], ports: vec![] } } else { donor.get(&all_rules).clone() };
        let mut after = before.clone();
        let target = *pick.get(&with_rules);
        after.policies[target].rules_mut(direction).as_mut().unwrap().push(new_rule);
        for (a, b) in matrix(&before).iter().zip(&matrix(&after)) {
            prop_assert!(subset(a, b), "{a} became {b}");
        }
    }

    /// A policy that selects no pod changes nothing, whatever its rules.
    #[test]
    fn a_policy_selecting_no_pod_changes_nothing(seed in any::<u64>(), donor in any::<prop::sample::Index>()) {
        let before = cluster(seed);
        let mut after = before.clone();
        let template = donor.get(&before.policies).clone();
        let mut selector = LabelSelector::default();
        selector.match_labels.insert("selects".into(), "nothing".into());
        after.policies.push(NetworkPolicy { name: "inert".into(), pod_selector: selector, origin: Origin::default(), ..template });
        prop_assert_eq!(matrix(&before), matrix(&after));
    }

    /// A deny-all policy never adds a connection.
    #[test]
    fn deny_all_never_adds_a_connection(seed in any::<u64>(), ns in any::<prop::sample::Index>()) {
        let before = cluster(seed);
        let mut after = before.clone();
        let namespace = ns.get(&before.namespaces).name.clone();
        after.policies.push(NetworkPolicy { namespace, name: "deny-all".into(), pod_selector: LabelSelector::default(), ingress: Some(vec![]), egress: Some(vec![]), origin: Origin::default() });
        for (a, b) in matrix(&before).iter().zip(&matrix(&after)) {
            prop_assert!(subset(b, a), "{a} became {b}");
        }
    }

    /// The explanation walks policies one by one; the matrix uses classes and bitsets. They agree.
    #[test]
    fn explanation_agrees_with_the_matrix(seed in any::<u64>()) {
        let c = cluster(seed);
        let m = matrix(&c);
        let n = c.pods.len();
        for s in 0..n {
            for d in 0..n {
                let e = explain(&c, OPTIONS, Endpoint::Pod(&c.pods[s]), Endpoint::Pod(&c.pods[d]), None);
                prop_assert_eq!(&e.allowed, &m[s * n + d].to_string(), "{} => {}", e.src, e.dst);
            }
        }
    }
}
