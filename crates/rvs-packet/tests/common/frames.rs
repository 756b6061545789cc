//! Golden frames, written out byte by byte. Checksum fields are written as zero
//! and filled by the plain full recomputation in `common`, never by the crate.
//!
//! Addresses: client 198.18.0.10 / fd00::10, VIP 198.18.1.100 / fd00:1::100,
//! real server 198.19.0.2 / fd00:2::2, router 198.18.0.254 / fd00::fe.
//! MACs: router 02:..:01, director 02:..:02, real server 02:..:03.
#![allow(dead_code)]

use super::{fill_ipv4_header, fill_l4_v4, fill_l4_v6};

pub const CLIENT4: [u8; 4] = [198, 18, 0, 10];
pub const VIP4: [u8; 4] = [198, 18, 1, 100];
pub const RIP4: [u8; 4] = [198, 19, 0, 2];
pub const ROUTER4: [u8; 4] = [198, 18, 0, 254];
pub const CLIENT6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10];
pub const VIP6: [u8; 16] = [0xfd, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00];
pub const RIP6: [u8; 16] = [0xfd, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02];
pub const ROUTER6: [u8; 16] = [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xfe];
pub const MAC_ROUTER: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const MAC_DIRECTOR: [u8; 6] = [2, 0, 0, 0, 0, 2];
pub const MAC_RS: [u8; 6] = [2, 0, 0, 0, 0, 3];

fn eth(dst: [u8; 6], src: [u8; 6], ethertype: [u8; 2]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype);
    f
}

/// Client SYN to VIP:80, TCP with an MSS option (58 bytes).
/// L3 at 14, L4 at 34, end 58.
pub fn tcp4_syn() -> Vec<u8> {
    let mut f = eth(MAC_DIRECTOR, MAC_ROUTER, [0x08, 0x00]);
    f.extend_from_slice(&[
        0x45, 0x00, 0x00, 0x2c, // version 4, IHL 5, TOS 0, total length 44
        0x12, 0x34, 0x40, 0x00, // id 0x1234, DF, offset 0
        0x40, 0x06, 0x00, 0x00, // TTL 64, TCP, header checksum (filled below)
        198, 18, 0, 10, // src: client
        198, 18, 1, 100, // dst: VIP
        0x9c, 0x40, 0x00, 0x50, // sport 40000, dport 80
        0x00, 0x00, 0x00, 0x01, // seq 1
        0x00, 0x00, 0x00, 0x00, // ack 0
        0x60, 0x02, 0xfa, 0xf0, // data offset 6, SYN, window 64240
        0x00, 0x00, 0x00, 0x00, // checksum (filled below), urgent 0
        0x02, 0x04, 0x05, 0xb4, // option MSS 1460
    ]);
    fill_ipv4_header(&mut f, 14);
    fill_l4_v4(&mut f, 14, 34, 58, false);
    f
}

/// Real server's reply RIP:8080 -> client:40000, ACK|PSH with 5 bytes "hello"
/// (odd length). L3 at 14, L4 at 34, end 59.
pub fn tcp4_reply() -> Vec<u8> {
    let mut f = eth(MAC_DIRECTOR, MAC_RS, [0x08, 0x00]);
    f.extend_from_slice(&[
        0x45, 0x00, 0x00, 0x2d, // total length 45
        0xab, 0xcd, 0x40, 0x00, // id, DF
        0x40, 0x06, 0x00, 0x00, // TTL 64, TCP
        198, 19, 0, 2, // src: real server
        198, 18, 0, 10, // dst: client
        0x1f, 0x90, 0x9c, 0x40, // sport 8080, dport 40000
        0x00, 0x00, 0x10, 0x00, // seq
        0x00, 0x00, 0x00, 0x02, // ack
        0x50, 0x18, 0x01, 0xf5, // data offset 5, ACK|PSH, window 501
        0x00, 0x00, 0x00, 0x00, // checksum, urgent
        b'h', b'e', b'l', b'l', b'o',
    ]);
    fill_ipv4_header(&mut f, 14);
    fill_l4_v4(&mut f, 14, 34, 59, false);
    f
}

/// Client DNS query 5353 -> VIP:53 over UDP with payload "abcd". L3 14, L4 34, end 46.
/// With `checksum` false the UDP checksum is 0 ("none", IPv4 only).
pub fn udp4_dns(checksum: bool) -> Vec<u8> {
    let mut f = eth(MAC_DIRECTOR, MAC_ROUTER, [0x08, 0x00]);
    f.extend_from_slice(&[
        0x45, 0x00, 0x00, 0x20, // total length 32
        0x00, 0x07, 0x00, 0x00, // id 7, no flags
        0x40, 0x11, 0x00, 0x00, // TTL 64, UDP
        198, 18, 0, 10, // src: client
        198, 18, 1, 100, // dst: VIP
        0x14, 0xe9, 0x00, 0x35, // sport 5353, dport 53
        0x00, 0x0c, 0x00, 0x00, // length 12, checksum
        b'a', b'b', b'c', b'd',
    ]);
    fill_ipv4_header(&mut f, 14);
    if checksum {
        fill_l4_v4(&mut f, 14, 34, 46, false);
    }
    f
}

