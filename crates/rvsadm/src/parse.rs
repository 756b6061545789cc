//! From a command line (or one `-R` line) to what rvsadm must do, exactly as ipvsadm
//! 1.31 parses it: the first option must be the command; the options after it are applied
//! in order and the first bad value stops everything; then leftovers, scheduler flags, the
//! legality matrix and the per-command checks run in ipvsadm's order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use rvs_api::{
    Command, DestSpec, MethodSpec, NetmaskSpec, PersistenceSpec, Proto, ServiceId, ServiceSpec, SyncDaemonSpec,
    SyncRole,
};

use crate::error::CliError;
use crate::matrix::{Cmd, Col, OptSet, TunKind, check_command, check_tunnel};
use crate::names::{Names, inet_aton};
use crate::numbers::{atoi, string_to_number, strtol_exact};
use crate::options::{Opt, TABLE};
use crate::popt::Lexer;

/// Longest persistence or connection timeout: 31 days.
pub const MAX_TIMEOUT: i64 = 86400 * 31;
/// Persistence timeout of `-p` without a value.
pub const DEFAULT_PERSISTENT_TIMEOUT: u32 = 360;
/// Scheduler when `-s` is absent.
pub const DEFAULT_SCHEDULER: &str = "wlc";
/// Sync daemon interface when `--mcast-interface` is absent.
pub const DEFAULT_MCAST_INTERFACE: &str = "eth0";
/// Sync message length when `--sync-maxlen` is absent (1500-byte MTU minus IP and UDP).
pub const DEFAULT_SYNC_MAXLEN: u16 = 1472;
/// Sync multicast group when `--mcast-group` is absent.
pub const DEFAULT_MCAST_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// Sync UDP port when `--mcast-port` is absent.
pub const DEFAULT_MCAST_PORT: u16 = 8848;
/// Sync multicast TTL when `--mcast-ttl` is absent.
pub const DEFAULT_MCAST_TTL: u8 = 1;

