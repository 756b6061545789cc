//! Director failover settings: `[[vrrp]]` instances (VRRP v2/v3, virtual addresses, preemption,
//! unicast peers, authentication, trackers, notify commands, gratuitous ARP timing) and
//! `[conn_sync]` (connection sync between the directors, following a VRRP instance's role).
//! The raw serde mirror of these tables and their validation into located errors both live here,
//! so the rest of the crate only gains a field.

use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::error::line_column;
use crate::{ConfigError, ErrorKind};

/// Longest interface name Linux accepts (IFNAMSIZ - 1).
const MAX_IFNAME: usize = 15;
/// Longest v3 advert interval, centiseconds (12-bit field).
const MAX_V3_INTERVAL_CS: u64 = 4095;
/// Longest preempt delay (keepalived's limit).
const MAX_PREEMPT_DELAY: Duration = Duration::from_secs(1000);
/// Largest tracker weight magnitude (keepalived's limit).
const MAX_WEIGHT: i64 = 253;
/// Default connection-sync multicast group and port (the kernel's).
const DEFAULT_SYNC_GROUP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(224, 0, 0, 81);
const DEFAULT_SYNC_PORT: u16 = 8848;
const DEFAULT_SYNC_MAXLEN: u16 = 1472;

// ---------------------------------------------------------------------------------------------
// The file as written.

/// A duration in seconds: `1`, `0.01`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawSeconds {
    Int(i64),
    Float(f64),
}

/// `[[vrrp]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVrrp {
    #[serde(default)]
    pub name: Option<Spanned<String>>,
    pub interface: Spanned<String>,
    pub vrid: Spanned<i64>,
    #[serde(default)]
    pub priority: Option<Spanned<i64>>,
    #[serde(default)]
    pub version: Option<Spanned<i64>>,
    #[serde(default)]
    pub advert_interval: Option<Spanned<RawSeconds>>,
    #[serde(default)]
    pub virtual_addresses: Vec<Spanned<String>>,
    #[serde(default)]
    pub primary_address: Option<Spanned<String>>,
    #[serde(default)]
    pub unicast_peers: Vec<Spanned<String>>,
    #[serde(default)]
    pub preempt: Option<Spanned<bool>>,
    #[serde(default)]
    pub preempt_delay: Option<Spanned<RawSeconds>>,
    #[serde(default)]
    pub down_timer_adverts: Option<Spanned<i64>>,
    #[serde(default)]
    pub answer_lower_priority: Option<Spanned<bool>>,
    #[serde(default)]
    pub higher_prio_send_advert: Option<Spanned<bool>>,
    #[serde(default)]
    pub v3_checksum_as_v2: Option<Spanned<bool>>,
    #[serde(default)]
    pub auth: Option<Spanned<RawVrrpAuth>>,
    #[serde(default)]
    pub track_interface: Vec<Spanned<RawTrackInterface>>,
    #[serde(default)]
    pub track_ping: Vec<Spanned<RawTrackProbe>>,
    #[serde(default)]
    pub track_script: Vec<Spanned<RawTrackProbe>>,
    #[serde(default)]
    pub notify: Option<Spanned<RawNotify>>,
    #[serde(default)]
    pub garp: Option<Spanned<RawGarp>>,
    #[serde(default)]
    pub sync_group: Option<Spanned<String>>,
}

/// `[vrrp.auth]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVrrpAuth {
    #[serde(rename = "type")]
    pub kind: Spanned<String>,
    #[serde(default)]
    pub password: Option<Spanned<String>>,
    #[serde(default)]
    pub key_id: Option<Spanned<i64>>,
    #[serde(default)]
    pub key: Option<Spanned<String>>,
    #[serde(default)]
    pub mode: Option<Spanned<String>>,
    #[serde(default)]
    pub freshness: Option<Spanned<RawSeconds>>,
}

/// `[[vrrp.track_interface]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrackInterface {
    pub name: Spanned<String>,
    #[serde(default)]
    pub weight: Option<Spanned<i64>>,
    #[serde(default)]
    pub reverse: Option<Spanned<bool>>,
}

/// `[[vrrp.track_ping]]` (`target`) and `[[vrrp.track_script]]` (`command`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrackProbe {
    #[serde(default)]
    pub target: Option<Spanned<String>>,
    #[serde(default)]
    pub command: Option<Spanned<String>>,
    #[serde(default)]
    pub interval: Option<Spanned<RawSeconds>>,
    #[serde(default)]
    pub timeout: Option<Spanned<RawSeconds>>,
    #[serde(default)]
    pub weight: Option<Spanned<i64>>,
    #[serde(default)]
    pub rise: Option<Spanned<i64>>,
    #[serde(default)]
    pub fall: Option<Spanned<i64>>,
    #[serde(default)]
    pub reverse: Option<Spanned<bool>>,
}

