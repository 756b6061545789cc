//! Ethernet II frames with up to two VLAN tags (802.1Q, 802.1ad "QinQ"): where the
//! L3 payload starts, its ethertype, and writing MAC addresses and headers.

use core::fmt;

use crate::error::{BuildError, ParseError};
use crate::field::{array_at, set_bytes, set_u16, u16_at};

/// Length of an untagged Ethernet header.
pub const HEADER_LEN: usize = 14;
/// Length of one VLAN tag (TPID + TCI).
pub const VLAN_TAG_LEN: usize = 4;
/// Most VLAN tags a frame may carry (802.1ad outer + 802.1Q inner).
pub const MAX_VLAN_TAGS: usize = 2;

/// Ethertype values this crate knows.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// IPv6.
    pub const IPV6: u16 = 0x86DD;
    /// 802.1Q customer VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// 802.1ad service VLAN tag (QinQ outer tag).
    pub const QINQ: u16 = 0x88A8;
    /// Pre-standard QinQ outer tag still used by some switches.
    pub const QINQ_LEGACY: u16 = 0x9100;

    /// Whether `ethertype` introduces a VLAN tag.
    #[must_use]
    pub const fn is_vlan(ethertype: u16) -> bool {
        matches!(ethertype, VLAN | QINQ | QINQ_LEGACY)
    }
}

/// A 48-bit Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: Self = Self([0xff; 6]);
    /// 00:00:00:00:00:00.
    pub const ZERO: Self = Self([0; 6]);

    /// Whether the group bit is set (multicast or broadcast).
    #[must_use]
    pub const fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// One VLAN tag as found in a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VlanTag {
    /// The tag protocol identifier (0x8100, 0x88a8 or 0x9100).
    pub tpid: u16,
    /// The tag control information (PCP, DEI, VID).
    pub tci: u16,
}

impl VlanTag {
    /// The 12-bit VLAN identifier.
    #[must_use]
    pub const fn vid(&self) -> u16 {
        self.tci & 0x0fff
    }

    /// The 3-bit priority code point.
    #[must_use]
    pub const fn pcp(&self) -> u8 {
        (self.tci >> 13) as u8
    }
}

/// What an Ethernet header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetInfo {
    /// Destination MAC.
    pub dst: MacAddr,
    /// Source MAC.
    pub src: MacAddr,
    /// VLAN tags, outermost first; `None` where absent.
    pub vlans: [Option<VlanTag>; MAX_VLAN_TAGS],
    /// The ethertype of the payload, after any VLAN tags.
    pub ethertype: u16,
    /// Offset of the L3 payload in the frame (14, 18 or 22).
    pub payload_offset: usize,
}

impl EthernetInfo {
    /// How many VLAN tags the frame carries.
    #[must_use]
    pub fn vlan_count(&self) -> usize {
        self.vlans.iter().flatten().count()
    }
}

/// Parses the Ethernet header and VLAN tags of `frame`.
///
/// # Errors
/// [`ParseError::Truncated`] if the frame ends inside the header or a tag,
/// [`ParseError::TooManyVlanTags`] for a third tag.
pub fn parse(frame: &[u8]) -> Result<EthernetInfo, ParseError> {
    if frame.len() < HEADER_LEN {
        return Err(ParseError::Truncated);
    }
    let mut info = EthernetInfo {
        dst: MacAddr(array_at(frame, 0)),
        src: MacAddr(array_at(frame, 6)),
        vlans: [None; MAX_VLAN_TAGS],
        ethertype: u16_at(frame, 12),
        payload_offset: HEADER_LEN,
    };
    let mut tags = 0;
    while ethertype::is_vlan(info.ethertype) {
        if tags == MAX_VLAN_TAGS {
            return Err(ParseError::TooManyVlanTags);
        }
        let tag_at = info.payload_offset;
        if frame.len() < tag_at + VLAN_TAG_LEN {
            return Err(ParseError::Truncated);
        }
        if let Some(slot) = info.vlans.get_mut(tags) {
            *slot = Some(VlanTag { tpid: info.ethertype, tci: u16_at(frame, tag_at) });
        }
        info.ethertype = u16_at(frame, tag_at + 2);
        info.payload_offset += VLAN_TAG_LEN;
        tags += 1;
    }
    Ok(info)
}

