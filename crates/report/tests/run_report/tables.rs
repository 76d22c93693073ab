use netmatrix_model::{IpFamily, Protocol};
use netmatrix_report::features::write_features;
use netmatrix_report::tables::{Tables, write_case, write_summary};
use netmatrix_results::{CaseReport, CaseResult, Cell, Expected, Feature, Group, Observed, StepReport};

use crate::fixture::{allow_all_step, cell, pods, report};

fn render(color: bool) -> String {
    let report = report();
    let mut out = Vec::new();
    for case in &report.cases {
        write_case(&mut out, case, color, Tables::All).unwrap();
    }
    write_features(&mut out, &report, color, Tables::All).unwrap();
    write_summary(&mut out, &report, color).unwrap();
    String::from_utf8(out).unwrap()
}

fn case_of(steps: Vec<StepReport>) -> CaseReport {
    CaseReport { duration_ms: 10, ..CaseReport::of_steps("netpol/wide", steps) }
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
fn a_dual_stack_step_has_a_table_per_family_and_names_the_family_of_wrong_cells() {
    let mut cells = Vec::new();
    for family in IpFamily::BOTH {
        for (src, dst) in [("x/a", "x/b"), ("x/b", "x/a")] {
            // Only x/a -> x/b over IPv6 is wrong.
            let observed = if (src, family) == ("x/a", IpFamily::IPv6) { Observed::Deny } else { Observed::Allow };
            cells.push(Cell { family: Some(family), ..cell(src, dst, 80, Protocol::Tcp, Expected::Allow, observed) });
        }
    }
    let text = render_case(&case_of(vec![StepReport { name: "dual".into(), tries: 1, cells }]));
    assert!(text.contains("80/TCP IPv4 comparison:\n-   x/a x/b\nx/a     .\nx/b .\n80/TCP IPv6 expected:"), "{text}");
    assert!(text.contains("80/TCP IPv6 comparison:\n-   x/a x/b\nx/a     X\nx/b .\n"), "{text}");
    assert!(text.contains("X x/a -> x/b 80/TCP IPv6: expected allow, observed deny"), "{text}");
    assert!(text.contains("reachability: correct:3, incorrect:1,"), "one tally over both families: {text}");
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
    write_features(&mut out, &report, false, tables).unwrap();
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
    assert_eq!(text.lines().count(), report.cases.len() + reasons + 2, "the cases, the feature count and the summary: {text}");
    assert!(!text.contains("comparison:"), "{text}");
}

/// The feature lines of the run as `tables` prints them.
fn features_with(tables: Tables) -> String {
    let mut out = Vec::new();
    write_features(&mut out, &report(), false, tables).unwrap();
    String::from_utf8(out).unwrap()
}

/// The words of `feature`'s row in `text`.
fn row<'a>(text: &'a str, feature: &str) -> Vec<&'a str> {
    text.lines().find(|l| l.starts_with(&format!("{feature} "))).map(|l| l.split_whitespace().collect()).unwrap_or_default()
}

#[test]
fn features_count_line_then_failing_features_and_gaps() {
    let total = Feature::ALL.len();
    let none = features_with(Tables::None);
    assert_eq!(none, format!("features: exercised:8/{total}, passed:1, failed:7, incomplete:0\n"));

    let failed = features_with(Tables::Failed);
    assert!(failed.starts_with(&none), "{failed}");
    assert_eq!(failed.lines().filter(|l| l.split_whitespace().nth(1) == Some("fail")).count(), 7, "one row per failing feature: {failed}");
    assert_eq!(
        row(&failed, "netpol.pod-selector-empty"),
        ["netpol.pod-selector-empty", "fail", "2", "1", "1", "failed:", "netpol/deny-ingress-from-y"],
        "both cases counted, the failing one named: {failed}"
    );
    assert!(row(&failed, "netpol.any-peer").is_empty(), "a passing feature has no row: {failed}");
    assert!(failed.contains("\nnot exercised: netpol.pod-selector, "), "{failed}");
    let gaps: Vec<&str> = failed.lines().skip_while(|l| !l.starts_with("not exercised: ")).collect();
    assert!(gaps.len() > 1 && gaps.iter().all(|l| l.len() <= 100), "wrapped to 100 columns: {failed}");
    let gaps = gaps.concat();
    let admin = Feature::ALL.iter().filter(|f| f.group() == Group::AdminPolicy).count();
    assert_eq!(gaps.matches('.').count(), total - 8 - admin, "every feature no case exercised: {failed}");
    assert!(gaps.ends_with("service.backends-under-policy"), "{failed}");
    assert!(gaps.contains("every AdminPolicy feature,") && !gaps.contains("admin."), "a group no case touched is one item: {failed}");

    let all = features_with(Tables::All);
    assert_eq!(all.lines().count(), 2 + total, "the count, a header and every feature: {all}");
    assert_eq!(row(&all, "netpol.any-peer"), ["netpol.any-peer", "pass", "1", "1", "0"]);
    assert_eq!(row(&all, "admin.peer-nodes"), ["admin.peer-nodes", "not-exercised", "0", "0", "0"]);
    assert!(!all.contains("not exercised: "), "the table has every row: {all}");
}

#[test]
fn a_failed_feature_names_three_failed_cases_and_counts_the_rest() {
    let mut report = report();
    let failing = report.cases[0].clone();
    report.cases.extend((1..5).map(|n| CaseReport { id: format!("netpol/copy-{n}"), ..failing.clone() }));
    report.features = netmatrix_results::FeatureCoverage::of(&report.cases);
    let mut out = Vec::new();
    write_features(&mut out, &report, false, Tables::Failed).unwrap();
    let text = String::from_utf8(out).unwrap();
    let ingress = text.lines().find(|l| l.starts_with("netpol.ingress ")).unwrap();
    assert!(ingress.ends_with("failed: netpol/deny-ingress-from-y, netpol/copy-1, netpol/copy-2 and 2 more"), "{text}");
    assert_eq!(row(&text, "netpol.ingress")[..5], ["netpol.ingress", "fail", "6", "1", "5"]);
}
