//! `rvs import ldirectord|piranha|keepalived FILE`: prints the equivalent rvs TOML on stdout
//! and one warning per dropped directive on stderr (the conversion is `rvs_config::import`).
//! Exit status 0 on success (warnings or not), 1 when the file cannot be converted, 2 on
//! usage errors.

use anyhow::{Context, Result};
use rvs_config::import::{Format, import};

const USAGE: &str = "usage: rvs import ldirectord|piranha|keepalived FILE";

/// `rvs import ...`; returns the exit status.
pub fn main(args: &[String]) -> Result<i32> {
    let (Some(format), Some(path), None) = (args.first(), args.get(1), args.get(2)) else {
        eprintln!("{USAGE}");
        return Ok(2);
    };
    let format: Format = match format.parse() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("rvs import: {e}\n{USAGE}");
            return Ok(2);
        }
    };
    let source = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    match import(format, &source, path) {
        Ok(imported) => {
            for w in &imported.warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", imported.toml);
            Ok(0)
        }
        Err(e) => {
            eprintln!("rvs import: {e}");
            Ok(1)
        }
    }
}
