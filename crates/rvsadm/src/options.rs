//! ipvsadm's option table: every command and option with its long and short name and
//! whether it takes an argument, plus rvsadm's two additions (`--json`, `--socket`).

use crate::popt::{ArgMode, OptDef};

/// Everything the lexer can return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opt {
    /// `-A`.
    AddService,
    /// `-E`.
    EditService,
    /// `-D`.
    DeleteService,
    /// `-C`.
    Clear,
    /// `-L` / `-l`.
    List,
    /// `-Z`.
    Zero,
    /// `-a`.
    AddServer,
    /// `-e`.
    EditServer,
    /// `-d`.
    DeleteServer,
    /// `--set`.
    Set,
    /// `-h`.
    Help,
    /// `-v`.
    Version,
    /// `-R`.
    Restore,
    /// `-S`.
    Save,
    /// `--start-daemon ROLE`.
    StartDaemon,
    /// `--stop-daemon ROLE`.
    StopDaemon,
    /// `-t`.
    TcpService,
    /// `-u`.
    UdpService,
    /// `--sctp-service`.
    SctpService,
    /// `-f`.
    FwmarkService,
    /// `-s`.
    Scheduler,
    /// `-p [T]`.
    Persistent,
    /// `-M`.
    Netmask,
    /// `-r`.
    RealServer,
    /// `-m`.
    Masquerading,
    /// `-i`.
    Ipip,
    /// `-g`.
    Gatewaying,
    /// `-w`.
    Weight,
    /// `-x`.
    UThreshold,
    /// `-y`.
    LThreshold,
    /// `-n`.
    Numeric,
    /// `-c`.
    Connection,
    /// `--mcast-interface`.
    McastInterface,
    /// `--syncid`.
    SyncId,
    /// `--timeout`.
    Timeout,
    /// `--daemon`.
    Daemon,
    /// `--stats`.
    Stats,
    /// `--rate`.
    Rate,
    /// `--thresholds`.
    Thresholds,
    /// `--persistent-conn`.
    PersistentConn,
    /// `--nosort`.
    NoSort,
    /// `--sort` (no-op).
    Sort,
    /// `-X` / `--exact`.
    Exact,
    /// `-6`.
    Ipv6,
    /// `-o`.
    Ops,
    /// `--pe`.
    Pe,
    /// `-b`.
    SchedFlags,
    /// `--mcast-group`.
    McastGroup,
    /// `--mcast-port`.
    McastPort,
    /// `--mcast-ttl`.
    McastTtl,
    /// `--sync-maxlen`.
    SyncMaxlen,
    /// `--tun-info`.
    TunInfo,
    /// `--tun-type`.
    TunType,
    /// `--tun-port`.
    TunPort,
    /// `--tun-nocsum`.
    TunNocsum,
    /// `--tun-csum`.
    TunCsum,
    /// `--tun-remcsum`.
    TunRemcsum,
    /// `--json` (rvsadm).
    Json,
    /// `--socket PATH` (rvsadm).
    Socket,
}

const fn def(long: &'static str, short: Option<char>, mode: ArgMode, id: Opt) -> OptDef<Opt> {
    OptDef { long: Some(long), short, mode, id }
}

use ArgMode::{None as N, Optional as O, Required as R};

/// The table, in ipvsadm's order (the first match of a name wins, as in popt).
pub const TABLE: &[OptDef<Opt>] = &[
    def("add-service", Some('A'), N, Opt::AddService),
    def("edit-service", Some('E'), N, Opt::EditService),
    def("delete-service", Some('D'), N, Opt::DeleteService),
    def("clear", Some('C'), N, Opt::Clear),
    def("list", Some('L'), N, Opt::List),
    def("list", Some('l'), N, Opt::List),
    def("zero", Some('Z'), N, Opt::Zero),
    def("add-server", Some('a'), N, Opt::AddServer),
    def("edit-server", Some('e'), N, Opt::EditServer),
    def("delete-server", Some('d'), N, Opt::DeleteServer),
    def("set", None, N, Opt::Set),
    def("help", Some('h'), N, Opt::Help),
    def("version", Some('v'), N, Opt::Version),
    def("restore", Some('R'), N, Opt::Restore),
    def("save", Some('S'), N, Opt::Save),
    def("start-daemon", None, R, Opt::StartDaemon),
    def("stop-daemon", None, R, Opt::StopDaemon),
    def("tcp-service", Some('t'), R, Opt::TcpService),
    def("udp-service", Some('u'), R, Opt::UdpService),
    def("sctp-service", None, R, Opt::SctpService),
    def("fwmark-service", Some('f'), R, Opt::FwmarkService),
    def("scheduler", Some('s'), R, Opt::Scheduler),
    def("persistent", Some('p'), O, Opt::Persistent),
    def("netmask", Some('M'), R, Opt::Netmask),
    def("real-server", Some('r'), R, Opt::RealServer),
    def("masquerading", Some('m'), N, Opt::Masquerading),
    def("ipip", Some('i'), N, Opt::Ipip),
    def("gatewaying", Some('g'), N, Opt::Gatewaying),
    def("weight", Some('w'), R, Opt::Weight),
    def("u-threshold", Some('x'), R, Opt::UThreshold),
    def("l-threshold", Some('y'), R, Opt::LThreshold),
    def("numeric", Some('n'), N, Opt::Numeric),
    def("connection", Some('c'), N, Opt::Connection),
    def("mcast-interface", None, R, Opt::McastInterface),
    def("syncid", None, R, Opt::SyncId),
    def("timeout", None, N, Opt::Timeout),
    def("daemon", None, N, Opt::Daemon),
    def("stats", None, N, Opt::Stats),
    def("rate", None, N, Opt::Rate),
    def("thresholds", None, N, Opt::Thresholds),
    def("persistent-conn", None, N, Opt::PersistentConn),
    def("nosort", None, N, Opt::NoSort),
    def("sort", None, N, Opt::Sort),
    def("exact", Some('X'), N, Opt::Exact),
    def("ipv6", Some('6'), N, Opt::Ipv6),
    def("ops", Some('o'), N, Opt::Ops),
    def("pe", None, R, Opt::Pe),
    def("sched-flags", Some('b'), R, Opt::SchedFlags),
    def("mcast-group", None, R, Opt::McastGroup),
    def("mcast-port", None, R, Opt::McastPort),
    def("mcast-ttl", None, R, Opt::McastTtl),
    def("sync-maxlen", None, R, Opt::SyncMaxlen),
    def("tun-info", None, N, Opt::TunInfo),
    def("tun-type", None, R, Opt::TunType),
    def("tun-port", None, R, Opt::TunPort),
    def("tun-nocsum", None, N, Opt::TunNocsum),
    def("tun-csum", None, N, Opt::TunCsum),
    def("tun-remcsum", None, N, Opt::TunRemcsum),
    def("json", None, N, Opt::Json),
    def("socket", None, R, Opt::Socket),
];
