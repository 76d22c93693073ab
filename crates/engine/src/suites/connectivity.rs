//! `connectivity`: a quick health check with no policy at all.

use netmatrix_model::Protocol;
use serde_json::json;

use crate::case::{Action, Case, ProbeSpec, Step};
use crate::world::WORLD_LABEL;

pub fn cases() -> Vec<Case> {
    let labels = |feature| [("type", "connectivity"), ("feature", feature)];
    let service = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "health", "namespace": "x"},
        "spec": {"selector": {WORLD_LABEL.0: WORLD_LABEL.1}, "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}});
    vec![
        Case::new(
            "connectivity/pod-to-pod",
            &labels("pod-to-pod"),
            vec![Step::new("every pod reaches every other, same node and across nodes", vec![], ProbeSpec::pods(&[(80, Protocol::Tcp), (80, Protocol::Udp)]))],
        ),
        Case::new(
            "connectivity/pod-to-node-and-node-to-pod",
            &labels("pod-to-node"),
            vec![Step::new(
                "pods and nodes (hostNetwork probe pods) reach each other",
                vec![Action::AddHostPods],
                ProbeSpec::pods(&[(80, Protocol::Tcp), (80, Protocol::Udp)]),
            )],
        ),
        Case::new(
            "connectivity/pod-to-service",
            &labels("pod-to-service"),
            vec![Step::new("every pod reaches a ClusterIP Service over the pods of x", vec![Action::Apply(vec![service])], ProbeSpec::services())],
        ),
    ]
}
