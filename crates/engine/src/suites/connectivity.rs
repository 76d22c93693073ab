//! `connectivity`: a quick health check with no policy at all.

use netmatrix_model::Protocol;

use crate::case::{Case, ProbeSpec, Step};

pub fn cases() -> Vec<Case> {
    vec![Case::new(
        "connectivity/pod-to-pod",
        &[("type", "connectivity"), ("feature", "pod-to-pod")],
        vec![Step::new("every pod reaches every other, same node and across nodes", vec![], ProbeSpec::pods(&[(80, Protocol::Tcp), (80, Protocol::Udp)]))],
    )]
}
