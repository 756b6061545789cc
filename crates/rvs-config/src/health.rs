//! Health checking in the configuration: the global `[health]` table, each service's
//! `[service.health]` block (timing defaults and policy for its real servers) and each real
//! server's `[[service.real.check]]` entries. The raw serde types refuse unknown keys; the
//! validated form ([`HealthPlan`]) holds `rvs-health`'s own configuration types, with every
//! check compiled once so a bad regex, status set or CA file is refused at load time, located
//! at the check that holds it.
//!
//! A service is health-checked when it has a `[service.health]` block or any of its real
//! servers has a check. Its real servers without checks of their own use the block's `check`
//! list, or a TCP connect to the real server's port when that is empty too.

use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use rvs_api::{DestSpec, MethodSpec, ServiceId};
use rvs_health::config::{NotifyConfig, OnDown, SorryMethod, SorryServerConfig, TcpCheckConfig};
use rvs_health::state::StartState;
use rvs_health::{Check, CheckConfig, HealthConfig, PolicyConfig};
use serde::Deserialize;
use toml::Spanned;

use crate::raw::RawService;
use crate::validate::Ctx;
use crate::{ConfigError, ErrorKind, ServiceEntry};

/// Default seconds between two looks at the configuration file's modification time.
pub const DEFAULT_AUTORELOAD_INTERVAL: f64 = 1.0;
/// Default seconds between two looks at the maintenance directory.
pub const DEFAULT_MAINTENANCE_INTERVAL: f64 = 0.5;

/// `[health]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHealthSettings {
    #[serde(default)]
    pub autoreload: Option<Spanned<bool>>,
    #[serde(default)]
    pub autoreload_interval: Option<Spanned<f64>>,
    #[serde(default)]
    pub maintenance_dir: Option<Spanned<String>>,
    #[serde(default)]
    pub maintenance_interval: Option<Spanned<f64>>,
    #[serde(default)]
    pub workers: Option<Spanned<u32>>,
    #[serde(default)]
    pub max_threads: Option<Spanned<u32>>,
}

/// `[service.health]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServiceHealth {
    #[serde(default)]
    pub interval: Option<Spanned<f64>>,
    #[serde(default)]
    pub retry_interval: Option<Spanned<f64>>,
    #[serde(default)]
    pub timeout: Option<Spanned<f64>>,
    #[serde(default)]
    pub fall: Option<Spanned<u32>>,
    #[serde(default)]
    pub rise: Option<Spanned<u32>>,
    #[serde(default)]
    pub reentry: Option<Spanned<f64>>,
    #[serde(default)]
    pub warmup: Option<Spanned<bool>>,
    #[serde(default)]
    pub start: Option<Spanned<StartState>>,
    #[serde(default)]
    pub jitter: Option<Spanned<f64>>,
    #[serde(default)]
    pub on_down: Option<Spanned<OnDown>>,
    #[serde(default)]
    pub sorry_server: Option<Spanned<SorryServerConfig>>,
    #[serde(default)]
    pub quorum: Option<Spanned<u32>>,
    #[serde(default)]
    pub hysteresis: Option<Spanned<u32>>,
    #[serde(default)]
    pub notify: Option<Spanned<NotifyConfig>>,
    #[serde(default)]
    pub check: Vec<Spanned<CheckConfig>>,
}

/// `[health]`: settings of the health checker and of the control plane's automation
/// (ldirectord's global directives).
#[derive(Debug, Clone, PartialEq)]
pub struct HealthSettings {
    /// Re-read the configuration file when its modification time or size changes.
    pub autoreload: bool,
    /// How often the file is looked at.
    pub autoreload_interval: Duration,
    /// ldirectord's `maintenancedir`: a file named `IP:PORT` (or `IP`) here drains that real
    /// server (of every service; `IP` alone: every port).
    pub maintenance_dir: Option<PathBuf>,
    /// How often the maintenance directory is looked at.
    pub maintenance_interval: Duration,
    /// Worker threads running checks.
    pub workers: usize,
    /// Most threads in all, counting workers abandoned on hung checks.
    pub max_threads: usize,
}

impl Default for HealthSettings {
    fn default() -> Self {
        let m = rvs_health::MonitorOptions::default();
        HealthSettings {
            autoreload: false,
            autoreload_interval: Duration::from_secs_f64(DEFAULT_AUTORELOAD_INTERVAL),
            maintenance_dir: None,
            maintenance_interval: Duration::from_secs_f64(DEFAULT_MAINTENANCE_INTERVAL),
            workers: m.workers,
            max_threads: m.max_threads,
        }
    }
}

