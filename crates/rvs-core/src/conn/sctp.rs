//! The IPVS SCTP state machine: 14 states driven by the first chunk type of each packet,
//! with separate tables for input, output and input-only (DR/TUN) traffic, and the kernel's
//! per-state timeouts (`ip_vs_proto_sctp.c`). Only ESTABLISHED counts as active.

use super::tcp::Direction;

/// An SCTP association state as IPVS tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum SctpState {
    /// Nothing seen yet.
    None = 0,
    /// First client INIT, no INIT-ACK yet.
    Init1,
    /// Repeated client INIT.
    Init,
    /// Server INIT-ACK sent, waiting for COOKIE-ECHO.
    CookieSent,
    /// Client COOKIE-ECHO sent, waiting for COOKIE-ACK.
    CookieReplied,
    /// Server INIT sent (server-initiated association).
    CookieWait,
    /// Client INIT-ACK sent.
    Cookie,
    /// Server COOKIE-ECHO sent.
    CookieEchoed,
    /// Established.
    Established,
    /// SHUTDOWN sent by the server.
    ShutdownSent,
    /// SHUTDOWN received from the client.
    ShutdownReceived,
    /// SHUTDOWN-ACK sent.
    ShutdownAckSent,
    /// INIT answered with ABORT.
    Rejected,
    /// Closed.
    Closed,
}

/// Number of SCTP states.
pub const SCTP_STATES: usize = 14;

impl SctpState {
    /// Every state, in the kernel's order.
    pub const ALL: [SctpState; SCTP_STATES] = [
        SctpState::None,
        SctpState::Init1,
        SctpState::Init,
        SctpState::CookieSent,
        SctpState::CookieReplied,
        SctpState::CookieWait,
        SctpState::Cookie,
        SctpState::CookieEchoed,
        SctpState::Established,
        SctpState::ShutdownSent,
        SctpState::ShutdownReceived,
        SctpState::ShutdownAckSent,
        SctpState::Rejected,
        SctpState::Closed,
    ];

    /// The state with this index (out of range reads as `Closed`).
    pub fn from_index(i: u8) -> SctpState {
        SctpState::ALL.get(usize::from(i)).copied().unwrap_or(SctpState::Closed)
    }

    /// The name the kernel (and so ipvsadm -Lnc) prints.
    pub fn name(self) -> &'static str {
        match self {
            SctpState::None => "NONE",
            SctpState::Init1 => "INIT1",
            SctpState::Init => "INIT",
            SctpState::CookieSent => "C-SENT",
            SctpState::CookieReplied => "C-REPLIED",
            SctpState::CookieWait => "C-WAIT",
            SctpState::Cookie => "COOKIE",
            SctpState::CookieEchoed => "C-ECHOED",
            SctpState::Established => "ESTABLISHED",
            SctpState::ShutdownSent => "S-SENT",
            SctpState::ShutdownReceived => "S-RECEIVED",
            SctpState::ShutdownAckSent => "S-ACK-SENT",
            SctpState::Rejected => "REJECTED",
            SctpState::Closed => "CLOSED",
        }
    }

    /// Counted in ActiveConn?
    pub fn is_active(self) -> bool {
        self == SctpState::Established
    }

    /// Default timeout in seconds (61 s is the kernel's maximum RTO + 1).
    pub fn default_timeout_secs(self) -> u32 {
        match self {
            SctpState::None => 2,
            SctpState::Init1 | SctpState::Rejected => 4,
            SctpState::Established => 900,
            _ => 61,
        }
    }
}

/// Chunk type numbers (RFC 9260) the state machine distinguishes.
pub mod chunk {
    /// DATA.
    pub const DATA: u8 = 0;
    /// INIT.
    pub const INIT: u8 = 1;
    /// INIT ACK.
    pub const INIT_ACK: u8 = 2;
    /// ABORT.
    pub const ABORT: u8 = 6;
    /// SHUTDOWN.
    pub const SHUTDOWN: u8 = 7;
    /// SHUTDOWN ACK.
    pub const SHUTDOWN_ACK: u8 = 8;
    /// ERROR.
    pub const ERROR: u8 = 9;
    /// COOKIE ECHO.
    pub const COOKIE_ECHO: u8 = 10;
    /// COOKIE ACK.
    pub const COOKIE_ACK: u8 = 11;
    /// SHUTDOWN COMPLETE.
    pub const SHUTDOWN_COMPLETE: u8 = 14;
}

/// The chunk that drives the state machine: the first one, except that an ABORT bundled
/// right after a COOKIE-ECHO or COOKIE-ACK counts as ABORT.
pub fn effective_chunk(first: u8, second: Option<u8>) -> u8 {
    if (first == chunk::COOKIE_ECHO || first == chunk::COOKIE_ACK) && second == Some(chunk::ABORT) {
        chunk::ABORT
    } else {
        first
    }
}

/// Table row for a chunk type; unknown and data-like chunks (SACK, HEARTBEAT ...) are DATA.
fn event(chunk_type: u8) -> usize {
    match chunk_type {
        chunk::INIT => 1,
        chunk::INIT_ACK => 2,
        chunk::COOKIE_ECHO => 3,
        chunk::COOKIE_ACK => 4,
        chunk::SHUTDOWN => 5,
        chunk::SHUTDOWN_ACK => 6,
        chunk::SHUTDOWN_COMPLETE => 7,
        chunk::ERROR => 8,
        chunk::ABORT => 9,
        _ => 0,
    }
}

