//! `netmatrix churn`: flags → a shape and patterns → the engine's churn on a lab or a cluster
//! → latency tables, JSON and HTML, and one exit code.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use netmatrix_engine::SystemClock;
use netmatrix_engine::churn::measure::Rounds;
use netmatrix_engine::churn::patterns::Pattern;
use netmatrix_engine::churn::{ChurnConfig, Progress};
use netmatrix_results::churn::{ChurnReport, Shape};

use crate::backend::{BackendArgs, LAB_NODES, Teardown, kube, lab};
use crate::run::parse_duration;
use crate::{CliError, Outcome, signals};

#[derive(Debug, clap::Args)]
pub struct ChurnArgs {
    #[command(flatten)]
    pub backend: BackendArgs,
    /// Load patterns to run, in order (repeatable). Default: all.
    #[arg(long = "pattern", value_name = "P", value_parser = clap::builder::PossibleValuesParser::new(Pattern::ALL.map(Pattern::as_str)))]
    pub patterns: Vec<String>,
    /// Namespaces of the churn world (labelled area=area1..5, maturity=production|test|...).
    #[arg(long, default_value_t = 4)]
    pub namespaces: usize,
    /// Pods per namespace (labelled role=role1..5, instance=instance1..5, ha=active|backup),
    /// spread over the nodes.
    #[arg(long, default_value_t = 5)]
    pub pods_per_namespace: usize,
    /// NetworkPolicies policy-churn keeps in place.
    #[arg(long, default_value_t = 10)]
    pub policies: usize,
    /// Services service-churn scales.
    #[arg(long, default_value_t = 3)]
    pub services: usize,
    /// Changes per pattern.
    #[arg(long, default_value_t = 20)]
    pub changes: usize,
    /// Unchanged cells probed with each change's, as controls.
    #[arg(long, default_value_t = 10)]
    pub controls: usize,
    /// Seed of the random changes: the same seed, shape and flags give the same changes.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Pause between the starts of two probe rounds after a change.
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    pub interval: Duration,
    /// How long a change's cells may take to converge.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub deadline: Duration,
    /// Timeout of one probe: a dropped connection counts as denied after it, so it bounds the
    /// resolution of allow-to-deny changes [default: 100ms on a lab, 500ms on a cluster].
    #[arg(long, value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// Source pods probing at once.
    #[arg(long, default_value_t = 9)]
    pub parallel: usize,
    /// Rounds probed after a change converged, to catch cells that go wrong again.
    #[arg(long, default_value_t = 3)]
    pub settle: usize,
    /// Write the churn report as JSON (schema netmatrix.churn/v1).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report with plots.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
}

fn validate(args: &ChurnArgs) -> Result<ChurnConfig, String> {
    if let Some(lab) = &args.backend.lab {
        netmatrix_lab::names::validate(lab).map_err(|e| format!("--lab: {e}"))?;
    }
    let nodes = args.backend.nodes.unwrap_or(LAB_NODES);
    if nodes == 0 || nodes > 50 {
        return Err(format!("--nodes {nodes}: from 1 to 50"));
    }
    for (flag, value) in [("--namespaces", args.namespaces), ("--pods-per-namespace", args.pods_per_namespace), ("--parallel", args.parallel)] {
        if value == 0 {
            return Err(format!("{flag}: at least 1"));
        }
    }
    if args.namespaces * args.pods_per_namespace < 2 {
        return Err("--namespaces x --pods-per-namespace: at least 2 pods, or there is no cell".into());
    }
    let patterns: Vec<Pattern> =
        if args.patterns.is_empty() { Pattern::ALL.to_vec() } else { args.patterns.iter().filter_map(|p| Pattern::parse(p)).collect() };
    if patterns.contains(&Pattern::ServiceChurn) && args.services == 0 {
        return Err("--services 0: service-churn needs a Service".into());
    }
    for path in [&args.json, &args.html].into_iter().flatten() {
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
        if !dir.is_dir() {
            return Err(format!("{}: directory {} does not exist", path.display(), dir.display()));
        }
    }
    let on_cluster = args.backend.kubeconfig.is_some();
    let shape = Shape {
        nodes,
        namespaces: args.namespaces,
        pods_per_namespace: args.pods_per_namespace,
        policies: args.policies,
        services: args.services,
        changes: args.changes,
        controls: args.controls,
    };
    let timeout = args.timeout.unwrap_or(Duration::from_millis(if on_cluster { 500 } else { 100 }));
    let rounds = Rounds { interval: args.interval, deadline: args.deadline, timeout, parallel: args.parallel, settle: args.settle };
    Ok(ChurnConfig { shape, seed: args.seed, patterns, rounds })
}

