//! AfPacketIo over a veth pair between two namespaces: frames sent by the peer's kernel are
//! received, frames transmitted reach the peer's kernel and the peer's AF_PACKET socket
//! byte for byte, and a VLAN tag survives the kernel's stripping.

mod afpacket_common;

use std::net::UdpSocket;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use afpacket_common::{TestNet, in_ns, ip, namespaces_available, spawn_in_ns};
use rvs_dataplane::afpacket::AfPacketIo;
use rvs_dataplane::io::{Batch, Frame, PacketIo};

const MAC_A: [u8; 6] = [0x02, 0x72, 0x76, 0x50, 0x00, 0x01];
const MAC_B: [u8; 6] = [0x02, 0x72, 0x76, 0x50, 0x00, 0x02];

struct Pair {
    net: TestNet,
    ns_a: String,
    ns_b: String,
    if_a: String,
    if_b: String,
}

fn pair() -> Pair {
    let mut net = TestNet::new();
    let ns_a = net.netns("a");
    let ns_b = net.netns("b");
    let (if_a, if_b) = (net.ifname("a"), net.ifname("b"));
    net.veth((&ns_a, &if_a, "02:72:76:50:00:01"), (&ns_b, &if_b, "02:72:76:50:00:02"));
    ip(&["-n", &ns_a, "addr", "add", "198.18.50.1/24", "dev", &if_a]);
    ip(&["-n", &ns_b, "addr", "add", "198.18.50.2/24", "dev", &if_b]);
    Pair { net, ns_a, ns_b, if_a, if_b }
}

/// Receives until a frame satisfies `wanted` or 5 s pass.
fn recv_until(io: &mut AfPacketIo, wanted: impl Fn(&[u8]) -> bool) -> Option<Frame> {
    let mut batch = Batch::new(32);
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        io.recv(&mut batch, Duration::from_millis(100)).expect("recv");
        if let Some(frame) = batch.frames().iter().find(|f| wanted(f.data())) {
            return Some(frame.clone());
        }
    }
    None
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The IPv4 header checksum: ones-complement of the ones-complement sum of its words.
fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header.chunks(2).map(|w| u32::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Ethernet + IPv4 + UDP (checksum 0 = none, allowed over IPv4) from A to B.
fn udp_frame(dport: u16, payload: &[u8]) -> Vec<u8> {
    let udp_len = 8 + payload.len() as u16;
    let mut frame = Vec::new();
    frame.extend_from_slice(&MAC_B);
    frame.extend_from_slice(&MAC_A);
    frame.extend_from_slice(&[0x08, 0x00]);
    let mut ipv4 = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0, 198, 18, 50, 1, 198, 18, 50, 2];
    ipv4[2..4].copy_from_slice(&(20 + udp_len).to_be_bytes());
    let csum = ipv4_checksum(&ipv4);
    ipv4[10..12].copy_from_slice(&csum.to_be_bytes());
    frame.extend_from_slice(&ipv4);
    frame.extend_from_slice(&40000u16.to_be_bytes());
    frame.extend_from_slice(&dport.to_be_bytes());
    frame.extend_from_slice(&udp_len.to_be_bytes());
    frame.extend_from_slice(&[0, 0]);
    frame.extend_from_slice(payload);
    frame
}