use SctpState as S;
const I1: S = S::Init1;
const IN: S = S::Init;
const CS: S = S::CookieSent;
const CR: S = S::CookieReplied;
const CW: S = S::CookieWait;
const CO: S = S::Cookie;
const CE: S = S::CookieEchoed;
const ES: S = S::Established;
const SS: S = S::ShutdownSent;
const SR: S = S::ShutdownReceived;
const SA: S = S::ShutdownAckSent;
const RJ: S = S::Rejected;
const CL: S = S::Closed;

// Rows: data, init, init-ack, cookie-echo, cookie-ack, shutdown, shutdown-ack,
// shutdown-complete, error, abort. Columns: current state in SctpState order.
const TABLE: [[[SctpState; SCTP_STATES]; 10]; 3] = [
    [
        [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [I1, IN, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, IN, IN],
        [CW, CW, CW, CS, CR, CO, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CR, IN, IN, CR, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [ES, I1, IN, CS, CR, CW, CO, ES, ES, SS, SR, SA, RJ, CL],
        [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
        [CL, IN, IN, CS, CR, CW, CO, CE, ES, CL, SR, CL, RJ, CL],
        [CL, CL, CL, CS, CR, CW, CO, CE, ES, SS, SR, CL, RJ, CL],
        [CL, I1, IN, CS, CR, CW, CO, CL, ES, SS, SR, SA, RJ, CL],
        [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
    [
        [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CW, CW, CW, CW, CW, CW, CW, CW, ES, CW, CW, CW, CW, CW],
        [CS, CS, CS, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CE, CE, CE, CE, CE, CE, CE, CE, ES, SS, SR, SA, RJ, CL],
        [ES, ES, ES, ES, ES, ES, ES, ES, ES, SS, SR, SA, RJ, CL],
        [SS, SS, SS, SS, SS, SS, SS, SS, SS, SS, SR, SA, RJ, CL],
        [SA, SA, SA, SA, SA, CW, CO, CE, ES, SA, SA, SA, RJ, CL],
        [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
    [
        [ES, I1, IN, CS, CR, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
        [I1, IN, IN, IN, IN, IN, CO, CE, ES, SS, SR, SA, IN, IN],
        [CE, CE, CE, CE, CE, CE, CO, CE, ES, SS, SR, SA, RJ, CL],
        [ES, ES, ES, ES, ES, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
        [ES, I1, IN, ES, ES, CW, ES, ES, ES, SS, SR, SA, RJ, CL],
        [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
        [CL, IN, IN, CS, CR, CW, CO, CE, CL, CL, SR, CL, RJ, CL],
        [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, CL, CL, RJ, CL],
        [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
];

/// The next state for a packet whose (effective) first chunk is `chunk_type`.
pub fn next_state(state: SctpState, dir: Direction, chunk_type: u8) -> SctpState {
    let block = match dir {
        Direction::Input => 0,
        Direction::Output => 1,
        Direction::InputOnly => 2,
    };
    TABLE[block][event(chunk_type)][state as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NAT: client INIT, server INIT-ACK, client COOKIE-ECHO, server COOKIE-ACK, then a
    /// client SHUTDOWN, server SHUTDOWN-ACK, client SHUTDOWN-COMPLETE.
    #[test]
    fn nat_association_life() {
        let steps = [
            (Direction::Input, chunk::INIT, SctpState::Init1),
            (Direction::Output, chunk::INIT_ACK, SctpState::CookieSent),
            (Direction::Input, chunk::COOKIE_ECHO, SctpState::CookieReplied),
            (Direction::Output, chunk::COOKIE_ACK, SctpState::Established),
            (Direction::Input, chunk::DATA, SctpState::Established),
            (Direction::Input, chunk::SHUTDOWN, SctpState::ShutdownReceived),
            (Direction::Output, chunk::SHUTDOWN_ACK, SctpState::ShutdownAckSent),
            (Direction::Input, chunk::SHUTDOWN_COMPLETE, SctpState::Closed),
        ];
        let mut s = SctpState::None;
        for (dir, c, want) in steps {
            s = next_state(s, dir, c);
            assert_eq!(s, want, "after chunk {c} {dir:?}");
        }
    }

    /// DR: only the client's INIT, COOKIE-ECHO and DATA are seen.
    #[test]
    fn input_only_establishes_on_cookie_echo() {
        let mut s = next_state(SctpState::None, Direction::InputOnly, chunk::INIT);
        assert_eq!(s, SctpState::Init1);
        s = next_state(s, Direction::InputOnly, chunk::COOKIE_ECHO);
        assert_eq!(s, SctpState::Established);
        assert!(s.is_active());
    }

    #[test]
    fn abort_after_cookie_counts_as_abort_and_unknown_chunks_are_data() {
        assert_eq!(effective_chunk(chunk::COOKIE_ECHO, Some(chunk::ABORT)), chunk::ABORT);
        assert_eq!(effective_chunk(chunk::INIT, Some(chunk::ABORT)), chunk::INIT);
        assert_eq!(next_state(SctpState::Established, Direction::Input, 200), SctpState::Established);
        assert_eq!(next_state(SctpState::Init1, Direction::Output, chunk::ABORT), SctpState::Rejected);
        assert_eq!(SctpState::Rejected.default_timeout_secs(), 4);
        assert_eq!(SctpState::from_index(99), SctpState::Closed);
    }
}