/// `[vrrp.notify]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNotify {
    #[serde(default)]
    pub master: Option<Spanned<String>>,
    #[serde(default)]
    pub backup: Option<Spanned<String>>,
    #[serde(default)]
    pub fault: Option<Spanned<String>>,
    #[serde(default)]
    pub stop: Option<Spanned<String>>,
    #[serde(default)]
    pub any: Option<Spanned<String>>,
}

/// `[vrrp.garp]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGarp {
    #[serde(default)]
    pub delay: Option<Spanned<RawSeconds>>,
    #[serde(default)]
    pub repeat: Option<Spanned<i64>>,
    #[serde(default)]
    pub lower_prio_delay: Option<Spanned<RawSeconds>>,
    #[serde(default)]
    pub lower_prio_repeat: Option<Spanned<i64>>,
    #[serde(default)]
    pub refresh: Option<Spanned<RawSeconds>>,
    #[serde(default)]
    pub refresh_repeat: Option<Spanned<i64>>,
    #[serde(default)]
    pub interval: Option<Spanned<RawSeconds>>,
    #[serde(default)]
    pub min_garp: Option<Spanned<bool>>,
}

/// `[conn_sync]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConnSync {
    pub interface: Spanned<String>,
    #[serde(default)]
    pub follow: Option<Spanned<String>>,
    #[serde(default)]
    pub group: Option<Spanned<String>>,
    #[serde(default)]
    pub peers: Vec<Spanned<String>>,
    #[serde(default)]
    pub port: Option<Spanned<u16>>,
    #[serde(default)]
    pub syncid: Option<Spanned<u8>>,
    #[serde(default)]
    pub maxlen: Option<Spanned<u16>>,
    #[serde(default)]
    pub period: Option<Spanned<RawSeconds>>,
    #[serde(default)]
    pub auth: Option<Spanned<RawVrrpAuth>>,
}

// ---------------------------------------------------------------------------------------------
// The validated settings.

/// VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VrrpVersion {
    /// RFC 3768 (IPv4 only, whole-second adverts, optional PASS authentication).
    V2,
    /// RFC 5798 (IPv4 and IPv6, centisecond adverts).
    V3,
}

/// A virtual address: `"198.18.2.10/24"`, optionally `"... dev eth1"` for an interface other
/// than the instance's.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VirtualAddress {
    /// The address.
    pub addr: IpAddr,
    /// Its prefix length on the interface.
    pub prefix: u8,
    /// The interface it goes on (`None`: the instance's).
    pub dev: Option<String>,
}

/// How adverts are authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VrrpAuth {
    /// No authentication (the RFC's only choice).
    None,
    /// VRRPv2 clear-text password (keepalived `auth_type PASS`), at most 8 bytes.
    Pass(Vec<u8>),
    /// The rvs HMAC-SHA256 trailer (rvs peers only).
    Hmac(HmacAuth),
}

/// The rvs HMAC-SHA256 trailer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HmacAuth {
    /// Key id used for signing (and accepted on receipt).
    pub key_id: u8,
    /// The shared secret.
    pub key: Vec<u8>,
    /// `true`: unsigned messages are dropped; `false` ("permissive"): accepted, for migration.
    pub required: bool,
    /// Optional window around the receiver's clock that counters must fall in.
    pub freshness: Option<Duration>,
}

/// A tracked interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInterface {
    /// Interface name.
    pub name: String,
    /// -253..=253; 0 = fault when down.
    pub weight: i16,
    /// Up means down.
    pub reverse: bool,
}

/// What a periodic probe runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeKind {
    /// ICMP echo to an address.
    Ping(IpAddr),
    /// A shell command; exit status 0 = up.
    Script(String),
}

/// A periodic probe (ping target or script) tracked by an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackProbe {
    /// What it runs.
    pub kind: ProbeKind,
    /// Time between probes.
    pub interval: Duration,
    /// Time a probe may take.
    pub timeout: Duration,
    /// -253..=253; 0 = fault when down.
    pub weight: i16,
    /// Successes in a row that bring it up.
    pub rise: u32,
    /// Failures in a row that bring it down.
    pub fall: u32,
    /// Up means down.
    pub reverse: bool,
}

