//! `netmatrix churn`'s report (`netmatrix.churn/v1`) for a terminal, as JSON, and as one
//! self-contained HTML page (inline CSS and SVG, no script, nothing fetched) that plots each
//! pattern's latencies over the run and as a histogram. In the page every string from the
//! cluster (names, descriptions, times) goes through `Esc`.

use std::io::{self, Write};

use netmatrix_results::churn::{CellRef, ChangeReport, ChurnReport, Direction, LatencySummary, PatternReport};

use crate::escape::Esc;
use crate::tables::duration;

/// Cells listed per change and kind of problem in the text, and openly in the page; the text
/// counts the rest, the page folds them.
const FOLD_AFTER: usize = 10;
/// The text's tables fit this many columns: the change column wraps.
const TEXT_WIDTH: usize = 120;
/// The change column is never narrower than this.
const MIN_WRAP: usize = 24;
/// Node names longer than this together are counted, not listed, in the header.
const NODE_LIST_WIDTH: usize = 60;

// ---------------------------------------------------------------------------------------------
// Shared wording.

/// The header, one fact a line: where and when, the world churned, how it was probed, what
/// latency means.
fn header_lines(report: &ChurnReport) -> Vec<String> {
    let nodes = &report.cluster.nodes;
    let node_count = if nodes.is_empty() { report.shape.nodes } else { nodes.len() };
    let mut first = format!("netmatrix churn on {}: {}", report.backend, count(node_count, "node", "nodes"));
    let names = nodes.join(", ");
    if !nodes.is_empty() && names.chars().count() <= NODE_LIST_WIDTH {
        first.push_str(&format!(" ({names})"));
    }
    if !report.cluster.server_version.is_empty() {
        first.push_str(&format!(", server {}", report.cluster.server_version));
    }
    first.push_str(&format!("; started {}, took {}", report.started, duration(report.duration_ms)));
    let s = &report.shape;
    let shape = format!(
        "shape: {} x {}, {}, {}; {} per pattern, {} per change; seed {}",
        count(s.namespaces, "namespace", "namespaces"),
        count(s.pods_per_namespace, "pod", "pods"),
        count(s.policies, "policy", "policies"),
        count(s.services, "service", "services"),
        count(s.changes, "change", "changes"),
        count(s.controls, "control cell", "control cells"),
        report.seed
    );
    let probing = format!(
        "probed every {} ms after each change (a slower round starts the next at once), deadline {} ms",
        number(report.interval_ms),
        report.deadline_ms
    );
    let latency = "latency: from the apply's return to the probe since which every changed cell has been right".to_string();
    let bound = "  the true latency lies after 'last X', the last probe that saw one wrong (never: right at the first)".to_string();
    vec![first, shape, probing, latency, bound]
}

/// `1 node`, `3 nodes`.
fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `10`, `2.5`, `0.125`: up to three decimals, no trailing zeros.
fn number(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Milliseconds with one decimal, `-` for none.
fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.1}"))
}

/// A latency: milliseconds with one decimal or `not converged`.
fn latency(value: Option<f64>) -> String {
    value.map_or_else(|| "not converged".into(), |v| format!("{v:.1}"))
}

/// The change's latency over the cells of one direction in the text's narrow column: `-` when it
/// changed none, `>5000` (the deadline) when they did not converge.
fn direction_latency(change: &ChangeReport, direction: Direction, deadline_ms: u64) -> String {
    match change.latency_by_direction.get(&direction) {
        None => "-".into(),
        Some(None) => format!(">{deadline_ms}"),
        Some(Some(v)) => format!("{v:.1}"),
    }
}

/// The families of a pattern's per-family latencies (`IPv4`, `IPv6`): none on single-family
/// runs, whose tables stay as they were.
fn families(pattern: &PatternReport) -> Vec<&str> {
    let families: std::collections::BTreeSet<&str> = pattern.changes.iter().flat_map(|c| c.latency_by_family.keys()).map(String::as_str).collect();
    families.into_iter().collect()
}

/// The change's latency over its cells of one family, as [`direction_latency`] has it.
fn family_latency(change: &ChangeReport, family: &str, deadline_ms: u64) -> String {
    match change.latency_by_family.get(family) {
        None => "-".into(),
        Some(None) => format!(">{deadline_ms}"),
        Some(Some(v)) => format!("{v:.1}"),
    }
}

/// `+3 -2`: the cells that went deny to allow, allow to deny.
fn cells(change: &ChangeReport) -> String {
    let of = |d| change.cells.get(&d).copied().unwrap_or(0);
    format!("+{} -{}", of(Direction::DenyToAllow), of(Direction::AllowToDeny))
}

/// The node whose cells converged last: the first not converged, else the one of the largest
/// latency (the first of equals).
fn slowest_node(change: &ChangeReport) -> Option<(&str, Option<f64>)> {
    let by_node = &change.latency_by_node;
    if let Some((node, _)) = by_node.iter().find(|(_, l)| l.is_none()) {
        return Some((node, None));
    }
    by_node
        .iter()
        .filter_map(|(node, l)| l.map(|l| (node.as_str(), l)))
        .fold(None, |slowest: Option<(&str, f64)>, (node, l)| match slowest {
            Some((_, max)) if max >= l => slowest,
            _ => Some((node, l)),
        })
        .map(|(node, l)| (node, Some(l)))
}

/// `x/a -> y/b 80/TCP IPv6 expected allow (seen wrong: 2 timeout, 1 refused)`, the family
/// where the change's cells had two.
fn cell_name(cell: &CellRef) -> String {
    let family = cell.family.as_ref().map_or_else(String::new, |f| format!(" {f}"));
    let mut name = format!("{} -> {} {}/{}{family} expected {}", cell.src, cell.dst, cell.port, cell.protocol, cell.expected);
    if !cell.wrong_outcomes.is_empty() {
        let outcomes: Vec<String> = cell.wrong_outcomes.iter().map(|(outcome, n)| format!("{n} {outcome}")).collect();
        name += &format!(" (seen wrong: {})", outcomes.join(", "));
    }
    name
}

/// A change's problems by kind: the text's flag letter, the page's name and class, the cells.
fn problems(change: &ChangeReport) -> [(char, &'static str, &'static str, &[CellRef]); 3] {
    [
        ('N', "not converged", "not-converged", &change.not_converged),
        ('R', "regressed", "regressed", &change.regressed),
        ('C', "controls changed", "controls", &change.controls_changed),
    ]
}

/// Not converged, though no cell is listed as such (the latency says so).
fn unlisted_not_converged(change: &ChangeReport) -> bool {
    change.latency_ms.is_none() && change.not_converged.is_empty() && !changed_nothing(change)
}

/// A change whose cells all kept their verdicts: nothing to converge.
fn changed_nothing(change: &ChangeReport) -> bool {
    change.cells.values().all(|&n| n == 0)
}

/// The last moment a changed cell was seen wrong: `never` when the first probes found them
/// right (the latency is then the measurement's floor), `-` without changed cells.
fn wrong_until(change: &ChangeReport) -> String {
    match change.last_wrong_ms {
        _ if changed_nothing(change) => "-".into(),
        Some(v) => format!("{v:.1}"),
        None => "never".into(),
    }
}

/// The change's latency: `-` when it changed no cell.
fn change_latency(change: &ChangeReport) -> String {
    if changed_nothing(change) { "-".into() } else { latency(change.latency_ms) }
}

fn summary_label(summary: &LatencySummary) -> &str {
    match (summary.direction, &summary.family) {
        (Some(d), _) => d.as_str(),
        (None, Some(family)) => family,
        (None, None) => "all",
    }
}

