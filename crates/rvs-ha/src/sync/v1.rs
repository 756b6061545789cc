//! IPVS sync protocol version 1 (ip_vs_sync.c): an 8-byte header (`0, syncid, be16 size,
//! count, version 1, be16 0`) then `count` entries, each starting on a 4-byte boundary:
//!
//! ```text
//! u8 type (bit 0 = IPv6) | u8 protocol | be16 ver(4)|size(12) | be32 flags | be16 state |
//! be16 cport | be16 vport | be16 dport | be32 fwmark | be32 timeout (s) |
//! caddr | vaddr | daddr (4 or 16 bytes each) | options: u8 type, u8 len, data ...
//! ```
//!
//! Options: 1 = sequence data (24 bytes: in/out init_seq, delta, previous_delta), 2 = PE data,
//! 3 = PE name; type bit 0x40 marks an option a receiver may ignore. `size` excludes the padding
//! that precedes the next entry.
//!
//! rvs extension, the end-of-round marker: a header-only message (count 0) whose spare field has
//! bit 15 set and, in bits 0..14, how many datagrams the master sent to this destination since
//! its previous marker. A master sends one after each full round of its table, so a backup that
//! counted exactly that many datagrams since its own last marker knows it holds the whole table.
//! The kernel ignores such a message (its non-zero spare makes it a v0 message with no entries);
//! an rvs without the extension drops it as malformed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::sync::SyncError;
use crate::sync::entry::{PE_DATA_MAX, PE_NAME_MAX, SeqAdjust, SeqOptions, SyncEntry};
use crate::wire::array16;

/// Header length.
pub const HEADER_LEN: usize = 8;
/// Protocol version in the header.
pub const VERSION: u8 = 1;
/// Fixed part of an IPv4 entry.
pub const V4_ENTRY_LEN: usize = 36;
/// Fixed part of an IPv6 entry.
pub const V6_ENTRY_LEN: usize = 72;
/// Entries per message (8-bit count).
pub const MAX_ENTRIES: usize = 255;
/// Option: sequence adjustment data.
pub const OPT_SEQ_DATA: u8 = 1;
/// Option: persistence-engine data.
pub const OPT_PE_DATA: u8 = 2;
/// Option: persistence-engine name.
pub const OPT_PE_NAME: u8 = 3;
/// Option type bit: optional (unknown ones are skipped rather than refusing the entry).
pub const OPT_F_OPTIONAL: u8 = 0x40;
/// Length of the sequence option's data.
pub const SEQ_DATA_LEN: usize = 24;

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncMessage {
    /// Sender's sync id.
    pub syncid: u8,
    /// Usable entries.
    pub entries: Vec<SyncEntry>,
    /// Entries skipped as the kernel would (unknown mandatory option, PE data without a name).
    pub skipped: usize,
    /// An end-of-round marker: the datagrams sent since the previous marker (saturating at
    /// [`ROUND_END_MAX`]).
    pub round_end: Option<u16>,
}

/// Spare-field bit that marks an end-of-round message.
pub const ROUND_END_FLAG: u16 = 0x8000;
/// Largest datagram count a marker carries.
pub const ROUND_END_MAX: u16 = 0x7fff;

/// The end-of-round marker for `syncid` after `datagrams` datagrams.
pub fn round_end(syncid: u8, datagrams: usize) -> Vec<u8> {
    let n = u16::try_from(datagrams).unwrap_or(ROUND_END_MAX).min(ROUND_END_MAX);
    let [hi, lo] = (ROUND_END_FLAG | n).to_be_bytes();
    vec![0, syncid, 0, HEADER_LEN as u8, 0, VERSION, hi, lo]
}

/// If `bytes` is an end-of-round marker, its datagram count.
pub fn decode_round_end(bytes: &[u8]) -> Option<u16> {
    match bytes {
        [0, _, 0, len, 0, VERSION, hi, lo] if usize::from(*len) == HEADER_LEN && hi & 0x80 != 0 => {
            Some(u16::from_be_bytes([*hi, *lo]) & ROUND_END_MAX)
        }
        _ => None,
    }
}

fn round4(n: usize) -> usize {
    n.div_ceil(4) * 4
}

fn be16(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some([x, y]) => u16::from_be_bytes([*x, *y]),
        _ => 0,
    }
}

fn be32(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some([w, x, y, z]) => u32::from_be_bytes([*w, *x, *y, *z]),
        _ => 0,
    }
}

fn addr(b: &[u8], at: usize, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(array16(b.get(at..at + 16).unwrap_or(&[]))))
    } else {
        IpAddr::V4(Ipv4Addr::from(be32(b, at)))
    }
}