/// IPv6 SYN fd00::10:50000 -> [fd00:1::100]:443 in an 802.1Q frame (VID 100).
/// L3 at 18, L4 at 58, end 78.
pub fn tcp6_vlan() -> Vec<u8> {
    let mut f = eth(MAC_DIRECTOR, MAC_ROUTER, [0x81, 0x00]);
    f.extend_from_slice(&[0x00, 0x64, 0x86, 0xdd]); // TCI: VID 100; ethertype IPv6
    f.extend_from_slice(&[
        0x60, 0x00, 0x00, 0x00, // version 6, traffic class 0, flow label 0
        0x00, 0x14, 0x06, 0x40, // payload length 20, next header TCP, hop limit 64
    ]);
    f.extend_from_slice(&CLIENT6);
    f.extend_from_slice(&VIP6);
    f.extend_from_slice(&[
        0xc3, 0x50, 0x01, 0xbb, // sport 50000, dport 443
        0x00, 0x00, 0x00, 0x2a, // seq 42
        0x00, 0x00, 0x00, 0x00, // ack
        0x50, 0x02, 0xff, 0xff, // data offset 5, SYN, window
        0x00, 0x00, 0x00, 0x00, // checksum, urgent
    ]);
    fill_l4_v6(&mut f, 18, 58, 78, 6);
    f
}

/// IPv6 UDP fd00::10:1000 -> [fd00:1::100]:53 behind a hop-by-hop header, payload
/// "xyz". L3 at 14, L4 at 62, end 73.
pub fn udp6_hbh() -> Vec<u8> {
    let mut f = eth(MAC_DIRECTOR, MAC_ROUTER, [0x86, 0xdd]);
    f.extend_from_slice(&[
        0x60, 0x00, 0x00, 0x00, // version 6
        0x00, 0x13, 0x00, 0x40, // payload length 19, next header hop-by-hop, hop limit 64
    ]);
    f.extend_from_slice(&CLIENT6);
    f.extend_from_slice(&VIP6);
    f.extend_from_slice(&[
        0x11, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, // HBH: next UDP, length 8, PadN(4)
        0x03, 0xe8, 0x00, 0x35, // sport 1000, dport 53
        0x00, 0x0b, 0x00, 0x00, // length 11, checksum
        b'x', b'y', b'z',
    ]);
    fill_l4_v6(&mut f, 14, 62, 73, 17);
    f
}

/// A router tells the VIP "fragmentation needed, MTU 1400" about a 1500-byte
/// reply VIP:80 -> client:40000 it could not forward; the quote is the IP header
/// and the first 8 TCP bytes. L3 14, ICMP at 34, quoted IP at 42, quoted L4 at 62, end 70.
pub fn icmp4_frag_needed() -> Vec<u8> {
    let mut f = eth(MAC_DIRECTOR, MAC_ROUTER, [0x08, 0x00]);
    f.extend_from_slice(&[
        0x45, 0xc0, 0x00, 0x38, // TOS 0xc0, total length 56
        0x00, 0x00, 0x00, 0x00, // id 0
        0x3e, 0x01, 0x00, 0x00, // TTL 62, ICMP
        198, 18, 0, 254, // src: router
        198, 18, 1, 100, // dst: VIP
        0x03, 0x04, 0x00, 0x00, // dest unreachable, frag needed, checksum
        0x00, 0x00, 0x05, 0x78, // unused, next-hop MTU 1400
        // quoted packet:
        0x45, 0x00, 0x05, 0xdc, // total length 1500
        0x43, 0x21, 0x40, 0x00, // id, DF
        0x3f, 0x06, 0x00, 0x00, // TTL 63, TCP, checksum (filled)
        198, 18, 1, 100, // src: VIP
        198, 18, 0, 10, // dst: client
        0x00, 0x50, 0x9c, 0x40, // sport 80, dport 40000
        0x00, 0x00, 0x00, 0x64, // seq 100
    ]);
    fill_ipv4_header(&mut f, 42);
    fill_ipv4_header(&mut f, 14);
    fill_l4_v4(&mut f, 14, 34, 70, false);
    f
}