pub fn run(args: ChurnArgs) -> Result<Outcome, CliError> {
    let config = validate(&args).map_err(CliError::Usage)?;
    signals::install().map_err(|source| CliError::Io { what: "installing signal handlers".into(), source })?;
    let chosen = if args.backend.kubeconfig.is_some() { kube(&args.backend, None)? } else { lab(&args.backend)? };
    signals::on_abort(if args.backend.keep { None } else { chosen.backend.abort_handle() });
    let nodes: Vec<String> = chosen.backend.nodes().iter().map(|n| n.name.clone()).collect();
    eprintln!(
        "{}: {} nodes ({}), {} namespaces x {} pods, probed every {:?} (timeout {:?}), seed {}",
        chosen.about,
        nodes.len(),
        nodes.join(", "),
        config.shape.namespaces,
        config.shape.pods_per_namespace,
        config.rounds.interval,
        config.rounds.timeout,
        config.seed
    );
    let mut churn = Teardown { backend: chosen.backend, keep: args.backend.keep, done: false };
    let cancelled = || signals::CANCEL.load(Ordering::SeqCst);
    let on = |progress: Progress| match progress {
        Progress::Pattern(p) => eprintln!("{p}: setting up"),
        Progress::Change(p, c) => {
            let latency = c
                .latency_ms
                .map_or_else(|| if c.cells.is_empty() { "no cell changed".to_owned() } else { "not converged".to_owned() }, |l| format!("{l:.1} ms"));
            // Per family on a dual-stack run: `(IPv4 9.8 ms, IPv6 10.1 ms)`.
            let families: Vec<String> =
                c.latency_by_family.iter().map(|(f, l)| format!("{f} {}", l.map_or_else(|| "not converged".to_owned(), |l| format!("{l:.1} ms")))).collect();
            let families = if families.is_empty() { String::new() } else { format!(" ({})", families.join(", ")) };
            eprintln!("{p} #{}: {} -> {latency}{families}", c.index, c.description);
        }
    };
    let result = netmatrix_engine::churn::run(churn.backend.as_mut(), &config, &SystemClock::new(), &cancelled, &on);
    let errors = churn.finish(&chosen.kept);
    if let Some(signal) = signals::received() {
        for e in &errors {
            eprintln!("error: cleaning up: {e}");
        }
        return Ok(Outcome::Interrupted(signal));
    }
    let report = match result {
        Ok(report) => report,
        Err(e) => {
            for cleanup in &errors {
                eprintln!("error: cleaning up: {cleanup}");
            }
            return Err(e.into());
        }
    };
    if !errors.is_empty() {
        return Err(CliError::Teardown(errors));
    }
    write(&report, &args)?;
    Ok(outcome(&report))
}

/// Exit 1 when a change (or a pattern's setup) never converged or a control cell changed: the
/// dataplane did not do what the objects say, however long it was given.
fn outcome(report: &ChurnReport) -> Outcome {
    let changes = report.patterns.iter().flat_map(|p| p.setup.iter().chain(&p.changes));
    let wrong = changes.into_iter().any(|c| !c.not_converged.is_empty() || !c.controls_changed.is_empty());
    if wrong { Outcome::Wrong } else { Outcome::Ok }
}

fn write(report: &ChurnReport, args: &ChurnArgs) -> Result<(), CliError> {
    let mut stdout = std::io::stdout();
    netmatrix_report::churn::text(report, &mut stdout).map_err(|source| CliError::Io { what: "writing to stdout".into(), source })?;
    let _ = stdout.flush();
    crate::report_files::write(report, &[(&args.json, |f, r| netmatrix_report::churn::json(r, f)), (&args.html, |f, r| netmatrix_report::churn::html(r, f))])
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command};

    fn parse(args: &[&str]) -> Result<ChurnArgs, clap::Error> {
        let cli = Cli::try_parse_from(["netmatrix", "churn"].iter().chain(args))?;
        let Command::Churn(churn) = cli.command else { panic!("churn") };
        Ok(*churn)
    }

    #[test]
    fn defaults_fit_a_small_machine_and_state_the_interval() {
        let config = validate(&parse(&[]).unwrap()).unwrap();
        assert_eq!(config.patterns, Pattern::ALL);
        assert_eq!((config.shape.nodes, config.shape.namespaces, config.shape.pods_per_namespace), (3, 4, 5));
        assert_eq!((config.rounds.interval, config.rounds.timeout), (Duration::from_millis(10), Duration::from_millis(100)));
        let cluster = validate(&parse(&["--kubeconfig", "k"]).unwrap()).unwrap();
        assert_eq!(cluster.rounds.timeout, Duration::from_millis(500));
    }

    #[test]
    fn flags_and_bad_input() {
        let config =
            validate(&parse(&["--pattern", "pod-ring", "--pattern", "ns-labels", "--seed", "9", "--interval", "5ms", "--nodes", "2"]).unwrap()).unwrap();
        assert_eq!(config.patterns, [Pattern::PodRing, Pattern::NsLabels]);
        assert_eq!((config.seed, config.rounds.interval, config.shape.nodes), (9, Duration::from_millis(5), 2));
        assert!(parse(&["--pattern", "nope"]).is_err());
        assert!(parse(&["--interval", "0s"]).is_err());
        assert!(validate(&parse(&["--namespaces", "0"]).unwrap()).unwrap_err().contains("--namespaces"));
        assert!(validate(&parse(&["--pattern", "service-churn", "--services", "0"]).unwrap()).unwrap_err().contains("--services"));
        assert!(validate(&parse(&["--json", "/nonexistent-dir/x.json"]).unwrap()).unwrap_err().contains("does not exist"));
        assert!(validate(&parse(&["--lab", "Bad_Name"]).unwrap()).unwrap_err().contains("--lab"));
    }
}
