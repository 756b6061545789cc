//! `-R`: reads rules (one ipvsadm command line per line, as `-S` writes them) and turns
//! them into one transaction. Unlike ipvsadm, which applies line by line and keeps going
//! after refused lines, every line is parsed first; the first bad line stops everything
//! with its line number and nothing is applied.

use rvs_api::Command;

use crate::error::CliError;
use crate::names::Names;
use crate::parse::{Action, Origin, parse_words};

/// A bad restore line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {error}")]
pub struct RestoreError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong with it.
    pub error: CliError,
}

impl RestoreError {
    /// The text for stderr, naming the program as invoked.
    pub fn render(&self, program: &str) -> String {
        format!("line {}: {}", self.line, self.error.render(program))
    }
}

/// The words of one line: white-space separated, a word starting with `#` starts a comment,
/// and a leading `ipvsadm` or `rvsadm` (any directory) is dropped.
pub fn line_words(line: &str) -> Vec<String> {
    let mut words: Vec<String> =
        line.split_whitespace().take_while(|w| !w.starts_with('#')).map(str::to_string).collect();
    if let Some(first) = words.first() {
        let base = first.rsplit('/').next().unwrap_or(first);
        if base == "ipvsadm" || base == "rvsadm" {
            words.remove(0);
        }
    }
    words
}

/// Every command of the input with its 1-based line number, or the first bad line.
pub fn parse_restore(text: &str, names: &dyn Names) -> Result<Vec<(usize, Command)>, RestoreError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let words = line_words(line);
        if words.is_empty() {
            continue;
        }
        let inv =
            parse_words(&words, names, Origin::RestoreLine).map_err(|error| RestoreError { line: number, error })?;
        match inv.action {
            Action::Apply(cmd) => out.push((number, cmd)),
            _ => {
                return Err(RestoreError {
                    line: number,
                    error: CliError::usage(
                        "only -A -E -D -C -a -e -d -Z --set --start-daemon --stop-daemon can be restored",
                    ),
                });
            }
        }
    }
    Ok(out)
}
