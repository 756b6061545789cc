//! IPVS sync protocol version 0 (IPv4 only): header `u8 count, u8 syncid, be16 size`, then
//! 24-byte entries `u8 0, u8 protocol, be16 cport, vport, dport, be32 caddr, vaddr, daddr,
//! be16 flags, be16 state`, each followed by 24 bytes of sequence data when the flags carry
//! IN_SEQ/OUT_SEQ. The kernel copies that sequence data in host byte order; this decoder reads
//! it as little-endian (x86/arm64 senders). v0 carries no fwmark, timeout or PE data.

use std::net::{IpAddr, Ipv4Addr};

use crate::sync::SyncError;
use crate::sync::entry::{CONN_F_SEQ_MASK, SeqAdjust, SeqOptions, SyncEntry};
use crate::sync::v1::SyncMessage;

/// Header length.
pub const HEADER_LEN: usize = 4;
/// Entry length without sequence data.
pub const ENTRY_LEN: usize = 24;
/// Length of the sequence data that may follow an entry.
pub const SEQ_LEN: usize = 24;

fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some([x, y]) => u16::from_be_bytes([*x, *y]),
        _ => 0,
    }
}

fn ipv4(b: &[u8], at: usize) -> IpAddr {
    match b.get(at..at + 4) {
        Some([w, x, y, z]) => IpAddr::V4(Ipv4Addr::new(*w, *x, *y, *z)),
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

fn le32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some([w, x, y, z]) => u32::from_le_bytes([*w, *x, *y, *z]),
        _ => 0,
    }
}

/// Decodes a v0 message whose length already matches its size field.
pub fn decode(bytes: &[u8]) -> Result<SyncMessage, SyncError> {
    if bytes.len() < HEADER_LEN {
        return Err(SyncError::Truncated);
    }
    let count = usize::from(bytes.first().copied().unwrap_or(0));
    let syncid = bytes.get(1).copied().unwrap_or(0);
    let mut entries = Vec::with_capacity(count);
    let mut pos = HEADER_LEN;
    for _ in 0..count {
        let e = bytes.get(pos..pos + ENTRY_LEN).ok_or(SyncError::Truncated)?;
        let flags = u32::from(be16(e, 20));
        let seq = if flags & CONN_F_SEQ_MASK != 0 {
            let s = bytes.get(pos + ENTRY_LEN..pos + ENTRY_LEN + SEQ_LEN).ok_or(SyncError::Truncated)?;
            let adj = |at| SeqAdjust { init_seq: le32(s, at), delta: le32(s, at + 4), previous_delta: le32(s, at + 8) };
            pos += ENTRY_LEN + SEQ_LEN;
            Some(SeqOptions { in_seq: adj(0), out_seq: adj(12) })
        } else {
            pos += ENTRY_LEN;
            None
        };
        entries.push(SyncEntry {
            protocol: e.get(1).copied().unwrap_or(0),
            cport: be16(e, 2),
            vport: be16(e, 4),
            dport: be16(e, 6),
            caddr: ipv4(e, 8),
            vaddr: ipv4(e, 12),
            daddr: ipv4(e, 16),
            flags,
            state: be16(e, 22),
            fwmark: 0,
            timeout_s: 0,
            seq,
            pe_data: None,
            pe_name: None,
        });
    }
    if pos != bytes.len() {
        return Err(SyncError::TrailingBytes);
    }
    Ok(SyncMessage { syncid, entries, skipped: 0, round_end: None })
}

/// Encodes a v0 message (IPv4 entries only; flags must fit 16 bits; at most 255 entries).
pub fn encode(syncid: u8, entries: &[SyncEntry]) -> Result<Vec<u8>, SyncError> {
    let count = u8::try_from(entries.len()).map_err(|_| SyncError::TooManyEntries)?;
    let mut out = vec![count, syncid, 0, 0];
    for e in entries {
        let (IpAddr::V4(c), IpAddr::V4(v), IpAddr::V4(d)) = (e.caddr, e.vaddr, e.daddr) else {
            return Err(SyncError::MixedFamily);
        };
        let flags = u16::try_from(e.flags).map_err(|_| SyncError::EntryTooLarge)?;
        out.extend_from_slice(&[0, e.protocol]);
        for p in [e.cport, e.vport, e.dport] {
            out.extend_from_slice(&p.to_be_bytes());
        }
        for a in [c, v, d] {
            out.extend_from_slice(&a.octets());
        }
        out.extend_from_slice(&flags.to_be_bytes());
        out.extend_from_slice(&e.state.to_be_bytes());
        if e.flags & CONN_F_SEQ_MASK != 0 {
            let seq = e.seq.unwrap_or_default();
            for s in [seq.in_seq, seq.out_seq] {
                for w in [s.init_seq, s.delta, s.previous_delta] {
                    out.extend_from_slice(&w.to_le_bytes());
                }
            }
        }
    }
    let size = u16::try_from(out.len()).map_err(|_| SyncError::EntryTooLarge)?;
    if let Some(slot) = out.get_mut(2..4) {
        slot.copy_from_slice(&size.to_be_bytes());
    }
    Ok(out)
}
