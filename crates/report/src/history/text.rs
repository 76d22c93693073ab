//! The history in the terminal: the runs, newest first; a line per case with one symbol per run
//! and its rates; then, under their case and step, the cells that were not always as expected.
//! What changed verdict between runs says `changed` at the end of its line.

use std::io::{self, Write};

use super::{CaseHistory, CellHistory, Counts, History, cell_name, result_symbol, verdict_symbol};

/// Cells listed per case; `-o json` and `-o html` list them all.
const CELLS_PER_CASE: usize = 12;

pub fn write(out: &mut impl Write, history: &History) -> io::Result<()> {
    writeln!(out, "runs: {}, newest first", history.runs.len())?;
    for (index, run) in history.runs.iter().enumerate() {
        let s = &run.summary;
        let profile = if run.profile.is_empty() { String::new() } else { format!(", profile {}", run.profile) };
        writeln!(
            out,
            "  {}. {} {}{profile}: cases:{}, passed:{}, failed:{}, flaky:{}, errors:{}, skipped:{}, wrong:{} ({})",
            index + 1,
            run.started,
            run.backend,
            s.cases,
            s.passed,
            s.failed,
            s.flaky,
            s.errors,
            s.skipped,
            s.wrong,
            run.file
        )?;
    }
    let width = history.runs.len().max("history".len());
    let changed = history.cases.iter().filter(|c| c.changed).count();
    writeln!(
        out,
        "\ncases: {}, changed verdict: {changed} (history, newest first: . pass, X fail, ? flaky, ! error, s skipped, - not run)",
        history.cases.len()
    )?;
    writeln!(out, "{}", header(width, "case"))?;
    for case in &history.cases {
        write_case(out, case, width)?;
    }
    if history.cells.is_empty() {
        return Ok(());
    }
    let changed = history.cells.iter().filter(|c| c.changed).count();
    writeln!(
        out,
        "\ncells not always as expected: {}, changed verdict: {changed} (. as expected, X wrong, ? inconclusive, ! probe failed, # undefined, - not probed)",
        history.cells.len()
    )?;
    writeln!(out, "{}", header(width, "cell"))?;
    for of_case in history.cells.chunk_by(|a, b| a.case == b.case) {
        // Past the cap, the cells that changed verdict (the flakes) are the ones kept; they print
        // in order all the same.
        let (changed, steady) = (0..of_case.len()).partition::<Vec<usize>, _>(|&i| of_case[i].changed);
        let mut listed: Vec<usize> = changed.into_iter().chain(steady).take(CELLS_PER_CASE).collect();
        listed.sort_unstable();
        let listed: Vec<&CellHistory> = listed.into_iter().map(|i| &of_case[i]).collect();
        for of_step in listed.chunk_by(|a, b| a.step == b.step) {
            writeln!(out, "{}, step {}: {}", of_step[0].case, of_step[0].step, of_step[0].step_name)?;
            for cell in of_step {
                write_cell(out, cell, width)?;
            }
        }
        if of_case.len() > listed.len() {
            writeln!(out, "  ... and {} more (-o json and -o html list each)", of_case.len() - listed.len())?;
        }
    }
    Ok(())
}

fn header(width: usize, what: &str) -> String {
    format!("{:<width$}  runs  pass  fail  flaky  error  {what}", "history")
}

fn write_case(out: &mut impl Write, case: &CaseHistory, width: usize) -> io::Result<()> {
    let history: String = case.results.iter().map(|r| result_symbol(*r)).collect();
    writeln!(out, "{}", line(&history, width, &case.counts, &case.id, case.changed))
}

fn write_cell(out: &mut impl Write, cell: &CellHistory, width: usize) -> io::Result<()> {
    let history: String = cell.verdicts.iter().map(|v| verdict_symbol(*v)).collect();
    writeln!(out, "{}", line(&history, width, &cell.counts, &format!("  {}", cell_name(cell)), cell.changed))
}

/// The symbols, the counted runs, the four rates, the name and the flag.
fn line(history: &str, width: usize, counts: &Counts, name: &str, changed: bool) -> String {
    format!(
        "{history:<width$}  {:>4}  {:>4}  {:>4}  {:>5}  {:>5}  {name}{}",
        counts.runs,
        counts.rate(counts.passed),
        counts.rate(counts.failed),
        counts.rate(counts.flaky),
        counts.rate(counts.errors),
        if changed { "  changed" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{RunInfo, SCHEMA};
    use netmatrix_model::Protocol;
    use netmatrix_results::{Check, Comparison};

    fn cell(case: &str, step: usize, dst: usize) -> CellHistory {
        CellHistory {
            case: case.into(),
            step,
            step_name: format!("s{step}"),
            src: "x/a".into(),
            dst: format!("x/p{dst:02}"),
            port: 80,
            protocol: Protocol::Tcp,
            check: Check::Reach,
            verdicts: vec![Some(Comparison::Wrong)],
            counts: Counts { runs: 1, failed: 1, ..Counts::default() },
            changed: false,
        }
    }

    #[test]
    fn twelve_cells_per_case_those_that_changed_first_then_a_count() {
        let mut cells: Vec<CellHistory> = (0..8).map(|d| cell("s/big", 1, d)).chain((20..27).map(|d| cell("s/big", 2, d))).collect();
        cells[14].changed = true;
        cells.push(cell("s/small", 1, 0));
        let run = RunInfo {
            file: "r.json".into(),
            started: "2025-05-01T00:00:00Z".into(),
            backend: "lab".into(),
            profile: String::new(),
            summary: Default::default(),
        };
        let history = History { schema: SCHEMA, runs: vec![run], cases: vec![], cells };
        let mut out = Vec::new();
        write(&mut out, &history).unwrap();
        let text = String::from_utf8(out).unwrap();
        let listed = |dst: &str| text.contains(&format!("x/a -> {dst} 80/TCP"));
        assert!(text.contains("\ns/big, step 2: s2\n") && listed("x/p07") && listed("x/p22") && !listed("x/p23"), "8 of step 1, 3 of step 2: {text}");
        assert!(text.contains("x/a -> x/p26 80/TCP  changed\n  ... and 3 more"), "a cell that changed verdict is listed first: {text}");
        assert!(text.contains("\n  ... and 3 more (-o json and -o html list each)\ns/small, step 1: s1\n"), "{text}");
        assert_eq!(text.matches(" -> ").count(), 13, "{text}");
    }
}
