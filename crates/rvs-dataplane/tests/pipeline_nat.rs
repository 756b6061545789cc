//! NAT through the pipeline: client packets leave with the real server's address and port
//! and one TTL less, replies leave with the virtual address and port; every expected frame
//! is built from scratch (full checksums), so equality checks the incremental updates.
//! Also TTL expiry, MTU, and nat_icmp_send.

mod pipeline_support;

use std::net::IpAddr;

use pipeline_support::*;
use rvs_core::service::Protocol;
use rvs_core::{ForwardMethod, SchedulerKind};

fn nat_lab(config: rvs_dataplane::pipeline::PipelineConfig, protocol: Protocol, vip: IpAddr, rs: IpAddr) -> Lab {
    let lab = Lab::new(config);
    let port = if protocol == Protocol::Udp { 53 } else { 80 };
    let key = lab.service(protocol, vip, port, SchedulerKind::Rr, false);
    lab.dest(&key, rs, 8080, ForwardMethod::Masquerade);
    lab
}

fn ttl(t: u8) -> IpOpts {
    IpOpts { ttl: t, ..IpOpts::default() }
}

#[test]
fn nat_v4_tcp_in_and_out() {
    let mut lab = nat_lab(config(), Protocol::Tcp, VIP4.into(), rs4(1).into());
    let syn = from_router(&tcp(sa(CLIENT4, 40000), sa(VIP4, 80), SYN, b"", ttl(64)));
    let (ifindex, out) = lab.one(syn);
    assert_eq!(ifindex, IF_SERVERS);
    let want = eth(mac_rs(1), MAC_DIRECTOR_OUT, &tcp(sa(CLIENT4, 40000), sa(rs4(1), 8080), SYN, b"", ttl(63)));
    assert_eq!(out, want, "destination rewritten to the real server, TTL 63");
    assert_checksums(ip_of(&out));

    // The real server's SYN-ACK (odd payload length to exercise the checksum's odd byte).
    let reply = from_rs(1, &tcp(sa(rs4(1), 8080), sa(CLIENT4, 40000), SYN_ACK, b"hello", ttl(64)));
    let (ifindex, out) = lab.one(reply);
    assert_eq!(ifindex, IF_CLIENTS);
    let want = eth(MAC_ROUTER, MAC_DIRECTOR_IN, &tcp(sa(VIP4, 80), sa(CLIENT4, 40000), SYN_ACK, b"hello", ttl(63)));
    assert_eq!(out, want, "source rewritten to the virtual address");
    assert_checksums(ip_of(&out));

    let c = lab.pipeline.counters();
    assert_eq!((c.forwarded.masquerade, c.forwarded.nat_replies), (1, 1));
}

#[test]
fn nat_v6_tcp_in_and_out() {
    let mut lab = nat_lab(config(), Protocol::Tcp, VIP6.into(), rs6(3).into());
    let (_, out) = lab.one(from_router(&tcp(sa(CLIENT6, 40000), sa(VIP6, 80), SYN, b"abc", ttl(5))));
    assert_eq!(out, eth(mac_rs(3), MAC_DIRECTOR_OUT, &tcp(sa(CLIENT6, 40000), sa(rs6(3), 8080), SYN, b"abc", ttl(4))));
    let (_, out) = lab.one(from_rs(3, &tcp(sa(rs6(3), 8080), sa(CLIENT6, 40000), SYN_ACK, b"", ttl(64))));
    assert_eq!(out, eth(MAC_ROUTER, MAC_DIRECTOR_IN, &tcp(sa(VIP6, 80), sa(CLIENT6, 40000), SYN_ACK, b"", ttl(63))));
    assert_checksums(ip_of(&out));
}

#[test]
fn nat_udp_v4_and_v6() {
    for (vip, rs, client) in [
        (IpAddr::from(VIP4), IpAddr::from(rs4(2)), IpAddr::from(CLIENT4)),
        (VIP6.into(), rs6(2).into(), CLIENT6.into()),
    ] {
        let mut lab = nat_lab(config(), Protocol::Udp, vip, rs);
        let (_, out) = lab.one(from_router(&udp(sa(client, 5353), sa(vip, 53), b"query", ttl(64))));
        assert_eq!(out, eth(mac_rs(2), MAC_DIRECTOR_OUT, &udp(sa(client, 5353), sa(rs, 8080), b"query", ttl(63))));
        let (_, out) = lab.one(from_rs(2, &udp(sa(rs, 8080), sa(client, 5353), b"answer!", ttl(64))));
        assert_eq!(out, eth(MAC_ROUTER, MAC_DIRECTOR_IN, &udp(sa(vip, 53), sa(client, 5353), b"answer!", ttl(63))));
    }
}

