//! `netmatrix run`: flags → validated config → the engine on a backend → tables, reports and
//! one exit code.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use netmatrix_cluster::Backend;
use netmatrix_engine::{Case, Event, ProbeConfig, cases_file, suites};
use netmatrix_lab::names;
use netmatrix_report::tables::Tables;
use netmatrix_results::{CaseResult, RunReport, Verdict};
use regex::Regex;

use crate::args::ProfileArg;
use crate::backend::{BackendArgs, Chosen, LAB_NODES, MAX_SHARDS, Teardown, kubes, labs, shard_lab};
use crate::sonobuoy::Sonobuoy;
use crate::{CliError, Outcome, signals};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Suites to run (repeatable). Default: all.
    #[arg(long = "suite", value_name = "S", value_parser = clap::builder::PossibleValuesParser::new(suites::SUITES))]
    pub suites: Vec<String>,
    /// Cases of your own, in YAML (repeatable; the format is in crates/engine/src/cases_file.rs).
    /// With --cases and no --suite, only these cases run.
    #[arg(long = "cases", value_name = "FILE")]
    pub cases: Vec<PathBuf>,
    /// Only cases whose id (`suite/case`) matches this regular expression.
    #[arg(long, value_name = "RE")]
    pub focus: Option<String>,
    /// Leave out cases whose id matches this regular expression.
    #[arg(long, value_name = "RE")]
    pub skip: Option<String>,
    /// Only cases carrying every one of these labels, e.g. `type=netpol,feature=ports`.
    #[arg(long, value_name = "k=v,...")]
    pub labels: Option<String>,
    /// Timeout of one probe attempt (`500ms`, `1s`, `2m`).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Tries after the first for a cell not yet as expected twice in a row [default: 3 on a lab,
    /// 5 on a cluster, whose dataplane may take seconds to follow a change].
    #[arg(long)]
    pub retries: Option<u32>,
    /// Pause before the first retry (`100ms`, `1s`), doubled before each further one, so a dataplane still converging gets time to.
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub retry_interval: Duration,
    /// Source pods probing at once.
    #[arg(long, default_value_t = 9)]
    pub parallel: usize,
    /// Cases run concurrently on N shards, each with probe pods of its own (a lab each; on a
    /// cluster, namespaces of their own); cases with cluster-wide objects (admin policies,
    /// hostNetwork pods) run alone. Tables and reports are those of a serial run [default: 1 on
    /// a lab, 2 on a cluster].
    #[arg(long, value_name = "N")]
    pub shards: Option<usize>,
    /// Which truth tables to print: of every step, of the steps with a wrong, inconclusive or
    /// failed cell (a passing case is one line), or none.
    #[arg(long, value_enum, default_value_t = TablesArg::Failed)]
    pub tables: TablesArg,
    /// Write the run report as JSON (schema netmatrix.run/v1).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a JUnit report (one testcase per case).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a self-contained HTML report.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Run as a Sonobuoy plugin: the cluster the pod runs in (in-cluster configuration unless
    /// --kubeconfig), reports in $SONOBUOY_RESULTS_DIR, progress to the Sonobuoy worker, and
    /// the `done` file last, whatever happens.
    #[arg(long, conflicts_with_all = ["lab", "json", "junit", "html"])]
    pub sonobuoy: bool,
    /// Who decides what the Kubernetes documentation leaves open: `spec` expects only what it
    /// promises (`#` elsewhere), `lab` and `kube-proxy` what that dataplane does. Default: `lab`
    /// on the lab, `kube-proxy` on a cluster.
    #[arg(long, value_enum)]
    pub profile: Option<ProfileArg>,
    /// On a cluster: save its OpenAPI spec (/openapi/v2) here at the start, for `netmatrix
    /// coverage --openapi FILE --audit-log ...` on the API server's audit log of the run.
    #[arg(long, value_name = "FILE", conflicts_with = "lab")]
    pub coverage_openapi: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TablesArg {
    All,
    Failed,
    None,
}

