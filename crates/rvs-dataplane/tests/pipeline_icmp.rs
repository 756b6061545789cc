//! ICMP through the pipeline: errors quoting a connection are translated like IPVS's
//! ip_vs_in_icmp / ip_vs_out_icmp (expected frames built from scratch), and the errors the
//! director sends itself (port unreachable when no real server is available, too big).

mod pipeline_support;

use pipeline_support::*;
use rvs_core::service::Protocol;
use rvs_core::{ForwardMethod, SchedulerKind};

fn ttl(t: u8) -> IpOpts {
    IpOpts { ttl: t, ..IpOpts::default() }
}

/// A router near the client cannot deliver the NAT reply (VIP -> client): the error comes to
/// the VIP and must reach the real server as if about the packet it sent itself.
#[test]
fn nat_error_from_the_client_side_goes_to_the_real_server_v4() {
    let mut lab = Lab::new(config());
    let key = lab.service(Protocol::Tcp, VIP4.into(), 80, SchedulerKind::Rr, false);
    lab.dest(&key, rs4(1).into(), 8080, ForwardMethod::Masquerade);
    lab.one(from_router(&tcp(sa(CLIENT4, 40000), sa(VIP4, 80), SYN, b"", ttl(64))));

    let sent_reply = tcp(sa(VIP4, 80), sa(CLIENT4, 40000), SYN_ACK, b"", ttl(63));
    let error = icmp_error(ROUTER4.into(), VIP4.into(), 3, 1, 0, &sent_reply, ttl(64));
    let (ifindex, out) = lab.one(from_router(&error));
    assert_eq!(ifindex, IF_SERVERS);
    let rs_reply = tcp(sa(rs4(1), 8080), sa(CLIENT4, 40000), SYN_ACK, b"", ttl(63));
    let want =
        eth(mac_rs(1), MAC_DIRECTOR_OUT, &icmp_error(ROUTER4.into(), rs4(1).into(), 3, 1, 0, &rs_reply, ttl(63)));
    assert_eq!(out, want, "outer destination and quoted source are the real server's; all checksums right");
    assert_checksums(ip_of(&out));
    assert_eq!(lab.pipeline.counters().forwarded.icmp_to_real_server, 1);
}

#[test]
fn nat_error_from_the_client_side_goes_to_the_real_server_v6() {
    let mut lab = Lab::new(config());
    let key = lab.service(Protocol::Tcp, VIP6.into(), 80, SchedulerKind::Rr, false);
    lab.dest(&key, rs6(1).into(), 8080, ForwardMethod::Masquerade);
    lab.one(from_router(&tcp(sa(CLIENT6, 40000), sa(VIP6, 80), SYN, b"", ttl(64))));

    let sent_reply = tcp(sa(VIP6, 80), sa(CLIENT6, 40000), SYN_ACK, b"", ttl(63));
    let error = icmp_error(ROUTER6.into(), VIP6.into(), 1, 3, 0, &sent_reply, ttl(64));
    let (_, out) = lab.one(from_router(&error));
    let rs_reply = tcp(sa(rs6(1), 8080), sa(CLIENT6, 40000), SYN_ACK, b"", ttl(63));
    let want =
        eth(mac_rs(1), MAC_DIRECTOR_OUT, &icmp_error(ROUTER6.into(), rs6(1).into(), 1, 3, 0, &rs_reply, ttl(63)));
    assert_eq!(out, want);
}

/// The real server refuses the client's datagram: the error goes to the client as if the
/// virtual address refused it.
#[test]
fn nat_error_from_the_real_server_goes_to_the_client() {
    let mut lab = Lab::new(config());
    let key = lab.service(Protocol::Udp, VIP4.into(), 53, SchedulerKind::Rr, false);
    lab.dest(&key, rs4(2).into(), 8080, ForwardMethod::Masquerade);
    lab.one(from_router(&udp(sa(CLIENT4, 5353), sa(VIP4, 53), b"query", ttl(64))));

    let received = udp(sa(CLIENT4, 5353), sa(rs4(2), 8080), b"query", ttl(63));
    let error = icmp_error(rs4(2).into(), CLIENT4.into(), 3, 3, 0, &received, ttl(64));
    let (ifindex, out) = lab.one(from_rs(2, &error));
    assert_eq!(ifindex, IF_CLIENTS);
    let as_sent = udp(sa(CLIENT4, 5353), sa(VIP4, 53), b"query", ttl(63));
    let want = eth(MAC_ROUTER, MAC_DIRECTOR_IN, &icmp_error(VIP4.into(), CLIENT4.into(), 3, 3, 0, &as_sent, ttl(63)));
    assert_eq!(out, want, "outer source and quoted destination are the virtual address's");
    assert_eq!(lab.pipeline.counters().forwarded.icmp_to_client, 1);
}