/// Whether `bytes` has a v1 header (reserved 0, version 1, spare 0).
pub fn is_v1(bytes: &[u8]) -> bool {
    matches!(bytes.get(..HEADER_LEN), Some([0, _, _, _, _, VERSION, 0, 0]))
}

/// Decodes a v1 message whose length already matches its size field.
pub fn decode(bytes: &[u8]) -> Result<SyncMessage, SyncError> {
    if !is_v1(bytes) {
        return Err(SyncError::Truncated);
    }
    let syncid = bytes.get(1).copied().unwrap_or(0);
    let count = usize::from(bytes.get(4).copied().unwrap_or(0));
    let mut entries = Vec::with_capacity(count);
    let mut skipped = 0;
    let mut pos = HEADER_LEN;
    let mut end = HEADER_LEN;
    for _ in 0..count {
        if pos + V4_ENTRY_LEN > bytes.len() {
            return Err(SyncError::Truncated);
        }
        let ver_size = be16(bytes, pos + 2);
        let size = usize::from(ver_size & 0x0fff);
        let entry = bytes.get(pos..pos + size).ok_or(SyncError::EntryOverrun)?;
        if ver_size >> 12 != 0 {
            return Err(SyncError::EntryVersion((ver_size >> 12) as u8));
        }
        match decode_entry(entry)? {
            Some(e) => entries.push(e),
            None => skipped += 1,
        }
        end = pos + size;
        pos += round4(size);
    }
    let tail = bytes.get(end..).unwrap_or(&[]);
    if bytes.len() > round4(end) || tail.iter().any(|b| *b != 0) {
        return Err(SyncError::TrailingBytes);
    }
    Ok(SyncMessage { syncid, entries, skipped, round_end: None })
}

/// Decodes one entry (exactly `size` bytes); `Ok(None)` = skip it.
fn decode_entry(e: &[u8]) -> Result<Option<SyncEntry>, SyncError> {
    let kind = e.first().copied().unwrap_or(0);
    let v6 = match kind {
        k if k & 1 != 0 => true,
        0 => false,
        other => return Err(SyncError::EntryType(other)),
    };
    let fixed = if v6 { V6_ENTRY_LEN } else { V4_ENTRY_LEN };
    if e.len() < fixed {
        return Err(SyncError::Truncated);
    }
    let alen = if v6 { 16 } else { 4 };
    let mut entry = SyncEntry {
        protocol: e.get(1).copied().unwrap_or(0),
        flags: be32(e, 4),
        state: be16(e, 8),
        cport: be16(e, 10),
        vport: be16(e, 12),
        dport: be16(e, 14),
        fwmark: be32(e, 16),
        timeout_s: be32(e, 20),
        caddr: addr(e, 24, v6),
        vaddr: addr(e, 24 + alen, v6),
        daddr: addr(e, 24 + 2 * alen, v6),
        seq: None,
        pe_data: None,
        pe_name: None,
    };
    let mut skip = false;
    let mut q = fixed;
    while q < e.len() {
        let (Some(&ptype), Some(&plen)) = (e.get(q), e.get(q + 1)) else {
            return Err(SyncError::BadOption(0));
        };
        let plen = usize::from(plen);
        let data = e.get(q + 2..q + 2 + plen).filter(|_| plen > 0).ok_or(SyncError::BadOption(ptype))?;
        match ptype & !OPT_F_OPTIONAL {
            OPT_SEQ_DATA => {
                if plen != SEQ_DATA_LEN || entry.seq.is_some() {
                    return Err(SyncError::BadOption(ptype));
                }
                let seq = |at| SeqAdjust {
                    init_seq: be32(data, at),
                    delta: be32(data, at + 4),
                    previous_delta: be32(data, at + 8),
                };
                entry.seq = Some(SeqOptions { in_seq: seq(0), out_seq: seq(12) });
            }
            OPT_PE_DATA => {
                if entry.pe_data.is_some() || plen > PE_DATA_MAX {
                    return Err(SyncError::BadOption(ptype));
                }
                entry.pe_data = Some(data.to_vec());
            }
            OPT_PE_NAME => {
                if entry.pe_name.is_some() || plen > PE_NAME_MAX {
                    return Err(SyncError::BadOption(ptype));
                }
                entry.pe_name = Some(data.to_vec());
            }
            _ if ptype & OPT_F_OPTIONAL == 0 => skip = true,
            _ => {}
        }
        q += 2 + plen;
    }
    if entry.pe_data.is_some() && entry.pe_name.is_none() {
        skip = true;
    }
    Ok((!skip).then_some(entry))
}

