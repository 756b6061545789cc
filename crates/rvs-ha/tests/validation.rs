//! Receive validation: one test per drop reason, and the rvs HMAC trailer on adverts.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use rvs_ha::auth::{AuthContext, AuthMode, Domain, Freshness, KeyRing, Signer};
use rvs_ha::vrrp::frame::parse_ethernet;
use rvs_ha::vrrp::packet::{Advert, ChecksumKind, Family, V2Auth, VRRP_GROUP_V4, Version, VrrpView};
use rvs_ha::vrrp::rx::{DropReason, Receiver, RxMeta, RxPolicy};

fn src() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2))
}

fn meta() -> RxMeta {
    RxMeta { src: src(), dst: IpAddr::V4(VRRP_GROUP_V4), ttl: 255, now_unix_us: None }
}

fn advert(version: Version, interval_cs: u16) -> Advert {
    Advert {
        version,
        vrid: 51,
        priority: 100,
        interval_cs,
        auth: V2Auth::None,
        addrs: vec![IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100))],
    }
}

fn encode(a: &Advert) -> Vec<u8> {
    a.encode(meta().src, meta().dst, ChecksumKind::PseudoHeader).expect("encodes")
}

fn v3_receiver() -> Receiver {
    Receiver::new(RxPolicy::new(Version::V3, Family::V4, 51, 100))
}

#[test]
fn structural_drops() {
    let good = encode(&advert(Version::V3, 100));
    let mut r = v3_receiver();
    assert!(r.accept(&meta(), &good).is_ok());
    assert_eq!(r.accept(&meta(), &good[..7]).err(), Some(DropReason::Truncated));
    assert_eq!(r.accept(&meta(), &good[..11]).err(), Some(DropReason::Truncated));
    let mut bad = good.clone();
    bad[0] = 0x41;
    assert_eq!(r.accept(&meta(), &bad).err(), Some(DropReason::BadVersion(4)));
    bad[0] = 0x32;
    assert_eq!(r.accept(&meta(), &bad).err(), Some(DropReason::BadType(2)));
    // Count says 2 addresses, only one present.
    let mut bad = good.clone();
    bad[3] = 2;
    assert_eq!(r.accept(&meta(), &bad).err(), Some(DropReason::Truncated));
    // v2 advert to a v3 instance.
    let v2 = encode(&advert(Version::V2, 100));
    assert_eq!(r.accept(&meta(), &v2).err(), Some(DropReason::BadVersion(2)));
    // Trailing bytes without authentication configured.
    let mut long = good.clone();
    long.extend_from_slice(&[0; 4]);
    assert_eq!(r.accept(&meta(), &long).err(), Some(DropReason::TrailingBytes));
    // IPv6 source for an IPv4 instance.
    let v6 = RxMeta { src: "fe80::1".parse().expect("v6"), dst: "ff02::12".parse().expect("v6"), ..meta() };
    assert_eq!(r.accept(&v6, &good).err(), Some(DropReason::WrongFamily));
}

#[test]
fn ttl_checksum_vrid_drops() {
    let good = encode(&advert(Version::V3, 100));
    let mut r = v3_receiver();
    assert_eq!(r.accept(&RxMeta { ttl: 254, ..meta() }, &good).err(), Some(DropReason::BadTtl(254)));
    let mut bad = good.clone();
    bad[2] = 101; // priority changed, checksum not
    assert_eq!(r.accept(&meta(), &bad).err(), Some(DropReason::BadChecksum));
    // A checksum over a different source does not verify either (pseudo-header).
    let other = RxMeta { src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 3)), ..meta() };
    assert_eq!(r.accept(&other, &good).err(), Some(DropReason::BadChecksum));
    let mut a = advert(Version::V3, 100);
    a.vrid = 52;
    assert_eq!(r.accept(&meta(), &encode(&a)).err(), Some(DropReason::WrongVrid(52)));
    // TTL checking can be relaxed (unicast peers behind a router).
    let mut p = RxPolicy::new(Version::V3, Family::V4, 51, 100);
    p.check_ttl = false;
    assert!(Receiver::new(p).accept(&RxMeta { ttl: 64, ..meta() }, &good).is_ok());
}

#[test]
fn v2_auth_count_and_interval_drops() {
    let mut policy = RxPolicy::new(Version::V2, Family::V4, 51, 100);
    policy.v2_auth = V2Auth::password(b"kxsecret");
    policy.expected_addr_count = Some(1);
    let mut r = Receiver::new(policy.clone());
    let mut a = advert(Version::V2, 100);
    a.auth = V2Auth::password(b"kxsecret");
    assert!(r.accept(&meta(), &encode(&a)).is_ok());
    a.auth = V2Auth::password(b"wrong");
    assert_eq!(r.accept(&meta(), &encode(&a)).err(), Some(DropReason::AuthMismatch));
    a.auth = V2Auth::None;
    assert_eq!(r.accept(&meta(), &encode(&a)).err(), Some(DropReason::AuthMismatch));
    a.auth = V2Auth::Ah;
    assert_eq!(r.accept(&meta(), &encode(&a)).err(), Some(DropReason::AuthMismatch));
    let mut ah = policy.clone();
    ah.v2_auth = V2Auth::Ah;
    assert_eq!(Receiver::new(ah).accept(&meta(), &encode(&a)).err(), Some(DropReason::AuthUnsupported));
    // Unknown auth type 7.
    a.auth = V2Auth::password(b"kxsecret");
    let mut unknown = encode(&a);
    unknown[4] = 7;
    unknown[6..8].copy_from_slice(&[0, 0]);
    let c = rvs_ha::checksum::internet_checksum(&unknown);
    unknown[6..8].copy_from_slice(&c.to_be_bytes());
    assert_eq!(r.accept(&meta(), &unknown).err(), Some(DropReason::AuthMismatch));
    // Two addresses where one is configured.
    a.addrs.push(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 101)));
    assert_eq!(r.accept(&meta(), &encode(&a)).err(), Some(DropReason::AddressCountMismatch { expected: 1, got: 2 }));
    // v2 interval must match ours; v3 is adopted instead.
    a.addrs.pop();
    a.interval_cs = 200;
    assert_eq!(r.accept(&meta(), &encode(&a)).err(), Some(DropReason::IntervalMismatch { expected: 100, got: 200 }));
    assert!(v3_receiver().accept(&meta(), &encode(&advert(Version::V3, 35))).is_ok());
}