impl From<TablesArg> for Tables {
    fn from(t: TablesArg) -> Tables {
        match t {
            TablesArg::All => Tables::All,
            TablesArg::Failed => Tables::Failed,
            TablesArg::None => Tables::None,
        }
    }
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{text:?}: {e} (use e.g. 500ms, 5s, 2m)"))?;
    if d.is_zero() {
        return Err(format!("{text:?}: must be more than zero"));
    }
    Ok(d)
}

/// Everything a run needs, checked before anything is created.
struct Config {
    cases: Vec<Case>,
    probe: ProbeConfig,
    /// Where the JSON, JUnit and HTML reports go.
    reports: [Option<PathBuf>; 3],
    tables: Tables,
    sonobuoy: Option<Sonobuoy>,
    shards: usize,
}

fn validate(args: &RunArgs) -> Result<Config, String> {
    let sonobuoy = args.sonobuoy.then(Sonobuoy::from_env);
    let reports = match &sonobuoy {
        Some(s) => {
            let (junit, json, html) = s.report_paths();
            [Some(json), Some(junit), Some(html)]
        }
        None => [args.json.clone(), args.junit.clone(), args.html.clone()],
    };
    if let Some(lab) = &args.backend.lab {
        names::validate(lab).map_err(|e| format!("--lab: {e}"))?;
    }
    if args.backend.nodes.is_some_and(|n| n == 0 || n > 50) {
        return Err(format!("--nodes {}: from 1 to 50", args.backend.nodes.unwrap_or_default()));
    }
    if args.parallel == 0 {
        return Err("--parallel: at least 1".into());
    }
    let on_cluster = args.backend.kubeconfig.is_some() || args.sonobuoy;
    let shards = args.shards.unwrap_or(if on_cluster { KUBE_SHARDS } else { LAB_SHARDS });
    if shards == 0 || shards > MAX_SHARDS {
        return Err(format!("--shards {shards}: from 1 to {MAX_SHARDS}"));
    }
    let suites: Vec<String> = match (args.suites.is_empty(), args.cases.is_empty()) {
        (true, true) => suites::SUITES.map(String::from).to_vec(),
        (true, false) => Vec::new(),
        (false, _) => args.suites.clone(),
    };
    let mut cases = suites::cases(&suites).map_err(|e| format!("--suite: {e}"))?;
    // The pods' names and namespaces do not depend on the backend: validate against any world.
    let world = suites::world(&netmatrix_engine::world::node_names(args.backend.nodes.unwrap_or(LAB_NODES)), true);
    for path in &args.cases {
        let text = std::fs::read_to_string(path).map_err(|e| format!("--cases {}: {e}", path.display()))?;
        let mine = cases_file::parse(&path.display().to_string(), &text, &world)?;
        if let Some(c) = mine.iter().find(|c| cases.iter().any(|d| d.id == c.id)) {
            return Err(format!("{}: case {} is defined twice", path.display(), c.id));
        }
        cases.extend(mine);
    }
    let regex = |flag: &str, re: &Option<String>| re.as_deref().map(Regex::new).transpose().map_err(|e| format!("{flag}: {e}"));
    let focus = regex("--focus", &args.focus)?;
    let skip = regex("--skip", &args.skip)?;
    let wanted = parse_labels(args.labels.as_deref().unwrap_or(""))?;
    cases.retain(|c| {
        focus.as_ref().is_none_or(|re| re.is_match(&c.id))
            && !skip.as_ref().is_some_and(|re| re.is_match(&c.id))
            && wanted.iter().all(|(k, v)| c.labels.get(k) == Some(v))
    });
    if cases.is_empty() {
        return Err("no case matches --suite, --focus, --skip and --labels".into());
    }
    // A shard without a case would only set up a world.
    let shards = shards.min(cases.len());
    if shards > 1 && !on_cluster {
        check_shard_labs(args.backend.lab.as_deref(), shards, &netmatrix_lab::Lab::list())?;
    }
    if args.coverage_openapi.is_some() && args.backend.kubeconfig.is_none() && !args.sonobuoy {
        return Err("--coverage-openapi: only on a cluster (--kubeconfig); a lab has no API server".into());
    }
    check_reports(&[&reports[..], std::slice::from_ref(&args.coverage_openapi)].concat())?;
    let probe = ProbeConfig {
        timeout: args.timeout,
        // A real cluster's enforcer (kube-router under load) took over 5 s to let traffic through
        // after pods were recreated: 5 retries wait 6.2 s in all, the lab needs 1.4.
        retries: args.retries.unwrap_or(if on_cluster { 5 } else { 3 }),
        retry_interval: args.retry_interval,
        parallel: args.parallel,
        cancel: Some(&signals::CANCEL),
        profile: args.profile.map(Into::into),
        ..ProbeConfig::default()
    };
    Ok(Config { cases, probe, reports, sonobuoy, tables: args.tables.into(), shards })
}

