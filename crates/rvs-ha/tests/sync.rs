//! IPVS sync messages: v1 round trips (IPv4, IPv6, options), v0 decoding, packing by maxlen,
//! refused input with reasons, and the HMAC trailer.

use std::net::{IpAddr, Ipv4Addr};

use rvs_ha::auth::{AuthContext, AuthMode, Domain, KeyRing, Signer};
use rvs_ha::sync::entry::{SeqAdjust, SeqOptions};

/// Direct-routing forwarding method (flags value 3).
const CONN_F_DROUTE_FOR_TEST: u32 = 3;
use rvs_ha::sync::{SyncEntry, SyncError, SyncReceiver, SyncSender, decode, default_maxlen, v0, v1};

fn v4(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(198, 18, 0, last))
}

fn tcp_entry(cport: u16) -> SyncEntry {
    SyncEntry {
        protocol: 6,
        caddr: v4(10),
        cport,
        vaddr: v4(100),
        vport: 80,
        daddr: v4(20),
        dport: 8080,
        fwmark: 0,
        flags: CONN_F_DROUTE_FOR_TEST,
        state: 1,
        timeout_s: 900,
        seq: None,
        pe_data: None,
        pe_name: None,
    }
}

#[test]
fn v1_ipv4_entry_layout() {
    // Header: 0, syncid 7, size 8+36 = 44, count 1, version 1, spare 0.
    let m = v1::encode(7, &[tcp_entry(40000)]).expect("encodes");
    assert_eq!(&m[..8], &[0, 7, 0, 44, 1, 1, 0, 0]);
    // Entry: type 0, proto 6, ver_size 36, flags 3, state 1, ports, fwmark 0, timeout 900, addrs.
    assert_eq!(&m[8..12], &[0, 6, 0, 36]);
    assert_eq!(&m[12..16], &3u32.to_be_bytes());
    assert_eq!(&m[16..18], &1u16.to_be_bytes());
    assert_eq!(&m[18..24], &[0x9c, 0x40, 0, 80, 0x1f, 0x90]);
    assert_eq!(&m[28..32], &900u32.to_be_bytes());
    assert_eq!(&m[32..44], &[198, 18, 0, 10, 198, 18, 0, 100, 198, 18, 0, 20]);
    let back = decode(&m).expect("decodes");
    assert_eq!((back.syncid, back.entries.clone(), back.skipped), (7, vec![tcp_entry(40000)], 0));
}

#[test]
fn v1_round_trip_with_ipv6_template_and_options() {
    let v6 = |s: &str| -> IpAddr { s.parse().expect("v6") };
    let template = SyncEntry {
        protocol: 17,
        caddr: v6("fd00::10"),
        cport: 0,
        vaddr: v6("fd00::100"),
        vport: 5060,
        daddr: v6("fd00::20"),
        dport: 5060,
        fwmark: 42,
        flags: rvs_ha::sync::entry::CONN_F_TEMPLATE,
        state: 0,
        timeout_s: 360,
        seq: None,
        pe_data: Some(b"call-id-1234".to_vec()),
        pe_name: Some(b"sip".to_vec()),
    };
    let mut nat = tcp_entry(1234);
    nat.flags |= rvs_ha::sync::entry::CONN_F_SEQ_MASK;
    nat.seq = Some(SeqOptions {
        in_seq: SeqAdjust { init_seq: 1, delta: 2, previous_delta: 3 },
        out_seq: SeqAdjust { init_seq: 4, delta: 5, previous_delta: 6 },
    });
    let entries = vec![template.clone(), nat.clone(), tcp_entry(1)];
    let m = v1::encode(0, &entries).expect("encodes");
    // Sizes: template 72 + (2+12) + (2+3) = 91, padded to 92; nat 36 + 26 = 62, padded to 64; 36.
    assert_eq!(m.len(), 8 + 92 + 64 + 36);
    assert_eq!(&m[8..12], &[1, 17, 0, 91]);
    assert_eq!(&m[99..100], &[0]); // padding
    let back = decode(&m).expect("decodes");
    assert_eq!(back.entries, entries);
    assert!(back.entries[0].is_template() && back.entries[0].is_ipv6());
    assert_eq!(back.entries[0].backup_flags(), 0x1000 | 0x0020);
}

