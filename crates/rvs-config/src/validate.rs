//! From the file as written ([`crate::raw`]) to a [`Config`]: defaults (ipvsadm's), checks
//! with ipvsadm's meaning (through `rvs-api`'s `to_config`, which runs `rvs-core`'s
//! validation), duplicate detection, and the canonical form of every spec. Every refusal is
//! located at the value it is about.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::path::PathBuf;

use rvs_api::{
    ApiError, DestSpec, MethodSpec, NetmaskSpec, PersistenceSpec, Proto, ServiceId, ServiceSpec, SyncDaemonSpec,
    TimeoutsInfo,
};
use rvs_core::ConfigError as CoreError;
use rvs_core::conn::timeouts::MAX_SET_TIMEOUT_SECS;
use rvs_core::defense::{DefenseMode, DefensePolicy};
use rvs_core::service::DEFAULT_PERSISTENT_TIMEOUT_SECS;
use toml::Spanned;

use crate::error::{key_path_at, line_column};
use crate::raw::{
    RawConfig, RawDirector, RawMethod, RawNetmask, RawPersistent, RawReal, RawService, RawSwitch, RawSyncDaemon,
    RawSysctl, RawTimeouts, RawTunCsum, RawTunType,
};
use crate::{Config, ConfigError, Director, ErrorKind, ServiceEntry, Sysctl, default_timeouts};

/// Longest interface name Linux accepts (IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;
/// ipvsadm's defaults for `--start-daemon`.
const DEFAULT_MCAST_INTERFACE: &str = "eth0";
const DEFAULT_SYNC_MAXLEN: u16 = 1472;
const MAX_SYNC_MAXLEN: u16 = 65507;
const DEFAULT_SYNC_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
const DEFAULT_SYNC_PORT: u16 = 8848;
const DEFAULT_SYNC_TTL: u8 = 1;

/// The source and its name, to turn spans into located errors.
pub(crate) struct Ctx<'a> {
    source: &'a str,
    file: &'a str,
}

impl Ctx<'_> {
    pub(crate) fn error(
        &self,
        kind: ErrorKind,
        span: Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = line_column(self.source, span.start);
        ConfigError { kind, file: self.file.to_string(), line, column, field: field.into(), message: message.into() }
    }

    pub(crate) fn invalid(
        &self,
        span: Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        self.error(ErrorKind::InvalidValue, span, field, message)
    }

    pub(crate) fn conflict(
        &self,
        span: Range<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ConfigError {
        self.error(ErrorKind::Conflict, span, field, message)
    }

    fn line_of(&self, span: &Range<usize>) -> usize {
        line_column(self.source, span.start).0
    }

    /// A TOML or serde error, classified and located.
    fn toml_error(&self, e: &toml::de::Error, syntax: bool) -> ConfigError {
        let message = friendly_message(e.message());
        let span = e.span().unwrap_or(0..0);
        let kind = if syntax {
            ErrorKind::Syntax
        } else if message.starts_with("unknown field") {
            ErrorKind::UnknownField
        } else if message.starts_with("missing field") {
            ErrorKind::MissingField
        } else {
            ErrorKind::InvalidValue
        };
        let mut field = if syntax { String::new() } else { key_path_at(self.source, span.start) };
        if kind == ErrorKind::MissingField
            && let Some(name) = message.split('`').nth(1)
        {
            field = if field.is_empty() { name.to_string() } else { format!("{field}.{name}") };
        }
        if kind == ErrorKind::UnknownField
            && let Some(name) = message.split('`').nth(1)
            && !field.ends_with(name)
        {
            field = if field.is_empty() { name.to_string() } else { format!("{field}.{name}") };
        }
        self.error(kind, span, field, message)
    }
}

