//! `rvs import`: converts the configurations of the tools the seeds use to rvs TOML on stdout,
//! with one `warning: FILE:LINE: ...` line on stderr for everything that could not be mapped.
//!
//! - `rvs import ldirectord FILE` / `rvs import piranha FILE`: services, real servers and
//!   their health checks.
//! - `rvs import keepalived FILE...`: the `virtual_server` blocks (services and checks) and the
//!   `vrrp_instance` / `vrrp_script` blocks (`[[vrrp]]` failover tables).
//! - `rvs import heartbeat [--node NAME] HA_CF HARESOURCES [AUTHKEYS]`: `[[vrrp]]` tables.
//!
//! Exit status 0 on success (warnings or not), 1 when a file cannot be converted, 2 on usage
//! errors.

use anyhow::{Context, Result, bail};
use rvs_config::import::{Format, Import, heartbeat, import};

const USAGE: &str = "usage: rvs import ldirectord|piranha FILE\n       rvs import keepalived FILE...\n       \
                     rvs import heartbeat [--node NAME] HA_CF HARESOURCES [AUTHKEYS]";

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {path}"))
}

fn report(out: &Import) {
    print!("{}", out.toml);
    for u in &out.unmapped {
        eprintln!("warning: {u}");
    }
}

/// Converts one file of a services format; false if it cannot be converted.
fn services(format: Format, path: &str) -> Result<bool> {
    match import(format, &read(path)?, path) {
        Ok(imported) => {
            for w in &imported.warnings {
                eprintln!("warning: {w}");
            }
            print!("{}", imported.toml);
            Ok(true)
        }
        Err(e) => {
            eprintln!("rvs import: {e}");
            Ok(false)
        }
    }
}

/// Runs the subcommand; returns the exit code.
pub fn main(args: &[String]) -> Result<i32> {
    match args.first().map(String::as_str) {
        Some("heartbeat") => {
            let mut rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
            let mut node = None;
            if let Some(i) = rest.iter().position(|a| *a == "--node") {
                node = Some(rest.get(i + 1).copied().context("--node needs a name")?.to_string());
                rest.drain(i..=i + 1);
            }
            let (ha, res, keys) = match rest.as_slice() {
                [ha, res] => (*ha, *res, None),
                [ha, res, keys] => (*ha, *res, Some(*keys)),
                _ => bail!("{USAGE}"),
            };
            let (ha_text, res_text) = (read(ha)?, read(res)?);
            let keys_text = keys.map(read).transpose()?;
            let out =
                heartbeat::import((ha, &ha_text), (res, &res_text), keys.zip(keys_text.as_deref()), node.as_deref());
            report(&out);
            Ok(0)
        }
        Some(kind @ ("ldirectord" | "piranha" | "keepalived")) if args.len() > 1 => {
            let format: Format = kind.parse().map_err(anyhow::Error::msg)?;
            if format != Format::Keepalived && args.len() != 2 {
                eprintln!("{USAGE}");
                return Ok(2);
            }
            let mut ok = true;
            for path in args.iter().skip(1) {
                ok &= services(format, path)?;
            }
            Ok(if ok { 0 } else { 1 })
        }
        _ => {
            eprintln!("{USAGE}");
            Ok(2)
        }
    }
}
