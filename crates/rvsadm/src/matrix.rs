//! The command/option legality matrix (ipvsadm's `commands_v_options`) and the tunnel
//! type/option matrix, with the checks and messages that go with them.

use crate::error::CliError;

/// ipvsadm's commands, in its order (the row of the matrix).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// `-A`.
    Add,
    /// `-E`.
    Edit,
    /// `-D`.
    Del,
    /// `-C`.
    Flush,
    /// `-L`.
    List,
    /// `-a`.
    AddDest,
    /// `-d`.
    DelDest,
    /// `-e`.
    EditDest,
    /// `--set`.
    Timeout,
    /// `--start-daemon`.
    StartDaemon,
    /// `--stop-daemon`.
    StopDaemon,
    /// `-R`.
    Restore,
    /// `-S`.
    Save,
    /// `-Z`.
    Zero,
}

impl Cmd {
    /// The name used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Cmd::Add => "add-service",
            Cmd::Edit => "edit-service",
            Cmd::Del => "delete-service",
            Cmd::Flush => "flush",
            Cmd::List => "list",
            Cmd::AddDest => "add-server",
            Cmd::DelDest => "delete-server",
            Cmd::EditDest => "edit-server",
            Cmd::Timeout => "set",
            Cmd::StartDaemon => "start-daemon",
            Cmd::StopDaemon => "stop-daemon",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::Zero => "zero",
        }
    }

    /// The matrix row: one character per [`Col`]: `+` required, `x` illegal, `1` at most
    /// one of the `1`s, blank optional.
    fn row(self) -> &'static str {
        match self {
            Cmd::Add | Cmd::Edit => "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxxx",
            Cmd::Del => "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::List => " 11xxxxxxxxx11       xxxxxxx xxxxx ",
            Cmd::AddDest | Cmd::EditDest => "xx+xxx+    xxxxxxxxxxxxxxxxxx     x",
            Cmd::DelDest => "xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::StartDaemon => "xxxxxxxxxxx xxxxxxx xxxx    xxxxxxx",
            Cmd::StopDaemon => "xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxxx",
            Cmd::Save => " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::Zero => "xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
            Cmd::Flush | Cmd::Timeout | Cmd::Restore => "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        }
    }
}

/// Options as the matrix knows them (its columns), in ipvsadm's order plus `json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// `-n`.
    Numeric,
    /// `-c`.
    Connection,
    /// `-t/-u/--sctp-service/-f`.
    Service,
    /// `-s`.
    Scheduler,
    /// `-p`.
    Persistent,
    /// `-M`.
    Netmask,
    /// `-r`.
    Server,
    /// `-g/-i/-m`.
    Forward,
    /// `-w`.
    Weight,
    /// `-x`.
    UThreshold,
    /// `-y`.
    LThreshold,
    /// `--mcast-interface`.
    Mcast,
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
    /// `--syncid`.
    SyncId,
    /// `--exact`.
    Exact,
    /// `-o`.
    OnePacket,
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
    /// `--json` (rvsadm; legal with the list command only).
    Json,
}

/// All columns in order.
pub const COLS: [Col; 35] = [
    Col::Numeric,
    Col::Connection,
    Col::Service,
    Col::Scheduler,
    Col::Persistent,
    Col::Netmask,
    Col::Server,
    Col::Forward,
    Col::Weight,
    Col::UThreshold,
    Col::LThreshold,
    Col::Mcast,
    Col::Timeout,
    Col::Daemon,
    Col::Stats,
    Col::Rate,
    Col::Thresholds,
    Col::PersistentConn,
    Col::NoSort,
    Col::SyncId,
    Col::Exact,
    Col::OnePacket,
    Col::Pe,
    Col::SchedFlags,
    Col::McastGroup,
    Col::McastPort,
    Col::McastTtl,
    Col::SyncMaxlen,
    Col::TunInfo,
    Col::TunType,
    Col::TunPort,
    Col::TunNocsum,
    Col::TunCsum,
    Col::TunRemcsum,
    Col::Json,
];

