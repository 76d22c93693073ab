//! netmatrix as a Sonobuoy plugin: `netmatrix sonobuoy plugin` prints the plugin definition, and
//! [`Sonobuoy`] is what `netmatrix run --sonobuoy` does inside the plugin's pod (reports in the
//! results directory, progress updates, the `done` file).
//!
//! The contract, from Sonobuoy's own sources (vmware-tanzu/sonobuoy):
//! - `site/content/docs/main/plugins.md`: the plugin container writes its results, then a file
//!   `done` holding the path of the results; the `sonobuoy-worker` sidecar waits for `done` and
//!   sends that path to the aggregator. A `podSpec` in the definition replaces Sonobuoy's default
//!   pod spec (Sonobuoy only adds to it).
//! - `pkg/worker/worker.go` (`handleWaitFile`): a directory named in `done` is sent as a tarball
//!   of the whole directory.
//! - `pkg/plugin/constants.go` (`ResultsDir`, since v0.55) and `pkg/discovery/discovery.go`: the
//!   results directory is `/tmp/sonobuoy/results`, given to the plugin as `SONOBUOY_RESULTS_DIR`
//!   and, for older plugins, `RESULTS_DIR` (older Sonobuoy used `/tmp/results` and set only that).
//! - `pkg/worker/config.go`, `pkg/plugin/interface.go` (`ProgressUpdate`): the worker takes
//!   progress updates on `http://localhost:$SONOBUOY_PROGRESS_PORT/progress` (default 8099) as
//!   JSON `{"msg", "total", "completed", "failures"}`.
//! - `pkg/client/results/processing.go`: `result-format: junit` reads the XML files named in
//!   `result-files`; a plugin with none of them is `unknown`, not `passed`.

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use clap::error::ErrorKind;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::args::{Cli, Command};
use crate::{CliError, Outcome};

/// Where Sonobuoy (v0.55 and later) mounts the results volume unless told otherwise.
const DEFAULT_RESULTS_DIR: &str = "/tmp/sonobuoy/results";
const DEFAULT_PROGRESS_PORT: u16 = 8099;
const DEFAULT_IMAGE: &str = concat!("netmatrix-sonobuoy:", env!("CARGO_PKG_VERSION"));
/// Sonobuoy's JUnit processing reads these (and only these) files of the results directory.
const JUNIT: &str = "junit.xml";
const ERROR: &str = "error.xml";
/// Connect, write and read limit of one progress update: progress must never hold up a run.
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, clap::Args)]
pub struct PluginArgs {
    /// The plugin's image: the netmatrix binary as /netmatrix.
    #[arg(long, default_value = DEFAULT_IMAGE)]
    pub image: String,
    /// Run the plugin under this ServiceAccount of Sonobuoy's namespace, which must exist and may
    /// create namespaces, pods, services and policies. Without it the plugin runs as Sonobuoy's
    /// own `sonobuoy-serviceaccount` (cluster-admin unless `sonobuoy run --aggregator-permissions`
    /// says otherwise).
    #[arg(long, value_name = "NAME", value_parser = parse_service_account)]
    pub service_account: Option<String>,
    /// `netmatrix run` flags for the plugin, after the options above (e.g. `--suite netpol`). The
    /// plugin chooses the cluster and the reports: no --lab, --kubeconfig, --json, --junit, --html.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "RUN FLAGS")]
    pub run_args: Vec<String>,
}

/// A ServiceAccount name is a DNS subdomain (lower-case letters, digits, `-` and `.`).
fn parse_service_account(name: &str) -> Result<String, String> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric());
    if valid { Ok(name.to_owned()) } else { Err(format!("{name:?} is not a ServiceAccount name (lower-case letters, digits, '-' and '.')")) }
}

/// `netmatrix sonobuoy plugin`: the plugin definition on stdout.
pub fn print_plugin(args: PluginArgs) -> Result<Outcome, CliError> {
    // Bad run flags get clap's message and exit code (2), as bad flags of any command do.
    let yaml = plugin_definition(&args).unwrap_or_else(|e| e.exit());
    io::stdout().write_all(yaml.as_bytes()).map_err(|source| CliError::Io { what: "writing the plugin definition".into(), source })?;
    Ok(Outcome::Ok)
}

