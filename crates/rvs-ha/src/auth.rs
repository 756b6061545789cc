//! The rvs authentication trailer: HMAC-SHA256 over a message plus a key id and a 64-bit
//! anti-replay counter, appended after a VRRP advert or an IPVS sync message.
//!
//! Trailer layout (44 bytes, all integers big-endian), placed right after the protected message:
//!
//! ```text
//!  0      2      3       4                12                                44
//!  +------+------+-------+----------------+---------------------------------+
//!  | "RV" | ver=1| keyid |  counter (u64) |  HMAC-SHA256 tag (32 bytes)     |
//!  +------+------+-------+----------------+---------------------------------+
//! ```
//!
//! The tag is `HMAC-SHA256(key[keyid], label || ctx || trailer[0..12] || message)` where `label` is
//! 8 ASCII bytes naming the protocol (`rvs-vrrp` or `rvs-sync`, so a tag made for one can never
//! verify as the other) and `ctx` binds the IP source and destination: for each address one family
//! byte (4 or 6) then its 4 or 16 octets. Verification is constant-time (`Mac::verify_slice`).
//!
//! Replay protection: a sender's counter strictly increases (see [`CounterSource`]; seeding it
//! from wall-clock microseconds keeps it increasing across restarts). A receiver keeps one
//! [`ReplayWindow`] per sender: counters above the highest seen are accepted, counters up to 63
//! below it are accepted once each, anything older is a replay. Optionally the counter is also
//! read as microseconds since the Unix epoch and must lie within a freshness window of the
//! receiver's clock, which stops replays to a receiver that just restarted and has no window yet.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;

use hmac::{KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Length of the trailer in bytes.
pub const TRAILER_LEN: usize = 44;
/// Length of the trailer before the tag (magic, version, key id, counter).
pub const TRAILER_HEADER_LEN: usize = 12;
/// The trailer's first two bytes.
pub const TRAILER_MAGIC: [u8; 2] = *b"RV";
/// The trailer format version.
pub const TRAILER_VERSION: u8 = 1;
/// Number of counters below the highest seen that may still arrive late (once each).
pub const REPLAY_WINDOW: u64 = 64;

/// Which protocol a trailer protects; selects the label mixed into the MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Domain {
    /// VRRP adverts.
    Vrrp,
    /// IPVS connection sync messages.
    Sync,
}

impl Domain {
    fn label(self) -> &'static [u8; 8] {
        match self {
            Domain::Vrrp => b"rvs-vrrp",
            Domain::Sync => b"rvs-sync",
        }
    }
}

/// Why a trailer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No trailer where one is required (or the bytes after the message are not a trailer).
    #[error("message is not authenticated")]
    Missing,
    /// The trailer names a key id this receiver does not hold.
    #[error("unknown key id {0}")]
    UnknownKey(u8),
    /// The tag does not verify.
    #[error("authentication tag mismatch")]
    BadTag,
    /// The counter was seen before or is older than the replay window.
    #[error("replayed counter {0}")]
    Replayed(u64),
    /// The counter, read as a timestamp, is outside the freshness window.
    #[error("stale counter {0}")]
    Stale(u64),
}

/// Errors configuring keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Keys must not be empty.
    #[error("empty key")]
    Empty,
    /// The active key id has no key.
    #[error("active key id {0} not in the key ring")]
    NoActiveKey(u8),
}

/// Shared secrets by key id, and the id used for sending. Several ids allow rotation: add the
/// new key everywhere, switch `active`, then remove the old key.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRing {
    keys: Vec<(u8, Vec<u8>)>,
    active: u8,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<u8> = self.keys.iter().map(|(id, _)| *id).collect();
        f.debug_struct("KeyRing").field("ids", &ids).field("active", &self.active).finish()
    }
}

impl KeyRing {
    /// A ring holding one key, which is active.
    pub fn single(id: u8, secret: &[u8]) -> Result<KeyRing, KeyError> {
        KeyRing::new(vec![(id, secret.to_vec())], id)
    }