/// Listing options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Format {
    /// `-n`.
    pub numeric: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--rate`.
    pub rate: bool,
    /// `--thresholds`.
    pub thresholds: bool,
    /// `--persistent-conn`.
    pub persistent_conn: bool,
    /// `--nosort`.
    pub nosort: bool,
    /// `--exact`.
    pub exact: bool,
    /// `--tun-info`.
    pub tun_info: bool,
    /// `--json`.
    pub json: bool,
}

/// What a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListWhat {
    /// The whole table (with the banner).
    All,
    /// One service (no banner).
    Service(ServiceId),
    /// `-c`.
    Conns,
    /// `--timeout`.
    Timeouts,
    /// `--daemon`.
    Daemons,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// `-h`.
    Help,
    /// `-v`.
    Version,
    /// `-L` and its variants.
    List {
        /// What to list.
        what: ListWhat,
        /// How.
        format: Format,
    },
    /// `-S`.
    Save {
        /// `-n`.
        numeric: bool,
    },
    /// `-R`.
    Restore,
    /// A change.
    Apply(Command),
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    /// What to do.
    pub action: Action,
    /// `--socket PATH`, if given.
    pub socket: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Af {
    Unset,
    V4,
    V6,
}

/// Address, port and persistence mask of a service or real server being parsed (the C
/// code parses a real server into a copy of the service, so they share a shape).
#[derive(Debug, Clone, Copy)]
struct Endpoint {
    af: Af,
    addr: IpAddr,
    port: u16,
    /// IPv4 mask bits, or an IPv6 prefix length once the family is IPv6.
    netmask: u32,
}

const SERVICE_ADDR: u8 = 1;
const SERVICE_PORT: u8 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fwd {
    Route,
    Tunnel,
    Masq,
}

struct Entry {
    cmd: Option<Cmd>,
    svc: Endpoint,
    protocol: Option<Proto>,
    fwmark: u32,
    sched: String,
    persistent: bool,
    timeout: u32,
    one_packet: bool,
    pe: String,
    sched_flags_arg: String,
    dest: Endpoint,
    fwd: Fwd,
    weight: u32,
    u_threshold: u32,
    l_threshold: u32,
    tun: TunKind,
    tun_port: u16,
    tun_flags: u8,
    role: SyncRole,
    mcast_ifn: String,
    syncid: u8,
    sync_maxlen: u16,
    mcast_group: Option<IpAddr>,
    mcast_port: u16,
    mcast_ttl: u8,
    options: OptSet,
    format: Format,
    socket: Option<String>,
}

impl Entry {
    fn new() -> Entry {
        let unset = Endpoint { af: Af::Unset, addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED), port: 0, netmask: u32::MAX };
        Entry {
            cmd: None,
            svc: unset,
            protocol: None,
            fwmark: 0,
            sched: String::new(),
            persistent: false,
            timeout: 0,
            one_packet: false,
            pe: String::new(),
            sched_flags_arg: String::new(),
            dest: unset,
            fwd: Fwd::Route,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tun: TunKind::Ipip,
            tun_port: 0,
            tun_flags: 0,
            role: SyncRole::Master,
            mcast_ifn: String::new(),
            syncid: 0,
            sync_maxlen: 0,
            mcast_group: None,
            mcast_port: 0,
            mcast_ttl: 0,
            options: OptSet::default(),
            format: Format::default(),
            socket: None,
        }
    }
}

/// Where a command line comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The real command line.
    Argv,
    /// A line of `-R` input (no `-R`, `--socket` or `--json` there).
    RestoreLine,
}

/// Parses a whole command line, `args[0]` being the program name. No arguments at all
/// means `-L`.
pub fn parse_command_line(args: &[String], names: &dyn Names) -> Result<Invocation, CliError> {
    parse_words(args.get(1..).unwrap_or(&[]), names, Origin::Argv)
}

/// Parses the words after the program name.
pub fn parse_words(words: &[String], names: &dyn Names, origin: Origin) -> Result<Invocation, CliError> {
    if words.is_empty() && origin == Origin::Argv {
        return Ok(Invocation {
            action: Action::List { what: ListWhat::All, format: Format::default() },
            socket: None,
        });
    }
    let mut lexer = Lexer::new(words, TABLE);
    let mut e = Entry::new();

    // The first option must be the command (rvsadm lets --socket and --json come first).
    loop {
        let found = match lexer.next_opt() {
            Ok(Some(f)) => f,
            Ok(None) if origin == Origin::Argv && (e.socket.is_some() || e.format.json) => {
                // Only rvsadm's own options: list, as with no arguments.
                e.cmd = Some(Cmd::List);
                break;
            }
            Ok(None) | Err(_) => return Err(CliError::TryHelp),
        };
        let arg = found.arg.unwrap_or_default();
        let cmd = match found.id {
            Opt::Socket if origin == Origin::Argv => {
                e.socket = Some(arg);
                continue;
            }
            Opt::Json if origin == Origin::Argv => {
                e.options.set(Col::Json)?;
                e.format.json = true;
                continue;
            }
            Opt::AddService => Cmd::Add,
            Opt::EditService => Cmd::Edit,
            Opt::DeleteService => Cmd::Del,
            Opt::AddServer => Cmd::AddDest,
            Opt::EditServer => Cmd::EditDest,
            Opt::DeleteServer => Cmd::DelDest,
            Opt::Clear => Cmd::Flush,
            Opt::List => Cmd::List,
            Opt::Zero => Cmd::Zero,
            Opt::Set => Cmd::Timeout,
            Opt::Restore if origin == Origin::Argv => Cmd::Restore,
            Opt::Save => Cmd::Save,
            Opt::StartDaemon => {
                e.role = match arg.as_str() {
                    "master" => SyncRole::Master,
                    "backup" => SyncRole::Backup,
                    _ => return Err(CliError::usage("illegal start-daemon parameter specified")),
                };
                Cmd::StartDaemon
            }
            Opt::StopDaemon => {
                e.role = match arg.as_str() {
                    "master" => SyncRole::Master,
                    "backup" => SyncRole::Backup,
                    _ => return Err(CliError::usage("illegal start_daemon specified")),
                };
                Cmd::StopDaemon
            }
            Opt::Help => return Ok(Invocation { action: Action::Help, socket: e.socket }),
            Opt::Version => return Ok(Invocation { action: Action::Version, socket: e.socket }),
            _ => return Err(CliError::TryHelp),
        };
        e.cmd = Some(cmd);
        break;
    }

    // The options.
    loop {
        let found = match lexer.next_opt() {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(err) => return Err(CliError::Popt { word: lexer.last_word().to_string(), reason: err.reason() }),
        };
        apply_option(&mut e, found.id, found.arg, names, origin)
            .map_err(|err| err.unwrap_or_else(|| invalid_option(lexer.last_word())))?;
    }

    let mut leftovers = lexer.leftovers().iter();
    if e.cmd == Some(Cmd::Timeout) {
        let (Some(tcp), Some(tcpfin), Some(udp)) = (leftovers.next(), leftovers.next(), leftovers.next()) else {
            return Err(CliError::usage("--set option requires 3 timeout values"));
        };
        let tcp = parse_timeout(Some(tcp), 0, MAX_TIMEOUT)?;
        let tcpfin = parse_timeout(Some(tcpfin), 0, MAX_TIMEOUT)?;
        let udp = parse_timeout(Some(udp), 0, MAX_TIMEOUT)?;
        return finish(e, Some((tcp, tcpfin, udp)), leftovers.next());
    }
    finish(e, None, leftovers.next())
}

fn invalid_option(word: &str) -> CliError {
    CliError::usage(format!("invalid option `{word}'"))
}