/// serde's wording for the untagged helper types, replaced by what the user should write.
fn friendly_message(message: &str) -> String {
    let message = message.trim_end();
    if message.contains("untagged enum RawPersistent") {
        "expected a number of seconds (1..2678400) or true".to_string()
    } else if message.contains("untagged enum RawNetmask") {
        "expected a dotted IPv4 netmask (\"255.255.255.0\") or an IPv6 prefix length (64)".to_string()
    } else if message.contains("untagged enum RawSeconds") {
        "expected a number of seconds (e.g. 1 or 0.05)".to_string()
    } else if message.contains("untagged enum RawSwitch") {
        "expected true/false or 1/0".to_string()
    } else {
        message.to_string()
    }
}

/// Parses and validates a whole file.
pub(crate) fn parse(source: &str, file: &str) -> Result<Config, ConfigError> {
    let ctx = Ctx { source, file };
    // Syntax first, so a broken file is reported as such and not as a schema error.
    source.parse::<toml::Table>().map_err(|e| ctx.toml_error(&e, true))?;
    let raw: RawConfig = toml::from_str(source).map_err(|e| ctx.toml_error(&e, false))?;

    let director = match &raw.director {
        Some(d) => director(&ctx, d.get_ref())?,
        None => Director::default(),
    };
    let mut services = Vec::with_capacity(raw.service.len());
    let mut seen: HashMap<ServiceId, usize> = HashMap::new();
    let mut health_services = Vec::new();
    for (i, svc) in raw.service.iter().enumerate() {
        let (entry, id_span) = service(&ctx, i, svc)?;
        if let Some(&line) = seen.get(&entry.spec.id) {
            let field = if matches!(entry.spec.id, ServiceId::Fwmark { .. }) { "fwmark" } else { "vip" };
            return Err(ctx.error(
                ErrorKind::Duplicate,
                id_span,
                format!("service[{i}].{field}"),
                format!("duplicate service {}: already defined at line {line}", describe_service(&entry.spec.id)),
            ));
        }
        seen.insert(entry.spec.id, ctx.line_of(&svc.span()));
        health_services.extend(crate::health::service_health(&ctx, i, svc.get_ref(), &entry)?);
        services.push(entry);
    }
    let sysctl = match &raw.sysctl {
        Some(s) => sysctl(&ctx, s)?,
        None => Sysctl::default(),
    };
    let timeouts = match &raw.timeouts {
        Some(t) => timeouts(&ctx, t)?,
        None => default_timeouts(),
    };
    let mut sync_daemons: Vec<SyncDaemonSpec> = Vec::new();
    let mut roles: HashMap<rvs_api::SyncRole, usize> = HashMap::new();
    for (i, d) in raw.sync_daemon.iter().enumerate() {
        let spec = sync_daemon(&ctx, i, d.get_ref())?;
        let role = d.get_ref().role.span();
        if let Some(&line) = roles.get(&spec.role) {
            return Err(ctx.error(
                ErrorKind::Duplicate,
                role,
                format!("sync_daemon[{i}].role"),
                format!("a {} sync daemon is already defined at line {line}", role_name(spec.role)),
            ));
        }
        roles.insert(spec.role, ctx.line_of(&d.span()));
        sync_daemons.push(spec);
    }
    let health_settings = match &raw.health {
        Some(h) => crate::health::settings(&ctx, h.get_ref())?,
        None => crate::health::HealthSettings::default(),
    };
    let health = crate::health::HealthPlan { settings: health_settings, services: health_services };
    let loc = crate::failover::Locator { source, file };
    let vrrp = crate::failover::vrrp_all(&loc, &raw.vrrp)?;
    let conn_sync = raw.conn_sync.as_ref().map(|c| crate::failover::conn_sync(&loc, c, &vrrp)).transpose()?;
    Ok(Config { director, services, sysctl, timeouts, sync_daemons, health, vrrp, conn_sync })
}

/// "TCP 198.18.0.1:80", "FWM 1", "FWM 1 IPv6": how ipvsadm lists a service.
pub fn describe_service(id: &ServiceId) -> String {
    match id {
        ServiceId::Addr { protocol, addr, port } => {
            let proto = match protocol {
                Proto::Tcp => "TCP",
                Proto::Udp => "UDP",
                Proto::Sctp => "SCTP",
            };
            format!("{proto} {}", SocketAddr::new(*addr, *port))
        }
        ServiceId::Fwmark { mark, ipv6: false } => format!("FWM {mark}"),
        ServiceId::Fwmark { mark, ipv6: true } => format!("FWM {mark} IPv6"),
    }
}