/// Commands run on transitions (`sh -c`); `any` gets `INSTANCE <name> <STATE> <priority>`
/// appended as keepalived's `notify` does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notify {
    /// On becoming master.
    pub master: Option<String>,
    /// On becoming backup.
    pub backup: Option<String>,
    /// On entering fault.
    pub fault: Option<String>,
    /// On stopping.
    pub stop: Option<String>,
    /// On every transition, with arguments.
    pub any: Option<String>,
}

/// Gratuitous ARP / unsolicited NA timing (keepalived's `garp_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GarpSettings {
    /// Delay of the second burst after becoming master.
    pub delay: Duration,
    /// Rounds per burst.
    pub repeat: u32,
    /// Delay of the second burst after a lower-priority advert.
    pub lower_prio_delay: Duration,
    /// Rounds per burst after a lower-priority advert.
    pub lower_prio_repeat: u32,
    /// Refresh period while master (0 = off).
    pub refresh: Duration,
    /// Rounds per refresh.
    pub refresh_repeat: u32,
    /// Spacing of the rounds of a burst.
    pub interval: Duration,
    /// One round on becoming master, nothing after.
    pub min_garp: bool,
}

impl Default for GarpSettings {
    fn default() -> Self {
        GarpSettings {
            delay: Duration::from_secs(5),
            repeat: 5,
            lower_prio_delay: Duration::from_secs(5),
            lower_prio_repeat: 5,
            refresh: Duration::ZERO,
            refresh_repeat: 1,
            interval: Duration::ZERO,
            min_garp: false,
        }
    }
}

/// One `[[vrrp]]` instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VrrpInstance {
    /// Name for logs and notify commands (default `VI_<vrid>`).
    pub name: String,
    /// Interface adverts are sent and received on.
    pub interface: String,
    /// Virtual router id 1..=255.
    pub vrid: u8,
    /// Priority 1..=255 (255 = address owner).
    pub priority: u8,
    /// Protocol version.
    pub version: VrrpVersion,
    /// Advert interval in centiseconds (v2: a multiple of 100).
    pub advert_interval_cs: u16,
    /// Whether the instance speaks IPv6 (else IPv4).
    pub ipv6: bool,
    /// Addresses added on becoming master.
    pub virtual_addresses: Vec<VirtualAddress>,
    /// Source of our adverts (`None`: the interface's first address of the family).
    pub primary_address: Option<IpAddr>,
    /// Send adverts to these peers instead of the multicast group.
    pub unicast_peers: Vec<IpAddr>,
    /// Take over from a lower-priority master.
    pub preempt: bool,
    /// Tolerate a lower-priority master this long.
    pub preempt_delay: Duration,
    /// Master_Down_Interval multiplier.
    pub down_timer_adverts: u8,
    /// As master, answer lower-priority adverts with our own.
    pub answer_lower_priority: bool,
    /// As master, send one more advert before yielding.
    pub higher_prio_send_advert: bool,
    /// v3 over IPv4: checksum without the pseudo-header (keepalived `v3_checksum_as_v2`).
    pub v3_checksum_as_v2: bool,
    /// Authentication.
    pub auth: VrrpAuth,
    /// Tracked interfaces.
    pub track_interfaces: Vec<TrackInterface>,
    /// Tracked ping targets and scripts.
    pub track_probes: Vec<TrackProbe>,
    /// Transition commands.
    pub notify: Notify,
    /// Announcement timing.
    pub garp: GarpSettings,
    /// Sync group (keepalived `vrrp_sync_group`): instances naming the same group change
    /// state together.
    pub sync_group: Option<String>,
}

/// `[conn_sync]`: connection sync between directors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnSync {
    /// Interface the messages leave and arrive on.
    pub interface: String,
    /// The VRRP instance whose master sends and whose backups receive (default: the first).
    pub follow: Option<String>,
    /// Multicast group (ignored with `peers`).
    pub group: IpAddr,
    /// Unicast peers instead of the group.
    pub peers: Vec<IpAddr>,
    /// UDP port.
    pub port: u16,
    /// Sync id (0 = accept all).
    pub syncid: u8,
    /// Largest message.
    pub maxlen: u16,
    /// How often the master sends a full refresh of its table.
    pub period: Duration,
    /// HMAC trailer (None: plain IPVS sync v1, as the kernel sends it).
    pub auth: Option<HmacAuth>,
}

// ---------------------------------------------------------------------------------------------
// Validation.

/// Turns spans into located errors.
pub(crate) struct Locator<'a> {
    pub source: &'a str,
    pub file: &'a str,
}

