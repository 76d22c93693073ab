//! The fields the Kubernetes API defines for the parts of objects the model reads, so that a
//! misspelled field (`ingres`) is reported instead of silently read as absent. Lists are those
//! of the API (k8s-openapi 0.29, Kubernetes 1.37; policy.networking.k8s.io v1alpha1/v1alpha2).
//! Subtrees the model does not read are `Any` or `Open`: an object produced by a newer API
//! server must still load.

use crate::dom::V;

/// What to do with fields the API does not define, as kubectl's `--validate`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Validation {
    /// An error, as the API server's strict field validation (kubectl's default).
    #[default]
    Strict,
    /// A warning; the field is ignored.
    Warn,
    /// Ignored without a word.
    Ignore,
}

pub(crate) enum Shape {
    /// Not checked.
    Any,
    /// Exactly these fields.
    Object(&'static [(&'static str, Shape)]),
    /// These fields are checked; others are accepted (large schemas the model reads a corner of).
    Open(&'static [(&'static str, Shape)]),
    List(&'static Shape),
}

use Shape::{Any, List, Object, Open};

const META: Shape = Object(&[
    ("annotations", Any),
    ("creationTimestamp", Any),
    ("deletionGracePeriodSeconds", Any),
    ("deletionTimestamp", Any),
    ("finalizers", Any),
    ("generateName", Any),
    ("generation", Any),
    ("labels", Any),
    ("managedFields", Any),
    ("name", Any),
    ("namespace", Any),
    ("ownerReferences", List(&Object(&[("apiVersion", Any), ("blockOwnerDeletion", Any), ("controller", Any), ("kind", Any), ("name", Any), ("uid", Any)]))),
    ("resourceVersion", Any),
    ("selfLink", Any),
    ("uid", Any),
]);

const SELECTOR: Shape = Object(&[("matchLabels", Any), ("matchExpressions", List(&Object(&[("key", Any), ("operator", Any), ("values", Any)])))]);

const CONTAINER_PORT: Shape = Object(&[("containerPort", Any), ("hostIP", Any), ("hostPort", Any), ("name", Any), ("protocol", Any)]);

/// Only what the model reads of a PodSpec: it has dozens of fields and gains some every release.
const POD_SPEC: Shape = Open(&[("containers", List(&Open(&[("ports", List(&CONTAINER_PORT))])))]);

const POD_TEMPLATE: Shape = Open(&[("metadata", META), ("spec", POD_SPEC)]);

const SERVICE_SPEC: Shape = Object(&[
    ("allocateLoadBalancerNodePorts", Any),
    ("clusterIP", Any),
    ("clusterIPs", Any),
    ("externalIPs", Any),
    ("externalName", Any),
    ("externalTrafficPolicy", Any),
    ("healthCheckNodePort", Any),
    ("internalTrafficPolicy", Any),
    ("ipFamilies", Any),
    ("ipFamilyPolicy", Any),
    ("loadBalancerClass", Any),
    ("loadBalancerIP", Any),
    ("loadBalancerSourceRanges", Any),
    ("ports", List(&Object(&[("appProtocol", Any), ("name", Any), ("nodePort", Any), ("port", Any), ("protocol", Any), ("targetPort", Any)]))),
    ("publishNotReadyAddresses", Any),
    ("selector", Any),
    ("sessionAffinity", Any),
    ("sessionAffinityConfig", Object(&[("clientIP", Object(&[("timeoutSeconds", Any)]))])),
    ("trafficDistribution", Any),
    ("type", Any),
]);

const ENDPOINT: Shape = Object(&[
    ("addresses", Any),
    ("conditions", Object(&[("ready", Any), ("serving", Any), ("terminating", Any)])),
    ("deprecatedTopology", Any),
    ("hints", Any),
    ("hostname", Any),
    ("nodeName", Any),
    ("targetRef", Object(&[("apiVersion", Any), ("fieldPath", Any), ("kind", Any), ("name", Any), ("namespace", Any), ("resourceVersion", Any), ("uid", Any)])),
    ("zone", Any),
]);

const POLICY_PEERS: Shape =
    List(&Object(&[("podSelector", SELECTOR), ("namespaceSelector", SELECTOR), ("ipBlock", Object(&[("cidr", Any), ("except", Any)]))]));
const POLICY_PORTS: Shape = List(&Object(&[("protocol", Any), ("port", Any), ("endPort", Any)]));