/// Shards on the lab run in labs the run makes (`--lab NAME` and NAME followed by b, c, ...): an
/// existing lab is one world, whose pods and faults the others would not have.
fn check_shard_labs(lab: Option<&str>, shards: usize, existing: &[String]) -> Result<(), String> {
    let Some(lab) = lab else { return Ok(()) };
    if lab.len() >= names::MAX_LAB_NAME {
        return Err(format!("--lab {lab} --shards {shards}: a name of at most {} characters (the shards' labs add a letter)", names::MAX_LAB_NAME - 1));
    }
    match (0..shards).map(|shard| shard_lab(lab, shard)).find(|name| existing.contains(name)) {
        Some(name) => Err(format!("--shards {shards}: lab {name} exists; the shards' labs ({lab}, {lab}b, ...) must be new, each with the same world")),
        None => Ok(()),
    }
}

/// Refuses report paths that would fail only after the run, or overwrite each other: a
/// directory, a device or FIFO (writes to /dev/full fail), a file that cannot be written, the
/// same file twice. Leaves every path as it found it.
fn check_reports(paths: &[Option<PathBuf>]) -> Result<(), String> {
    let mut seen: Vec<PathBuf> = Vec::new();
    for path in paths.iter().flatten() {
        let shown = path.display();
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(format!("{shown}: directory {} does not exist", dir.display()));
        }
        let resolved = match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => return Err(format!("{shown}: is a directory; a report is a file")),
            Ok(m) if !m.is_file() => return Err(format!("{shown}: not a regular file (a device or a FIFO); a report is written to a file")),
            Ok(_) => {
                // Not truncated: the file keeps its content until the report replaces it.
                std::fs::File::options().write(true).open(path).map_err(|e| format!("{shown}: cannot write it: {e}"))?;
                path.canonicalize()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // Made here, so removing it deletes nothing of the user's.
                std::fs::File::options().write(true).create_new(true).open(path).map_err(|e| format!("{shown}: cannot create it: {e}"))?;
                let _ = std::fs::remove_file(path);
                let name = path.file_name().ok_or_else(|| format!("{shown}: not a file name"))?;
                dir.canonicalize().map(|d| d.join(name))
            }
            Err(e) => return Err(format!("{shown}: {e}")),
        }
        .map_err(|e| format!("{shown}: {e}"))?;
        if seen.contains(&resolved) {
            return Err(format!("{shown}: two reports would be written to this file; name it once"));
        }
        seen.push(resolved);
    }
    Ok(())
}

fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|pair| pair.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("--labels: {pair:?} is not key=value")))
        .collect()
}

pub fn run(args: RunArgs) -> Result<Outcome, CliError> {
    let config = validate(&args).map_err(CliError::Usage)?;
    signals::install().map_err(|source| CliError::Io { what: "installing signal handlers".into(), source })?;
    let result = run_on_backend(&args, &config);
    // Sonobuoy waits for `done` whatever happened, and reads an error from it.
    if let Some(sonobuoy) = &config.sonobuoy {
        let error = match &result {
            Ok(Outcome::Interrupted(signal)) => Some(format!("interrupted by signal {signal}")),
            Ok(_) => None,
            Err(e) => Some(e.to_string()),
        };
        sonobuoy.finish(error.as_deref())?;
    }
    result
}

