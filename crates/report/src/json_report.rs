//! `--json`: the run report as pretty JSON, schema `netmatrix.run/v1` (DESIGN.md).

use std::io::{self, Write};

use netmatrix_results::RunReport;

/// Writes `report` as it is: its `schema` field is the `run::SCHEMA` the engine set.
pub fn write_json(out: &mut impl Write, report: &RunReport) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)
}
