//! The pipeline's settings: the director's own addresses, the IPVS switches that act on the
//! packet path (`pmtu_disc`, `nat_icmp_send`) and TTL handling.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// How the pipeline treats packets beyond what the engine decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineConfig {
    /// The director's own addresses that are not virtual addresses (management, health
    /// checks, routing peers). Frames to them are always left to the kernel, even if a
    /// virtual service were defined on one, and they are never taken for NAT replies.
    pub own_addrs: Vec<IpAddr>,
    /// The director's IPv4 address: outer source of IPv4 tunnels (TUN to an IPv4 real
    /// server) and source of the ICMP errors the director sends to real servers (NAT replies
    /// that are too big or out of TTL, `nat_icmp_send`). Without it, IPv4 tunnels are
    /// dropped (counted `no_tunnel_source`) and those errors are not sent.
    pub source_v4: Option<Ipv4Addr>,
    /// The director's IPv6 address, as `source_v4` for IPv6.
    pub source_v6: Option<Ipv6Addr>,
    /// `net.ipv4.vs.pmtu_disc` (default on): an IPv4 packet with DF set that would exceed
    /// the tunnel MTU is answered with ICMP fragmentation-needed. Off, IPVS would fragment
    /// the tunnel packet instead; rvs does not fragment, so such packets are dropped
    /// (counted `needs_fragmentation`). DR and NAT always answer DF packets over the MTU,
    /// and IPv6 packets over the MTU always get packet-too-big, as in IPVS.
    pub pmtu_disc: bool,
    /// `net.ipv4.vs.nat_icmp_send` (default off): a packet from a NAT real server's address
    /// and port that matches no connection (and is not a TCP RST or SCTP ABORT) is dropped
    /// and answered with ICMP port unreachable (sent from `source_v4`/`source_v6`) instead of
    /// being left to the kernel.
    pub nat_icmp_send: bool,
    /// Decrement the TTL / hop limit of NAT-forwarded packets in both directions (default
    /// on), as a router does and as IPVS does.
    pub decrement_ttl_nat: bool,
    /// Decrement the TTL / hop limit of DR-forwarded packets and of the inner packet of
    /// tunnels (default off: the frame leaves with only its MACs changed, or with the inner
    /// packet untouched). Linux, since the 2017 change "ipvs: Decrement ttl", decrements for
    /// every non-local forwarding method; turn this on to match it exactly.
    pub decrement_ttl_direct: bool,
    /// Answer a packet whose TTL runs out with ICMP time exceeded (default on); otherwise it
    /// is only dropped and counted.
    pub send_time_exceeded: bool,
    /// TTL / hop limit of outer tunnel headers; `None` (default) copies the inner packet's.
    pub tunnel_ttl: Option<u8>,
    /// Seed of the random source the engine's schedulers and defences use.
    pub seed: u64,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            own_addrs: Vec::new(),
            source_v4: None,
            source_v6: None,
            pmtu_disc: true,
            nat_icmp_send: false,
            decrement_ttl_nat: true,
            decrement_ttl_direct: false,
            send_time_exceeded: true,
            tunnel_ttl: None,
            seed: 0x5eed_f00d_2b5d,
        }
    }
}

impl PipelineConfig {
    /// Is `addr` one of the director's own (non-virtual) addresses?
    pub fn is_own(&self, addr: &IpAddr) -> bool {
        self.own_addrs.contains(addr)
    }

    /// The director's address of the family of `like`, if configured.
    pub fn source_like(&self, like: &IpAddr) -> Option<IpAddr> {
        match like {
            IpAddr::V4(_) => self.source_v4.map(IpAddr::V4),
            IpAddr::V6(_) => self.source_v6.map(IpAddr::V6),
        }
    }
}