/// What to check for one real server of a checked service.
#[derive(Debug, Clone, PartialEq)]
pub struct RealHealth {
    /// The real server (address and effective port, as in the service's `reals`).
    pub real: SocketAddr,
    /// Timing (the service's block) and checks (the real server's, else the service's).
    pub config: HealthConfig,
}

/// The health checking of one service.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceHealth {
    /// The service.
    pub service: ServiceId,
    /// What to do with health changes.
    pub policy: PolicyConfig,
    /// Every real server of the service, in configuration order.
    pub reals: Vec<RealHealth>,
}

/// All health settings of a configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HealthPlan {
    /// `[health]`.
    pub settings: HealthSettings,
    /// The checked services, in file order.
    pub services: Vec<ServiceHealth>,
}

// Every float in a plan was checked to be finite (see `seconds` and `HealthConfig::timing`),
// so equality is reflexive.
impl Eq for HealthPlan {}

impl HealthPlan {
    /// The health checking of `service`, if it is checked.
    pub fn service(&self, service: &ServiceId) -> Option<&ServiceHealth> {
        self.services.iter().find(|s| s.service == *service)
    }
}

fn seconds(ctx: &Ctx<'_>, v: &Spanned<f64>, field: &str, min: f64) -> Result<Duration, ConfigError> {
    let s = *v.get_ref();
    if !s.is_finite() || s < min || s > 1e6 {
        return Err(ctx.invalid(v.span(), field, format!("invalid duration {s}: seconds, {min} ..= 1000000")));
    }
    Ok(Duration::from_secs_f64(s))
}

/// Validates `[health]`.
pub(crate) fn settings(ctx: &Ctx<'_>, raw: &RawHealthSettings) -> Result<HealthSettings, ConfigError> {
    let mut out = HealthSettings::default();
    if let Some(a) = &raw.autoreload {
        out.autoreload = *a.get_ref();
    }
    if let Some(i) = &raw.autoreload_interval {
        out.autoreload_interval = seconds(ctx, i, "health.autoreload_interval", 0.05)?;
    }
    if let Some(i) = &raw.maintenance_interval {
        out.maintenance_interval = seconds(ctx, i, "health.maintenance_interval", 0.05)?;
    }
    if let Some(d) = &raw.maintenance_dir {
        let path = PathBuf::from(d.get_ref());
        if !path.is_absolute() {
            return Err(ctx.invalid(d.span(), "health.maintenance_dir", "the maintenance directory must be absolute"));
        }
        out.maintenance_dir = Some(path);
    }
    if let Some(w) = &raw.workers {
        out.workers = usize::try_from(*w.get_ref())
            .ok()
            .filter(|n| (1..=1024).contains(n))
            .ok_or_else(|| ctx.invalid(w.span(), "health.workers", "workers must be within 1..=1024"))?;
    }
    if let Some(m) = &raw.max_threads {
        out.max_threads = usize::try_from(*m.get_ref())
            .ok()
            .filter(|n| (1..=4096).contains(n))
            .ok_or_else(|| ctx.invalid(m.span(), "health.max_threads", "max_threads must be within 1..=4096"))?;
    }
    if out.max_threads < out.workers {
        let span = raw.max_threads.as_ref().or(raw.workers.as_ref()).map_or(0..0, Spanned::span);
        return Err(ctx.conflict(span, "health.max_threads", "max_threads must be at least workers"));
    }
    Ok(out)
}

/// Whether a check kind talks to a port (and so needs one for a real server without port).
fn needs_port(c: &CheckConfig) -> bool {
    match c {
        CheckConfig::Tcp(t) => t.port.is_none(),
        CheckConfig::Http(h) | CheckConfig::Https(h) => h.port.is_none(),
        CheckConfig::SendExpect(s) => s.port.is_none(),
        CheckConfig::Udp(u) => u.port.is_none(),
        CheckConfig::Dns(d) => d.port.is_none(),
        CheckConfig::Ping(_) | CheckConfig::External(_) | CheckConfig::On | CheckConfig::Off => false,
    }
}

/// Compiles a check to refuse what `rvs-health` would refuse, located at the check.
fn compile(ctx: &Ctx<'_>, c: &Spanned<CheckConfig>, at: &str) -> Result<(), ConfigError> {
    Check::from_config(c.get_ref()).map(|_| ()).map_err(|e| {
        let field = match &e {
            rvs_health::ConfigError::Duration { field, .. } | rvs_health::ConfigError::Invalid { field, .. } => {
                format!("{at}.{field}")
            }
        };
        ctx.invalid(c.span(), field, e.to_string())
    })
}

