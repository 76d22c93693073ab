//! `netmatrix run`'s probing on the lab (root only): one matrix of 100 pods x 99 pod targets x
//! TCP and UDP 80 (19,800 cells), 10% of them denied by policy, probe timeout 1 s, probed by
//! the engine (one batched agent run per source pod); against the same cells probed with one
//! process per probe (what one-exec-per-probe suites do), timed on a sample and scaled up.
//! Run through `bench/run.sh`, which builds the release agent.

use std::time::{Duration, Instant};

use netmatrix_cluster::lab::LabBackend;
use netmatrix_cluster::{Backend, ContainerPort, PodKey, ProbeProtocol, ProbeRequest, Row, Target};
use netmatrix_engine::{Action, Case, ProbeConfig, ProbeSpec, Step, World, runner};
use netmatrix_lab::Lab;
use netmatrix_model::{Labels, Protocol};
use serde_json::json;

const LAB: &str = "bmx";
/// Sizes, overridable for exploring: `NODES`, `PODS`, `CLOSED`, `PARALLEL`.
fn knob(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}
/// Cells probed one process each for the baseline.
const SAMPLE: usize = 200;

fn world(pods: usize, closed: usize, nodes: usize) -> World {
    let ports = [Protocol::Tcp, Protocol::Udp].map(|protocol| ContainerPort { name: None, port: 80, protocol }).to_vec();
    let pods = (0..pods)
        .map(|i| netmatrix_cluster::PodSpec {
            namespace: "bench".into(),
            name: format!("p{i:03}"),
            labels: Labels::from([("closed".to_owned(), (i < closed).to_string())]),
            node: format!("node{}", i % nodes),
            ports: ports.clone(),
            host_network: false,
        })
        .collect();
    World { namespaces: vec![("bench".into(), Labels::new())], pods }
}