/// Applies one option after the command. `Err(None)` means "not an option here"
/// (a second command, `-h`, `-v`): ipvsadm's "invalid option".
fn apply_option(
    e: &mut Entry,
    id: Opt,
    arg: Option<String>,
    names: &dyn Names,
    origin: Origin,
) -> Result<(), Option<CliError>> {
    let a = arg.clone().unwrap_or_default();
    match id {
        Opt::TcpService | Opt::UdpService | Opt::SctpService => {
            e.options.set(Col::Service)?;
            e.protocol = Some(match id {
                Opt::TcpService => Proto::Tcp,
                Opt::UdpService => Proto::Udp,
                _ => Proto::Sctp,
            });
            if parse_service(&a, &mut e.svc, e.protocol, names) & SERVICE_ADDR == 0 {
                return Err(Some(CliError::usage("illegal virtual server address[:port] specified")));
            }
        }
        Opt::FwmarkService => {
            e.options.set(Col::Service)?;
            e.svc.af = Af::V4;
            e.protocol = Some(Proto::Tcp);
            e.fwmark = parse_fwmark(&a)?;
        }
        Opt::Scheduler => {
            e.options.set(Col::Scheduler)?;
            e.sched = truncate_bytes(&a, 15).to_string();
        }
        Opt::Persistent => {
            e.options.set(Col::Persistent)?;
            e.persistent = true;
            let t = parse_timeout(arg.as_deref(), 1, MAX_TIMEOUT)?;
            e.timeout = t;
        }
        Opt::Netmask => {
            e.options.set(Col::Netmask)?;
            if e.svc.af != Af::V6 {
                match parse_netmask(&a, names) {
                    Some(mask) => e.svc.netmask = u32::from(mask),
                    None => return Err(Some(CliError::usage("illegal virtual server persistent mask specified"))),
                }
            } else {
                let prefix = atoi(&a);
                if !(1..=128).contains(&prefix) {
                    return Err(Some(CliError::usage("illegal ipv6 netmask specified")));
                }
                e.svc.netmask = u32::try_from(prefix).unwrap_or(128);
            }
        }
        Opt::RealServer => {
            e.options.set(Col::Server)?;
            let mut target = e.svc;
            let parsed = parse_service(&a, &mut target, e.protocol, names);
            e.dest.af = target.af;
            e.dest.addr = target.addr;
            e.dest.port = target.port;
            if parsed & SERVICE_ADDR == 0 {
                return Err(Some(CliError::usage("illegal real server address[:port] specified")));
            }
            if parsed == SERVICE_ADDR {
                e.dest.port = e.svc.port;
            }
        }
        Opt::Ipip | Opt::Gatewaying | Opt::Masquerading => {
            e.options.set(Col::Forward)?;
            e.fwd = match id {
                Opt::Ipip => Fwd::Tunnel,
                Opt::Gatewaying => Fwd::Route,
                _ => Fwd::Masq,
            };
        }
        Opt::Weight => {
            e.options.set(Col::Weight)?;
            e.weight = number(&a, 0, 65535, "illegal weight specified")?;
        }
        Opt::UThreshold => {
            e.options.set(Col::UThreshold)?;
            e.u_threshold = number(&a, 0, i64::from(i32::MAX), "illegal u_threshold specified")?;
        }
        Opt::LThreshold => {
            e.options.set(Col::LThreshold)?;
            e.l_threshold = number(&a, 0, i64::from(i32::MAX), "illegal l_threshold specified")?;
        }
        Opt::Connection => e.options.set(Col::Connection)?,
        Opt::Numeric => {
            e.options.set(Col::Numeric)?;
            e.format.numeric = true;
        }
        Opt::McastInterface => {
            e.options.set(Col::Mcast)?;
            e.mcast_ifn = truncate_bytes(&a, 15).to_string();
        }
        Opt::SyncId => {
            e.options.set(Col::SyncId)?;
            e.syncid = number(&a, 0, 255, "illegal syncid specified")?;
        }
        Opt::Timeout => e.options.set(Col::Timeout)?,
        Opt::Daemon => e.options.set(Col::Daemon)?,
        Opt::Stats => {
            e.options.set(Col::Stats)?;
            e.format.stats = true;
        }
        Opt::Rate => {
            e.options.set(Col::Rate)?;
            e.format.rate = true;
        }
        Opt::Thresholds => {
            e.options.set(Col::Thresholds)?;
            e.format.thresholds = true;
        }
        Opt::PersistentConn => {
            e.options.set(Col::PersistentConn)?;
            e.format.persistent_conn = true;
        }
        Opt::NoSort => {
            e.options.set(Col::NoSort)?;
            e.format.nosort = true;
        }
        Opt::Sort => {}
        Opt::Exact => {
            e.options.set(Col::Exact)?;
            e.format.exact = true;
        }
        Opt::Ipv6 => {
            if e.fwmark != 0 {
                e.svc.af = Af::V6;
                e.svc.netmask = 128;
            } else {
                return Err(Some(CliError::usage("-6 used before -f\n")));
            }
        }
        Opt::Ops => {
            e.options.set(Col::OnePacket)?;
            e.one_packet = true;
        }
        Opt::Pe => {
            e.options.set(Col::Pe)?;
            e.pe = truncate_bytes(&a, 16).to_string();
        }
        Opt::SchedFlags => {
            e.options.set(Col::SchedFlags)?;
            e.sched_flags_arg = truncate_bytes(&a, 127).to_string();
        }
        Opt::McastGroup => {
            e.options.set(Col::McastGroup)?;
            e.mcast_group = Some(parse_mcast_group(&a)?);
        }
        Opt::McastPort => {
            e.options.set(Col::McastPort)?;
            e.mcast_port = number(&a, 1, 65535, "illegal mcast-port specified")?;
        }
        Opt::McastTtl => {
            e.options.set(Col::McastTtl)?;
            e.mcast_ttl = number(&a, 1, 255, "illegal mcast-ttl specified")?;
        }
        Opt::SyncMaxlen => {
            e.options.set(Col::SyncMaxlen)?;
            e.sync_maxlen = number(&a, 1, 65535 - 20 - 8, "illegal sync-maxlen specified")?;
        }
        Opt::TunInfo => {
            e.options.set(Col::TunInfo)?;
            e.format.tun_info = true;
        }
        Opt::TunType => {
            e.options.set(Col::TunType)?;
            e.tun = match a.as_str() {
                "ipip" => TunKind::Ipip,
                "gue" => TunKind::Gue,
                "gre" => TunKind::Gre,
                _ => return Err(Some(CliError::usage("illegal tunnel type specified"))),
            };
        }
        Opt::TunPort => {
            e.options.set(Col::TunPort)?;
            e.tun_port = number(&a, 1, 65535, "illegal tunnel port specified")?;
        }
        Opt::TunNocsum => e.options.set(Col::TunNocsum)?,
        Opt::TunCsum => {
            e.options.set(Col::TunCsum)?;
            e.tun_flags |= 1;
        }
        Opt::TunRemcsum => {
            e.options.set(Col::TunRemcsum)?;
            e.tun_flags |= 2;
        }
        Opt::Json if origin == Origin::Argv => {
            e.options.set(Col::Json)?;
            e.format.json = true;
        }
        Opt::Socket if origin == Origin::Argv => e.socket = arg,
        _ => return Err(None),
    }
    Ok(())
}

