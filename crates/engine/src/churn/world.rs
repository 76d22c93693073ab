//! The world churn works on, after Felix's calculation-graph tests: namespaces labelled with an
//! area and a maturity, pods labelled with a role, an instance and an HA state, spread over the
//! nodes.

use netmatrix_cluster::{ContainerPort, PodSpec};
use netmatrix_model::{Labels, Protocol};
use netmatrix_results::churn::Shape;

use crate::world::{WORLD_LABEL, World, port_name};

pub const MATURITIES: [&str; 5] = ["production", "test", "staging", "experimental", "out-of-service"];

/// The port every churn pod serves.
pub const PORT: (u16, Protocol) = (80, Protocol::Tcp);

pub fn namespace_name(i: usize) -> String {
    format!("churn{}", i + 1)
}

/// Namespace `i`'s labels: `area=area1..5` and `maturity` cycling through [`MATURITIES`].
pub fn namespace_labels(i: usize, maturity: &str) -> Labels {
    Labels::from([("area".to_owned(), format!("area{}", i % 5 + 1)), ("maturity".to_owned(), maturity.to_owned())])
}

/// Pod `j` of a namespace: `role=role1..5`, `instance=instance1..5` (the next five pods), `ha`
/// alternating active and backup.
pub fn pod_labels(j: usize) -> Labels {
    Labels::from([
        ("role".to_owned(), format!("role{}", j % 5 + 1)),
        ("instance".to_owned(), format!("instance{}", j / 5 % 5 + 1)),
        ("ha".to_owned(), if j.is_multiple_of(2) { "active" } else { "backup" }.to_owned()),
        (WORLD_LABEL.0.to_owned(), WORLD_LABEL.1.to_owned()),
    ])
}

/// `shape.namespaces` namespaces of `shape.pods_per_namespace` pods each, pod `k` overall on
/// node `k % nodes`, so each namespace spreads over the nodes.
pub fn world(shape: &Shape, nodes: &[String]) -> World {
    assert!(!nodes.is_empty(), "a world needs a node");
    let serving = vec![ContainerPort { name: Some(port_name(PORT.0, PORT.1)), port: PORT.0, protocol: PORT.1 }];
    let namespaces = (0..shape.namespaces).map(|i| (namespace_name(i), namespace_labels(i, MATURITIES[i % MATURITIES.len()]))).collect();
    let pods = (0..shape.namespaces)
        .flat_map(|i| (0..shape.pods_per_namespace).map(move |j| (i, j)))
        .enumerate()
        .map(|(k, (i, j))| PodSpec {
            namespace: namespace_name(i),
            name: format!("pod{}", j + 1),
            labels: pod_labels(j),
            node: nodes[k % nodes.len()].clone(),
            ports: serving.clone(),
            host_network: false,
        })
        .collect();
    World { namespaces, pods }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_spread_over_nodes_with_felix_labels() {
        let shape = Shape { nodes: 3, namespaces: 2, pods_per_namespace: 4, ..Shape::default() };
        let nodes: Vec<String> = (0..3).map(|n| format!("node{n}")).collect();
        let w = world(&shape, &nodes);
        assert_eq!(w.namespaces.len(), 2);
        assert_eq!(w.namespaces[1].1["maturity"], "test");
        assert_eq!(w.pods.len(), 8);
        let on: Vec<&str> = w.pods.iter().map(|p| p.node.as_str()).collect();
        assert_eq!(on, ["node0", "node1", "node2", "node0", "node1", "node2", "node0", "node1"]);
        assert_eq!((w.pods[1].labels["role"].as_str(), w.pods[1].labels["ha"].as_str()), ("role2", "backup"));
    }
}