/// Writes the destination MAC (frame bytes 0..6). Does nothing on a frame shorter
/// than 6 bytes.
pub fn set_dst_mac(frame: &mut [u8], mac: MacAddr) {
    set_bytes(frame, 0, &mac.0);
}

/// Writes the source MAC (frame bytes 6..12). Does nothing on a frame shorter than
/// 12 bytes.
pub fn set_src_mac(frame: &mut [u8], mac: MacAddr) {
    set_bytes(frame, 6, &mac.0);
}

/// Writes the ethertype that follows the last VLAN tag of a parsed frame.
pub fn set_ethertype(frame: &mut [u8], info: &EthernetInfo, value: u16) {
    set_u16(frame, info.payload_offset - 2, value);
}

/// Writes an Ethernet header with `vlans` (outermost first) at the start of `buf`
/// and returns its length (the payload offset).
///
/// # Errors
/// [`BuildError::BufferTooSmall`] if `buf` cannot hold the header.
pub fn write_header(
    buf: &mut [u8],
    dst: MacAddr,
    src: MacAddr,
    vlans: &[VlanTag],
    ethertype: u16,
) -> Result<usize, BuildError> {
    let len = HEADER_LEN + VLAN_TAG_LEN * vlans.len();
    if buf.len() < len {
        return Err(BuildError::BufferTooSmall);
    }
    set_bytes(buf, 0, &dst.0);
    set_bytes(buf, 6, &src.0);
    let mut at = 12;
    for tag in vlans {
        set_u16(buf, at, tag.tpid);
        set_u16(buf, at + 2, tag.tci);
        at += VLAN_TAG_LEN;
    }
    set_u16(buf, at, ethertype);
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_tagged_frame() {
        let mut f = vec![0u8; 26];
        f[12..14].copy_from_slice(&[0x88, 0xa8]); // S-tag
        f[14..16].copy_from_slice(&[0x20, 0x64]); // PCP 1, VID 100
        f[16..18].copy_from_slice(&[0x81, 0x00]); // C-tag
        f[18..20].copy_from_slice(&[0x00, 0x0a]); // VID 10
        f[20..22].copy_from_slice(&[0x86, 0xdd]); // IPv6
        let info = parse(&f).unwrap();
        assert_eq!(info.payload_offset, 22);
        assert_eq!(info.ethertype, ethertype::IPV6);
        assert_eq!(info.vlans[0].unwrap().vid(), 100);
        assert_eq!(info.vlans[0].unwrap().pcp(), 1);
        assert_eq!(info.vlans[1].unwrap().vid(), 10);
        assert_eq!(info.vlan_count(), 2);
    }

    #[test]
    fn three_tags_rejected_and_truncated_tag() {
        let mut f = vec![0u8; 30];
        for at in [12, 16, 20] {
            f[at..at + 2].copy_from_slice(&[0x81, 0x00]);
        }
        assert_eq!(parse(&f), Err(ParseError::TooManyVlanTags));
        assert_eq!(parse(&f[..15]), Err(ParseError::Truncated));
        assert_eq!(parse(&f[..13]), Err(ParseError::Truncated));
    }

    #[test]
    fn header_round_trip() {
        let mut buf = [0u8; 18];
        let tag = VlanTag { tpid: ethertype::VLAN, tci: 7 };
        let n = write_header(&mut buf, MacAddr::BROADCAST, MacAddr([2, 0, 0, 0, 0, 1]), &[tag], 0x0806).unwrap();
        assert_eq!(n, 18);
        let info = parse(&buf).unwrap();
        assert_eq!(info.ethertype, ethertype::ARP);
        assert_eq!(info.vlans[0], Some(tag));
        assert!(info.dst.is_multicast());
        assert_eq!(info.src.to_string(), "02:00:00:00:00:01");
    }
}
