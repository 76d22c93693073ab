//! Churn's rounds through agents kept running (`Backend::probe_rows_again` on a real lab): one
//! agent per source pod answers round after round with what one-shot agents see, ends with its
//! pod, and none is left after teardown. Needs root (CI is root).

#[path = "support/lab.rs"]
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use netmatrix_cluster::lab::LabBackend;
use netmatrix_cluster::{Backend, ContainerPort, Outcome, PodKey, PodSpec, ProbeProtocol, ProbeRequest, Row, Target};
use netmatrix_model::{IpFamilies, Protocol};
use support::{Guard, ensure_agent, root};

/// This test's lab; other tests use other names.
const LAB: &str = "tkpt";

/// The test's children that are kept agents (`probe --stream`), by pid.
fn kept_agents() -> BTreeSet<u32> {
    let me = std::process::id().to_string();
    let mut pids = BTreeSet::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let (Ok(stat), Ok(cmdline)) = (std::fs::read_to_string(format!("/proc/{pid}/stat")), std::fs::read(format!("/proc/{pid}/cmdline"))) else {
            continue;
        };
        // Fields after the command's closing parenthesis: state, then the parent's pid.
        let parent = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_owned));
        let zombie = stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
        if parent.as_deref() == Some(me.as_str()) && !zombie && cmdline.split(|b| *b == 0).any(|w| w == b"--stream") {
            pids.insert(pid);
        }
    }
    pids
}

fn outcomes(results: &[netmatrix_cluster::RowResult]) -> Vec<Vec<Outcome>> {
    results.iter().map(|r| r.as_ref().expect("the row ran").iter().map(|p| p.outcome).collect()).collect()
}

#[test]
fn kept_agents_answer_round_after_round_and_end_with_their_pods() {
    if !root("kept_agents_answer_round_after_round_and_end_with_their_pods") {
        return;
    }
    ensure_agent();
    let _guard = Guard(LAB);
    let _ = netmatrix_lab::Lab::down(LAB);
    let mut backend = LabBackend::up(LAB, 2, IpFamilies::Ipv4).unwrap();
    let pod = |name: &str, node: &str| PodSpec {
        namespace: "x".into(),
        name: name.into(),
        node: node.into(),
        ports: vec![ContainerPort { name: None, port: 80, protocol: Protocol::Tcp }],
        ..PodSpec::default()
    };
    backend.create_pods(vec![pod("a", "node0"), pod("b", "node1")]).unwrap();
    let model = backend.model().unwrap();
    let ip = |name: &str| model.pods.iter().find(|p| p.name == name).unwrap().ips[0];
    let probes = |to: &str| {
        [80, 81]
            .map(|port| ProbeRequest { timeout: Some(Duration::from_millis(500)), ..ProbeRequest::new(Target::Ip(ip(to)), port, ProbeProtocol::Tcp) })
            .to_vec()
    };
    let rows = vec![
        Row { source: PodKey::new("x", "a"), probes: probes("b"), deadline: Duration::from_secs(10) },
        Row { source: PodKey::new("x", "b"), probes: probes("a"), deadline: Duration::from_secs(10) },
    ];
    let expected = vec![vec![Outcome::Connected, Outcome::Refused]; 2];
    assert_eq!(outcomes(&backend.probe_rows(&rows, 2, &|_| {})), expected, "one-shot agents");
    assert!(kept_agents().is_empty(), "probe_rows keeps no agent");

    let mut first = None;
    for round in 0..5 {
        assert_eq!(outcomes(&backend.probe_rows_again(&rows, 2, &|_| {})), expected, "round {round}");
        let kept = kept_agents();
        assert_eq!(kept.len(), 2, "round {round}: one kept agent per source, got {kept:?}");
        assert_eq!(first.get_or_insert(kept.clone()), &kept, "round {round}: the same agents as in the first round");
    }

    // The deleted pod's agent ends with it; the other one stays.
    backend.delete_pod(&PodKey::new("x", "b")).unwrap();
    assert_eq!(kept_agents().len(), 1, "b's kept agent ended with b");
    let own = [Row { probes: probes("a"), ..rows[0].clone() }];
    assert_eq!(outcomes(&backend.probe_rows_again(&own, 1, &|_| {})), expected[..1], "a probes on");
    assert!(first.unwrap().is_superset(&kept_agents()), "a's agent is still the first one");

    assert!(backend.teardown().is_empty());
    assert!(kept_agents().is_empty(), "no kept agent after teardown");
}