fn role_name(role: rvs_api::SyncRole) -> &'static str {
    match role {
        rvs_api::SyncRole::Master => "master",
        rvs_api::SyncRole::Backup => "backup",
    }
}

fn director(ctx: &Ctx<'_>, d: &RawDirector) -> Result<Director, ConfigError> {
    let mut out = Director::default();
    for (i, name) in d.interfaces.iter().enumerate() {
        let n = name.get_ref();
        let field = format!("director.interfaces[{i}]");
        if n.is_empty() || n.len() > MAX_IFNAME || n.contains(['/', ':']) || n.chars().any(char::is_whitespace) {
            return Err(ctx.invalid(
                name.span(),
                field,
                format!("`{n}' is not an interface name (1..{MAX_IFNAME} characters, no '/', ':' or spaces)"),
            ));
        }
        if out.interfaces.contains(n) {
            return Err(ctx.error(ErrorKind::Duplicate, name.span(), field, format!("interface `{n}' listed twice")));
        }
        out.interfaces.push(n.clone());
    }
    for (i, a) in d.addresses.iter().enumerate() {
        let field = format!("director.addresses[{i}]");
        let addr: IpAddr = a
            .get_ref()
            .trim()
            .parse()
            .map_err(|_| ctx.invalid(a.span(), field.clone(), format!("`{}' is not an IP address", a.get_ref())))?;
        if out.addresses.contains(&addr) {
            return Err(ctx.error(ErrorKind::Duplicate, a.span(), field, format!("address {addr} listed twice")));
        }
        out.addresses.push(addr);
    }
    if let Some(s) = &d.socket {
        let path = PathBuf::from(s.get_ref());
        if !path.is_absolute() {
            return Err(ctx.invalid(s.span(), "director.socket", "the admin socket path must be absolute"));
        }
        out.socket = path;
    }
    if let Some(m) = &d.max_connections {
        let n = usize::try_from(*m.get_ref())
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| ctx.invalid(m.span(), "director.max_connections", "max_connections must be at least 1"))?;
        out.max_connections = n;
    }
    if let Some(l) = &d.log_level {
        out.log_level = *l.get_ref();
    }
    Ok(out)
}

/// Splits `"198.18.0.1:80"`, `"198.18.0.1"`, `"[fd00::1]:80"`, `"[fd00::1]"` or `"fd00::1"`
/// into an address and an optional port.
fn parse_host_port(text: &str) -> Option<(IpAddr, Option<u16>)> {
    let text = text.trim();
    if let Ok(sa) = text.parse::<SocketAddr>() {
        return Some((sa.ip(), Some(sa.port())));
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some((ip, None));
    }
    let inner = text.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<std::net::Ipv6Addr>().ok().map(|ip| (IpAddr::V6(ip), None))
}

/// The field an `rvs-core` refusal of a service is about.
fn service_field_of(e: &ApiError, spec: &ServiceSpec) -> &'static str {
    let m = e.message.as_str();
    let is = |c: CoreError| m == c.to_string();
    if is(CoreError::ZeroPortNonPersistent) {
        "vip"
    } else if is(CoreError::OnePacketNotUdp) {
        "one_packet"
    } else if is(CoreError::ZeroFwmark) {
        "fwmark"
    } else if is(CoreError::InvalidNetmask) {
        "netmask"
    } else if m.starts_with("invalid timeout value") {
        "persistent"
    } else if m.contains("scheduler flag") {
        "sched_flags"
    } else if e.kind == "no_scheduler" && spec.scheduler.parse::<rvs_core::SchedulerKind>().is_ok() {
        "pe"
    } else if e.kind == "no_scheduler" {
        "scheduler"
    } else {
        ""
    }
}

