//! Every frame in the keepalived captures parses to the values its comment states, and building
//! from those values reproduces the frame byte for byte.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use rvs_ha::vrrp::frame::{IpFields, dst_mac, ethernet_frame, ip_packet, parse_ethernet};
use rvs_ha::vrrp::packet::{Advert, ChecksumKind, V2Auth, Version, VrrpView};
use rvs_ha::vrrp::rx::{ChecksumPolicy, Receiver, RxPolicy};
use rvs_ha::wire::MacAddr;

const D1_MAC: MacAddr = MacAddr([0x4a, 0x89, 0x60, 0x77, 0x9e, 0x3a]);
const D2_MAC: MacAddr = MacAddr([0x5a, 0x80, 0x98, 0x49, 0x28, 0x1d]);

/// One captured advert as its comment describes it, plus the header fields the sender's kernel
/// chose (IPv4 id, IPv6 flow label), read off the hex.
struct Expected {
    src_mac: MacAddr,
    peer_mac: MacAddr,
    src: &'static str,
    dst: &'static str,
    version: Version,
    vrid: u8,
    priority: u8,
    interval_cs: u16,
    auth: V2Auth,
    vip: &'static str,
    fields: IpFields,
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn v4(id: u16) -> IpFields {
    IpFields { ipv4_id: id, ipv6_flow_label: 0 }
}

fn check(frame: &[u8], e: &Expected) {
    let (eth, meta, payload) = parse_ethernet(frame).expect("frame parses");
    assert_eq!(eth.src, e.src_mac);
    assert_eq!((meta.src, meta.dst, meta.ttl), (ip(e.src), ip(e.dst), 255));
    let view = VrrpView::parse(payload, rvs_ha::vrrp::packet::Family::of(meta.src)).expect("vrrp parses");
    assert!(view.trailing().is_empty());
    let advert = view.to_advert();
    let want = Advert {
        version: e.version,
        vrid: e.vrid,
        priority: e.priority,
        interval_cs: e.interval_cs,
        auth: e.auth,
        addrs: vec![ip(e.vip)],
    };
    assert_eq!(advert, want);
    assert!(view.checksum_ok(ChecksumKind::PseudoHeader, meta.src, meta.dst), "checksum verifies");

    // The full receive path accepts it too (v2 interval must match, so use the advert's).
    let mut policy = RxPolicy::new(e.version, view.family(), e.vrid, e.interval_cs);
    policy.v2_auth = e.auth;
    policy.expected_addr_count = Some(1);
    let accepted = Receiver::new(policy).accept(&meta, payload).expect("accepted");
    assert_eq!(accepted.advert, want);

    // Rebuild: encode, wrap in IP and Ethernet.
    let vrrp = want.encode(meta.src, meta.dst, ChecksumKind::PseudoHeader).expect("encodes");
    assert_eq!(vrrp, payload);
    let packet = ip_packet(&vrrp, meta.src, meta.dst, e.fields);
    let rebuilt = ethernet_frame(e.src_mac, dst_mac(meta.dst, e.peer_mac), &packet, meta.src.is_ipv6());
    assert_eq!(rebuilt, frame);
}

#[test]
fn vrrp_v2_captures() {
    let frames = common::frames(include_str!("data/vrrp_v2.hex"));
    let pass = V2Auth::password(b"kxsecret");
    let base = |src_mac, peer_mac, src, dst, priority, auth, id| Expected {
        src_mac,
        peer_mac,
        src,
        dst,
        version: Version::V2,
        vrid: 51,
        priority,
        interval_cs: 100,
        auth,
        vip: "198.18.0.100",
        fields: v4(id),
    };
    let expected = [
        base(D1_MAC, D2_MAC, "198.18.0.1", "224.0.0.18", 150, V2Auth::None, 1),
        base(D2_MAC, D1_MAC, "198.18.0.2", "224.0.0.18", 100, V2Auth::None, 1),
        base(D1_MAC, D2_MAC, "198.18.0.1", "198.18.0.2", 150, pass, 1),
        base(D2_MAC, D1_MAC, "198.18.0.2", "198.18.0.1", 100, pass, 1),
        base(D1_MAC, D2_MAC, "198.18.0.1", "198.18.0.2", 0, pass, 6),
    ];
    assert_eq!(frames.len(), expected.len());
    for (f, e) in frames.iter().zip(&expected) {
        check(f, e);
    }
}

#[test]
fn vrrp_v3_captures() {
    let frames = common::frames(include_str!("data/vrrp_v3.hex"));
    let base = |src_mac, peer_mac, src, dst, vrid, priority, interval_cs, vip, fields| Expected {
        src_mac,
        peer_mac,
        src,
        dst,
        version: Version::V3,
        vrid,
        priority,
        interval_cs,
        auth: V2Auth::None,
        vip,
        fields,
    };
    let v6 = |flow| IpFields { ipv4_id: 0, ipv6_flow_label: flow };
    let vip4 = "198.18.0.100";
    let expected = [
        base(D1_MAC, D2_MAC, "198.18.0.1", "224.0.0.18", 51, 150, 100, vip4, v4(1)),
        base(D2_MAC, D1_MAC, "198.18.0.2", "224.0.0.18", 51, 100, 100, vip4, v4(1)),
        base(D1_MAC, D2_MAC, "198.18.0.1", "224.0.0.18", 51, 150, 10, vip4, v4(1)),
        base(D2_MAC, D1_MAC, "198.18.0.2", "224.0.0.18", 51, 100, 10, vip4, v4(1)),
        base(D1_MAC, D2_MAC, "198.18.0.1", "198.18.0.2", 51, 150, 10, vip4, v4(1)),
        base(D1_MAC, D2_MAC, "198.18.0.1", "198.18.0.2", 51, 0, 10, vip4, v4(0x2b)),
        base(D1_MAC, D2_MAC, "fe80::4889:60ff:fe77:9e3a", "ff02::12", 52, 150, 10, "fd00::100", v6(0xb7ab4)),
        base(D2_MAC, D1_MAC, "fe80::5880:98ff:fe49:281d", "ff02::12", 52, 100, 10, "fd00::100", v6(0x2e4b2)),
    ];
    assert_eq!(frames.len(), expected.len());
    for (f, e) in frames.iter().zip(&expected) {
        check(f, e);
    }
}

#[test]
fn v3_checksum_as_v2_variant_is_configurable() {
    // Re-encode capture (A) of v3 with the message-only checksum: an RFC receiver refuses it,
    // an AsV2 or Either receiver accepts it; the RFC form is refused by AsV2.
    let frames = common::frames(include_str!("data/vrrp_v3.hex"));
    let (_, meta, payload) = parse_ethernet(&frames[0]).expect("frame");
    let advert = VrrpView::parse(payload, rvs_ha::vrrp::packet::Family::V4).expect("view").to_advert();
    let as_v2 = advert.encode(meta.src, meta.dst, ChecksumKind::MessageOnly).expect("encodes");
    assert_ne!(as_v2, payload);
    let policy = |c| {
        let mut p = RxPolicy::new(Version::V3, rvs_ha::vrrp::packet::Family::V4, 51, 100);
        p.v3_checksum = c;
        Receiver::new(p)
    };
    use rvs_ha::vrrp::rx::DropReason::BadChecksum;
    assert_eq!(policy(ChecksumPolicy::Rfc).accept(&meta, &as_v2).err(), Some(BadChecksum));
    assert!(policy(ChecksumPolicy::AsV2).accept(&meta, &as_v2).is_ok());
    assert!(policy(ChecksumPolicy::Either).accept(&meta, &as_v2).is_ok());
    assert!(policy(ChecksumPolicy::Either).accept(&meta, payload).is_ok());
    assert_eq!(policy(ChecksumPolicy::AsV2).accept(&meta, payload).err(), Some(BadChecksum));
}

#[test]
fn garp_and_na_captures() {
    use rvs_ha::garp::{ArpForm, gratuitous_arp, unsolicited_na};
    let frames = common::frames(include_str!("data/garp_na.hex"));
    assert_eq!(frames.len(), 2);
    // IPv4: request form, sender = target = 198.18.0.100, from d2's MAC.
    assert_eq!(gratuitous_arp(Ipv4Addr::new(198, 18, 0, 100), D2_MAC, ArpForm::Request), frames[0]);
    // IPv6: NA for fd00::100 from d2's MAC, Override only (no Router flag).
    assert_eq!(unsolicited_na("fd00::100".parse().expect("v6"), D2_MAC, false), frames[1]);
}