    /// A ring of `keys` sending with `active`. A later duplicate id replaces an earlier one.
    pub fn new(keys: Vec<(u8, Vec<u8>)>, active: u8) -> Result<KeyRing, KeyError> {
        let mut ring: Vec<(u8, Vec<u8>)> = Vec::new();
        for (id, secret) in keys {
            if secret.is_empty() {
                return Err(KeyError::Empty);
            }
            ring.retain(|(other, _)| *other != id);
            ring.push((id, secret));
        }
        if !ring.iter().any(|(id, _)| *id == active) {
            return Err(KeyError::NoActiveKey(active));
        }
        Ok(KeyRing { keys: ring, active })
    }

    /// The key id used when signing.
    pub fn active_id(&self) -> u8 {
        self.active
    }

    fn secret(&self, id: u8) -> Option<&[u8]> {
        self.keys.iter().find(|(k, _)| *k == id).map(|(_, s)| s.as_slice())
    }
}

/// A parsed trailer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    /// Key id.
    pub key_id: u8,
    /// Anti-replay counter.
    pub counter: u64,
    /// HMAC-SHA256 tag.
    pub tag: [u8; 32],
}

impl Trailer {
    /// Reads a trailer: exactly [`TRAILER_LEN`] bytes starting with the magic and version.
    pub fn parse(bytes: &[u8]) -> Option<Trailer> {
        if bytes.len() != TRAILER_LEN || bytes.get(0..2)? != TRAILER_MAGIC || *bytes.get(2)? != TRAILER_VERSION {
            return None;
        }
        let key_id = *bytes.get(3)?;
        let counter = u64::from_be_bytes(bytes.get(4..12)?.try_into().ok()?);
        let tag: [u8; 32] = bytes.get(12..44)?.try_into().ok()?;
        Some(Trailer { key_id, counter, tag })
    }

    fn header(key_id: u8, counter: u64) -> [u8; TRAILER_HEADER_LEN] {
        let mut h = [0u8; TRAILER_HEADER_LEN];
        h[0..2].copy_from_slice(&TRAILER_MAGIC);
        h[2] = TRAILER_VERSION;
        h[3] = key_id;
        h[4..12].copy_from_slice(&counter.to_be_bytes());
        h
    }
}

/// The addresses a trailer binds the message to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthContext {
    /// IP source of the packet.
    pub src: IpAddr,
    /// IP destination of the packet (multicast group or unicast peer).
    pub dst: IpAddr,
}

fn mac_for(secret: &[u8], domain: Domain, ctx: &AuthContext, header: &[u8], message: &[u8]) -> Option<HmacSha256> {
    let mut mac = <HmacSha256 as KeyInit>::new_from_slice(secret).ok()?;
    mac.update(domain.label());
    for addr in [ctx.src, ctx.dst] {
        match addr {
            IpAddr::V4(a) => {
                mac.update(&[4]);
                mac.update(&a.octets());
            }
            IpAddr::V6(a) => {
                mac.update(&[6]);
                mac.update(&a.octets());
            }
        }
    }
    mac.update(header);
    mac.update(message);
    Some(mac)
}

