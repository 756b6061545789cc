//! Importers from the HA tools the seeds use to rvs TOML: heartbeat v1 (`ha.cf`,
//! `haresources`, `authkeys`) and keepalived (`vrrp_instance` / `vrrp_script` blocks). Each
//! produces the `[[vrrp]]` tables for one director plus the list of what could not be mapped
//! (with the reason), so the operator can finish by hand. The output always parses with
//! [`crate::Config::parse`] (the tests check it).

pub mod heartbeat;
pub mod keepalived;

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