#[test]
fn afpacket_receives_what_the_peer_kernel_sends() {
    if !namespaces_available("afpacket_receives_what_the_peer_kernel_sends", &["ip"]) {
        return;
    }
    let p = pair();
    let marker = format!("rvs-rx-{}", p.net.run).into_bytes();
    let (ready_tx, ready_rx) = mpsc::channel();
    let (if_a, wanted) = (p.if_a.clone(), marker.clone());
    let receiver = spawn_in_ns(&p.ns_a, move || {
        let mut io = AfPacketIo::open(&[&if_a]).expect("open AF_PACKET");
        let ifindex = io.ifindex(&if_a).expect("ifindex");
        ready_tx.send(()).unwrap();
        (recv_until(&mut io, |data| contains(data, &wanted)), ifindex, io.stats())
    });
    ready_rx.recv().unwrap();
    in_ns(&p.ns_b, || {
        let socket = UdpSocket::bind("198.18.50.2:0").unwrap();
        // Repeat a few times: the first may wait for ARP.
        for _ in 0..5 {
            socket.send_to(&marker, "198.18.50.1:7777").unwrap();
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let (frame, ifindex, stats) = receiver.join().unwrap();
    let frame = frame.expect("the datagram from B arrived at A's AF_PACKET ring");
    assert_eq!(frame.ifindex, ifindex);
    // Ethernet from B to A carrying IPv4.
    assert_eq!(&frame.data()[..6], &MAC_A);
    assert_eq!(&frame.data()[6..12], &MAC_B);
    assert_eq!(&frame.data()[12..14], &[0x08, 0x00]);
    assert!(frame.data().ends_with(&marker));
    assert!(stats.received >= 1);
    // B's socket left the UDP checksum to "hardware" (veth: CHECKSUM_PARTIAL); the frame
    // handed to rvs must carry a complete one: pseudo-header + segment sums to all-ones.
    let data = frame.data();
    let udp = &data[34..];
    let mut sum: u32 = 17 + udp.len() as u32;
    for chunk in data[26..34].chunks(2).chain(udp.chunks(2)) {
        let word = if chunk.len() == 2 { u16::from_be_bytes([chunk[0], chunk[1]]) } else { u16::from(chunk[0]) << 8 };
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    assert_eq!(sum, 0xffff, "UDP checksum of the received frame verifies");
    assert!(stats.checksums_completed >= 1);
}

#[test]
fn afpacket_transmits_a_udp_datagram_to_the_peer_socket() {
    if !namespaces_available("afpacket_transmits_a_udp_datagram_to_the_peer_socket", &["ip"]) {
        return;
    }
    let p = pair();
    // Static neighbour on B is not needed (B only receives); bind B's socket first.
    let marker = format!("rvs-tx-{}", p.net.run).into_bytes();
    let (ready_tx, ready_rx) = mpsc::channel();
    let listener = spawn_in_ns(&p.ns_b, move || {
        let socket = UdpSocket::bind("198.18.50.2:7778").unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        ready_tx.send(()).unwrap();
        let mut buf = [0u8; 2048];
        socket.recv_from(&mut buf).ok().map(|(n, from)| (buf[..n].to_vec(), from))
    });
    ready_rx.recv().unwrap();
    let if_a = p.if_a.clone();
    let frame_bytes = udp_frame(7778, &marker);
    let stats = in_ns(&p.ns_a, move || {
        let mut io = AfPacketIo::open(&[&if_a]).expect("open AF_PACKET");
        let mut frame = Frame::new();
        frame.fill(&frame_bytes, io.ifindex(&if_a).unwrap());
        assert_eq!(io.send(std::slice::from_ref(&frame)).unwrap(), 1);
        io.stats()
    });
    assert_eq!(stats.sent, 1);
    let (payload, from) = listener.join().unwrap().expect("B's socket got the datagram sent through AF_PACKET");
    assert_eq!(payload, marker);
    assert_eq!(from, "198.18.50.1:40000".parse().unwrap());
}

#[test]
fn afpacket_hand_made_frames_round_trip_with_and_without_vlan_tag() {
    if !namespaces_available("afpacket_hand_made_frames_round_trip_with_and_without_vlan_tag", &["ip"]) {
        return;
    }
    let p = pair();
    let run = p.net.run.clone();
    // Local experimental EtherType 0x88b5, so no kernel protocol handler touches it.
    let plain: Vec<u8> = [&MAC_B[..], &MAC_A[..], &[0x88, 0xb5], format!("plain-{run}").as_bytes()].concat();
    // 802.1Q tag, VID 100 priority 1 (TCI 0x2064), inner EtherType 0x88b5. Padded to the
    // Ethernet minimum so that the bytes are what a real wire carries.
    let mut tagged: Vec<u8> =
        [&MAC_B[..], &MAC_A[..], &[0x81, 0x00, 0x20, 0x64, 0x88, 0xb5], format!("tagged-{run}").as_bytes()].concat();
    tagged.resize(64, 0);
    let (ready_tx, ready_rx) = mpsc::channel();
    let (if_b, expect_plain, expect_tagged) = (p.if_b.clone(), plain.clone(), tagged.clone());
    let receiver = spawn_in_ns(&p.ns_b, move || {
        let mut io = AfPacketIo::open(&[&if_b]).expect("open AF_PACKET on B");
        ready_tx.send(()).unwrap();
        // Both frames may arrive in one batch: collect until both are seen.
        let (mut got_plain, mut got_tagged) = (None, None);
        let mut batch = Batch::new(32);
        let deadline = Instant::now() + Duration::from_secs(5);
        while (got_plain.is_none() || got_tagged.is_none()) && Instant::now() < deadline {
            io.recv(&mut batch, Duration::from_millis(100)).expect("recv");
            for frame in batch.frames() {
                let data = frame.data();
                if data == expect_plain.as_slice() {
                    got_plain = Some(data.to_vec());
                } else if contains(data, &expect_tagged[18..30]) {
                    got_tagged = Some(data.to_vec());
                }
            }
        }
        (got_plain, got_tagged)
    });
    ready_rx.recv().unwrap();
    let if_a = p.if_a.clone();
    let (send_plain, send_tagged) = (plain.clone(), tagged.clone());
    in_ns(&p.ns_a, move || {
        let mut io = AfPacketIo::open(&[&if_a]).expect("open AF_PACKET on A");
        let ifindex = io.ifindex(&if_a).unwrap();
        let mut frames = vec![Frame::new(), Frame::new()];
        frames[0].fill(&send_plain, ifindex);
        frames[1].fill(&send_tagged, ifindex);
        assert_eq!(io.send(&frames).unwrap(), 2);
    });
    let (got_plain, got_tagged) = receiver.join().unwrap();
    assert_eq!(got_plain.expect("plain frame arrived"), plain);
    // The kernel strips the tag into the ring header; AfPacketIo puts it back.
    assert_eq!(got_tagged.expect("tagged frame arrived"), tagged);
}

#[test]
fn afpacket_open_fails_cleanly_for_a_missing_interface() {
    if !namespaces_available("afpacket_open_fails_cleanly_for_a_missing_interface", &["ip"]) {
        return;
    }
    let mut net = TestNet::new();
    let ns = net.netns("x");
    let err = in_ns(&ns, || AfPacketIo::open(&["rvs-nope0"]).map(|_| ()).unwrap_err());
    assert!(err.to_string().contains("rvs-nope0"), "{err}");
}
