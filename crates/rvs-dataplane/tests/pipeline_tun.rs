//! Tunnels through the pipeline: the client's packet leaves untouched inside an outer IPv4
//! or IPv6 header from the director to the real server (fields per RFC 2003 / RFC 2473 and
//! RFC 6040 ECN rules, as IPVS's ipip tunnels); too-big packets are answered for the client.

mod pipeline_support;

use std::net::IpAddr;

use pipeline_support::*;
use rvs_core::service::Protocol;
use rvs_core::{ForwardMethod, SchedulerKind, TunnelChecksum, TunnelConfig, TunnelType};
use rvs_dataplane::pipeline::PipelineConfig;

const IPIP: ForwardMethod = ForwardMethod::Tunnel(TunnelConfig::IPIP);

fn tun_lab(config: PipelineConfig, vip: IpAddr, rs: IpAddr, method: ForwardMethod) -> Lab {
    let lab = Lab::new(config);
    let key = lab.service(Protocol::Tcp, vip, 80, SchedulerKind::Rr, false);
    lab.dest(&key, rs, 80, method);
    lab
}

#[test]
fn ipip_v4_outer_header_and_untouched_inner() {
    let mut lab = tun_lab(config(), VIP4.into(), rs4(1).into(), IPIP);
    // DSCP EF (46) with ECN CE: the outer header copies DSCP and carries ECT(0) for CE.
    let inner = tcp(sa(CLIENT4, 40000), sa(VIP4, 80), SYN, b"", IpOpts { tos: 0xbb, ttl: 50, ..IpOpts::default() });
    let (ifindex, out) = lab.one(from_router(&inner));
    assert_eq!(ifindex, IF_SERVERS);
    assert_eq!(out[..14], [&mac_rs(1)[..], &MAC_DIRECTOR_OUT, &[0x08, 0x00]].concat());
    let outer = ip_of(&out);
    assert_eq!(outer.len(), 20 + inner.len());
    assert_eq!(outer[0], 0x45);
    assert_eq!(outer[1], 0xba, "DSCP copied, CE encapsulated as ECT(0)");
    assert_eq!(usize::from(u16::from_be_bytes([outer[2], outer[3]])), 20 + inner.len());
    assert_eq!(outer[6] & 0x40, 0x40, "DF copied from the inner packet");
    assert_eq!(outer[8], 50, "TTL copied");
    assert_eq!(outer[9], 4, "IPIP");
    assert_eq!(outer[12..16], DIRECTOR4.octets());
    assert_eq!(outer[16..20], rs4(1).octets());
    assert_eq!(&outer[20..], &inner[..], "inner packet untouched");
    assert_checksums(outer);
    assert_eq!(lab.pipeline.counters().forwarded.tunnel, 1);
}

#[test]
fn ip6ip6_and_ipv4_in_ipv6() {
    // IPv6 in IPv6.
    let mut lab = tun_lab(config(), VIP6.into(), rs6(1).into(), IPIP);
    let inner = tcp(sa(CLIENT6, 40000), sa(VIP6, 80), SYN, b"hi", IpOpts { tos: 0x28, ttl: 33, ..IpOpts::default() });
    let (_, out) = lab.one(from_router(&inner));
    assert_eq!(out[12..14], [0x86, 0xdd]);
    let outer = ip_of(&out);
    assert_eq!(outer[0] >> 4, 6);
    assert_eq!((outer[0] & 0x0f) << 4 | outer[1] >> 4, 0x28, "traffic class copied");
    assert_eq!(usize::from(u16::from_be_bytes([outer[4], outer[5]])), inner.len());
    assert_eq!(outer[6], 41, "IPv6 inside");
    assert_eq!(outer[7], 33, "hop limit copied");
    assert_eq!(outer[8..24], DIRECTOR6.octets());
    assert_eq!(outer[24..40], rs6(1).octets());
    assert_eq!(&outer[40..], &inner[..]);

    // An IPv4 service with an IPv6 real server (only tunnels may cross families).
    let mut lab = tun_lab(config(), VIP4.into(), rs6(2).into(), IPIP);
    let inner = tcp(sa(CLIENT4, 40000), sa(VIP4, 80), SYN, b"", IpOpts::default());
    let (_, out) = lab.one(from_router(&inner));
    assert_eq!(out[..6], mac_rs(2));
    assert_eq!(out[12..14], [0x86, 0xdd]);
    let outer = ip_of(&out);
    assert_eq!(outer[6], 4, "IPv4 inside IPv6");
    assert_eq!(outer[8..24], DIRECTOR6.octets());
    assert_eq!(outer[24..40], rs6(2).octets());
    assert_eq!(&outer[40..], &inner[..]);
    assert_checksums(outer);
}

