//! The history as one self-contained page (inline CSS, no script): the runs, newest first; per
//! case and per cell not always as expected, a coloured square per run and the rates; rows whose
//! verdict changed between runs are marked `changed`.

use std::io::{self, Write};

use netmatrix_results::{CaseResult, Comparison};

use super::{Counts, History, cell_name, result_symbol, verdict_symbol};
use crate::escape::Esc;

const STYLE: &str = r#"
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin-bottom: 1.5em; } th, td { padding: .15em .6em; text-align: left; }
td.count { text-align: right; } td.started { white-space: nowrap; } th.run { font-weight: normal; font-family: ui-monospace, monospace; }
td.run { width: 1.4em; text-align: center; font-family: ui-monospace, monospace; border: 1px solid #fff; }
td.pass { background: #c8e6c9; } td.fail { background: #e53935; color: #fff; font-weight: bold; }
td.flaky { background: #fdd835; } td.error { background: #ab47bc; color: #fff; }
td.other { background: #e0e0e0; color: #777; } td.absent { background: none; color: #aaa; }
tr.changed td.name::after { content: " changed"; font-size: .75em; padding: .1em .5em; margin-left: .5em;
  border-radius: .8em; background: #ef6c00; color: #fff; }
tr.step th { padding-top: .6em; font-weight: 600; }
"#;

pub fn write(out: &mut impl Write, history: &History) -> io::Result<()> {
    writeln!(out, "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">")?;
    writeln!(out, "<title>netmatrix history of {} runs</title>\n<style>{STYLE}</style>\n</head>\n<body>", history.runs.len())?;
    writeln!(out, "<h1>netmatrix history</h1>\n<h2>runs, newest first</h2>")?;
    writeln!(
        out,
        "<table class=\"runs\"><thead><tr><th>#</th><th>started</th><th>backend</th><th>profile</th><th>cases</th><th>passed</th>\
         <th>failed</th><th>flaky</th><th>errors</th><th>skipped</th><th>wrong cells</th><th>file</th></tr></thead><tbody>"
    )?;
    for (index, run) in history.runs.iter().enumerate() {
        let s = &run.summary;
        write!(out, "<tr><td>{}</td><td class=\"started\">{}</td><td>{}</td><td>{}</td>", index + 1, Esc(&run.started), Esc(&run.backend), Esc(&run.profile))?;
        for n in [s.cases, s.passed, s.failed, s.flaky, s.errors, s.skipped, s.wrong] {
            write!(out, "<td class=\"count\">{n}</td>")?;
        }
        writeln!(out, "<td>{}</td></tr>", Esc(&run.file))?;
    }
    writeln!(out, "</tbody></table>")?;

    let changed = history.cases.iter().filter(|c| c.changed).count();
    writeln!(out, "<h2>cases</h2><p>{} cases, {changed} changed verdict between runs</p>", history.cases.len())?;
    write_header(out, history, "case")?;
    for case in &history.cases {
        write!(out, "<tr class=\"case{}\">", if case.changed { " changed" } else { "" })?;
        for result in &case.results {
            write!(out, "<td class=\"run {}\">{}</td>", result_class(*result), result_symbol(*result))?;
        }
        write_counts(out, &case.counts)?;
        writeln!(out, "<td class=\"name\">{}</td></tr>", Esc(&case.id))?;
    }
    writeln!(out, "</tbody></table>")?;

    let changed = history.cells.iter().filter(|c| c.changed).count();
    writeln!(out, "<h2>cells not always as expected</h2><p>{} cells, {changed} changed verdict between runs</p>", history.cells.len())?;
    write_header(out, history, "cell")?;
    // The heading goes in the cells' column: spanning every column, it would widen them all.
    let before = history.runs.len() + 5;
    for (index, cell) in history.cells.iter().enumerate() {
        if index == 0 || (&history.cells[index - 1].case, history.cells[index - 1].step) != (&cell.case, cell.step) {
            let step = format!("{}, step {}: {}", cell.case, cell.step, cell.step_name);
            writeln!(out, "<tr class=\"step\"><td colspan=\"{before}\"></td><th>{}</th></tr>", Esc(&step))?;
        }
        write!(out, "<tr class=\"cell{}\">", if cell.changed { " changed" } else { "" })?;
        for verdict in &cell.verdicts {
            write!(out, "<td class=\"run {}\">{}</td>", verdict_class(*verdict), verdict_symbol(*verdict))?;
        }
        write_counts(out, &cell.counts)?;
        writeln!(out, "<td class=\"name\">{}</td></tr>", Esc(&cell_name(cell)))?;
    }
    writeln!(out, "</tbody></table>\n</body>\n</html>")
}

/// A column per run, numbered as the runs table, then the rates and `what`.
fn write_header(out: &mut impl Write, history: &History, what: &str) -> io::Result<()> {
    write!(out, "<table class=\"history\"><thead><tr>")?;
    for (index, run) in history.runs.iter().enumerate() {
        write!(out, "<th class=\"run\" title=\"{}\">{}</th>", Esc(&run.started), index + 1)?;
    }
    writeln!(out, "<th>runs</th><th>pass</th><th>fail</th><th>flaky</th><th>error</th><th>{what}</th></tr></thead><tbody>")
}

fn write_counts(out: &mut impl Write, counts: &Counts) -> io::Result<()> {
    write!(out, "<td class=\"count\">{}</td>", counts.runs)?;
    for n in [counts.passed, counts.failed, counts.flaky, counts.errors] {
        write!(out, "<td class=\"count\">{}</td>", counts.rate(n))?;
    }
    Ok(())
}

fn result_class(result: Option<CaseResult>) -> &'static str {
    match result {
        Some(CaseResult::Pass) => "pass",
        Some(CaseResult::Fail) => "fail",
        Some(CaseResult::Flaky) => "flaky",
        Some(CaseResult::Error) => "error",
        Some(CaseResult::Skipped) => "other",
        None => "absent",
    }
}

fn verdict_class(verdict: Option<Comparison>) -> &'static str {
    match verdict {
        Some(Comparison::AsExpected) => "pass",
        Some(Comparison::Wrong) => "fail",
        Some(Comparison::Inconclusive) => "flaky",
        Some(Comparison::Error) => "error",
        Some(Comparison::Undefined) => "other",
        None => "absent",
    }
}