/// The trailer for `message` signed with the ring's active key and `counter`.
pub fn sign(keys: &KeyRing, domain: Domain, ctx: &AuthContext, message: &[u8], counter: u64) -> [u8; TRAILER_LEN] {
    let header = Trailer::header(keys.active, counter);
    let mut out = [0u8; TRAILER_LEN];
    out[..TRAILER_HEADER_LEN].copy_from_slice(&header);
    if let Some(mac) = keys.secret(keys.active).and_then(|s| mac_for(s, domain, ctx, &header, message)) {
        out[TRAILER_HEADER_LEN..].copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

/// Checks the tag of `trailer` over `message` (not the counter's freshness; see [`ReplayWindow`]).
pub fn verify(
    keys: &KeyRing,
    domain: Domain,
    ctx: &AuthContext,
    message: &[u8],
    trailer: &Trailer,
) -> Result<(), AuthError> {
    let secret = keys.secret(trailer.key_id).ok_or(AuthError::UnknownKey(trailer.key_id))?;
    let header = Trailer::header(trailer.key_id, trailer.counter);
    let mac = mac_for(secret, domain, ctx, &header, message).ok_or(AuthError::BadTag)?;
    mac.verify_slice(&trailer.tag).map_err(|_| AuthError::BadTag)
}

/// A sender's counter: strictly increasing, never below a caller-supplied floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CounterSource {
    last: u64,
}

impl CounterSource {
    /// A source whose first counter will be at least `start` (e.g. wall-clock µs since the Unix epoch).
    pub fn starting_at(start: u64) -> CounterSource {
        CounterSource { last: start.saturating_sub(1) }
    }

    /// The next counter: `max(previous + 1, floor)`. Pass the current wall-clock µs as `floor`
    /// to keep counters usable as timestamps, or 0 for a plain sequence. Saturates at `u64::MAX`.
    pub fn next(&mut self, floor: u64) -> u64 {
        self.last = self.last.saturating_add(1).max(floor);
        self.last
    }
}

/// The sending side: a key ring, a protocol domain and a counter.
#[derive(Debug, Clone)]
pub struct Signer {
    keys: KeyRing,
    domain: Domain,
    counter: CounterSource,
}

impl Signer {
    /// A signer whose first counter is at least `start`.
    pub fn new(keys: KeyRing, domain: Domain, start: u64) -> Signer {
        Signer { keys, domain, counter: CounterSource::starting_at(start) }
    }

    /// Appends a trailer to `message` (which must not already carry one) and returns its counter.
    /// `floor` is the lowest acceptable counter (wall-clock µs, or 0).
    pub fn seal(&mut self, ctx: &AuthContext, message: &mut Vec<u8>, floor: u64) -> u64 {
        let counter = self.counter.next(floor);
        let trailer = sign(&self.keys, self.domain, ctx, message, counter);
        message.extend_from_slice(&trailer);
        counter
    }
}

/// One sender's accepted counters: the highest, and which of the 63 below it were seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplayWindow {
    highest: Option<u64>,
    /// Bit `i` set = counter `highest - i` was seen (bit 0 is `highest` itself).
    seen: u64,
}

impl ReplayWindow {
    /// Whether `counter` would be accepted (does not record it).
    pub fn check(&self, counter: u64) -> Result<(), AuthError> {
        let Some(highest) = self.highest else { return Ok(()) };
        if counter > highest {
            return Ok(());
        }
        let age = highest - counter;
        if age >= REPLAY_WINDOW || self.seen & (1u64 << age) != 0 {
            return Err(AuthError::Replayed(counter));
        }
        Ok(())
    }

    /// Accepts and records `counter`, or refuses it as a replay.
    pub fn accept(&mut self, counter: u64) -> Result<(), AuthError> {
        self.check(counter)?;
        match self.highest {
            None => {
                self.highest = Some(counter);
                self.seen = 1;
            }
            Some(highest) if counter > highest => {
                let shift = counter - highest;
                self.seen = if shift >= REPLAY_WINDOW { 1 } else { (self.seen << shift) | 1 };
                self.highest = Some(counter);
            }
            Some(highest) => self.seen |= 1u64 << (highest - counter),
        }
        Ok(())
    }

    /// The highest counter accepted so far.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }
}

/// Freshness rule for counters that are timestamps (µs since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// Largest accepted distance, in µs, between the counter and the receiver's clock.
    pub window_us: u64,
}

impl Freshness {
    /// Accepts `counter` if it is within the window around `now_unix_us`.
    pub fn check(&self, counter: u64, now_unix_us: u64) -> Result<(), AuthError> {
        if counter.abs_diff(now_unix_us) > self.window_us { Err(AuthError::Stale(counter)) } else { Ok(()) }
    }
}

