//! `netmatrix run`: flags → validated config → the engine on a backend → tables, reports and
//! one exit code.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use netmatrix_cluster::lab::LabBackend;
use netmatrix_cluster::{Backend, BackendError};
use netmatrix_engine::{Case, Event, ProbeConfig, cases_file, suites};
use netmatrix_lab::{Lab, LabError, names};
use netmatrix_results::{RunReport, Verdict};
use regex::Regex;

use crate::{CliError, Outcome, signals};

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Run in this lab (created if absent, and then removed at the end unless --keep). Without
    /// --lab and --kubeconfig a fresh lab is made for the run and removed after it.
    #[arg(long, value_name = "NAME")]
    pub lab: Option<String>,
    /// Run against a Kubernetes cluster (not available yet in this version).
    #[arg(long, value_name = "FILE", conflicts_with = "lab")]
    pub kubeconfig: Option<PathBuf>,
    #[arg(long, requires = "kubeconfig")]
    pub context: Option<String>,
    /// Nodes of a lab the run creates.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Suites to run (repeatable): connectivity, services, netpol, anp. Default: all.
    #[arg(long = "suite", value_name = "S")]
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
    /// Tries after the first for cells that are wrong or changed.
    #[arg(long, default_value_t = 2)]
    pub retries: u32,
    /// Pause before each retry (`100ms`, `1s`), so a dataplane still converging gets time to.
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    pub retry_interval: Duration,
    /// Source pods probing at once.
    #[arg(long, default_value_t = 9)]
    pub parallel: usize,
    /// Write the run report as JSON (schema netmatrix.run/v1).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a JUnit report (one testcase per case).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a self-contained HTML report.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Keep the lab (or the probe pods) after the run, for a look.
    #[arg(long)]
    pub keep: bool,
    /// Write results in the Sonobuoy plugin layout (not available yet in this version).
    #[arg(long)]
    pub sonobuoy: bool,
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
}

fn validate(args: &RunArgs) -> Result<Config, String> {
    if args.kubeconfig.is_some() {
        return Err("--kubeconfig: the Kubernetes backend is not available in this version; run on the lab (no flag, or --lab NAME)".into());
    }
    if args.sonobuoy {
        return Err("--sonobuoy: the Sonobuoy layout is not available in this version".into());
    }
    if let Some(lab) = &args.lab {
        names::validate(lab).map_err(|e| format!("--lab: {e}"))?;
    }
    if args.nodes == 0 || args.nodes > 50 {
        return Err(format!("--nodes {}: from 1 to 50", args.nodes));
    }
    if args.parallel == 0 {
        return Err("--parallel: at least 1".into());
    }
    let suites: Vec<String> = match (args.suites.is_empty(), args.cases.is_empty()) {
        (true, true) => suites::SUITES.map(String::from).to_vec(),
        (true, false) => Vec::new(),
        (false, _) => args.suites.clone(),
    };
    let mut cases = suites::cases(&suites).map_err(|e| format!("--suite: {e}"))?;
    // The pods' names and namespaces do not depend on the backend: validate against any world.
    let world = suites::world(&netmatrix_engine::world::node_names(args.nodes), true);
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
    for path in [&args.json, &args.junit, &args.html].into_iter().flatten() {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        if !dir.is_dir() {
            return Err(format!("{}: directory {} does not exist", path.display(), dir.display()));
        }
    }
    let probe = ProbeConfig {
        timeout: args.timeout,
        retries: args.retries,
        retry_interval: args.retry_interval,
        parallel: args.parallel,
        cancel: Some(&signals::CANCEL),
        ..ProbeConfig::default()
    };
    Ok(Config { cases, probe })
}

fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|pair| pair.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("--labels: {pair:?} is not key=value")))
        .collect()
}

/// The run's backend, torn down when dropped (also on errors and panics) unless kept.
struct Teardown {
    backend: Box<dyn Backend>,
    keep: bool,
    done: bool,
}

impl Teardown {
    /// Removes what the run created, or says how to, when kept; returns every failure.
    fn finish(mut self, kept: &str) -> Vec<BackendError> {
        self.done = true;
        if self.keep {
            eprintln!("{kept}");
            return Vec::new();
        }
        self.backend.teardown()
    }
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if !self.done && !self.keep {
            for e in self.backend.teardown() {
                eprintln!("error: cleaning up: {e}");
            }
        }
    }
}