fn main() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: the matrix benchmark needs root (network namespaces)");
        return;
    }
    // 100 pods with 10 isolated for ingress with no rule: 10% of the cells are denied.
    let (nodes, pods, closed, parallel) = (knob("NODES", 4), knob("PODS", 100), knob("CLOSED", 10), knob("PARALLEL", 25));
    let _ = Lab::down(LAB);
    let mut backend = LabBackend::up(LAB, nodes, netmatrix_model::IpFamilies::Ipv4).expect("lab up");
    let deny = json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "closed", "namespace": "bench"},
        "spec": {"podSelector": {"matchLabels": {"closed": "true"}}, "policyTypes": ["Ingress"]}});
    let case = Case::new(
        "bench/matrix",
        &[],
        vec![Step::new(
            "100 x 99 x TCP+UDP, 10% denied",
            vec![Action::Apply(vec![deny.clone()])],
            ProbeSpec::pods(&[(80, Protocol::Tcp), (80, Protocol::Udp)]),
        )],
    );
    let config = ProbeConfig { timeout: Duration::from_secs(1), retries: 0, parallel, ..ProbeConfig::default() };
    // The host's CPU time from the case's start to its end (the world's setup excluded).
    let cpu: std::sync::Mutex<Vec<CpuTimes>> = Default::default();
    let on_event = |event: runner::Event| {
        if matches!(event, runner::Event::CaseStarted { .. } | runner::Event::CaseFinished(_)) {
            cpu.lock().unwrap().push(CpuTimes::now());
        }
    };
    let report = runner::run(&mut backend, &world(pods, closed, nodes), &[case], &config, &on_event).expect("run");
    let step = &report.cases[0].steps[0];
    let cells = step.cells.len();
    let denied = step.cells.iter().filter(|c| c.expected == netmatrix_results::Expected::Deny).count();
    let batched = Duration::from_millis(report.cases[0].duration_ms);
    println!("matrix: {cells} cells ({denied} denied by policy), result {:?}, wrong {}", report.cases[0].result, report.summary.wrong);
    for finding in &report.cases[0].findings {
        println!("  {}", finding.summary);
    }
    for c in step.cells.iter().filter(|c| c.comparison() != netmatrix_results::Comparison::AsExpected).take(5) {
        println!(
            "  {} -> {} {}/{}: expected {:?}, observed {:?} {:?} ({:?} -> {:?})",
            c.src, c.dst, c.port, c.protocol, c.expected, c.observed, c.detail, c.src_node, c.dst_node
        );
    }
    println!(
        "batched (one agent run per source pod, {parallel} rows at once): {:.2} s, {:.0} probes/s   (goal: under 10 s)",
        batched.as_secs_f64(),
        cells as f64 / batched.as_secs_f64()
    );

    let cpu = cpu.into_inner().unwrap();
    let used = cpu[1].since(&cpu[0]);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let kernel = used.kernel / cores;
    println!(
        "host CPU during the case: {:.0}% busy ({:.0}% user space: agents, engine; {:.0}% kernel: sockets, veths, nftables, conntrack); \
         were user space free, the kernel's share alone bounds probing at {:.0} probes/s",
        100.0 * used.busy() / cores / batched.as_secs_f64(),
        100.0 * used.user / cores / batched.as_secs_f64(),
        100.0 * kernel / batched.as_secs_f64(),
        cells as f64 / kernel
    );

    // Baseline: the same kind of cells, one process per probe, one after another.
    backend.apply(vec![deny]).expect("policy");
    let model = backend.model().expect("model");
    // A prime stride, so the sample does not follow the rows' order of targets.
    let sample: Vec<_> = step.cells.iter().step_by(97).take(SAMPLE).collect();
    // Each sampled probe timed alone, allowed and denied apart (a denied probe costs what the
    // dataplane makes it cost: a timeout when it drops, little when it rejects).
    let mut spent = [Duration::ZERO; 2];
    let mut count = [0u32; 2];
    for cell in &sample {
        let (ns, pod) = cell.src.split_once('/').unwrap();
        let source = PodKey::new(ns, pod);
        let dst = model.pods.iter().find(|p| format!("{}/{}", p.namespace, p.name) == cell.dst).unwrap();
        let protocol = if cell.protocol == Protocol::Tcp { ProbeProtocol::Tcp } else { ProbeProtocol::Udp };
        let probe =
            ProbeRequest { id: Some(cell.dst.clone()), timeout: Some(Duration::from_secs(1)), ..ProbeRequest::new(Target::Ip(dst.ips[0]), 80, protocol) };
        let class = usize::from(cell.expected == netmatrix_results::Expected::Deny);
        let start = Instant::now();
        let row = Row { source, probes: vec![probe], deadline: Duration::from_secs(10) };
        backend.probe_rows(&[row], 1, &|_| {}).pop().unwrap().expect("probe");
        spent[class] += start.elapsed();
        count[class] += 1;
    }
    let mean = |class: usize| spent[class] / count[class].max(1);
    let baseline = mean(0) * (cells - denied) as u32 + mean(1) * denied as u32;
    println!(
        "one process per probe: {:.1} ms an allowed probe, {:.1} ms a denied one ({} and {} sampled), so {:.0} s for the matrix",
        mean(0).as_secs_f64() * 1e3,
        mean(1).as_secs_f64() * 1e3,
        count[0],
        count[1],
        baseline.as_secs_f64()
    );
    println!("ratio: {:.0}x", baseline.as_secs_f64() / batched.as_secs_f64());
    assert!(backend.teardown().is_empty(), "lab down");
}

/// Seconds of CPU the whole host spent since boot, from /proc/stat's first line.
struct CpuTimes {
    user: f64,
    kernel: f64,
}

impl CpuTimes {
    fn now() -> CpuTimes {
        let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
        let ticks: Vec<f64> = stat.lines().next().unwrap().split_whitespace().skip(1).map(|t| t.parse().unwrap()).collect();
        // USER_HZ is 100 on Linux. Fields: user nice system idle iowait irq softirq steal.
        let seconds = |i: usize| ticks[i] / 100.0;
        CpuTimes { user: seconds(0) + seconds(1), kernel: seconds(2) + seconds(5) + seconds(6) }
    }

    fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes { user: self.user - earlier.user, kernel: self.kernel - earlier.kernel }
    }

    fn busy(&self) -> f64 {
        self.user + self.kernel
    }
}