#[test]
fn dr_error_goes_to_the_real_server_unchanged_and_unknown_errors_are_passed() {
    let mut lab = Lab::new(config());
    let key = lab.service(Protocol::Tcp, VIP4.into(), 80, SchedulerKind::Rr, false);
    lab.dest(&key, rs4(3).into(), 80, ForwardMethod::DirectRoute);
    lab.one(from_router(&tcp(sa(CLIENT4, 40000), sa(VIP4, 80), SYN, b"", ttl(64))));

    let rs_sent = tcp(sa(VIP4, 80), sa(CLIENT4, 40000), SYN_ACK, &[0u8; 1400], ttl(60));
    let error = from_router(&icmp_error(ROUTER4.into(), VIP4.into(), 3, 4, 1300, &rs_sent[..28], ttl(64)));
    let (_, out) = lab.one(error.clone());
    assert_eq!(out, with_macs(&error, mac_rs(3), MAC_DIRECTOR_OUT));

    let unknown = tcp(sa(VIP4, 80), sa(CLIENT4, 40001), SYN_ACK, b"", ttl(60));
    let error = from_router(&icmp_error(ROUTER4.into(), VIP4.into(), 3, 1, 0, &unknown, ttl(64)));
    assert!(lab.run(&[error]).is_empty());
    assert_eq!(lab.pipeline.counters().passed.not_ours, 1);
}

/// No available real server (the only one has weight 0): ICMP port unreachable from the
/// virtual address, for TCP too (IPVS cannot send a RST).
#[test]
fn no_real_server_is_answered_with_port_unreachable() {
    let mut lab = Lab::new(config());
    let key4 = lab.service(Protocol::Tcp, VIP4.into(), 80, SchedulerKind::Wlc, false);
    let key6 = lab.service(Protocol::Udp, VIP6.into(), 53, SchedulerKind::Wlc, false);
    for (key, rs) in [(key4, rs4(1).into()), (key6, rs6(1).into())] {
        let mut d = rvs_core::DestConfig::new(rs, 80);
        d.weight = 0;
        lab.engine.lock().unwrap().add_dest(&key, d).unwrap();
    }

    let syn = tcp(sa(CLIENT4, 40000), sa(VIP4, 80), SYN, b"", ttl(64));
    let (ifindex, out) = lab.one(from_router(&syn));
    assert_eq!(ifindex, IF_CLIENTS);
    let ip = ip_of(&out);
    assert_checksums(ip);
    assert_eq!(ip[12..16], VIP4.octets());
    assert_eq!(ip[16..20], CLIENT4.octets());
    assert_eq!(ip[20..22], [3, 3]);
    assert_eq!(&ip[28..], &syn[..]);

    let query = udp(sa(CLIENT6, 5353), sa(VIP6, 53), b"q", ttl(64));
    let (_, out) = lab.one(from_router(&query));
    let ip = ip_of(&out);
    assert_checksums(ip);
    assert_eq!(ip[8..24], VIP6.octets());
    assert_eq!(ip[24..40], CLIENT6.octets());
    assert_eq!(ip[40..42], [1, 4], "ICMPv6 port unreachable");
    assert_eq!(&ip[48..], &query[..]);
    assert_eq!(lab.pipeline.counters().replies.port_unreachable, 2);
}

#[test]
fn dr_over_the_mtu_gets_frag_needed_from_the_virtual_address() {
    let mut lab = Lab::new(config());
    let key = lab.service(Protocol::Tcp, VIP4.into(), 80, SchedulerKind::Rr, false);
    lab.dest(&key, rs4(1).into(), 80, ForwardMethod::DirectRoute);
    lab.nexthops.hosts.insert(rs4(1).into(), hop(IF_SERVERS, MAC_DIRECTOR_OUT, mac_rs(1), 1000));
    let big = tcp(sa(CLIENT4, 40000), sa(VIP4, 80), SYN, &[9u8; 1000], ttl(64));
    let (ifindex, out) = lab.one(from_router(&big));
    assert_eq!(ifindex, IF_CLIENTS);
    let ip = ip_of(&out);
    assert_checksums(ip);
    assert_eq!(ip[12..16], VIP4.octets());
    assert_eq!(ip[20..22], [3, 4]);
    assert_eq!(ip[26..28], 1000u16.to_be_bytes());
}