const POLICY_SPEC: Shape = Object(&[
    ("podSelector", SELECTOR),
    ("ingress", List(&Object(&[("from", POLICY_PEERS), ("ports", POLICY_PORTS)]))),
    ("egress", List(&Object(&[("to", POLICY_PEERS), ("ports", POLICY_PORTS)]))),
    ("policyTypes", Any),
]);

/// v1alpha1 AdminNetworkPolicy/BaselineAdminNetworkPolicy and v1alpha2 ClusterNetworkPolicy
/// together: a field of the other version gets a message naming the version when converting.
const ADMIN_PEER: Shape = Object(&[
    ("namespaces", SELECTOR),
    ("pods", Object(&[("namespaceSelector", SELECTOR), ("podSelector", SELECTOR)])),
    ("nodes", SELECTOR),
    ("networks", Any),
    ("domainNames", Any),
]);
const ADMIN_RANGE: Shape = Object(&[("protocol", Any), ("start", Any), ("end", Any)]);
const ADMIN_PROTOCOL_PORTS: Shape = Object(&[("destinationPort", Object(&[("number", Any), ("range", ADMIN_RANGE)]))]);
const ADMIN_RULE: Shape = List(&Object(&[
    ("name", Any),
    ("action", Any),
    ("from", List(&ADMIN_PEER)),
    ("to", List(&ADMIN_PEER)),
    ("ports", List(&Object(&[("portNumber", Object(&[("protocol", Any), ("port", Any)])), ("namedPort", Any), ("portRange", ADMIN_RANGE)]))),
    (
        "protocols",
        List(&Object(&[("tcp", ADMIN_PROTOCOL_PORTS), ("udp", ADMIN_PROTOCOL_PORTS), ("sctp", ADMIN_PROTOCOL_PORTS), ("destinationNamedPort", Any)])),
    ),
]));
const ADMIN_SPEC: Shape = Object(&[("tier", Any), ("priority", Any), ("subject", ADMIN_PEER), ("ingress", ADMIN_RULE), ("egress", ADMIN_RULE)]);

/// The shape of an object of `kind`, for the kinds the model reads.
pub(crate) fn of_kind(kind: &str) -> Option<&'static Shape> {
    macro_rules! object {
        ($spec:expr) => {
            Object(&[("apiVersion", Any), ("kind", Any), ("metadata", META), ("spec", $spec), ("status", Any)])
        };
    }
    static OPAQUE: Shape = object!(Any);
    static POD: Shape = object!(POD_SPEC);
    static WORKLOAD: Shape = object!(Open(&[("template", POD_TEMPLATE)]));
    static CRONJOB: Shape = object!(Open(&[("jobTemplate", Open(&[("metadata", META), ("spec", Open(&[("template", POD_TEMPLATE)]))]))]));
    static SERVICE: Shape = object!(SERVICE_SPEC);
    // `status` was a field of NetworkPolicy from 1.24 to 1.27: older dumps print `status: {}`.
    static POLICY: Shape = object!(POLICY_SPEC);
    static ADMIN: Shape = object!(ADMIN_SPEC);
    static SLICE: Shape = Object(&[
        ("apiVersion", Any),
        ("kind", Any),
        ("metadata", META),
        ("addressType", Any),
        ("endpoints", List(&ENDPOINT)),
        ("ports", List(&Object(&[("appProtocol", Any), ("name", Any), ("port", Any), ("protocol", Any)]))),
    ]);
    Some(match kind {
        "Namespace" | "Node" => &OPAQUE,
        "Pod" => &POD,
        "Deployment" | "ReplicaSet" | "ReplicationController" | "StatefulSet" | "DaemonSet" | "Job" => &WORKLOAD,
        "CronJob" => &CRONJOB,
        "Service" => &SERVICE,
        "EndpointSlice" => &SLICE,
        "NetworkPolicy" => &POLICY,
        "AdminNetworkPolicy" | "BaselineAdminNetworkPolicy" | "ClusterNetworkPolicy" => &ADMIN,
        _ => return None,
    })
}

/// A field `value` has that `shape` does not define: its path and a likely intended name.
pub(crate) struct Unknown {
    pub path: String,
    pub suggestion: Option<&'static str>,
}

/// A step of the path to a field: a key, or an index into a list.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Step<'d> {
    Key(&'d str),
    Index(usize),
}

/// Every unknown field of `value`, in key order (as when documents were `Value`s, whose maps
/// are sorted), with paths relative to `value`.
pub(crate) fn unknown_fields(value: V, shape: &Shape) -> Vec<Unknown> {
    let mut found = Vec::new();
    walk(value, shape, &mut Vec::new(), &mut found);
    if found.len() > 1 {
        // No unknown field lies within another (the walk stops at one), so sorting the paths
        // step by step is the order of a walk over sorted maps.
        found.sort_by(|(a, _), (b, _)| a.cmp(b));
    }
    found.into_iter().map(|(steps, suggestion)| Unknown { path: path_text(&steps), suggestion }).collect()
}