#[test]
fn v1_refused_input() {
    let good = v1::encode(1, &[tcp_entry(1), tcp_entry(2)]).expect("encodes");
    // Count says 3, only 2 present.
    let mut bad = good.clone();
    bad[4] = 3;
    assert_eq!(decode(&bad).err(), Some(SyncError::Truncated));
    // Entry size larger than the message.
    let mut bad = good.clone();
    bad[8 + 3] = 200;
    assert_eq!(decode(&bad).err(), Some(SyncError::EntryOverrun));
    // Entry version 1.
    let mut bad = good.clone();
    bad[8 + 2] = 0x10;
    assert_eq!(decode(&bad).err(), Some(SyncError::EntryVersion(1)));
    // Entry type 2.
    let mut bad = good.clone();
    bad[8] = 2;
    assert_eq!(decode(&bad).err(), Some(SyncError::EntryType(2)));
    // Entry size below the fixed part.
    let mut bad = good.clone();
    bad[8 + 3] = 20;
    assert_eq!(decode(&bad).err(), Some(SyncError::Truncated));
    // Garbage after the last entry.
    let mut bad = good.clone();
    bad.extend_from_slice(&[1, 2, 3, 4]);
    assert_eq!(decode(&bad).err(), Some(SyncError::TrailingBytes));
    // Option with zero length, and unknown mandatory vs optional options.
    let with_opt = |t: u8, l: u8| {
        let mut m = v1::encode(1, &[tcp_entry(1)]).expect("encodes");
        m.extend_from_slice(&[t, l, 0xaa, 0xbb]);
        m[8 + 3] = 40;
        m[3] = m.len() as u8;
        m
    };
    assert_eq!(decode(&with_opt(9, 0)).err(), Some(SyncError::BadOption(9)));
    assert_eq!(decode(&with_opt(9, 3)).err(), Some(SyncError::BadOption(9)));
    assert_eq!(decode(&with_opt(1, 2)).err(), Some(SyncError::BadOption(1)));
    let skipped = decode(&with_opt(9, 2)).expect("decodes");
    assert_eq!((skipped.entries.len(), skipped.skipped), (0, 1));
    let optional = decode(&with_opt(9 | 0x40, 2)).expect("decodes");
    assert_eq!((optional.entries.len(), optional.skipped), (1, 0));
    // Building refuses mixed families and PE data without name.
    let mut mixed = tcp_entry(1);
    mixed.daddr = "fd00::1".parse().expect("v6");
    assert_eq!(v1::encode(1, &[mixed]).err(), Some(SyncError::MixedFamily));
    let mut pe = tcp_entry(1);
    pe.pe_data = Some(vec![1]);
    assert_eq!(v1::encode(1, &[pe]).err(), Some(SyncError::PeDataWithoutName));
}

#[test]
fn packing_respects_maxlen_and_255_entries() {
    // maxlen 1444 (kernel default for MTU 1500): 8 + 36*n <= 1444 -> n = 39 per message.
    assert_eq!(default_maxlen(1500, false), 1444);
    let entries: Vec<SyncEntry> = (0..100).map(tcp_entry).collect();
    let messages = v1::pack(3, &entries, 1444).expect("packs");
    assert_eq!(messages.iter().map(|m| m[4]).collect::<Vec<_>>(), vec![39, 39, 22]);
    assert!(messages.iter().all(|m| m.len() <= 1444));
    let all: Vec<SyncEntry> = messages.iter().flat_map(|m| decode(m).expect("decodes").entries).collect();
    assert_eq!(all, entries);
    // A huge maxlen still stops at 255 entries per message.
    let many: Vec<SyncEntry> = (0..300).map(tcp_entry).collect();
    let messages = v1::pack(3, &many, 65_535).expect("packs");
    assert_eq!(messages.iter().map(|m| m[4]).collect::<Vec<_>>(), vec![255, 45]);
    assert_eq!(v1::encode(3, &many).err(), Some(SyncError::TooManyEntries));
    assert_eq!(v1::pack(3, &entries, 40).err(), Some(SyncError::EntryTooLarge));
    // No entries: one empty message.
    assert_eq!(v1::pack(3, &[], 1444).expect("packs"), vec![vec![0, 3, 0, 8, 0, 1, 0, 0]]);
}

#[test]
fn v0_messages_decode() {
    let mut seq = tcp_entry(5);
    seq.flags = 0x0403; // DR + IN_SEQ
    seq.seq = Some(SeqOptions { in_seq: SeqAdjust { init_seq: 7, delta: 8, previous_delta: 9 }, ..Default::default() });
    let m = v0::encode(9, &[tcp_entry(4), seq.clone()]).expect("encodes");
    // Header: count 2, syncid 9, size 4 + 24 + 48 = 76.
    assert_eq!(&m[..4], &[2, 9, 0, 76]);
    let back = decode(&m).expect("decodes");
    // v0 carries neither timeout nor fwmark.
    let strip = |mut e: SyncEntry| {
        e.timeout_s = 0;
        e
    };
    assert_eq!(back.entries, vec![strip(tcp_entry(4)), strip(seq)]);
    assert_eq!(decode(&m[..50]).err(), Some(SyncError::Truncated));
    let mut extra = m.clone();
    extra.push(0);
    assert_eq!(decode(&extra).err(), Some(SyncError::TrailingBytes));
    let mut v6 = tcp_entry(1);
    v6.caddr = "fd00::1".parse().expect("v6");
    assert_eq!(v0::encode(1, &[v6]).err(), Some(SyncError::MixedFamily));
}