impl Locator<'_> {
    fn error(
        &self,
        kind: ErrorKind,
        span: Range<usize>,
        field: impl Into<String>,
        msg: impl Into<String>,
    ) -> ConfigError {
        let (line, column) = line_column(self.source, span.start);
        ConfigError { kind, file: self.file.to_string(), line, column, field: field.into(), message: msg.into() }
    }

    fn invalid(&self, span: Range<usize>, field: impl Into<String>, msg: impl Into<String>) -> ConfigError {
        self.error(ErrorKind::InvalidValue, span, field, msg)
    }
}

fn seconds(loc: &Locator<'_>, v: &Spanned<RawSeconds>, field: &str) -> Result<Duration, ConfigError> {
    let bad = || loc.invalid(v.span(), field, "expected a non-negative number of seconds (e.g. 1 or 0.05)");
    match *v.get_ref() {
        RawSeconds::Int(n) => u64::try_from(n).map(Duration::from_secs).map_err(|_| bad()),
        RawSeconds::Float(f) => {
            if !(0.0..=1e9).contains(&f) {
                return Err(bad());
            }
            Ok(Duration::from_secs_f64(f))
        }
    }
}

fn opt_seconds(
    loc: &Locator<'_>,
    v: &Option<Spanned<RawSeconds>>,
    field: &str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    v.as_ref().map_or(Ok(default), |v| seconds(loc, v, field))
}

fn int_in(
    loc: &Locator<'_>,
    v: &Option<Spanned<i64>>,
    field: &str,
    range: std::ops::RangeInclusive<i64>,
    default: i64,
) -> Result<i64, ConfigError> {
    match v {
        None => Ok(default),
        Some(v) if range.contains(v.get_ref()) => Ok(*v.get_ref()),
        Some(v) => Err(loc.invalid(
            v.span(),
            field,
            format!("invalid value {}: expected {}..={}", v.get_ref(), range.start(), range.end()),
        )),
    }
}

fn ifname(loc: &Locator<'_>, v: &Spanned<String>, field: &str) -> Result<String, ConfigError> {
    let n = v.get_ref();
    if n.is_empty() || n.len() > MAX_IFNAME || n.contains(['/', ':']) || n.chars().any(char::is_whitespace) {
        return Err(loc.invalid(
            v.span(),
            field,
            format!("`{n}' is not an interface name (1..{MAX_IFNAME} characters, no '/', ':' or spaces)"),
        ));
    }
    Ok(n.clone())
}

fn ip(loc: &Locator<'_>, v: &Spanned<String>, field: &str) -> Result<IpAddr, ConfigError> {
    v.get_ref()
        .trim()
        .parse()
        .map_err(|_| loc.invalid(v.span(), field, format!("`{}' is not an IP address", v.get_ref())))
}

/// `"ADDR[/PREFIX] [dev IF]"`.
fn virtual_address(loc: &Locator<'_>, v: &Spanned<String>, field: &str) -> Result<VirtualAddress, ConfigError> {
    let bad = |why: &str| loc.invalid(v.span(), field, format!("`{}': {why}", v.get_ref()));
    let mut words = v.get_ref().split_whitespace();
    let first = words.next().ok_or_else(|| bad("empty address"))?;
    let (addr_text, prefix_text) = match first.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (first, None),
    };
    let addr: IpAddr = addr_text.parse().map_err(|_| bad("not an IP address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix_text {
        None => max,
        Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| bad("bad prefix length"))?,
    };
    let dev = match (words.next(), words.next(), words.next()) {
        (None, _, _) => None,
        (Some("dev"), Some(name), None) => Some(ifname(loc, &Spanned::new(v.span(), name.to_string()), field)?),
        _ => return Err(bad("expected `ADDR/PREFIX' or `ADDR/PREFIX dev IFNAME'")),
    };
    Ok(VirtualAddress { addr, prefix, dev })
}

/// A key: `"hex:00112233..."` or plain text (its UTF-8 bytes).
fn key_bytes(loc: &Locator<'_>, v: &Spanned<String>, field: &str) -> Result<Vec<u8>, ConfigError> {
    let text = v.get_ref();
    let bytes = match text.strip_prefix("hex:") {
        Some(hex) => {
            let hex = hex.trim();
            if hex.len() % 2 != 0 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(loc.invalid(v.span(), field, "hex: key must have an even number of hex digits"));
            }
            (0..hex.len() / 2)
                .filter_map(|i| hex.get(2 * i..2 * i + 2).and_then(|b| u8::from_str_radix(b, 16).ok()))
                .collect()
        }
        None => text.as_bytes().to_vec(),
    };
    if bytes.len() < 16 {
        return Err(loc.invalid(v.span(), field, "an HMAC key needs at least 16 bytes"));
    }
    Ok(bytes)
}