fn keys() -> KeyRing {
    KeyRing::single(3, b"correct horse battery staple").expect("key")
}

fn signed(signer: &mut Signer, a: &Advert) -> Vec<u8> {
    let mut bytes = encode(a);
    signer.seal(&AuthContext { src: meta().src, dst: meta().dst }, &mut bytes, 0);
    bytes
}

#[test]
fn hmac_trailer_on_adverts() {
    let mut p = RxPolicy::new(Version::V3, Family::V4, 51, 100);
    p.auth = AuthMode::Required(keys());
    let mut r = Receiver::new(p.clone());
    let mut signer = Signer::new(keys(), Domain::Vrrp, 1000);
    let a = advert(Version::V3, 100);
    let first = signed(&mut signer, &a);
    assert_eq!(first.len(), 12 + 44);
    let ok = r.accept(&meta(), &first).expect("authentic");
    assert_eq!(ok.trailer, Some((3, 1000)));
    assert_eq!(r.accept(&meta(), &first).err(), Some(DropReason::Replayed));
    let second = signed(&mut signer, &a);
    assert!(r.accept(&meta(), &second).is_ok());
    // Unauthenticated, tampered, wrong key, wrong domain.
    assert_eq!(r.accept(&meta(), &encode(&a)).err(), Some(DropReason::Unauthenticated));
    let mut tampered = signed(&mut signer, &a);
    tampered[2] ^= 1;
    let sum_fix = {
        // Recompute the VRRP checksum so only the MAC can catch the change.
        tampered[6..8].copy_from_slice(&[0, 0]);
        let mut c = rvs_ha::checksum::Checksum::new();
        c.add_pseudo_header(meta().src, meta().dst, 112, 12).add(&tampered[..12]);
        c.finish()
    };
    tampered[6..8].copy_from_slice(&sum_fix.to_be_bytes());
    assert_eq!(r.accept(&meta(), &tampered).err(), Some(DropReason::AuthMismatch));
    let mut other = Signer::new(KeyRing::single(3, b"other").expect("key"), Domain::Vrrp, 5000);
    assert_eq!(r.accept(&meta(), &signed(&mut other, &a)).err(), Some(DropReason::AuthMismatch));
    let mut sync_domain = Signer::new(keys(), Domain::Sync, 6000);
    assert_eq!(r.accept(&meta(), &signed(&mut sync_domain, &a)).err(), Some(DropReason::AuthMismatch));
    let mut garbage = encode(&a);
    garbage.extend_from_slice(&[0xab; 44]);
    assert_eq!(r.accept(&meta(), &garbage).err(), Some(DropReason::AuthMismatch));
    // Permissive accepts unauthenticated adverts but still checks trailers that are present.
    p.auth = AuthMode::Permissive(keys());
    let mut lax = Receiver::new(p.clone());
    assert!(lax.accept(&meta(), &encode(&a)).is_ok());
    assert_eq!(lax.accept(&meta(), &signed(&mut other, &a)).err(), Some(DropReason::AuthMismatch));
    // Freshness: counters are µs timestamps; one 10 s old is stale with a 5 s window.
    p.auth = AuthMode::Required(keys());
    p.freshness = Some(Freshness { window_us: 5_000_000 });
    let mut fresh = Receiver::new(p);
    let mut clocked = Signer::new(keys(), Domain::Vrrp, 0);
    let mut old = encode(&a);
    clocked.seal(&AuthContext { src: meta().src, dst: meta().dst }, &mut old, 90_000_000);
    let now = RxMeta { now_unix_us: Some(100_000_000), ..meta() };
    assert_eq!(fresh.accept(&now, &old).err(), Some(DropReason::Stale));
    let mut new = encode(&a);
    clocked.seal(&AuthContext { src: meta().src, dst: meta().dst }, &mut new, 99_000_000);
    assert!(fresh.accept(&now, &new).is_ok());
}

#[test]
fn capture_views_expose_fields() {
    // Capture v2 (B): PASS 'kxsecret', checksum 0xd98e as the hex shows.
    let frames = common::frames(include_str!("data/vrrp_v2.hex"));
    let (_, _, payload) = parse_ethernet(&frames[2]).expect("frame");
    let v = VrrpView::parse(payload, Family::V4).expect("view");
    assert_eq!((v.auth_type(), v.checksum(), v.count()), (Some(1), 0xd98e, 1));
    assert_eq!(v.auth_data(), Some(*b"kxsecret"));
    assert_eq!(v.v3_reserved(), 0);
}
