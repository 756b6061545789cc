//! Fuzz-style properties: no parser panics on any bytes, a capture corpus survives every
//! single-byte mutation without panicking, and no invalid advert changes an instance's state.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use proptest::prelude::*;
use rvs_core::Instant;
use rvs_ha::auth::{AuthMode, KeyRing, Trailer};
use rvs_ha::sync::{SyncReceiver, decode};
use rvs_ha::vrrp::frame::{parse_ethernet, parse_ipv4, parse_ipv6};
use rvs_ha::vrrp::packet::{Advert, ChecksumKind, Family, V2Auth, VRRP_GROUP_V4, Version, VrrpView};
use rvs_ha::vrrp::rx::{Receiver, RxMeta, RxPolicy};
use rvs_ha::vrrp::state::{Instance, InstanceConfig, State};

fn exercise_all_parsers(bytes: &[u8]) {
    let _ = parse_ethernet(bytes);
    let _ = parse_ipv4(bytes);
    let _ = parse_ipv6(bytes);
    for family in [Family::V4, Family::V6] {
        if let Ok(v) = VrrpView::parse(bytes, family) {
            let _ = (v.to_advert(), v.auth_data(), v.v3_reserved(), v.checksum());
        }
    }
    let _ = Trailer::parse(bytes);
    let _ = decode(bytes);
    let meta = RxMeta {
        src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
        dst: IpAddr::V4(VRRP_GROUP_V4),
        ttl: 255,
        now_unix_us: Some(0),
    };
    for version in [Version::V2, Version::V3] {
        let mut p = RxPolicy::new(version, Family::V4, 51, 100);
        p.auth = AuthMode::Permissive(KeyRing::single(1, b"k").expect("key"));
        let _ = Receiver::new(p).accept(&meta, bytes);
    }
    let mut sync = SyncReceiver::new(0, AuthMode::Permissive(KeyRing::single(1, b"k").expect("key")), None);
    let _ = sync.accept(meta.src, meta.dst, bytes, None);
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        exercise_all_parsers(&bytes);
    }

    #[test]
    fn random_vrrp_like_bytes_never_panic(
        head in prop_oneof![Just(0x21u8), Just(0x31u8), any::<u8>()],
        count in any::<u8>(),
        rest in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let mut bytes = vec![head, 51, 100, count];
        bytes.extend_from_slice(&rest);
        exercise_all_parsers(&bytes);
    }

    #[test]
    fn random_sync_like_bytes_never_panic(
        count in any::<u8>(),
        rest in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut bytes = vec![0, 0, 0, 0, count, 1, 0, 0];
        bytes.extend_from_slice(&rest);
        let len = bytes.len() as u16;
        bytes[2..4].copy_from_slice(&len.to_be_bytes());
        exercise_all_parsers(&bytes);
    }
}

#[test]
fn corpus_replay_with_every_single_byte_mutation() {
    let mut corpus = Vec::new();
    for text in [include_str!("data/vrrp_v2.hex"), include_str!("data/vrrp_v3.hex"), include_str!("data/garp_na.hex")] {
        corpus.extend(common::frames(text));
    }
    for frame in &corpus {
        exercise_all_parsers(frame);
        for i in 0..frame.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut m = frame.clone();
                m[i] ^= flip;
                exercise_all_parsers(&m);
                exercise_all_parsers(&m[..i]);
            }
        }
    }
}

fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}

/// A Backup (following a master) or a Master instance, v3, VRID 51, primary 198.18.0.1, prio 100.
fn prepared(master: bool) -> Instance {
    let mut i = Instance::with_default_policy(InstanceConfig::new(
        Version::V3,
        51,
        100,
        100,
        IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)),
    ))
    .expect("valid");
    i.startup(ms(0));
    if master {
        i.on_timer(ms(3609));
        assert_eq!(i.state(), State::Master);
    }
    i
}

fn valid_advert(priority: u8) -> Vec<u8> {
    Advert {
        version: Version::V3,
        vrid: 51,
        priority,
        interval_cs: 100,
        auth: V2Auth::None,
        addrs: vec![IpAddr::V4(Ipv4Addr::new(198, 18, 0, 100))],
    }
    .encode(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)), IpAddr::V4(VRRP_GROUP_V4), ChecksumKind::PseudoHeader)
    .expect("encodes")
}

proptest! {
    /// Adverts that fail validation (random bytes, or a valid advert with a byte changed, a bad
    /// TTL or a wrong source) and early timer calls leave state and deadlines untouched.
    #[test]
    fn invalid_adverts_and_early_timers_change_nothing(
        master in any::<bool>(),
        priority in any::<u8>(),
        mutate_at in 0usize..12,
        xor in 1u8..=255,
        ttl in any::<u8>(),
        random in proptest::collection::vec(any::<u8>(), 0..64),
        early in 0u64..1000,
    ) {
        let mut inst = prepared(master);
        let state = inst.state();
        let deadline = inst.next_deadline();
        let now = ms(4000);
        let good_meta = RxMeta {
            src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 2)),
            dst: IpAddr::V4(VRRP_GROUP_V4),
            ttl: 255,
            now_unix_us: None,
        };
        let mut mutated = valid_advert(priority);
        mutated[mutate_at] ^= xor;
        let inputs = [
            (good_meta, random.clone()),
            (good_meta, mutated),
            (RxMeta { ttl: if ttl == 255 { 254 } else { ttl }, ..good_meta }, valid_advert(priority)),
            (RxMeta { src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)), ..good_meta }, valid_advert(priority)),
        ];
        for (meta, bytes) in inputs {
            if inst.receive(now, &meta, &bytes).is_ok() {
                // A mutation can still be a valid advert (e.g. the random bytes happen to be
                // well-formed); only refused ones are under test.
                return Ok(());
            }
            prop_assert_eq!(inst.state(), state);
            prop_assert_eq!(inst.next_deadline(), deadline);
        }
        if let Some(d) = deadline {
            let before = ms(d.as_millis().saturating_sub(early + 1));
            prop_assert!(inst.on_timer(before).is_empty());
            prop_assert_eq!(inst.state(), state);
            prop_assert_eq!(inst.next_deadline(), deadline);
        }
    }
}
