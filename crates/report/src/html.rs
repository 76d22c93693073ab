//! `--html`: one self-contained page (inline CSS and JS, nothing fetched) with the summary,
//! the feature coverage, a heat map per step and port/protocol coloured by comparison, and each
//! case's diagnosis.
//! Every report string goes through `Esc`: names, details and agent errors come from the cluster.

use std::fmt;
use std::io::{self, Write};

use crate::matrix::{Matrix, check_name, matrices};
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
body.problems-only section.case.pass { display: none; }
"#;

/// Hovering a cell shows its details in a fixed panel (titles are slow and hard to copy);
/// the checkbox hides passing cases.
const SCRIPT: &str = r#"
const detail = document.getElementById('detail');
for (const cell of document.querySelectorAll('td[title]')) {
  cell.addEventListener('mouseenter', () => { detail.textContent = cell.title; });
  cell.addEventListener('mouseleave', () => { detail.textContent = ''; });
}
document.getElementById('problems-only').addEventListener('change', (e) => {
  document.body.classList.toggle('problems-only', e.target.checked);
});
"#;

pub fn write(out: &mut impl Write, report: &RunReport) -> io::Result<()> {
    writeln!(out, "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">")?;
    writeln!(out, "<title>netmatrix run {}</title>\n<style>{STYLE}</style>\n</head>\n<body>", Esc(&report.started))?;
    write_summary(out, report)?;
    write_fault_map(out, report)?;
    write_features(out, report)?;
    for case in &report.cases {
        write_case(out, case)?;
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
    writeln!(out, "<p><label><input type=\"checkbox\" id=\"problems-only\"> hide passing cases</label></p>")
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
            "<tr class=\"feature {result}\"><td><code>{}</code></td><td><span class=\"badge {result}\">{result}</span></td>\
             <td class=\"count\">{}</td><td class=\"count\">{}</td><td class=\"count\">{}</td><td>{}</td><td>{}</td></tr>",
            Esc(&f.feature),
            f.cases.len(),
            f.passed,
            f.failed,
            Esc(meaning),
            Esc(&f.cases.join(", "))
        )?;
    }
    writeln!(out, "</tbody></table></section>")
}

fn write_case(out: &mut impl Write, case: &CaseReport) -> io::Result<()> {
    let result = result_name(case.result);
    writeln!(out, "<section class=\"case {result}\">")?;
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
        write_step(out, step, index + 1, case.steps.len())?;
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

fn write_step(out: &mut impl Write, step: &StepReport, number: usize, steps: usize) -> io::Result<()> {
    writeln!(out, "<h3>step {number}/{steps}: {} (tries: {})</h3>", Esc(&step.name), step.tries)?;
    writeln!(out, "<div class=\"matrices\">")?;
    for matrix in matrices(step) {
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

fn write_matrix(out: &mut impl Write, matrix: &Matrix) -> io::Result<()> {
    writeln!(out, "<figure class=\"matrix\"><figcaption>{}</figcaption>", Esc(&matrix.title))?;
    write!(out, "<table class=\"heat\"><thead><tr><th></th>")?;
    for column in &matrix.columns {
        write!(out, "<th scope=\"col\">{}</th>", Esc(column))?;
    }
    writeln!(out, "</tr></thead><tbody>")?;
    for (row, source) in matrix.rows.iter().enumerate() {
        write!(out, "<tr><th scope=\"row\">{}</th>", Esc(source))?;
        for column in 0..matrix.columns.len() {
            match matrix.cells.get(&(row, column)) {
                Some(cell) => {
                    let comparison = cell.comparison();
                    write!(out, "<td class=\"cell {}\" title=\"{}\">{}</td>", comparison_class(comparison), Esc(&cell_title(cell)), comparison.symbol())?;
                }
                None => write!(out, "<td class=\"missing\"></td>")?,
            }
        }
        writeln!(out, "</tr>")?;
    }
    writeln!(out, "</tbody></table></figure>")
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

/// HTML-escapes text for element content and double- or single-quoted attributes.
struct Esc<'a>(&'a str);

impl fmt::Display for Esc<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}
