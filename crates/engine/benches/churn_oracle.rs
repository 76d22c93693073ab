//! The incremental oracle's time per change under policy churn, at 50 nodes x 20 namespaces x
//! 50 pods (1,000 pods) with 10 to 200 churned policies: each change deletes the oldest random
//! policy and creates a new one (`netmatrix churn --pattern policy-churn`), and the oracle says
//! which cells changed. Baseline, measured in the same run: a full recomputation per change
//! (`incremental::full_cells`: `Reachability::compute` and every cell). Prints p50/p99/max per change and the
//! ratio. Run with `cargo bench -p netmatrix-engine --bench churn_oracle` (release).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use netmatrix_engine::churn::patterns::{Act, Churner, Pattern};
use netmatrix_engine::churn::world::world;
use netmatrix_model::{Cluster, Namespace, Origin, parse_str};
use netmatrix_oracle::incremental::{Delta, Incremental, full_cells};
use netmatrix_oracle::{Options, Profile};
use netmatrix_results::churn::Shape;

const CHANGES: usize = 200;
/// Full recomputations timed per size (each takes far longer than an incremental change).
const FULL_SAMPLES: usize = 5;

fn deltas(acts: &[Act]) -> Vec<Delta> {
    acts.iter()
        .map(|act| match act {
            Act::Apply(manifest) => Delta::Policy(parse_str("bench", &manifest.to_string()).expect("valid").policies.remove(0)),
            Act::Delete { namespace, name, .. } => Delta::RemovePolicy { namespace: namespace.clone(), name: name.clone() },
            other => panic!("policy churn does {other:?}"),
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((p / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    let nodes: Vec<String> = (0..50).map(|n| format!("node{n}")).collect();
    println!("incremental oracle per policy-churn change, 50 nodes x 20 namespaces x 50 pods, {CHANGES} changes per size");
    println!("{:>9} {:>10} {:>10} {:>10} {:>12} {:>9} {:>11}", "policies", "p50 µs", "p99 µs", "max µs", "full p50 ms", "ratio", "cells/chg");
    for policies in [10, 50, 200] {
        let shape = Shape { nodes: 50, namespaces: 20, pods_per_namespace: 50, policies, services: 0, changes: CHANGES, controls: 0 };
        let w = world(&shape, &nodes);
        let mut cluster = Cluster {
            namespaces: w.namespaces.iter().map(|(n, l)| Namespace::new(n.clone(), l.clone())).collect(),
            pods: w
                .pods
                .iter()
                .enumerate()
                .map(|(k, p)| p.to_pod(vec![IpAddr::V4(Ipv4Addr::new(10, 244, (k / 250) as u8, (k % 250) as u8 + 2))], Origin::default()))
                .collect(),
            ..Cluster::default()
        };
        let mut churner = Churner::new(Pattern::PolicyChurn, shape, &w, 1);
        for delta in deltas(&churner.setup().acts) {
            if let Delta::Policy(p) = delta {
                cluster.policies.push(p);
            }
        }
        let mut oracle = Incremental::new(&cluster, Options { ipblocks_match_pods: true }).expect("in scope");
        let mut times = Vec::with_capacity(CHANGES);
        let mut changed = 0;
        for _ in 0..CHANGES {
            let deltas = deltas(&churner.next_change().acts);
            let start = Instant::now();
            for delta in deltas {
                changed += oracle.apply(delta).expect("in scope").len();
            }
            times.push(start.elapsed());
        }
        times.sort();
        let mut full_times: Vec<Duration> = (0..FULL_SAMPLES)
            .map(|_| {
                let cluster = oracle.cluster();
                let start = Instant::now();
                std::hint::black_box(full_cells(&cluster, Options { ipblocks_match_pods: true }, Profile::Lab));
                start.elapsed()
            })
            .collect();
        full_times.sort();
        let (p50, full_p50) = (percentile(&times, 50.0), percentile(&full_times, 50.0));
        println!(
            "{policies:>9} {:>10.1} {:>10.1} {:>10.1} {:>12.1} {:>8.0}x {:>11}",
            p50.as_secs_f64() * 1e6,
            percentile(&times, 99.0).as_secs_f64() * 1e6,
            times.last().expect("changes").as_secs_f64() * 1e6,
            full_p50.as_secs_f64() * 1e3,
            full_p50.as_secs_f64() / p50.as_secs_f64(),
            changed / CHANGES
        );
    }
    println!("goal: under 1 ms (1000 µs) per change");
}
