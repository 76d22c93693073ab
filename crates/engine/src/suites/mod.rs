//! The built-in suites and the world they share, and how a run selects cases.

mod anp;
mod connectivity;
mod netpol;
mod services;

use netmatrix_model::Protocol;
use serde_json::{Value, json};

use crate::case::Case;
use crate::world::World;

pub const SUITES: [&str; 4] = ["connectivity", "services", "netpol", "anp"];

/// Namespaces x, y, z with pods a, b, c each, one per node per namespace on three nodes,
/// serving TCP and UDP 80 and 81 (and SCTP 80 where the nodes have it): the shape of the
/// upstream NetworkPolicy e2e tests.
pub fn world(nodes: &[String], sctp: bool) -> World {
    let mut ports = vec![(80, Protocol::Tcp), (81, Protocol::Tcp), (80, Protocol::Udp), (81, Protocol::Udp)];
    if sctp {
        ports.push((80, Protocol::Sctp));
    }
    World::spread(&["x", "y", "z"], &["a", "b", "c"], nodes, &ports)
}

/// The cases of the named suites, in suite order.
pub fn cases(suites: &[String]) -> Result<Vec<Case>, String> {
    let mut all = Vec::new();
    for suite in suites {
        all.extend(match suite.as_str() {
            "connectivity" => connectivity::cases(),
            "netpol" => netpol::cases(),
            "services" => services::cases(),
            "anp" => anp::cases(),
            other => return Err(format!("unknown suite {other:?} (one of {})", SUITES.join(", "))),
        });
    }
    Ok(all)
}

/// A NetworkPolicy manifest.
fn policy(namespace: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": name, "namespace": namespace}, "spec": spec})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_prefixed_by_their_suite() {
        let all = cases(&SUITES.map(String::from)).unwrap();
        let mut ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
        assert!(all.iter().all(|c| SUITES.iter().any(|s| c.id.starts_with(&format!("{s}/")))));
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate case ids");
        assert!(cases(&["nope".into()]).unwrap_err().contains("unknown suite"));
    }
}
