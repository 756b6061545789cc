//! Turns a spec and a run id into the full layout of a lab, without touching
//! the system: names, MACs and addresses (the [`LabDescription`]) plus the
//! lists of links, addresses, routes, static neighbours and sysctls that
//! `topology` then applies.
//!
//! Addressing (IPv4 in 198.18.0.0/15, IPv6 in fd00::/8; the IPv6 host part
//! repeats the IPv4 host number's decimal digits, so 198.18.2.11 pairs with
//! fd00:0:0:2::11):
//!
//! | segment      | IPv4            | IPv6            | hosts                                   |
//! |--------------|-----------------|-----------------|-----------------------------------------|
//! | client link  | 198.18.1.0/24   | fd00:0:0:1::/64 | router .1, client .2                    |
//! | LAN          | 198.18.2.0/24   | fd00:0:0:2::/64 | router .1, dir N .1N, (DR/TUN) rs N .2N |
//! | private (NAT)| 198.18.3.0/24   | fd00:0:0:3::/64 | gateway .1 (on dir1), dir N .(1+N), rs N .(20+N) |
//! | VIP          | 198.18.100.1    | fd00:0:0:100::1 | routed by the router to dir1            |
//!
//! MACs are `02:72:76:SS:KK:HH`: segment SS, host HH, KK = 0 for a node's
//! interface, 1 for the switch port facing it, 2 for a bridge.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use crate::description::{DualStack, Interface, LabDescription, MacAddr, Node, Role, Segment, Switch};
use crate::error::Result;
use crate::naming::RunId;
use crate::realserver::RealServerConfig;
use crate::spec::{DirectorMode, Method, TopologySpec};

/// TCP port of the real servers' HTTP service.
pub const HTTP_PORT: u16 = 80;
/// UDP port of the real servers' echo service ("DNS-like").
pub const UDP_PORT: u16 = 53;

const V4_PREFIX: u8 = 24;
const V6_PREFIX: u8 = 64;
const VIP_NET: u8 = 100;
const ROUTER_HOST: u8 = 1;
const CLIENT_HOST: u8 = 2;
const NAT_GATEWAY_HOST: u8 = 1;

impl Segment {
    /// Third octet of the segment's IPv4 subnet (and its IPv6 /64 number).
    pub fn net(self) -> u8 {
        match self {
            Segment::ClientLink => 1,
            Segment::Lan => 2,
            Segment::Private => 3,
        }
    }
}

/// IPv4 address `198.18.<net>.<host>`.
pub fn v4(net: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, net, host)
}

/// IPv6 address `fd00:0:0:<net>::<host>`, both numbers written with their
/// decimal digits (so host 11 reads `::11`).
pub fn v6(net: u8, host: u8) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0, 0, decimal_digits_as_hex(net), 0, 0, 0, decimal_digits_as_hex(host))
}

fn decimal_digits_as_hex(n: u8) -> u16 {
    let n = u16::from(n);
    (n / 100) << 8 | (n / 10 % 10) << 4 | (n % 10)
}

fn dual(net: u8, host: u8) -> DualStack {
    DualStack { v4: v4(net, host), v6: v6(net, host) }
}

fn mac(segment: Segment, kind: u8, host: u8) -> MacAddr {
    MacAddr([0x02, 0x72, 0x76, segment.net(), kind, host])
}

/// One end of a veth pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VethEnd {
    pub netns: String,
    pub name: String,
    pub mac: MacAddr,
}

/// A veth pair; `bridge` names the bridge that end `b` joins (in the switch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VethPlan {
    pub a: VethEnd,
    pub b: VethEnd,
    pub bridge: Option<String>,
}

/// An address to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AddrPlan {
    pub netns: String,
    pub dev: String,
    pub addr: IpAddr,
    pub prefix: u8,
}

/// A route; `dest = None` is the default route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RoutePlan {
    pub netns: String,
    pub dest: Option<(IpAddr, u8)>,
    pub via: IpAddr,
}

/// A permanent neighbour entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NeighPlan {
    pub netns: String,
    pub dev: String,
    pub addr: IpAddr,
    pub mac: MacAddr,
}

