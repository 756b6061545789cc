//! Next hops: where a frame for an IP address leaves (interface, source and destination
//! MAC, MTU). The pipeline asks a [`NextHops`] implementation; a static table serves tests,
//! the kernel-backed one (routes and neighbours read from the kernel) serves real interfaces.

use std::collections::HashMap;
use std::net::IpAddr;

use rvs_packet::MacAddr;

/// How to reach an address on the link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHop {
    /// Egress interface.
    pub ifindex: u32,
    /// Our MAC on that interface.
    pub src_mac: MacAddr,
    /// The neighbour's MAC (the address itself if on-link, else its gateway).
    pub dst_mac: MacAddr,
    /// The interface MTU.
    pub mtu: u16,
}

/// Resolves next hops.
pub trait NextHops {
    /// The next hop for `dst`, or `None` if it is not resolvable (yet): the caller drops the
    /// frame and counts it; implementations may start resolution in the background.
    fn lookup(&mut self, dst: IpAddr) -> Option<NextHop>;
}

/// A fixed table (tests, and static configurations).
#[derive(Debug, Clone, Default)]
pub struct StaticNextHops {
    /// Exact-address entries.
    pub hosts: HashMap<IpAddr, NextHop>,
    /// Used for any other IPv4 address.
    pub default_v4: Option<NextHop>,
    /// Used for any other IPv6 address.
    pub default_v6: Option<NextHop>,
}

impl NextHops for StaticNextHops {
    fn lookup(&mut self, dst: IpAddr) -> Option<NextHop> {
        self.hosts.get(&dst).copied().or(match dst {
            IpAddr::V4(_) => self.default_v4,
            IpAddr::V6(_) => self.default_v6,
        })
    }
}