/// The whole UDP datagram client:5353 -> RIP:5300 that the real server answers
/// with port unreachable (IP packet only, 32 bytes).
pub fn udp4_to_rs() -> Vec<u8> {
    let mut p = vec![
        0x45, 0x00, 0x00, 0x20, // total length 32
        0x00, 0x01, 0x00, 0x00, // id 1
        0x3f, 0x11, 0x00, 0x00, // TTL 63, UDP
        198, 18, 0, 10, // src: client
        198, 19, 0, 2, // dst: real server
        0x14, 0xe9, 0x14, 0xb4, // sport 5353, dport 5300
        0x00, 0x0c, 0x00, 0x00, // length 12, checksum
        b'a', b'b', b'c', b'd',
    ];
    fill_ipv4_header(&mut p, 0);
    fill_l4_v4(&mut p, 0, 20, 32, false);
    p
}

/// The real server says "port unreachable" to the client about
/// [`udp4_to_rs`], quoting its first 28 bytes. L3 14, ICMP 34, quoted IP 42,
/// quoted L4 62, end 70.
pub fn icmp4_port_unreachable() -> Vec<u8> {
    let mut f = eth(MAC_DIRECTOR, MAC_RS, [0x08, 0x00]);
    f.extend_from_slice(&[
        0x45, 0x00, 0x00, 0x38, // total length 56
        0x00, 0x09, 0x00, 0x00, // id 9
        0x40, 0x01, 0x00, 0x00, // TTL 64, ICMP
        198, 19, 0, 2, // src: real server
        198, 18, 0, 10, // dst: client
        0x03, 0x03, 0x00, 0x00, // dest unreachable, port unreachable, checksum
        0x00, 0x00, 0x00, 0x00, // unused
    ]);
    f.extend_from_slice(&udp4_to_rs()[..28]);
    fill_ipv4_header(&mut f, 14);
    fill_l4_v4(&mut f, 14, 34, 70, false);
    f
}

/// The whole IPv6 ACK [fd00:1::100]:443 -> [fd00::10]:50000 (60 bytes, IP only).
pub fn tcp6_from_vip() -> Vec<u8> {
    let mut p = vec![
        0x60, 0x00, 0x00, 0x00, // version 6
        0x00, 0x14, 0x06, 0x3f, // payload 20, TCP, hop limit 63
    ];
    p.extend_from_slice(&VIP6);
    p.extend_from_slice(&CLIENT6);
    p.extend_from_slice(&[
        0x01, 0xbb, 0xc3, 0x50, // sport 443, dport 50000
        0x00, 0x00, 0x07, 0x00, // seq
        0x00, 0x00, 0x00, 0x2b, // ack 43
        0x50, 0x10, 0x01, 0x00, // data offset 5, ACK, window 256
        0x00, 0x00, 0x00, 0x00, // checksum, urgent
    ]);
    fill_l4_v6(&mut p, 0, 40, 60, 6);
    p
}

/// A router tells the VIP "packet too big, MTU 1280" quoting all of
/// [`tcp6_from_vip`]. L3 14, ICMPv6 54, quoted IP 62, quoted L4 102, end 122.
pub fn icmp6_too_big() -> Vec<u8> {
    let mut f = eth(MAC_DIRECTOR, MAC_ROUTER, [0x86, 0xdd]);
    f.extend_from_slice(&[
        0x60, 0x00, 0x00, 0x00, // version 6
        0x00, 0x44, 0x3a, 0x40, // payload 68, ICMPv6, hop limit 64
    ]);
    f.extend_from_slice(&ROUTER6);
    f.extend_from_slice(&VIP6);
    f.extend_from_slice(&[
        0x02, 0x00, 0x00, 0x00, // packet too big, code 0, checksum
        0x00, 0x00, 0x05, 0x00, // MTU 1280
    ]);
    f.extend_from_slice(&tcp6_from_vip());
    fill_l4_v6(&mut f, 14, 54, 122, 58);
    f
}

/// ARP request "who has 198.18.1.100? tell 198.18.0.254" (42 bytes, unpadded).
pub fn arp_request() -> Vec<u8> {
    let mut f = eth([0xff; 6], MAC_ROUTER, [0x08, 0x06]);
    f.extend_from_slice(&[
        0x00, 0x01, 0x08, 0x00, // hardware Ethernet, protocol IPv4
        0x06, 0x04, 0x00, 0x01, // lengths 6 and 4, operation request
    ]);
    f.extend_from_slice(&MAC_ROUTER);
    f.extend_from_slice(&ROUTER4);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&VIP4);
    f
}

/// All golden frames with a name, for the fuzz seed corpus and replay.
pub fn all() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("tcp4_syn", tcp4_syn()),
        ("tcp4_reply", tcp4_reply()),
        ("udp4_dns", udp4_dns(true)),
        ("udp4_dns_nocsum", udp4_dns(false)),
        ("tcp6_vlan", tcp6_vlan()),
        ("udp6_hbh", udp6_hbh()),
        ("icmp4_frag_needed", icmp4_frag_needed()),
        ("icmp4_port_unreachable", icmp4_port_unreachable()),
        ("icmp6_too_big", icmp6_too_big()),
        ("arp_request", arp_request()),
    ]
}
