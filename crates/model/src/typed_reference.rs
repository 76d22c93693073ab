//! For examples/load_speed.rs only: a JSON `List` read by serde_json straight into the loader's
//! typed mirrors (`raw`), nothing checked or built: what reading typed objects from the text with
//! a well-kept parser costs on its own, the reference for the loader's JSON speed.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, Visitor};

use crate::raw;

#[derive(Deserialize)]
struct List<'a> {
    #[serde(borrow)]
    items: Vec<Item<'a>>,
}

/// A Pod, a NetworkPolicy, or another kind's metadata (all a Namespace has). `kind` comes
/// before `spec` in what kubectl and netmatrix-synth write, so `spec` is read as the kind's.
#[allow(dead_code, reason = "read into, to be timed, not looked at")]
enum Item<'a> {
    Pod(raw::ObjectMeta<'a>, raw::PodSpec<'a>, raw::PodStatus<'a>),
    NetworkPolicy(raw::ObjectMeta<'a>, raw::NetworkPolicySpec<'a>),
    Other(raw::ObjectMeta<'a>),
}

impl<'de: 'a, 'a> Deserialize<'de> for Item<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ItemVisitor)
    }
}

struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item<'de>, A::Error> {
        let (mut kind, mut metadata, mut status) = ("", raw::ObjectMeta::default(), raw::PodStatus::default());
        let (mut pod_spec, mut policy_spec) = (raw::PodSpec::default(), raw::NetworkPolicySpec::default());
        while let Some(key) = map.next_key::<&str>()? {
            match (key, kind) {
                ("kind", _) => kind = map.next_value()?,
                ("metadata", _) => metadata = map.next_value()?,
                ("status", "Pod") => status = map.next_value()?,
                ("spec", "Pod") => pod_spec = map.next_value()?,
                ("spec", "NetworkPolicy") => policy_spec = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(match kind {
            "Pod" => Item::Pod(metadata, pod_spec, status),
            "NetworkPolicy" => Item::NetworkPolicy(metadata, policy_spec),
            _ => Item::Other(metadata),
        })
    }
}

/// The items of the JSON `List` `text` as serde_json read them into the typed mirrors (to be
/// dropped after the timing, as the loader's output is); `None` for anything else.
#[doc(hidden)]
pub fn serde_json_typed_items(text: &str) -> Option<impl Sized + '_> {
    serde_json::from_str::<List>(text).ok().map(|list| list.items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_item_is_read_as_its_kind() {
        let text = r#"{"kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {"hostNetwork": true, "containers": [{"name": "c"}]}},
            {"kind": "NetworkPolicy", "metadata": {"name": "p"}, "spec": {"policyTypes": ["Ingress"]}},
            {"kind": "ConfigMap", "metadata": {"name": "m"}, "data": {"spec": "x"}}]}"#;
        let items = serde_json::from_str::<List>(text).expect("a List").items;
        assert!(matches!(&items[..], [
            Item::Pod(pod, spec, _),
            Item::NetworkPolicy(policy, policy_spec),
            Item::Other(other),
        ] if pod.name == Some("a") && spec.host_network && spec.containers.len() == 1
            && policy.name == Some("p") && policy_spec.policy_types == Some(vec!["Ingress"])
            && other.name == Some("m")));
        assert!(serde_json_typed_items("[]").is_none(), "not a List");
    }
}
