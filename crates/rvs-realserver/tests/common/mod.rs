//! Shared test helpers: packet builders (inner UDP/TCP packets and their IPIP
//! encapsulation, built with rvs-packet), the root/namespace gate (skip with a
//! reason, or fail under CI=true), unique names, and a namespace guard that
//! always cleans up.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrIn, SockaddrIn6, sendto, socket,
};
use rvs_packet::checksum;
use rvs_packet::encap::{TunnelParams, encapsulate};
use rvs_packet::ipv4::{self, Ipv4HeaderFields};
use rvs_packet::ipv6::{self, Ipv6HeaderFields};
use rvs_packet::tcp::TcpPacket;
use rvs_packet::udp::UdpPacket;

pub const UDP: u8 = 17;
pub const TCP: u8 = 6;

fn pseudo(src: IpAddr, dst: IpAddr, protocol: u8, len: usize) -> u64 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => checksum::pseudo_header_v4(s.octets(), d.octets(), protocol, len as u16),
        (IpAddr::V6(s), IpAddr::V6(d)) => checksum::pseudo_header_v6(s.octets(), d.octets(), protocol, len as u32),
        _ => panic!("mixed families"),
    }
}

/// A UDP datagram with a correct checksum.
pub fn udp(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut segment = vec![0u8; len];
    segment[0..2].copy_from_slice(&sport.to_be_bytes());
    segment[2..4].copy_from_slice(&dport.to_be_bytes());
    segment[4..6].copy_from_slice(&(len as u16).to_be_bytes());
    segment[8..].copy_from_slice(payload);
    UdpPacket::new_checked(&mut segment[..]).unwrap().fill_checksum(pseudo(src, dst, UDP, len));
    segment
}

/// A TCP SYN (no options, window 65535) with a correct checksum.
pub fn tcp_syn(src: IpAddr, dst: IpAddr, sport: u16, dport: u16, seq: u32) -> Vec<u8> {
    let mut segment = vec![0u8; 20];
    segment[0..2].copy_from_slice(&sport.to_be_bytes());
    segment[2..4].copy_from_slice(&dport.to_be_bytes());
    segment[4..8].copy_from_slice(&seq.to_be_bytes());
    segment[12] = 5 << 4;
    segment[13] = 0x02;
    segment[14..16].copy_from_slice(&65535u16.to_be_bytes());
    TcpPacket::new_checked(&mut segment[..]).unwrap().fill_checksum(pseudo(src, dst, TCP, 20));
    segment
}

/// An IP packet (v4 or v6 by the addresses) around a transport segment.
pub fn ip(src: IpAddr, dst: IpAddr, protocol: u8, segment: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            let mut packet = vec![0u8; 20 + segment.len()];
            let fields = Ipv4HeaderFields {
                src,
                dst,
                protocol,
                ttl: 64,
                tos: 0,
                ident: 0x1234,
                dont_fragment: true,
                total_len: packet.len() as u16,
            };
            ipv4::write_header(&mut packet, &fields);
            packet[20..].copy_from_slice(segment);
            packet
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            let mut packet = vec![0u8; 40 + segment.len()];
            let fields = Ipv6HeaderFields {
                src,
                dst,
                next_header: protocol,
                hop_limit: 64,
                traffic_class: 0,
                flow_label: 0,
                payload_len: segment.len() as u16,
            };
            ipv6::write_header(&mut packet, &fields);
            packet[40..].copy_from_slice(segment);
            packet
        }
        _ => panic!("mixed families"),
    }
}

/// The inner packet wrapped in an outer header from `outer_src` to `outer_dst`,
/// as the director sends it.
pub fn tunnel(inner: &[u8], outer_src: IpAddr, outer_dst: IpAddr) -> Vec<u8> {
    let headroom = 40;
    let mut buf = vec![0u8; headroom + inner.len()];
    buf[headroom..].copy_from_slice(inner);
    let params = TunnelParams { src: outer_src, dst: outer_dst, ttl: Some(64), ident: 7, flow_label: 0, mtu: 1500 };
    let done = encapsulate(&mut buf, headroom, inner.len(), &params).unwrap();
    buf[done.start..done.start + done.len].to_vec()
}