impl Col {
    /// The name used in messages (ipvsadm's `optnames`).
    pub fn name(self) -> &'static str {
        match self {
            Col::Numeric => "numeric",
            Col::Connection => "connection",
            Col::Service => "service-address",
            Col::Scheduler => "scheduler",
            Col::Persistent => "persistent",
            Col::Netmask => "netmask",
            Col::Server => "real-server",
            Col::Forward => "forwarding-method",
            Col::Weight => "weight",
            Col::UThreshold => "u-threshold",
            Col::LThreshold => "l-threshold",
            Col::Mcast => "mcast-interface",
            Col::Timeout => "timeout",
            Col::Daemon => "daemon",
            Col::Stats => "stats",
            Col::Rate => "rate",
            Col::Thresholds => "thresholds",
            Col::PersistentConn => "persistent-conn",
            Col::NoSort => "nosort",
            Col::SyncId => "syncid",
            Col::Exact => "exact",
            Col::OnePacket => "ops",
            Col::Pe => "pe",
            Col::SchedFlags => "sched-flags",
            Col::McastGroup => "mcast-group",
            Col::McastPort => "mcast-port",
            Col::McastTtl => "mcast-ttl",
            Col::SyncMaxlen => "sync-maxlen",
            Col::TunInfo => "tun-info",
            Col::TunType => "tun-type",
            Col::TunPort => "tun-port",
            Col::TunNocsum => "tun-nocsum",
            Col::TunCsum => "tun-csum",
            Col::TunRemcsum => "tun-remcsum",
            Col::Json => "json",
        }
    }

    fn bit(self) -> u64 {
        1u64 << (self as u32)
    }
}

/// A set of given options.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OptSet(u64);

impl OptSet {
    /// Records an option; a second time is ipvsadm's "multiple '%s' options specified".
    pub fn set(&mut self, col: Col) -> Result<(), CliError> {
        if self.has(col) {
            return Err(CliError::usage(format!("multiple '{}' options specified", col.name())));
        }
        self.0 |= col.bit();
        Ok(())
    }

    /// True if the option was given.
    pub fn has(self, col: Col) -> bool {
        self.0 & col.bit() != 0
    }
}