fn hmac(loc: &Locator<'_>, a: &RawVrrpAuth, at: &str, span: Range<usize>) -> Result<HmacAuth, ConfigError> {
    let key = a.key.as_ref().ok_or_else(|| {
        loc.error(ErrorKind::MissingField, span.clone(), format!("{at}.key"), "hmac authentication needs a key")
    })?;
    let key = key_bytes(loc, key, &format!("{at}.key"))?;
    let key_id = int_in(loc, &a.key_id, &format!("{at}.key_id"), 0..=255, 1)? as u8;
    let required = match a.mode.as_ref().map(|m| (m.get_ref().as_str(), m.span())) {
        None | Some(("required", _)) => true,
        Some(("permissive", _)) => false,
        Some((other, span)) => {
            return Err(loc.invalid(
                span,
                format!("{at}.mode"),
                format!("unknown mode `{other}' (required, permissive)"),
            ));
        }
    };
    let freshness = a.freshness.as_ref().map(|f| seconds(loc, f, &format!("{at}.freshness"))).transpose()?;
    if let Some(p) = &a.password {
        return Err(loc.error(
            ErrorKind::Conflict,
            p.span(),
            format!("{at}.password"),
            "password is for type = \"pass\"",
        ));
    }
    Ok(HmacAuth { key_id, key, required, freshness })
}

fn auth(loc: &Locator<'_>, a: &Spanned<RawVrrpAuth>, at: &str, version: VrrpVersion) -> Result<VrrpAuth, ConfigError> {
    let r = a.get_ref();
    match r.kind.get_ref().to_ascii_lowercase().as_str() {
        "none" => Ok(VrrpAuth::None),
        "pass" => {
            if version != VrrpVersion::V2 {
                return Err(loc.error(
                    ErrorKind::Conflict,
                    r.kind.span(),
                    format!("{at}.type"),
                    "PASS authentication exists only in VRRPv2 (version = 2)",
                ));
            }
            let p = r.password.as_ref().ok_or_else(|| {
                loc.error(
                    ErrorKind::MissingField,
                    a.span(),
                    format!("{at}.password"),
                    "type = \"pass\" needs a password",
                )
            })?;
            let bytes = p.get_ref().as_bytes();
            if bytes.is_empty() || bytes.len() > 8 {
                return Err(loc.invalid(p.span(), format!("{at}.password"), "a PASS password has 1 to 8 characters"));
            }
            Ok(VrrpAuth::Pass(bytes.to_vec()))
        }
        "hmac" => Ok(VrrpAuth::Hmac(hmac(loc, r, at, a.span())?)),
        other => {
            Err(loc.invalid(r.kind.span(), format!("{at}.type"), format!("unknown type `{other}' (none, pass, hmac)")))
        }
    }
}

fn weight(loc: &Locator<'_>, v: &Option<Spanned<i64>>, field: &str) -> Result<i16, ConfigError> {
    Ok(int_in(loc, v, field, -MAX_WEIGHT..=MAX_WEIGHT, 0)? as i16)
}

fn probe(loc: &Locator<'_>, p: &Spanned<RawTrackProbe>, at: &str, ping: bool) -> Result<TrackProbe, ConfigError> {
    let r = p.get_ref();
    let (wanted, unwanted) = if ping { ("target", &r.command) } else { ("command", &r.target) };
    if let Some(u) = unwanted {
        return Err(loc.error(
            ErrorKind::UnknownField,
            u.span(),
            at.to_string(),
            format!("this tracker takes `{wanted}' only"),
        ));
    }
    let kind = if ping {
        let t = r.target.as_ref().ok_or_else(|| {
            loc.error(ErrorKind::MissingField, p.span(), format!("{at}.target"), "missing field `target`")
        })?;
        ProbeKind::Ping(ip(loc, t, &format!("{at}.target"))?)
    } else {
        let c = r.command.as_ref().ok_or_else(|| {
            loc.error(ErrorKind::MissingField, p.span(), format!("{at}.command"), "missing field `command`")
        })?;
        if c.get_ref().trim().is_empty() {
            return Err(loc.invalid(c.span(), format!("{at}.command"), "empty command"));
        }
        ProbeKind::Script(c.get_ref().clone())
    };
    let interval = opt_seconds(loc, &r.interval, &format!("{at}.interval"), Duration::from_secs(1))?;
    if interval < Duration::from_millis(10) {
        let span = r.interval.as_ref().map_or(p.span(), Spanned::span);
        return Err(loc.invalid(span, format!("{at}.interval"), "the interval must be at least 0.01 s"));
    }
    let timeout = opt_seconds(loc, &r.timeout, &format!("{at}.timeout"), interval)?;
    if timeout.is_zero() {
        let span = r.timeout.as_ref().map_or(p.span(), Spanned::span);
        return Err(loc.invalid(span, format!("{at}.timeout"), "the timeout must be above 0"));
    }
    Ok(TrackProbe {
        kind,
        interval,
        timeout,
        weight: weight(loc, &r.weight, &format!("{at}.weight"))?,
        rise: int_in(loc, &r.rise, &format!("{at}.rise"), 1..=1000, 1)? as u32,
        fall: int_in(loc, &r.fall, &format!("{at}.fall"), 1..=1000, 1)? as u32,
        reverse: r.reverse.as_ref().is_some_and(|b| *b.get_ref()),
    })
}

