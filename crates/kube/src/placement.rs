//! Which nodes probe pods go on: Ready, schedulable nodes, without control-plane or tainted
//! ones unless asked, matching a node selector, at most N; in name order, so placement is the
//! same run after run.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Node;
use netmatrix_cluster::Node as ProbeNode;

#[derive(Debug, Clone, Default)]
pub struct NodeFilter {
    /// Also nodes with NoSchedule/NoExecute taints (control-plane ones included); the pods
    /// then tolerate every taint.
    pub tolerate_taints: bool,
    /// Only nodes with all these labels.
    pub selector: BTreeMap<String, String>,
    /// At most this many nodes.
    pub max: Option<usize>,
}

/// The chosen nodes with their internal addresses, or why there are none (each node skipped
/// with its reason).
pub fn choose(nodes: &[Node], filter: &NodeFilter) -> Result<Vec<ProbeNode>, String> {
    let mut chosen = Vec::new();
    let mut skipped = Vec::new();
    let mut sorted: Vec<&Node> = nodes.iter().collect();
    sorted.sort_by_key(|n| n.metadata.name.clone());
    for node in sorted {
        let name = node.metadata.name.clone().unwrap_or_default();
        match unusable(node, filter) {
            Some(reason) => skipped.push(format!("{name}: {reason}")),
            None => chosen.push(ProbeNode { name, addresses: addresses(node) }),
        }
    }
    if let Some(max) = filter.max {
        chosen.truncate(max);
    }
    if chosen.is_empty() {
        return Err(if skipped.is_empty() { "the cluster has no nodes".into() } else { skipped.join("; ") });
    }
    Ok(chosen)
}

fn unusable(node: &Node, filter: &NodeFilter) -> Option<String> {
    let labels = node.metadata.labels.clone().unwrap_or_default();
    if let Some((k, v)) = filter.selector.iter().find(|(k, v)| labels.get(*k) != Some(*v)) {
        return Some(format!("does not match the node selector {k}={v}"));
    }
    let spec = node.spec.clone().unwrap_or_default();
    if spec.unschedulable == Some(true) {
        return Some("cordoned (unschedulable)".into());
    }
    let ready = node.status.as_ref().and_then(|s| s.conditions.as_ref()).and_then(|c| c.iter().find(|c| c.type_ == "Ready")).map(|c| c.status == "True");
    if ready != Some(true) {
        return Some("not Ready".into());
    }
    if !filter.tolerate_taints {
        if labels.contains_key("node-role.kubernetes.io/control-plane") {
            return Some("a control-plane node (--tolerate-taints places pods there)".into());
        }
        if let Some(t) = spec.taints.iter().flatten().find(|t| t.effect == "NoSchedule" || t.effect == "NoExecute") {
            return Some(format!("tainted {}:{} (--tolerate-taints places pods there)", t.key, t.effect));
        }
    }
    if addresses(node).is_empty() {
        return Some("has no InternalIP address".into());
    }
    None
}

/// InternalIP addresses, one per family.
fn addresses(node: &Node) -> Vec<IpAddr> {
    let all = node.status.as_ref().and_then(|s| s.addresses.as_ref());
    all.into_iter().flatten().filter(|a| a.type_ == "InternalIP").filter_map(|a| a.address.parse().ok()).collect()
}

/// `k=v,k2=v2` as given to `--node-selector`.
pub fn parse_selector(text: &str) -> Result<BTreeMap<String, String>, String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|pair| pair.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("--node-selector: {pair:?} is not key=value")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, extra: serde_json::Value) -> Node {
        let mut node = serde_json::json!({
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {},
            "status": {"conditions": [{"type": "Ready", "status": "True"}], "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}, {"type": "Hostname", "address": name}]}
        });
        merge(&mut node, extra);
        serde_json::from_value(node).unwrap()
    }

    fn merge(into: &mut serde_json::Value, from: serde_json::Value) {
        match (into, from) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
                b.into_iter().for_each(|(k, v)| merge(a.entry(k).or_insert(serde_json::Value::Null), v))
            }
            (slot, value) => *slot = value,
        }
    }

    fn cluster() -> Vec<Node> {
        vec![
            node("w2", serde_json::json!({})),
            node(
                "cp",
                serde_json::json!({"metadata": {"labels": {"node-role.kubernetes.io/control-plane": ""}}, "spec": {"taints": [{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}]}}),
            ),
            node("w1", serde_json::json!({})),
            node("cordoned", serde_json::json!({"spec": {"unschedulable": true}})),
            node("sick", serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}})),
            node("gpu", serde_json::json!({"spec": {"taints": [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]}})),
        ]
    }

    fn names(nodes: &[ProbeNode]) -> Vec<&str> {
        nodes.iter().map(|n| n.name.as_str()).collect()
    }

    #[test]
    fn ready_schedulable_untainted_nodes_in_name_order() {
        let chosen = choose(&cluster(), &NodeFilter::default()).unwrap();
        assert_eq!(names(&chosen), ["w1", "w2"]);
        assert_eq!(chosen[0].addresses, ["172.18.0.2".parse::<IpAddr>().unwrap()]);
    }

    #[test]
    fn tolerating_taints_adds_control_plane_and_tainted_nodes_but_never_cordoned_or_not_ready() {
        let chosen = choose(&cluster(), &NodeFilter { tolerate_taints: true, ..NodeFilter::default() }).unwrap();
        assert_eq!(names(&chosen), ["cp", "gpu", "w1", "w2"]);
    }

    #[test]
    fn selector_and_cap() {
        let filter = NodeFilter { selector: parse_selector("kubernetes.io/hostname=w2").unwrap(), ..NodeFilter::default() };
        assert_eq!(names(&choose(&cluster(), &filter).unwrap()), ["w2"]);
        assert_eq!(names(&choose(&cluster(), &NodeFilter { max: Some(1), ..NodeFilter::default() }).unwrap()), ["w1"]);
        assert!(parse_selector("nokey").is_err());
    }

    #[test]
    fn no_usable_node_says_why_for_each() {
        let err = choose(&cluster()[1..2], &NodeFilter::default()).unwrap_err();
        assert!(err.contains("cp: a control-plane node"), "{err}");
        let err = choose(&[node("sick", serde_json::json!({"status": {"conditions": [{"type": "Ready", "status": "Unknown"}]}}))], &NodeFilter::default())
            .unwrap_err();
        assert!(err.contains("sick: not Ready"), "{err}");
    }
}
