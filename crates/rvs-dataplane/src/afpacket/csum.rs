//! Completing the TCP/UDP checksum of frames the kernel marks "checksum not ready"
//! (`TP_STATUS_CSUMNOTREADY`): frames sent by a local socket of a neighbouring namespace
//! over a veth carry only the pseudo-header sum in their checksum field, because the
//! hardware that would have finished it is never reached. Forwarded as they are, the
//! receiver drops them.

use rvs_packet::checksum;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: [u16; 2] = [0x8100, 0x88a8];
const PROTO_TCP: u8 = 6;
const PROTO_UDP: u8 = 17;

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

/// Recomputes the TCP or UDP checksum of an Ethernet frame (optionally VLAN tagged, IPv4
/// unfragmented or IPv6 without extension headers) from scratch. Returns false, leaving
/// the frame untouched, for anything else.
pub fn complete_l4_checksum(frame: &mut [u8]) -> bool {
    let mut l3 = 14;
    let mut ethertype = be16(frame, 12);
    while let Some(tag) = ethertype
        && ETHERTYPE_VLAN.contains(&tag)
    {
        ethertype = be16(frame, l3 + 2);
        l3 += 4;
    }
    match ethertype {
        Some(ETHERTYPE_IPV4) => complete_v4(frame, l3),
        Some(ETHERTYPE_IPV6) => complete_v6(frame, l3),
        _ => false,
    }
}

fn complete_v4(frame: &mut [u8], l3: usize) -> bool {
    let Some(&version_ihl) = frame.get(l3) else { return false };
    let header_len = usize::from(version_ihl & 0x0f) * 4;
    let (Some(total_len), Some(flags_fragment), Some(&protocol)) =
        (be16(frame, l3 + 2), be16(frame, l3 + 6), frame.get(l3 + 9))
    else {
        return false;
    };
    // More-fragments bit or a fragment offset: the L4 header is not whole here.
    if version_ihl >> 4 != 4 || header_len < 20 || flags_fragment & 0x3fff != 0 {
        return false;
    }
    let (Some(src), Some(dst)) = (frame.get(l3 + 12..l3 + 16), frame.get(l3 + 16..l3 + 20)) else { return false };
    let (Ok(src), Ok(dst)) = (<[u8; 4]>::try_from(src), <[u8; 4]>::try_from(dst)) else { return false };
    let Some(l4_len) = usize::from(total_len).checked_sub(header_len) else { return false };
    let Ok(l4_len16) = u16::try_from(l4_len) else { return false };
    let pseudo = checksum::pseudo_header_v4(src, dst, protocol, l4_len16);
    complete_segment(frame, l3 + header_len, l4_len, protocol, pseudo)
}

fn complete_v6(frame: &mut [u8], l3: usize) -> bool {
    let (Some(payload_len), Some(&next_header)) = (be16(frame, l3 + 4), frame.get(l3 + 6)) else { return false };
    let (Some(src), Some(dst)) = (frame.get(l3 + 8..l3 + 24), frame.get(l3 + 24..l3 + 40)) else { return false };
    let (Ok(src), Ok(dst)) = (<[u8; 16]>::try_from(src), <[u8; 16]>::try_from(dst)) else { return false };
    let pseudo = checksum::pseudo_header_v6(src, dst, next_header, u32::from(payload_len));
    complete_segment(frame, l3 + 40, usize::from(payload_len), next_header, pseudo)
}

fn complete_segment(frame: &mut [u8], l4: usize, l4_len: usize, protocol: u8, pseudo: u64) -> bool {
    let field = match protocol {
        PROTO_TCP => 16,
        PROTO_UDP => 6,
        _ => return false,
    };
    let Some(segment) = frame.get_mut(l4..l4 + l4_len) else { return false };
    let Some(slot) = segment.get_mut(field..field + 2) else { return false };
    slot.copy_from_slice(&[0, 0]);
    let mut sum = checksum::with_pseudo_header(pseudo, segment);
    // UDP sends a computed zero as all-ones (zero means "no checksum").
    if protocol == PROTO_UDP && sum == 0 {
        sum = 0xffff;
    }
    if let Some(slot) = segment.get_mut(field..field + 2) {
        slot.copy_from_slice(&sum.to_be_bytes());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 + UDP frame, 4-byte payload, checksum field `csum`.
    fn udp4(csum: [u8; 2]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(&[0x45, 0, 0, 32, 0, 0, 0x40, 0, 64, 17, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2]);
        f.extend_from_slice(&[0x30, 0x39, 0x00, 0x35, 0, 12]);
        f.extend_from_slice(&csum);
        f.extend_from_slice(b"ping");
        f
    }

    #[test]
    fn udp_over_ipv4_gets_a_checksum_that_verifies() {
        let mut frame = udp4([0x12, 0x34]);
        assert!(complete_l4_checksum(&mut frame));
        // The receiver's check: pseudo-header plus the segment (with its checksum) sums
        // to all-ones.
        let pseudo = checksum::pseudo_header_v4([198, 18, 0, 1], [198, 18, 0, 2], 17, 12);
        assert!(checksum::verify_with_pseudo_header(pseudo, &frame[34..]));
    }

    #[test]
    fn fragments_and_other_protocols_are_left_alone() {
        let mut frame = udp4([0x12, 0x34]);
        frame[14 + 6] = 0x20; // more fragments
        assert!(!complete_l4_checksum(&mut frame));
        assert_eq!(&frame[40..42], &[0x12, 0x34]);
        let mut arp = vec![0u8; 42];
        arp[12] = 0x08;
        arp[13] = 0x06;
        assert!(!complete_l4_checksum(&mut arp));
        let mut short = udp4([0, 0]);
        short.truncate(30);
        assert!(!complete_l4_checksum(&mut short));
    }

    #[test]
    fn tcp_over_tagged_ipv6_verifies() {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&[0x81, 0x00, 0x00, 0x05, 0x86, 0xdd]);
        let mut src = [0u8; 16];
        src[0] = 0xfd;
        src[15] = 1;
        let mut dst = src;
        dst[15] = 2;
        f.extend_from_slice(&[0x60, 0, 0, 0, 0, 20, 6, 64]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        let tcp_start = f.len();
        f.extend_from_slice(&[0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0xab, 0xcd, 0, 0]);
        assert!(complete_l4_checksum(&mut f));
        let pseudo = checksum::pseudo_header_v6(src, dst, 6, 20);
        assert!(checksum::verify_with_pseudo_header(pseudo, &f[tcp_start..]));
    }
}