#[test]
fn inner_ttl_decremented_when_asked() {
    let mut cfg = config();
    cfg.decrement_ttl_direct = true;
    cfg.tunnel_ttl = Some(9);
    let mut lab = tun_lab(cfg, VIP4.into(), rs4(1).into(), IPIP);
    let (_, out) = lab.one(from_router(&tcp(sa(CLIENT4, 1), sa(VIP4, 80), SYN, b"", IpOpts::default())));
    let outer = ip_of(&out);
    assert_eq!(outer[8], 9, "configured outer TTL");
    assert_eq!(&outer[20..], &tcp(sa(CLIENT4, 1), sa(VIP4, 80), SYN, b"", IpOpts { ttl: 63, ..IpOpts::default() })[..]);
}

#[test]
fn too_big_for_the_tunnel_is_answered_to_the_client() {
    // IPv4: 1490 + 20 > 1500, DF set: fragmentation needed announcing 1500 - 20.
    let mut lab = tun_lab(config(), VIP4.into(), rs4(1).into(), IPIP);
    let big = tcp(sa(CLIENT4, 40000), sa(VIP4, 80), SYN, &[1u8; 1450], IpOpts::default());
    assert_eq!(big.len(), 1490);
    let (ifindex, out) = lab.one(from_router(&big));
    assert_eq!(ifindex, IF_CLIENTS);
    assert_eq!(out[..6], MAC_ROUTER);
    let ip = ip_of(&out);
    assert_checksums(ip);
    assert_eq!(ip[12..16], VIP4.octets());
    assert_eq!(ip[16..20], CLIENT4.octets());
    assert_eq!(ip[20..22], [3, 4]);
    assert_eq!(ip[26..28], 1480u16.to_be_bytes());
    assert_eq!(&ip[28..], &big[..ip.len() - 28], "quotes the start of the client's packet");
    assert!(ip.len() <= 576);

    // IPv6: 1480 + 40 > 1500: packet too big announcing 1460.
    let mut lab = tun_lab(config(), VIP6.into(), rs6(1).into(), IPIP);
    let big = tcp(sa(CLIENT6, 40000), sa(VIP6, 80), SYN, &[1u8; 1420], IpOpts::default());
    assert_eq!(big.len(), 1480);
    let (_, out) = lab.one(from_router(&big));
    let ip = ip_of(&out);
    assert_checksums(ip);
    assert_eq!(ip[6], 58);
    assert_eq!(ip[8..24], VIP6.octets());
    assert_eq!(ip[24..40], CLIENT6.octets());
    assert_eq!(ip[40..42], [2, 0], "packet too big");
    assert_eq!(ip[44..48], 1460u32.to_be_bytes());
    assert_eq!(&ip[48..], &big[..ip.len() - 48]);
    assert!(ip.len() <= 1280);
    assert_eq!(lab.pipeline.counters().replies.too_big, 1);

    // One byte less fits exactly.
    let mut lab = tun_lab(config(), VIP4.into(), rs4(1).into(), IPIP);
    let fits = tcp(sa(CLIENT4, 40000), sa(VIP4, 80), SYN, &[1u8; 1440], IpOpts::default());
    let (_, out) = lab.one(from_router(&fits));
    assert_eq!(ip_of(&out).len(), 1500);
}

#[test]
fn too_big_without_pmtu_disc_or_df_is_dropped() {
    let big_df = tcp(sa(CLIENT4, 40000), sa(VIP4, 80), SYN, &[1u8; 1450], IpOpts::default());
    let big_no_df = tcp(sa(CLIENT4, 40001), sa(VIP4, 80), SYN, &[1u8; 1450], IpOpts { df: false, ..IpOpts::default() });
    let mut cfg = config();
    cfg.pmtu_disc = false;
    let mut lab = tun_lab(cfg, VIP4.into(), rs4(1).into(), IPIP);
    assert!(lab.run(&[from_router(&big_df), from_router(&big_no_df)]).is_empty());
    assert_eq!(lab.pipeline.counters().drops.needs_fragmentation, 2);
}

#[test]
fn gue_gre_and_missing_source_are_dropped_and_counted() {
    let gue =
        ForwardMethod::Tunnel(TunnelConfig { kind: TunnelType::Gue { port: 6080 }, checksum: TunnelChecksum::None });
    let mut lab = tun_lab(config(), VIP4.into(), rs4(1).into(), gue);
    assert!(lab.run(&[from_router(&tcp(sa(CLIENT4, 1), sa(VIP4, 80), SYN, b"", IpOpts::default()))]).is_empty());
    assert_eq!(lab.pipeline.counters().drops.unsupported_tunnel, 1);

    let cfg = PipelineConfig { source_v4: None, ..config() };
    let mut lab = tun_lab(cfg, VIP4.into(), rs4(1).into(), IPIP);
    assert!(lab.run(&[from_router(&tcp(sa(CLIENT4, 1), sa(VIP4, 80), SYN, b"", IpOpts::default()))]).is_empty());
    assert_eq!(lab.pipeline.counters().drops.no_tunnel_source, 1);
}
