//! The IPVS TCP state machine: states, which of them count as active, default timeouts, and
//! the three transition tables (normal, input-only for DR/TUN, and the stricter `secure_tcp`
//! table used while that DoS defence is on). Values follow the kernel's `ip_vs_proto_tcp.c`.

/// A TCP connection state as IPVS tracks it (not the endpoints' real states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum TcpState {
    /// No packet handled yet.
    None = 0,
    /// Established.
    Established,
    /// SYN seen from the real server side.
    SynSent,
    /// SYN seen from the client.
    SynRecv,
    /// FIN seen.
    FinWait,
    /// Both FINs seen.
    TimeWait,
    /// Closed (RST, or a packet with no usable flag).
    Close,
    /// Client FIN after server FIN.
    CloseWait,
    /// Last ACK pending.
    LastAck,
    /// Listening (FTP active data).
    Listen,
    /// SYN-ACK seen (secure_tcp table).
    SynAck,
}

/// Number of TCP states.
pub const TCP_STATES: usize = 11;

impl TcpState {
    /// Every state, in the kernel's order.
    pub const ALL: [TcpState; TCP_STATES] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    /// The state with this index (out-of-range indexes read as `Close`).
    pub fn from_index(i: u8) -> TcpState {
        TcpState::ALL.get(usize::from(i)).copied().unwrap_or(TcpState::Close)
    }

    /// The name ipvsadm prints.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }

    /// Does a connection in this state count in the destination's ActiveConn?
    pub fn is_active(self) -> bool {
        matches!(self, TcpState::Established | TcpState::SynSent | TcpState::SynRecv | TcpState::SynAck)
    }

    /// The kernel's default timeout for the state, in seconds.
    pub fn default_timeout_secs(self) -> u32 {
        match self {
            TcpState::None => 2,
            TcpState::Established => 900,
            TcpState::SynSent => 120,
            TcpState::SynRecv => 60,
            TcpState::FinWait => 120,
            TcpState::TimeWait => 120,
            TcpState::Close => 10,
            TcpState::CloseWait => 60,
            TcpState::LastAck => 30,
            TcpState::Listen => 120,
            TcpState::SynAck => 120,
        }
    }
}

/// Which way a packet went, as the state machine sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to real server.
    Input,
    /// Real server to client (seen only with NAT).
    Output,
    /// Client to real server on a connection whose replies bypass us (DR/TUN).
    InputOnly,
}

/// The TCP flags the state machine looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpFlags {
    /// SYN.
    pub syn: bool,
    /// FIN.
    pub fin: bool,
    /// ACK.
    pub ack: bool,
    /// RST.
    pub rst: bool,
}

impl TcpFlags {
    /// Reads the flags from the TCP header's flag byte (offset 13).
    pub fn from_byte(b: u8) -> TcpFlags {
        TcpFlags { fin: b & 0x01 != 0, syn: b & 0x02 != 0, rst: b & 0x04 != 0, ack: b & 0x10 != 0 }
    }

    /// A bare SYN.
    pub const SYN: TcpFlags = TcpFlags { syn: true, fin: false, ack: false, rst: false };
    /// A bare ACK.
    pub const ACK: TcpFlags = TcpFlags { syn: false, fin: false, ack: true, rst: false };
    /// FIN+ACK.
    pub const FIN_ACK: TcpFlags = TcpFlags { syn: false, fin: true, ack: true, rst: false };
    /// SYN+ACK.
    pub const SYN_ACK: TcpFlags = TcpFlags { syn: true, fin: false, ack: true, rst: false };
    /// RST.
    pub const RST: TcpFlags = TcpFlags { syn: false, fin: false, ack: false, rst: true };

    /// Row of the transition table: RST beats SYN beats FIN beats ACK; none of them -> None.
    fn event(self) -> Option<usize> {
        if self.rst {
            Some(3)
        } else if self.syn {
            Some(0)
        } else if self.fin {
            Some(1)
        } else if self.ack {
            Some(2)
        } else {
            None
        }
    }
}

use TcpState as S;
const ES: S = S::Established;
const SS: S = S::SynSent;
const SR: S = S::SynRecv;
const FW: S = S::FinWait;
const TW: S = S::TimeWait;
const CL: S = S::Close;
const CW: S = S::CloseWait;
const LA: S = S::LastAck;
const LI: S = S::Listen;
const SA: S = S::SynAck;

type Table = [[[TcpState; TCP_STATES]; 4]; 3];