/// The field an `rvs-core` refusal of a real server is about.
fn real_field_of(e: &ApiError) -> &'static str {
    let m = e.message.as_str();
    let is = |c: CoreError| m == c.to_string();
    if is(CoreError::IllegalWeight) {
        "weight"
    } else if is(CoreError::IllegalUpperThreshold) {
        "u_threshold"
    } else if is(CoreError::IllegalLowerThreshold) || is(CoreError::ThresholdOrder) {
        "l_threshold"
    } else if is(CoreError::FamilyMismatch) {
        "address"
    } else if is(CoreError::GuePortRequired) {
        "tun_port"
    } else if is(CoreError::RemoteChecksumNotGue) || is(CoreError::TunnelOptionConflict) {
        "tun_csum"
    } else {
        ""
    }
}

fn service(ctx: &Ctx<'_>, i: usize, svc: &Spanned<RawService>) -> Result<(ServiceEntry, Range<usize>), ConfigError> {
    let s = svc.get_ref();
    let at = |name: &str| format!("service[{i}].{name}");
    let (id, id_span) = match (&s.vip, &s.fwmark) {
        (Some(_), Some(mark)) => {
            return Err(ctx.conflict(mark.span(), at("fwmark"), "`vip' and `fwmark' exclude each other"));
        }
        (None, None) => {
            return Err(ctx.error(
                ErrorKind::MissingField,
                svc.span(),
                format!("service[{i}]"),
                "a service needs `vip' (with `protocol') or `fwmark'",
            ));
        }
        (Some(vip), None) => {
            if let Some(v6) = &s.ipv6 {
                return Err(ctx.conflict(
                    v6.span(),
                    at("ipv6"),
                    "`ipv6' is only for fwmark services; a vip's family is its address's",
                ));
            }
            let (addr, port) = parse_host_port(vip.get_ref()).ok_or_else(|| {
                ctx.invalid(vip.span(), at("vip"), format!("`{}' is not an address or address:port", vip.get_ref()))
            })?;
            let protocol = s.protocol.as_ref().map_or(Proto::Tcp, |p| *p.get_ref());
            (ServiceId::Addr { protocol, addr, port: port.unwrap_or(0) }, vip.span())
        }
        (None, Some(mark)) => {
            if let Some(p) = &s.protocol {
                return Err(ctx.conflict(p.span(), at("protocol"), "`protocol' is not allowed with `fwmark'"));
            }
            let ipv6 = s.ipv6.as_ref().is_some_and(|v| *v.get_ref());
            (ServiceId::Fwmark { mark: *mark.get_ref(), ipv6 }, mark.span())
        }
    };
    let ipv6 = match id {
        ServiceId::Addr { addr, .. } => addr.is_ipv6(),
        ServiceId::Fwmark { ipv6, .. } => ipv6,
    };

    let timeout = match s.persistent.as_ref().map(|p| (*p.get_ref(), p.span())) {
        None | Some((RawPersistent::Switch(false), _)) => None,
        Some((RawPersistent::Switch(true), _)) => Some(DEFAULT_PERSISTENT_TIMEOUT_SECS),
        Some((RawPersistent::Seconds(n), span)) => Some(
            u32::try_from(n)
                .map_err(|_| ctx.invalid(span, at("persistent"), format!("invalid timeout value `{n}' specified")))?,
        ),
    };
    let netmask = match (&s.netmask, timeout) {
        (Some(m), None) => return Err(ctx.conflict(m.span(), at("netmask"), "`netmask' needs `persistent'")),
        (Some(m), Some(_)) => Some(netmask(ctx, m, &at("netmask"))?),
        (None, _) => None,
    };
    let default_mask = if ipv6 { NetmaskSpec::V6(128) } else { NetmaskSpec::V4(Ipv4Addr::BROADCAST) };
    let spec = ServiceSpec {
        id,
        scheduler: s.scheduler.as_ref().map_or_else(|| "wlc".to_string(), |v| v.get_ref().trim().to_string()),
        sched_flags: s.sched_flags.as_ref().map(|v| v.get_ref().clone()).unwrap_or_default(),
        persistence: timeout.map(|timeout| PersistenceSpec { timeout, netmask: netmask.unwrap_or(default_mask) }),
        one_packet: s.one_packet.as_ref().is_some_and(|v| *v.get_ref()),
        pe: s.pe.as_ref().map(|v| v.get_ref().clone()),
    };
    let config = spec.to_config().map_err(|e| {
        let field = service_field_of(&e, &spec);
        let span = service_span(s, field).unwrap_or_else(|| svc.span());
        let field = if field.is_empty() { format!("service[{i}]") } else { at(field) };
        ctx.invalid(span, field, e.message)
    })?;
    let spec = ServiceSpec::from_config(&config);

    let mut reals: Vec<DestSpec> = Vec::with_capacity(s.real.len());
    let mut seen: HashMap<(IpAddr, u16), usize> = HashMap::new();
    for (j, r) in s.real.iter().enumerate() {
        let dest = real(ctx, i, j, &spec.id, r.get_ref())?;
        let key = (dest.addr, dest.port);
        if let Some(&line) = seen.get(&key) {
            return Err(ctx.error(
                ErrorKind::Duplicate,
                r.get_ref().address.span(),
                format!("service[{i}].real[{j}].address"),
                format!(
                    "duplicate real server {} in {}: already defined at line {line}",
                    SocketAddr::new(dest.addr, dest.port),
                    describe_service(&spec.id)
                ),
            ));
        }
        seen.insert(key, ctx.line_of(&r.span()));
        reals.push(dest);
    }
    Ok((ServiceEntry { spec, reals }, id_span))
}