/// The span of a timing field named by `rvs-health`'s validation.
fn timing_span(h: &RawServiceHealth, field: &str) -> Option<Range<usize>> {
    match field {
        "interval" => h.interval.as_ref().map(Spanned::span),
        "retry_interval" => h.retry_interval.as_ref().map(Spanned::span),
        "timeout" => h.timeout.as_ref().map(Spanned::span),
        "fall" => h.fall.as_ref().map(Spanned::span),
        "rise" => h.rise.as_ref().map(Spanned::span),
        "reentry" => h.reentry.as_ref().map(Spanned::span),
        "jitter" => h.jitter.as_ref().map(Spanned::span),
        _ => None,
    }
}

fn service_port(id: &ServiceId) -> u16 {
    match id {
        ServiceId::Addr { port, .. } => *port,
        ServiceId::Fwmark { .. } => 0,
    }
}

fn sorry_dest(service: &ServiceId, s: &SorryServerConfig) -> DestSpec {
    DestSpec {
        addr: s.addr,
        port: s.port.unwrap_or(service_port(service)),
        method: match s.method {
            SorryMethod::Masq => MethodSpec::Masq,
            SorryMethod::Route => MethodSpec::Route,
            SorryMethod::Local => MethodSpec::Local,
            SorryMethod::Tunnel => {
                MethodSpec::Tunnel { tun_type: "ipip".into(), tun_port: 0, tun_csum: "nocsum".into() }
            }
        },
        weight: s.weight,
        u_threshold: 0,
        l_threshold: 0,
    }
}

/// The health checking of service `i` (already validated as `entry`), or None if unchecked.
pub(crate) fn service_health(
    ctx: &Ctx<'_>,
    i: usize,
    svc: &RawService,
    entry: &ServiceEntry,
) -> Result<Option<ServiceHealth>, ConfigError> {
    let any_check = svc.real.iter().any(|r| !r.get_ref().check.is_empty());
    if svc.health.is_none() && !any_check {
        return Ok(None);
    }
    let empty = RawServiceHealth::default();
    let h = svc.health.as_ref().map_or(&empty, |h| h.get_ref());
    let at = |name: &str| format!("service[{i}].health.{name}");
    let d = HealthConfig::default();
    let base = HealthConfig {
        interval: h.interval.as_ref().map_or(d.interval, |v| *v.get_ref()),
        retry_interval: h.retry_interval.as_ref().map(|v| *v.get_ref()),
        timeout: h.timeout.as_ref().map_or(d.timeout, |v| *v.get_ref()),
        fall: h.fall.as_ref().map_or(d.fall, |v| *v.get_ref()),
        rise: h.rise.as_ref().map_or(d.rise, |v| *v.get_ref()),
        reentry: h.reentry.as_ref().map_or(d.reentry, |v| *v.get_ref()),
        warmup: h.warmup.as_ref().map_or(d.warmup, |v| *v.get_ref()),
        start: h.start.as_ref().map_or(d.start, |v| *v.get_ref()),
        jitter: h.jitter.as_ref().map_or(d.jitter, |v| *v.get_ref()),
        checks: Vec::new(),
    };
    if let Err(e) = base.timing() {
        let (field, message) = match &e {
            rvs_health::ConfigError::Duration { field, .. } | rvs_health::ConfigError::Invalid { field, .. } => {
                (*field, e.to_string())
            }
        };
        let span = timing_span(h, field).or_else(|| svc.health.as_ref().map(Spanned::span)).unwrap_or(0..0);
        return Err(ctx.invalid(span, at(field), message));
    }
    for (k, c) in h.check.iter().enumerate() {
        compile(ctx, c, &at(&format!("check[{k}]")))?;
    }
    let id = entry.spec.id;
    let policy = PolicyConfig {
        on_down: h.on_down.as_ref().map_or(OnDown::Quiesce, |v| *v.get_ref()),
        sorry_server: h.sorry_server.as_ref().map(|v| v.get_ref().clone()),
        quorum: h.quorum.as_ref().map_or(1, |v| *v.get_ref()),
        hysteresis: h.hysteresis.as_ref().map_or(0, |v| *v.get_ref()),
        notify: h.notify.as_ref().map(|v| v.get_ref().clone()),
    };
    if let Some(n) = &h.notify
        && (!n.get_ref().timeout.is_finite() || !(0.0..=1e6).contains(&n.get_ref().timeout))
    {
        return Err(ctx.invalid(n.span(), at("notify.timeout"), "invalid duration: seconds, 0 ..= 1000000"));
    }
    if let Some(s) = &h.sorry_server {
        check_sorry(ctx, &id, entry, s, &at("sorry_server"))?;
    }
    let mut reals = Vec::with_capacity(entry.reals.len());
    for (j, (dest, raw)) in entry.reals.iter().zip(&svc.real).enumerate() {
        let own = &raw.get_ref().check;
        for (k, c) in own.iter().enumerate() {
            compile(ctx, c, &format!("service[{i}].real[{j}].check[{k}]"))?;
        }
        let (checks, spans): (Vec<CheckConfig>, Vec<(Range<usize>, String)>) = if !own.is_empty() {
            own.iter()
                .enumerate()
                .map(|(k, c)| (c.get_ref().clone(), (c.span(), format!("service[{i}].real[{j}].check[{k}]"))))
                .unzip()
        } else if !h.check.is_empty() {
            h.check
                .iter()
                .enumerate()
                .map(|(k, c)| (c.get_ref().clone(), (c.span(), at(&format!("check[{k}]")))))
                .unzip()
        } else {
            let span = raw.get_ref().address.span();
            (vec![CheckConfig::Tcp(TcpCheckConfig::default())], vec![(span, format!("service[{i}].real[{j}]"))])
        };
        if dest.port == 0 {
            for (c, (span, field)) in checks.iter().zip(&spans) {
                if needs_port(c) {
                    return Err(ctx.error(
                        ErrorKind::MissingField,
                        span.clone(),
                        format!("{field}.port"),
                        format!(
                            "real server {} has no port (fwmark service): give its checks a `port' (ldirectord's checkport)",
                            dest.addr
                        ),
                    ));
                }
            }
        }
        reals.push(RealHealth {
            real: SocketAddr::new(dest.addr, dest.port),
            config: HealthConfig { checks, ..base.clone() },
        });
    }
    Ok(Some(ServiceHealth { service: id, policy, reals }))
}

