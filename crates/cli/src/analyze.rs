use std::io::{self, Write};
use std::time::Instant;

use netmatrix_oracle::explain::{Endpoint, explain, find_endpoint};
use netmatrix_oracle::{Options, Profile, Reachability, admin, connlist, services};
use netmatrix_report::connlist::Format;

use crate::Outcome;
use crate::args::{AnalyzeArgs, OutputFormat, parse_port_protocol};
use crate::files;

pub fn run(args: AnalyzeArgs) -> Outcome {
    let mut timings = Timings::new(args.timings);
    let manifests = files::read(&args.paths);
    for w in &manifests.warnings {
        eprintln!("warning: {w}");
    }
    let cluster = match manifests.parse(args.validate.into()) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("error: {e}");
            }
            // What finding the errors cost, for `bench/load.sh`.
            timings.phase(format_args!("load ({} errors)", errors.0.len()));
            timings.peak_memory();
            return Outcome::BadInput;
        }
    };
    for w in cluster.warnings.iter().cloned().chain(admin::warnings(&cluster)) {
        eprintln!("warning: {w}");
    }
    timings.phase(format_args!(
        "load ({} namespaces, {} pods, {} policies, {} admin policies)",
        cluster.namespaces.len(),
        cluster.pods.len(),
        cluster.policies.len(),
        cluster.admin_policies.len()
    ));
    let options = Options { ipblocks_match_pods: !args.ipblocks_external_only };
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let format = match args.output {
        OutputFormat::Txt => Format::Txt,
        OutputFormat::Csv => Format::Csv,
        OutputFormat::Md => Format::Md,
        OutputFormat::Json => Format::Json,
    };
    let profile = Profile::from(args.profile);
    let written = match &args.explain {
        Some(query) if query[1].starts_with("svc:") => {
            let src = match find_endpoint(&cluster, &query[0]) {
                Ok(Endpoint::Pod(pod)) => cluster.pods.iter().position(|p| std::ptr::eq(p, pod)).expect("found in the cluster"),
                Ok(Endpoint::External(ip)) => return bad_explain(&format!("{ip}: a Service is explained for a pod or workload source, not an address")),
                Err(e) => return bad_explain(&e),
            };
            let service = match services::find_service(&cluster, &query[1]) {
                Ok(s) => s,
                Err(e) => return bad_explain(&e),
            };
            let port = match query.get(2).map(|q| parse_port_protocol(q)).transpose() {
                Ok(port) => port,
                Err(e) => return bad_explain(&e),
            };
            let mut reach = Reachability::compute(&cluster, options);
            let explanations = services::explain(&cluster, &mut reach, src, service, port, profile);
            if args.output == OutputFormat::Json {
                serde_json::to_writer_pretty(&mut out, &explanations).map_err(io::Error::from).and_then(|()| writeln!(out))
            } else {
                netmatrix_report::services::write_explain(&mut out, &explanations)
            }
        }
        Some(query) => {
            let endpoints = (find_endpoint(&cluster, &query[0]), find_endpoint(&cluster, &query[1]), query.get(2).map(|q| parse_port_protocol(q)).transpose());
            let (src, dst, port) = match endpoints {
                (Ok(src), Ok(dst), Ok(port)) => (src, dst, port),
                (src, dst, port) => {
                    for e in [src.err(), dst.err(), port.err()].into_iter().flatten() {
                        eprintln!("error: --explain: {e}");
                    }
                    return Outcome::BadInput;
                }
            };
            let explanation = explain(&cluster, options, src, dst, port);
            if args.output == OutputFormat::Json {
                serde_json::to_writer_pretty(&mut out, &explanation).map_err(io::Error::from).and_then(|()| writeln!(out))
            } else {
                netmatrix_report::explain::write_text(&mut out, &explanation)
            }
        }
        None => {
            let mut reach = Reachability::compute(&cluster, options);
            timings.phase(format_args!("reachability ({} pod classes, {} address ranges)", reach.classes.len(), reach.ranges.len()));
            if args.services {
                let lines = services::service_lines(&cluster, &mut reach, profile);
                timings.phase(format_args!("services ({} lines)", lines.len()));
                netmatrix_report::services::write(&mut out, &lines, format)
            } else {
                let lines = connlist::connlist(&cluster, reach);
                timings.phase(format_args!("connlist ({} lines)", lines.len()));
                netmatrix_report::connlist::write_connlist(&mut out, &lines, format)
            }
        }
    };
    let flushed = written.and_then(|()| out.flush());
    timings.phase(format_args!("output"));
    timings.peak_memory();
    // Not dropped: the process exits right after `run`, and the OS takes the memory back at
    // once, while dropping the cluster frees every pod's strings and label maps one by one
    // (about 0.4 s of CPU at 100,000 pods, 7% of the whole run). The output is flushed above.
    std::mem::forget(cluster);
    match flushed {
        Ok(()) => Outcome::Ok,
        // A closed pipe (`| head`) is not an error worth a message.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Outcome::Ok,
        Err(e) => {
            eprintln!("error: writing output: {e}");
            Outcome::Failure
        }
    }
}

fn bad_explain(message: &str) -> Outcome {
    eprintln!("error: --explain: {message}");
    Outcome::BadInput
}

/// `--timings`: one stderr line per phase, for people and for `bench/analyze.sh`: the wall
/// time, then the CPU time the process spent in it (which a busy machine does not inflate).
struct Timings {
    last: Option<(Instant, Option<u64>)>,
}

impl Timings {
    fn new(enabled: bool) -> Self {
        Self { last: enabled.then(|| (Instant::now(), cpu_ns())) }
    }

    fn phase(&mut self, what: std::fmt::Arguments) {
        if let Some((last, last_cpu)) = self.last {
            let wall = last.elapsed().as_secs_f64() * 1e3;
            let cpu = cpu_ns();
            match (last_cpu, cpu) {
                (Some(a), Some(b)) => eprintln!("timing: {wall:.1} ms {what}; cpu {:.1} ms", b.saturating_sub(a) as f64 / 1e6),
                _ => eprintln!("timing: {wall:.1} ms {what}"),
            }
            self.last = Some((Instant::now(), cpu));
        }
    }

    /// The process's peak resident memory (Linux `VmHWM`).
    fn peak_memory(&self) {
        if self.last.is_none() {
            return;
        }
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        match status.lines().find_map(|l| l.strip_prefix("VmHWM:")) {
            Some(kb) => eprintln!("timing: peak memory {}", kb.trim()),
            None => eprintln!("timing: peak memory unknown (no /proc/self/status)"),
        }
    }
}

/// CPU time of the process so far in nanoseconds; `None` where the clock is missing.
fn cpu_ns() -> Option<u64> {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID).ok()?;
    u64::try_from(t.tv_sec()).ok()?.checked_mul(1_000_000_000)?.checked_add(u64::try_from(t.tv_nsec()).ok()?)
}