/// Shards of a run on the lab, unless `--shards` says. bench/shards.sh on a shared 2-core host:
/// the default suites in 9.5 s serially, 8.0 s on 2 shards, 7.8 s on 3 (the probing and the
/// oracle are CPU-bound there); not worth a lab per shard, nor refusing existing labs by default.
const LAB_SHARDS: usize = 1;
/// Shards of a run on a cluster, unless `--shards` says: there the run mostly waits (API server
/// round trips, pods and endpoints becoming ready, execs, retries' pauses of up to 3.2 s), so a
/// second shard overlaps the waits of two cases at the cost of a second set of probe pods.
const KUBE_SHARDS: usize = 2;

fn run_on_backend(args: &RunArgs, config: &Config) -> Result<Outcome, CliError> {
    let on_cluster = args.backend.kubeconfig.is_some() || args.sonobuoy;
    let made = if on_cluster { kubes(&args.backend, args.coverage_openapi.as_deref(), config.shards) } else { labs(&args.backend, config.shards) };
    // Every backend made is removed when dropped, also when another could not be made.
    let (mut runs, mut shards, mut failed) = (Vec::new(), Vec::new(), None);
    for chosen in made {
        match chosen {
            Ok(Chosen { backend, about, kept }) => {
                runs.push(Teardown { backend, keep: args.backend.keep, done: false });
                shards.push((about, kept));
            }
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let aborts: Vec<_> = runs.iter().filter_map(|r| r.backend.abort_handle()).collect();
    signals::on_abort((!args.backend.keep && !aborts.is_empty()).then(|| -> Box<dyn Fn() + Send + Sync> {
        Box::new(move || {
            for abort in &aborts {
                abort();
            }
        })
    }));
    let first = runs[0].backend.as_ref();
    let nodes: Vec<String> = first.nodes().iter().map(|n| n.name.clone()).collect();
    let profile = netmatrix_engine::profile(&config.probe, first);
    eprintln!("{}: {} nodes ({}), profile {profile}", shards[0].0, nodes.len(), nodes.join(", "));
    for (shard, (about, _)) in shards.iter().enumerate().skip(1) {
        eprintln!("shard {}: {about}", shard + 1);
    }
    let world = suites::world(&nodes, first.capabilities().sctp.is_yes());
    let outcome = if runs.iter().any(|r| r.backend.nodes() != first.nodes()) {
        let source = "the shards were given different nodes (did the cluster's nodes change?); run again, or without --shards".into();
        Err(CliError::Backend(netmatrix_cluster::BackendError::Infrastructure { what: "placing the shards".into(), source }))
    } else {
        let mut backends: Vec<&mut dyn Backend> = runs.iter_mut().map(|r| &mut *r.backend as &mut dyn Backend).collect();
        execute(&mut backends, &world, config)
    };
    let mut errors = Vec::new();
    for (run, (_, kept)) in runs.into_iter().zip(&shards) {
        errors.extend(run.finish(kept));
    }
    if let Some(signal) = signals::received() {
        for e in &errors {
            eprintln!("error: cleaning up: {e}");
        }
        return Ok(Outcome::Interrupted(signal));
    }
    match outcome {
        Ok(outcome) if errors.is_empty() => Ok(outcome),
        Ok(_) => Err(CliError::Teardown(errors)),
        Err(e) => {
            // The run's own failure is the error; what cleaning up could not remove is said too.
            for cleanup in &errors {
                eprintln!("error: cleaning up: {cleanup}");
            }
            Err(e)
        }
    }
}

fn execute(backends: &mut [&mut dyn Backend], world: &netmatrix_engine::World, config: &Config) -> Result<Outcome, CliError> {
    // Colour on a terminal only, and never with NO_COLOR (no-color.org).
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}] {pos} probes").expect("valid template"));
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let stdout = Mutex::new(std::io::stdout());
    // Cases finished and failed so far, for Sonobuoy's progress updates.
    let progress: Mutex<(usize, Vec<String>)> = Mutex::default();
    let on_event = |event: Event| match event {
        Event::CaseStarted { id, index, total } => bar.set_message(format!("{}/{total} {id}", index + 1)),
        Event::Probed { count } => bar.inc(count as u64),
        Event::CaseFinished(case) => {
            bar.suspend(|| {
                let mut out = stdout.lock().unwrap();
                let _ = netmatrix_report::tables::write_case(&mut *out, case, color, config.tables);
                let _ = out.flush();
            });
            if let Some(sonobuoy) = &config.sonobuoy {
                let mut done = progress.lock().unwrap();
                done.0 += 1;
                if matches!(case.result, CaseResult::Fail | CaseResult::Error | CaseResult::Flaky) {
                    done.1.push(case.id.clone());
                }
                sonobuoy.progress(&case.id, config.cases.len(), done.0, &done.1);
            }
        }
    };
    let report = netmatrix_engine::shards::run(backends, world, &config.cases, &config.probe, &on_event);
    bar.finish_and_clear();
    let report = report?;
    let mut out = std::io::stdout();
    let _ = netmatrix_report::features::write_features(&mut out, &report, color, config.tables);
    let _ = netmatrix_report::tables::write_summary(&mut out, &report, color);
    write_reports(&report, &config.reports)?;
    Ok(match report.summary.verdict() {
        Verdict::AsExpected => Outcome::Ok,
        Verdict::Wrong => Outcome::Wrong,
        Verdict::Incomplete => Outcome::Failure,
    })
}