/// Everything `topology::apply` does, in order.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub description: LabDescription,
    /// Sysctls per namespace, written right after the namespace is created.
    pub sysctls: Vec<(String, Vec<(String, String)>)>,
    /// Bridges in the switch namespace, with their MACs.
    pub bridges: Vec<(String, MacAddr)>,
    pub veths: Vec<VethPlan>,
    pub addrs: Vec<AddrPlan>,
    pub neighbours: Vec<NeighPlan>,
    pub routes: Vec<RoutePlan>,
    /// (netns, interface) pairs whose tx checksum offload is turned off.
    pub tx_checksum_off: Vec<(String, String)>,
    /// Real-server host setup per namespace.
    pub real_servers: Vec<(String, RealServerConfig)>,
}

struct Builder<'a> {
    run: &'a RunId,
    switch_netns: String,
    veths: Vec<VethPlan>,
}

impl Builder<'_> {
    /// A node interface on `segment` with host number `host`, connected by a
    /// veth to `peer_suffix` (a switch port on `bridge`, or a node interface).
    #[allow(clippy::too_many_arguments)]
    fn link(
        &mut self,
        node_netns: &str,
        suffix: &str,
        segment: Segment,
        host: u8,
        peer_netns: &str,
        peer_suffix: &str,
        peer_mac: MacAddr,
        bridge: Option<String>,
    ) -> Result<Interface> {
        let name = self.run.ifname(suffix)?;
        let peer = self.run.ifname(peer_suffix)?;
        let own_mac = mac(segment, 0, host);
        self.veths.push(VethPlan {
            a: VethEnd { netns: node_netns.to_owned(), name: name.clone(), mac: own_mac },
            b: VethEnd { netns: peer_netns.to_owned(), name: peer.clone(), mac: peer_mac },
            bridge,
        });
        Ok(Interface {
            name,
            segment,
            mac: own_mac,
            addr: dual(segment.net(), host),
            v4_prefix: V4_PREFIX,
            v6_prefix: V6_PREFIX,
            peer,
        })
    }

    /// A node interface plugged into a switch bridge.
    fn port(
        &mut self,
        node_netns: &str,
        suffix: &str,
        port_suffix: &str,
        segment: Segment,
        host: u8,
        bridge: &str,
    ) -> Result<Interface> {
        let switch = self.switch_netns.clone();
        self.link(
            node_netns,
            suffix,
            segment,
            host,
            &switch,
            port_suffix,
            mac(segment, 1, host),
            Some(bridge.to_owned()),
        )
    }
}