fn garp(loc: &Locator<'_>, g: &RawGarp, at: &str) -> Result<GarpSettings, ConfigError> {
    let d = GarpSettings::default();
    let delay = opt_seconds(loc, &g.delay, &format!("{at}.delay"), d.delay)?;
    let repeat = int_in(loc, &g.repeat, &format!("{at}.repeat"), 1..=255, i64::from(d.repeat))? as u32;
    Ok(GarpSettings {
        delay,
        repeat,
        lower_prio_delay: opt_seconds(loc, &g.lower_prio_delay, &format!("{at}.lower_prio_delay"), delay)?,
        lower_prio_repeat: int_in(
            loc,
            &g.lower_prio_repeat,
            &format!("{at}.lower_prio_repeat"),
            0..=255,
            repeat.into(),
        )? as u32,
        refresh: opt_seconds(loc, &g.refresh, &format!("{at}.refresh"), d.refresh)?,
        refresh_repeat: int_in(loc, &g.refresh_repeat, &format!("{at}.refresh_repeat"), 1..=255, 1)? as u32,
        interval: opt_seconds(loc, &g.interval, &format!("{at}.interval"), d.interval)?,
        min_garp: g.min_garp.as_ref().is_some_and(|b| *b.get_ref()),
    })
}

fn command(c: &Option<Spanned<String>>) -> Option<String> {
    c.as_ref().map(|c| c.get_ref().clone()).filter(|c| !c.trim().is_empty())
}