/// Replay windows per sender, bounded in size: when full, the sender with the lowest highest
/// counter is forgotten (it is then treated as new, limited by [`Freshness`] if configured).
#[derive(Debug, Clone)]
pub struct ReplayTable<K> {
    windows: HashMap<K, ReplayWindow>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone> ReplayTable<K> {
    /// A table remembering at most `capacity` senders (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        ReplayTable { windows: HashMap::new(), capacity: capacity.max(1) }
    }

    /// Accepts and records `counter` from `sender`.
    pub fn accept(&mut self, sender: &K, counter: u64) -> Result<(), AuthError> {
        if let Some(w) = self.windows.get_mut(sender) {
            return w.accept(counter);
        }
        if self.windows.len() >= self.capacity {
            let oldest = self.windows.iter().min_by_key(|(_, w)| w.highest).map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                self.windows.remove(&k);
            }
        }
        let mut w = ReplayWindow::default();
        w.accept(counter)?;
        self.windows.insert(sender.clone(), w);
        Ok(())
    }

    /// The window of `sender`, if any.
    pub fn window(&self, sender: &K) -> Option<&ReplayWindow> {
        self.windows.get(sender)
    }
}

/// How a receiver treats the trailer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthMode {
    /// No trailer expected; bytes after the message are refused as garbage.
    Off,
    /// Verify trailers when present, accept messages without one (migration aid).
    Permissive(KeyRing),
    /// A valid trailer is required.
    Required(KeyRing),
}