/// Writes the reports to `paths`: JSON, JUnit, HTML (each where given).
fn write_reports(report: &RunReport, paths: &[Option<PathBuf>; 3]) -> Result<(), CliError> {
    crate::report_files::write(
        report,
        &[
            (&paths[0], |f, r| netmatrix_report::json_report::write_json(f, r)),
            (&paths[1], |f, r| netmatrix_report::junit::write(f, r)),
            (&paths[2], |f, r| netmatrix_report::html::write(f, r)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command};
    use crate::backend::AGNHOST_IMAGE;

    fn parse(args: &[&str]) -> Result<RunArgs, clap::Error> {
        let cli = Cli::try_parse_from(["netmatrix", "run"].iter().chain(args))?;
        let Command::Run(run) = cli.command else { panic!("run") };
        Ok(*run)
    }

    #[test]
    fn a_cluster_gets_more_retries_than_a_lab() {
        let retries = |args: &[&str]| validate(&parse(args).unwrap()).ok().unwrap().probe.retries;
        assert_eq!((retries(&[]), retries(&["--kubeconfig", "k"]), retries(&["--kubeconfig", "k", "--retries", "1"])), (3, 5, 1));
    }

    #[test]
    fn coverage_openapi_needs_a_cluster() {
        let args = parse(&["--coverage-openapi", "spec.json"]).unwrap();
        assert!(validate(&args).err().unwrap().contains("only on a cluster"));
        let args = parse(&["--kubeconfig", "k", "--coverage-openapi", "/nonexistent-dir/spec.json"]).unwrap();
        assert!(validate(&args).err().unwrap().contains("does not exist"));
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert_eq!((a.backend.lab, a.backend.nodes, a.timeout, a.retries, a.parallel, a.backend.keep), (None, None, Duration::from_secs(1), None, 9, false));
        assert_eq!(
            (a.backend.agent_image, a.backend.ready_timeout, a.backend.tolerate_taints),
            (format!("netmatrix-agent:{}", env!("CARGO_PKG_VERSION")), Duration::from_secs(120), false)
        );
        assert!(a.suites.is_empty() && a.cases.is_empty() && a.json.is_none());
        assert_eq!(a.tables, TablesArg::Failed, "tables of failing steps only, by default");
        assert_eq!(parse(&["--tables", "all"]).unwrap().tables, TablesArg::All);
        assert!(parse(&["--tables", "some"]).is_err());
        assert_eq!(a.profile, None, "the backend's default profile");
        assert_eq!(parse(&["--profile", "spec"]).unwrap().profile, Some(ProfileArg::Spec));
        assert_eq!(validate(&parse(&["--profile", "kube-proxy"]).unwrap()).unwrap().probe.profile, Some(netmatrix_oracle::Profile::KubeProxy));
    }

    #[test]
    fn every_flag() {
        let a = parse(&[
            "--lab",
            "l1",
            "--nodes",
            "2",
            "--suite",
            "netpol",
            "--suite",
            "services",
            "--cases",
            "c.yaml",
            "--focus",
            "a",
            "--skip",
            "b",
            "--labels",
            "type=x",
            "--timeout",
            "500ms",
            "--retries",
            "0",
            "--parallel",
            "4",
            "--json",
            "r.json",
            "--junit",
            "r.xml",
            "--html",
            "r.html",
            "--keep",
        ])
        .unwrap();
        assert_eq!(
            (a.backend.lab.as_deref(), a.backend.nodes, a.suites.len(), a.cases.len(), a.timeout, a.retries, a.parallel, a.backend.keep),
            (Some("l1"), Some(2), 2, 1, Duration::from_millis(500), Some(0), 4, true)
        );
        assert_eq!((a.focus.as_deref(), a.skip.as_deref(), a.labels.as_deref()), (Some("a"), Some("b"), Some("type=x")));
        assert!(a.json.is_some() && a.junit.is_some() && a.html.is_some());
    }

    #[test]
    fn cluster_flags() {
        let a = parse(&[
            "--kubeconfig",
            "k",
            "--context",
            "c",
            "--nodes",
            "4",
            "--agent-image",
            "registry.example/agent:1",
            "--image-pull-secret",
            "s",
            "--tolerate-taints",
            "--node-selector",
            "pool=probe",
            "--ready-timeout",
            "30s",
        ])
        .unwrap();
        assert_eq!((a.backend.kubeconfig.unwrap().to_str(), a.backend.context.as_deref(), a.backend.nodes), (Some("k"), Some("c"), Some(4)));
        assert_eq!(
            (a.backend.agent_image.as_str(), a.backend.image_pull_secret.as_deref(), a.backend.tolerate_taints),
            ("registry.example/agent:1", Some("s"), true)
        );
        assert_eq!((a.backend.node_selector.as_deref(), a.backend.ready_timeout), (Some("pool=probe"), Duration::from_secs(30)));
        assert_eq!(parse(&["--kubeconfig", "k", "--agnhost"]).unwrap().backend.agnhost.as_deref(), Some(AGNHOST_IMAGE));
        assert_eq!(parse(&["--kubeconfig", "k", "--agnhost", "mirror/agnhost:2.66.1"]).unwrap().backend.agnhost.as_deref(), Some("mirror/agnhost:2.66.1"));
        assert!(parse(&["--agnhost"]).is_err(), "agnhost is for clusters");
    }

    #[test]
    fn help_lists_every_suite_from_the_suites_themselves() {
        use clap::CommandFactory;
        let help = Cli::command().find_subcommand_mut("run").unwrap().render_long_help().to_string();
        for suite in suites::SUITES {
            assert!(help.contains(suite), "{suite} missing from run --help");
        }
        assert!(parse(&["--suite", "nope"]).is_err(), "an unknown suite is a usage error");
    }

    #[test]
    fn ip_family_is_for_a_lab_the_run_makes() {
        assert_eq!(parse(&[]).unwrap().backend.ip_family, None, "the lab's default: LAB_IP_FAMILY (dual)");
        assert_eq!(parse(&["--ip-family", "ipv6"]).unwrap().backend.ip_family, Some(netmatrix_model::IpFamilies::Ipv6));
        assert!(parse(&["--ip-family", "ipv5"]).unwrap_err().to_string().contains("use ipv4, ipv6 or dual"));
        assert!(parse(&["--kubeconfig", "k", "--ip-family", "dual"]).is_err(), "a cluster has its own families");
    }

    #[test]
    fn durations_and_conflicts() {
        assert_eq!(parse(&["--timeout", "2m"]).unwrap().timeout, Duration::from_secs(120));
        assert!(parse(&["--timeout", "5"]).is_err(), "a unit is required");
        assert!(parse(&["--timeout", "0s"]).is_err());
        assert!(parse(&["--lab", "a", "--kubeconfig", "k"]).is_err(), "one backend");
        assert!(parse(&["--context", "c"]).is_err(), "--context needs --kubeconfig");
    }

    #[test]
    fn shards_are_checked_before_anything_is_made() {
        let shards = |args: &[&str]| validate(&parse(args).unwrap()).map(|c| c.shards);
        assert_eq!((shards(&[]), shards(&["--shards", "3"]), shards(&["--kubeconfig", "k"])), (Ok(LAB_SHARDS), Ok(3), Ok(KUBE_SHARDS)));
        assert!(shards(&["--shards", "0"]).unwrap_err().contains("--shards 0: from 1 to 26"));
        assert!(shards(&["--shards", "27"]).is_err());
        assert!(shards(&["--lab", "abcdef", "--shards", "2"]).unwrap_err().contains("at most 5 characters"));
        assert_eq!(shards(&["--lab", "abcdef", "--shards", "1"]), Ok(1), "one shard is the lab itself");
        assert_eq!(shards(&["--kubeconfig", "k", "--focus", "^netpol/deny-all$", "--shards", "3"]), Ok(1), "no more shards than cases");
        let existing = ["demo".to_owned(), "otherc".to_owned()];
        assert!(check_shard_labs(Some("demo"), 2, &existing).unwrap_err().contains("lab demo exists"));
        assert!(check_shard_labs(Some("other"), 3, &existing).unwrap_err().contains("lab otherc exists"));
        assert_eq!(check_shard_labs(Some("other"), 2, &existing), Ok(()));
        assert_eq!(check_shard_labs(None, 26, &existing), Ok(()), "a fresh lab's name is the process's");
    }

    #[test]
    fn labels_are_key_value_pairs() {
        assert_eq!(parse_labels("type=netpol,feature=ports").unwrap(), [("type".to_owned(), "netpol".to_owned()), ("feature".to_owned(), "ports".to_owned())]);
        assert!(parse_labels("type").unwrap_err().contains("not key=value"));
        assert!(parse_labels("").unwrap().is_empty());
    }

    #[test]
    fn report_checks_leave_files_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let (old, new) = (dir.path().join("old.json"), dir.path().join("new.xml"));
        std::fs::write(&old, "old").unwrap();
        check_reports(&[Some(old.clone()), Some(new.clone()), None]).unwrap();
        assert_eq!(std::fs::read_to_string(&old).unwrap(), "old", "not truncated");
        assert!(!new.exists(), "the probe is removed");
        assert!(check_reports(&[Some(old.clone()), Some(old.clone()), None]).unwrap_err().contains("two reports"));
    }

    #[test]
    fn validation_selects_cases() {
        let config = validate(&parse(&["--suite", "netpol", "--labels", "feature=ipblock"]).unwrap()).unwrap();
        let ids: Vec<&str> = config.cases.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["netpol/ipblock-except", "netpol/egress-ipblock", "netpol/ipblock-ipv6"]);
        let config = validate(&parse(&["--focus", "^services/", "--skip", "affinity"]).unwrap()).unwrap();
        assert!(config.cases.iter().all(|c| c.id.starts_with("services/") && !c.id.contains("affinity")) && config.cases.len() > 5);
    }
}