fn service_span(s: &RawService, field: &str) -> Option<Range<usize>> {
    match field {
        "vip" => s.vip.as_ref().map(Spanned::span),
        "fwmark" => s.fwmark.as_ref().map(Spanned::span),
        "one_packet" => s.one_packet.as_ref().map(Spanned::span),
        "netmask" => s.netmask.as_ref().map(Spanned::span),
        "persistent" => s.persistent.as_ref().map(Spanned::span),
        "sched_flags" => s.sched_flags.as_ref().map(Spanned::span),
        "pe" => s.pe.as_ref().map(Spanned::span),
        "scheduler" => s.scheduler.as_ref().map(Spanned::span),
        _ => None,
    }
}

fn netmask(ctx: &Ctx<'_>, m: &Spanned<RawNetmask>, field: &str) -> Result<NetmaskSpec, ConfigError> {
    let illegal = || ctx.invalid(m.span(), field, CoreError::InvalidNetmask.to_string());
    match m.get_ref() {
        RawNetmask::Prefix(n) => u8::try_from(*n).map(NetmaskSpec::V6).map_err(|_| illegal()),
        RawNetmask::Text(t) => {
            let t = t.trim();
            if let Ok(v4) = t.parse::<Ipv4Addr>() {
                return Ok(NetmaskSpec::V4(v4));
            }
            t.trim_start_matches('/').parse::<u8>().map(NetmaskSpec::V6).map_err(|_| illegal())
        }
    }
}