impl AuthMode {
    /// The keys, if authentication is on.
    pub fn keys(&self) -> Option<&KeyRing> {
        match self {
            AuthMode::Off => None,
            AuthMode::Permissive(k) | AuthMode::Required(k) => Some(k),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ctx() -> AuthContext {
        AuthContext { src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 1)), dst: IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18)) }
    }

    #[test]
    fn hmac_sha256_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(b"Jefe").expect("any key length");
        mac.update(b"what do ya want for nothing?");
        let tag = mac.finalize().into_bytes();
        let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    }

    #[test]
    fn trailer_layout_and_round_trip() {
        let keys = KeyRing::single(7, b"secret").expect("key");
        let t = sign(&keys, Domain::Vrrp, &ctx(), b"message", 0x0102_0304_0506_0708);
        assert_eq!(&t[..12], &[b'R', b'V', 1, 7, 1, 2, 3, 4, 5, 6, 7, 8]);
        let parsed = Trailer::parse(&t).expect("parses");
        assert_eq!((parsed.key_id, parsed.counter), (7, 0x0102_0304_0506_0708));
        assert_eq!(verify(&keys, Domain::Vrrp, &ctx(), b"message", &parsed), Ok(()));
    }

    #[test]
    fn any_change_breaks_the_tag() {
        let keys = KeyRing::single(1, b"secret").expect("key");
        let t = Trailer::parse(&sign(&keys, Domain::Vrrp, &ctx(), b"message", 5)).expect("parses");
        assert_eq!(verify(&keys, Domain::Vrrp, &ctx(), b"messagE", &t), Err(AuthError::BadTag));
        assert_eq!(verify(&keys, Domain::Sync, &ctx(), b"message", &t), Err(AuthError::BadTag));
        let other_src = AuthContext { src: IpAddr::V4(Ipv4Addr::new(198, 18, 0, 9)), ..ctx() };
        assert_eq!(verify(&keys, Domain::Vrrp, &other_src, b"message", &t), Err(AuthError::BadTag));
        let bumped = Trailer { counter: 6, ..t };
        assert_eq!(verify(&keys, Domain::Vrrp, &ctx(), b"message", &bumped), Err(AuthError::BadTag));
        let wrong_key = KeyRing::single(1, b"other").expect("key");
        assert_eq!(verify(&wrong_key, Domain::Vrrp, &ctx(), b"message", &t), Err(AuthError::BadTag));
        let other_id = KeyRing::single(2, b"secret").expect("key");
        assert_eq!(verify(&other_id, Domain::Vrrp, &ctx(), b"message", &t), Err(AuthError::UnknownKey(1)));
    }

    #[test]
    fn rotation_accepts_old_and_new_ids() {
        let old = KeyRing::single(1, b"old").expect("key");
        let both = KeyRing::new(vec![(1, b"old".to_vec()), (2, b"new".to_vec())], 2).expect("keys");
        let from_old = Trailer::parse(&sign(&old, Domain::Sync, &ctx(), b"m", 1)).expect("parses");
        let from_new = Trailer::parse(&sign(&both, Domain::Sync, &ctx(), b"m", 2)).expect("parses");
        assert_eq!(from_new.key_id, 2);
        assert_eq!(verify(&both, Domain::Sync, &ctx(), b"m", &from_old), Ok(()));
        assert_eq!(verify(&both, Domain::Sync, &ctx(), b"m", &from_new), Ok(()));
        assert_eq!(KeyRing::new(vec![(1, b"k".to_vec())], 3), Err(KeyError::NoActiveKey(3)));
        assert_eq!(KeyRing::single(1, b""), Err(KeyError::Empty));
    }

    #[test]
    fn trailer_parse_rejects_wrong_shape() {
        let keys = KeyRing::single(1, b"k").expect("key");
        let t = sign(&keys, Domain::Vrrp, &ctx(), b"m", 1);
        assert!(Trailer::parse(&t[..43]).is_none());
        let mut bad = t;
        bad[0] = b'X';
        assert!(Trailer::parse(&bad).is_none());
        let mut bad = t;
        bad[2] = 2;
        assert!(Trailer::parse(&bad).is_none());
    }

    #[test]
    fn replay_window_semantics() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.accept(100), Ok(()));
        assert_eq!(w.accept(100), Err(AuthError::Replayed(100)));
        assert_eq!(w.accept(105), Ok(()));
        // Late but inside the window and unseen: accepted once.
        assert_eq!(w.accept(101), Ok(()));
        assert_eq!(w.accept(101), Err(AuthError::Replayed(101)));
        // 105 - 63 = 42 is the oldest still inside; 41 is too old.
        assert_eq!(w.check(42), Ok(()));
        assert_eq!(w.accept(41), Err(AuthError::Replayed(41)));
        // A big jump forgets everything below the new window.
        assert_eq!(w.accept(1_000), Ok(()));
        assert_eq!(w.accept(937), Ok(()));
        assert_eq!(w.accept(936), Err(AuthError::Replayed(936)));
        assert_eq!(w.highest(), Some(1_000));
    }

    #[test]
    fn counter_source_is_strictly_increasing_with_floor() {
        let mut c = CounterSource::starting_at(10);
        assert_eq!(c.next(0), 10);
        assert_eq!(c.next(0), 11);
        assert_eq!(c.next(500), 500);
        assert_eq!(c.next(400), 501);
        let mut top = CounterSource::starting_at(u64::MAX);
        assert_eq!(top.next(0), u64::MAX);
        assert_eq!(top.next(0), u64::MAX);
    }

    #[test]
    fn freshness_and_table_capacity() {
        let f = Freshness { window_us: 1_000 };
        assert_eq!(f.check(10_500, 10_000), Ok(()));
        assert_eq!(f.check(8_999, 10_000), Err(AuthError::Stale(8_999)));
        let mut t: ReplayTable<u8> = ReplayTable::with_capacity(2);
        assert_eq!(t.accept(&1, 10), Ok(()));
        assert_eq!(t.accept(&2, 20), Ok(()));
        assert_eq!(t.accept(&3, 30), Ok(())); // evicts sender 1 (lowest highest counter)
        assert!(t.window(&1).is_none());
        assert_eq!(t.accept(&2, 20), Err(AuthError::Replayed(20)));
    }
}
