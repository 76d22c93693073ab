//! The probe pods of a run and where they go: deterministic placement.

use netmatrix_cluster::{ContainerPort, PodSpec};
use netmatrix_model::{Labels, PodKey, Protocol};

/// Namespaces and pods every case of a run starts from; cases change them and the engine
/// restores them afterwards.
#[derive(Debug, Clone, PartialEq)]
pub struct World {
    pub namespaces: Vec<(String, Labels)>,
    pub pods: Vec<PodSpec>,
}

/// Label every world pod carries, so a Service can select pods on every node.
pub const WORLD_LABEL: (&str, &str) = ("netmatrix.io/probe", "agent");

/// The namespace of the hostNetwork probe pods.
pub const HOST_NAMESPACE: &str = "host";

/// The serving port name the world uses, e.g. `serve-80-tcp` (at most 15 characters, as
/// Kubernetes requires of port names).
pub fn port_name(port: u16, protocol: Protocol) -> String {
    format!("serve-{port}-{}", protocol.as_str().to_ascii_lowercase())
}

/// `node0` .. `node<n-1>`: the node names of a backend that is not there yet (validating
/// cases needs a world before any backend exists).
pub fn node_names(nodes: usize) -> Vec<String> {
    (0..nodes).map(|i| format!("node{i}")).collect()
}

impl World {
    /// Namespaces `namespaces` (labelled `ns=<name>`), each with pods `pods` (labelled
    /// `pod=<name>`), serving every port of `ports` under its [`port_name`]. The `j`-th pod of
    /// the `i`-th namespace goes to node `(i + j) % nodes`: with as many pods per namespace as
    /// nodes, every namespace has one pod on every node, and a pod name sits on a different node
    /// in each namespace, so every source has targets on its own node and on the others.
    pub fn spread(namespaces: &[&str], pods: &[&str], nodes: &[String], ports: &[(u16, Protocol)]) -> World {
        assert!(!nodes.is_empty(), "a world needs a node");
        let serving: Vec<ContainerPort> =
            ports.iter().map(|&(port, protocol)| ContainerPort { name: Some(port_name(port, protocol)), port, protocol }).collect();
        World {
            namespaces: namespaces.iter().map(|ns| (ns.to_string(), Labels::from([("ns".to_owned(), ns.to_string())]))).collect(),
            pods: namespaces
                .iter()
                .enumerate()
                .flat_map(|(i, ns)| {
                    let serving = serving.clone();
                    pods.iter().enumerate().map(move |(j, pod)| PodSpec {
                        namespace: ns.to_string(),
                        name: pod.to_string(),
                        labels: Labels::from([("pod".to_owned(), pod.to_string()), (WORLD_LABEL.0.to_owned(), WORLD_LABEL.1.to_owned())]),
                        node: nodes[(i + j) % nodes.len()].clone(),
                        ports: serving.clone(),
                        host_network: false,
                    })
                })
                .collect(),
        }
    }

    pub fn pod(&self, key: &PodKey) -> Option<&PodSpec> {
        self.pods.iter().find(|p| p.namespace == key.namespace && p.name == key.name)
    }

    /// One hostNetwork probe pod per node, `host/<node>`, serving TCP and UDP 80 on the node's
    /// address: the far end of pod-to-node and node-to-pod cells, and Service clients on nodes.
    pub fn host_pods(nodes: &[String]) -> Vec<PodSpec> {
        let ports = [Protocol::Tcp, Protocol::Udp].map(|protocol| ContainerPort { name: Some(port_name(80, protocol)), port: 80, protocol }).to_vec();
        nodes
            .iter()
            .map(|node| PodSpec {
                namespace: HOST_NAMESPACE.into(),
                name: node.clone(),
                labels: Labels::from([("netmatrix.io/host".to_owned(), node.clone())]),
                node: node.clone(),
                ports: ports.clone(),
                host_network: true,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_namespace_has_a_pod_on_every_node_and_names_move() {
        let w = World::spread(&["x", "y", "z"], &["a", "b", "c"], &node_names(3), &[(80, Protocol::Tcp)]);
        for ns in ["x", "y", "z"] {
            let mut nodes: Vec<&str> = w.pods.iter().filter(|p| p.namespace == ns).map(|p| p.node.as_str()).collect();
            nodes.sort();
            assert_eq!(nodes, ["node0", "node1", "node2"], "namespace {ns}");
        }
        let a_nodes: Vec<&str> = w.pods.iter().filter(|p| p.name == "a").map(|p| p.node.as_str()).collect();
        assert_eq!(a_nodes, ["node0", "node1", "node2"]);
        assert_eq!(w.pod(&PodKey::new("y", "c")).unwrap().ports[0].name.as_deref(), Some("serve-80-tcp"));
    }

    #[test]
    fn one_node_takes_everything() {
        let w = World::spread(&["x"], &["a", "b"], &node_names(1), &[]);
        assert!(w.pods.iter().all(|p| p.node == "node0"));
    }
}
