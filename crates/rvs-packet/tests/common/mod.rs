//! Test helpers that do NOT use the crate: a plain internet checksum (one loop,
//! no tricks) and full recomputation of the checksums at known offsets, so that
//! golden frames are checked against an independent computation.
#![allow(dead_code)]

pub mod frames;

/// Plain RFC 1071 sum of the concatenated parts, folded, complemented.
pub fn plain_checksum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
    let mut sum: u32 = 0;
    let mut i = 0;
    while i < bytes.len() {
        let hi = u32::from(bytes[i]);
        let lo = if i + 1 < bytes.len() { u32::from(bytes[i + 1]) } else { 0 };
        sum += (hi << 8) | lo;
        i += 2;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Whether the parts (checksum field filled) sum to all-ones.
pub fn plain_verify(parts: &[&[u8]]) -> bool {
    plain_checksum(parts) == 0
}

fn put16(buf: &mut [u8], at: usize, v: u16) {
    buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn get16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

/// Recomputes the IPv4 header checksum of the header at `l3`.
pub fn fill_ipv4_header(frame: &mut [u8], l3: usize) {
    let ihl = usize::from(frame[l3] & 0x0f) * 4;
    put16(frame, l3 + 10, 0);
    let c = plain_checksum(&[&frame[l3..l3 + ihl]]);
    put16(frame, l3 + 10, c);
}

fn pseudo_v4(frame: &[u8], l3: usize, proto: u8, len: usize) -> Vec<u8> {
    let mut p = frame[l3 + 12..l3 + 20].to_vec();
    p.extend_from_slice(&[0, proto]);
    p.extend_from_slice(&(len as u16).to_be_bytes());
    p
}

fn pseudo_v6(frame: &[u8], l3: usize, proto: u8, len: usize) -> Vec<u8> {
    let mut p = frame[l3 + 8..l3 + 40].to_vec();
    p.extend_from_slice(&(len as u32).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, proto]);
    p
}

/// Offset of the checksum field inside a TCP (16), UDP (6) or ICMP (2) header.
pub fn csum_field(proto: u8) -> usize {
    match proto {
        6 => 16,
        17 => 6,
        1 | 58 => 2,
        _ => panic!("no checksum for protocol {proto}"),
    }
}

/// Recomputes the checksum of the L4 segment `frame[l4..end]` of an IPv4 packet
/// at `l3` (TCP, UDP or ICMP; UDP keeps 0 if `keep_udp_zero` and it is 0).
pub fn fill_l4_v4(frame: &mut [u8], l3: usize, l4: usize, end: usize, keep_udp_zero: bool) {
    let proto = frame[l3 + 9];
    let at = l4 + csum_field(proto);
    if proto == 17 && keep_udp_zero && get16(frame, at) == 0 {
        return;
    }
    put16(frame, at, 0);
    let pseudo = if proto == 1 { Vec::new() } else { pseudo_v4(frame, l3, proto, end - l4) };
    let mut c = plain_checksum(&[&pseudo, &frame[l4..end]]);
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    put16(frame, at, c);
}

/// Recomputes the checksum of the upper-layer segment `frame[l4..end]` of the
/// IPv6 packet at `l3` whose upper-layer protocol is `proto`.
pub fn fill_l4_v6(frame: &mut [u8], l3: usize, l4: usize, end: usize, proto: u8) {
    let at = l4 + csum_field(proto);
    put16(frame, at, 0);
    let pseudo = pseudo_v6(frame, l3, proto, end - l4);
    let mut c = plain_checksum(&[&pseudo, &frame[l4..end]]);
    if proto == 17 && c == 0 {
        c = 0xffff;
    }
    put16(frame, at, c);
}

/// Whether the L4 checksum of an IPv4 packet verifies (independently).
pub fn verify_l4_v4(frame: &[u8], l3: usize, l4: usize, end: usize) -> bool {
    let proto = frame[l3 + 9];
    let pseudo = if proto == 1 { Vec::new() } else { pseudo_v4(frame, l3, proto, end - l4) };
    plain_verify(&[&pseudo, &frame[l4..end]])
}

/// Whether the L4 checksum of an IPv6 packet verifies (independently).
pub fn verify_l4_v6(frame: &[u8], l3: usize, l4: usize, end: usize, proto: u8) -> bool {
    let pseudo = pseudo_v6(frame, l3, proto, end - l4);
    plain_verify(&[&pseudo, &frame[l4..end]])
}

/// Whether the IPv4 header at `l3` verifies (independently).
pub fn verify_ipv4_header(frame: &[u8], l3: usize) -> bool {
    let ihl = usize::from(frame[l3] & 0x0f) * 4;
    plain_verify(&[&frame[l3..l3 + ihl]])
}

/// Hex dump for assertion messages.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|c| c.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts two frames are byte-identical, with a readable dump if not.
#[track_caller]
pub fn assert_frame_eq(got: &[u8], want: &[u8]) {
    assert!(got == want, "frames differ\n got:\n{}\nwant:\n{}", hex(got), hex(want));
}