fn check_sorry(
    ctx: &Ctx<'_>,
    id: &ServiceId,
    entry: &ServiceEntry,
    s: &Spanned<SorryServerConfig>,
    field: &str,
) -> Result<(), ConfigError> {
    let dest = sorry_dest(id, s.get_ref());
    let family = rvs_core::ServiceKey::from(*id).family();
    if let Err(e) = dest.to_config().and_then(|c| c.validate(family).map_err(rvs_api::ApiError::from)) {
        return Err(ctx.invalid(s.span(), field, e.message));
    }
    if entry.reals.iter().any(|r| r.addr == dest.addr && r.port == dest.port) {
        return Err(ctx.conflict(
            s.span(),
            field,
            format!("the sorry server {} is also a real server of this service", SocketAddr::new(dest.addr, dest.port)),
        ));
    }
    if matches!(id, ServiceId::Addr { .. }) && dest.port == 0 {
        return Err(ctx.invalid(s.span(), field, "the sorry server needs a port"));
    }
    Ok(())
}

/// Parses a maintenance file name: `IP:PORT`, `[IPv6]:PORT`, `IP` or `IPv6` (ldirectord's
/// numeric forms). None for anything else (host names are not resolved).
pub fn maintenance_entry(name: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Ok(sa) = name.parse::<SocketAddr>() {
        return Some((sa.ip(), Some(sa.port())));
    }
    if let Ok(ip) = name.parse::<IpAddr>() {
        return Some((ip, None));
    }
    let inner = name.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<std::net::Ipv6Addr>().ok().map(|ip| (IpAddr::V6(ip), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maintenance_names_are_ip_or_ip_port() {
        let v4: IpAddr = "198.18.0.1".parse().unwrap();
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(maintenance_entry("198.18.0.1:80"), Some((v4, Some(80))));
        assert_eq!(maintenance_entry("198.18.0.1"), Some((v4, None)));
        assert_eq!(maintenance_entry("[fd00::1]:80"), Some((v6, Some(80))));
        assert_eq!(maintenance_entry("fd00::1"), Some((v6, None)));
        assert_eq!(maintenance_entry("[fd00::1]"), Some((v6, None)));
        assert_eq!(maintenance_entry("web1.example:80"), None);
        assert_eq!(maintenance_entry(".hidden"), None);
    }
}
