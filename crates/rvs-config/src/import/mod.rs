//! Importers from the tools the seeds use to rvs TOML.
//!
//! - Director failover: heartbeat v1 (`ha.cf`, `haresources`, `authkeys`) and keepalived
//!   (`vrrp_instance` / `vrrp_script` blocks) become `[[vrrp]]` tables ([`heartbeat`],
//!   [`keepalived`]), with the list of what could not be mapped.
//! - Services and health checks ([`import`]): ldirectord's `ldirectord.cf`, piranha's `lvs.cf`
//!   and keepalived's `virtual_server` blocks become `[[service]]` tables with
//!   `[service.health]` and checks. Every directive that has no rvs equivalent (or is not
//!   mapped) gives a warning naming its file and line; nothing is dropped silently. Each format
//!   module parses its syntax into the small output model below ([`Doc`]); [`Doc::render`]
//!   writes the TOML. For keepalived both parts run and their outputs are joined.
//!
//! The output always parses with [`crate::Config::parse`] (the tests check it).

pub mod heartbeat;
pub mod keepalived;
mod keepalived_lvs;
mod ldirectord;
mod piranha;

/// The result of an import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Import {
    /// rvs TOML (`[[vrrp]]` tables).
    pub toml: String,
    /// What was not mapped, one line each: `file:line: directive: why`.
    pub unmapped: Vec<String>,
}

/// A TOML basic string literal.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Seconds as TOML (`1`, `0.05`).
pub(crate) fn secs(ms: u64) -> String {
    if ms.is_multiple_of(1000) { (ms / 1000).to_string() } else { format!("{}", ms as f64 / 1000.0) }
}

/// A key as `hex:...` so any bytes survive.
pub(crate) fn hex_key(bytes: &[u8]) -> String {
    let mut s = String::from("hex:");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

use std::fmt;
use std::net::IpAddr;

/// The formats `rvs import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// ldirectord.cf.
    Ldirectord,
    /// piranha's lvs.cf.
    Piranha,
    /// keepalived.conf (the `virtual_server` blocks).
    Keepalived,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "ldirectord" => Ok(Format::Ldirectord),
            "piranha" => Ok(Format::Piranha),
            "keepalived" => Ok(Format::Keepalived),
            other => Err(format!("unknown format `{other}' (ldirectord, piranha or keepalived)")),
        }
    }
}

/// The result of an import: the rvs configuration and what could not be carried over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// rvs TOML.
    pub toml: String,
    /// One line per dropped or approximated directive: `file:line: ...`.
    pub warnings: Vec<String>,
}

/// A file that cannot be imported at all (e.g. a real server given by host name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    /// The file name.
    pub file: String,
    /// 1-based line (0: not about one line).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        } else {
            write!(f, "{}: {}", self.file, self.message)
        }
    }
}

impl std::error::Error for ImportError {}

/// Converts `source` (named `file` in messages) from `format` to rvs TOML.
pub fn import(format: Format, source: &str, file: &str) -> Result<Imported, ImportError> {
    let mut ctx = Ctx { file: file.to_string(), warnings: Vec::new() };
    let doc = match format {
        Format::Ldirectord => ldirectord::convert(source, &mut ctx)?,
        Format::Piranha => piranha::convert(source, &mut ctx)?,
        Format::Keepalived => keepalived_lvs::convert(source, &mut ctx)?,
    };
    let name = match format {
        Format::Ldirectord => "ldirectord",
        Format::Piranha => "piranha",
        Format::Keepalived => "keepalived",
    };
    let mut out = Imported { toml: doc.render(file, name), warnings: ctx.warnings };
    if format == Format::Keepalived {
        // The VRRP part: [[vrrp]] tables. Its notes on `virtual_server` are the LVS part's job.
        let vrrp = keepalived::import(file, source);
        if vrrp.toml.contains("[[vrrp]]") {
            out.toml.push('\n');
            out.toml.push_str(&vrrp.toml);
        }
        out.warnings.extend(
            vrrp.unmapped
                .into_iter()
                .filter(|u| !u.contains(": virtual_server: ") && !u.contains(": virtual_server_group: ")),
        );
    }
    Ok(out)
}

/// Where messages go while converting.
pub(crate) struct Ctx {
    file: String,
    warnings: Vec<String>,
}

impl Ctx {
    pub(crate) fn warn(&mut self, line: usize, message: impl fmt::Display) {
        self.warnings.push(format!("{}:{line}: {message}", self.file));
    }

