//! IPVS connection synchronisation messages (the kernel's ip_vs_sync.c wire format): version 1
//! (IPv4 and IPv6, fwmark, timeout, options) built and parsed, version 0 parsed (IPv4 only),
//! plus the rvs HMAC trailer (see [`crate::auth`], domain `rvs-sync`) with replay protection.
//!
//! A datagram is `message || trailer?`; the message's size field covers the message only, so a
//! kernel backup (which requires size == datagram length) refuses authenticated datagrams.

pub mod entry;
pub mod v0;
pub mod v1;

use std::net::IpAddr;

use crate::auth::{
    self, AuthContext, AuthError, AuthMode, Domain, Freshness, ReplayTable, Signer, TRAILER_LEN, Trailer,
};
pub use entry::SyncEntry;
pub use v1::SyncMessage;

/// Default multicast group (224.0.0.81).
pub const SYNC_GROUP_V4: std::net::Ipv4Addr = std::net::Ipv4Addr::new(224, 0, 0, 81);
/// Default UDP port.
pub const SYNC_PORT: u16 = 8848;

/// Why a sync datagram was dropped or a message could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum SyncError {
    /// Shorter than a header, its size field, or an entry.
    #[error("truncated")]
    Truncated,
    /// The size field exceeds the datagram or leaves bytes that are not an expected trailer.
    #[error("size field {stated} does not match datagram length {actual}")]
    SizeMismatch {
        /// Size field.
        stated: usize,
        /// Datagram length.
        actual: usize,
    },
    /// The syncid differs from the one this backup listens for.
    #[error("syncid {0} not ours")]
    WrongSyncId(u8),
    /// An entry's size runs past the message.
    #[error("entry runs past the message")]
    EntryOverrun,
    /// An entry's version nibble is not 0.
    #[error("unknown entry version {0}")]
    EntryVersion(u8),
    /// An entry's type byte is neither 0 (IPv4) nor has bit 0 (IPv6).
    #[error("unknown entry type {0}")]
    EntryType(u8),
    /// A malformed, duplicated or oversized option (its type given).
    #[error("bad option {0}")]
    BadOption(u8),
    /// Bytes after the last entry (beyond alignment padding).
    #[error("trailing bytes after the last entry")]
    TrailingBytes,
    /// An entry mixes IPv4 and IPv6 addresses (or an IPv6 entry for v0).
    #[error("entry addresses of mixed families")]
    MixedFamily,
    /// An entry too large for the 12-bit size field or for the message limit.
    #[error("entry too large")]
    EntryTooLarge,
    /// More than 255 entries in one message.
    #[error("more than 255 entries")]
    TooManyEntries,
    /// PE data needs a PE name.
    #[error("PE data without PE name")]
    PeDataWithoutName,
    /// No trailer though authentication is required.
    #[error("unauthenticated")]
    Unauthenticated,
    /// Malformed trailer, unknown key or bad tag.
    #[error("authentication mismatch")]
    AuthMismatch,
    /// Counter already seen.
    #[error("replayed")]
    Replayed,
    /// Counter outside the freshness window.
    #[error("stale")]
    Stale,
}

/// A backup's receive side: syncid filter, authentication and replay windows per master.
#[derive(Debug, Clone)]
pub struct SyncReceiver {
    syncid: u8,
    auth: AuthMode,
    freshness: Option<Freshness>,
    replay: ReplayTable<IpAddr>,
}

impl SyncReceiver {
    /// A receiver accepting `syncid` (0 = any) with `auth`.
    pub fn new(syncid: u8, auth: AuthMode, freshness: Option<Freshness>) -> SyncReceiver {
        SyncReceiver { syncid, auth, freshness, replay: ReplayTable::with_capacity(64) }
    }