// Rows: syn, fin, ack, rst. Columns: current state in TcpState order
// (NO ES SS SR FW TW CL CW LA LI SA). Blocks: Input, Output, InputOnly.
const NORMAL: Table = [
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    ],
    [
        [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

// secure_tcp: SYNs lead to SYNACK, and for NAT an ACK in SYN_RECV does not establish.
const SECURE: Table = [
    [
        [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SA],
        [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, SA],
        [ES, ES, SS, SR, FW, TW, CL, CW, CL, LI, SA],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
    [
        [SS, ES, SS, SA, SS, SS, SS, SS, SS, LI, SA],
        [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    [
        [SA, ES, ES, SR, SA, SA, SA, SA, SA, SA, SA],
        [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// The next state for a packet with `flags` going `dir`, from `state`. `secure` selects the
/// secure_tcp table. A packet with none of SYN/FIN/ACK/RST closes the connection, as in IPVS.
pub fn next_state(state: TcpState, dir: Direction, flags: TcpFlags, secure: bool) -> TcpState {
    let Some(event) = flags.event() else {
        return TcpState::Close;
    };
    let block = match dir {
        Direction::Input => 0,
        Direction::Output => 1,
        Direction::InputOnly => 2,
    };
    let table = if secure { &SECURE } else { &NORMAL };
    table[block][event][state as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A NAT handshake and close as the director sees it: client SYN, server SYN-ACK,
    /// client ACK, client FIN, server FIN, client ACK.
    #[test]
    fn nat_connection_life() {
        let mut s = TcpState::None;
        s = next_state(s, Direction::Input, TcpFlags::SYN, false);
        assert_eq!(s, TcpState::SynRecv);
        s = next_state(s, Direction::Output, TcpFlags::SYN_ACK, false);
        assert_eq!(s, TcpState::SynRecv);
        s = next_state(s, Direction::Input, TcpFlags::ACK, false);
        assert_eq!(s, TcpState::Established);
        s = next_state(s, Direction::Input, TcpFlags::FIN_ACK, false);
        assert_eq!(s, TcpState::CloseWait);
        s = next_state(s, Direction::Output, TcpFlags::FIN_ACK, false);
        assert_eq!(s, TcpState::TimeWait);
    }

    /// DR sees only the client: SYN, ACK, FIN, ACK.
    #[test]
    fn direct_routing_input_only_life() {
        let mut s = TcpState::None;
        for (flags, want) in [
            (TcpFlags::SYN, TcpState::SynRecv),
            (TcpFlags::ACK, TcpState::Established),
            (TcpFlags::FIN_ACK, TcpState::FinWait),
            (TcpFlags::ACK, TcpState::FinWait),
            (TcpFlags::RST, TcpState::Close),
        ] {
            s = next_state(s, Direction::InputOnly, flags, false);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn secure_tcp_waits_for_the_handshake_with_nat() {
        let mut s = next_state(TcpState::None, Direction::Input, TcpFlags::SYN, true);
        assert_eq!(s, TcpState::SynRecv);
        s = next_state(s, Direction::Input, TcpFlags::ACK, true);
        assert_eq!(s, TcpState::SynRecv, "a spoofed ACK without the server's SYN-ACK does not establish");
        s = next_state(s, Direction::Output, TcpFlags::SYN_ACK, true);
        assert_eq!(s, TcpState::SynAck);
        s = next_state(s, Direction::Input, TcpFlags::ACK, true);
        assert_eq!(s, TcpState::SynAck);
        s = next_state(s, Direction::Output, TcpFlags::ACK, true);
        assert_eq!(s, TcpState::Established);
    }

    #[test]
    fn flagless_packet_closes_and_rst_has_priority() {
        assert_eq!(next_state(TcpState::Established, Direction::Input, TcpFlags::default(), false), TcpState::Close);
        let syn_rst = TcpFlags { syn: true, rst: true, ..TcpFlags::default() };
        assert_eq!(next_state(TcpState::Established, Direction::Input, syn_rst, false), TcpState::Close);
    }

    #[test]
    fn active_states_and_timeouts() {
        let active: Vec<_> = TcpState::ALL.iter().filter(|s| s.is_active()).map(|s| s.name()).collect();
        assert_eq!(active, ["ESTABLISHED", "SYN_SENT", "SYN_RECV", "SYNACK"]);
        assert_eq!(TcpState::Established.default_timeout_secs(), 900);
        assert_eq!(TcpState::FinWait.default_timeout_secs(), 120);
        assert_eq!(TcpState::from_index(200), TcpState::Close);
        assert_eq!(TcpFlags::from_byte(0x12), TcpFlags::SYN_ACK);
    }
}