/// The arguments the plugin's container runs `/netmatrix` with.
fn container_args(run_args: &[String]) -> Vec<String> {
    ["run", "--sonobuoy"].into_iter().map(String::from).chain(run_args.iter().cloned()).collect()
}

/// Checks the run flags as the pod will parse them, so that a bad flag fails here and not in the
/// cluster after Sonobuoy has started.
fn check_run_args(run_args: &[String]) -> Result<(), clap::Error> {
    let cli = Cli::try_parse_from(std::iter::once("netmatrix".to_owned()).chain(container_args(run_args)))?;
    let Command::Run(run) = cli.command else { unreachable!("the arguments start with run") };
    let refused = [
        (run.backend.lab.is_some(), "--lab: the plugin runs against the cluster Sonobuoy runs in"),
        (run.backend.kubeconfig.is_some(), "--kubeconfig: the plugin runs against the cluster Sonobuoy runs in, with its pod's ServiceAccount"),
        (
            run.json.is_some() || run.junit.is_some() || run.html.is_some(),
            "--json, --junit, --html: the plugin writes every report into Sonobuoy's results directory",
        ),
    ];
    match refused.into_iter().find(|(refused, _)| *refused) {
        Some((_, why)) => Err(clap::Error::raw(ErrorKind::ArgumentConflict, format!("{why}\n"))),
        None => Ok(()),
    }
}

/// The plugin definition, in the format `sonobuoy gen plugin` writes and `sonobuoy run --plugin`
/// reads (`pkg/plugin/manifest/manifest.go`).
fn plugin_definition(args: &PluginArgs) -> Result<String, clap::Error> {
    check_run_args(&args.run_args)?;
    // Every value that comes from the user is a double-quoted scalar: JSON's string escapes are
    // YAML's too, so regular expressions and spaces survive as they are.
    let quote = |s: &str| serde_json::to_string(s).expect("strings serialize");
    let mut y = String::new();
    y += &format!("# netmatrix {} as a Sonobuoy plugin: sonobuoy run --plugin FILE\n", env!("CARGO_PKG_VERSION"));
    y += "sonobuoy-config:\n  driver: Job\n  plugin-name: netmatrix\n  result-format: junit\n";
    y += &format!("  result-files:\n  - {JUNIT}\n  - {ERROR}\n");
    y += "  description: Tells, in tables, whether the cluster's network does what its objects say.\n";
    if let Some(account) = &args.service_account {
        // A podSpec replaces Sonobuoy's default one, so this is that default (`sonobuoy gen
        // plugin --show-default-podspec`, Job driver) with only the ServiceAccount changed.
        y += "podSpec:\n  containers: []\n  nodeSelector:\n    kubernetes.io/os: linux\n  restartPolicy: Never\n";
        y += &format!("  serviceAccountName: {}\n", quote(account));
        y += "  tolerations:\n";
        y += "  - effect: NoSchedule\n    key: node-role.kubernetes.io/master\n    operator: Exists\n";
        y += "  - key: CriticalAddonsOnly\n    operator: Exists\n";
        y += "  - key: kubernetes.io/e2e-evict-taint-key\n    operator: Exists\n";
    }
    y += &format!("spec:\n  name: plugin\n  image: {}\n  command:\n  - /netmatrix\n  args:\n", quote(&args.image));
    for arg in container_args(&args.run_args) {
        y += &format!("  - {}\n", quote(&arg));
    }
    // Sonobuoy v0.56.6 and later mount the results volume themselves; older ones need this mount.
    y += &format!("  volumeMounts:\n  - mountPath: {DEFAULT_RESULTS_DIR}\n    name: results\n");
    Ok(y)
}

/// What `netmatrix run --sonobuoy` needs inside the plugin's pod.
#[derive(Debug)]
pub struct Sonobuoy {
    results_dir: PathBuf,
    /// `host:port` of the worker's progress endpoint; none when the port Sonobuoy gave is unusable.
    progress: Option<String>,
    /// Progress failures are reported once: the run goes on without them.
    warned: AtomicBool,
}