fn real(ctx: &Ctx<'_>, i: usize, j: usize, service: &ServiceId, r: &RawReal) -> Result<DestSpec, ConfigError> {
    let at = |name: &str| format!("service[{i}].real[{j}].{name}");
    let (addr, port) = parse_host_port(r.address.get_ref()).ok_or_else(|| {
        ctx.invalid(
            r.address.span(),
            at("address"),
            format!("`{}' is not an address or address:port", r.address.get_ref()),
        )
    })?;
    let (fwmark, vport) = match service {
        ServiceId::Addr { port, .. } => (false, *port),
        ServiceId::Fwmark { .. } => (true, 0),
    };
    let method_kind = r.method.as_ref().map_or(RawMethod::Dr, |m| *m.get_ref());
    if method_kind != RawMethod::Tun {
        let tun_option = [
            r.tun_type.as_ref().map(|v| ("tun_type", v.span())),
            r.tun_port.as_ref().map(|v| ("tun_port", v.span())),
            r.tun_csum.as_ref().map(|v| ("tun_csum", v.span())),
        ];
        if let Some((name, span)) = tun_option.into_iter().flatten().next() {
            return Err(ctx.conflict(span, at(name), CoreError::TunnelOptionConflict.to_string()));
        }
    }
    let method = match method_kind {
        RawMethod::Dr => MethodSpec::Route,
        RawMethod::Nat => MethodSpec::Masq,
        RawMethod::Tun => {
            let tun_type = r.tun_type.as_ref().map_or(RawTunType::Ipip, |v| *v.get_ref());
            if tun_type != RawTunType::Gue
                && let Some(p) = &r.tun_port
            {
                return Err(ctx.conflict(p.span(), at("tun_port"), "`tun_port' is only for gue tunnels"));
            }
            MethodSpec::Tunnel {
                tun_type: match tun_type {
                    RawTunType::Ipip => "ipip",
                    RawTunType::Gue => "gue",
                    RawTunType::Gre => "gre",
                }
                .to_string(),
                tun_port: r.tun_port.as_ref().map_or(0, |v| *v.get_ref()),
                tun_csum: match r.tun_csum.as_ref().map_or(RawTunCsum::Nocsum, |v| *v.get_ref()) {
                    RawTunCsum::Nocsum => "nocsum",
                    RawTunCsum::Csum => "csum",
                    RawTunCsum::Remcsum => "remcsum",
                }
                .to_string(),
            }
        }
    };
    // ipvsadm: the real port defaults to the virtual port, and is forced to it for DR and
    // TUN servers of address services (the packet is not rewritten, so it cannot differ).
    let port = match (fwmark, &method) {
        (false, MethodSpec::Masq) => port.unwrap_or(vport),
        (false, _) => vport,
        (true, _) => port.unwrap_or(0),
    };
    let spec = DestSpec {
        addr,
        port,
        method,
        weight: r.weight.as_ref().map_or(1, |v| *v.get_ref()),
        u_threshold: r.u_threshold.as_ref().map_or(0, |v| *v.get_ref()),
        l_threshold: r.l_threshold.as_ref().map_or(0, |v| *v.get_ref()),
    };
    let family = rvs_core::ServiceKey::from(*service).family();
    let checked = spec.to_config().and_then(|c| c.validate(family).map(|()| c).map_err(ApiError::from));
    let config = checked.map_err(|e| {
        let field = real_field_of(&e);
        let span = match field {
            "weight" => r.weight.as_ref().map(Spanned::span),
            "u_threshold" => r.u_threshold.as_ref().map(Spanned::span),
            "l_threshold" => r.l_threshold.as_ref().map(Spanned::span),
            "tun_port" => r.tun_port.as_ref().map(Spanned::span),
            "tun_csum" => r.tun_csum.as_ref().map(Spanned::span),
            _ => None,
        }
        .unwrap_or_else(|| r.address.span());
        let field = if field.is_empty() { "address" } else { field };
        ctx.invalid(span, at(field), e.message)
    })?;
    Ok(DestSpec::from_config(&config))
}

fn switch(ctx: &Ctx<'_>, v: &Option<Spanned<RawSwitch>>, name: &str, default: bool) -> Result<bool, ConfigError> {
    match v.as_ref().map(|s| (*s.get_ref(), s.span())) {
        None => Ok(default),
        Some((RawSwitch::Bool(b), _)) => Ok(b),
        Some((RawSwitch::Number(0), _)) => Ok(false),
        Some((RawSwitch::Number(1), _)) => Ok(true),
        Some((RawSwitch::Number(n), span)) => {
            Err(ctx.invalid(span, format!("sysctl.{name}"), format!("invalid value {n}: expected true/false or 1/0")))
        }
    }
}

fn ranged<T: TryFrom<i64>>(
    ctx: &Ctx<'_>,
    v: &Option<Spanned<i64>>,
    field: &str,
    ok: impl Fn(i64) -> bool,
    what: &str,
) -> Result<Option<T>, ConfigError> {
    let Some(v) = v else { return Ok(None) };
    let n = *v.get_ref();
    let bad = || ctx.invalid(v.span(), field, format!("invalid value {n}: {what}"));
    if !ok(n) {
        return Err(bad());
    }
    T::try_from(n).map(Some).map_err(|_| bad())
}