    pub(crate) fn dropped(&mut self, line: usize, directive: &str, why: &str) {
        self.warn(line, format!("`{directive}' dropped: {why}"));
    }

    pub(crate) fn error(&self, line: usize, message: impl Into<String>) -> ImportError {
        ImportError { file: self.file.clone(), line, message: message.into() }
    }
}

/// Keys and TOML literal values, in order.
pub(crate) type Table = Vec<(String, String)>;

/// A real server in the output.
#[derive(Debug, Default)]
pub(crate) struct Real {
    pub keys: Table,
    pub checks: Vec<Table>,
}

/// A service in the output.
#[derive(Debug, Default)]
pub(crate) struct Svc {
    pub comments: Vec<String>,
    pub keys: Table,
    pub health: Table,
    pub checks: Vec<Table>,
    pub reals: Vec<Real>,
}

/// The output model.
#[derive(Debug, Default)]
pub(crate) struct Doc {
    pub health: Table,
    pub timeouts: Table,
    pub services: Vec<Svc>,
}

/// A TOML string literal.
pub(crate) fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML array of strings.
pub(crate) fn q_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| q(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// A duration in seconds as a TOML number.
pub(crate) fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") }
}

/// `host:port` as rvs writes it (`[v6]:port`).
pub(crate) fn host_port(addr: IpAddr, port: Option<u16>) -> String {
    match (addr, port) {
        (IpAddr::V4(a), Some(p)) => format!("{a}:{p}"),
        (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        (a, None) => a.to_string(),
    }
}

fn write_table(out: &mut String, t: &Table) {
    for (k, v) in t {
        out.push_str(&format!("{k} = {v}\n"));
    }
}

impl Doc {
    /// The rvs TOML.
    pub(crate) fn render(&self, file: &str, format: &str) -> String {
        let mut out = format!("# Imported from {file} ({format}) by `rvs import`; see docs/config.md.\n");
        if !self.health.is_empty() {
            out.push_str("\n[health]\n");
            write_table(&mut out, &self.health);
        }
        if !self.timeouts.is_empty() {
            out.push_str("\n[timeouts]\n");
            write_table(&mut out, &self.timeouts);
        }
        for s in &self.services {
            out.push('\n');
            for c in &s.comments {
                out.push_str(&format!("# {c}\n"));
            }
            out.push_str("[[service]]\n");
            write_table(&mut out, &s.keys);
            if !s.health.is_empty() || !s.checks.is_empty() {
                out.push_str("\n[service.health]\n");
                write_table(&mut out, &s.health);
                for c in &s.checks {
                    out.push_str("\n[[service.health.check]]\n");
                    write_table(&mut out, c);
                }
            }
            for r in &s.reals {
                out.push_str("\n[[service.real]]\n");
                write_table(&mut out, &r.keys);
                for c in &r.checks {
                    out.push_str("\n[[service.real.check]]\n");
                    write_table(&mut out, c);
                }
            }
        }
        out
    }
}

/// Parses an address, refusing host names (they are not resolved).
pub(crate) fn parse_ip(ctx: &Ctx, line: usize, text: &str) -> Result<IpAddr, ImportError> {
    let t = text.trim().trim_start_matches('[').trim_end_matches(']');
    t.parse().map_err(|_| {
        ctx.error(line, format!("`{text}' is not an IP address (host names are not resolved: write the address)"))
    })
}

/// Splits `ip:port`, `[v6]:port`, `ip` or `[v6]`.
pub(crate) fn parse_ip_port(ctx: &Ctx, line: usize, text: &str) -> Result<(IpAddr, Option<u16>), ImportError> {
    let t = text.trim();
    if let Ok(sa) = t.parse::<std::net::SocketAddr>() {
        return Ok((sa.ip(), Some(sa.port())));
    }
    if !t.starts_with('[')
        && t.matches(':').count() == 1
        && let Some((h, p)) = t.split_once(':')
    {
        let port = p.parse::<u16>().map_err(|_| ctx.error(line, format!("`{p}' is not a port")))?;
        return Ok((parse_ip(ctx, line, h)?, Some(port)));
    }
    Ok((parse_ip(ctx, line, t)?, None))
}

/// Strips one pair of surrounding double quotes.
pub(crate) fn unquote(s: &str) -> &str {
    let s = s.trim();
    s.strip_prefix('"').and_then(|x| x.strip_suffix('"')).unwrap_or(s)
}