impl Sonobuoy {
    /// From the environment Sonobuoy gives the plugin. The results directory is Sonobuoy's
    /// volume: a run outside Sonobuoy should check it exists before starting, as for --json.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| var(name).filter(|v| !v.is_empty());
        let results_dir = set("SONOBUOY_RESULTS_DIR").or_else(|| set("RESULTS_DIR")).unwrap_or_else(|| DEFAULT_RESULTS_DIR.into());
        let progress = match set("SONOBUOY_PROGRESS_PORT").map(|p| p.parse::<u16>().map_err(|_| p)).unwrap_or(Ok(DEFAULT_PROGRESS_PORT)) {
            Ok(port) => Some(format!("localhost:{port}")),
            Err(port) => {
                eprintln!("warning: SONOBUOY_PROGRESS_PORT={port:?} is not a port: no progress updates for Sonobuoy");
                None
            }
        };
        Sonobuoy { results_dir: results_dir.into(), progress, warned: AtomicBool::new(false) }
    }

    /// Where the run writes its reports: (JUnit, JSON, HTML). Sonobuoy counts the JUnit file.
    pub fn report_paths(&self) -> (PathBuf, PathBuf, PathBuf) {
        (self.results_dir.join(JUNIT), self.results_dir.join("report.json"), self.results_dir.join("report.html"))
    }

    /// Tells Sonobuoy how far the run is (`sonobuoy status --json` shows it). Never fails the run
    /// and waits at most a second each to connect, send and hear back; the first failure is
    /// reported.
    pub fn progress(&self, msg: &str, total: usize, completed: usize, failures: &[String]) {
        let Some(address) = &self.progress else { return };
        let body = serde_json::json!({ "msg": msg, "total": total, "completed": completed, "failures": failures }).to_string();
        let Err(e) = post(address, "/progress", &body) else { return };
        if !self.warned.swap(true, Ordering::Relaxed) {
            eprintln!("warning: progress update to Sonobuoy on {address}: {e} (the run goes on without them)");
        }
    }

    /// Hands the results to Sonobuoy: call it once at the very end, also after a failed or
    /// interrupted run, or Sonobuoy waits for the plugin until its timeout. With `error` it
    /// first records the run as one errored test (`error.xml`), so that Sonobuoy reports the
    /// plugin failed even when the run wrote no report. Then it writes `done` naming the results
    /// directory, last, and by a rename, so that the worker never sends a half-written result.
    pub fn finish(&self, error: Option<&str>) -> Result<(), CliError> {
        let io = |what: &Path| {
            let what = format!("writing {}", what.display());
            move |source| CliError::Io { what, source }
        };
        if let Some(error) = error {
            let path = self.results_dir.join(ERROR);
            std::fs::write(&path, error_junit(error)).map_err(io(&path))?;
        }
        let done = self.results_dir.join("done");
        let partial = self.results_dir.join(".done.partial");
        std::fs::write(&partial, self.results_dir.as_os_str().as_encoded_bytes()).map_err(io(&partial))?;
        std::fs::rename(&partial, &done).map_err(io(&done))
    }
}

/// A JUnit report with one errored test case `netmatrix run` carrying the error.
fn error_junit(error: &str) -> Vec<u8> {
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
    status.set_type("error").set_message(error);
    let mut suite = TestSuite::new("netmatrix");
    suite.add_test_case(TestCase::new("netmatrix run", status));
    let mut report = Report::new("netmatrix");
    report.add_test_suite(suite);
    report.to_string().expect("a JUnit report of strings serializes").into_bytes()
}