fn number<T: TryFrom<i64>>(s: &str, min: i64, max: i64, msg: &str) -> Result<T, CliError> {
    string_to_number(s, min, max).and_then(|n| T::try_from(n).ok()).ok_or_else(|| CliError::usage(msg))
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary
/// (C's `strncpy` into a fixed buffer).
fn truncate_bytes(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

fn parse_timeout(s: Option<&str>, min: i64, max: i64) -> Result<u32, CliError> {
    let Some(s) = s else { return Ok(DEFAULT_PERSISTENT_TIMEOUT) };
    string_to_number(s, min, max)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| CliError::usage(format!("invalid timeout value `{s}' specified")))
}

fn parse_fwmark(s: &str) -> Result<u32, CliError> {
    strtol_exact(s)
        .filter(|&n| n > 0)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| CliError::usage(format!("invalid fwmark value `{s}' specified")))
}

fn parse_netmask(s: &str, names: &dyn Names) -> Option<Ipv4Addr> {
    inet_aton(s).or_else(|| names.host_v4(s))
}

fn parse_mcast_group(s: &str) -> Result<IpAddr, CliError> {
    if s.contains(':') {
        match s.parse::<Ipv6Addr>() {
            Ok(a) if a.is_multicast() => Ok(IpAddr::V6(a)),
            _ => Err(CliError::usage(format!("invalid IPv6 mcast-group `{s}'"))),
        }
    } else {
        match s.parse::<Ipv4Addr>() {
            Ok(a) if a.is_multicast() => Ok(IpAddr::V4(a)),
            _ => Err(CliError::usage(format!("invalid IPv4 mcast-group `{s}'"))),
        }
    }
}

