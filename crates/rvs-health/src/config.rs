//! Serde configuration types for health checks, their timing and the policy, with defaults.
//! Durations are seconds as numbers (`interval = 0.2`). Every struct denies unknown fields so a
//! typo in the daemon's TOML is an error, not a silently ignored setting. The README documents
//! each field.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::state::{StartState, Timing};

/// A configuration error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A duration is negative, not finite or absurdly large.
    #[error("{field}: invalid duration {value} (seconds, 0 ..= 1e6)")]
    Duration {
        /// Field name.
        field: &'static str,
        /// The value given.
        value: String,
    },
    /// Another invalid value.
    #[error("{field}: {message}")]
    Invalid {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { field, message: message.into() }
}

/// Converts seconds to a `Duration`, rejecting negatives, NaN and values over 10^6 s.
pub fn secs(field: &'static str, value: f64) -> Result<Duration, ConfigError> {
    if value.is_finite() && (0.0..=1e6).contains(&value) {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(ConfigError::Duration { field, value: value.to_string() })
    }
}

fn d_interval() -> f64 {
    2.0
}
fn d_timeout() -> f64 {
    1.0
}
fn d_two() -> u32 {
    2
}
fn d_true() -> bool {
    true
}
fn d_jitter() -> f64 {
    0.1
}

/// Health checking of one real server (or the default for all real servers of a service).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Seconds between the starts of two check rounds (sub-second allowed). Default 2.
    #[serde(default = "d_interval")]
    pub interval: f64,
    /// Seconds between rounds while the state is in doubt. Default: half the interval.
    #[serde(default)]
    pub retry_interval: Option<f64>,
    /// Per-check timeout in seconds (checks may override). Default 1.
    #[serde(default = "d_timeout")]
    pub timeout: f64,
    /// Consecutive failed rounds before down. Default 2.
    #[serde(default = "d_two")]
    pub fall: u32,
    /// Consecutive successful rounds before up again. Default 2.
    #[serde(default = "d_two")]
    pub rise: u32,
    /// Seconds a down server must stay healthy before it re-enters. Default 0.
    #[serde(default)]
    pub reentry: f64,
    /// Random initial delay in `[0, interval]`. Default true.
    #[serde(default = "d_true")]
    pub warmup: bool,
    /// Initial state: "up" (default) or "down" (alpha).
    #[serde(default)]
    pub start: StartState,
    /// Random spread of each interval, fraction in [0, 0.5]. Default 0.1.
    #[serde(default = "d_jitter")]
    pub jitter: f64,
    /// The checks; all must pass. Default: one TCP connect check.
    #[serde(default = "default_checks")]
    pub checks: Vec<CheckConfig>,
}

fn default_checks() -> Vec<CheckConfig> {
    vec![CheckConfig::Tcp(TcpCheckConfig::default())]
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            interval: d_interval(),
            retry_interval: None,
            timeout: d_timeout(),
            fall: 2,
            rise: 2,
            reentry: 0.0,
            warmup: true,
            start: StartState::Up,
            jitter: d_jitter(),
            checks: default_checks(),
        }
    }
}

impl HealthConfig {
    /// The validated timing.
    pub fn timing(&self) -> Result<Timing, ConfigError> {
        let interval = secs("interval", self.interval)?;
        if interval < Duration::from_millis(10) {
            return Err(invalid("interval", "must be at least 0.01 s"));
        }
        let retry_interval = match self.retry_interval {
            Some(r) => secs("retry_interval", r)?.max(Duration::from_millis(10)),
            None => interval / 2,
        };
        if self.fall == 0 {
            return Err(invalid("fall", "must be at least 1"));
        }
        if self.rise == 0 {
            return Err(invalid("rise", "must be at least 1"));
        }
        if !(0.0..=0.5).contains(&self.jitter) {
            return Err(invalid("jitter", "must be within [0, 0.5]"));
        }
        Ok(Timing {
            interval,
            retry_interval,
            timeout: secs("timeout", self.timeout)?,
            fall: self.fall,
            rise: self.rise,
            reentry: secs("reentry", self.reentry)?,
            warmup: self.warmup,
            start: self.start,
            jitter: self.jitter,
        })
    }
}

