use netmatrix_model::Protocol;
use netmatrix_report::tables::{Tables, write_case, write_summary};
use netmatrix_results::{CaseReport, CaseResult, Expected, Observed, StepReport};

use crate::fixture::{allow_all_step, cell, pods, report};

fn render(color: bool) -> String {
    let report = report();
    let mut out = Vec::new();
    for case in &report.cases {
        write_case(&mut out, case, color, Tables::All).unwrap();
    }
    write_summary(&mut out, &report, color).unwrap();
    String::from_utf8(out).unwrap()
}

fn case_of(steps: Vec<StepReport>) -> CaseReport {
    CaseReport {
        id: "netpol/wide".into(),
        labels: Default::default(),
        result: CaseReport::result_from_cells(&steps),
        duration_ms: 10,
        diagnosis: vec![],
        steps,
        findings: vec![],
        skip_reason: None,
        error: None,
        features: vec![],
    }
}

fn render_case(case: &CaseReport) -> String {
    let mut out = Vec::new();
    write_case(&mut out, case, false, Tables::All).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn plain() {
    insta::assert_snapshot!("plain", render(false));
}

#[test]
fn colored() {
    let text = render(true);
    assert!(text.contains("\x1b[31mX\x1b[0m"), "a wrong cell is red");
    assert!(text.contains("\x1b[33m?\x1b[0m"), "an inconclusive cell is yellow");
    assert!(text.contains("\x1b[35m!\x1b[0m"), "a probe error is magenta");
    assert!(text.contains("\x1b[32m.\x1b[0m"), "an expected cell is green");
    // Escapes spelled out, so the snapshot file stays readable.
    insta::assert_snapshot!("colored", text.replace('\x1b', "\\e"));
    // Colour changes nothing but the escapes.
    let stripped = text.replace("\x1b[31m", "").replace("\x1b[32m", "").replace("\x1b[33m", "").replace("\x1b[35m", "");
    assert_eq!(stripped.replace("\x1b[0m", ""), render(false));
}

#[test]
fn passing_three_by_three() {
    let text = render_case(&case_of(vec![allow_all_step()]));
    assert!(text.contains("80/TCP comparison:\n-   x/a x/b x/c\nx/a     .   .\nx/b .       .\nx/c .   .\n"), "{text}");
    assert!(text.contains("reachability: correct:6, incorrect:0, inconclusive:0, result=true\n"), "{text}");
    assert!(!text.contains("errors:"), "no error counts when there are none: {text}");
}

#[test]
fn nine_by_nine_fits_in_100_columns_with_names() {
    let pods = pods(&["x", "y", "z"], &["a", "b", "c"]);
    let mut cells = Vec::new();
    for src in &pods {
        for dst in &pods {
            cells.push(cell(src, dst, 80, Protocol::Tcp, Expected::Allow, Observed::Allow));
        }
    }
    let text = render_case(&case_of(vec![StepReport { name: "9x9".into(), tries: 1, cells }]));
    assert!(text.contains("\n-   x/a x/b x/c y/a y/b y/c z/a z/b z/c\n"), "{text}");
    assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
}

#[test]
fn long_target_names_become_numbered_columns_with_a_legend() {
    let pods = pods(&["netpol-x-7f3a9c", "netpol-y-7f3a9c", "netpol-z-7f3a9c"], &["server-a", "server-b", "server-c"]);
    let mut cells = Vec::new();
    for src in &pods {
        for dst in &pods {
            cells.push(cell(src, dst, 80, Protocol::Tcp, Expected::Allow, Observed::Deny));
        }
    }
    let case = case_of(vec![StepReport { name: "long names".into(), tries: 1, cells }]);
    assert_eq!(case.result, CaseResult::Fail);
    let text = render_case(&case);
    assert!(text.contains("80/TCP columns: 1=netpol-x-7f3a9c/server-a, 2=netpol-x-7f3a9c/server-b,"), "{text}");
    assert!(text.contains("\n-                        1 2 3 4 5 6 7 8 9\n"), "{text}");
    assert!(text.contains("\nnetpol-z-7f3a9c/server-c X X X X X X X X X\n"), "{text}");
    let tables: Vec<&str> = text.lines().filter(|l| !l.contains("columns:") && !l.starts_with("  ")).collect();
    assert!(tables.iter().all(|l| l.chars().count() <= 100), "{text}");
}

#[test]
fn a_long_list_of_wrong_cells_is_cut_after_twelve() {
    let pods = pods(&["x", "y", "z"], &["a", "b", "c"]);
    let cells: Vec<_> = pods
        .iter()
        .filter(|d| *d != &pods[0])
        .flat_map(|dst| [80, 81].map(|port| cell(&pods[0], dst, port, Protocol::Tcp, Expected::Allow, Observed::Deny)))
        .collect();
    assert_eq!(cells.len(), 16);
    let text = render_case(&case_of(vec![StepReport { name: "row".into(), tries: 2, cells }]));
    assert_eq!(text.lines().filter(|l| l.starts_with("  X ")).count(), 12, "{text}");
    assert!(text.contains("  ... and 4 more (the tables show them all, --json lists each)\n"), "{text}");
}

/// The run as `--tables failed` (the default) and `--tables none` print it.
fn render_with(tables: Tables) -> String {
    let report = report();
    let mut out = Vec::new();
    for case in &report.cases {
        write_case(&mut out, case, false, tables).unwrap();
    }
    write_summary(&mut out, &report, false).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn only_failing_steps_show_their_tables_by_default() {
    let text = render_with(Tables::Failed);
    insta::assert_snapshot!("failed_only", text);
    let all = render_with(Tables::All);
    assert!(text.lines().count() < all.lines().count(), "passing steps print no tables");
    let passing = report().cases.into_iter().find(|c| c.result == CaseResult::Pass).unwrap();
    let mut out = Vec::new();
    write_case(&mut out, &passing, false, Tables::Failed).unwrap();
    assert_eq!(String::from_utf8(out).unwrap().lines().count(), 1, "a passing case is one line");
}

#[test]
fn no_tables_is_one_line_per_case_and_the_summary() {
    let text = render_with(Tables::None);
    let report = report();
    let reasons = report.cases.iter().filter(|c| c.skip_reason.is_some() || c.error.is_some()).count();
    assert_eq!(text.lines().count(), report.cases.len() + reasons + 1, "{text}");
    assert!(!text.contains("comparison:"), "{text}");
}