#[test]
fn ttl_running_out_is_answered_with_time_exceeded() {
    let mut lab = nat_lab(config(), Protocol::Tcp, VIP4.into(), rs4(1).into());
    let syn_ip = tcp(sa(CLIENT4, 40000), sa(VIP4, 80), SYN, b"", ttl(1));
    let (ifindex, out) = lab.one(from_router(&syn_ip));
    assert_eq!(ifindex, IF_CLIENTS);
    assert_eq!(out[..12], [MAC_ROUTER, MAC_DIRECTOR_IN].concat());
    let ip = ip_of(&out);
    assert_checksums(ip);
    assert_eq!(ip[9], 1, "ICMP");
    assert_eq!(ip[12..16], VIP4.octets(), "from the virtual address the client sent to");
    assert_eq!(ip[16..20], CLIENT4.octets());
    assert_eq!(ip[20..22], [11, 0], "time exceeded in transit");
    assert_eq!(&ip[28..], &syn_ip[..], "the whole (short) packet is quoted, unchanged");
    assert_eq!(lab.pipeline.counters().replies.time_exceeded, 1);

    // Without time-exceeded replies it is only dropped.
    let mut cfg = config();
    cfg.send_time_exceeded = false;
    let mut lab = nat_lab(cfg, Protocol::Tcp, VIP4.into(), rs4(1).into());
    assert!(lab.run(&[from_router(&syn_ip)]).is_empty());
    assert_eq!(lab.pipeline.counters().drops.ttl_expired, 1);
}

#[test]
fn ttl_kept_when_nat_decrement_is_off() {
    let mut cfg = config();
    cfg.decrement_ttl_nat = false;
    let mut lab = nat_lab(cfg, Protocol::Tcp, VIP4.into(), rs4(1).into());
    let (_, out) = lab.one(from_router(&tcp(sa(CLIENT4, 40000), sa(VIP4, 80), SYN, b"", ttl(1))));
    assert_eq!(out, eth(mac_rs(1), MAC_DIRECTOR_OUT, &tcp(sa(CLIENT4, 40000), sa(rs4(1), 8080), SYN, b"", ttl(1))));
}

#[test]
fn nat_reply_over_the_mtu_gets_frag_needed_from_the_director() {
    let mut lab = nat_lab(config(), Protocol::Tcp, VIP4.into(), rs4(1).into());
    lab.one(from_router(&tcp(sa(CLIENT4, 40000), sa(VIP4, 80), SYN, b"", ttl(64))));
    // The client side only takes 1000 bytes.
    lab.nexthops.default_v4 = Some(hop(IF_CLIENTS, MAC_DIRECTOR_IN, MAC_ROUTER, 1000));
    let big = tcp(sa(rs4(1), 8080), sa(CLIENT4, 40000), ACK, &[7u8; 1100], ttl(64));
    let (ifindex, out) = lab.one(from_rs(1, &big));
    assert_eq!(ifindex, IF_SERVERS, "back to the real server");
    assert_eq!(out[..6], mac_rs(1));
    let ip = ip_of(&out);
    assert_checksums(ip);
    assert_eq!(ip[12..16], DIRECTOR4.octets(), "from the director's own address");
    assert_eq!(ip[16..20], rs4(1).octets());
    assert_eq!(ip[20..22], [3, 4], "fragmentation needed");
    assert_eq!(ip[26..28], 1000u16.to_be_bytes(), "next-hop MTU");
    assert_eq!(&ip[28..48], &big[..20], "quotes the offending header");
    assert_eq!(lab.pipeline.counters().replies.too_big, 1);

    // Without DF the packet would need fragmenting, which rvs does not do.
    let no_df = tcp(sa(rs4(1), 8080), sa(CLIENT4, 40000), ACK, &[7u8; 1100], IpOpts { df: false, ..ttl(64) });
    assert!(lab.run(&[from_rs(1, &no_df)]).is_empty());
    assert_eq!(lab.pipeline.counters().drops.needs_fragmentation, 1);
}

#[test]
fn nat_icmp_send_answers_real_server_packets_without_connection() {
    let orphan = from_rs(1, &tcp(sa(rs4(1), 8080), sa(CLIENT4, 41000), ACK, b"late", ttl(64)));
    let orphan_rst = from_rs(1, &tcp(sa(rs4(1), 8080), sa(CLIENT4, 41000), RST, b"", ttl(64)));
    let other_port = from_rs(1, &tcp(sa(rs4(1), 22), sa(CLIENT4, 41000), ACK, b"", ttl(64)));

    // Off (the default): left to the kernel.
    let mut lab = nat_lab(config(), Protocol::Tcp, VIP4.into(), rs4(1).into());
    assert!(lab.run(std::slice::from_ref(&orphan)).is_empty());
    assert_eq!(lab.pipeline.counters().passed.not_ours, 1);

    let mut cfg = config();
    cfg.nat_icmp_send = true;
    let mut lab = nat_lab(cfg, Protocol::Tcp, VIP4.into(), rs4(1).into());
    let (ifindex, out) = lab.one(orphan.clone());
    assert_eq!(ifindex, IF_SERVERS);
    let ip = ip_of(&out);
    assert_checksums(ip);
    assert_eq!(ip[12..16], DIRECTOR4.octets());
    assert_eq!(ip[16..20], rs4(1).octets());
    assert_eq!(ip[20..22], [3, 3], "port unreachable");
    assert_eq!(&ip[28..], ip_of(&orphan), "quotes the orphan packet");
    // A RST, and traffic from a port that is not a real server's, stay the kernel's.
    assert!(lab.run(&[orphan_rst, other_port]).is_empty());
    let c = lab.pipeline.counters();
    assert_eq!((c.replies.nat_unreachable, c.passed.not_ours), (1, 2));
}