/// One check. `type` selects the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CheckConfig {
    /// TCP connect.
    Tcp(TcpCheckConfig),
    /// HTTP request.
    Http(HttpCheckConfig),
    /// HTTPS request (TLS via rustls).
    Https(HttpCheckConfig),
    /// Raw TCP send/expect (piranha).
    SendExpect(SendExpectCheckConfig),
    /// UDP send/expect.
    Udp(UdpCheckConfig),
    /// DNS query over UDP.
    Dns(DnsCheckConfig),
    /// ICMP echo.
    Ping(PingCheckConfig),
    /// External command.
    External(ExternalCheckConfig),
    /// Always passes.
    On,
    /// Always fails.
    Off,
}

/// TCP connect check.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpCheckConfig {
    /// Port to check (default: the real server's port).
    #[serde(default)]
    pub port: Option<u16>,
    /// Source address to bind.
    #[serde(default)]
    pub bind: Option<IpAddr>,
    /// Timeout override in seconds.
    #[serde(default)]
    pub timeout: Option<f64>,
}

/// HTTP method of a negotiate check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    /// GET.
    #[default]
    Get,
    /// HEAD.
    Head,
}

/// HTTP version of a negotiate check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum HttpVersion {
    /// HTTP/1.0.
    #[serde(rename = "1.0")]
    V10,
    /// HTTP/1.1.
    #[default]
    #[serde(rename = "1.1")]
    V11,
}

fn d_path() -> String {
    "/".into()
}
fn d_status() -> String {
    "200-299".into()
}
fn d_max_response() -> usize {
    65536
}

/// HTTP/HTTPS negotiate check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpCheckConfig {
    /// Port to check (default: the real server's port).
    #[serde(default)]
    pub port: Option<u16>,
    /// Source address to bind.
    #[serde(default)]
    pub bind: Option<IpAddr>,
    /// Timeout override in seconds.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// GET (default) or HEAD.
    #[serde(default)]
    pub method: HttpMethod,
    /// Request path. Default "/".
    #[serde(default = "d_path")]
    pub path: String,
    /// Host header (and default SNI). Default: the real server's address and check port.
    #[serde(default)]
    pub host: Option<String>,
    /// "1.0" or "1.1" (default).
    #[serde(default)]
    pub http_version: HttpVersion,
    /// Accepted status codes: comma-separated codes and ranges. Default "200-299".
    #[serde(default = "d_status")]
    pub status: String,
    /// The body must contain this text.
    #[serde(default)]
    pub expect_body: Option<String>,
    /// The body must match this regex (the `regex` crate's syntax).
    #[serde(default)]
    pub expect_regex: Option<String>,
    /// Bytes of response read at most. Default 65536.
    #[serde(default = "d_max_response")]
    pub max_response: usize,
    /// HTTPS only: SNI name (default: the host name, none for an IP address).
    #[serde(default)]
    pub sni: Option<String>,
    /// HTTPS only: PEM file of CA certificates; when set the certificate is verified against it
    /// and the SNI/host name. Without it any certificate is accepted.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl Default for HttpCheckConfig {
    fn default() -> Self {
        HttpCheckConfig {
            port: None,
            bind: None,
            timeout: None,
            method: HttpMethod::Get,
            path: d_path(),
            host: None,
            http_version: HttpVersion::V11,
            status: d_status(),
            expect_body: None,
            expect_regex: None,
            max_response: d_max_response(),
            sni: None,
            ca_file: None,
        }
    }
}

fn d_small_cap() -> usize {
    4096
}

/// Raw TCP send/expect check (piranha `send`/`expect`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendExpectCheckConfig {
    /// Port to check (default: the real server's port).
    #[serde(default)]
    pub port: Option<u16>,
    /// Source address to bind.
    #[serde(default)]
    pub bind: Option<IpAddr>,
    /// Timeout override in seconds.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Text sent after connecting (`\n`, `\r`, `\t`, `\\`, `\'`, `\"`, `\0`, `\xHH` escapes).
    #[serde(default)]
    pub send: String,
    /// Expected start of the reply; `*` matches anything. None: connecting (and sending) suffices.
    #[serde(default)]
    pub expect: Option<String>,
    /// Treat `expect` as a regex searched in the reply instead.
    #[serde(default)]
    pub regex: bool,
    /// Bytes of reply read at most. Default 4096.
    #[serde(default = "d_small_cap")]
    pub max_response: usize,
}