/// POSTs a JSON `body` to `http://{address}{path}` with HTTP/1.1 and checks for a 2xx answer:
/// enough for the worker's local endpoint, without an HTTP client crate.
fn post(address: &str, path: &str, body: &str) -> Result<(), String> {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut last = String::from("no address");
    for addr in address.to_socket_addrs().map_err(|e| e.to_string())? {
        match exchange(addr, request.as_bytes()) {
            Ok(status) if status.starts_with('2') => return Ok(()),
            Ok(status) => return Err(format!("answered {status}")),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// Sends `request` and returns the status code of the answer, within [`PROGRESS_TIMEOUT`] for
/// each of connecting, writing and reading the status line.
fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, PROGRESS_TIMEOUT)?;
    stream.set_write_timeout(Some(PROGRESS_TIMEOUT))?;
    stream.write_all(request)?;
    let deadline = Instant::now() + PROGRESS_TIMEOUT;
    let mut answer = Vec::new();
    let mut chunk = [0; 256];
    while !answer.contains(&b'\n') && answer.len() < 1024 {
        // The status line may come in pieces: the whole of it within the limit.
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "no answer in time"));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk)? {
            0 => break,
            n => answer.extend_from_slice(&chunk[..n]),
        }
    }
    // `HTTP/1.1 200 OK`: the second word.
    let line = String::from_utf8_lossy(&answer);
    line.split_whitespace()
        .nth(1)
        .filter(|_| line.starts_with("HTTP/"))
        .map(str::to_owned)
        .ok_or_else(|| io::Error::other(format!("not an HTTP answer: {line:?}")))
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::thread;

    use serde_json::{Value, json};

    use super::*;

    fn plugin(args: &[&str]) -> Result<PluginArgs, clap::Error> {
        let cli = Cli::try_parse_from(["netmatrix", "sonobuoy", "plugin"].iter().chain(args))?;
        let Command::Sonobuoy(crate::args::SonobuoyCommand::Plugin(plugin)) = cli.command else { panic!("sonobuoy plugin") };
        Ok(plugin)
    }

    #[test]
    fn plugin_flags_come_first_and_the_rest_are_run_flags() {
        let a = plugin(&[]).unwrap();
        assert_eq!((a.image.as_str(), a.service_account, a.run_args.len()), (concat!("netmatrix-sonobuoy:", env!("CARGO_PKG_VERSION")), None, 0));
        let a = plugin(&["--image", "r/nm:1", "--service-account", "netmatrix", "--suite", "netpol", "--timeout", "2s"]).unwrap();
        assert_eq!((a.image.as_str(), a.service_account.as_deref()), ("r/nm:1", Some("netmatrix")));
        assert_eq!(a.run_args, ["--suite", "netpol", "--timeout", "2s"]);
        assert_eq!(plugin(&["--", "--suite", "netpol"]).unwrap().run_args, ["--suite", "netpol"]);
        assert!(plugin(&["--service-account", "Bad_Name"]).is_err());
        assert!(plugin(&["--service-account", "-x"]).is_err());
    }

    #[test]
    fn run_flags_are_checked_as_the_pod_parses_them() {
        let check = |args: &[&str]| check_run_args(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert!(check(&[]).is_ok());
        assert!(check(&["--suite", "netpol", "--focus", "^netpol/", "--retries", "3", "--keep"]).is_ok());
        assert_eq!(check(&["--nope"]).unwrap_err().kind(), ErrorKind::UnknownArgument);
        assert_eq!(check(&["--timeout", "5"]).unwrap_err().kind(), ErrorKind::ValueValidation);
        assert!(check(&["--sonobuoy"]).is_err(), "the plugin passes --sonobuoy itself");
        for (args, message) in [
            (&["--lab", "l1"][..], "--lab"),
            (&["--kubeconfig", "k"][..], "--kubeconfig"),
            (&["--json", "r.json"][..], "--json"),
            (&["--junit=r.xml"][..], "--junit"),
            (&["--html", "r.html"][..], "--html"),
        ] {
            let e = check(args).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::ArgumentConflict, "{args:?}");
            assert!(e.to_string().contains(message), "{args:?}: {e}");
        }
    }

    #[test]
    fn plugin_definition_golden() {
        let yaml = plugin_definition(&plugin(&["--suite", "netpol", "--focus", r#"^netpol/(deny|allow) "all"$"#]).unwrap()).unwrap();
        insta::assert_snapshot!("plugin_definition", yaml.replace(env!("CARGO_PKG_VERSION"), "[version]"));
        let yaml = plugin_definition(&plugin(&["--image", "registry.example/nm:dev", "--service-account", "netmatrix"]).unwrap()).unwrap();
        insta::assert_snapshot!("plugin_definition_service_account", yaml.replace(env!("CARGO_PKG_VERSION"), "[version]"));
    }

    #[test]
    fn plugin_definition_reads_back_as_sonobuoy_reads_it() {
        let focus = r#"^netpol/(deny|allow) "all"$ \ #x: y"#;
        let args = plugin(&["--service-account", "netmatrix", "--suite", "netpol", "--focus", focus]).unwrap();
        let parsed: Value = serde_saphyr::from_str(&plugin_definition(&args).unwrap()).unwrap();
        assert_eq!(
            parsed["sonobuoy-config"],
            json!({ "driver": "Job", "plugin-name": "netmatrix", "result-format": "junit", "result-files": ["junit.xml", "error.xml"],
                    "description": "Tells, in tables, whether the cluster's network does what its objects say." })
        );
        assert_eq!(parsed["spec"]["args"], json!(["run", "--sonobuoy", "--suite", "netpol", "--focus", focus]));
        assert_eq!(parsed["spec"]["command"], json!(["/netmatrix"]));
        assert_eq!(parsed["spec"]["volumeMounts"], json!([{ "mountPath": "/tmp/sonobuoy/results", "name": "results" }]));
        assert_eq!((&parsed["podSpec"]["serviceAccountName"], &parsed["podSpec"]["restartPolicy"]), (&json!("netmatrix"), &json!("Never")));
        let parsed: Value = serde_saphyr::from_str(&plugin_definition(&plugin(&[]).unwrap()).unwrap()).unwrap();
        assert!(parsed.get("podSpec").is_none(), "Sonobuoy's default pod spec, with its own ServiceAccount");
    }

    #[test]
    fn environment() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
        let s = Sonobuoy::from_vars(vars(&[]));
        assert_eq!((s.results_dir.to_str(), s.progress.as_deref()), (Some("/tmp/sonobuoy/results"), Some("localhost:8099")));
        let s = Sonobuoy::from_vars(vars(&[("SONOBUOY_RESULTS_DIR", "/r"), ("RESULTS_DIR", "/legacy"), ("SONOBUOY_PROGRESS_PORT", "9000")]));
        assert_eq!((s.results_dir.to_str(), s.progress.as_deref()), (Some("/r"), Some("localhost:9000")));
        let s = Sonobuoy::from_vars(vars(&[("RESULTS_DIR", "/legacy"), ("SONOBUOY_PROGRESS_PORT", "")]));
        assert_eq!((s.results_dir.to_str(), s.progress.as_deref()), (Some("/legacy"), Some("localhost:8099")), "Sonobuoy before v0.55 set only RESULTS_DIR");
        assert_eq!(Sonobuoy::from_vars(vars(&[("SONOBUOY_PROGRESS_PORT", "http")])).progress, None);
        let s = Sonobuoy::from_env();
        assert_eq!(s.results_dir, Sonobuoy::from_vars(|name| std::env::var(name).ok()).results_dir);
    }

    #[test]
    fn reports_go_into_the_results_directory() {
        let s = in_dir(Path::new("/tmp/sonobuoy/results"), None);
        let (junit, json, html) = s.report_paths();
        assert_eq!(
            (junit.to_str(), json.to_str(), html.to_str()),
            (Some("/tmp/sonobuoy/results/junit.xml"), Some("/tmp/sonobuoy/results/report.json"), Some("/tmp/sonobuoy/results/report.html"))
        );
    }

    fn in_dir(dir: &Path, progress: Option<String>) -> Sonobuoy {
        Sonobuoy { results_dir: dir.to_owned(), progress, warned: AtomicBool::new(false) }
    }

    /// A stand-in for the worker's progress endpoint: answers `status` to up to `count` requests
    /// and returns each request's head and body; gives up after 5 s, so that no test hangs.
    fn endpoint(count: usize, status: &'static str) -> (String, thread::JoinHandle<Vec<(String, String)>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        listener.set_nonblocking(true).unwrap();
        let server = thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut requests = Vec::new();
            while requests.len() < count && Instant::now() < deadline {
                let mut stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    Err(e) => panic!("accepting: {e}"),
                };
                stream.set_nonblocking(false).unwrap();
                stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                requests.push(read_request(&mut stream));
                stream.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes()).unwrap();
            }
            requests
        });
        (address, server)
    }

    fn read_request(stream: &mut TcpStream) -> (String, String) {
        let mut data = Vec::new();
        let mut chunk = [0; 1024];
        loop {
            if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(data[..end].to_vec()).unwrap();
                let length: usize = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).expect("a Content-Length").parse().unwrap();
                if data.len() >= end + 4 + length {
                    return (head, String::from_utf8(data[end + 4..end + 4 + length].to_vec()).unwrap());
                }
            }
            let n = stream.read(&mut chunk).expect("the whole request within 2 s");
            assert!(n > 0, "connection closed before the whole request");
            data.extend_from_slice(&chunk[..n]);
        }
    }

    #[test]
    fn progress_updates_arrive_as_sonobuoy_reads_them() {
        let (address, server) = endpoint(2, "200 OK");
        let s = in_dir(Path::new("/nonexistent"), Some(address.clone()));
        s.progress("netpol/deny-all", 40, 3, &[]);
        s.progress("services/affinity", 40, 4, &["netpol/deny-all".to_owned()]);
        let requests = server.join().unwrap();
        assert_eq!(requests.len(), 2);
        for (head, _) in &requests {
            assert!(head.starts_with("POST /progress HTTP/1.1\r\n"), "{head}");
            assert!(head.contains(&format!("\r\nHost: {address}\r\n")) && head.contains("\r\nContent-Type: application/json\r\n"), "{head}");
        }
        let bodies: Vec<Value> = requests.iter().map(|(_, body)| serde_json::from_str(body).unwrap()).collect();
        assert_eq!(bodies[0], json!({ "msg": "netpol/deny-all", "total": 40, "completed": 3, "failures": [] }));
        assert_eq!(bodies[1], json!({ "msg": "services/affinity", "total": 40, "completed": 4, "failures": ["netpol/deny-all"] }));
        assert!(!s.warned.load(Ordering::Relaxed));
    }

    #[test]
    fn progress_never_holds_up_the_run() {
        let (address, server) = endpoint(1, "500 Internal Server Error");
        assert_eq!(post(&address, "/progress", "{}"), Err("answered 500".into()));
        server.join().unwrap();

        // Nobody listening.
        let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
        assert!(post(&closed, "/progress", "{}").is_err());
        let s = in_dir(Path::new("/nonexistent"), Some(closed));
        s.progress("a", 1, 0, &[]);
        s.progress("b", 1, 1, &[]);
        assert!(s.warned.load(Ordering::Relaxed), "reported once");

        // A listener that takes the request and never answers.
        let silent = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = silent.local_addr().unwrap().to_string();
        let started = Instant::now();
        let e = post(&address, "/progress", "{}").unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}: {e}", started.elapsed());
    }

    #[test]
    fn done_names_the_results_directory_and_comes_last() {
        let dir = tempfile::tempdir().unwrap();
        let s = in_dir(dir.path(), None);
        let (junit, json, html) = s.report_paths();
        for report in [&junit, &json, &html] {
            std::fs::write(report, "report").unwrap();
        }
        s.finish(None).unwrap();
        let done = dir.path().join("done");
        assert_eq!(std::fs::read_to_string(&done).unwrap(), dir.path().to_str().unwrap());
        let modified = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
        assert!([&junit, &json, &html].iter().all(|r| modified(r) <= modified(&done)));
        let mut files: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        files.sort();
        assert_eq!(files, ["done", "junit.xml", "report.html", "report.json"], "no error.xml, nothing half-written");
    }

    #[test]
    fn a_failed_run_still_finishes_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let s = in_dir(dir.path(), None);
        s.finish(Some("pods never ready: nm-x/a <pending> & \"unschedulable\"")).unwrap();
        let error = std::fs::read_to_string(dir.path().join("error.xml")).unwrap();
        insta::assert_snapshot!("error_junit", error);
        let modified = |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().modified().unwrap();
        assert!(modified("error.xml") <= modified("done"));
        assert_eq!(std::fs::read_to_string(dir.path().join("done")).unwrap(), dir.path().to_str().unwrap());

        let missing = in_dir(&dir.path().join("missing"), None);
        assert!(missing.finish(None).unwrap_err().to_string().contains("missing/.done.partial"));
    }
}