/// `20 changes, 12 converged` with the changes that changed no cell said apart.
fn pattern_counts(pattern: &PatternReport) -> String {
    let idle = pattern.changes.iter().filter(|c| changed_nothing(c)).count();
    let changed = count(pattern.changes.len(), "change", "changes");
    let idle = if idle > 0 { format!(" ({idle} changed no cell)") } else { String::new() };
    format!("{changed}{idle}, {} converged", converged(pattern))
}

fn converged(pattern: &PatternReport) -> usize {
    pattern.changes.iter().filter(|c| c.latency_ms.is_some()).count()
}

// ---------------------------------------------------------------------------------------------
// Text.

/// The header, then per pattern its summary by direction, a line per change and the cells that
/// did not converge, regressed, or were controls that changed.
pub fn text(report: &ChurnReport, out: &mut impl Write) -> io::Result<()> {
    for line in header_lines(report) {
        writeln!(out, "{line}")?;
    }
    writeln!(out, "cells: +deny-to-allow -allow-to-deny; latencies in ms, >{} when not converged by the deadline", report.deadline_ms)?;
    writeln!(out, "flags: N cells not converged, R cells regressed, C control cells changed, E probes that failed to run")?;
    for pattern in &report.patterns {
        writeln!(out)?;
        write_pattern_text(out, pattern, report.deadline_ms)?;
    }
    Ok(())
}

/// A setup whose cells never converged: the cells, and that no change was made.
fn failed_setup(pattern: &PatternReport) -> Option<&ChangeReport> {
    pattern.setup.as_ref().filter(|s| !s.not_converged.is_empty())
}

fn write_pattern_text(out: &mut impl Write, pattern: &PatternReport, deadline_ms: u64) -> io::Result<()> {
    if let Some(setup) = failed_setup(pattern) {
        writeln!(out, "pattern {}: its setup ({}) did not converge within {deadline_ms} ms: no change was made", pattern.pattern, setup.description)?;
        writeln!(out, "setup not converged: {}", count(setup.not_converged.len(), "cell", "cells"))?;
        for cell in setup.not_converged.iter().take(FOLD_AFTER) {
            writeln!(out, "  {}", cell_name(cell))?;
        }
        if setup.not_converged.len() > FOLD_AFTER {
            writeln!(out, "  ... and {} more (--json and --html list each)", setup.not_converged.len() - FOLD_AFTER)?;
        }
        return Ok(());
    }
    writeln!(out, "pattern {}: {}", pattern.pattern, pattern_counts(pattern))?;
    let columns = [
        ("latency ms", Align::Left),
        ("changes", Align::Right),
        ("converged", Align::Right),
        ("p50", Align::Right),
        ("p90", Align::Right),
        ("p99", Align::Right),
        ("max", Align::Right),
    ];
    let rows: Vec<Vec<String>> = pattern
        .summary
        .iter()
        .map(|s| vec![summary_label(s).into(), s.changes.to_string(), s.converged.to_string(), ms(s.p50_ms), ms(s.p90_ms), ms(s.p99_ms), ms(s.max_ms)])
        .collect();
    write_text_table(out, &columns, &rows, None)?;
    if pattern.changes.is_empty() {
        return Ok(());
    }

    writeln!(out)?;
    let families = families(pattern);
    let mut columns = vec![
        ("#", Align::Right),
        ("change", Align::Left),
        ("cells", Align::Right),
        ("latency", Align::Right),
        ("last X", Align::Right),
        ("to allow", Align::Right),
        ("to deny", Align::Right),
    ];
    columns.extend(families.iter().map(|&f| (f, Align::Right)));
    // Two family columns would push the table past 120 columns: the oracle's time per change
    // then stays in the JSON and HTML reports only.
    let oracle_column = families.is_empty();
    columns.extend([("slowest", Align::Left), ("rounds", Align::Right), ("round", Align::Right)]);
    columns.extend(oracle_column.then_some(("oracle µs", Align::Right)));
    columns.push(("flags", Align::Left));
    let rows: Vec<Vec<String>> = pattern
        .changes
        .iter()
        .map(|c| {
            let mut row = vec![
                c.index.to_string(),
                c.description.clone(),
                cells(c),
                change_latency(c),
                wrong_until(c),
                direction_latency(c, Direction::DenyToAllow, deadline_ms),
                direction_latency(c, Direction::AllowToDeny, deadline_ms),
            ];
            row.extend(families.iter().map(|f| family_latency(c, f, deadline_ms)));
            row.extend([slowest_node(c).map_or_else(|| "-".into(), |(node, _)| node.to_string()), c.rounds.to_string(), format!("{:.1}", c.round_ms)]);
            row.extend(oracle_column.then(|| format!("{:.1}", c.oracle_us)));
            row.push(flags(c));
            row
        })
        .collect();
    write_text_table(out, &columns, &rows, Some(1))?;

    for change in &pattern.changes {
        for (_, what, _, listed) in problems(change) {
            if listed.is_empty() {
                continue;
            }
            writeln!(out, "#{} {what}: {}", change.index, count(listed.len(), "cell", "cells"))?;
            for cell in listed.iter().take(FOLD_AFTER) {
                writeln!(out, "  {}", cell_name(cell))?;
            }
            if listed.len() > FOLD_AFTER {
                writeln!(out, "  ... and {} more (--json and --html list each)", listed.len() - FOLD_AFTER)?;
            }
        }
    }
    Ok(())
}