/// ipvsadm's `parse_service`: `host[:port]`, `[v6]:port` or a bare IPv6 address. Returns
/// `SERVICE_ADDR | SERVICE_PORT` bits; 0 is a failure. Fills `ep` as it goes.
fn parse_service(buf: &str, ep: &mut Endpoint, proto: Option<Proto>, names: &dyn Names) -> u8 {
    if buf.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    let mut text = buf;
    let mut port_text: Option<&str> = None;
    if let Some(rest) = buf.strip_prefix('[') {
        let Some(close) = rest.find(']') else { return 0 };
        let (inner, after) = (rest.get(..close).unwrap_or(""), rest.get(close + 1..).unwrap_or(""));
        let Some(port) = after.strip_prefix(':') else { return 0 };
        text = inner;
        port_text = Some(port);
    }
    if let Ok(v6) = text.parse::<Ipv6Addr>() {
        ep.addr = IpAddr::V6(v6);
        ep.af = Af::V6;
        ep.netmask = 128;
    } else {
        // The C code looks for the port separator again inside the host text; a bracketed
        // IPv4 address thereby loses its port.
        let host = match text.rfind(':') {
            Some(i) => {
                port_text = text.get(i + 1..);
                text.get(..i).unwrap_or("")
            }
            None => {
                port_text = None;
                text
            }
        };
        match inet_aton(host).or_else(|| names.host_v4(host)) {
            Some(v4) => {
                ep.addr = IpAddr::V4(v4);
                ep.af = Af::V4;
            }
            None => return 0,
        }
    }
    let mut result = SERVICE_ADDR;
    if let Some(p) = port_text {
        result |= SERVICE_PORT;
        match string_to_number(p, 0, 65535).and_then(|n| u16::try_from(n).ok()) {
            Some(n) => ep.port = n,
            None => match proto.and_then(|pr| names.port_by_name(p, pr)) {
                Some(n) => ep.port = n,
                None => return 0,
            },
        }
    }
    result
}

/// Bits of ipvsadm's `parse_sched_flags` (SCHED1..3), checking sh-/mh- names against the
/// scheduler (`wlc` when `-s` is absent).
fn parse_sched_flags(sched: &str, list: &str) -> Result<u8, CliError> {
    let sched = if sched.is_empty() { DEFAULT_SCHEDULER } else { sched };
    let mut bits = 0u8;
    for flag in list.split(',').filter(|f| !f.is_empty()) {
        let (bit, owner) = match flag {
            "flag-1" => (1, None),
            "flag-2" => (2, None),
            "flag-3" => (4, None),
            "sh-fallback" => (1, Some("sh")),
            "sh-port" => (2, Some("sh")),
            "mh-fallback" => (1, Some("mh")),
            "mh-port" => (2, Some("mh")),
            _ => return Err(CliError::usage(format!("invalid scheduler flag `{flag}'"))),
        };
        if owner.is_some_and(|o| o != sched) {
            return Err(CliError::usage(format!("incompatible scheduler flag `{flag}'")));
        }
        bits |= bit;
    }
    Ok(bits)
}

