//! Shared by the pipeline tests: a lab (engine + pipeline + static next hops + in-memory
//! I/O) and frame builders that compute every checksum from scratch (RFC 1071 sums written
//! here, not rvs-packet's), so an expected frame built here checks the pipeline's
//! incremental checksum updates byte for byte.
//!
//! Addresses: clients 198.18.0.0/24 and fd00::/64 behind a router on ifindex 1; virtual
//! addresses 198.18.1.100 / fd00:1::100; real servers 198.19.0.2.. / fd00:2::2.. on
//! ifindex 2; the director is 198.19.0.1 / fd00:2::1 there.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rvs_core::engine::Engine;
use rvs_core::service::{Persistence, Protocol, ServiceConfig, ServiceKey};
use rvs_core::{DestConfig, ForwardMethod, Instant, SchedulerKind};
use rvs_dataplane::io::{Batch, MemoryIo, PacketIo};
use rvs_dataplane::nexthop::{NextHop, StaticNextHops};
use rvs_dataplane::pipeline::{Pipeline, PipelineConfig};
use rvs_packet::MacAddr;

pub const CLIENT4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
pub const CLIENT4_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 11);
pub const ROUTER4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
pub const VIP4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 100);
pub const OTHER4: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 200);
pub const DIRECTOR4: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 1);
pub const CLIENT6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x10);
pub const VIP6: Ipv6Addr = Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 0x100);
pub const DIRECTOR6: Ipv6Addr = Ipv6Addr::new(0xfd00, 2, 0, 0, 0, 0, 0, 1);
pub const ROUTER6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0xfe);

pub const MAC_ROUTER: [u8; 6] = [2, 0, 0, 0, 0, 1];
pub const MAC_DIRECTOR_IN: [u8; 6] = [2, 0, 0, 0, 0, 0xd1];
pub const MAC_DIRECTOR_OUT: [u8; 6] = [2, 0, 0, 0, 0, 0xd2];
pub const IF_CLIENTS: u32 = 1;
pub const IF_SERVERS: u32 = 2;

pub const TCP: u8 = 6;
pub const UDP: u8 = 17;
pub const SYN: u8 = 0x02;
pub const ACK: u8 = 0x10;
pub const RST: u8 = 0x04;
pub const SYN_ACK: u8 = 0x12;

/// Real server `i` (1-based): 198.19.0.(1+i) / fd00:2::(1+i).
pub fn rs4(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 19, 0, 1 + i)
}
pub fn rs6(i: u8) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 2, 0, 0, 0, 0, 0, 1 + u16::from(i))
}
/// Real server `i`'s MAC: 02:00:00:00:01:0i.
pub fn mac_rs(i: u8) -> [u8; 6] {
    [2, 0, 0, 0, 1, i]
}