fn sysctl(ctx: &Ctx<'_>, s: &RawSysctl) -> Result<Sysctl, ConfigError> {
    let d = Sysctl::default();
    let mode = |v: &Option<Spanned<i64>>, policy: DefensePolicy, default: u8| -> Result<u8, ConfigError> {
        let Some(v) = v else { return Ok(default) };
        let n = *v.get_ref();
        DefenseMode::from_value(n).map(DefenseMode::value).ok_or_else(|| {
            let e = rvs_core::defense::DefenseError::InvalidMode { policy, value: n };
            ctx.invalid(v.span(), format!("sysctl.{}", policy.sysctl_name()), e.to_string())
        })
    };
    Ok(Sysctl {
        expire_nodest_conn: switch(ctx, &s.expire_nodest_conn, "expire_nodest_conn", d.expire_nodest_conn)?,
        expire_quiescent_template: switch(
            ctx,
            &s.expire_quiescent_template,
            "expire_quiescent_template",
            d.expire_quiescent_template,
        )?,
        conn_reuse_mode: ranged(
            ctx,
            &s.conn_reuse_mode,
            "sysctl.conn_reuse_mode",
            |n| (0..=3).contains(&n),
            "conn_reuse_mode is a bitmap of 1 and 2 (0..3)",
        )?
        .unwrap_or(d.conn_reuse_mode),
        sloppy_tcp: switch(ctx, &s.sloppy_tcp, "sloppy_tcp", d.sloppy_tcp)?,
        sloppy_sctp: switch(ctx, &s.sloppy_sctp, "sloppy_sctp", d.sloppy_sctp)?,
        drop_entry: mode(&s.drop_entry, DefensePolicy::DropEntry, d.drop_entry)?,
        drop_packet: mode(&s.drop_packet, DefensePolicy::DropPacket, d.drop_packet)?,
        secure_tcp: mode(&s.secure_tcp, DefensePolicy::SecureTcp, d.secure_tcp)?,
        amemthresh: ranged(ctx, &s.amemthresh, "sysctl.amemthresh", |n| n >= 0, "must not be negative")?
            .unwrap_or(d.amemthresh),
        am_droprate: ranged(ctx, &s.am_droprate, "sysctl.am_droprate", |n| n >= 0, "must not be negative")?
            .unwrap_or(d.am_droprate),
    })
}

fn timeouts(ctx: &Ctx<'_>, t: &RawTimeouts) -> Result<TimeoutsInfo, ConfigError> {
    let d = default_timeouts();
    let one = |v: &Option<Spanned<i64>>, name: &str, default: u32| -> Result<u32, ConfigError> {
        let Some(v) = v else { return Ok(default) };
        let n = *v.get_ref();
        if n < 1 || n > i64::from(MAX_SET_TIMEOUT_SECS) {
            return Err(ctx.invalid(
                v.span(),
                format!("timeouts.{name}"),
                format!("invalid timeout value `{n}' specified (1..{MAX_SET_TIMEOUT_SECS} seconds)"),
            ));
        }
        u32::try_from(n).map_err(|_| ctx.invalid(v.span(), format!("timeouts.{name}"), "out of range"))
    };
    Ok(TimeoutsInfo {
        tcp: one(&t.tcp, "tcp", d.tcp)?,
        tcpfin: one(&t.tcpfin, "tcpfin", d.tcpfin)?,
        udp: one(&t.udp, "udp", d.udp)?,
    })
}