/// How a UDP payload or pattern is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PayloadFormat {
    /// Text with escapes; in patterns `*` matches anything.
    #[default]
    Text,
    /// Hex digits (spaces allowed); in patterns `X` matches any nibble.
    Hex,
}

/// UDP send/expect check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpCheckConfig {
    /// Port to check (default: the real server's port).
    #[serde(default)]
    pub port: Option<u16>,
    /// Source address to bind.
    #[serde(default)]
    pub bind: Option<IpAddr>,
    /// Timeout override in seconds.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// The datagram sent.
    #[serde(default)]
    pub payload: String,
    /// Expected start of the reply; None: no reply needed, only an ICMP unreachable fails.
    #[serde(default)]
    pub expect: Option<String>,
    /// Format of `payload` and `expect`.
    #[serde(default)]
    pub format: PayloadFormat,
}

fn d_dns_name() -> String {
    ".".into()
}
fn d_dns_type() -> String {
    "SOA".into()
}

/// DNS query check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DnsCheckConfig {
    /// Port to check (default: the real server's port).
    #[serde(default)]
    pub port: Option<u16>,
    /// Source address to bind.
    #[serde(default)]
    pub bind: Option<IpAddr>,
    /// Timeout override in seconds.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Name queried. Default ".".
    #[serde(default = "d_dns_name")]
    pub name: String,
    /// Query type: A, NS, CNAME, SOA (default), PTR, MX, TXT, AAAA, SRV, ANY or a number.
    #[serde(default = "d_dns_type", rename = "qtype")]
    pub query_type: String,
    /// Expected rcode (NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED or a number). When
    /// set, the answer section may be empty; when not, success = NOERROR with ≥ 1 answer.
    #[serde(default)]
    pub expect_rcode: Option<String>,
    /// Set the RD (recursion desired) bit. Default true.
    #[serde(default = "d_true")]
    pub recursion_desired: bool,
}

/// ICMP echo check.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PingCheckConfig {
    /// Source address to bind.
    #[serde(default)]
    pub bind: Option<IpAddr>,
    /// Timeout override in seconds.
    #[serde(default)]
    pub timeout: Option<f64>,
}

/// External command check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalCheckConfig {
    /// Program (path or name looked up in PATH).
    pub program: String,
    /// Arguments; `{vip}`, `{vport}`, `{rip}`, `{rport}` (and `{port}`, the check port) are
    /// replaced. Default: the ldirectord order `{vip} {vport} {rip} {rport}`.
    #[serde(default = "d_args")]
    pub args: Vec<String>,
    /// Port used for `{port}` (default: the real server's port).
    #[serde(default)]
    pub port: Option<u16>,
    /// Timeout override in seconds; the command is killed (with its process group) past it.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// keepalived `misc_dynamic`: exit 0 up, 1 down, 2..=255 up with weight = status - 2.
    #[serde(default)]
    pub dynamic: bool,
    /// Bytes of stdout and of stderr kept (for the reason). Default 4096.
    #[serde(default = "d_small_cap")]
    pub output_cap: usize,
}

fn d_args() -> Vec<String> {
    ["{vip}", "{vport}", "{rip}", "{rport}"].map(String::from).to_vec()
}

/// What to do with a real server that goes down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnDown {
    /// Keep it with weight 0: existing connections finish (ldirectord `quiescent`, keepalived
    /// `inhibit_on_failure`). Default.
    #[default]
    Quiesce,
    /// Delete it from the service.
    Remove,
}

/// Forwarding method of the sorry server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SorryMethod {
    /// NAT. Default.
    #[default]
    Masq,
    /// Direct routing.
    Route,
    /// IP-in-IP tunnel.
    Tunnel,
    /// Local node.
    Local,
}

fn d_one() -> u32 {
    1
}

