//! The sockets of a VRRP instance: a filtered AF_PACKET receiver for adverts (multicast and
//! unicast, with their IP headers, so TTL / hop limit and addresses are checked), AF_PACKET
//! senders for whole frames (multicast adverts, gratuitous ARP, unsolicited NA), the multicast
//! membership that makes the interface accept the VRRP group, and raw IP senders for unicast
//! peers (the kernel resolves their MACs).

use std::io::{self, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use rvs_ha::wire::MacAddr;
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, SockFilter, Socket, Type};

use crate::failover::sys;

/// `IPPROTO_RAW`: send-only raw IP sockets whose packets carry their own header.
const IPPROTO_RAW: i32 = 255;
/// VRRP's IP protocol number.
const VRRP_PROTOCOL: u32 = 112;

/// The index of an interface.
pub fn ifindex(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(|e| io::Error::new(io::ErrorKind::NotFound, format!("{name}: {e}")))
}

/// The MAC address of an interface (from sysfs).
pub fn mac_of(name: &str) -> io::Result<MacAddr> {
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/address"))?;
    let mut mac = [0u8; 6];
    let mut parts = text.trim().split(':');
    for b in &mut mac {
        let part = parts.next().ok_or_else(|| io::Error::other("short MAC address"))?;
        *b = u8::from_str_radix(part, 16).map_err(io::Error::other)?;
    }
    Ok(MacAddr(mac))
}

/// Whether an interface is operationally up (sysfs `operstate` is "up", or "unknown" for
/// interfaces without carrier reporting).
pub fn link_up(name: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{name}/operstate"))
        .map(|s| matches!(s.trim(), "up" | "unknown"))
        .unwrap_or(false)
}

/// Classic BPF: accept IPv4 (`ipv6` = false) or IPv6 frames whose protocol / next header is
/// VRRP; drop everything else in the kernel.
fn vrrp_filter(ipv6: bool) -> [SockFilter; 6] {
    // ldh [12]; jeq #ethertype, 0, 3; ldb [offset]; jeq #112, 0, 1; ret #65535; ret #0
    const LDH_ABS: u16 = 0x28;
    const LDB_ABS: u16 = 0x30;
    const JEQ_K: u16 = 0x15;
    const RET_K: u16 = 0x06;
    let (ethertype, proto_offset) = if ipv6 { (0x86dd, 14 + 6) } else { (0x0800, 14 + 9) };
    [
        SockFilter::new(LDH_ABS, 0, 0, 12),
        SockFilter::new(JEQ_K, 0, 3, ethertype),
        SockFilter::new(LDB_ABS, 0, 0, proto_offset),
        SockFilter::new(JEQ_K, 0, 1, VRRP_PROTOCOL),
        SockFilter::new(RET_K, 0, 0, 0xffff),
        SockFilter::new(RET_K, 0, 0, 0),
    ]
}

/// Receives the VRRP frames of one family arriving on one interface.
#[derive(Debug)]
pub struct AdvertReceiver {
    socket: Socket,
    /// Keeps the interface subscribed to the VRRP group.
    _membership: Socket,
    buf: Vec<u8>,
}

impl AdvertReceiver {
    /// Opens the receiver on `ifname` and joins 224.0.0.18 / ff02::12 there.
    pub fn open(ifname: &str, ipv6: bool) -> io::Result<AdvertReceiver> {
        let index = ifindex(ifname)?;
        // Protocol 0: nothing is queued before the filter is in place and the bind selects frames.
        let socket = Socket::new(Domain::PACKET, Type::RAW, None)?;
        socket.attach_filter(&vrrp_filter(ipv6))?;
        socket.bind(&sys::link_addr(index, sys::ETH_P_ALL)?)?;
        sys::set_ignore_outgoing(&socket)?;
        let membership = if ipv6 {
            let s = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
            s.join_multicast_v6(&Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12), index)?;
            s
        } else {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
            s.join_multicast_v4_n(&Ipv4Addr::new(224, 0, 0, 18), &InterfaceIndexOrAddress::Index(index))?;
            s
        };
        Ok(AdvertReceiver { socket, _membership: membership, buf: vec![0u8; 4096] })
    }

    /// Waits up to `timeout` for one frame.
    pub fn recv(&mut self, timeout: Duration) -> io::Result<Option<&[u8]>> {
        self.socket.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        match (&self.socket).read(&mut self.buf) {
            Ok(n) => Ok(self.buf.get(..n)),
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Sends whole Ethernet frames out of one interface.
#[derive(Debug)]
pub struct FramePort {
    socket: Socket,
    ifindex: u32,
    mac: MacAddr,
}

impl FramePort {
    /// A sender on `ifname`.
    pub fn open(ifname: &str) -> io::Result<FramePort> {
        let index = ifindex(ifname)?;
        // Protocol 0 and unbound: it receives nothing.
        let socket = Socket::new(Domain::PACKET, Type::RAW, None)?;
        Ok(FramePort { socket, ifindex: index, mac: mac_of(ifname)? })
    }

    /// The interface's MAC address.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// Sends one frame (its ethertype is read from the frame).
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        let ethertype = match frame.get(12..14) {
            Some(&[a, b]) => u16::from_be_bytes([a, b]),
            _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "frame shorter than an Ethernet header")),
        };
        self.socket.send_to(frame, &sys::link_addr(self.ifindex, ethertype)?)?;
        Ok(())
    }
}

/// Sends whole IP packets (header included) to unicast peers through the kernel's routing.
#[derive(Debug)]
pub struct UnicastSender {
    socket: Socket,
}

impl UnicastSender {
    /// A sender bound to `ifname` for one family.
    pub fn open(ifname: &str, ipv6: bool) -> io::Result<UnicastSender> {
        let domain = if ipv6 { Domain::IPV6 } else { Domain::IPV4 };
        let socket = Socket::new(domain, Type::RAW, Some(Protocol::from(IPPROTO_RAW)))?;
        socket.bind_device(Some(ifname.as_bytes()))?;
        Ok(UnicastSender { socket })
    }

    /// Sends `packet` (an IP packet built by `rvs_ha::vrrp::frame::ip_packet`) to `peer`.
    pub fn send(&self, packet: &[u8], peer: IpAddr) -> io::Result<()> {
        self.socket.send_to(packet, &SockAddr::from(SocketAddr::new(peer, 0)))?;
        Ok(())
    }
}