pub fn sa(ip: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

// ---- checksums, from scratch ------------------------------------------------------

/// The 16-bit one's complement sum of `data` (RFC 1071), not yet complemented.
pub fn ones_sum(data: &[u8], mut sum: u32) -> u32 {
    for pair in data.chunks(2) {
        let word = u32::from(pair[0]) << 8 | u32::from(*pair.get(1).unwrap_or(&0));
        sum += word;
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

pub fn checksum(data: &[u8], initial: u32) -> u16 {
    !(ones_sum(data, initial) as u16)
}

fn addr_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// Sum of the pseudo-header for an upper-layer segment.
pub fn pseudo_sum(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> u32 {
    let mut p = addr_bytes(src);
    p.extend(addr_bytes(dst));
    match src {
        IpAddr::V4(_) => p.extend([0, proto, (len >> 8) as u8, len as u8]),
        IpAddr::V6(_) => p.extend([0, 0, (len >> 8) as u8, len as u8, 0, 0, 0, proto]),
    }
    ones_sum(&p, 0)
}

// ---- packet builders ----------------------------------------------------------------

/// IP header fields a test may vary.
#[derive(Debug, Clone, Copy)]
pub struct IpOpts {
    pub ttl: u8,
    pub tos: u8,
    pub df: bool,
    pub ident: u16,
}

impl Default for IpOpts {
    fn default() -> Self {
        IpOpts { ttl: 64, tos: 0, df: true, ident: 0x1234 }
    }
}

/// An IP packet (IPv4 without options, or IPv6 without extension headers) around `l4`.
pub fn ip_packet(src: IpAddr, dst: IpAddr, proto: u8, o: IpOpts, l4: &[u8]) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = 20 + l4.len();
            let mut h = vec![0x45, o.tos, (total >> 8) as u8, total as u8];
            h.extend(o.ident.to_be_bytes());
            h.extend(if o.df { [0x40, 0] } else { [0, 0] });
            h.extend([o.ttl, proto, 0, 0]);
            h.extend(s.octets());
            h.extend(d.octets());
            let c = checksum(&h, 0);
            h[10..12].copy_from_slice(&c.to_be_bytes());
            h.extend_from_slice(l4);
            h
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut h = vec![0x60 | (o.tos >> 4), o.tos << 4, 0, 0];
            h.extend((l4.len() as u16).to_be_bytes());
            h.extend([proto, o.ttl]);
            h.extend(s.octets());
            h.extend(d.octets());
            h.extend_from_slice(l4);
            h
        }
        _ => panic!("mixed families"),
    }
}

/// A TCP segment (20-byte header, window 64240, seq 1000, ack 2000) with its checksum.
pub fn tcp_segment(src: SocketAddr, dst: SocketAddr, flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(src.port().to_be_bytes());
    t.extend(dst.port().to_be_bytes());
    t.extend(1000u32.to_be_bytes());
    t.extend(2000u32.to_be_bytes());
    t.extend([0x50, flags, 0xfa, 0xf0, 0, 0, 0, 0]);
    t.extend_from_slice(payload);
    let c = checksum(&t, pseudo_sum(src.ip(), dst.ip(), TCP, t.len()));
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

/// A UDP datagram with its checksum.
pub fn udp_datagram(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let len = 8 + payload.len();
    let mut u = Vec::new();
    u.extend(src.port().to_be_bytes());
    u.extend(dst.port().to_be_bytes());
    u.extend((len as u16).to_be_bytes());
    u.extend([0, 0]);
    u.extend_from_slice(payload);
    let mut c = checksum(&u, pseudo_sum(src.ip(), dst.ip(), UDP, len));
    if c == 0 {
        c = 0xffff;
    }
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

pub fn tcp(src: SocketAddr, dst: SocketAddr, flags: u8, payload: &[u8], o: IpOpts) -> Vec<u8> {
    ip_packet(src.ip(), dst.ip(), TCP, o, &tcp_segment(src, dst, flags, payload))
}

pub fn udp(src: SocketAddr, dst: SocketAddr, payload: &[u8], o: IpOpts) -> Vec<u8> {
    ip_packet(src.ip(), dst.ip(), UDP, o, &udp_datagram(src, dst, payload))
}

/// An ICMP error (ICMPv4 or ICMPv6 by family) from `src` to `dst` quoting `quoted`.
pub fn icmp_error(src: IpAddr, dst: IpAddr, msg_type: u8, code: u8, rest: u32, quoted: &[u8], o: IpOpts) -> Vec<u8> {
    let mut m = vec![msg_type, code, 0, 0];
    m.extend(rest.to_be_bytes());
    m.extend_from_slice(quoted);
    let (proto, initial) = match src {
        IpAddr::V4(_) => (1, 0),
        IpAddr::V6(_) => (58, pseudo_sum(src, dst, 58, m.len())),
    };
    let c = checksum(&m, initial);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    ip_packet(src, dst, proto, o, &m)
}

/// An Ethernet frame around an IP packet.
pub fn eth(dst: [u8; 6], src: [u8; 6], ip: &[u8]) -> Vec<u8> {
    let mut f = dst.to_vec();
    f.extend(src);
    f.extend(if ip[0] >> 4 == 6 { [0x86, 0xdd] } else { [0x08, 0x00] });
    f.extend_from_slice(ip);
    f
}

/// A frame from the router to the director.
pub fn from_router(ip: &[u8]) -> Vec<u8> {
    eth(MAC_DIRECTOR_IN, MAC_ROUTER, ip)
}

/// A frame from real server `i` to the director.
pub fn from_rs(i: u8, ip: &[u8]) -> Vec<u8> {
    eth(MAC_DIRECTOR_OUT, mac_rs(i), ip)
}

// ---- checks -------------------------------------------------------------------------

/// Asserts that every checksum of the IP packet at `ip` verifies (IPv4 header; TCP, UDP,
/// ICMP, ICMPv6 with their pseudo-headers), recursing into an IPIP / IPv6-in-IP payload.
pub fn assert_checksums(ip: &[u8]) {
    let (src, dst, proto, l4): (IpAddr, IpAddr, u8, &[u8]) = match ip[0] >> 4 {
        4 => {
            let ihl = usize::from(ip[0] & 0xf) * 4;
            assert_eq!(ones_sum(&ip[..ihl], 0), 0xffff, "IPv4 header checksum");
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            let s: [u8; 4] = ip[12..16].try_into().unwrap();
            let d: [u8; 4] = ip[16..20].try_into().unwrap();
            (IpAddr::from(s), IpAddr::from(d), ip[9], &ip[ihl..total])
        }
        6 => {
            let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            let s: [u8; 16] = ip[8..24].try_into().unwrap();
            let d: [u8; 16] = ip[24..40].try_into().unwrap();
            (IpAddr::from(s), IpAddr::from(d), ip[6], &ip[40..40 + len])
        }
        v => panic!("IP version {v}"),
    };
    match proto {
        TCP | UDP | 58 => {
            assert_eq!(ones_sum(l4, pseudo_sum(src, dst, proto, l4.len())), 0xffff, "L4 checksum {proto}")
        }
        1 => assert_eq!(ones_sum(l4, 0), 0xffff, "ICMP checksum"),
        4 | 41 => assert_checksums(l4),
        _ => {}
    }
}

/// The IP packet of an untagged Ethernet frame.
pub fn ip_of(frame: &[u8]) -> &[u8] {
    &frame[14..]
}

/// The frame with its MACs replaced (what direct routing must produce).
pub fn with_macs(frame: &[u8], dst: [u8; 6], src: [u8; 6]) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[..6].copy_from_slice(&dst);
    f[6..12].copy_from_slice(&src);
    f
}

// ---- the lab --------------------------------------------------------------------------

pub fn hop(ifindex: u32, src: [u8; 6], dst: [u8; 6], mtu: u16) -> NextHop {
    NextHop { ifindex, src_mac: MacAddr(src), dst_mac: MacAddr(dst), mtu }
}

/// Engine, pipeline, next hops and I/O wired together.
pub struct Lab {
    pub engine: Arc<Mutex<Engine>>,
    pub pipeline: Pipeline,
    pub nexthops: StaticNextHops,
    pub io: MemoryIo,
    pub rx: Batch,
    pub tx: Batch,
    pub now: Instant,
}

/// The configuration the tests start from: the director's addresses set.
pub fn config() -> PipelineConfig {
    PipelineConfig { source_v4: Some(DIRECTOR4), source_v6: Some(DIRECTOR6), ..PipelineConfig::default() }
}

impl Lab {
    pub fn new(config: PipelineConfig) -> Lab {
        let engine = Arc::new(Mutex::new(Engine::new(10_000, 42)));
        let pipeline = Pipeline::new(engine.clone(), config);
        let mut nexthops = StaticNextHops {
            default_v4: Some(hop(IF_CLIENTS, MAC_DIRECTOR_IN, MAC_ROUTER, 1500)),
            default_v6: Some(hop(IF_CLIENTS, MAC_DIRECTOR_IN, MAC_ROUTER, 1500)),
            ..StaticNextHops::default()
        };
        for i in 1..=4 {
            nexthops.hosts.insert(rs4(i).into(), hop(IF_SERVERS, MAC_DIRECTOR_OUT, mac_rs(i), 1500));
            nexthops.hosts.insert(rs6(i).into(), hop(IF_SERVERS, MAC_DIRECTOR_OUT, mac_rs(i), 1500));
        }
        Lab {
            engine,
            pipeline,
            nexthops,
            io: MemoryIo::default(),
            rx: Batch::new(32),
            tx: Batch::new(32),
            now: Instant::from_secs(10),
        }
    }

    /// Adds a service (protocol, VIP, port) with a scheduler and optional persistence.
    pub fn service(
        &self,
        protocol: Protocol,
        vip: IpAddr,
        port: u16,
        sched: SchedulerKind,
        persistent: bool,
    ) -> ServiceKey {
        let key = ServiceKey::Addr { protocol, addr: vip, port };
        let mut cfg = ServiceConfig::new(key);
        cfg.scheduler = sched;
        if persistent {
            cfg.persistence = Some(Persistence::default_for(key.family()));
        }
        self.engine.lock().unwrap().add_service(cfg).unwrap();
        key
    }

    /// Adds a real server to a service.
    pub fn dest(&self, key: &ServiceKey, addr: IpAddr, port: u16, method: ForwardMethod) {
        let mut d = DestConfig::new(addr, port);
        d.method = method;
        self.engine.lock().unwrap().add_dest(key, d).unwrap();
    }

    /// Feeds frames (arriving on ifindex 1) through one pipeline batch per 32 frames; returns
    /// what was transmitted, as (ifindex, bytes).
    pub fn run(&mut self, frames: &[Vec<u8>]) -> Vec<(u32, Vec<u8>)> {
        for f in frames {
            self.io.rx.push_back((IF_CLIENTS, f.clone()));
        }
        while self.io.recv(&mut self.rx, Duration::ZERO).unwrap() > 0 {
            self.tx.clear();
            self.pipeline.process(&mut self.rx, &mut self.tx, &mut self.nexthops, self.now);
            self.io.send(self.tx.frames()).unwrap();
        }
        std::mem::take(&mut self.io.tx)
    }

    /// One frame in, exactly one frame out.
    pub fn one(&mut self, frame: Vec<u8>) -> (u32, Vec<u8>) {
        let mut out = self.run(&[frame]);
        assert_eq!(out.len(), 1, "expected one frame out, counters {:?}", self.pipeline.counters());
        out.remove(0)
    }

    /// The frames' fates add up.
    pub fn assert_accounted(&self) {
        let c = self.pipeline.counters();
        assert_eq!(c.rx, c.forwarded.total() + c.replies.total() + c.passed.total() + c.drops.total());
    }
}