/// Validates one `[[vrrp]]` table (index `i`).
pub(crate) fn vrrp(loc: &Locator<'_>, i: usize, v: &Spanned<RawVrrp>) -> Result<VrrpInstance, ConfigError> {
    let at = format!("vrrp[{i}]");
    let r = v.get_ref();
    let f = |name: &str| format!("{at}.{name}");
    let interface = ifname(loc, &r.interface, &f("interface"))?;
    let vrid = int_in(loc, &Some(r.vrid.clone()), &f("vrid"), 1..=255, 1)? as u8;
    let priority = int_in(loc, &r.priority, &f("priority"), 1..=255, 100)? as u8;
    let version = match int_in(loc, &r.version, &f("version"), 2..=3, 2)? {
        2 => VrrpVersion::V2,
        _ => VrrpVersion::V3,
    };
    let interval = opt_seconds(loc, &r.advert_interval, &f("advert_interval"), Duration::from_secs(1))?;
    let interval_span = r.advert_interval.as_ref().map_or(v.span(), Spanned::span);
    let micros = interval.as_micros();
    let cs = u64::try_from(micros / 10_000).unwrap_or(u64::MAX);
    let advert_interval_cs = match version {
        VrrpVersion::V2 if micros % 1_000_000 == 0 && (1..=255).contains(&(cs / 100)) => cs as u16,
        VrrpVersion::V2 => {
            return Err(loc.invalid(
                interval_span,
                f("advert_interval"),
                "VRRPv2 advert intervals are whole seconds 1..255 (use version = 3 for shorter ones)",
            ));
        }
        VrrpVersion::V3 if micros % 10_000 == 0 && (1..=MAX_V3_INTERVAL_CS).contains(&cs) => cs as u16,
        VrrpVersion::V3 => {
            return Err(loc.invalid(
                interval_span,
                f("advert_interval"),
                "VRRPv3 advert intervals are multiples of 0.01 s from 0.01 to 40.95",
            ));
        }
    };
    let mut virtual_addresses = Vec::new();
    for (j, a) in r.virtual_addresses.iter().enumerate() {
        let field = format!("{at}.virtual_addresses[{j}]");
        let va = virtual_address(loc, a, &field)?;
        if virtual_addresses.iter().any(|o: &VirtualAddress| o.addr == va.addr) {
            return Err(loc.error(ErrorKind::Duplicate, a.span(), field, format!("{} listed twice", va.addr)));
        }
        virtual_addresses.push(va);
    }
    let primary_address = r.primary_address.as_ref().map(|p| ip(loc, p, &f("primary_address"))).transpose()?;
    let ipv6 = match (primary_address, virtual_addresses.first()) {
        (Some(p), _) => p.is_ipv6(),
        (None, Some(a)) => a.addr.is_ipv6(),
        (None, None) => {
            return Err(loc.error(
                ErrorKind::MissingField,
                v.span(),
                f("virtual_addresses"),
                "an instance needs virtual_addresses (or a primary_address to choose its family)",
            ));
        }
    };
    if ipv6 && version == VrrpVersion::V2 {
        let span = r.version.as_ref().map_or(v.span(), Spanned::span);
        return Err(loc.error(ErrorKind::Conflict, span, f("version"), "IPv6 needs VRRPv3 (version = 3)"));
    }
    let mut unicast_peers = Vec::new();
    for (j, p) in r.unicast_peers.iter().enumerate() {
        let field = format!("{at}.unicast_peers[{j}]");
        let peer = ip(loc, p, &field)?;
        if peer.is_ipv6() != ipv6 {
            return Err(loc.error(ErrorKind::Conflict, p.span(), field, "a peer of the other address family"));
        }
        unicast_peers.push(peer);
    }
    let preempt = r.preempt.as_ref().is_none_or(|b| *b.get_ref());
    let preempt_delay = opt_seconds(loc, &r.preempt_delay, &f("preempt_delay"), Duration::ZERO)?;
    if preempt_delay > MAX_PREEMPT_DELAY {
        let span = r.preempt_delay.as_ref().map_or(v.span(), Spanned::span);
        return Err(loc.invalid(span, f("preempt_delay"), "preempt_delay is at most 1000 s"));
    }
    let auth = match &r.auth {
        None => VrrpAuth::None,
        Some(a) => auth(loc, a, &f("auth"), version)?,
    };
    let mut track_interfaces = Vec::new();
    for (j, t) in r.track_interface.iter().enumerate() {
        let tat = format!("{at}.track_interface[{j}]");
        let t = t.get_ref();
        track_interfaces.push(TrackInterface {
            name: ifname(loc, &t.name, &format!("{tat}.name"))?,
            weight: weight(loc, &t.weight, &format!("{tat}.weight"))?,
            reverse: t.reverse.as_ref().is_some_and(|b| *b.get_ref()),
        });
    }
    let mut track_probes = Vec::new();
    for (j, p) in r.track_ping.iter().enumerate() {
        track_probes.push(probe(loc, p, &format!("{at}.track_ping[{j}]"), true)?);
    }
    for (j, p) in r.track_script.iter().enumerate() {
        track_probes.push(probe(loc, p, &format!("{at}.track_script[{j}]"), false)?);
    }
    let notify = r.notify.as_ref().map_or_else(Notify::default, |n| {
        let n = n.get_ref();
        Notify {
            master: command(&n.master),
            backup: command(&n.backup),
            fault: command(&n.fault),
            stop: command(&n.stop),
            any: command(&n.any),
        }
    });
    let garp = match &r.garp {
        None => GarpSettings::default(),
        Some(g) => garp(loc, g.get_ref(), &f("garp"))?,
    };
    let name = r.name.as_ref().map_or_else(|| format!("VI_{vrid}"), |n| n.get_ref().clone());
    let sync_group = match &r.sync_group {
        None => None,
        Some(g) if !g.get_ref().trim().is_empty() => Some(g.get_ref().trim().to_string()),
        Some(g) => return Err(loc.invalid(g.span(), f("sync_group"), "a sync group needs a name")),
    };
    Ok(VrrpInstance {
        name,
        interface,
        vrid,
        priority,
        version,
        advert_interval_cs,
        ipv6,
        virtual_addresses,
        primary_address,
        unicast_peers,
        preempt,
        preempt_delay,
        down_timer_adverts: int_in(loc, &r.down_timer_adverts, &f("down_timer_adverts"), 1..=100, 3)? as u8,
        answer_lower_priority: r.answer_lower_priority.as_ref().is_none_or(|b| *b.get_ref()),
        higher_prio_send_advert: r.higher_prio_send_advert.as_ref().is_some_and(|b| *b.get_ref()),
        v3_checksum_as_v2: r.v3_checksum_as_v2.as_ref().is_some_and(|b| *b.get_ref()),
        auth,
        track_interfaces,
        track_probes,
        notify,
        garp,
        sync_group,
    })
}

