//! Bad input through the pipeline: malformed frames are counted under rvs-packet's parse
//! error reasons and left alone, and no byte sequence (random, or a valid frame mutated or
//! cut short) makes the pipeline panic or lose count of a frame.

mod pipeline_support;

use pipeline_support::*;
use proptest::prelude::*;
use rvs_core::service::Protocol;
use rvs_core::{ForwardMethod, SchedulerKind, TunnelConfig};
use rvs_packet::ParseError;

/// Services on every path: NAT on :80, DR on :81, TUN on :82, UDP NAT on :53, IPv6 NAT on :80.
fn busy_lab() -> Lab {
    let mut cfg = config();
    cfg.nat_icmp_send = true;
    let lab = Lab::new(cfg);
    let nat = lab.service(Protocol::Tcp, VIP4.into(), 80, SchedulerKind::Rr, false);
    lab.dest(&nat, rs4(1).into(), 8080, ForwardMethod::Masquerade);
    let dr = lab.service(Protocol::Tcp, VIP4.into(), 81, SchedulerKind::Rr, true);
    lab.dest(&dr, rs4(2).into(), 81, ForwardMethod::DirectRoute);
    let tun = lab.service(Protocol::Tcp, VIP4.into(), 82, SchedulerKind::Rr, false);
    lab.dest(&tun, rs6(3).into(), 82, ForwardMethod::Tunnel(TunnelConfig::IPIP));
    let udp_nat = lab.service(Protocol::Udp, VIP4.into(), 53, SchedulerKind::Rr, false);
    lab.dest(&udp_nat, rs4(1).into(), 8053, ForwardMethod::Masquerade);
    let v6 = lab.service(Protocol::Tcp, VIP6.into(), 80, SchedulerKind::Rr, false);
    lab.dest(&v6, rs6(1).into(), 8080, ForwardMethod::Masquerade);
    lab
}

/// Valid frames reaching every path, the seeds for mutation.
fn seeds() -> Vec<Vec<u8>> {
    let o = IpOpts::default();
    vec![
        from_router(&tcp(sa(CLIENT4, 1000), sa(VIP4, 80), SYN, b"", o)),
        from_router(&tcp(sa(CLIENT4, 1000), sa(VIP4, 81), SYN, b"x", o)),
        from_router(&tcp(sa(CLIENT4, 1000), sa(VIP4, 82), SYN, b"yy", o)),
        from_router(&udp(sa(CLIENT4, 1000), sa(VIP4, 53), b"q", o)),
        from_router(&tcp(sa(CLIENT6, 1000), sa(VIP6, 80), SYN, b"", o)),
        from_rs(1, &tcp(sa(rs4(1), 8080), sa(CLIENT4, 1000), SYN_ACK, b"", o)),
        from_rs(1, &tcp(sa(rs4(1), 8080), sa(CLIENT4, 1001), ACK, b"", o)),
        from_router(&icmp_error(
            ROUTER4.into(),
            VIP4.into(),
            3,
            1,
            0,
            &tcp(sa(VIP4, 80), sa(CLIENT4, 1000), SYN_ACK, b"", o),
            o,
        )),
        from_rs(
            1,
            &icmp_error(
                rs4(1).into(),
                CLIENT4.into(),
                3,
                3,
                0,
                &tcp(sa(CLIENT4, 1000), sa(rs4(1), 8080), SYN, b"", o),
                o,
            ),
        ),
    ]
}

#[test]
fn malformed_frames_are_counted_by_reason() {
    let mut lab = busy_lab();
    let syn = from_router(&tcp(sa(CLIENT4, 1000), sa(VIP4, 80), SYN, b"", IpOpts::default()));
    let mut fragment = syn.clone();
    fragment[14 + 6] = 0x20; // MF set, DF cleared
    fragment[14 + 10..14 + 12].copy_from_slice(&[0, 0]);
    let sum = checksum(&fragment[14..34], 0);
    fragment[14 + 10..14 + 12].copy_from_slice(&sum.to_be_bytes());
    let mut bad_sum = syn.clone();
    bad_sum[14 + 10] ^= 0xff;
    let mut ipx = syn.clone();
    ipx[12..14].copy_from_slice(&[0x81, 0x37]);
    let frames = vec![syn[..10].to_vec(), syn[..40].to_vec(), fragment, bad_sum, ipx, Vec::new()];
    assert!(lab.run(&frames).is_empty());
    let c = lab.pipeline.counters();
    assert_eq!(c.parse_errors.get(ParseError::Truncated), 3, "short Ethernet header, short IP packet, empty frame");
    assert_eq!(c.parse_errors.get(ParseError::Fragment), 1);
    assert_eq!(c.parse_errors.get(ParseError::BadIpv4Checksum), 1);
    assert_eq!(c.parse_errors.get(ParseError::UnsupportedEtherType), 1);
    assert_eq!(c.passed.unparsed, 6);
    assert_eq!(c.parse_errors.total(), 6);
    lab.assert_accounted();
}

fn check_outputs(lab: &Lab, out: &[(u32, Vec<u8>)]) {
    lab.assert_accounted();
    for (ifindex, f) in out {
        assert!(*ifindex == IF_CLIENTS || *ifindex == IF_SERVERS);
        assert!(f.len() >= 14);
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 1..40)) {
        let mut lab = busy_lab();
        let out = lab.run(&frames);
        check_outputs(&lab, &out);
        prop_assert_eq!(lab.pipeline.counters().rx, frames.len() as u64);
    }

    #[test]
    fn mutated_valid_frames_never_panic(
        picks in proptest::collection::vec(
            (0usize..9, proptest::collection::vec((0usize..120, any::<u8>()), 0..4), 0usize..160),
            1..40,
        )
    ) {
        let seeds = seeds();
        let frames: Vec<Vec<u8>> = picks
            .iter()
            .map(|(which, flips, cut)| {
                let mut f = seeds[*which % seeds.len()].clone();
                for &(at, byte) in flips {
                    if let Some(b) = f.get_mut(at) {
                        *b = byte;
                    }
                }
                f.truncate((*cut).max(1));
                f
            })
            .collect();
        let mut lab = busy_lab();
        let out = lab.run(&frames);
        check_outputs(&lab, &out);
        prop_assert_eq!(lab.pipeline.counters().rx, frames.len() as u64);
    }
}

#[test]
fn unmutated_seeds_reach_their_paths() {
    let mut lab = busy_lab();
    let out = lab.run(&seeds());
    check_outputs(&lab, &out);
    let c = lab.pipeline.counters();
    assert_eq!(c.forwarded.masquerade, 3, "TCP, UDP, IPv6 TCP");
    assert_eq!(c.forwarded.direct_route, 1);
    assert_eq!(c.forwarded.tunnel, 1);
    assert_eq!(c.forwarded.nat_replies, 1, "the SYN-ACK of the first connection");
    assert_eq!(c.replies.nat_unreachable, 1, "the ACK of a connection that does not exist");
    assert_eq!(c.forwarded.icmp_to_real_server, 1);
    assert_eq!(c.forwarded.icmp_to_client, 1);
    assert_eq!(out.len(), 9);
}