/// Lays out a lab for `spec` under run id `run`, with per-run files in `work_dir`.
pub(crate) fn build(spec: &TopologySpec, run: &RunId, work_dir: PathBuf) -> Result<Plan> {
    spec.validate()?;
    let nat = spec.method == Method::Nat;
    let mut builder = Builder { run, switch_netns: run.netns("switch"), veths: Vec::new() };
    let lan_bridge = run.ifname("bl")?;
    let private_bridge = if nat { Some(run.ifname("bp")?) } else { None };
    let mut bridges = vec![(lan_bridge.clone(), mac(Segment::Lan, 2, 0))];
    if let Some(bridge) = &private_bridge {
        bridges.push((bridge.clone(), mac(Segment::Private, 2, 0)));
    }

    let client_netns = run.netns("client");
    let router_netns = run.netns("router");
    let router_client_mac = mac(Segment::ClientLink, 0, ROUTER_HOST);
    let client_if = builder.link(
        &client_netns,
        "c",
        Segment::ClientLink,
        CLIENT_HOST,
        &router_netns,
        "rc",
        router_client_mac,
        None,
    )?;
    let router_client_if = Interface {
        name: client_if.peer.clone(),
        segment: Segment::ClientLink,
        mac: router_client_mac,
        addr: dual(Segment::ClientLink.net(), ROUTER_HOST),
        v4_prefix: V4_PREFIX,
        v6_prefix: V6_PREFIX,
        peer: client_if.name.clone(),
    };
    let router_lan_if = builder.port(&router_netns, "rl", "sr", Segment::Lan, ROUTER_HOST, &lan_bridge)?;
    let router_lan = router_lan_if.addr;

    let mut directors = Vec::new();
    for index in 1..=spec.directors {
        let netns = run.netns(&format!("dir{index}"));
        let mut interfaces = vec![builder.port(
            &netns,
            &format!("d{index}l"),
            &format!("sd{index}"),
            Segment::Lan,
            10 + index,
            &lan_bridge,
        )?];
        if let Some(bridge) = &private_bridge {
            interfaces.push(builder.port(
                &netns,
                &format!("d{index}p"),
                &format!("sp{index}"),
                Segment::Private,
                NAT_GATEWAY_HOST + index,
                bridge,
            )?);
        }
        directors.push(Node {
            name: format!("dir{index}"),
            role: Role::Director,
            netns,
            interfaces,
            gateway: Some(router_lan),
        });
    }

    let nat_gateway = nat.then(|| dual(Segment::Private.net(), NAT_GATEWAY_HOST));
    let (rs_segment, rs_bridge, rs_gateway) = match (&private_bridge, nat_gateway) {
        (Some(bridge), Some(gateway)) => (Segment::Private, bridge.clone(), gateway),
        _ => (Segment::Lan, lan_bridge.clone(), router_lan),
    };
    let mut real_servers = Vec::new();
    for index in 1..=spec.real_servers {
        let netns = run.netns(&format!("rs{index}"));
        let interface =
            builder.port(&netns, &format!("rs{index}"), &format!("ss{index}"), rs_segment, 20 + index, &rs_bridge)?;
        real_servers.push(Node {
            name: format!("rs{index}"),
            role: Role::RealServer,
            netns,
            interfaces: vec![interface],
            gateway: Some(rs_gateway),
        });
    }

    let vip = dual(VIP_NET, 1);
    let first_director_lan = directors.first().and_then(Node::addr).unwrap_or(router_lan);
    let description = LabDescription {
        run_id: run.clone(),
        spec: spec.clone(),
        client: Node {
            name: "client".to_owned(),
            role: Role::Client,
            netns: client_netns,
            interfaces: vec![client_if],
            gateway: Some(router_client_if.addr),
        },
        router: Node {
            name: "router".to_owned(),
            role: Role::Router,
            netns: router_netns,
            interfaces: vec![router_client_if, router_lan_if],
            gateway: None,
        },
        switch: Switch { netns: builder.switch_netns.clone(), lan_bridge, private_bridge },
        directors,
        real_servers,
        vip,
        vip_next_hop: first_director_lan,
        nat_gateway,
        http_port: HTTP_PORT,
        udp_port: UDP_PORT,
        http_server: None,
        work_dir,
    };

    let veths = builder.veths;
    Ok(Plan {
        sysctls: sysctls(&description),
        addrs: addresses(&description),
        neighbours: neighbours(&description),
        routes: routes(&description),
        tx_checksum_off: tx_checksum_off(&description),
        real_servers: real_server_configs(&description),
        bridges,
        veths,
        description,
    })
}

fn setting(key: &str, value: &str) -> (String, String) {
    (key.to_owned(), value.to_owned())
}

fn sysctls(lab: &LabDescription) -> Vec<(String, Vec<(String, String)>)> {
    let forwarding_directors = lab.spec.director_mode == DirectorMode::KernelForward;
    let mut all = Vec::new();
    for node in lab.nodes() {
        let forwarding = match node.role {
            Role::Router => true,
            Role::Director => forwarding_directors,
            Role::Client | Role::RealServer => false,
        };
        let flag = if forwarding { "1" } else { "0" };
        all.push((
            node.netns.clone(),
            vec![
                // Addresses are usable at once (no duplicate address detection),
                // and nothing autoconfigures from router advertisements.
                setting("net/ipv6/conf/all/accept_dad", "0"),
                setting("net/ipv6/conf/default/accept_dad", "0"),
                setting("net/ipv6/conf/all/accept_ra", "0"),
                setting("net/ipv6/conf/default/accept_ra", "0"),
                // Explicit, whatever the host's defaults that IPv4 inherits.
                setting("net/ipv4/conf/all/rp_filter", "0"),
                setting("net/ipv4/conf/default/rp_filter", "0"),
                setting("net/ipv4/conf/all/send_redirects", "0"),
                setting("net/ipv4/conf/default/send_redirects", "0"),
                setting("net/ipv4/ip_forward", flag),
                setting("net/ipv6/conf/all/forwarding", flag),
            ],
        ));
    }
    // The switch only bridges: no IPv6 stack chatter on its ports.
    all.push((
        lab.switch.netns.clone(),
        vec![
            setting("net/ipv6/conf/all/disable_ipv6", "1"),
            setting("net/ipv6/conf/default/disable_ipv6", "1"),
            setting("net/ipv4/ip_forward", "0"),
        ],
    ));
    all
}

