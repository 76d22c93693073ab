//! Writing a command's report files: each renderer to its path, where one was given.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use crate::CliError;

/// A renderer of `R` into a file.
pub type Writer<R> = fn(&mut File, &R) -> io::Result<()>;

/// Writes `report` with each writer whose path is given, naming the file that failed.
pub fn write<R>(report: &R, outputs: &[(&Option<PathBuf>, Writer<R>)]) -> Result<(), CliError> {
    for (path, write) in outputs {
        if let Some(path) = path {
            let io = |source| CliError::Io { what: format!("writing {}", path.display()), source };
            let mut file = File::create(path).map_err(io)?;
            write(&mut file, report).map_err(io)?;
        }
    }
    Ok(())
}