    /// Decodes a datagram from `src` to `dst` (v1 or v0, with or without trailer).
    pub fn accept(
        &mut self,
        src: IpAddr,
        dst: IpAddr,
        datagram: &[u8],
        now_unix_us: Option<u64>,
    ) -> Result<SyncMessage, SyncError> {
        let size = match datagram.get(2..4) {
            Some([a, b]) => usize::from(u16::from_be_bytes([*a, *b])),
            _ => return Err(SyncError::Truncated),
        };
        let message = datagram.get(..size).ok_or(SyncError::SizeMismatch { stated: size, actual: datagram.len() })?;
        let trailing = datagram.get(size..).unwrap_or(&[]);
        let syncid = message.get(1).copied().unwrap_or(0);
        if self.syncid != 0 && syncid != self.syncid {
            return Err(SyncError::WrongSyncId(syncid));
        }
        let mismatch = SyncError::SizeMismatch { stated: size, actual: datagram.len() };
        let keys = match (&self.auth, trailing.is_empty()) {
            (AuthMode::Off, true) | (AuthMode::Permissive(_), true) => None,
            (AuthMode::Off, false) => return Err(mismatch),
            (AuthMode::Required(_), true) => return Err(SyncError::Unauthenticated),
            (AuthMode::Permissive(k) | AuthMode::Required(k), false) => Some(k),
        };
        if let Some(keys) = keys {
            if trailing.len() != TRAILER_LEN {
                return Err(mismatch);
            }
            let trailer = Trailer::parse(trailing).ok_or(SyncError::AuthMismatch)?;
            let ctx = AuthContext { src, dst };
            auth::verify(keys, Domain::Sync, &ctx, message, &trailer).map_err(|_| SyncError::AuthMismatch)?;
            if let (Some(f), Some(now)) = (self.freshness, now_unix_us) {
                f.check(trailer.counter, now).map_err(|_| SyncError::Stale)?;
            }
            self.replay.accept(&src, trailer.counter).map_err(|e| match e {
                AuthError::Stale(_) => SyncError::Stale,
                _ => SyncError::Replayed,
            })?;
        }
        decode(message)
    }
}

/// Decodes one message (exactly its size field long): an rvs end-of-round marker, v1 or v0.
pub fn decode(message: &[u8]) -> Result<SyncMessage, SyncError> {
    if let Some(n) = v1::decode_round_end(message) {
        let syncid = message.get(1).copied().unwrap_or(0);
        return Ok(SyncMessage { syncid, entries: Vec::new(), skipped: 0, round_end: Some(n) });
    }
    if v1::is_v1(message) { v1::decode(message) } else { v0::decode(message) }
}

/// A master's send side: packs entries into messages and appends trailers.
#[derive(Debug, Clone)]
pub struct SyncSender {
    syncid: u8,
    datagram_max: usize,
    signer: Option<Signer>,
}

impl SyncSender {
    /// A sender with `syncid`, datagrams of at most `datagram_max` bytes (trailer included),
    /// signing with `signer` if given.
    pub fn new(syncid: u8, datagram_max: usize, signer: Option<Signer>) -> SyncSender {
        SyncSender { syncid, datagram_max, signer }
    }

    /// The largest message that still leaves room for the trailer.
    pub fn message_max(&self) -> usize {
        let reserve = if self.signer.is_some() { TRAILER_LEN } else { 0 };
        self.datagram_max.saturating_sub(reserve)
    }

    /// The datagrams carrying `entries`, signed for `ctx` with counters of at least `floor`.
    pub fn datagrams(
        &mut self,
        entries: &[SyncEntry],
        ctx: &AuthContext,
        floor: u64,
    ) -> Result<Vec<Vec<u8>>, SyncError> {
        let mut messages = v1::pack(self.syncid, entries, self.message_max())?;
        if let Some(signer) = &mut self.signer {
            for m in &mut messages {
                signer.seal(ctx, m, floor);
            }
        }
        Ok(messages)
    }

    /// The end-of-round marker (see [`v1::round_end`]) after `datagrams` datagrams, signed for
    /// `ctx` like the others.
    pub fn round_end(&mut self, datagrams: usize, ctx: &AuthContext, floor: u64) -> Vec<u8> {
        let mut m = v1::round_end(self.syncid, datagrams);
        if let Some(signer) = &mut self.signer {
            signer.seal(ctx, &mut m, floor);
        }
        m
    }
}

/// The kernel's default master message limit for an interface MTU: the header plus as many
/// 24-byte v0-sized slots as fit in `mtu − IP − UDP − 4 − 20`, at most 255
/// (`set_sync_mesg_maxlen`); `ipv6` selects the 40-byte IPv6 header.
pub fn default_maxlen(mtu: usize, ipv6: bool) -> usize {
    let ip_udp = if ipv6 { 48 } else { 28 };
    let slots = mtu.saturating_sub(ip_udp + 4 + 20) / v0::ENTRY_LEN;
    4 + v0::ENTRY_LEN * slots.min(v1::MAX_ENTRIES)
}