/// A raw socket that sends complete IP packets (IPPROTO_RAW implies
/// IP_HDRINCL / IPV6_HDRINCL), opened in namespace `netns`.
pub fn header_included_socket(netns: &str, v6: bool) -> OwnedFd {
    let family = if v6 { AddressFamily::Inet6 } else { AddressFamily::Inet };
    rvs_lab::netns::run_in(netns, || {
        socket(family, SockType::Raw, SockFlag::empty(), SockProtocol::Raw)
            .map_err(|e| rvs_lab::LabError::Io { context: "raw socket".into(), source: e.into() })
    })
    .unwrap()
}

/// Sends a complete IP packet through a header-included raw socket.
pub fn send_packet(fd: &OwnedFd, packet: &[u8], dst: IpAddr) {
    let sent = match dst {
        IpAddr::V4(dst) => {
            sendto(fd.as_raw_fd(), packet, &SockaddrIn::from(SocketAddrV4::new(dst, 0)), MsgFlags::empty())
        }
        IpAddr::V6(dst) => {
            sendto(fd.as_raw_fd(), packet, &SockaddrIn6::from(SocketAddrV6::new(dst, 0, 0, 0)), MsgFlags::empty())
        }
    };
    assert_eq!(sent.unwrap(), packet.len());
}

/// Why namespace tests cannot run here, if they cannot.
fn namespace_blocker() -> Option<String> {
    if !nix::unistd::Uid::effective().is_root() {
        return Some("not root".into());
    }
    for tool in ["ip", "ethtool"] {
        if !rvs_lab::cmd::tool_available(tool) {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    let probe = unique("rvsprobe");
    match rvs_lab::netns::create(&probe) {
        Ok(()) => {
            rvs_lab::netns::delete_all(&[probe]);
            None
        }
        Err(err) => Some(format!("cannot create a network namespace: {err}")),
    }
}

/// Whether namespace tests can run: under CI=true a blocker fails the test,
/// otherwise the test is skipped with the reason printed.
pub fn namespaces_or_skip(test: &str) -> bool {
    match namespace_blocker() {
        None => true,
        Some(reason) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("{test}: needs network namespaces (CI=true): {reason}")
        }
        Some(reason) => {
            eprintln!("SKIP {test}: {reason}");
            false
        }
    }
}

/// A name unique to this process and call (<= 15 bytes with a short prefix).
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{prefix}{:05x}", (std::process::id() ^ nanos ^ (n << 16)) & 0xfffff)
}

/// Namespaces and a state directory that are removed on drop, after tearing
/// down any setup left in them (which also stops a decapsulator).
pub struct Scratch {
    pub namespaces: Vec<String>,
    pub state_dir: PathBuf,
}

impl Scratch {
    pub fn new() -> Scratch {
        let state_dir = std::env::temp_dir().join(unique("rvs-rs-state-"));
        Scratch { namespaces: Vec::new(), state_dir }
    }

    pub fn netns(&mut self, prefix: &str) -> String {
        let name = unique(prefix);
        rvs_lab::netns::create(&name).unwrap();
        self.namespaces.push(name.clone());
        name
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for netns in &self.namespaces {
            let _ = rvs_realserver::teardown(Some(netns), &self.state_dir);
        }
        let failed = rvs_lab::netns::delete_all(&self.namespaces);
        if !failed.is_empty() {
            eprintln!("could not delete namespaces: {failed:?}");
        }
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }
}

/// Runs `ip -n netns args`.
pub fn ip_in(netns: &str, args: &[&str]) -> String {
    let mut full = vec!["-n", netns];
    full.extend_from_slice(args);
    rvs_lab::cmd::run("ip", &full).unwrap()
}

/// Reads a sysctl in a namespace.
pub fn sysctl(netns: &str, key: &str) -> String {
    rvs_lab::netns::read_sysctl(netns, key).unwrap()
}

/// Writes a sysctl in a namespace.
pub fn set_sysctl(netns: &str, key: &str, value: &str) {
    rvs_lab::netns::write_sysctls(netns, &[(key.to_owned(), value.to_owned())]).unwrap();
}

/// Polls `probe` every 20 ms until it returns `Some` or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn v4(text: &str) -> IpAddr {
    IpAddr::V4(text.parse::<Ipv4Addr>().unwrap())
}

pub fn v6(text: &str) -> IpAddr {
    IpAddr::V6(text.parse::<Ipv6Addr>().unwrap())
}

/// The program that `setup` starts as the decapsulator daemon.
pub fn launcher() -> rvs_realserver::Launcher {
    rvs_realserver::Launcher { program: PathBuf::from(env!("CARGO_BIN_EXE_rvs-realserver")), leading_args: vec![] }
}
