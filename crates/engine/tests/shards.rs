//! Cases on several shards (fake backends): the same tables and report as a serial run but for
//! timings, cases told in order, cases that reach other shards run alone, and a failing or
//! interrupted shard stops them all.

#[macro_use]
#[path = "support/forward.rs"]
mod forward;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use netmatrix_cluster::fake::FakeBackend;
use netmatrix_cluster::{Backend, BackendError, Outcome, Row, RowResult};
use netmatrix_engine::{Case, EngineError, Event, ManualClock, ProbeConfig, World, shards, suites, world::node_names};
use netmatrix_report::tables::Tables;
use netmatrix_results::RunReport;

fn world() -> World {
    suites::world(&node_names(3), true)
}

fn config() -> ProbeConfig {
    ProbeConfig { clock: Arc::new(ManualClock::default()), ..ProbeConfig::default() }
}

/// Every built-in case the fake can run (it has no DNS: ExternalName is skipped, and stays in).
fn all_cases() -> Vec<Case> {
    suites::cases(&suites::SUITES.map(String::from)).unwrap()
}

/// A fake with the same fault in every shard, x/b to x/a on 80 lost, so that the reports have
/// wrong cells, explanations and diagnoses to compare. (A flapping fault would follow the
/// fake's count of probes, which spans the cases a shard ran: not the same in every run.)
fn faulty() -> FakeBackend {
    let mut fake = FakeBackend::new(3);
    fake.inject(Box::new(|p| (p.src == "x/b" && p.dst == Some("x/a") && p.port == 80).then_some(Outcome::Timeout)));
    fake
}

/// The first line where `a` and `b` differ, with its neighbours.
fn first_difference(a: &str, b: &str) -> Option<String> {
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    let at = (0..a.len().max(b.len())).find(|&i| a.get(i) != b.get(i))?;
    let around = |l: &[&str]| l[at.saturating_sub(3).min(l.len())..(at + 2).min(l.len())].join("\n");
    Some(format!("line {}:\n{}\n---- instead of ----\n{}", at + 1, around(&a), around(&b)))
}

/// The tables of every step and the JSON report, with every timing zeroed and without which
/// backend answered a Service cell: the dataplane's pick, which differs between two serial runs
/// too (the tables and the engine's checks of the answer stay). Which shard ran a case is
/// checked apart, then left out.
fn comparable(mut report: RunReport) -> (String, String) {
    report.started.clear();
    report.duration_ms = 0;
    for case in &mut report.cases {
        case.duration_ms = 0;
        case.shard = None;
        for cell in case.steps.iter_mut().flat_map(|s| &mut s.cells) {
            cell.latency_ms = None;
            cell.tried_at_ms.clear();
            if cell.service.is_some() {
                cell.answered_by = None;
            }
        }
    }
    let mut tables = Vec::new();
    for case in &report.cases {
        netmatrix_report::tables::write_case(&mut tables, case, false, Tables::All).unwrap();
    }
    netmatrix_report::tables::write_summary(&mut tables, &report, false).unwrap();
    let mut json = Vec::new();
    netmatrix_report::json_report::write_json(&mut json, &report).unwrap();
    (String::from_utf8(tables).unwrap(), String::from_utf8(json).unwrap())
}

/// Runs `cases` on `shards` faulty fakes; the report and the ids of finished cases as told.
fn sharded(shards: usize, cases: &[Case]) -> (RunReport, Vec<String>, Vec<FakeBackend>) {
    let mut fakes: Vec<FakeBackend> = (0..shards).map(|_| faulty()).collect();
    let told = Mutex::new(Vec::new());
    let mut backends: Vec<&mut dyn Backend> = fakes.iter_mut().map(|f| f as &mut dyn Backend).collect();
    let report = shards::run(&mut backends, &world(), cases, &config(), &|e| {
        if let Event::CaseFinished(c) = e {
            told.lock().unwrap().push(c.id.clone());
        }
    })
    .unwrap();
    (report, told.into_inner().unwrap(), fakes)
}

#[test]
fn sharded_runs_report_what_a_serial_run_does_but_timings() {
    let cases = all_cases();
    let ids: Vec<String> = cases.iter().map(|c| c.id.clone()).collect();
    let (serial, told, _) = sharded(1, &cases);
    assert_eq!(told, ids);
    assert!(serial.summary.wrong > 0 && serial.summary.skipped > 0, "{:?}", serial.summary);
    assert!(serial.cases.iter().all(|c| c.shard.is_none()), "a serial run names no shard");
    let (serial_tables, serial_json) = comparable(serial);
    assert!(serial_tables.contains("expected because"), "explanations of wrong cells are compared too");
    for shards in [2, 3] {
        let (report, told, fakes) = sharded(shards, &cases);
        assert_eq!(told, ids, "{shards} shards: finished cases are told in order");
        let named: std::collections::BTreeSet<Option<usize>> = report.cases.iter().map(|c| c.shard).collect();
        assert_eq!(named, (1..=shards).map(Some).collect(), "{shards} shards: each case names the shard it ran on");
        for (i, fake) in fakes.iter().enumerate() {
            assert!(!fake.batches.lock().unwrap().is_empty(), "{shards} shards: shard {i} ran cases");
        }
        let (tables, json) = comparable(report);
        assert_eq!(first_difference(&tables, &serial_tables), None, "{shards} shards: tables");
        assert_eq!(first_difference(&json, &serial_json), None, "{shards} shards: JSON report");
    }
}