/// The names of SCHED1..3 bits under a scheduler, as ipvsadm prints them.
pub fn sched_flag_names(sched: &str, bits: u8) -> Vec<&'static str> {
    let mut out = Vec::new();
    match sched {
        "sh" | "mh" => {
            let sh = sched == "sh";
            if bits & 1 != 0 {
                out.push(if sh { "sh-fallback" } else { "mh-fallback" });
            }
            if bits & 2 != 0 {
                out.push(if sh { "sh-port" } else { "mh-port" });
            }
        }
        _ => {
            for (bit, name) in [(1, "flag-1"), (2, "flag-2"), (4, "flag-3")] {
                if bits & bit != 0 {
                    out.push(name);
                }
            }
        }
    }
    out
}

/// SCHED1..3 bits of flag names (any spelling).
pub fn sched_flag_bits(names: &[String]) -> u8 {
    names.iter().fold(0, |bits, n| {
        bits | match n.as_str() {
            "flag-1" | "sh-fallback" | "mh-fallback" => 1,
            "flag-2" | "sh-port" | "mh-port" => 2,
            "flag-3" => 4,
            _ => 0,
        }
    })
}

fn service_id(e: &Entry) -> ServiceId {
    if e.fwmark != 0 {
        ServiceId::Fwmark { mark: e.fwmark, ipv6: e.svc.af == Af::V6 }
    } else {
        ServiceId::Addr { protocol: e.protocol.unwrap_or(Proto::Tcp), addr: e.svc.addr, port: e.svc.port }
    }
}

