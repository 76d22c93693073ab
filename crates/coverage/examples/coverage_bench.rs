//! The pieces of bench/coverage.sh, each its own process so that its peak memory is its own:
//!
//! - `generate MB FILE`: a synthetic audit log of about MB megabytes, shaped like kube-apiserver's
//!   at level Metadata (user, annotations, timestamps; RequestReceived before each
//!   ResponseComplete; Go's `\u0026` in query strings; netmatrix cases and other clients).
//! - `read FILE`: the baseline, the same buffered line loop as the coverage without parsing.
//! - `coverage SPEC FILE`: the coverage over the log, its counts on stdout.
//!
//! Each prints the lines, bytes and seconds it took on stderr.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::time::Instant;

use netmatrix_coverage::{Coverage, Index};

const BUFFER: usize = 1 << 20;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let started = Instant::now();
    let (lines, bytes) = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["generate", mb, file] => generate(mb.parse().expect("MB"), file),
        ["read", file] => read(file),
        ["coverage", spec, file] => coverage(spec, file),
        _ => {
            eprintln!("usage: coverage_bench generate MB FILE | read FILE | coverage SPEC FILE");
            std::process::exit(2);
        }
    };
    eprintln!("lines {lines} bytes {bytes} seconds {:.3}", started.elapsed().as_secs_f64());
}

/// xorshift64: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn generate(mb: u64, file: &str) -> (u64, u64) {
    let mut out = BufWriter::with_capacity(BUFFER, File::create(file).expect("creating the log"));
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let agents = [
        "kube-controller-manager/v1.37.2 (linux/amd64) kubernetes/9bf5490/system:serviceaccount:kube-system:endpointslice-controller",
        "kubelet/v1.37.2 (linux/amd64) kubernetes/9bf5490",
        "kube-proxy/v1.37.2 (linux/amd64) kubernetes/9bf5490",
        "kubectl/v1.37.2 (linux/amd64) kubernetes/9bf5490",
    ];
    let cases = ["netpol/deny-all", "netpol/named-port", "services/cluster-ip", "services/node-port", "connectivity/pod-to-pod", "anp/deny-beats-netpol"];
    // (verb, URI with {ns} and {name}, objectRef resource)
    let requests = [
        ("create", "/api/v1/namespaces/{ns}/pods?fieldManager=netmatrix", "pods"),
        ("get", "/api/v1/namespaces/{ns}/pods/{name}", "pods"),
        ("patch", "/api/v1/namespaces/{ns}/pods/{name}?fieldManager=netmatrix&force=true", "pods"),
        ("create", "/api/v1/namespaces/{ns}/pods/{name}/exec?command=netmatrix-agent&command=probe&stdin=true&stdout=true", "pods"),
        ("watch", "/api/v1/namespaces/{ns}/pods?allowWatchBookmarks=true&labelSelector=netmatrix.io%2Frun%3Dr1&watch=true", "pods"),
        ("list", "/api/v1/pods?limit=500", "pods"),
        ("get", "/api/v1/namespaces/{ns}/pods/{name}/status", "pods"),
        ("create", "/api/v1/namespaces/{ns}/services", "services"),
        ("list", "/apis/discovery.k8s.io/v1/namespaces/{ns}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dsvc", "endpointslices"),
        ("create", "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies", "networkpolicies"),
        ("delete", "/api/v1/namespaces/{ns}", "namespaces"),
        ("get", "/api/v1/nodes/{name}", "nodes"),
        ("get", "/apis/apps/v1/namespaces/{ns}/deployments/{name}", "deployments"),
    ];
    let limit = mb * 1_000_000;
    let (mut lines, mut bytes, mut id) = (0u64, 0u64, 0u64);
    let mut line = String::with_capacity(2048);
    while bytes < limit {
        id += 1;
        let (verb, uri, resource) = requests[rng.below(requests.len())];
        let ns = format!("nm-r1-{}", ["x", "y", "z"][rng.below(3)]);
        let name = format!("pod-{}", rng.below(1000));
        let uri = uri.replace("{ns}", &ns).replace("{name}", &name).replace('&', "\\u0026");
        let case;
        let agent = if rng.below(4) == 0 {
            agents[rng.below(agents.len())]
        } else {
            case = format!("netmatrix/0.1.0 -- {}", cases[rng.below(cases.len())]);
            &case
        };
        let group = if uri.starts_with("/apis/") { format!(",\"apiGroup\":\"{}\"", uri.split('/').nth(2).unwrap_or_default()) } else { String::new() };
        for stage in ["RequestReceived", "ResponseComplete"] {
            line.clear();
            let status = if stage == "ResponseComplete" { ",\"responseStatus\":{\"metadata\":{},\"code\":200}" } else { "" };
            line.push_str(&format!(
                "{{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\":\"Metadata\",\"auditID\":\"{:08x}-8a4e-4c1f-9d2b-{:012x}\",\"stage\":\"{stage}\",\
                 \"requestURI\":\"{uri}\",\"verb\":\"{verb}\",\"user\":{{\"username\":\"admin\",\"uid\":\"1\",\"groups\":[\"system:masters\",\"system:authenticated\"]}},\
                 \"sourceIPs\":[\"127.0.0.1\"],\"userAgent\":\"{agent}\",\"objectRef\":{{\"resource\":\"{resource}\",\"namespace\":\"{ns}\",\"name\":\"{name}\"{group},\"apiVersion\":\"v1\"}}{status},\
                 \"requestReceivedTimestamp\":\"2026-12-07T05:00:00.123456Z\",\"stageTimestamp\":\"2026-12-07T05:00:00.125456Z\",\
                 \"annotations\":{{\"authorization.k8s.io/decision\":\"allow\",\"authorization.k8s.io/reason\":\"RBAC: allowed by ClusterRoleBinding \\\"cluster-admin\\\" of ClusterRole \\\"cluster-admin\\\" to Group \\\"system:masters\\\"\"}}}}\n",
                id >> 20,
                id
            ));
            out.write_all(line.as_bytes()).expect("writing the log");
            lines += 1;
            bytes += line.len() as u64;
        }
    }
    out.flush().expect("writing the log");
    (lines, bytes)
}

fn read(file: &str) -> (u64, u64) {
    let mut log = BufReader::with_capacity(BUFFER, File::open(file).expect("opening the log"));
    let mut line = Vec::with_capacity(4096);
    let (mut lines, mut bytes) = (0u64, 0u64);
    loop {
        line.clear();
        let n = log.read_until(b'\n', &mut line).expect("reading the log");
        if n == 0 {
            return (lines, bytes);
        }
        lines += 1;
        bytes += std::hint::black_box(&line).len() as u64;
    }
}

fn coverage(spec: &str, file: &str) -> (u64, u64) {
    let index = Index::read(&[spec]).expect("reading the spec");
    let mut coverage = Coverage::new(&index);
    coverage.read(&index, BufReader::with_capacity(BUFFER, File::open(file).expect("opening the log"))).expect("reading the log");
    println!(
        "events {} matched {} unmatched {} other_stages {} malformed {} cases {} agents {}",
        coverage.events,
        coverage.matched,
        coverage.unmatched,
        coverage.other_stages,
        coverage.malformed,
        coverage.cases.len(),
        coverage.agents.len()
    );
    (coverage.lines, coverage.bytes)
}
