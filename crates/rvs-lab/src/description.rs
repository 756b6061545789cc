//! What a lab built: namespaces, interfaces, MACs and addresses of every node,
//! the VIP and the service ports. Tests, the demo and the director read it
//! instead of hard-coding names.

use std::fmt::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use crate::naming::RunId;
use crate::spec::TopologySpec;

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// One IPv4 and one IPv6 address of the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DualStack {
    /// The IPv4 address (in 198.18.0.0/15).
    pub v4: Ipv4Addr,
    /// The IPv6 address (in fd00::/8).
    pub v6: Ipv6Addr,
}

impl DualStack {
    /// Both addresses, IPv4 first.
    pub fn both(&self) -> [IpAddr; 2] {
        [IpAddr::V4(self.v4), IpAddr::V6(self.v6)]
    }
}

impl fmt::Display for DualStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.v4, self.v6)
    }
}

/// The L2 segment an interface is attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Segment {
    /// The point-to-point link between client and router.
    ClientLink,
    /// The LAN bridge: router, directors, and (DR/TUN) the real servers.
    Lan,
    /// The private bridge behind the directors (NAT only): real servers.
    Private,
}

/// One network interface of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Interface name inside the node's namespace (<= 15 bytes).
    pub name: String,
    /// Segment it is attached to.
    pub segment: Segment,
    /// Its MAC address (fixed by the lab, locally administered).
    pub mac: MacAddr,
    /// Its own addresses (floating ones such as the NAT gateway are not listed).
    pub addr: DualStack,
    /// IPv4 prefix length of the segment.
    pub v4_prefix: u8,
    /// IPv6 prefix length of the segment.
    pub v6_prefix: u8,
    /// Name of the other end of its veth (a bridge port in the switch
    /// namespace, or the client/router interface on the client link).
    pub peer: String,
}

/// What a node is in the topology.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Runs the traffic generators (curl, wrk).
    Client,
    /// Routes between the client link and the LAN; routes the VIP to a director.
    Router,
    /// A load balancer.
    Director,
    /// A back end running the HTTP and UDP echo servers.
    RealServer,
}

/// A namespace playing one part of the topology.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Short name: `client`, `router`, `dir1`, `dir2`, `rs1` ...
    pub name: String,
    /// What it is.
    pub role: Role,
    /// Its network namespace (`ip netns exec <netns> ...`).
    pub netns: String,
    /// Its interfaces, the one facing the client side first.
    pub interfaces: Vec<Interface>,
    /// Its default gateway, if it has one (the router has none).
    pub gateway: Option<DualStack>,
}

impl Node {
    /// The interface attached to `segment`, if any.
    pub fn interface(&self, segment: Segment) -> Option<&Interface> {
        self.interfaces.iter().find(|interface| interface.segment == segment)
    }

    /// The node's main addresses: those of its first interface (for a real
    /// server, its RIP; for a director, its LAN address).
    pub fn addr(&self) -> Option<DualStack> {
        self.interfaces.first().map(|interface| interface.addr)
    }
}

/// The namespace holding the L2 bridges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Switch {
    /// Its network namespace.
    pub netns: String,
    /// The LAN bridge.
    pub lan_bridge: String,
    /// The private bridge (NAT only).
    pub private_bridge: Option<String>,
}

/// Which HTTP server is running on the real servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpServerKind {
    /// nginx, one `daemon off` process per real server.
    Nginx,
    /// The crate's built-in HTTP/1.1 server, one thread per real server.
    Builtin,
}

/// Everything a user of a running lab needs to know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabDescription {
    /// The run id carried by every name.
    pub run_id: RunId,
    /// The spec the lab was built from.
    pub spec: TopologySpec,
    /// The client node.
    pub client: Node,
    /// The router node.
    pub router: Node,
    /// The switch namespace and its bridges.
    pub switch: Switch,
    /// The directors, `dir1` first.
    pub directors: Vec<Node>,
    /// The real servers, `rs1` first.
    pub real_servers: Vec<Node>,
    /// The virtual service address.
    pub vip: DualStack,
    /// Where the router sends VIP traffic (a director's LAN address).
    pub vip_next_hop: DualStack,
    /// NAT only: the floating gateway address of the real servers, held by
    /// `dir1`'s private interface when the lab starts.
    pub nat_gateway: Option<DualStack>,
    /// TCP port of the HTTP servers (on every real-server address, and on the
    /// VIP where the real servers hold it).
    pub http_port: u16,
    /// UDP port of the echo servers.
    pub udp_port: u16,
    /// HTTP server the real servers run (set once servers started).
    pub http_server: Option<HttpServerKind>,
    /// Per-run directory for server configs and logs.
    pub work_dir: PathBuf,
}

impl LabDescription {
    /// All namespaces of the lab, in creation order.
    pub fn namespaces(&self) -> Vec<String> {
        let mut names = vec![self.client.netns.clone(), self.router.netns.clone(), self.switch.netns.clone()];
        names.extend(self.directors.iter().map(|node| node.netns.clone()));
        names.extend(self.real_servers.iter().map(|node| node.netns.clone()));
        names
    }

    /// All nodes with addresses (client, router, directors, real servers).
    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        [&self.client, &self.router].into_iter().chain(&self.directors).chain(&self.real_servers)
    }

    /// A human-readable table of the lab (for `rvs lab status`).
    pub fn summary(&self) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "lab {} method {} directors {} real servers {} ({:?})",
            self.run_id,
            self.spec.method,
            self.directors.len(),
            self.real_servers.len(),
            self.spec.director_mode
        );
        let _ = writeln!(text, "VIP {} via {}", self.vip, self.vip_next_hop);
        if let Some(gateway) = &self.nat_gateway {
            let _ = writeln!(text, "NAT gateway {gateway}");
        }
        for node in self.nodes() {
            let _ = writeln!(text, "{:<7} netns {}", node.name, node.netns);
            for interface in &node.interfaces {
                let _ = writeln!(
                    text,
                    "        {:<15} {} {}/{} {}/{}",
                    interface.name,
                    interface.mac,
                    interface.addr.v4,
                    interface.v4_prefix,
                    interface.addr.v6,
                    interface.v6_prefix
                );
            }
        }
        let _ = writeln!(text, "switch  netns {}", self.switch.netns);
        let server = match self.http_server {
            Some(HttpServerKind::Nginx) => "nginx",
            Some(HttpServerKind::Builtin) => "builtin",
            None => "none",
        };
        let _ = writeln!(text, "http {} on tcp/{}, udp echo on udp/{}", server, self.http_port, self.udp_port);
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_prints_as_colon_hex() {
        assert_eq!(MacAddr([0x02, 0x72, 0x76, 0, 0x0a, 0xff]).to_string(), "02:72:76:00:0a:ff");
    }
}