fn path_text(steps: &[Step]) -> String {
    let mut path = String::new();
    for step in steps {
        match step {
            Step::Key(key) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
            }
            Step::Index(i) => path.push_str(&format!("[{i}]")),
        }
    }
    path
}

type Found<'d> = Vec<(Vec<Step<'d>>, Option<&'static str>)>;

fn walk<'d>(value: V<'d, '_>, shape: &Shape, path: &mut Vec<Step<'d>>, found: &mut Found<'d>) {
    match shape {
        Object(fields) | Open(fields) if value.is_map() => {
            for (key, child) in value.entries() {
                match fields.iter().find(|(name, _)| *name == key) {
                    Some((_, Any)) => {}
                    Some((_, shape)) => {
                        path.push(Step::Key(key));
                        walk(child, shape, path, found);
                        path.pop();
                    }
                    None if matches!(shape, Object(_)) => {
                        let mut steps = path.clone();
                        steps.push(Step::Key(key));
                        found.push((steps, suggest(key, fields)));
                    }
                    None => {}
                }
            }
        }
        List(item) if value.is_seq() => {
            for (i, child) in value.items().enumerate() {
                path.push(Step::Index(i));
                walk(child, item, path, found);
                path.pop();
            }
        }
        // Wrong types are reported when the object is read.
        _ => {}
    }
}

/// The known field closest to `key`: same letters in another case, or at most two edits away
/// (a third of the name for short names).
fn suggest(key: &str, fields: &[(&'static str, Shape)]) -> Option<&'static str> {
    let limit = (key.chars().count() / 3).clamp(1, 2);
    fields
        .iter()
        .map(|(name, _)| (if name.eq_ignore_ascii_case(key) { 0 } else { edit_distance(key, name) }, *name))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, name)| name)
}

/// Edits (insertions, deletions, substitutions, swaps of neighbours) from `a` to `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    // d[i][j]: distance between the first i characters of a and the first j of b.
    let mut d: Vec<Vec<usize>> = (0..=a.len())
        .map(|i| {
            (0..=b.len())
                .map(|j| {
                    if i == 0 {
                        j
                    } else if j == 0 {
                        i
                    } else {
                        0
                    }
                })
                .collect()
        })
        .collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let substitution = d[i - 1][j - 1] + usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = substitution.min(d[i - 1][j] + 1).min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dom::{Build, Dom};
    use serde::de::DeserializeSeed;
    use serde_json::json;

    fn unknown_fields(value: &serde_json::Value, shape: &Shape) -> Vec<Unknown> {
        let text = value.to_string();
        let mut dom = Dom::new(&text);
        Build(&mut dom).deserialize(value).unwrap();
        super::unknown_fields(dom.root().unwrap(), shape)
    }

    #[test]
    fn unknown_fields_are_found_with_their_path_and_a_suggestion() {
        let policy = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "p"},
            "spec": {"podSelektor": {}, "ingres": [], "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "exept": []}}], "portz": []}]}});
        let found: Vec<(String, Option<&str>)> =
            unknown_fields(&policy, of_kind("NetworkPolicy").unwrap()).into_iter().map(|u| (u.path, u.suggestion)).collect();
        assert_eq!(
            found,
            [
                ("spec.egress[0].portz".to_owned(), Some("ports")),
                ("spec.egress[0].to[0].ipBlock.exept".to_owned(), Some("except")),
                ("spec.ingres".to_owned(), Some("ingress")),
                ("spec.podSelektor".to_owned(), Some("podSelector")),
            ]
        );
        assert!(unknown_fields(&json!({"spec": {"xyz": 1}}), of_kind("NetworkPolicy").unwrap())[0].suggestion.is_none());
    }

    #[test]
    fn open_objects_check_only_what_the_model_reads() {
        let pod = json!({"spec": {"dnsPolicy": "ClusterFirst", "newFieldOfTomorrow": 1, "containers": [{"image": "x", "ports": [{"containerPrt": 80}]}]}});
        let found: Vec<String> = unknown_fields(&pod, of_kind("Pod").unwrap()).into_iter().map(|u| u.path).collect();
        assert_eq!(found, ["spec.containers[0].ports[0].containerPrt"]);
    }
}
