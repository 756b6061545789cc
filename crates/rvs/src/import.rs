//! `rvs import heartbeat [--node NAME] HA_CF HARESOURCES [AUTHKEYS]` and
//! `rvs import keepalived FILE...`: print the `[[vrrp]]` tables for rvsd's configuration on
//! stdout, and what could not be mapped on stderr.

use anyhow::{Context, Result, bail};
use rvs_config::import::{Import, heartbeat, keepalived};

const USAGE: &str =
    "usage: rvs import heartbeat [--node NAME] HA_CF HARESOURCES [AUTHKEYS]\n       rvs import keepalived FILE...";

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {path}"))
}

fn report(out: &Import) {
    print!("{}", out.toml);
    for u in &out.unmapped {
        eprintln!("rvs import: not mapped: {u}");
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
        Some("keepalived") if args.len() > 1 => {
            for path in args.iter().skip(1) {
                report(&keepalived::import(path, &read(path)?));
            }
            Ok(0)
        }
        _ => {
            eprintln!("{USAGE}");
            Ok(2)
        }
    }
}
