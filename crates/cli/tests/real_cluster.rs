//! netmatrix against a real Kubernetes v1.37.2 on this host: `hack/kube/up` starts etcd, the
//! control plane, and per node (a network namespace) containerd, a kubelet, kube-proxy and
//! kube-router's NetworkPolicy firewall, all built from their Go modules by `hack/kube/build`.
//! Every suite runs through the API server with kube-proxy in iptables and in nftables mode (and
//! every churn pattern with nftables), each
//! fault of `hack/kube/fault` must be diagnosed where it is, and `hack/kube/down` must leave
//! nothing behind, also after `up` was killed halfway.
//!
//! Needs root, the built binaries (`NETMATRIX_KUBE_BIN`, set by .ci/run) and Go (the pause
//! image); skips saying why without them, and fails instead in CI. One cluster per host, so
//! everything runs in one test, step after step.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use netmatrix_results::churn::ChurnReport;
use netmatrix_results::{CaseResult, RunReport, TargetKind};

const STATE: &str = "/var/lib/netmatrix-kube/nmk";
const KUBECONFIG: &str = "/var/lib/netmatrix-kube/nmk/admin.kubeconfig";
/// What `hack/kube/up` runs (e2e.test is only for bench/kube-vs-e2e.sh).
const CLUSTER_BINARIES: &[&str] = &[
    "kubectl",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "etcd",
    "containerd",
    "containerd-shim-runc-v2",
    "ctr",
    "runc",
    "bridge",
    "host-local",
    "loopback",
    "portmap",
    "coredns",
    "kube-router",
    "agnhost",
];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// The bin directory, or `None` after saying why the test is skipped (panicking in CI).
fn prerequisites() -> Option<PathBuf> {
    let why = if !nix::unistd::geteuid().is_root() {
        "needs root (network namespaces, cgroups, mounts)".to_owned()
    } else if Path::new(STATE).exists() {
        format!("a hack/kube cluster is up ({STATE} exists): its owner may be using it; hack/kube/down removes it")
    } else if !Command::new("go").arg("version").output().is_ok_and(|o| o.status.success()) {
        "Go is missing (hack/kube/up builds the pause image with it)".to_owned()
    } else {
        match std::env::var_os("NETMATRIX_KUBE_BIN").map(PathBuf::from) {
            Some(dir) => match CLUSTER_BINARIES.iter().find(|b| !dir.join(b).exists()) {
                None => return Some(dir),
                Some(missing) => format!("{} has no {missing} (hack/kube/build builds it)", dir.display()),
            },
            None => "NETMATRIX_KUBE_BIN is not set (hack/kube/build builds the cluster and prints the directory)".to_owned(),
        }
    };
    assert!(std::env::var_os("CI").is_none(), "in CI the real-cluster test must run: {why}");
    eprintln!("SKIPPED: netmatrix on a real cluster: {why}");
    None
}

struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn tail(&self) -> String {
        let lines: Vec<&str> = self.stdout.lines().chain(self.stderr.lines()).collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// `child`'s exit status, or `None` (and the child killed) when it is still running after `deadline`.
fn exit_within(child: &mut Child, deadline: Duration) -> Option<ExitStatus> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `command` to its end, killing it and failing the test when it takes longer than `deadline`.
fn run(what: &str, command: &mut Command, deadline: Duration) -> Ran {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let started = Instant::now();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = exit_within(&mut child, deadline);
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    let ran = Ran { status: status.unwrap_or_default(), stdout: read(&out), stderr: read(&err) };
    assert!(status.is_some(), "{what}: not done within {deadline:?}; it printed:\n{}", ran.tail());
    eprintln!("  {what}: {:.1} s", started.elapsed().as_secs_f64());
    ran
}

fn succeed(what: &str, command: &mut Command, deadline: Duration) -> Ran {
    let ran = run(what, command, deadline);
    assert!(ran.status.success(), "{what} failed ({}):\n{}", ran.status, ran.tail());
    ran
}

fn hack(script: &str) -> Command {
    Command::new(repo().join("hack/kube").join(script))
}

fn kubectl(bin: &Path) -> Command {
    let mut command = Command::new(bin.join("kubectl"));
    command.args(["--kubeconfig", KUBECONFIG]);
    command
}

/// What a cluster can leave on the host: network namespaces, mounts, cgroups, processes of the
/// built binaries, host firewall rules, the sysctls kubelet sets, the state directory.
fn host_state(bin: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let netns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    found.extend(String::from_utf8_lossy(&netns.stdout).lines().filter(|l| l.starts_with("nmk-")).map(|l| format!("netns {l}")));
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    found.extend(mounts.lines().filter(|l| l.contains("/var/lib/netmatrix-kube")).map(|l| format!("mount {l}")));
    for hierarchy in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        for entry in std::fs::read_dir(hierarchy.path()).into_iter().flatten().flatten() {
            if entry.file_name().to_string_lossy().starts_with("nmk-") {
                found.push(format!("cgroup {}", entry.path().display()));
            }
        }
    }
    for process in std::fs::read_dir("/proc").unwrap().flatten() {
        let exe = std::fs::read_link(process.path().join("exe"));
        let cmdline = std::fs::read(process.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if exe.is_ok_and(|e| e.starts_with(bin)) || cmdline.contains("/var/lib/netmatrix-kube") || cmdline.contains("nmk-") {
            found.push(format!("process {}: {cmdline}", process.file_name().to_string_lossy()));
        }
    }
    let rules = Command::new("iptables-save").output().unwrap();
    found.extend(String::from_utf8_lossy(&rules.stdout).lines().filter(|l| l.contains("KUBE-")).map(|l| format!("iptables {l}")));
    if let Ok(tables) = Command::new("nft").args(["list", "tables"]).output() {
        found.extend(String::from_utf8_lossy(&tables.stdout).lines().filter(|l| l.contains("kube")).map(|l| format!("nft {l}")));
    }
    for sysctl in ["vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops"] {
        let value = std::fs::read_to_string(format!("/proc/sys/{sysctl}")).unwrap();
        found.push(format!("sysctl {sysctl}={}", value.trim()));
    }
    if Path::new(STATE).exists() {
        found.push(format!("state directory {STATE}"));
    }
    // containerd's default NRI socket directory: hack/kube/up disables NRI so as not to make it.
    if Path::new("/run/nri").exists() {
        found.push("/run/nri".to_owned());
    }
    found
}

/// `hack/kube/down` when dropped, so a failed step still removes the cluster.
struct Cluster;

impl Cluster {
    fn up(args: &[&str], image: &Path) -> Cluster {
        let mut up = hack("up");
        up.args(args).arg("--image").arg(image);
        let cluster = Cluster;
        succeed(&format!("hack/kube/up {}", args.join(" ")), &mut up, Duration::from_secs(300));
        cluster
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let ran = run("hack/kube/down", &mut hack("down"), Duration::from_secs(180));
        if !ran.status.success() && !std::thread::panicking() {
            panic!("hack/kube/down failed:\n{}", ran.tail());
        }
    }
}

/// The static agent in an image archive, as a user makes it (README, "Agent image without Docker").
fn agent_image(dir: &Path) -> PathBuf {
    let repo = repo();
    let mut build = Command::new(repo.join("crates/agent/build-static.sh"));
    // Its own target directory: this test's cargo holds the lock of the workspace's.
    build.env("CARGO_TARGET_DIR", repo.join("target/agent-static")).env_remove("CARGO_ENCODED_RUSTFLAGS").env_remove("RUSTFLAGS");
    let agent = succeed("building the static agent", &mut build, Duration::from_secs(900)).stdout.trim().to_owned();
    let archive = dir.join("netmatrix-agent.tar");
    let mut image = Command::new(env!("CARGO_BIN_EXE_netmatrix"));
    image.args(["image", "build", "--agent", &agent, "-o"]).arg(&archive);
    succeed("netmatrix image build", &mut image, Duration::from_secs(120));
    archive
}

/// `netmatrix run --kubeconfig` with `args`; its exit code and JSON report.
fn netmatrix_run(what: &str, dir: &Path, args: &[&str]) -> (i32, RunReport) {
    let json = dir.join("run.json");
    let _ = std::fs::remove_file(&json);
    let mut command = Command::new(env!("CARGO_BIN_EXE_netmatrix"));
    command.args(["run", "--kubeconfig", KUBECONFIG, "--tables", "failed", "--json"]).arg(&json).args(args);
    let ran = run(what, &mut command, Duration::from_secs(900));
    let code = ran.status.code().unwrap_or(-1);
    let report = std::fs::read(&json).unwrap_or_else(|e| panic!("{what}: no report ({e}), exit {code}:\n{}", ran.tail()));
    let report: RunReport = serde_json::from_slice(&report).unwrap();
    eprintln!("  {what}: {:?}", report.summary);
    (code, report)
}

/// `netmatrix churn` through the API server: each change's cells converge, no control changes,
/// and changes carry the API server's time of them (policy-churn aside: kube-router's defect).
fn churn_converges(dir: &Path, mode: &str) {
    let json = dir.join("churn.json");
    let mut command = Command::new(env!("CARGO_BIN_EXE_netmatrix"));
    command.args(["churn", "--kubeconfig", KUBECONFIG, "--changes", "3", "--pods-per-namespace", "4", "--json"]).arg(&json);
    // policy-churn's random policies meet kube-router's egress defect (see kube_router_egress_defect).
    command.args(["--pattern", "ns-labels", "--pattern", "pod-ring", "--pattern", "service-churn"]);
    let ran = run(&format!("netmatrix churn, kube-proxy {mode}"), &mut command, Duration::from_secs(900));
    let report = std::fs::read(&json).unwrap_or_else(|e| panic!("churn: no report ({e}):\n{}", ran.tail()));
    let report: ChurnReport = serde_json::from_slice(&report).unwrap();
    assert_eq!(ran.status.code(), Some(0), "churn, kube-proxy {mode}: {:#?}\n{}", churn_problems(&report), ran.tail());
    assert_eq!(report.patterns.len(), 3);
    for p in &report.patterns {
        for c in &p.changes {
            assert!(c.latency_ms.is_some() || c.cells.is_empty(), "{} #{} {}: not converged", p.pattern, c.index, c.description);
        }
        let all = &p.summary[0];
        eprintln!("  churn {mode} {}: {} of {} converged, p50 {:?} ms, max {:?} ms", p.pattern, all.converged, all.changes, all.p50_ms, all.max_ms);
    }
    let stamped = report.patterns.iter().flat_map(|p| &p.changes).filter(|c| c.server_time.is_some()).count();
    assert!(stamped > 0, "no change carried the API server's time");
    kept_agents_probed(&report);
}

/// Churn's rounds go through agents kept running (`probe --stream`), not an exec per source
/// and round: the audit log's execs into the churn's namespaces are all streams, and fewer
/// than its rounds (an exec per row would be sources x rounds).
fn kept_agents_probed(report: &ChurnReport) {
    let audit = std::fs::read_to_string(format!("{STATE}/audit.log")).expect("the audit log");
    let namespaces: Vec<&String> = report.cluster.namespaces.values().collect();
    let execs: Vec<&str> = audit
        .lines()
        .filter(|l| l.contains("\"RequestReceived\"") && l.contains("/exec?") && namespaces.iter().any(|n| l.contains(&format!("/namespaces/{n}/"))))
        .collect();
    let rounds: usize = report.patterns.iter().flat_map(|p| p.setup.iter().chain(&p.changes)).map(|c| c.rounds).sum();
    let one_shot = execs.iter().filter(|l| !l.contains("command=--stream")).count();
    eprintln!("  churn: {} execs ({one_shot} not streams) for {rounds} rounds", execs.len());
    assert_eq!(one_shot, 0, "an exec that was not a kept agent");
    assert!(!execs.is_empty() && execs.len() < rounds, "{} execs for {rounds} rounds: agents not kept", execs.len());
}

/// Every cell a churn report flags, with what its wrong probes got: the output's tail may be
/// cut where the tables are, and these say whether a dataplane lagged or a probe timed out.
fn churn_problems(report: &ChurnReport) -> Vec<String> {
    let mut problems = Vec::new();
    for p in &report.patterns {
        for c in p.setup.iter().chain(&p.changes) {
            let flagged = [("not converged", &c.not_converged), ("regressed", &c.regressed), ("control changed", &c.controls_changed)];
            for (what, cells) in flagged {
                for cell in cells {
                    problems.push(format!(
                        "{} #{} {}: {what} {} -> {} {}/{:?} expected {} (seen wrong: {:?})",
                        p.pattern, c.index, c.description, cell.src, cell.dst, cell.port, cell.protocol, cell.expected, cell.wrong_outcomes
                    ));
                }
            }
            if c.probe_errors > 0 {
                problems.push(format!("{} #{} {}: {} probes failed to run", p.pattern, c.index, c.description, c.probe_errors));
            }
        }
    }
    problems
}

/// kube-router v2.1.0 does not enforce a pod's egress where the same NetworkPolicy's ingress
/// rules admit the connection: x isolated both ways by one policy (egress to TCP 81 only,
/// ingress from anyone on TCP) lets x reach x on TCP 80. The documentation says both the
/// source's egress and the destination's ingress must allow a connection (Network Policies),
/// so kube-router is wrong; the case must fail with exactly those cells (x to x, 80/TCP,
/// expected deny, observed allow), and nothing else.
fn kube_router_egress_defect(case: &netmatrix_results::CaseReport) -> bool {
    let wrong: Vec<&netmatrix_results::Cell> =
        case.steps.iter().flat_map(|s| &s.cells).filter(|c| c.comparison() == netmatrix_results::Comparison::Wrong).collect();
    let exactly = wrong.iter().all(|c| {
        c.src.starts_with("x/")
            && c.dst.starts_with("x/")
            && c.port == 80
            && c.expected == netmatrix_results::Expected::Deny
            && c.observed == netmatrix_results::Observed::Allow
    });
    case.id == "netpol/egress-and-ingress-in-one-policy" && wrong.len() == 6 && exactly
}

/// Every suite passes, except the cases this cluster cannot run, each skipped with its reason,
/// and kube-router's one known defect ([`kube_router_egress_defect`]).
fn all_suites_pass(dir: &Path, mode: &str, extra: &[&str]) {
    let (code, report) = netmatrix_run(&format!("netmatrix run, every suite, kube-proxy {mode}"), dir, extra);
    let mut unexpected = Vec::new();
    for case in &report.cases {
        let reason = case.skip_reason.as_deref().unwrap_or_default();
        let fine = match case.result {
            CaseResult::Pass => true,
            CaseResult::Fail => kube_router_egress_defect(case),
            // No enforcer here implements AdminNetworkPolicy: the CRDs are not even installed.
            CaseResult::Skipped if case.id.starts_with("anp/") => reason.contains("AdminNetworkPolicy"),
            // These clusters are IPv4 only (kube-router's dual stack is broken).
            CaseResult::Skipped if case.id == "services/dual-stack" => reason.contains("dual-stack"),
            // The kernel has no SCTP module; netmatrix does not probe cluster DNS yet.
            CaseResult::Skipped => ["netpol/protocol-sctp", "services/external-name"].contains(&case.id.as_str()) && !reason.is_empty(),
            _ => false,
        };
        if !fine {
            unexpected.push(format!("{}: {:?} {reason} {:?} {:?}", case.id, case.result, case.findings, case.error));
        }
    }
    assert!(unexpected.is_empty(), "kube-proxy {mode}: cases that neither passed nor were skipped for a known reason:\n{}", unexpected.join("\n"));
    assert_eq!((code, report.summary.wrong, report.summary.failed), (1, 6, 1), "kube-proxy {mode}: only kube-router's egress defect");
    assert!(report.summary.passed >= 30 && report.summary.probes > 1000, "kube-proxy {mode}: too little ran: {:?}", report.summary);
    assert_eq!((report.backend.as_str(), report.profile.as_str()), ("kube", "kube-proxy"), "a cluster is held to kube-proxy's documented behaviour by default");
    // Two shards by default on a cluster: each case says which one's namespaces it ran in.
    assert_eq!(report.cluster.shards.len(), 2, "every shard's namespaces: {:?}", report.cluster);
    assert_eq!(report.cluster.shards[0], report.cluster.namespaces);
    assert!(report.cases.iter().all(|c| c.shard.is_some_and(|s| (1..=2).contains(&s))), "each case names its shard");
}

/// On a dual-stack cluster the connectivity and Services suites pass, and every pod-to-pod,
/// pod-to-node and node-to-pod cell was probed in both families.
fn dual_stack_suites_pass(dir: &Path, mode: &str) {
    let (code, report) = netmatrix_run(&format!("netmatrix run, dual stack, kube-proxy {mode}"), dir, &["--suite", "connectivity", "--suite", "services"]);
    let failed: Vec<_> = report
        .cases
        .iter()
        .filter(|c| c.result != CaseResult::Pass && c.id != "services/external-name")
        .map(|c| format!("{}: {:?} {:?}", c.id, c.result, c.findings))
        .collect();
    assert!(failed.is_empty() && code == 0, "dual stack, kube-proxy {mode}: exit {code}, cases:\n{}", failed.join("\n"));
    let mut per_family = std::collections::BTreeMap::new();
    for cell in report.cases.iter().flat_map(|c| &c.steps).flat_map(|s| &s.cells).filter(|c| c.target == TargetKind::Pod) {
        *per_family.entry(cell.family.map(|f| f.as_str())).or_insert(0) += 1;
    }
    eprintln!("  dual stack, kube-proxy {mode}: pod cells per family {per_family:?}");
    assert_eq!(per_family.len(), 2, "pod cells of both families: {per_family:?}");
    assert_eq!(per_family.get(&Some("IPv4")), per_family.get(&Some("IPv6")), "as many IPv6 pod cells as IPv4 ones");
}

/// `netmatrix coverage` on the cluster's audit log, with the spec `run --coverage-openapi` saved:
/// the calls netmatrix is known to make are there, attributed to the cases that made them.
fn coverage_of_the_run(openapi: &Path) {
    let mut coverage = Command::new(env!("CARGO_BIN_EXE_netmatrix"));
    coverage.args(["coverage", "-o", "json", "--openapi"]).arg(openapi).args(["--audit-log", &format!("{STATE}/audit.log")]);
    let ran = succeed("netmatrix coverage on the audit log", &mut coverage, Duration::from_secs(120));
    let report: serde_json::Value = serde_json::from_str(&ran.stdout).unwrap();
    let ops_of = |case: &str| -> Vec<String> {
        let case = report["cases"].as_array().unwrap().iter().find(|c| c["case"] == case).unwrap_or_else(|| panic!("no case {case} in the coverage report"));
        case["operations"].as_array().unwrap().iter().map(|o| o["id"].as_str().unwrap().to_owned()).collect()
    };
    let netpol = ops_of("netpol/deny-all-ingress");
    // Objects are applied server-side: PATCH.
    assert!(netpol.iter().any(|o| o == "patchNetworkingV1NamespacedNetworkPolicy"), "{netpol:?}");
    assert!(netpol.iter().any(|o| o.contains("NamespacedPodExec")), "the probes are execs: {netpol:?}");
    let services = ops_of("services/node-port");
    assert!(services.iter().any(|o| o == "patchCoreV1NamespacedService"), "{services:?}");
    let share = report["networking"]["share"].as_f64().unwrap();
    assert!(share > 0.1, "networking operations exercised: {share}");
    eprintln!(
        "  coverage: {} events, {} of {} operations, networking share {share:.2}",
        report["events"], report["operations"]["hit"], report["operations"]["total"]
    );
}

/// What netmatrix made in the cluster: namespaces with its managed-by label.
fn netmatrix_namespaces(bin: &Path) -> Vec<String> {
    let mut list = kubectl(bin);
    list.args(["get", "namespaces", "-l", "app.kubernetes.io/managed-by=netmatrix", "-o", "name"]);
    succeed("kubectl get namespaces", &mut list, Duration::from_secs(60)).stdout.lines().map(String::from).collect()
}

/// Bad input creates nothing in the cluster; SIGTERM in the middle of a run removes what it made.
fn bad_input_and_sigterm_leave_the_cluster_as_it_was(bin: &Path, dir: &Path) {
    let cases = dir.join("misspelled.yaml");
    std::fs::write(&cases, "cases:\n- id: mine\n  stepz: []\n").unwrap();
    let mut bad = Command::new(env!("CARGO_BIN_EXE_netmatrix"));
    bad.args(["run", "--kubeconfig", KUBECONFIG, "--cases"]).arg(&cases);
    let ran = run("netmatrix run with a misspelled case file", &mut bad, Duration::from_secs(60));
    assert_eq!(ran.status.code(), Some(2), "{}", ran.tail());
    assert!(ran.stderr.contains("misspelled.yaml") && ran.stderr.contains("stepz"), "{}", ran.stderr);
    assert_eq!(netmatrix_namespaces(bin), Vec::<String>::new(), "bad input created something");

    let mut command = Command::new(env!("CARGO_BIN_EXE_netmatrix"));
    let mut child = command.args(["run", "--kubeconfig", KUBECONFIG, "--suite", "netpol"]).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    while netmatrix_namespaces(bin).is_empty() {
        assert!(child.try_wait().unwrap().is_none(), "the run ended before creating its namespaces");
        assert!(started.elapsed() < Duration::from_secs(120), "no namespace of the run within 120 s");
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(5)); // into the probing
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let signalled = Instant::now();
    let status = exit_within(&mut child, Duration::from_secs(180)).expect("netmatrix run still running 180 s after SIGTERM");
    eprintln!("  SIGTERM: exit {:?} after {:.1} s", status.code(), signalled.elapsed().as_secs_f64());
    assert_eq!(status.code(), Some(143));
    assert_eq!(netmatrix_namespaces(bin), Vec::<String>::new(), "left behind after SIGTERM");
}

/// With `fault` injected, the cases `focus` selects fail and the diagnosis says `kind` with `names`.
fn fault_is_diagnosed(dir: &Path, fault: &[&str], focus: &str, kind: &str, names: &str) {
    let mut inject = hack("fault");
    succeed(&format!("fault inject {}", fault.join(" ")), inject.arg("inject").args(fault), Duration::from_secs(60));
    let (code, report) = netmatrix_run(&format!("netmatrix run with {}", fault.join(" ")), dir, &["--focus", focus]);
    let mut clear = hack("fault");
    succeed(&format!("fault clear {}", fault.join(" ")), clear.arg("clear").args(fault), Duration::from_secs(60));
    assert_eq!(code, 1, "{fault:?}: the run must fail");
    let findings: Vec<_> = report.cases.iter().flat_map(|c| &c.findings).collect();
    assert!(findings.iter().any(|f| f.kind == kind && f.summary.contains(names)), "{fault:?}: expected a {kind} finding naming {names}; got {findings:#?}");
    assert!(findings.iter().all(|f| f.kind == kind), "{fault:?}: only {kind} findings expected; got {findings:#?}");
}

/// Per node: veths in its network namespace, network namespace mounts in its mount namespace,
/// pod processes (shims and pause) in its pids cgroup. Only those: kube-proxy and kube-router
/// run short-lived children (iptables-save, ipset) that come and go at any moment.
fn node_footprint(node: usize) -> (usize, usize, usize) {
    let veths = Command::new("ip").args(["-n", &format!("nmk-node{node}"), "-o", "link", "show", "type", "veth"]).output().unwrap();
    let holder = std::fs::read_to_string(format!("{STATE}/pids/node{node}-mounts.pid")).unwrap();
    let mountinfo = std::fs::read_to_string(format!("/proc/{}/mountinfo", holder.trim())).unwrap();
    fn processes(cgroup: &Path) -> usize {
        let procs = std::fs::read_to_string(cgroup.join("cgroup.procs")).unwrap_or_default();
        let own = procs
            .lines()
            .filter(|pid| {
                let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                comm.starts_with("containerd-shim") || comm.trim() == "pause"
            })
            .count();
        own + std::fs::read_dir(cgroup).into_iter().flatten().flatten().filter(|e| e.path().is_dir()).map(|e| processes(&e.path())).sum::<usize>()
    }
    (
        String::from_utf8_lossy(&veths.stdout).lines().count(),
        mountinfo.lines().filter(|l| l.contains(" nsfs ")).count(),
        processes(Path::new(&format!("/sys/fs/cgroup/pids/nmk-node{node}"))),
    )
}

/// The MAC address of each node's pod bridge (the pods' gateway).
fn bridge_macs(nodes: usize) -> Vec<String> {
    let mac = |node| {
        let out = Command::new("ip").args(["netns", "exec", &format!("nmk-node{node}"), "cat", "/sys/class/net/cbr0/address"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    (1..=nodes).map(mac).collect()
}

/// 50 pods made and deleted again leave no network namespace, veth or process behind, and the
/// pods' gateway keeps its MAC throughout (a changed one loses the other pods' next packets).
fn pod_churn_leaves_nothing(bin: &Path, nodes: usize) {
    let before: Vec<_> = (1..=nodes).map(node_footprint).collect();
    let macs = bridge_macs(nodes);
    let pods: String = (0..50)
        .map(|i| {
            format!(
                "apiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: nmk-churn}}\nspec:\n  nodeName: node{}\n  \
                 containers: [{{name: c, image: 'registry.k8s.io/pause:3.10.1', imagePullPolicy: Never}}]\n---\n",
                i % nodes + 1
            )
        })
        .collect();
    let manifest = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(manifest.path(), format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: nmk-churn}}\n---\n{pods}")).unwrap();
    succeed("kubectl apply: 50 pods", kubectl(bin).arg("apply").arg("-f").arg(manifest.path()), Duration::from_secs(120));
    let mut wait = kubectl(bin);
    wait.args(["-n", "nmk-churn", "wait", "--for=condition=Ready", "pod", "--all", "--timeout=240s"]);
    succeed("kubectl wait: 50 pods Ready", &mut wait, Duration::from_secs(260));
    let during: Vec<_> = (1..=nodes).map(node_footprint).collect();
    for (node, (b, d)) in before.iter().zip(&during).enumerate() {
        assert!(d.0 > b.0 && d.1 > b.1 && d.2 > b.2, "node{}: the pods should show: before {b:?}, with them {d:?}", node + 1);
    }
    assert_eq!(bridge_macs(nodes), macs, "the pod bridges' MACs changed when the pods came");
    succeed("kubectl delete: 50 pods", kubectl(bin).args(["delete", "namespace", "nmk-churn", "--timeout=240s"]), Duration::from_secs(260));
    let started = Instant::now();
    loop {
        let after: Vec<_> = (1..=nodes).map(node_footprint).collect();
        if after == before {
            break;
        }
        // The kubelet removes sandboxes after the API objects are gone.
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "(veths, netns mounts, processes) per node: before {before:?}, 120 s after deleting the pods {after:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    assert_eq!(bridge_macs(nodes), macs, "the pod bridges' MACs changed when the pods went");
    eprintln!("  pod churn: per node (veths, netns mounts, processes) {before:?} -> {during:?} -> back");
}

#[test]
fn every_suite_and_fault_on_a_real_cluster() {
    let Some(bin) = prerequisites() else { return };
    let dir = tempfile::tempdir().unwrap();
    let clean = host_state(&bin);
    let image = agent_image(dir.path());

    // `up` killed halfway (its kubelets started), then `down`: nothing left.
    {
        // Made first: whatever fails below, `down` still runs.
        let cluster = Cluster;
        let log = dir.path().join("killed-up.log");
        let mut up = hack("up");
        up.args(["--nodes", "2", "--no-coredns"]).stdout(Stdio::null()).stderr(std::fs::File::create(&log).unwrap());
        let mut child = up.spawn().unwrap();
        let started = Instant::now();
        let log_tail = || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            text.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
        };
        while !Path::new(STATE).join("pids/node1-kubelet.pid").exists() {
            if child.try_wait().unwrap().is_some() || started.elapsed() > Duration::from_secs(120) {
                let _ = child.kill();
                let _ = child.wait();
                panic!("hack/kube/up did not start node1's kubelet (ended, or 120 s passed); it printed:\n{}", log_tail());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        eprintln!("  hack/kube/up killed after {:.1} s", started.elapsed().as_secs_f64());
        drop(cluster);
        assert_eq!(host_state(&bin), clean, "left behind by a killed up and down");
    }

    {
        // IPv4 only: kube-router v2.1.0 enforces no NetworkPolicy in dual stack (hack/kube/up).
        let _cluster = Cluster::up(&["--nodes", "3", "--proxy-mode", "iptables", "--policy", "kube-router", "--ip-family", "ipv4"], &image);
        // kubectl exec, logs and Service DNS through the API server to the kubelets.
        succeed("hack/kube/smoke (kubectl exec)", &mut hack("smoke"), Duration::from_secs(180));
        let openapi = dir.path().join("openapi.json");
        all_suites_pass(dir.path(), "iptables", &["--coverage-openapi", openapi.to_str().unwrap()]);
        coverage_of_the_run(&openapi);
        fault_is_diagnosed(dir.path(), &["overlay", "--node", "1", "--peer", "2"], "^connectivity/pod-to-pod$", "cross-node", "node1<->node2");
        fault_is_diagnosed(dir.path(), &["policy", "--node", "3"], "^netpol/deny-all-ingress$", "policy-ignored", "node3");
        fault_is_diagnosed(dir.path(), &["service-proxy", "--node", "2"], "^services/(cluster-ip|node-port)$", "service-proxy", "node2");
        pod_churn_leaves_nothing(&bin, 3);
    }
    assert_eq!(host_state(&bin), clean, "left behind by up and down, kube-proxy iptables");

    {
        let _cluster = Cluster::up(&["--nodes", "3", "--proxy-mode", "nftables", "--policy", "kube-router", "--ip-family", "ipv4"], &image);
        all_suites_pass(dir.path(), "nftables", &[]);
        churn_converges(dir.path(), "nftables");
        bad_input_and_sigterm_leave_the_cluster_as_it_was(&bin, dir.path());
        fault_is_diagnosed(dir.path(), &["service-proxy", "--node", "1"], "^services/(cluster-ip|node-port)$", "service-proxy", "node1");
    }
    assert_eq!(host_state(&bin), clean, "left behind by up and down, kube-proxy nftables");

    // Dual stack, in both proxy modes; no policy enforcer (kube-router's dual stack is broken).
    for mode in ["iptables", "nftables"] {
        let _cluster = Cluster::up(&["--nodes", "3", "--proxy-mode", mode, "--policy", "none", "--ip-family", "dual"], &image);
        dual_stack_suites_pass(dir.path(), mode);
        if mode == "iptables" {
            fault_is_diagnosed(dir.path(), &["overlay", "--node", "1", "--peer", "3"], "^connectivity/pod-to-pod$", "cross-node", "node1<->node3");
        }
    }
    assert_eq!(host_state(&bin), clean, "left behind by up and down, dual stack");
}