/// ipvsadm's `generic_opt_check`: walks the columns in order and reports the first
/// missing required option, illegal option, or second exclusive option.
pub fn check_command(cmd: Cmd, given: OptSet) -> Result<(), CliError> {
    let row = cmd.row().as_bytes();
    let mut first_exclusive: Option<Col> = None;
    for (i, col) in COLS.iter().enumerate() {
        let rule = row.get(i).copied().unwrap_or(b'x');
        if !given.has(*col) {
            if rule == b'+' {
                return Err(CliError::usage(format!(
                    "You need to supply the '{}' option for the '{}' command",
                    col.name(),
                    cmd.name()
                )));
            }
            continue;
        }
        if rule == b'x' {
            return Err(CliError::usage(format!("Illegal '{}' option with the '{}' command", col.name(), cmd.name())));
        }
        if rule == b'1' {
            match first_exclusive {
                None => first_exclusive = Some(*col),
                Some(first) => {
                    return Err(CliError::usage(format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' command",
                        col.name(),
                        first.name(),
                        cmd.name()
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Tunnel types in ipvsadm's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunKind {
    /// IP-in-IP (the default).
    Ipip,
    /// Generic UDP encapsulation.
    Gue,
    /// GRE.
    Gre,
}

impl TunKind {
    /// The name used on the command line and in messages.
    pub fn name(self) -> &'static str {
        match self {
            TunKind::Ipip => "ipip",
            TunKind::Gue => "gue",
            TunKind::Gre => "gre",
        }
    }

    /// Rules for [tun-port, tun-nocsum, tun-csum, tun-remcsum].
    fn row(self) -> &'static str {
        match self {
            TunKind::Ipip => "xxxx",
            TunKind::Gue => "+111",
            TunKind::Gre => "x11x",
        }
    }
}

/// ipvsadm's `tunnel_opt_check`.
pub fn check_tunnel(kind: TunKind, given: OptSet) -> Result<(), CliError> {
    let cols = [Col::TunPort, Col::TunNocsum, Col::TunCsum, Col::TunRemcsum];
    let row = kind.row().as_bytes();
    let mut first_exclusive: Option<Col> = None;
    for (i, col) in cols.iter().enumerate() {
        let rule = row.get(i).copied().unwrap_or(b'x');
        if !given.has(*col) {
            if rule == b'+' {
                return Err(CliError::usage(format!(
                    "You need to supply the '{}' option for the '{}' tunnel type",
                    col.name(),
                    kind.name()
                )));
            }
            continue;
        }
        if rule == b'x' {
            return Err(CliError::usage(format!(
                "Illegal '{}' option with the '{}' tunnel type",
                col.name(),
                kind.name()
            )));
        }
        if rule == b'1' {
            match first_exclusive {
                None => first_exclusive = Some(*col),
                Some(first) => {
                    return Err(CliError::usage(format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' tunnel type",
                        col.name(),
                        first.name(),
                        kind.name()
                    )));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_CMDS: [Cmd; 14] = [
        Cmd::Add,
        Cmd::Edit,
        Cmd::Del,
        Cmd::Flush,
        Cmd::List,
        Cmd::AddDest,
        Cmd::DelDest,
        Cmd::EditDest,
        Cmd::Timeout,
        Cmd::StartDaemon,
        Cmd::StopDaemon,
        Cmd::Restore,
        Cmd::Save,
        Cmd::Zero,
    ];

    #[test]
    fn every_row_has_one_rule_per_column() {
        for cmd in ALL_CMDS {
            assert_eq!(cmd.row().len(), COLS.len(), "{cmd:?}");
        }
        for (i, col) in COLS.iter().enumerate() {
            assert_eq!(*col as usize, i);
        }
    }

    fn rule(cmd: Cmd, col: Col) -> char {
        cmd.row().as_bytes()[col as usize] as char
    }

    #[test]
    fn rows_match_ipvsadm_table() {
        // Spot checks against commands_v_options in ipvsadm.c (and §2.2 of the reference).
        assert_eq!(rule(Cmd::Add, Col::Service), '+');
        assert_eq!(rule(Cmd::Add, Col::OnePacket), ' ');
        assert_eq!(rule(Cmd::Add, Col::SchedFlags), ' ');
        assert_eq!(rule(Cmd::Add, Col::McastGroup), 'x');
        assert_eq!(rule(Cmd::List, Col::Numeric), ' ');
        assert_eq!(rule(Cmd::List, Col::Timeout), '1');
        assert_eq!(rule(Cmd::List, Col::Daemon), '1');
        assert_eq!(rule(Cmd::List, Col::TunInfo), ' ');
        assert_eq!(rule(Cmd::List, Col::Json), ' ');
        assert_eq!(rule(Cmd::List, Col::SyncMaxlen), 'x');
        assert_eq!(rule(Cmd::AddDest, Col::Server), '+');
        assert_eq!(rule(Cmd::AddDest, Col::LThreshold), ' ');
        assert_eq!(rule(Cmd::AddDest, Col::TunInfo), 'x');
        assert_eq!(rule(Cmd::AddDest, Col::TunRemcsum), ' ');
        assert_eq!(rule(Cmd::StartDaemon, Col::Mcast), ' ');
        assert_eq!(rule(Cmd::StartDaemon, Col::SyncId), ' ');
        assert_eq!(rule(Cmd::StartDaemon, Col::SyncMaxlen), ' ');
        assert_eq!(rule(Cmd::StartDaemon, Col::TunInfo), 'x');
        assert_eq!(rule(Cmd::StopDaemon, Col::SyncId), ' ');
        assert_eq!(rule(Cmd::StopDaemon, Col::Mcast), 'x');
        assert_eq!(rule(Cmd::Save, Col::Numeric), ' ');
        assert_eq!(rule(Cmd::Zero, Col::Service), ' ');
        for cmd in ALL_CMDS {
            if cmd != Cmd::List {
                assert_eq!(rule(cmd, Col::Json), 'x');
            }
        }
    }

    #[test]
    fn first_violation_in_column_order_wins() {
        let mut s = OptSet::default();
        s.set(Col::Weight).unwrap();
        // Server (col 6) is checked before weight (col 8).
        assert_eq!(
            check_command(Cmd::AddDest, s).unwrap_err().to_string(),
            "You need to supply the 'service-address' option for the 'add-server' command"
        );
        let mut s = OptSet::default();
        s.set(Col::Connection).unwrap();
        s.set(Col::Timeout).unwrap();
        assert_eq!(
            check_command(Cmd::List, s).unwrap_err().to_string(),
            "The option 'timeout' conflicts with the 'connection' option in the 'list' command"
        );
        assert_eq!(s.set(Col::Timeout).unwrap_err().to_string(), "multiple 'timeout' options specified");
    }

    #[test]
    fn tunnel_rules() {
        let mut s = OptSet::default();
        assert_eq!(
            check_tunnel(TunKind::Gue, s).unwrap_err().to_string(),
            "You need to supply the 'tun-port' option for the 'gue' tunnel type"
        );
        s.set(Col::TunCsum).unwrap();
        assert_eq!(
            check_tunnel(TunKind::Ipip, s).unwrap_err().to_string(),
            "Illegal 'tun-csum' option with the 'ipip' tunnel type"
        );
        s.set(Col::TunNocsum).unwrap();
        assert_eq!(
            check_tunnel(TunKind::Gre, s).unwrap_err().to_string(),
            "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gre' tunnel type"
        );
    }
}