pub fn run(args: RunArgs) -> Result<Outcome, CliError> {
    let config = validate(&args).map_err(CliError::Usage)?;
    let (name, existed) = match &args.lab {
        Some(name) => (name.clone(), Lab::list().contains(name)),
        // A name of its own, so that runs side by side do not collide.
        None => (format!("r{}", std::process::id() % 100_000), false),
    };
    signals::install().map_err(|source| CliError::Io { what: "installing signal handlers".into(), source })?;
    // Until the backend exists, a second signal removes the lab being built (if the run makes it).
    if !existed && !args.keep {
        let lab = name.clone();
        signals::on_abort(Some(Box::new(move || {
            let _ = Lab::down(&lab);
        })));
    }
    let backend = if existed { LabBackend::open(&name) } else { LabBackend::up(&name, args.nodes) };
    let backend: Box<dyn Backend> = Box::new(backend.map_err(|e| match e {
        LabError::BadInput(m) => LabError::BadInput(format!("lab {name}: {m}")),
        other => other,
    })?);
    signals::on_abort(if args.keep { None } else { backend.abort_handle() });
    let nodes: Vec<String> = backend.nodes().iter().map(|n| n.name.clone()).collect();
    eprintln!("lab {name}: {} nodes{}", nodes.len(), if existed { " (existing)" } else { "" });
    let world = suites::world(&nodes, backend.capabilities().sctp.is_yes());
    let mut run = Teardown { backend, keep: args.keep, done: false };
    let outcome = execute(run.backend.as_mut(), &world, &config, &args);
    let kept = if existed { format!("kept the run's probe pods in lab {name}") } else { format!("kept lab {name} (netmatrix lab down {name} removes it)") };
    let errors = run.finish(&kept);
    if let Some(signal) = signals::received() {
        for e in &errors {
            eprintln!("error: cleaning up: {e}");
        }
        return Ok(Outcome::Interrupted(signal));
    }
    let outcome = outcome?;
    if !errors.is_empty() {
        return Err(CliError::Teardown(errors));
    }
    Ok(outcome)
}

fn execute(backend: &mut dyn Backend, world: &netmatrix_engine::World, config: &Config, args: &RunArgs) -> Result<Outcome, CliError> {
    let color = std::io::stdout().is_terminal();
    let bar = ProgressBar::new(0);
    bar.set_style(ProgressStyle::with_template("{spinner} {msg} [{elapsed}] {pos} probes").expect("valid template"));
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let stdout = Mutex::new(std::io::stdout());
    let on_event = |event: Event| match event {
        Event::CaseStarted { id, index, total } => bar.set_message(format!("{}/{total} {id}", index + 1)),
        Event::Probed { count } => bar.inc(count as u64),
        Event::CaseFinished(case) => bar.suspend(|| {
            let mut out = stdout.lock().unwrap();
            let _ = netmatrix_report::tables::write_case(&mut *out, case, color);
            let _ = out.flush();
        }),
    };
    let report = netmatrix_engine::run(backend, world, &config.cases, &config.probe, &on_event);
    bar.finish_and_clear();
    let report = report?;
    let mut out = std::io::stdout();
    let _ = netmatrix_report::tables::write_summary(&mut out, &report, color);
    write_reports(&report, args)?;
    Ok(match report.summary.verdict() {
        Verdict::AsExpected => Outcome::Ok,
        Verdict::Wrong => Outcome::Wrong,
        Verdict::Incomplete => Outcome::Failure,
    })
}

fn write_reports(report: &RunReport, args: &RunArgs) -> Result<(), CliError> {
    type Writer = fn(&mut std::fs::File, &RunReport) -> std::io::Result<()>;
    let writers: [(&Option<PathBuf>, Writer); 3] = [
        (&args.json, |f, r| netmatrix_report::json_report::write_json(f, r)),
        (&args.junit, |f, r| netmatrix_report::junit::write(f, r)),
        (&args.html, |f, r| netmatrix_report::html::write(f, r)),
    ];
    for (path, write) in writers {
        if let Some(path) = path {
            let io = |source| CliError::Io { what: format!("writing {}", path.display()), source };
            let mut file = std::fs::File::create(path).map_err(io)?;
            write(&mut file, report).map_err(io)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command};

    fn parse(args: &[&str]) -> Result<RunArgs, clap::Error> {
        let cli = Cli::try_parse_from(["netmatrix", "run"].iter().chain(args))?;
        let Command::Run(run) = cli.command else { panic!("run") };
        Ok(*run)
    }

    #[test]
    fn defaults() {
        let a = parse(&[]).unwrap();
        assert_eq!((a.lab, a.nodes, a.timeout, a.retries, a.parallel, a.keep), (None, 3, Duration::from_secs(1), 2, 9, false));
        assert!(a.suites.is_empty() && a.cases.is_empty() && a.json.is_none());
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
            (a.lab.as_deref(), a.nodes, a.suites.len(), a.cases.len(), a.timeout, a.retries, a.parallel, a.keep),
            (Some("l1"), 2, 2, 1, Duration::from_millis(500), 0, 4, true)
        );
        assert_eq!((a.focus.as_deref(), a.skip.as_deref(), a.labels.as_deref()), (Some("a"), Some("b"), Some("type=x")));
        assert!(a.json.is_some() && a.junit.is_some() && a.html.is_some());
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
    fn labels_are_key_value_pairs() {
        assert_eq!(parse_labels("type=netpol,feature=ports").unwrap(), [("type".to_owned(), "netpol".to_owned()), ("feature".to_owned(), "ports".to_owned())]);
        assert!(parse_labels("type").unwrap_err().contains("not key=value"));
        assert!(parse_labels("").unwrap().is_empty());
    }

    #[test]
    fn validation_selects_cases() {
        let config = validate(&parse(&["--suite", "netpol", "--labels", "feature=ipblock"]).unwrap()).unwrap();
        let ids: Vec<&str> = config.cases.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, ["netpol/ipblock-except", "netpol/egress-ipblock"]);
        let config = validate(&parse(&["--focus", "^services/", "--skip", "affinity"]).unwrap()).unwrap();
        assert!(config.cases.iter().all(|c| c.id.starts_with("services/") && !c.id.contains("affinity")) && config.cases.len() > 5);
    }
}