#[test]
fn receiver_checks_size_syncid_and_trailer() {
    let ctx = AuthContext { src: v4(1), dst: IpAddr::V4(rvs_ha::sync::SYNC_GROUP_V4) };
    let keys = KeyRing::single(1, b"sync-key").expect("key");
    let mut sender = SyncSender::new(5, 1472, Some(Signer::new(keys.clone(), Domain::Sync, 1)));
    assert_eq!(sender.message_max(), 1472 - 44);
    let datagrams = sender.datagrams(&[tcp_entry(1)], &ctx, 0).expect("builds");
    let d = &datagrams[0];
    let mut rx = SyncReceiver::new(5, AuthMode::Required(keys.clone()), None);
    assert_eq!(rx.accept(ctx.src, ctx.dst, d, None).expect("authentic").entries, vec![tcp_entry(1)]);
    assert_eq!(rx.accept(ctx.src, ctx.dst, d, None).err(), Some(SyncError::Replayed));
    let plain = v1::encode(5, &[tcp_entry(1)]).expect("encodes");
    assert_eq!(rx.accept(ctx.src, ctx.dst, &plain, None).err(), Some(SyncError::Unauthenticated));
    let mut tampered = sender.datagrams(&[tcp_entry(1)], &ctx, 0).expect("builds").remove(0);
    tampered[20] ^= 1;
    assert_eq!(rx.accept(ctx.src, ctx.dst, &tampered, None).err(), Some(SyncError::AuthMismatch));
    let mut other_id = SyncReceiver::new(6, AuthMode::Off, None);
    assert_eq!(other_id.accept(ctx.src, ctx.dst, &plain, None).err(), Some(SyncError::WrongSyncId(5)));
    let mut any = SyncReceiver::new(0, AuthMode::Off, None);
    assert!(any.accept(ctx.src, ctx.dst, &plain, None).is_ok());
    // Without auth, a trailer is just a size mismatch, as the kernel sees it.
    assert_eq!(
        any.accept(ctx.src, ctx.dst, d, None).err(),
        Some(SyncError::SizeMismatch { stated: d.len() - 44, actual: d.len() })
    );
    assert_eq!(
        any.accept(ctx.src, ctx.dst, &plain[..20], None).err(),
        Some(SyncError::SizeMismatch { stated: plain.len(), actual: 20 })
    );
    assert_eq!(any.accept(ctx.src, ctx.dst, &[0], None).err(), Some(SyncError::Truncated));
}

#[test]
fn end_of_round_marker_carries_the_datagram_count_and_is_signed_like_the_rest() {
    // Header only: reserved 0, syncid 7, size 8, count 0, version 1, spare = 0x8000 | 3.
    let m = v1::round_end(7, 3);
    assert_eq!(m, vec![0, 7, 0, 8, 0, 1, 0x80, 3]);
    assert_eq!(decode(&m).expect("decodes").round_end, Some(3));
    // Counts beyond 15 bits saturate; zero still marks (bit 15 set).
    assert_eq!(v1::decode_round_end(&v1::round_end(7, 100_000)), Some(v1::ROUND_END_MAX));
    assert_eq!(v1::decode_round_end(&v1::round_end(7, 0)), Some(0));
    // An ordinary empty v1 message and a message with entries are not markers.
    assert_eq!(v1::decode_round_end(&v1::encode(7, &[]).expect("encodes")), None);
    assert_eq!(decode(&v1::encode(7, &[tcp_entry(1)]).expect("encodes")).expect("decodes").round_end, None);

    let ring = KeyRing::single(1, b"0123456789abcdef").expect("key");
    let mut tx = SyncSender::new(7, 1472, Some(Signer::new(ring.clone(), Domain::Sync, 1)));
    let ctx = AuthContext { src: v4(1), dst: v4(2) };
    let signed = tx.round_end(2, &ctx, 10);
    let mut rx = SyncReceiver::new(7, AuthMode::Required(ring), None);
    assert_eq!(rx.accept(v4(1), v4(2), &signed, None).expect("accepted").round_end, Some(2));
    let mut tampered = signed.clone();
    tampered[7] = 5;
    assert_eq!(rx.accept(v4(1), v4(2), &tampered, None), Err(SyncError::AuthMismatch));
}