fn sync_daemon(ctx: &Ctx<'_>, i: usize, d: &RawSyncDaemon) -> Result<SyncDaemonSpec, ConfigError> {
    let at = |name: &str| format!("sync_daemon[{i}].{name}");
    let mcast_interface = match &d.interface {
        Some(n) if n.get_ref().is_empty() || n.get_ref().len() > MAX_IFNAME => {
            return Err(ctx.invalid(n.span(), at("interface"), format!("`{}' is not an interface name", n.get_ref())));
        }
        Some(n) => n.get_ref().clone(),
        None => DEFAULT_MCAST_INTERFACE.to_string(),
    };
    let group = match &d.group {
        Some(g) => {
            let ip: IpAddr = g.get_ref().trim().parse().ok().filter(IpAddr::is_multicast).ok_or_else(|| {
                ctx.invalid(
                    g.span(),
                    at("group"),
                    format!("invalid mcast-group `{}': not a multicast address", g.get_ref()),
                )
            })?;
            ip
        }
        None => IpAddr::V4(DEFAULT_SYNC_GROUP),
    };
    let maxlen = match &d.maxlen {
        Some(m) if *m.get_ref() == 0 || *m.get_ref() > MAX_SYNC_MAXLEN => {
            return Err(ctx.invalid(m.span(), at("maxlen"), format!("invalid sync-maxlen: 1..{MAX_SYNC_MAXLEN}")));
        }
        Some(m) => *m.get_ref(),
        None => DEFAULT_SYNC_MAXLEN,
    };
    let port = match &d.port {
        Some(p) if *p.get_ref() == 0 => return Err(ctx.invalid(p.span(), at("port"), "invalid mcast-port: 1..65535")),
        Some(p) => *p.get_ref(),
        None => DEFAULT_SYNC_PORT,
    };
    let ttl = match &d.ttl {
        Some(t) if *t.get_ref() == 0 => return Err(ctx.invalid(t.span(), at("ttl"), "invalid mcast-ttl: 1..255")),
        Some(t) => *t.get_ref(),
        None => DEFAULT_SYNC_TTL,
    };
    Ok(SyncDaemonSpec {
        role: *d.role.get_ref(),
        mcast_interface,
        syncid: d.syncid.as_ref().map_or(0, |v| *v.get_ref()),
        maxlen,
        group,
        port,
        ttl,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        let v4: IpAddr = "198.18.0.1".parse().unwrap();
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert_eq!(parse_host_port("198.18.0.1:80"), Some((v4, Some(80))));
        assert_eq!(parse_host_port("198.18.0.1"), Some((v4, None)));
        assert_eq!(parse_host_port("[fd00::1]:443"), Some((v6, Some(443))));
        assert_eq!(parse_host_port("[fd00::1]"), Some((v6, None)));
        assert_eq!(parse_host_port("fd00::1"), Some((v6, None)));
        assert_eq!(parse_host_port("198.18.0.1:99999"), None);
        assert_eq!(parse_host_port("example.com:80"), None);
    }
}

/// Checks that every `[director] interfaces` entry of `source` names an interface for which
/// `exists` is true, pointing at the entry's line when one does not.
pub(crate) fn check_interfaces(source: &str, file: &str, exists: impl Fn(&str) -> bool) -> Result<(), ConfigError> {
    let ctx = Ctx { source, file };
    let raw: RawConfig = toml::from_str(source).map_err(|e| ctx.toml_error(&e, false))?;
    let Some(d) = raw.director else { return Ok(()) };
    for (i, name) in d.get_ref().interfaces.iter().enumerate() {
        if !exists(name.get_ref()) {
            return Err(ctx.invalid(
                name.span(),
                format!("director.interfaces[{i}]"),
                format!("no interface `{}' on this host", name.get_ref()),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod interface_tests {
    use super::*;

    #[test]
    fn unknown_interfaces_are_refused_with_their_line() {
        let source = "[director]\ninterfaces = [\"eth0\",\n  \"nope0\"]\n";
        assert_eq!(check_interfaces(source, "f.toml", |_| true), Ok(()));
        let e = check_interfaces(source, "f.toml", |n| n == "eth0").unwrap_err();
        assert_eq!((e.line, e.field.as_str()), (3, "director.interfaces[1]"));
        assert_eq!(e.to_string(), "f.toml:3:3: director.interfaces[1]: no interface `nope0' on this host");
    }
}