/// Cases beginning (`Some(id)`) and ending (`None`), by shard, in the order they happened.
type CaseLog = Arc<Mutex<Vec<(usize, Option<String>)>>>;

/// A fake that logs, for its shard, when each case begins and ends.
struct Logged {
    fake: FakeBackend,
    shard: usize,
    log: CaseLog,
}

impl Backend for Logged {
    forward_to_fake!(fake);
    fn model(&self) -> Result<netmatrix_model::Cluster, BackendError> {
        self.fake.model()
    }
    fn probe_rows(&self, rows: &[Row], parallel: usize, on_row: &(dyn Fn(usize) + Sync)) -> Vec<RowResult> {
        self.fake.probe_rows(rows, parallel, on_row)
    }
    fn begin_case(&mut self, case: Option<&str>) {
        self.log.lock().unwrap().push((self.shard, case.map(str::to_owned)));
    }
}

#[test]
fn cases_that_reach_every_shard_run_while_no_other_does() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut shards_: Vec<Logged> = (0..3)
        .map(|shard| {
            let mut fake = FakeBackend::new(3);
            // Slow enough that the shards' cases overlap.
            fake.batch_time = std::time::Duration::from_millis(2);
            Logged { fake, shard, log: log.clone() }
        })
        .collect();
    let mut backends: Vec<&mut dyn Backend> = shards_.iter_mut().map(|s| s as &mut dyn Backend).collect();
    let cases = all_cases();
    shards::run(&mut backends, &world(), &cases, &config(), &|_| {}).unwrap();
    let alone = |id: &str| id.starts_with("anp/") || id == "connectivity/pod-to-node-and-node-to-pod" || id == "services/host-network-client";
    // Which case each shard is in, replayed from the log.
    let mut running: BTreeMap<usize, String> = BTreeMap::new();
    let (mut overlapped, mut begun) = (false, 0);
    for (shard, case) in log.lock().unwrap().iter() {
        match case {
            Some(id) => {
                begun += 1;
                assert!(!alone(id) || running.is_empty(), "{id} began while {running:?} ran");
                assert!(!running.values().any(|r| alone(r)), "{id} began while {running:?} ran");
                overlapped |= !running.is_empty();
                running.insert(*shard, id.clone());
            }
            None => {
                running.remove(shard);
            }
        }
    }
    assert_eq!(begun, cases.len());
    assert!(overlapped, "other cases ran at the same time");
}

#[test]
fn a_shard_that_cannot_set_up_stops_the_run_with_its_error() {
    let mut fakes: Vec<FakeBackend> = (0..2).map(|_| FakeBackend::new(3)).collect();
    fakes[1].never_ready.insert("z/b".into());
    let mut backends: Vec<&mut dyn Backend> = fakes.iter_mut().map(|f| f as &mut dyn Backend).collect();
    let err = shards::run(&mut backends, &world(), &all_cases(), &config(), &|_| {}).unwrap_err();
    assert!(matches!(err, EngineError::Setup(_)) && err.to_string().contains("z/b"), "{err}");
    // A whole run probes at least 9 rows a case.
    let probed = fakes[0].batches.lock().unwrap().len();
    assert!(probed < 9 * 5, "the other shard stopped early ({probed} batches)");
}

#[test]
fn an_interrupt_stops_every_shard_after_its_case() {
    static CANCEL: AtomicBool = AtomicBool::new(false);
    let mut fakes: Vec<FakeBackend> = (0..2).map(|_| FakeBackend::new(3)).collect();
    let mut backends: Vec<&mut dyn Backend> = fakes.iter_mut().map(|f| f as &mut dyn Backend).collect();
    let config = ProbeConfig { cancel: Some(&CANCEL), ..config() };
    let cases = all_cases();
    let told = Mutex::new(0);
    let err = shards::run(&mut backends, &world(), &cases, &config, &|e| {
        if let Event::CaseFinished(_) = e {
            *told.lock().unwrap() += 1;
            CANCEL.store(true, Ordering::SeqCst);
        }
    })
    .unwrap_err();
    let told = told.into_inner().unwrap();
    let EngineError::Interrupted { done, total } = err else { panic!("{err}") };
    assert_eq!(total, cases.len());
    assert!(done >= told.max(1) && done < 4, "each shard stops after its case: {done} done, {told} told");
}

#[test]
fn a_panicking_shard_stops_the_others_and_the_panic_goes_on() {
    let mut fakes: Vec<FakeBackend> = (0..2).map(|_| FakeBackend::new(3)).collect();
    fakes[1].inject(Box::new(|_| panic!("the fake's dataplane broke")));
    let mut backends: Vec<&mut dyn Backend> = fakes.iter_mut().map(|f| f as &mut dyn Backend).collect();
    let cases = all_cases();
    let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| shards::run(&mut backends, &world(), &cases, &config(), &|_| {})));
    assert!(run.is_err(), "the panic reaches the caller, whose guards tear the worlds down");
    let probed = fakes[0].batches.lock().unwrap().len();
    assert!(probed < 9 * cases.len() / 2, "the other shard stopped early ({probed} batches)");
}
