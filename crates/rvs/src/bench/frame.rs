//! The frame template of the packet-rate benchmark: one 60-byte Ethernet/IPv4/UDP frame (a
//! 64-byte frame on the wire once the NIC adds its 4-byte FCS). The XDP generator copies it
//! into every live frame and only changes the UDP source port, so the template carries a
//! finished IPv4 header checksum and a UDP checksum of 0 ("none", allowed for IPv4).

use std::net::Ipv4Addr;

use rvs_lab::MacAddr;

/// Length of the template without FCS.
pub const FRAME_LEN: usize = 60;
const ETH_LEN: usize = 14;
const IPV4_LEN: usize = 20;
const UDP_LEN: usize = 8;

/// Addresses of a benchmark frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameSpec {
    /// Ethernet destination (the director's interface).
    pub dst_mac: MacAddr,
    /// Ethernet source (the router's LAN interface, the director's usual previous hop).
    pub src_mac: MacAddr,
    /// IPv4 source (the client).
    pub src: Ipv4Addr,
    /// IPv4 destination (the VIP, or a real server for plain forwarding).
    pub dst: Ipv4Addr,
    /// UDP destination port.
    pub dst_port: u16,
}

/// The Internet checksum (RFC 1071) of `bytes`, as the value to store in the header.
pub fn internet_checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for pair in bytes.chunks(2) {
        let word = match pair {
            [hi, lo] => u16::from_be_bytes([*hi, *lo]),
            [hi] => u16::from_be_bytes([*hi, 0]),
            _ => 0,
        };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Builds the template: TTL 64, IPv4 id 0 with don't-fragment clear, UDP source port 1024
/// (the generator overwrites it), zero payload.
pub fn build(spec: &FrameSpec) -> Vec<u8> {
    let mut frame = vec![0u8; FRAME_LEN];
    frame[0..6].copy_from_slice(&spec.dst_mac.0);
    frame[6..12].copy_from_slice(&spec.src_mac.0);
    frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_total = (FRAME_LEN - ETH_LEN) as u16;
    let udp_len = (FRAME_LEN - ETH_LEN - IPV4_LEN) as u16;
    let ip = &mut frame[ETH_LEN..ETH_LEN + IPV4_LEN];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&ip_total.to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&spec.src.octets());
    ip[16..20].copy_from_slice(&spec.dst.octets());
    let checksum = internet_checksum(ip);
    ip[10..12].copy_from_slice(&checksum.to_be_bytes());
    let udp = &mut frame[ETH_LEN + IPV4_LEN..ETH_LEN + IPV4_LEN + UDP_LEN];
    udp[0..2].copy_from_slice(&1024u16.to_be_bytes());
    udp[2..4].copy_from_slice(&spec.dst_port.to_be_bytes());
    udp[4..6].copy_from_slice(&udp_len.to_be_bytes());
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example often used for RFC 1071: the IPv4 header
    /// 4500 0073 0000 4000 4011 0000 c0a8 0001 c0a8 00c7 sums (with end-around carry) to
    /// 0x479e, whose complement 0xb861 is the checksum.
    #[test]
    fn checksum_of_the_classic_example_header() {
        let header = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        assert_eq!(internet_checksum(&header), 0xb861);
    }

    #[test]
    fn template_is_a_valid_60_byte_udp_frame() {
        let spec = FrameSpec {
            dst_mac: MacAddr([2, 0x72, 0x76, 2, 0, 11]),
            src_mac: MacAddr([2, 0x72, 0x76, 2, 0, 1]),
            src: Ipv4Addr::new(198, 18, 1, 2),
            dst: Ipv4Addr::new(198, 18, 100, 1),
            dst_port: 53,
        };
        let frame = build(&spec);
        assert_eq!(frame.len(), 60);
        assert_eq!(&frame[0..6], &spec.dst_mac.0);
        assert_eq!(&frame[6..12], &spec.src_mac.0);
        assert_eq!(&frame[12..14], &[0x08, 0x00]);
        // A header that carries its checksum sums to 0xffff, so its checksum is 0.
        assert_eq!(internet_checksum(&frame[14..34]), 0);
        // IPv4 total length 46 = 60 - 14; UDP length 26 = 46 - 20; UDP checksum 0.
        assert_eq!(&frame[16..18], &46u16.to_be_bytes());
        assert_eq!(&frame[36..38], &53u16.to_be_bytes());
        assert_eq!(&frame[38..40], &26u16.to_be_bytes());
        assert_eq!(&frame[40..42], &[0, 0]);
        assert_eq!(&frame[26..30], &[198, 18, 1, 2]);
        assert_eq!(&frame[30..34], &[198, 18, 100, 1]);
    }
}