/// Validates all `[[vrrp]]` tables: each on its own, then no two with one (interface, VRID,
/// family) and no two with one name.
pub(crate) fn vrrp_all(loc: &Locator<'_>, raw: &[Spanned<RawVrrp>]) -> Result<Vec<VrrpInstance>, ConfigError> {
    let mut out: Vec<(VrrpInstance, usize)> = Vec::new();
    for (i, v) in raw.iter().enumerate() {
        let inst = vrrp(loc, i, v)?;
        let line = line_column(loc.source, v.span().start).0;
        for (other, other_line) in &out {
            if other.interface == inst.interface && other.vrid == inst.vrid && other.ipv6 == inst.ipv6 {
                return Err(loc.error(
                    ErrorKind::Duplicate,
                    v.get_ref().vrid.span(),
                    format!("vrrp[{i}].vrid"),
                    format!("VRID {} on {} is already used at line {other_line}", inst.vrid, inst.interface),
                ));
            }
            if other.name == inst.name {
                return Err(loc.error(
                    ErrorKind::Duplicate,
                    v.span(),
                    format!("vrrp[{i}].name"),
                    format!("instance name `{}' is already used at line {other_line}", inst.name),
                ));
            }
        }
        out.push((inst, line));
    }
    Ok(out.into_iter().map(|(i, _)| i).collect())
}

/// Validates `[conn_sync]` against the instances.
pub(crate) fn conn_sync(
    loc: &Locator<'_>,
    c: &Spanned<RawConnSync>,
    instances: &[VrrpInstance],
) -> Result<ConnSync, ConfigError> {
    let r = c.get_ref();
    let interface = ifname(loc, &r.interface, "conn_sync.interface")?;
    let follow = match &r.follow {
        None => None,
        Some(n) => {
            if !instances.iter().any(|i| &i.name == n.get_ref()) {
                return Err(loc.invalid(
                    n.span(),
                    "conn_sync.follow",
                    format!("no [[vrrp]] instance named `{}'", n.get_ref()),
                ));
            }
            Some(n.get_ref().clone())
        }
    };
    if instances.is_empty() {
        return Err(loc.error(
            ErrorKind::Conflict,
            c.span(),
            "conn_sync",
            "connection sync follows a [[vrrp]] instance; none is defined",
        ));
    }
    let group = match &r.group {
        None => IpAddr::V4(DEFAULT_SYNC_GROUP),
        Some(g) => {
            let a = ip(loc, g, "conn_sync.group")?;
            if !a.is_multicast() {
                return Err(loc.invalid(g.span(), "conn_sync.group", format!("{a} is not a multicast address")));
            }
            a
        }
    };
    let mut peers = Vec::new();
    for (j, p) in r.peers.iter().enumerate() {
        peers.push(ip(loc, p, &format!("conn_sync.peers[{j}]"))?);
    }
    let auth = match &r.auth {
        None => None,
        Some(a) => {
            let kind = a.get_ref().kind.get_ref().to_ascii_lowercase();
            match kind.as_str() {
                "none" => None,
                "hmac" => Some(hmac(loc, a.get_ref(), "conn_sync.auth", a.span())?),
                other => {
                    return Err(loc.invalid(
                        a.get_ref().kind.span(),
                        "conn_sync.auth.type",
                        format!("unknown type `{other}' (none, hmac)"),
                    ));
                }
            }
        }
    };
    let maxlen = r.maxlen.as_ref().map_or(DEFAULT_SYNC_MAXLEN, |m| *m.get_ref());
    if maxlen < 100 {
        let span = r.maxlen.as_ref().map_or(c.span(), Spanned::span);
        return Err(loc.invalid(span, "conn_sync.maxlen", "maxlen must be at least 100 bytes"));
    }
    Ok(ConnSync {
        interface,
        follow,
        group,
        peers,
        port: r.port.as_ref().map_or(DEFAULT_SYNC_PORT, |p| *p.get_ref()),
        syncid: r.syncid.as_ref().map_or(0, |s| *s.get_ref()),
        maxlen,
        period: opt_seconds(loc, &r.period, "conn_sync.period", Duration::from_secs(2))?,
        auth,
    })
}