/// Encodes one entry (without padding).
pub fn encode_entry(entry: &SyncEntry) -> Result<Vec<u8>, SyncError> {
    if !entry.same_family() {
        return Err(SyncError::MixedFamily);
    }
    let v6 = entry.is_ipv6();
    let mut out = Vec::with_capacity(if v6 { V6_ENTRY_LEN } else { V4_ENTRY_LEN } + 64);
    out.extend_from_slice(&[u8::from(v6), entry.protocol, 0, 0]);
    out.extend_from_slice(&entry.flags.to_be_bytes());
    out.extend_from_slice(&entry.state.to_be_bytes());
    out.extend_from_slice(&entry.cport.to_be_bytes());
    out.extend_from_slice(&entry.vport.to_be_bytes());
    out.extend_from_slice(&entry.dport.to_be_bytes());
    out.extend_from_slice(&entry.fwmark.to_be_bytes());
    out.extend_from_slice(&entry.timeout_s.to_be_bytes());
    for a in [entry.caddr, entry.vaddr, entry.daddr] {
        match a {
            IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
            IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
        }
    }
    if let Some(seq) = &entry.seq {
        out.extend_from_slice(&[OPT_SEQ_DATA, SEQ_DATA_LEN as u8]);
        for s in [seq.in_seq, seq.out_seq] {
            out.extend_from_slice(&s.init_seq.to_be_bytes());
            out.extend_from_slice(&s.delta.to_be_bytes());
            out.extend_from_slice(&s.previous_delta.to_be_bytes());
        }
    }
    if let Some(data) = &entry.pe_data {
        let name = entry.pe_name.as_deref().ok_or(SyncError::PeDataWithoutName)?;
        for (kind, bytes, max) in [(OPT_PE_DATA, data.as_slice(), PE_DATA_MAX), (OPT_PE_NAME, name, PE_NAME_MAX)] {
            if bytes.is_empty() || bytes.len() > max {
                return Err(SyncError::BadOption(kind));
            }
            out.extend_from_slice(&[kind, bytes.len() as u8]);
            out.extend_from_slice(bytes);
        }
    }
    let size = u16::try_from(out.len()).map_err(|_| SyncError::EntryTooLarge)?;
    if size > 0x0fff {
        return Err(SyncError::EntryTooLarge);
    }
    if let Some(slot) = out.get_mut(2..4) {
        slot.copy_from_slice(&size.to_be_bytes());
    }
    Ok(out)
}

/// Packs `entries` into as few v1 messages as fit: each at most `maxlen` bytes and 255 entries.
pub fn pack(syncid: u8, entries: &[SyncEntry], maxlen: usize) -> Result<Vec<Vec<u8>>, SyncError> {
    let maxlen = maxlen.min(usize::from(u16::MAX));
    let mut messages = Vec::new();
    let mut current = header(syncid);
    let mut count = 0usize;
    for entry in entries {
        let bytes = encode_entry(entry)?;
        if HEADER_LEN + bytes.len() > maxlen {
            return Err(SyncError::EntryTooLarge);
        }
        let pad = if count == 0 { 0 } else { round4(current.len()) - current.len() };
        if count == MAX_ENTRIES || current.len() + pad + bytes.len() > maxlen {
            messages.push(finish(current, count));
            current = header(syncid);
            count = 0;
        } else {
            current.resize(current.len() + pad, 0);
        }
        current.extend_from_slice(&bytes);
        count += 1;
    }
    if count > 0 || messages.is_empty() {
        messages.push(finish(current, count));
    }
    Ok(messages)
}

/// Encodes one message holding all `entries` (at most 255, at most 65535 bytes).
pub fn encode(syncid: u8, entries: &[SyncEntry]) -> Result<Vec<u8>, SyncError> {
    if entries.len() > MAX_ENTRIES {
        return Err(SyncError::TooManyEntries);
    }
    let mut messages = pack(syncid, entries, usize::from(u16::MAX))?;
    if messages.len() != 1 {
        return Err(SyncError::EntryTooLarge);
    }
    messages.pop().ok_or(SyncError::EntryTooLarge)
}

fn header(syncid: u8) -> Vec<u8> {
    vec![0, syncid, 0, 0, 0, VERSION, 0, 0]
}

fn finish(mut message: Vec<u8>, count: usize) -> Vec<u8> {
    let size = u16::try_from(message.len()).unwrap_or(u16::MAX);
    if let Some(slot) = message.get_mut(2..4) {
        slot.copy_from_slice(&size.to_be_bytes());
    }
    if let Some(slot) = message.get_mut(4) {
        *slot = u8::try_from(count).unwrap_or(u8::MAX);
    }
    message
}
