//! `--html`: one self-contained page (inline CSS and JS, nothing fetched) with the summary,
//! filters, the fault map, the feature coverage, a heat map per step and port/protocol coloured
//! by comparison, its rows and columns grouped by node, and each case's diagnosis.
//! Every report string goes through `Esc`: names, details and agent errors come from the cluster.

use std::fmt;
use std::io::{self, Write};

use crate::escape::Esc;
use crate::matrix::{Matrix, Order, Span, check_name, matrices};
use crate::tables::{describe_cell, duration, expected_name, not_as_expected, observed_name, result_name};
use netmatrix_results::{CaseReport, Cell, Check, Comparison, Feature, RunReport, StepReport, Tally};

/// Cells listed openly under a step; longer lists are folded.
const FOLD_AFTER: usize = 12;

const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { margin: 0 0 .2em; }
.meta { color: #555; }
table.summary td, table.summary th { padding: .2em .8em; text-align: right; }
.badge { font-size: .75em; padding: .1em .5em; border-radius: .8em; color: #fff; vertical-align: middle; }
.badge.pass { background: #2e7d32; } .badge.fail { background: #c62828; }
.badge.flaky { background: #f9a825; } .badge.error { background: #8e24aa; } .badge.skipped { background: #757575; }
.badge.incomplete { background: #f9a825; } .badge.not-exercised { background: #9e9e9e; }
table.features { border-collapse: collapse; } table.features td, table.features th { padding: .1em .6em; text-align: left; }
table.features tr.group th { padding-top: .6em; border-bottom: 1px solid #ddd; }
table.features tr.not-exercised { color: #888; } table.features td.count { text-align: right; }
table.features .badge { white-space: nowrap; }
section.case { border-top: 1px solid #ddd; margin-top: 1em; }
.matrices { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
figure { margin: 0; }
figcaption { font-weight: 600; margin-bottom: .3em; }
table.heat { border-collapse: collapse; font-family: ui-monospace, monospace; }
table.heat th { font-weight: normal; padding: 0 .3em; white-space: nowrap; }
table.heat thead th { writing-mode: vertical-rl; transform: rotate(180deg); text-align: left; }
table.heat td { width: 1.4em; height: 1.4em; text-align: center; border: 1px solid #fff; cursor: default; }
td.as-expected { background: #c8e6c9; } td.wrong { background: #e53935; color: #fff; font-weight: bold; }
td.inconclusive { background: #fdd835; } td.error { background: #ab47bc; color: #fff; }
td.undefined { background: #e0e0e0; color: #777; } td.missing { background: none; }
td.cell:hover, td.pair:hover { outline: 2px solid #222; }
#detail { position: fixed; right: 1em; bottom: 1em; max-width: 30em; white-space: pre-wrap; background: #fffde7;
  border: 1px solid #ccc; padding: .5em .8em; font-family: ui-monospace, monospace; font-size: 12px; }
#detail:empty { display: none; }
form.filters { display: flex; flex-wrap: wrap; gap: 1.2em; align-items: center; margin: .8em 0; }
table.heat th.group { font-weight: 600; background: #f5f5f5; }
table.heat thead tr.groups th { writing-mode: horizontal-tb; transform: none; text-align: center; }
table.heat tbody th.group { writing-mode: vertical-rl; transform: rotate(180deg); text-align: center; }
table.heat .start { border-left: 2px solid #444; } table.heat tr.start > * { border-top: 2px solid #444; }
"#;

/// Hovering a cell shows its details in a fixed panel (titles are slow and hard to copy).
/// The filters live in the URL fragment (`#failing&suite=netpol&feature=netpol.ipblock`), so a
/// filtered view is a link to share and Chromium's `--dump-dom` of such a URL shows it; the
/// controls only rewrite the fragment. A case that does not match gets the `hidden` attribute.
/// The controls' ids are not the fragment's words: opening `#failing` would scroll to them.
const SCRIPT: &str = r#"
const detail = document.getElementById('detail');
for (const cell of document.querySelectorAll('td[title]')) {
  cell.addEventListener('mouseenter', () => { detail.textContent = cell.title; });
  cell.addEventListener('mouseleave', () => { detail.textContent = ''; });
}
const cases = [...document.querySelectorAll('section.case')];
const failing = document.getElementById('filter-failing');
const suite = document.getElementById('filter-suite');
const feature = document.getElementById('filter-feature');
function applyFilters() {
  const want = new URLSearchParams(location.hash.slice(1));
  const onlyFailing = want.has('failing'), wantSuite = want.get('suite') || '', wantFeature = want.get('feature') || '';
  failing.checked = onlyFailing; suite.value = wantSuite; feature.value = wantFeature;
  let shown = 0;
  for (const c of cases) {
    const show = (!onlyFailing || ['fail', 'flaky', 'error'].includes(c.dataset.result))
      && (!wantSuite || c.dataset.suite === wantSuite)
      && (!wantFeature || c.dataset.features.split(' ').includes(wantFeature));
    c.hidden = !show;
    shown += show ? 1 : 0;
  }
  document.getElementById('shown').textContent = `${shown} of ${cases.length} cases shown`;
}
function writeFilters() {
  const parts = [];
  if (failing.checked) parts.push('failing');
  if (suite.value) parts.push('suite=' + encodeURIComponent(suite.value));
  if (feature.value) parts.push('feature=' + encodeURIComponent(feature.value));
  location.hash = parts.join('&');
}
for (const control of [failing, suite, feature]) control.addEventListener('change', writeFilters);
window.addEventListener('hashchange', applyFilters);
applyFilters();
"#;

pub fn write(out: &mut impl Write, report: &RunReport) -> io::Result<()> {
    writeln!(out, "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">")?;
    writeln!(out, "<title>netmatrix run {}</title>\n<style>{STYLE}</style>\n</head>\n<body>", Esc(&report.started))?;
    write_summary(out, report)?;
    write_fault_map(out, report)?;
    write_features(out, report)?;
    for case in &report.cases {
        write_case(out, case, &report.cluster.nodes)?;
    }
    writeln!(out, "<div id=\"detail\"></div>\n<script>{SCRIPT}</script>\n</body>\n</html>")
}

fn write_summary(out: &mut impl Write, report: &RunReport) -> io::Result<()> {
    writeln!(out, "<h1>netmatrix run</h1>")?;
    write!(
        out,
        "<p class=\"meta\">backend {} &middot; started {} &middot; {} &middot; nodes {}",
        Esc(&report.backend),
        Esc(&report.started),
        duration(report.duration_ms),
        Esc(&report.cluster.nodes.join(", "))
    )?;
    if !report.profile.is_empty() {
        write!(out, " &middot; profile {}", Esc(&report.profile))?;
    }
    if !report.cluster.server_version.is_empty() {
        write!(out, " &middot; server {}", Esc(&report.cluster.server_version))?;
    }
    writeln!(out, "</p>")?;
    let s = &report.summary;
    writeln!(
        out,
        "<table class=\"summary\"><tr><th>cases</th><th>passed</th><th>failed</th><th>flaky</th><th>errors</th>\
         <th>skipped</th><th>probes</th><th>wrong cells</th></tr>\n<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
         <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr></table>",
        s.cases, s.passed, s.failed, s.flaky, s.errors, s.skipped, s.probes, s.wrong
    )?;
    write_filters(out, report)
}

/// Which cases show: failing (or flaky, or in error) only, one suite, one feature; the script
/// applies them.
fn write_filters(out: &mut impl Write, report: &RunReport) -> io::Result<()> {
    let mut suites: Vec<&str> = Vec::new();
    for case in &report.cases {
        if !suites.contains(&suite(case)) {
            suites.push(suite(case));
        }
    }
    // In the list's order; ids the list does not know (a newer netmatrix's) after, by name.
    let mut features: Vec<&str> = report.cases.iter().flat_map(|c| &c.features).map(String::as_str).collect();
    features.sort_by_key(|id| (Feature::ALL.iter().position(|f| f.id() == *id).unwrap_or(Feature::ALL.len()), *id));
    features.dedup();
    writeln!(out, "<form class=\"filters\"><label><input type=\"checkbox\" id=\"filter-failing\"> failing only</label>")?;
    for (id, all, options) in [("suite", "every suite", suites), ("feature", "every feature", features)] {
        write!(out, "<label>{id} <select id=\"filter-{id}\"><option value=\"\">{all}</option>")?;
        for option in options {
            write!(out, "<option>{}</option>", Esc(option))?;
        }
        writeln!(out, "</select></label>")?;
    }
    let cases = report.cases.len();
    writeln!(out, "<span id=\"shown\">{cases} of {cases} cases shown</span></form>")
}

/// `netpol` of `netpol/deny-all`.
fn suite(case: &CaseReport) -> &str {
    case.id.split_once('/').map_or(case.id.as_str(), |(suite, _)| suite)
}

/// The wrong cells of the whole run by source node and target node, all protocols and each:
/// a broken node, node pair or overlay stands out as a row, a cell or everything off the
/// diagonal, where the per-step matrices scatter it over pods.
fn write_fault_map(out: &mut impl Write, report: &RunReport) -> io::Result<()> {
    use std::collections::BTreeMap;
    // (protocol or "all", source node, target node) -> (wrong, probed).
    let mut counts: BTreeMap<(String, String, String), (usize, usize)> = BTreeMap::new();
    let cells = report.cases.iter().flat_map(|c| &c.steps).flat_map(|s| &s.cells).filter(|c| c.comparison() != Comparison::Undefined);
    for cell in cells {
        let (Some(src), Some(dst)) = (&cell.src_node, &cell.dst_node) else { continue };
        for protocol in ["all", cell.protocol.as_str()] {
            let entry = counts.entry((protocol.to_owned(), src.clone(), dst.clone())).or_default();
            entry.0 += usize::from(cell.comparison() == Comparison::Wrong);
            entry.1 += 1;
        }
    }
    if counts.is_empty() {
        return Ok(());
    }
    let nodes = &report.cluster.nodes;
    writeln!(
        out,
        "<section class=\"fault-map\"><h2>fault map</h2><p class=\"meta\">wrong cells of the whole run, source node (rows) by target node (columns)</p><div class=\"matrices\">"
    )?;
    let mut protocols: Vec<&str> = counts.keys().map(|(p, _, _)| p.as_str()).collect();
    protocols.dedup();
    for protocol in protocols {
        writeln!(
            out,
            "<figure class=\"fault-map\" data-protocol=\"{}\"><figcaption>{}</figcaption><table class=\"heat\"><thead><tr><th></th>",
            Esc(protocol),
            Esc(protocol)
        )?;
        for node in nodes {
            write!(out, "<th>{}</th>", Esc(node))?;
        }
        writeln!(out, "</tr></thead><tbody>")?;
        for src in nodes {
            write!(out, "<tr><th>{}</th>", Esc(src))?;
            for dst in nodes {
                match counts.get(&(protocol.to_owned(), src.clone(), dst.clone())) {
                    Some(&(wrong, probed)) => write!(
                        out,
                        "<td class=\"pair {}\" data-src=\"{}\" data-dst=\"{}\" data-wrong=\"{wrong}\" title=\"{}\">{}</td>",
                        if wrong > 0 { "wrong" } else { "as-expected" },
                        Esc(src),
                        Esc(dst),
                        Esc(&format!("{src} -> {dst} {protocol}: {wrong} of {probed} cells wrong")),
                        if wrong > 0 { wrong.to_string() } else { ".".into() }
                    )?,
                    None => write!(out, "<td class=\"missing\"></td>")?,
                }
            }
            writeln!(out, "</tr>")?;
        }
        writeln!(out, "</tbody></table></figure>")?;
    }
    writeln!(out, "</div></section>")
}

/// Every feature of the list by group: its result, the counts, what exercises it and the cases
/// that did; the features no case exercised stay in the table, greyed, as the run's gaps.
fn write_features(out: &mut impl Write, report: &RunReport) -> io::Result<()> {
    // Reports written before feature coverage have none.
    if report.features.is_empty() {
        return Ok(());
    }
    let exercised = report.features.iter().filter(|f| !f.cases.is_empty()).count();
    writeln!(
        out,
        "<section class=\"features\"><h2>feature coverage</h2><p class=\"meta\">{exercised} of {} features exercised by the objects the cases applied</p>",
        report.features.len()
    )?;
    writeln!(
        out,
        "<table class=\"features\"><thead><tr><th>feature</th><th>result</th><th>cases</th><th>passed</th><th>failed</th>\
         <th>exercised by</th><th>cases that exercised it</th></tr></thead><tbody>"
    )?;
    let mut group = None;
    for f in &report.features {
        if group != Some(f.group) {
            writeln!(out, "<tr class=\"group\"><th colspan=\"7\">{}</th></tr>", Esc(f.group.as_str()))?;
            group = Some(f.group);
        }
        let meaning = Feature::ALL.iter().find(|known| known.id() == f.feature).map_or("", |known| known.meaning());
        let result = f.result.as_str();
        writeln!(
            out,
            "<tr class=\"feature {result}\"><td>{}</td><td><span class=\"badge {result}\">{result}</span></td>\
             <td class=\"count\">{}</td><td class=\"count\">{}</td><td class=\"count\">{}</td><td>{}</td><td>{}</td></tr>",
            FeatureName(&f.feature, !f.cases.is_empty()),
            f.cases.len(),
            f.passed,
            f.failed,
            Esc(meaning),
            Esc(&f.cases.join(", "))
        )?;
    }
    writeln!(out, "</tbody></table></section>")
}

fn write_case(out: &mut impl Write, case: &CaseReport, nodes: &[String]) -> io::Result<()> {
    let result = result_name(case.result);
    writeln!(
        out,
        "<section class=\"case {result}\" data-result=\"{result}\" data-suite=\"{}\" data-features=\"{}\">",
        Esc(suite(case)),
        Esc(&case.features.join(" "))
    )?;
    writeln!(out, "<h2>{} <span class=\"badge {result}\">{result}</span></h2>", Esc(&case.id))?;
    write!(out, "<p class=\"meta\">{}", duration(case.duration_ms))?;
    if !case.labels.is_empty() {
        let labels: Vec<String> = case.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        write!(out, " &middot; {}", Esc(&labels.join(", ")))?;
    }
    writeln!(out, "</p>")?;
    if let Some(reason) = &case.skip_reason {
        writeln!(out, "<p class=\"skipped\">skipped: {}</p>", Esc(reason))?;
    }
    if let Some(error) = &case.error {
        writeln!(out, "<p class=\"error\">error: {}</p>", Esc(error))?;
    }
    for (index, step) in case.steps.iter().enumerate() {
        write_step(out, step, index + 1, case.steps.len(), nodes)?;
    }
    if !case.diagnosis.is_empty() {
        writeln!(out, "<h3>diagnosis</h3>\n<ul class=\"diagnosis\">")?;
        for line in &case.diagnosis {
            writeln!(out, "<li>{}</li>", Esc(line))?;
        }
        writeln!(out, "</ul>")?;
    }
    writeln!(out, "</section>")
}

fn write_step(out: &mut impl Write, step: &StepReport, number: usize, steps: usize, nodes: &[String]) -> io::Result<()> {
    writeln!(out, "<h3>step {number}/{steps}: {} (tries: {})</h3>", Esc(&step.name), step.tries)?;
    writeln!(out, "<div class=\"matrices\">")?;
    for matrix in matrices(step, Order::Node(nodes)) {
        write_matrix(out, &matrix)?;
    }
    writeln!(out, "</div>")?;
    let t = Tally::of(&step.cells);
    writeln!(
        out,
        "<p class=\"tally\">reachability: correct:{}, incorrect:{}, inconclusive:{}, result={}, errors:{}, undefined:{}</p>",
        t.correct,
        t.incorrect,
        t.inconclusive,
        t.ok(),
        t.errors,
        t.undefined
    )?;
    let problems = not_as_expected(step);
    if !problems.is_empty() {
        // A long list folds away under its count: the matrices already show where the cells are.
        let fold = problems.len() > FOLD_AFTER;
        if fold {
            writeln!(out, "<details><summary>{} cells not as expected</summary>", problems.len())?;
        }
        writeln!(out, "<ul class=\"problems\">")?;
        for cell in problems {
            writeln!(out, "<li><code>{}</code> {}</li>", cell.comparison().symbol(), Esc(&describe_cell(cell)))?;
        }
        writeln!(out, "</ul>")?;
        if fold {
            writeln!(out, "</details>")?;
        }
    }
    Ok(())
}

/// A heat map in node order: a heading row of node names over the columns and a heading column
/// of node names before the rows, and a rule (`start`) where the node changes, so a node's
/// fault shows as a block.
fn write_matrix(out: &mut impl Write, matrix: &Matrix) -> io::Result<()> {
    writeln!(out, "<figure class=\"matrix\"><figcaption>{}</figcaption>", Esc(&matrix.title))?;
    // The corner spans the row headings: the node names, if any, and the sources.
    let corner = if matrix.row_groups.is_empty() { "<th></th>" } else { "<th></th><th></th>" };
    write!(out, "<table class=\"heat\"><thead>")?;
    if !matrix.column_groups.is_empty() {
        write!(out, "<tr class=\"groups\">{corner}")?;
        for (index, span) in matrix.column_groups.iter().enumerate() {
            let class = if index > 0 { "group start" } else { "group" };
            write!(out, "<th class=\"{class}\" colspan=\"{}\">{}</th>", span.len, Esc(&span.label))?;
        }
        writeln!(out, "</tr>")?;
    }
    write!(out, "<tr>{corner}")?;
    let column_starts = starts(&matrix.column_groups);
    for (index, column) in matrix.columns.iter().enumerate() {
        let class = if index > 0 && column_starts.contains(&index) { " class=\"start\"" } else { "" };
        write!(out, "<th scope=\"col\"{class}>{}</th>", Esc(column))?;
    }
    writeln!(out, "</tr></thead><tbody>")?;
    let row_starts = starts(&matrix.row_groups);
    for (row, source) in matrix.rows.iter().enumerate() {
        match row_starts.iter().position(|at| *at == row) {
            Some(group) => {
                let class = if group > 0 { " class=\"start\"" } else { "" };
                let span = &matrix.row_groups[group];
                write!(out, "<tr{class}><th class=\"group\" rowspan=\"{}\">{}</th>", span.len, Esc(&span.label))?;
            }
            None => write!(out, "<tr>")?,
        }
        write!(out, "<th scope=\"row\">{}</th>", Esc(source))?;
        for column in 0..matrix.columns.len() {
            let start = if column > 0 && column_starts.contains(&column) { " start" } else { "" };
            match matrix.cells.get(&(row, column)) {
                Some(cell) => {
                    let comparison = cell.comparison();
                    write!(
                        out,
                        "<td class=\"cell {}{start}\" data-src-node=\"{}\" data-dst-node=\"{}\" title=\"{}\">{}</td>",
                        comparison_class(comparison),
                        Esc(cell.src_node.as_deref().unwrap_or("")),
                        Esc(cell.dst_node.as_deref().unwrap_or("")),
                        Esc(&cell_title(cell)),
                        comparison.symbol()
                    )?;
                }
                None => write!(out, "<td class=\"missing{start}\"></td>")?,
            }
        }
        writeln!(out, "</tr>")?;
    }
    writeln!(out, "</tbody></table></figure>")
}

/// The index at which each group starts; a rule goes before each but the first.
fn starts(spans: &[Span]) -> Vec<usize> {
    spans.iter().scan(0, |at, span| Some(std::mem::replace(at, *at + span.len))).collect()
}

/// Everything known about one cell, one fact a line.
fn cell_title(cell: &Cell) -> String {
    let mut lines = vec![format!("{} -> {} {}/{}", cell.src, cell.dst, cell.port, cell.protocol)];
    if cell.check != Check::Reach {
        lines.push(format!("check: {}", check_name(cell.check)));
    }
    lines.push(format!("target: {}", cell.target.as_str()));
    if let Some(service) = &cell.service {
        lines.push(format!("service: {service}{}", if cell.hairpin { " (hairpin)" } else { "" }));
    }
    if let (Some(from), Some(to)) = (&cell.src_node, &cell.dst_node) {
        lines.push(format!("nodes: {from} -> {to}"));
    }
    lines.push(format!("expected: {}", expected_name(cell.expected)));
    lines.push(format!("observed: {}", observed_name(cell.observed)));
    let history: Vec<&str> = cell.history.iter().map(|o| observed_name(*o)).collect();
    lines.push(format!("tries: {} ({})", cell.tries, history.join(" ")));
    if let Some(latency) = cell.latency_ms {
        lines.push(format!("latency: {latency:.2} ms"));
    }
    if let Some(server) = &cell.answered_by {
        lines.push(format!("answered by: {server}"));
    }
    if let Some(detail) = &cell.detail {
        lines.push(format!("detail: {detail}"));
    }
    if let Some(why) = &cell.explanation {
        lines.push(format!("why expected: {why}"));
    }
    lines.join("\n")
}

fn comparison_class(comparison: Comparison) -> &'static str {
    match comparison {
        Comparison::AsExpected => "as-expected",
        Comparison::Wrong => "wrong",
        Comparison::Inconclusive => "inconclusive",
        Comparison::Error => "error",
        Comparison::Undefined => "undefined",
    }
}

/// A feature's id; a link that filters the cases to those exercising it, where any did.
struct FeatureName<'a>(&'a str, bool);

impl fmt::Display for FeatureName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FeatureName(id, true) => write!(f, "<a href=\"#feature={}\"><code>{}</code></a>", Esc(id), Esc(id)),
            FeatureName(id, false) => write!(f, "<code>{}</code>", Esc(id)),
        }
    }
}
