//! Feature coverage as text, printed after the cases and before the summary line: one count
//! line, then as `--tables` says the features that failed or could not be decided and those no
//! case exercised (`failed`, the default), every feature (`all`), or nothing more (`none`), so a
//! daily CI log stays short and still shows failures and gaps.

use std::io::{self, Write};

use crate::tables::{GREEN, MAX_WIDTH, RED, Tables, YELLOW, paint};
use netmatrix_results::{CaseResult, FeatureCoverage, FeatureResult, Group, RunReport};

/// Failed cases a row names; the JSON report lists every case of a feature.
const NAMED: usize = 3;

pub fn write_features(out: &mut impl Write, report: &RunReport, color: bool, tables: Tables) -> io::Result<()> {
    let features = &report.features;
    let count = |result: FeatureResult| features.iter().filter(|f| f.result == result).count();
    let exercised = features.len() - count(FeatureResult::NotExercised);
    let failed = count(FeatureResult::Fail);
    let failed = if failed > 0 { paint(color, RED, &failed.to_string()) } else { failed.to_string() };
    writeln!(
        out,
        "features: exercised:{exercised}/{}, passed:{}, failed:{failed}, incomplete:{}",
        features.len(),
        count(FeatureResult::Pass),
        count(FeatureResult::Incomplete)
    )?;
    let rows: Vec<&FeatureCoverage> = match tables {
        Tables::All => features.iter().collect(),
        Tables::Failed => features.iter().filter(|f| matches!(f.result, FeatureResult::Fail | FeatureResult::Incomplete)).collect(),
        Tables::None => return Ok(()),
    };
    write_table(out, report, &rows, color)?;
    if tables == Tables::Failed {
        write_wrapped(out, "not exercised: ", &gaps(features))?;
    }
    Ok(())
}

/// The features no case exercised, a group none of whose features a case exercised as one item
/// (a run of one suite does not list every feature of the others).
fn gaps(features: &[FeatureCoverage]) -> Vec<String> {
    let mut items = Vec::new();
    let mut groups: Vec<Group> = features.iter().map(|f| f.group).collect();
    groups.dedup();
    for group in groups {
        let of_group = || features.iter().filter(move |f| f.group == group);
        if of_group().all(|f| f.result == FeatureResult::NotExercised) {
            items.push(format!("every {} feature", group.as_str()));
        } else {
            items.extend(of_group().filter(|f| f.result == FeatureResult::NotExercised).map(|f| f.feature.clone()));
        }
    }
    items
}

/// Per feature its result and case counts; a failed feature names the cases that failed.
fn write_table(out: &mut impl Write, report: &RunReport, rows: &[&FeatureCoverage], color: bool) -> io::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let width = rows.iter().map(|f| f.feature.len()).max().unwrap_or(0).max("feature".len());
    let result_width = FeatureResult::NotExercised.as_str().len();
    writeln!(out, "{:<width$}  {:<result_width$}  cases  passed  failed", "feature", "result")?;
    for f in rows {
        let name = f.result.as_str();
        let padding = " ".repeat(result_width - name.len());
        let result = match f.result {
            FeatureResult::Pass => paint(color, GREEN, name),
            FeatureResult::Fail => paint(color, RED, name),
            FeatureResult::Incomplete => paint(color, YELLOW, name),
            FeatureResult::NotExercised => name.to_owned(),
        } + &padding;
        let mut line = format!("{:<width$}  {result}  {:>5}  {:>6}  {:>6}", f.feature, f.cases.len(), f.passed, f.failed);
        if f.result == FeatureResult::Fail {
            let failing: Vec<&str> = report.cases.iter().filter(|c| c.result == CaseResult::Fail && f.cases.contains(&c.id)).map(|c| c.id.as_str()).collect();
            line.push_str(&format!("  failed: {}", failing[..failing.len().min(NAMED)].join(", ")));
            if failing.len() > NAMED {
                line.push_str(&format!(" and {} more", failing.len() - NAMED));
            }
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// `label` and the items, comma-separated, in lines of at most [`MAX_WIDTH`] columns.
fn write_wrapped(out: &mut impl Write, label: &str, items: &[String]) -> io::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    let mut line = label.to_owned();
    for (i, item) in items.iter().enumerate() {
        let piece = if i + 1 < items.len() { format!("{item},") } else { item.clone() };
        if line.len() + 1 + piece.len() > MAX_WIDTH && line.len() > label.len() {
            writeln!(out, "{line}")?;
            line = " ".repeat(label.len());
        } else if line.len() > label.len() {
            line.push(' ');
        }
        line.push_str(&piece);
    }
    writeln!(out, "{line}")
}