fn addresses(lab: &LabDescription) -> Vec<AddrPlan> {
    let mut addrs = Vec::new();
    for node in lab.nodes() {
        for interface in &node.interfaces {
            for (addr, prefix) in [
                (IpAddr::V4(interface.addr.v4), interface.v4_prefix),
                (IpAddr::V6(interface.addr.v6), interface.v6_prefix),
            ] {
                addrs.push(AddrPlan { netns: node.netns.clone(), dev: interface.name.clone(), addr, prefix });
            }
        }
    }
    // The NAT gateway floats; it starts on dir1's private interface.
    let holder = lab.directors.first().and_then(|node| node.interface(Segment::Private).map(|i| (node, i)));
    if let (Some(gateway), Some((node, interface))) = (lab.nat_gateway, holder) {
        for addr in gateway.both() {
            let prefix = if addr.is_ipv4() { interface.v4_prefix } else { interface.v6_prefix };
            addrs.push(AddrPlan { netns: node.netns.clone(), dev: interface.name.clone(), addr, prefix });
        }
    }
    addrs
}

/// Permanent neighbour entries between every two addressed interfaces on the
/// same segment (no ARP/ND needed for fixed addresses). Floating addresses
/// (the NAT gateway) are left to ARP/ND so that a takeover can move them.
fn neighbours(lab: &LabDescription) -> Vec<NeighPlan> {
    let mut entries = Vec::new();
    let attached: Vec<(&Node, &Interface)> =
        lab.nodes().flat_map(|node| node.interfaces.iter().map(move |interface| (node, interface))).collect();
    for (node, interface) in &attached {
        for (other_node, other) in &attached {
            if other.segment != interface.segment || other_node.netns == node.netns {
                continue;
            }
            for addr in other.addr.both() {
                entries.push(NeighPlan {
                    netns: node.netns.clone(),
                    dev: interface.name.clone(),
                    addr,
                    mac: other.mac,
                });
            }
        }
    }
    entries
}

fn routes(lab: &LabDescription) -> Vec<RoutePlan> {
    let mut routes = Vec::new();
    for node in lab.nodes() {
        if let Some(gateway) = node.gateway {
            for via in gateway.both() {
                routes.push(RoutePlan { netns: node.netns.clone(), dest: None, via });
            }
        }
    }
    // The router sends the VIP, and (NAT) the private segment, to dir1.
    let next_hop = lab.vip_next_hop;
    let router = &lab.router.netns;
    routes.push(RoutePlan { netns: router.clone(), dest: Some((IpAddr::V4(lab.vip.v4), 32)), via: next_hop.v4.into() });
    routes.push(RoutePlan {
        netns: router.clone(),
        dest: Some((IpAddr::V6(lab.vip.v6), 128)),
        via: next_hop.v6.into(),
    });
    if lab.nat_gateway.is_some() {
        let net = Segment::Private.net();
        routes.push(RoutePlan {
            netns: router.clone(),
            dest: Some((IpAddr::V4(v4(net, 0)), V4_PREFIX)),
            via: next_hop.v4.into(),
        });
        routes.push(RoutePlan {
            netns: router.clone(),
            dest: Some((IpAddr::V6(v6(net, 0)), V6_PREFIX)),
            via: next_hop.v6.into(),
        });
    }
    routes
}

/// Endpoints whose own sockets send through a veth that a data plane may XDP-
/// redirect: their checksums must be complete (feasibility: checksum trap).
fn tx_checksum_off(lab: &LabDescription) -> Vec<(String, String)> {
    [&lab.client]
        .into_iter()
        .chain(&lab.real_servers)
        .flat_map(|node| node.interfaces.iter().map(|interface| (node.netns.clone(), interface.name.clone())))
        .collect()
}

fn real_server_configs(lab: &LabDescription) -> Vec<(String, RealServerConfig)> {
    lab.real_servers
        .iter()
        .map(|node| {
            let config = RealServerConfig {
                method: lab.spec.method,
                vips: if lab.spec.method == Method::Nat { Vec::new() } else { lab.vip.both().to_vec() },
                uplinks: node.interfaces.iter().map(|interface| interface.name.clone()).collect(),
            };
            (node.netns.clone(), config)
        })
        .collect()
}

#[cfg(test)]
mod tests;