/// `N12 R1`: a letter per kind of problem and its cells.
fn flags(change: &ChangeReport) -> String {
    let mut flags: Vec<String> =
        problems(change).iter().filter(|(_, _, _, cells)| !cells.is_empty()).map(|(flag, _, _, cells)| format!("{flag}{}", cells.len())).collect();
    if unlisted_not_converged(change) {
        flags.insert(0, "N".into());
    }
    if change.probe_errors > 0 {
        flags.push(format!("E{}", change.probe_errors));
    }
    flags.join(" ")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// Columns two spaces apart, as wide as their widest cell; column `wrap` wraps at word
/// boundaries when the lines would be wider than `TEXT_WIDTH`.
fn write_text_table(out: &mut impl Write, columns: &[(&str, Align)], rows: &[Vec<String>], wrap: Option<usize>) -> io::Result<()> {
    let mut widths: Vec<usize> = columns.iter().map(|(header, _)| header.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    if let Some(at) = wrap {
        let total = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
        if total > TEXT_WIDTH {
            let others = total - widths[at];
            widths[at] = TEXT_WIDTH.saturating_sub(others).max(MIN_WRAP).max(columns[at].0.chars().count());
        }
    }
    let headers: Vec<String> = columns.iter().map(|(header, _)| header.to_string()).collect();
    for row in std::iter::once(&headers).chain(rows) {
        let lines: Vec<Vec<String>> =
            row.iter().enumerate().map(|(index, cell)| if Some(index) == wrap { wrap_words(cell, widths[index]) } else { vec![cell.clone()] }).collect();
        let height = lines.iter().map(Vec::len).max().unwrap_or(1);
        for line in 0..height {
            let mut text = String::new();
            for (index, ((cell, width), (_, align))) in lines.iter().zip(&widths).zip(columns).enumerate() {
                if index > 0 {
                    text.push_str("  ");
                }
                let cell = cell.get(line).map_or("", String::as_str);
                match align {
                    Align::Left => text.push_str(&format!("{cell:<width$}")),
                    Align::Right => text.push_str(&format!("{cell:>width$}")),
                }
            }
            writeln!(out, "{}", text.trim_end())?;
        }
    }
    Ok(())
}

/// Lines of at most `width` characters, broken between words; a longer word is cut after its
/// last `-`, `,`, `/`, `=` or `:` that fits, else at the width.
fn wrap_words(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for mut word in text.split_whitespace() {
        loop {
            let (used, len) = (line.chars().count(), word.chars().count());
            if used == 0 && len <= width {
                line.push_str(word);
                break;
            }
            if used > 0 && used + 1 + len <= width {
                line.push(' ');
                line.push_str(word);
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            let limit = word.char_indices().nth(width).map_or(word.len(), |(at, _)| at);
            let at = word[..limit].rfind(['-', ',', '/', '=', ':']).map_or(limit, |at| at + 1);
            lines.push(word[..at].to_string());
            word = &word[at..];
        }
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

// ---------------------------------------------------------------------------------------------
// JSON.

/// The report as it is, pretty: its `schema` is the `CHURN_SCHEMA` the engine set.
pub fn json(report: &ChurnReport, out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)
}

// ---------------------------------------------------------------------------------------------
// HTML.

const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { margin: 0 0 .2em; } .meta { color: #555; margin: .1em 0; }
section.pattern { border-top: 1px solid #ddd; margin-top: 1.5em; }
table { border-collapse: collapse; margin: .6em 0; }
th, td { padding: .15em .45em; text-align: right; white-space: nowrap; }
thead th { border-bottom: 1px solid #bbb; white-space: normal; vertical-align: bottom; } th.text, td.text { text-align: left; } td.change { white-space: normal; min-width: 16em; }
table.changes tbody tr:nth-child(even) { background: #f6f6f6; }
td.not-converged { color: #c62828; font-weight: 600; white-space: normal; } td.problems { white-space: normal; }
.badge { font-size: .75em; padding: .1em .5em; border-radius: .8em; color: #fff; white-space: nowrap; }
.badge.not-converged { background: #c62828; } .badge.regressed { background: #f9a825; } .badge.controls { background: #8e24aa; } .badge.errors { background: #757575; }
.plots { display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }
figure { margin: 0; } figcaption { font-weight: 600; margin-bottom: .3em; } figcaption .meta { font-weight: normal; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
ul.cells { margin: .2em 0 .8em; } h4 { margin: .6em 0 0; }
"#;

/// One page: the header, then per pattern its summary, the latency of each change over the run
/// and their histogram, a row per change and the problem cells.
pub fn html(report: &ChurnReport, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">")?;
    writeln!(out, "<title>netmatrix churn {}</title>\n<style>{STYLE}</style>\n</head>\n<body>", Esc(&report.started))?;
    writeln!(out, "<h1>netmatrix churn</h1>")?;
    for line in header_lines(report) {
        writeln!(out, "<p class=\"meta\">{}</p>", Esc(&line))?;
    }
    for pattern in &report.patterns {
        write_pattern_html(out, pattern)?;
    }
    writeln!(out, "</body>\n</html>")
}

fn write_pattern_html(out: &mut impl Write, pattern: &PatternReport) -> io::Result<()> {
    writeln!(out, "<section class=\"pattern\">\n<h2>pattern {}</h2>", Esc(&pattern.pattern))?;
    if let Some(setup) = failed_setup(pattern) {
        writeln!(
            out,
            "<p class=\"not-converged\">Its setup ({}) did not converge: no change was made. {} not converged:</p>\n<ul class=\"cells not-converged\">",
            Esc(&setup.description),
            count(setup.not_converged.len(), "cell", "cells")
        )?;
        for cell in &setup.not_converged {
            writeln!(out, "<li><code>{}</code></li>", Esc(&cell_name(cell)))?;
        }
        return writeln!(out, "</ul>\n</section>");
    }
    writeln!(out, "<p class=\"meta\">{}</p>", Esc(&pattern_counts(pattern)))?;
    writeln!(
        out,
        "<table class=\"summary\"><thead><tr><th class=\"text\">latency ms</th><th>changes</th><th>converged</th>\
         <th>p50</th><th>p90</th><th>p99</th><th>max</th></tr></thead><tbody>"
    )?;
    for s in &pattern.summary {
        writeln!(
            out,
            "<tr><th class=\"text\">{}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            summary_label(s),
            s.changes,
            s.converged,
            ms(s.p50_ms),
            ms(s.p90_ms),
            ms(s.p99_ms),
            ms(s.max_ms)
        )?;
    }
    writeln!(out, "</tbody></table>")?;
    if pattern.changes.is_empty() {
        return writeln!(out, "</section>");
    }

    writeln!(out, "<div class=\"plots\">")?;
    write_timeline(out, pattern)?;
    write_histogram(out, pattern)?;
    writeln!(out, "</div>")?;
    write_changes_html(out, pattern)?;
    write_problems_html(out, pattern)?;
    writeln!(out, "</section>")
}

fn write_changes_html(out: &mut impl Write, pattern: &PatternReport) -> io::Result<()> {
    let families = families(pattern);
    let family_headers: String = families.iter().map(|f| format!("<th>{} ms</th>", Esc(f))).collect();
    writeln!(
        out,
        "<table class=\"changes\"><thead><tr><th>#</th><th>applied at s</th><th class=\"text\">change</th><th>cells</th><th>controls</th>\
         <th>latency ms</th><th title=\"the last moment a changed cell was seen wrong\">wrong until ms</th><th>to allow ms</th><th>to deny ms</th>{family_headers}<th class=\"text\">slowest node</th><th>rounds</th>\
         <th>round ms</th><th>apply ms</th><th>oracle µs</th><th class=\"text\">problems</th></tr></thead><tbody>"
    )?;
    for c in &pattern.changes {
        let applied_title = match &c.server_time {
            Some(time) => format!(" title=\"API server time {}\"", Esc(time)),
            None => String::new(),
        };
        let of = |d| c.cells.get(&d).copied().unwrap_or(0);
        let cells_title = format!("{} deny-to-allow, {} allow-to-deny", of(Direction::DenyToAllow), of(Direction::AllowToDeny));
        write!(
            out,
            "<tr><td>{}</td><td{applied_title}>{:.2}</td><td class=\"text change\">{}</td><td title=\"{cells_title}\">{}</td><td>{}</td>",
            c.index,
            c.applied_at_ms / 1000.0,
            Esc(&c.description),
            cells(c),
            c.controls
        )?;
        write!(out, "{}", latency_cell((!changed_nothing(c)).then_some(c.latency_ms)))?;
        write!(out, "<td>{}</td>", wrong_until(c))?;
        for direction in Direction::BOTH {
            write!(out, "{}", latency_cell(c.latency_by_direction.get(&direction).copied()))?;
        }
        for family in &families {
            write!(out, "{}", latency_cell(c.latency_by_family.get(*family).copied()))?;
        }
        let nodes: Vec<String> = c.latency_by_node.iter().map(|(node, l)| format!("{node}: {}", latency_title(*l))).collect();
        match slowest_node(c) {
            Some((node, _)) => write!(out, "<td class=\"text\" title=\"{}\">{}</td>", Esc(&nodes.join("\n")), Esc(node))?,
            None => write!(out, "<td class=\"text\">-</td>")?,
        }
        write!(out, "<td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td class=\"text problems\">", c.rounds, c.round_ms, c.apply_ms, c.oracle_us)?;
        let mut badges: Vec<String> = problems(c)
            .iter()
            .filter(|(_, _, _, listed)| !listed.is_empty())
            .map(|(_, what, class, listed)| format!("<span class=\"badge {class}\">{what} {}</span>", listed.len()))
            .collect();
        if unlisted_not_converged(c) {
            badges.insert(0, "<span class=\"badge not-converged\">not converged</span>".into());
        }
        if c.probe_errors > 0 {
            badges.push(format!("<span class=\"badge errors\">{} probes failed to run</span>", c.probe_errors));
        }
        writeln!(out, "{}</td></tr>", badges.join(" "))?;
    }
    writeln!(out, "</tbody></table>")
}

/// A latency's cell: `-` when the change has no cells of its direction (`None`).
fn latency_cell(value: Option<Option<f64>>) -> String {
    match value {
        None => "<td>-</td>".into(),
        Some(None) => "<td class=\"not-converged\">not converged</td>".into(),
        Some(Some(v)) => format!("<td>{v:.1}</td>"),
    }
}

fn write_problems_html(out: &mut impl Write, pattern: &PatternReport) -> io::Result<()> {
    let any = pattern.changes.iter().any(|c| problems(c).iter().any(|(_, _, _, cells)| !cells.is_empty()));
    if !any {
        return Ok(());
    }
    writeln!(out, "<h3>problem cells</h3>")?;
    for change in &pattern.changes {
        for (_, what, class, listed) in problems(change) {
            if listed.is_empty() {
                continue;
            }
            writeln!(
                out,
                "<h4 class=\"{class}\">#{} {what}: {} <span class=\"meta\">{}</span></h4>",
                change.index,
                count(listed.len(), "cell", "cells"),
                Esc(&change.description)
            )?;
            let fold = listed.len() > FOLD_AFTER;
            if fold {
                writeln!(out, "<details><summary>{} {what}</summary>", count(listed.len(), "cell", "cells"))?;
            }
            writeln!(out, "<ul class=\"cells {class}\">")?;
            for cell in listed {
                writeln!(out, "<li><code>{}</code></li>", Esc(&cell_name(cell)))?;
            }
            writeln!(out, "</ul>")?;
            if fold {
                writeln!(out, "</details>")?;
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// SVG plots, by hand: an axis-aligned plot area, ticks at round values.

const SVG_WIDTH: f64 = 560.0;
const SVG_HEIGHT: f64 = 300.0;
/// Room for the y tick labels and title.
const LEFT: f64 = 58.0;
const RIGHT: f64 = 16.0;
/// Room for the legend.
const TOP: f64 = 32.0;
/// Room for the x tick labels and title.
const BOTTOM: f64 = 44.0;
/// The band at the top of the timeline where not-converged changes are drawn.
const BAND: f64 = 22.0;

fn color(direction: Direction) -> &'static str {
    match direction {
        Direction::DenyToAllow => "#1e88e5",
        Direction::AllowToDeny => "#ef6c00",
    }
}

/// Maps data `lo..hi` onto pixels `from..to` (`to` may be smaller: the y axis points up).
#[derive(Debug, Clone, Copy)]
struct Scale {
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
}

impl Scale {
    fn at(&self, value: f64) -> f64 {
        let span = if self.hi > self.lo { self.hi - self.lo } else { 1.0 };
        self.from + (value - self.lo) / span * (self.to - self.from)
    }
}

/// The smallest of 1, 2, 2.5 and 5 (or `choices`) times a power of ten at least `raw`.
fn nice_step(raw: f64, choices: &[f64]) -> f64 {
    if raw.is_nan() || raw.is_infinite() || raw <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    let fraction = raw / power;
    choices.iter().copied().find(|&c| fraction <= c * (1.0 + 1e-9)).unwrap_or(10.0) * power
}

const LATENCY_STEPS: [f64; 5] = [1.0, 2.0, 2.5, 5.0, 10.0];
const COUNT_STEPS: [f64; 4] = [1.0, 2.0, 5.0, 10.0];

/// Ticks from 0 at a round step (at least `min_step`) up to a round value at least `max`, about
/// `target` of them.
fn ticks_from_zero(max: f64, target: usize, choices: &[f64], min_step: f64) -> (Vec<f64>, f64) {
    let max = if max > 0.0 { max } else { 1.0 };
    let step = nice_step(max / target as f64, choices).max(min_step);
    let n = (max / step - 1e-9).ceil().max(1.0) as usize;
    ((0..=n).map(|i| i as f64 * step).collect(), step)
}

/// As many decimals as the step needs (`2.5` one, `20` none).
fn tick_label(value: f64, step: f64) -> String {
    let decimals = (0..6)
        .find(|&d| {
            let scaled = step * 10f64.powi(d);
            (scaled - scaled.round()).abs() < 1e-6
        })
        .unwrap_or(6) as usize;
    format!("{value:.decimals$}")
}

fn svg_open(out: &mut impl Write, class: &str, title: &str) -> io::Result<()> {
    writeln!(
        out,
        "<svg class=\"{class}\" width=\"{SVG_WIDTH}\" height=\"{SVG_HEIGHT}\" viewBox=\"0 0 {SVG_WIDTH} {SVG_HEIGHT}\" role=\"img\"><title>{}</title>",
        Esc(title)
    )
}

/// The x axis along the bottom of the plot: its line, ticks with labels, and its title.
fn x_axis(out: &mut impl Write, scale: Scale, ticks: &[(f64, String)], title: &str) -> io::Result<()> {
    let y = SVG_HEIGHT - BOTTOM;
    writeln!(out, "<g class=\"x-axis\"><line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{:.1}\" y2=\"{y}\" stroke=\"#555\"/>", SVG_WIDTH - RIGHT)?;
    for (value, label) in ticks {
        let x = scale.at(*value);
        writeln!(
            out,
            "<line x1=\"{x:.1}\" y1=\"{y}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#555\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            y + 4.0,
            y + 16.0,
            Esc(label)
        )?;
    }
    writeln!(out, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text></g>", LEFT + (SVG_WIDTH - LEFT - RIGHT) / 2.0, SVG_HEIGHT - 8.0, Esc(title))
}

/// The y axis at the left of the plot: grid lines at the ticks, their labels, and its title.
fn y_axis(out: &mut impl Write, scale: Scale, ticks: &[(f64, String)], title: &str) -> io::Result<()> {
    writeln!(out, "<g class=\"y-axis\">")?;
    for (value, label) in ticks {
        let y = scale.at(*value);
        writeln!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#e6e6e6\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            SVG_WIDTH - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            Esc(label)
        )?;
    }
    let (top, bottom) = (scale.to.min(scale.from), scale.to.max(scale.from));
    writeln!(out, "<line x1=\"{LEFT}\" y1=\"{top:.1}\" x2=\"{LEFT}\" y2=\"{bottom:.1}\" stroke=\"#555\"/>")?;
    let middle = (top + bottom) / 2.0;
    writeln!(out, "<text transform=\"translate(14 {middle:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text></g>", Esc(title))
}

#[derive(Debug, Clone, Copy)]
enum Marker {
    Dot,
    Cross,
    Square,
}

fn marker(marker: Marker, x: f64, y: f64, color: &str, class: &str, title: &str) -> String {
    let title = if title.is_empty() { String::new() } else { format!("<title>{}</title>", Esc(title)) };
    match marker {
        Marker::Dot => format!("<circle class=\"{class}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3.5\" fill=\"{color}\" fill-opacity=\"0.8\">{title}</circle>"),
        Marker::Cross => format!(
            "<path class=\"{class}\" d=\"M{:.1} {:.1}L{:.1} {:.1}M{:.1} {:.1}L{:.1} {:.1}\" stroke=\"{color}\" stroke-width=\"2.5\">{title}</path>",
            x - 4.5,
            y - 4.5,
            x + 4.5,
            y + 4.5,
            x - 4.5,
            y + 4.5,
            x + 4.5,
            y - 4.5
        ),
        Marker::Square => {
            format!("<rect class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{color}\">{title}</rect>", x - 5.0, y - 5.0)
        }
    }
}

/// A row of markers and their labels across the top.
fn legend(out: &mut impl Write, items: &[(Marker, &str, String)]) -> io::Result<()> {
    write!(out, "<g class=\"legend\">")?;
    let mut x = LEFT + 6.0;
    for (kind, color, label) in items {
        write!(out, "{}", marker(*kind, x, 14.0, color, "key", ""))?;
        write!(out, "<text x=\"{:.1}\" y=\"18\">{}</text>", x + 9.0, Esc(label))?;
        // An estimate of the label's width: the page's font is not known here.
        x += 9.0 + 6.2 * label.chars().count() as f64 + 18.0;
    }
    writeln!(out, "</g>")
}

/// Each change's latency per direction by when it was applied; a change whose cells of a
/// direction did not converge is a cross in the band at the top.
fn write_timeline(out: &mut impl Write, pattern: &PatternReport) -> io::Result<()> {
    let points: Vec<(&ChangeReport, Direction, Option<f64>)> =
        pattern.changes.iter().flat_map(|c| c.latency_by_direction.iter().map(move |(d, l)| (c, *d, *l))).collect();
    let not_converged = points.iter().filter(|(_, _, l)| l.is_none()).count();
    let max_x = pattern.changes.iter().map(|c| c.applied_at_ms / 1000.0).fold(0.0, f64::max);
    let max_y = points.iter().filter_map(|(_, _, l)| *l).fold(0.0, f64::max);
    let (x_ticks, x_step) = ticks_from_zero(max_x, 8, &LATENCY_STEPS, 0.0);
    let (y_ticks, y_step) = ticks_from_zero(max_y, 6, &LATENCY_STEPS, 0.0);
    let plot_top = if not_converged > 0 { TOP + BAND } else { TOP };
    let xs = Scale { lo: 0.0, hi: *x_ticks.last().unwrap_or(&1.0), from: LEFT, to: SVG_WIDTH - RIGHT };
    let ys = Scale { lo: 0.0, hi: *y_ticks.last().unwrap_or(&1.0), from: SVG_HEIGHT - BOTTOM, to: plot_top };

    writeln!(out, "<figure class=\"timeline\">")?;
    svg_open(out, "timeline", &format!("pattern {}: latency of each change by the time it was applied, per direction", pattern.pattern))?;
    let mut items: Vec<(Marker, &str, String)> = Direction::BOTH.iter().map(|&d| (Marker::Dot, color(d), d.as_str().to_string())).collect();
    if not_converged > 0 {
        items.push((Marker::Cross, "#555", "not converged (top band)".into()));
    }
    legend(out, &items)?;
    let labelled = |ticks: &[f64], step: f64| -> Vec<(f64, String)> { ticks.iter().map(|&v| (v, tick_label(v, step))).collect() };
    y_axis(out, ys, &labelled(&y_ticks, y_step), "latency (ms)")?;
    x_axis(out, xs, &labelled(&x_ticks, x_step), "applied at (s since the run started)")?;
    if not_converged > 0 {
        writeln!(
            out,
            "<g class=\"band\"><rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{BAND}\" fill=\"#fdecea\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#c62828\">not converged</text></g>",
            SVG_WIDTH - LEFT - RIGHT,
            SVG_WIDTH - RIGHT - 4.0,
            TOP + BAND / 2.0 + 4.0
        )?;
    }
    for (change, direction, value) in &points {
        let x = xs.at(change.applied_at_ms / 1000.0);
        let title = format!("#{} {}: {} {}", change.index, change.description, direction.as_str(), latency_title(*value));
        let line = match value {
            Some(v) => marker(Marker::Dot, x, ys.at(*v), color(*direction), &format!("point {}", direction.as_str()), &title),
            None => marker(Marker::Cross, x, TOP + BAND / 2.0, color(*direction), &format!("not-converged {}", direction.as_str()), &title),
        };
        writeln!(out, "{line}")?;
    }
    if points.is_empty() {
        writeln!(out, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no change had cells to converge</text>", SVG_WIDTH / 2.0, SVG_HEIGHT / 2.0)?;
    }
    writeln!(out, "</svg>")?;
    let converged = points.len() - not_converged;
    writeln!(
        out,
        "<figcaption>latency over the run <span class=\"meta\">({converged} converged, {not_converged} not converged, by change and direction)</span></figcaption>\n</figure>"
    )
}

fn latency_title(value: Option<f64>) -> String {
    value.map_or_else(|| "not converged".into(), |v| format!("{v:.1} ms"))
}

/// Converged latencies per direction in bins of a round width, 10 to 21 of them (one when all are
/// equal).
#[derive(Debug, Clone, PartialEq)]
struct Bins {
    start: f64,
    width: f64,
    /// Per bin, the deny-to-allow and allow-to-deny counts.
    counts: Vec<[usize; 2]>,
}

fn direction_index(direction: Direction) -> usize {
    match direction {
        Direction::DenyToAllow => 0,
        Direction::AllowToDeny => 1,
    }
}

fn bins(values: &[(Direction, f64)]) -> Option<Bins> {
    let lo = values.iter().map(|(_, v)| *v).fold(f64::INFINITY, f64::min);
    let hi = values.iter().map(|(_, v)| *v).fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return None;
    }
    let width = if hi > lo { nice_step((hi - lo) / 20.0, &LATENCY_STEPS) } else { nice_step(hi.abs().max(1.0) / 10.0, &LATENCY_STEPS) };
    let start = (lo / width).floor() * width;
    let n = ((hi - start) / width).floor() as usize + 1;
    let mut counts = vec![[0; 2]; n];
    for (direction, value) in values {
        let bin = (((value - start) / width).floor().max(0.0) as usize).min(n - 1);
        counts[bin][direction_index(*direction)] += 1;
    }
    Some(Bins { start, width, counts })
}

/// The converged latencies of both directions in stacked bars, deny-to-allow at the bottom.
fn write_histogram(out: &mut impl Write, pattern: &PatternReport) -> io::Result<()> {
    let values: Vec<(Direction, f64)> = pattern.changes.iter().flat_map(|c| c.latency_by_direction.iter().filter_map(|(d, l)| l.map(|l| (*d, l)))).collect();
    let not_converged = pattern.changes.iter().flat_map(|c| c.latency_by_direction.values()).filter(|l| l.is_none()).count();
    writeln!(out, "<figure class=\"histogram\">")?;
    svg_open(out, "histogram", &format!("pattern {}: histogram of the converged latencies, per direction", pattern.pattern))?;
    legend(out, &Direction::BOTH.map(|d| (Marker::Square, color(d), d.as_str().to_string())))?;
    match bins(&values) {
        Some(bins) => {
            let n = bins.counts.len();
            let max_count = bins.counts.iter().map(|c| c[0] + c[1]).max().unwrap_or(1);
            let (y_ticks, y_step) = ticks_from_zero(max_count as f64, 5, &COUNT_STEPS, 1.0);
            let ys = Scale { lo: 0.0, hi: *y_ticks.last().unwrap_or(&1.0), from: SVG_HEIGHT - BOTTOM, to: TOP };
            let end = bins.start + n as f64 * bins.width;
            let xs = Scale { lo: bins.start, hi: end, from: LEFT, to: SVG_WIDTH - RIGHT };
            // Every edge, or every second, fifth...: at most 11 labels.
            let every = n.div_ceil(10).max(1);
            let x_ticks: Vec<(f64, String)> = (0..=n)
                .step_by(every)
                .map(|i| {
                    let edge = bins.start + i as f64 * bins.width;
                    (edge, tick_label(edge, bins.width))
                })
                .collect();
            let y_ticks: Vec<(f64, String)> = y_ticks.iter().map(|&v| (v, tick_label(v, y_step))).collect();
            y_axis(out, ys, &y_ticks, "changes")?;
            x_axis(out, xs, &x_ticks, "latency (ms)")?;
            for (i, count) in bins.counts.iter().enumerate() {
                let (from, to) = (bins.start + i as f64 * bins.width, bins.start + (i + 1) as f64 * bins.width);
                let x = xs.at(from) + 1.0;
                let width = (xs.at(to) - xs.at(from) - 2.0).max(1.0);
                let mut below = 0;
                for direction in Direction::BOTH {
                    let n = count[direction_index(direction)];
                    if n == 0 {
                        continue;
                    }
                    let (bottom, top) = (ys.at(below as f64), ys.at((below + n) as f64));
                    let label_decimals = tick_label(from, bins.width);
                    writeln!(
                        out,
                        "<rect class=\"bar {}\" x=\"{x:.1}\" y=\"{top:.1}\" width=\"{width:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{label_decimals} to {} ms: {n} {}</title></rect>",
                        direction.as_str(),
                        bottom - top,
                        color(direction),
                        tick_label(to, bins.width),
                        direction.as_str()
                    )?;
                    below += n;
                }
            }
            writeln!(out, "</svg>")?;
            writeln!(
                out,
                "<figcaption>latency histogram <span class=\"meta\">(bins of {} ms; {} converged; {not_converged} not converged, not shown)</span></figcaption>",
                number(bins.width),
                values.len()
            )?;
        }
        None => {
            writeln!(out, "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">no latency converged</text>", SVG_WIDTH / 2.0, SVG_HEIGHT / 2.0)?;
            writeln!(out, "</svg>\n<figcaption>latency histogram <span class=\"meta\">({not_converged} not converged)</span></figcaption>")?;
        }
    }
    writeln!(out, "</figure>")
}

#[cfg(test)]
mod tests {
    use super::*;
    use netmatrix_model::Protocol;
    use netmatrix_results::ClusterInfo;
    use netmatrix_results::churn::{CHURN_SCHEMA, Shape};
    use std::collections::BTreeMap;

    fn cell(src: &str, dst: &str, port: u16, expected: &str) -> CellRef {
        CellRef { src: src.into(), dst: dst.into(), port, protocol: Protocol::Tcp, expected: expected.into(), family: None, wrong_outcomes: Default::default() }
    }

    /// A change whose latency is the largest of its directions', `None` if one did not converge.
    fn change(
        index: usize,
        description: &str,
        applied_at_ms: f64,
        cells: [usize; 2],
        by_direction: &[(Direction, Option<f64>)],
        by_node: &[(&str, Option<f64>)],
    ) -> ChangeReport {
        let latency_ms = by_direction.iter().try_fold(0.0, |max: f64, (_, l)| l.map(|l| max.max(l)));
        ChangeReport {
            index,
            description: description.into(),
            applied_at_ms,
            apply_ms: 4.2,
            server_time: None,
            oracle_us: 38.5 + index as f64,
            cells: Direction::BOTH.into_iter().zip(cells).filter(|(_, n)| *n > 0).collect(),
            controls: 4,
            latency_ms,
            last_wrong_ms: latency_ms.map(|l| l / 2.0),
            latency_by_direction: by_direction.iter().copied().collect(),
            latency_by_node: by_node.iter().map(|(n, l)| (n.to_string(), *l)).collect(),
            latency_by_family: BTreeMap::new(),
            rounds: 5,
            round_ms: 3.2,
            not_converged: Vec::new(),
            regressed: Vec::new(),
            controls_changed: Vec::new(),
            probe_errors: 0,
        }
    }

    fn pattern(name: &str, changes: Vec<ChangeReport>) -> PatternReport {
        PatternReport { pattern: name.into(), summary: LatencySummary::all(&changes), setup: None, changes }
    }

    use Direction::{AllowToDeny as ToDeny, DenyToAllow as ToAllow};

    /// ns-labels: one change converged, one not (12 cells, folded), one with a long description
    /// and a regressed cell; pod-ring: one with changed controls, two converged.
    fn report() -> ChurnReport {
        let mut not_converged = change(1, "namespace ns1: team=a -> b", 2500.0, [0, 12], &[(ToDeny, None)], &[("n1", None), ("n2", Some(40.0))]);
        not_converged.rounds = 1563;
        not_converged.not_converged = (0..12).map(|i| cell(&format!("ns{}/p{}", i % 4, i / 4), "ns1/p0", 80, "deny")).collect();
        let mut regressed = change(
            2,
            "namespace ns3-with-a-rather-long-name: environment=staging,tier=frontend -> environment=production,tier=backend",
            4100.0,
            [2, 0],
            &[(ToAllow, Some(25.7))],
            &[("n3", Some(25.7))],
        );
        regressed.regressed = vec![cell("ns2/p1", "ns3-with-a-rather-long-name/p0", 8080, "allow")];
        let labels = pattern(
            "ns-labels",
            vec![
                change(
                    0,
                    "namespace ns2: maturity=production -> out-of-service",
                    1200.0,
                    [3, 2],
                    &[(ToAllow, Some(12.3)), (ToDeny, Some(8.1))],
                    &[("n1", Some(12.3)), ("n2", Some(8.1))],
                ),
                not_converged,
                regressed,
            ],
        );
        let mut controls = change(0, "pod ns1/p0 recreated on n2", 900.0, [5, 0], &[(ToAllow, Some(150.2))], &[("n2", Some(150.2))]);
        let mut timed_out = cell("ns3/p2", "ns1/p1", 80, "allow");
        timed_out.wrong_outcomes = [("refused".to_owned(), 1), ("timeout".to_owned(), 2)].into();
        controls.controls_changed = vec![cell("ns2/p0", "svc:ns1/web", 80, "allow"), timed_out];
        let mut late = change(
            2,
            "pod ns2/p0 recreated on n1",
            7300.0,
            [3, 3],
            &[(ToAllow, Some(130.0)), (ToDeny, Some(88.8))],
            &[("n1", Some(130.0)), ("n3", Some(130.0))],
        );
        late.server_time = Some("2026-12-07T09:00:07Z".into());
        let ring = pattern(
            "pod-ring",
            vec![
                controls,
                change(
                    1,
                    "pod ns1/p1 recreated on n3",
                    4000.0,
                    [4, 1],
                    &[(ToAllow, Some(95.0)), (ToDeny, Some(110.4))],
                    &[("n1", Some(95.0)), ("n3", Some(110.4))],
                ),
                late,
            ],
        );
        ChurnReport {
            schema: CHURN_SCHEMA.into(),
            backend: "kube".into(),
            started: "2026-12-07T09:00:00Z".into(),
            duration_ms: 61234,
            cluster: ClusterInfo { nodes: vec!["n1".into(), "n2".into(), "n3".into()], server_version: "v1.31.2".into(), ..ClusterInfo::default() },
            seed: 42,
            shape: Shape { nodes: 3, namespaces: 4, pods_per_namespace: 3, policies: 2, services: 1, changes: 3, controls: 4 },
            interval_ms: 10.0,
            deadline_ms: 5000,
            patterns: vec![labels, ring],
        }
    }

    fn render(report: &ChurnReport, f: fn(&ChurnReport, &mut Vec<u8>) -> io::Result<()>) -> String {
        let mut out = Vec::new();
        f(report, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn text_of(report: &ChurnReport) -> String {
        render(report, text)
    }

    fn html_of(report: &ChurnReport) -> String {
        render(report, html)
    }

    #[test]
    fn text_snapshot() {
        insta::assert_snapshot!("churn_text", text_of(&report()));
    }

    #[test]
    fn html_snapshot() {
        insta::assert_snapshot!("churn_html", html_of(&report()));
    }

    #[test]
    fn text_states_the_interval_and_what_did_not_converge() {
        let text = text_of(&report());
        assert!(text.contains("probed every 10 ms after each change"), "{text}");
        assert!(text.contains("deadline 5000 ms"), "{text}");
        assert!(text.contains("seed 42"), "{text}");
        let row = text.lines().find(|l| l.starts_with("1  namespace ns1: team=a ->")).expect("the row of change 1");
        assert!(row.contains("  +0 -12  not converged   never         -    >5000  n1  ") && row.ends_with("  N12"), "latencies, slowest node, flag: {row}");
        assert!(text.contains("#1 not converged: 12 cells\n  ns0/p0 -> ns1/p0 80/TCP expected deny\n"), "{text}");
        assert!(text.contains("  ... and 2 more"), "folded after 10: {text}");
        assert!(text.contains("#2 regressed: 1 cell\n  ns2/p1 -> ns3-with-a-rather-long-name/p0 8080/TCP expected allow\n"), "{text}");
        assert!(text.contains("#0 controls changed: 2 cells\n  ns2/p0 -> svc:ns1/web 80/TCP expected allow\n"), "{text}");
        assert!(text.contains("\nall                  3          2  12.3  25.7  25.7  25.7\n"), "the summary of ns-labels: {text}");
        assert!(text.contains("\nallow-to-deny        2          1   8.1   8.1   8.1   8.1\n"), "{text}");
    }

    #[test]
    fn text_fits_120_columns_by_wrapping_the_change() {
        let mut report = report();
        report.patterns[0].changes[0].description = "label ".repeat(40);
        let text = text_of(&report);
        for line in text.lines().filter(|l| !l.starts_with("  ")) {
            assert!(line.chars().count() <= TEXT_WIDTH, "{} columns: {line}", line.chars().count());
        }
        // The change column's lines of change 2, joined, are its description.
        let mut lines = text.lines().skip_while(|l| !l.starts_with("2  namespace"));
        let mut pieces = vec![lines.next().unwrap()[3..].split("  ").next().unwrap()];
        pieces.extend(lines.take_while(|l| l.starts_with("   ")).map(str::trim));
        let description = &report.patterns[0].changes[2].description;
        assert_eq!(pieces.concat().replace(' ', ""), description.replace(' ', ""), "a wrapped description keeps every character: {text}");
        assert!(pieces.len() > 3 && pieces.iter().all(|p| p.chars().count() <= MIN_WRAP + 2), "{pieces:?}");
    }

    #[test]
    fn slowest_node_is_the_not_converged_one_else_the_largest_latency_first() {
        let report = report();
        let [first, unconverged, _] = &report.patterns[0].changes[..] else { panic!() };
        assert_eq!(slowest_node(first), Some(("n1", Some(12.3))));
        assert_eq!(slowest_node(unconverged), Some(("n1", None)));
        assert_eq!(slowest_node(&report.patterns[1].changes[2]), Some(("n1", Some(130.0))), "the first of equals");
        let mut none = first.clone();
        none.latency_by_node.clear();
        assert_eq!(slowest_node(&none), None);
    }

    /// The `<svg class="{class}"` elements of the page, each to its `</svg>`.
    fn svgs<'a>(html: &'a str, class: &str) -> Vec<&'a str> {
        let open = format!("<svg class=\"{class}\"");
        html.match_indices(&open).map(|(at, _)| &html[at..at + html[at..].find("</svg>").unwrap()]).collect()
    }

    #[test]
    fn the_timeline_has_a_point_per_converged_change_and_direction_and_a_cross_per_unconverged() {
        let report = report();
        let html = html_of(&report);
        let timelines = svgs(&html, "timeline");
        assert_eq!(timelines.len(), 2);
        for (svg, pattern) in timelines.iter().zip(&report.patterns) {
            for direction in Direction::BOTH {
                let of = |converged: bool| {
                    pattern.changes.iter().filter(|c| c.latency_by_direction.get(&direction).is_some_and(|l| l.is_some() == converged)).count()
                };
                assert_eq!(svg.matches(&format!("class=\"point {}\"", direction.as_str())).count(), of(true), "{svg}");
                assert_eq!(svg.matches(&format!("class=\"not-converged {}\"", direction.as_str())).count(), of(false), "{svg}");
            }
        }
        assert!(timelines[0].contains("class=\"not-converged allow-to-deny\"") && timelines[0].contains(">not converged</text>"));
        assert!(!timelines[1].contains("not-converged"), "no band without a change that did not converge");
        assert!(timelines[0].contains("<title>#1 namespace ns1: team=a -&gt; b: allow-to-deny not converged</title>"), "{}", timelines[0]);
    }

    #[test]
    fn every_svg_is_well_formed_xml_with_a_title_first() {
        let mut report = report();
        report.patterns[0].changes[0].description = "<b>&'\"".into();
        let html = html_of(&report);
        let svgs: Vec<&str> = html.match_indices("<svg ").map(|(at, _)| &html[at..at + html[at..].find("</svg>").unwrap() + "</svg>".len()]).collect();
        assert_eq!(svgs.len(), 4);
        for svg in svgs {
            let document = roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}: {svg}"));
            let root = document.root_element();
            assert_eq!(root.tag_name().name(), "svg");
            let title = root.first_element_child().unwrap();
            assert_eq!(title.tag_name().name(), "title");
            assert!(title.text().unwrap().starts_with("pattern "));
            let points = root.descendants().filter(|n| n.attribute("class").is_some_and(|c| c.starts_with("point "))).count();
            assert_eq!(points, svg.matches("<circle class=\"point ").count());
        }
        assert!(html.contains("<title>#0 &lt;b&gt;&amp;&#39;&quot;: deny-to-allow 12.3 ms</title>"));
    }

    #[test]
    fn the_histogram_counts_every_converged_latency_once() {
        let report = report();
        let html = html_of(&report);
        let histograms = svgs(&html, "histogram");
        assert_eq!(histograms.len(), 2);
        for (svg, pattern) in histograms.iter().zip(&report.patterns) {
            let converged = pattern.changes.iter().flat_map(|c| c.latency_by_direction.values()).filter(|l| l.is_some()).count();
            let counted: usize = svg.split("ms: ").skip(1).map(|rest| rest.split(' ').next().unwrap().parse::<usize>().unwrap()).sum();
            assert_eq!(counted, converged, "{svg}");
        }
    }

    #[test]
    fn bins_are_round_and_cover_every_value() {
        let values: Vec<(Direction, f64)> = [88.8, 95.0, 110.4, 130.0, 150.2].iter().map(|&v| (ToAllow, v)).collect();
        let bins = bins(&values).unwrap();
        assert_eq!((bins.start, bins.width), (85.0, 5.0));
        assert_eq!(bins.counts.len(), 14);
        assert_eq!(bins.counts.iter().map(|c| c[0]).sum::<usize>(), 5);
        assert_eq!(bins.counts[13], [1, 0], "the largest value is in the last bin");
        let one = super::bins(&[(ToDeny, 7.0)]).unwrap();
        assert_eq!((one.start, one.width, one.counts.clone()), (7.0, 1.0, vec![[0, 1]]));
        let zero = super::bins(&[(ToDeny, 0.0)]).unwrap();
        assert_eq!(zero.counts, vec![[0, 1]]);
        assert_eq!(super::bins(&[]), None);
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(nice_step(0.7, &LATENCY_STEPS), 1.0);
        assert_eq!(nice_step(2.1, &LATENCY_STEPS), 2.5);
        assert_eq!(nice_step(2.1, &COUNT_STEPS), 5.0);
        assert_eq!(nice_step(31.0, &LATENCY_STEPS), 50.0);
        assert_eq!(nice_step(0.0, &LATENCY_STEPS), 1.0);
        assert_eq!(ticks_from_zero(150.2, 6, &LATENCY_STEPS, 0.0).0, vec![0.0, 50.0, 100.0, 150.0, 200.0]);
        assert_eq!(ticks_from_zero(1.0, 5, &COUNT_STEPS, 1.0), (vec![0.0, 1.0], 1.0), "counts are whole");
        assert_eq!(ticks_from_zero(23.0, 5, &COUNT_STEPS, 1.0).0, vec![0.0, 5.0, 10.0, 15.0, 20.0, 25.0]);
        let (ticks, step) = ticks_from_zero(0.0, 6, &LATENCY_STEPS, 0.0);
        assert_eq!(ticks.iter().map(|&t| tick_label(t, step)).collect::<Vec<_>>(), ["0.0", "0.2", "0.4", "0.6", "0.8", "1.0"]);
        assert_eq!(tick_label(7.5, 2.5), "7.5");
        assert_eq!(tick_label(20.0, 10.0), "20");
        assert_eq!(tick_label(0.3, 0.1), "0.3");
    }

    #[test]
    fn words_wrap_and_long_words_are_cut() {
        assert_eq!(wrap_words("a bb ccc dddd", 6), vec!["a bb", "ccc", "dddd"]);
        assert_eq!(wrap_words("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        assert_eq!(wrap_words("ns3-with-a-long-name: env=staging,tier=front", 16), vec!["ns3-with-a-long-", "name:", "env=staging,", "tier=front"]);
        assert_eq!(wrap_words("", 4), vec![""]);
    }

    #[test]
    fn the_page_is_self_contained_and_every_svg_has_a_title() {
        let html = html_of(&report());
        assert!(!html.contains("http://") && !html.contains("https://") && !html.contains(" src=") && !html.contains("<script"), "self-contained");
        let svgs = html.matches("<svg ").count();
        assert_eq!(svgs, 4);
        assert_eq!(html.matches("role=\"img\"><title>").count(), svgs);
        assert!(html.contains("probed every 10 ms after each change"));
        assert!(html.contains("<td class=\"not-converged\">not converged</td>"));
        assert!(html.contains("<details><summary>12 cells not converged</summary>"), "a long list folds");
        assert!(html.contains("<td title=\"API server time 2026-12-07T09:00:07Z\">7.30</td>"));
    }

    #[test]
    fn cluster_strings_are_escaped() {
        let mut report = report();
        report.patterns[0].changes[0].description = "<script>alert(1)</script> & 'x'".into();
        report.patterns[1].pattern = "<b>ring</b>".into();
        report.patterns[0].changes[1].not_converged[0].src = "<img src=x>".into();
        report.patterns[0].changes[0].latency_by_node.insert("<n\"4>".into(), Some(99.0));
        report.started = "</title><script>".into();
        let html = html_of(&report);
        assert!(!html.contains("<script") && !html.contains("<b>ring") && !html.contains("<img") && !html.contains("<n\"4>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#39;x&#39;"), "in the table");
        assert!(html.contains("<title>#0 &lt;script&gt;alert(1)&lt;/script&gt; &amp; &#39;x&#39;: deny-to-allow 12.3 ms</title>"), "in the plot");
        assert!(html.contains("pattern &lt;b&gt;ring&lt;/b&gt;"));
        assert!(html.contains("<code>&lt;img src=x&gt; -&gt; ns1/p0 80/TCP expected deny</code>"));
        assert!(html.contains(">&lt;n&quot;4&gt;</td>"), "the slowest node");
    }

    #[test]
    fn json_round_trips() {
        let report = report();
        let json = render(&report, json);
        assert!(json.starts_with("{\n  \"schema\": \"netmatrix.churn/v1\",\n"), "{json}");
        assert!(json.ends_with("}\n"));
        let back: ChurnReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn empty_reports_render() {
        let mut report = report();
        report.patterns[0] = pattern("empty", Vec::new());
        report.patterns[1].changes.iter_mut().for_each(|c| {
            c.latency_by_direction.values_mut().for_each(|l| *l = None);
            c.latency_ms = None;
        });
        report.patterns[1].summary = LatencySummary::all(&report.patterns[1].changes);
        let text = text_of(&report);
        assert!(text.contains("pattern empty: 0 changes, 0 converged\n"), "{text}");
        assert!(text.contains("\nall                  0          0    -    -    -    -\n"), "{text}");
        let html = html_of(&report);
        assert!(html.contains(">no latency converged</text>"));
        assert_eq!(html.matches("<svg ").count(), 2, "no plots for a pattern without changes");
    }

    /// The fixture as a dual-stack run reports it: latencies per family, problem cells with
    /// their family.
    fn dual_report() -> ChurnReport {
        let mut report = report();
        for pattern in &mut report.patterns {
            for c in &mut pattern.changes {
                c.latency_by_family = [("IPv4".to_owned(), c.latency_ms.map(|l| l - 1.0)), ("IPv6".to_owned(), c.latency_ms)].into();
                for cell in c.not_converged.iter_mut().chain(&mut c.regressed).chain(&mut c.controls_changed) {
                    cell.family = Some("IPv6".into());
                }
            }
            pattern.summary = LatencySummary::all(&pattern.changes);
        }
        report
    }

    #[test]
    fn dual_stack_runs_show_latency_per_family_and_the_family_of_problem_cells() {
        let dual = dual_report();
        let text = text_of(&dual);
        let header = text.lines().find(|l| l.starts_with("#  change")).expect("the changes' header");
        assert!(header.split_whitespace().collect::<Vec<_>>().join(" ").contains("to deny IPv4 IPv6 slowest"), "{header}");
        let row = text.lines().find(|l| l.starts_with("1  namespace ns1: team=a ->")).expect("the row of change 1");
        assert!(row.contains("  >5000  >5000  >5000  n1  "), "to deny, IPv4, IPv6 not converged: {row}");
        assert!(text.lines().any(|l| l.starts_with("0  ") && l.contains("  11.3   12.3  n1  ")), "change 0 per family: {text}");
        assert!(text.contains("#1 not converged: 12 cells\n  ns0/p0 -> ns1/p0 80/TCP IPv6 expected deny\n"), "{text}");
        assert!(text.contains("\nIPv4                 3          2  11.3  24.7  24.7  24.7\n"), "a summary per family: {text}");
        assert!(text.contains("\nIPv6                 3          2  12.3  25.7  25.7  25.7\n"), "{text}");
        let html = html_of(&dual);
        assert!(!header.contains("oracle"), "the family columns take the oracle's: {header}");
        assert!(html.contains("<th>to deny ms</th><th>IPv4 ms</th><th>IPv6 ms</th><th class=\"text\">slowest node</th>"), "{html}");
        assert!(html.contains("<td>11.3</td><td>12.3</td><td class=\"text\" title="), "{html}");
        assert!(html.contains("<code>ns0/p0 -&gt; ns1/p0 80/TCP IPv6 expected deny</code>"), "{html}");
        assert!(html.contains("<tr><th class=\"text\">IPv6</th><td>3</td><td>2</td><td>12.3</td>"), "{html}");
        // Without families, neither shows: the single-family output is the snapshots'.
        let single = text_of(&report());
        assert!(!single.contains("IPv4") && !single.contains("IPv6"), "{single}");
    }

    #[test]
    fn a_change_that_changed_no_cell_is_neither_converged_nor_flagged() {
        let mut idle = change(0, "maturity staging -> production: ns3", 100.0, [0, 0], &[], &[]);
        idle.latency_ms = None;
        let mut r = report();
        r.patterns.truncate(1);
        r.patterns[0] = pattern("ns-labels", vec![idle]);
        let mut text = Vec::new();
        super::text(&r, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("pattern ns-labels: 1 change (1 changed no cell), 0 converged"), "{text}");
        let row = text.lines().find(|l| l.starts_with("0  ")).unwrap();
        assert!(!row.contains("not converged") && !row.trim_end().ends_with('N'), "{row}");
    }

    #[test]
    fn a_setup_that_did_not_converge_is_shown_with_its_cells_and_no_changes() {
        let mut setup = change(0, "policy-churn setup", 0.0, [0, 3], &[(ToDeny, None)], &[("n1", None)]);
        setup.not_converged = vec![cell("ns1/p0", "ns1/p1", 80, "deny")];
        let mut r = report();
        r.patterns.truncate(1);
        r.patterns[0] = PatternReport { setup: Some(setup), ..pattern("policy-churn", Vec::new()) };
        let mut text = Vec::new();
        super::text(&r, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("pattern policy-churn: its setup (policy-churn setup) did not converge within 5000 ms: no change was made"), "{text}");
        assert!(text.contains("  ns1/p0 -> ns1/p1 80/TCP expected deny"));
        let mut html = Vec::new();
        super::html(&r, &mut html).unwrap();
        assert!(String::from_utf8(html).unwrap().contains("did not converge: no change was made. 1 cell not converged"));
    }
}