/// The sorry (fallback) server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SorryServerConfig {
    /// Address.
    pub addr: IpAddr,
    /// Port (default: the service port, or 0 for fwmark services).
    #[serde(default)]
    pub port: Option<u16>,
    /// Forwarding method. Default masq.
    #[serde(default)]
    pub method: SorryMethod,
    /// Weight. Default 1.
    #[serde(default = "d_one")]
    pub weight: u32,
}

fn d_notify_timeout() -> f64 {
    10.0
}

/// Notify commands run on real-server and quorum changes (see the README for the arguments).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Program run for every real-server up/down (mon alert style arguments).
    #[serde(default)]
    pub program: Option<String>,
    /// Extra arguments placed before the mon-style ones.
    #[serde(default)]
    pub args: Vec<String>,
    /// The `-g` group name. Default: the service in `proto:vip:vport` / `fwmark:N` form.
    #[serde(default)]
    pub group: Option<String>,
    /// Command (program and arguments) run when the service regains quorum.
    #[serde(default)]
    pub quorum_up: Option<Vec<String>>,
    /// Command (program and arguments) run when the service loses quorum.
    #[serde(default)]
    pub quorum_down: Option<Vec<String>>,
    /// Seconds before a notify command is killed. Default 10.
    #[serde(default = "d_notify_timeout")]
    pub timeout: f64,
}

/// What the director does with health changes of one service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    /// "quiesce" (default) or "remove".
    #[serde(default)]
    pub on_down: OnDown,
    /// Fallback server, present only while quorum is lost.
    #[serde(default)]
    pub sorry_server: Option<SorryServerConfig>,
    /// Minimum total weight of healthy real servers. Default 1.
    #[serde(default = "d_one")]
    pub quorum: u32,
    /// Quorum is gained at ≥ quorum + hysteresis and lost below quorum − hysteresis. Default 0.
    #[serde(default)]
    pub hysteresis: u32,
    /// Notify commands.
    #[serde(default)]
    pub notify: Option<NotifyConfig>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig { on_down: OnDown::Quiesce, sorry_server: None, quorum: 1, hysteresis: 0, notify: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_from_empty_toml() {
        let c: HealthConfig = toml::from_str("").unwrap();
        assert_eq!(c, HealthConfig::default());
        let t = c.timing().unwrap();
        assert_eq!(t.interval, Duration::from_secs(2));
        assert_eq!(t.retry_interval, Duration::from_secs(1), "half the interval");
        assert_eq!((t.fall, t.rise), (2, 2));
    }

    #[test]
    fn full_toml_parses() {
        let c: HealthConfig = toml::from_str(
            r#"
            interval = 0.2
            fall = 3
            start = "down"
            reentry = 30
            [[checks]]
            type = "http"
            path = "/health"
            status = "200,204,300-302"
            expect_body = "ok"
            [[checks]]
            type = "external"
            program = "/usr/local/bin/check"
            dynamic = true
            [[checks]]
            type = "on"
            "#,
        )
        .unwrap();
        assert_eq!(c.checks.len(), 3);
        let t = c.timing().unwrap();
        assert_eq!(t.interval, Duration::from_millis(200));
        assert_eq!(t.start, StartState::Down);
        let CheckConfig::External(e) = &c.checks[1] else { panic!("not external") };
        assert_eq!(e.args, ["{vip}", "{vport}", "{rip}", "{rport}"]);
    }

    #[test]
    fn unknown_fields_rejected() {
        assert!(toml::from_str::<HealthConfig>("intervall = 1").is_err());
        let bad_check = "[[checks]]\ntype = \"tcp\"\nprot = 80\n";
        assert!(toml::from_str::<HealthConfig>(bad_check).is_err());
        assert!(toml::from_str::<PolicyConfig>("on_down = \"drop\"").is_err());
    }

    #[test]
    fn invalid_timings_rejected() {
        for bad in ["interval = -1", "interval = 0.001", "fall = 0", "rise = 0", "jitter = 0.9", "timeout = nan"] {
            let c: HealthConfig = toml::from_str(bad).unwrap();
            assert!(c.timing().is_err(), "{bad}");
        }
    }
}