fn finish(
    mut e: Entry,
    timeouts: Option<(u32, u32, u32)>,
    unexpected: Option<&String>,
) -> Result<Invocation, CliError> {
    if let Some(arg) = unexpected {
        return Err(CliError::usage(format!("unexpected argument {arg}")));
    }
    let mut flag_bits = 0u8;
    if !e.sched_flags_arg.is_empty() {
        flag_bits = parse_sched_flags(&e.sched, &e.sched_flags_arg)?;
    }
    let Some(cmd) = e.cmd else { return Err(CliError::TryHelp) };
    check_command(cmd, e.options)?;

    if matches!(cmd, Cmd::Add | Cmd::Edit) {
        if e.fwmark == 0 && e.svc.port == 0 && !e.persistent {
            return Err(CliError::usage("Zero port specified for non-persistent service"));
        }
        if e.one_packet && e.fwmark == 0 && e.protocol != Some(Proto::Udp) {
            return Err(CliError::usage("One-Packet Scheduling is only for UDP virtual services"));
        }
        if e.sched.is_empty() {
            e.sched = DEFAULT_SCHEDULER.to_string();
        }
    }
    if cmd == Cmd::StartDaemon && e.mcast_ifn.is_empty() {
        e.mcast_ifn = DEFAULT_MCAST_INTERFACE.to_string();
    }
    if matches!(cmd, Cmd::AddDest | Cmd::EditDest) {
        if e.fwmark == 0 && matches!(e.fwd, Fwd::Tunnel | Fwd::Route) {
            e.dest.port = e.svc.port;
        }
        if e.dest.af != e.svc.af && e.fwd != Fwd::Tunnel {
            return Err(CliError::usage("Different address family is allowed only for tunneling servers"));
        }
        let tunnel_opts = [Col::TunType, Col::TunPort, Col::TunNocsum, Col::TunCsum, Col::TunRemcsum];
        if tunnel_opts.iter().any(|c| e.options.has(*c)) && e.fwd != Fwd::Tunnel {
            return Err(CliError::usage("Tunnel options conflict with forward method"));
        }
        check_tunnel(e.tun, e.options)?;
    }

    let o = e.options;
    let action = match cmd {
        Cmd::List => {
            let listing_views = o.has(Col::Stats) || o.has(Col::Rate) || o.has(Col::Thresholds);
            let other_tables = o.has(Col::Connection) || o.has(Col::Timeout) || o.has(Col::Daemon);
            if (other_tables && listing_views)
                || ((o.has(Col::Timeout) || o.has(Col::Daemon)) && o.has(Col::PersistentConn))
            {
                return Err(CliError::usage("options conflicts in the list command"));
            }
            let what = if o.has(Col::Connection) {
                ListWhat::Conns
            } else if o.has(Col::Service) {
                ListWhat::Service(service_id(&e))
            } else if o.has(Col::Timeout) {
                ListWhat::Timeouts
            } else if o.has(Col::Daemon) {
                ListWhat::Daemons
            } else {
                ListWhat::All
            };
            Action::List { what, format: e.format }
        }
        Cmd::Restore => Action::Restore,
        Cmd::Save => Action::Save { numeric: e.format.numeric },
        Cmd::Flush => Action::Apply(Command::Clear),
        Cmd::Add | Cmd::Edit => {
            let persistence = e.persistent.then(|| PersistenceSpec {
                timeout: e.timeout,
                netmask: if e.svc.af == Af::V6 {
                    NetmaskSpec::V6(u8::try_from(e.svc.netmask.min(128)).unwrap_or(128))
                } else {
                    NetmaskSpec::V4(Ipv4Addr::from(e.svc.netmask))
                },
            });
            let spec = ServiceSpec {
                id: service_id(&e),
                scheduler: e.sched.clone(),
                sched_flags: sched_flag_names(&e.sched, flag_bits).into_iter().map(String::from).collect(),
                persistence,
                one_packet: e.one_packet,
                pe: (!e.pe.is_empty()).then(|| e.pe.clone()),
            };
            Action::Apply(if cmd == Cmd::Add { Command::AddService(spec) } else { Command::EditService(spec) })
        }
        Cmd::Del => Action::Apply(Command::DeleteService { id: service_id(&e) }),
        Cmd::Zero => Action::Apply(Command::Zero { service: o.has(Col::Service).then(|| service_id(&e)) }),
        Cmd::AddDest | Cmd::EditDest => {
            let method = match e.fwd {
                Fwd::Route => MethodSpec::Route,
                Fwd::Masq => MethodSpec::Masq,
                Fwd::Tunnel => MethodSpec::Tunnel {
                    tun_type: e.tun.name().to_string(),
                    tun_port: e.tun_port,
                    tun_csum: match e.tun_flags {
                        0 => "nocsum",
                        2 => "remcsum",
                        _ => "csum",
                    }
                    .to_string(),
                },
            };
            let dest = DestSpec {
                addr: e.dest.addr,
                port: e.dest.port,
                method,
                weight: e.weight,
                u_threshold: e.u_threshold,
                l_threshold: e.l_threshold,
            };
            let service = service_id(&e);
            Action::Apply(if cmd == Cmd::AddDest {
                Command::AddDest { service, dest }
            } else {
                Command::EditDest { service, dest }
            })
        }
        Cmd::DelDest => {
            Action::Apply(Command::DeleteDest { service: service_id(&e), addr: e.dest.addr, port: e.dest.port })
        }
        Cmd::Timeout => {
            let (tcp, tcpfin, udp) = timeouts.unwrap_or((0, 0, 0));
            Action::Apply(Command::SetTimeouts { tcp: tcp.into(), tcpfin: tcpfin.into(), udp: udp.into() })
        }
        Cmd::StartDaemon => Action::Apply(Command::StartDaemon(SyncDaemonSpec {
            role: e.role,
            mcast_interface: e.mcast_ifn.clone(),
            syncid: e.syncid,
            maxlen: if e.sync_maxlen == 0 { DEFAULT_SYNC_MAXLEN } else { e.sync_maxlen },
            group: e.mcast_group.unwrap_or(IpAddr::V4(DEFAULT_MCAST_GROUP)),
            port: if e.mcast_port == 0 { DEFAULT_MCAST_PORT } else { e.mcast_port },
            ttl: if e.mcast_ttl == 0 { DEFAULT_MCAST_TTL } else { e.mcast_ttl },
        })),
        Cmd::StopDaemon => Action::Apply(Command::StopDaemon { role: e.role }),
    };
    Ok(Invocation { action, socket: e.socket })
}
