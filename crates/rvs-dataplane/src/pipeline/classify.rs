//! From a parsed frame to what the engine needs to decide: the engine's [`Packet`]
//! (family, protocol, addresses, ports, TCP flags, SCTP chunk, length), and the small
//! conversions between rvs-packet's and rvs-core's address types.

use rvs_core::addr::{Addr16, Family};
use rvs_core::conn::sctp::{self, chunk};
use rvs_core::conn::{ConnFlags, TcpFlags};
use rvs_core::engine::Packet;
use rvs_packet::PacketSummary;
use rvs_packet::ip::protocol;

/// Offset of the first chunk after the SCTP common header.
const SCTP_FIRST_CHUNK: usize = 12;

/// The engine's view of a parsed IP packet carrying firewall mark `mark` (0 = none).
pub(crate) fn engine_packet(frame: &[u8], s: &PacketSummary, mark: u32) -> Packet {
    Packet {
        family: family(s.family),
        protocol: s.protocol,
        src: Addr16::from_ip(s.src),
        sport: s.src_port,
        dst: Addr16::from_ip(s.dst),
        dport: s.dst_port,
        fwmark: mark,
        tcp_flags: s.tcp_flags.map(|f| TcpFlags::from_byte(f.0)).unwrap_or_default(),
        sctp_chunk: if s.protocol == protocol::SCTP { sctp_chunk(frame, s.l4_offset, s.end) } else { chunk::DATA },
        len: u32::try_from(s.ip_len()).unwrap_or(u32::MAX),
    }
}

/// rvs-packet's family as rvs-core's.
pub(crate) fn family(f: rvs_packet::Family) -> Family {
    match f {
        rvs_packet::Family::V4 => Family::V4,
        rvs_packet::Family::V6 => Family::V6,
    }
}

/// The client/virtual-side and destination-side families recorded in a connection's flags.
pub(crate) fn conn_families(flags: ConnFlags) -> (Family, Family) {
    let of = |bit| if flags.has(bit) { Family::V6 } else { Family::V4 };
    (of(ConnFlags::V6), of(ConnFlags::DEST_V6))
}

/// The chunk that drives the SCTP state machine: the first chunk's type, or ABORT when an
/// ABORT is bundled right after a COOKIE ECHO / COOKIE ACK. DATA when no chunk is present.
fn sctp_chunk(frame: &[u8], l4: usize, end: usize) -> u8 {
    let first_at = l4.saturating_add(SCTP_FIRST_CHUNK);
    let within = |at: usize| if at < end { frame.get(at).copied() } else { None };
    let Some(first) = within(first_at) else { return chunk::DATA };
    let len = match (within(first_at + 2), within(first_at + 3)) {
        (Some(hi), Some(lo)) => usize::from(u16::from_be_bytes([hi, lo])),
        _ => 0,
    };
    // A chunk is at least its 4-byte header; lengths are padded to 4 bytes.
    let second = if len >= 4 { within(first_at.saturating_add((len + 3) & !3)) } else { None };
    sctp::effective_chunk(first, second)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sctp_frame(chunks: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(chunks);
        f
    }

    #[test]
    fn sctp_first_chunk_and_bundled_abort() {
        // INIT chunk (type 1, length 20).
        let f = sctp_frame(&[1, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(sctp_chunk(&f, 0, f.len()), chunk::INIT);
        // COOKIE ECHO of length 5 (padded to 8) followed by ABORT.
        let f = sctp_frame(&[10, 0, 0, 5, 9, 0, 0, 0, 6, 0, 0, 4]);
        assert_eq!(sctp_chunk(&f, 0, f.len()), chunk::ABORT);
        // The ABORT lies beyond the IP packet's end: not seen.
        assert_eq!(sctp_chunk(&f, 0, f.len() - 4), chunk::COOKIE_ECHO);
        // No chunk at all.
        let f = sctp_frame(&[]);
        assert_eq!(sctp_chunk(&f, 0, f.len()), chunk::DATA);
    }
}
