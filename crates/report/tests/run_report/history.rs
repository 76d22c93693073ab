//! `report history` over three runs of the fixture with known flips.

use netmatrix_model::Protocol;
use netmatrix_report::history::{self, History, merge};
use netmatrix_results::{CaseReport, CaseResult, Expected, Observed, RunReport, Summary};

use crate::fixture::report;

/// Sets the cell `src -> dst port/protocol` of case `id` to what was expected (`right`) or the
/// opposite, and the case's result and the summary to match.
fn set(run: &mut RunReport, id: &str, src: &str, dst: &str, port: u16, protocol: Protocol, right: bool) {
    let case = run.cases.iter_mut().find(|c| c.id == id).unwrap();
    let cell =
        case.steps.iter_mut().flat_map(|s| &mut s.cells).find(|c| (c.src.as_str(), c.dst.as_str(), c.port, c.protocol) == (src, dst, port, protocol)).unwrap();
    let allowed = (cell.expected == Expected::Allow) == right;
    cell.observed = if allowed { Observed::Allow } else { Observed::Deny };
    case.result = CaseReport::result_from_cells(&case.steps);
    run.summary = Summary::of(&run.cases);
}

/// Oldest: the fixture (y/a -> x/b and x/c -> y/c on 80/TCP wrong, session-affinity in error).
/// Then: y/a -> x/b right, allow-all's x/a -> x/b wrong, session-affinity passes. Newest:
/// y/a -> x/b wrong again, x/c -> y/c right, allow-all passes, and a new case.
fn runs() -> Vec<(String, RunReport)> {
    let first = report();
    let mut second = report();
    second.started = "2025-05-02T10:00:00Z".into();
    set(&mut second, "netpol/deny-ingress-from-y", "y/a", "x/b", 80, Protocol::Tcp, true);
    set(&mut second, "netpol/allow-all", "x/a", "x/b", 80, Protocol::Tcp, false);
    let affinity = second.cases.iter_mut().find(|c| c.id == "services/session-affinity").unwrap();
    (affinity.result, affinity.error) = (CaseResult::Pass, None);
    second.summary = Summary::of(&second.cases);
    let mut third = second.clone();
    third.started = "2025-05-03T10:00:00Z".into();
    set(&mut third, "netpol/deny-ingress-from-y", "y/a", "x/b", 80, Protocol::Tcp, false);
    set(&mut third, "netpol/deny-ingress-from-y", "x/c", "y/c", 80, Protocol::Tcp, true);
    set(&mut third, "netpol/allow-all", "x/a", "x/b", 80, Protocol::Tcp, true);
    let new = CaseReport { id: "netpol/new".into(), ..third.cases[1].clone() };
    third.cases.push(new);
    third.summary = Summary::of(&third.cases);
    // Not in time order: the merge orders them.
    vec![("second.json".into(), second), ("first.json".into(), first), ("third.json".into(), third)]
}

fn text(history: &History) -> String {
    let mut out = Vec::new();
    history::text::write(&mut out, history).unwrap();
    String::from_utf8(out).unwrap()
}

/// The history column and the flag of the line ending in `name`.
fn row<'a>(text: &'a str, name: &str) -> (&'a str, bool) {
    let line = text.lines().find(|l| l.trim_end_matches("  changed").ends_with(name)).unwrap_or_else(|| panic!("no {name}: {text}"));
    (line.split_whitespace().next().unwrap(), line.ends_with("  changed"))
}

#[test]
fn three_runs_with_known_flips() {
    let history = merge(runs());
    let text = text(&history);
    insta::assert_snapshot!("history", text);
    assert!(text.starts_with("runs: 3, newest first\n  1. 2025-05-03T10:00:00Z lab, profile lab: cases:5,"), "{text}");
    assert_eq!(row(&text, "netpol/allow-all"), (".X.", true), "failed once in between");
    assert_eq!(row(&text, "netpol/deny-ingress-from-y"), ("XXX", false), "failed every time, if for other cells");
    assert_eq!(row(&text, "services/session-affinity"), ("..!", true), "an error, then passes");
    assert_eq!(row(&text, "netpol/sctp"), ("sss", false), "always skipped");
    assert_eq!(row(&text, "netpol/new"), (".--", false), "only in the newest run");
    assert_eq!(row(&text, "y/a -> x/b 80/TCP"), ("X.X", true));
    assert_eq!(row(&text, "x/c -> y/c 80/TCP"), (".XX", true));
    assert_eq!(row(&text, "y/a -> node:n2:30080 30080/TCP"), ("XXX", false));
    assert_eq!(row(&text, "x/a -> y/b 81/UDP"), ("???", false), "inconclusive every time");
    assert_eq!(row(&text, "x/a -> x/b 80/TCP"), (".X.", true));
    let allow_all = text.lines().find(|l| l.ends_with("netpol/allow-all  changed")).unwrap();
    assert_eq!(allow_all.split_whitespace().collect::<Vec<_>>()[1..6], ["3", "67%", "33%", "0%", "0%"], "{text}");
    let sctp = text.lines().find(|l| l.ends_with("netpol/sctp")).unwrap();
    assert_eq!(sctp.split_whitespace().collect::<Vec<_>>()[1..6], ["0", "-", "-", "-", "-"], "no rate without a run");
}

#[test]
fn html_and_json_carry_the_same_history() {
    let history = merge(runs());
    let mut html = Vec::new();
    history::html::write(&mut html, &history).unwrap();
    let html = String::from_utf8(html).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"), "self-contained");
    assert_eq!(html.matches("<tr class=\"case changed\">").count(), 2);
    assert_eq!(html.matches("<tr class=\"case").count(), 5);
    assert_eq!(html.matches("<tr class=\"cell changed\">").count(), history.cells.iter().filter(|c| c.changed).count());
    assert!(html.contains("<td class=\"run fail\">X</td><td class=\"run pass\">.</td><td class=\"run fail\">X</td>"), "y/a -> x/b");
    assert!(html.contains("<td class=\"name\">y/a -&gt; x/b 80/TCP</td>"), "escaped");

    let mut json = Vec::new();
    history::write_json(&mut json, &history).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(json["schema"], "netmatrix.history/v1");
    let started: Vec<&str> = json["runs"].as_array().unwrap().iter().map(|r| r["started"].as_str().unwrap()).collect();
    assert_eq!(started, ["2025-05-03T10:00:00Z", "2025-05-02T10:00:00Z", "2025-05-01T10:00:00Z"]);
    let case = json["cases"].as_array().unwrap().iter().find(|c| c["id"] == "netpol/allow-all").unwrap();
    assert_eq!(case["results"], serde_json::json!(["pass", "fail", "pass"]));
    assert_eq!((case["runs"].as_u64(), case["failed"].as_u64(), case["changed"].as_bool()), (Some(3), Some(1), Some(true)));
    let new = json["cases"].as_array().unwrap().iter().find(|c| c["id"] == "netpol/new").unwrap();
    assert_eq!(new["results"], serde_json::json!(["pass", null, null]));
    let cell = json["cells"].as_array().unwrap().iter().find(|c| c["src"] == "y/a" && c["dst"] == "x/b").unwrap();
    assert_eq!(cell["verdicts"], serde_json::json!(["wrong", "as-expected", "wrong"]));
    assert_eq!((cell["step"].as_u64(), cell["protocol"].as_str(), cell["check"].as_str()), (Some(1), Some("TCP"), Some("reach")));
}
