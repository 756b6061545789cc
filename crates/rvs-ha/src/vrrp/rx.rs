//! Receive-side validation of VRRP adverts (RFC 3768 §7.1, RFC 5798 §7.1) plus the rvs trailer:
//! every refusal has a [`DropReason`]. A [`Receiver`] holds one instance's policy and the replay
//! windows of its peers.

use std::net::IpAddr;

use crate::auth::{self, AuthContext, AuthError, AuthMode, Domain, Freshness, ReplayTable, Trailer};
use crate::vrrp::packet::{Advert, ChecksumKind, Family, V2Auth, VRRP_TTL, Version, VrrpView};
use crate::wire::WireError;

/// Why an advert was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DropReason {
    /// Shorter than its header or its stated address count.
    #[error("truncated")]
    Truncated,
    /// The IP header around it is unusable (bad checksum, fragment, wrong protocol).
    #[error("bad IP header")]
    BadIpHeader,
    /// Version is not the configured one (or v2 over IPv6).
    #[error("bad version {0}")]
    BadVersion(u8),
    /// Type is not ADVERTISEMENT.
    #[error("bad type {0}")]
    BadType(u8),
    /// Another virtual router's advert.
    #[error("wrong VRID {0}")]
    WrongVrid(u8),
    /// TTL / hop limit is not 255: the packet crossed a router.
    #[error("TTL/hop limit {0} is not 255")]
    BadTtl(u8),
    /// Checksum does not verify.
    #[error("bad checksum")]
    BadChecksum,
    /// v2 auth type/data differ from ours, or the rvs trailer is malformed or does not verify.
    #[error("authentication mismatch")]
    AuthMismatch,
    /// IPsec AH authentication: recognised but not verifiable here.
    #[error("unsupported authentication (AH)")]
    AuthUnsupported,
    /// The trailer's counter was already seen or is too old.
    #[error("replayed")]
    Replayed,
    /// The trailer's counter is outside the freshness window.
    #[error("stale counter")]
    Stale,
    /// No trailer though authentication is required.
    #[error("unauthenticated but authentication is required")]
    Unauthenticated,
    /// Number of addresses differs from the configured virtual addresses.
    #[error("address count {got}, expected {expected}")]
    AddressCountMismatch {
        /// Configured count.
        expected: usize,
        /// Count in the advert.
        got: usize,
    },
    /// v2 advert interval differs from ours (v3 adopts the master's interval instead).
    #[error("advert interval {got} cs, expected {expected} cs")]
    IntervalMismatch {
        /// Configured interval (centiseconds).
        expected: u16,
        /// Interval in the advert (centiseconds).
        got: u16,
    },
    /// Bytes after the message that are not an expected trailer.
    #[error("trailing bytes after the message")]
    TrailingBytes,
    /// Address family differs from the instance's.
    #[error("wrong address family")]
    WrongFamily,
    /// Our own advert looped back.
    #[error("advert from our own address")]
    FromSelf,
}

impl From<WireError> for DropReason {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated => DropReason::Truncated,
            _ => DropReason::BadIpHeader,
        }
    }
}

/// Which v3 checksum forms are accepted on IPv4 (IPv6 always uses the pseudo-header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumPolicy {
    /// Only RFC 5798 (pseudo-header).
    Rfc,
    /// Only the v2-style form (keepalived `v3_checksum_as_v2`).
    AsV2,
    /// Either form.
    Either,
}

/// What the IP layer told us about a received advert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxMeta {
    /// IP source (the sender's primary address).
    pub src: IpAddr,
    /// IP destination.
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    /// Receiver's wall clock in µs since the Unix epoch, for the freshness check (None = skip it).
    pub now_unix_us: Option<u64>,
}

/// One instance's receive policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxPolicy {
    /// Expected version.
    pub version: Version,
    /// Address family of the instance.
    pub family: Family,
    /// Our VRID.
    pub vrid: u8,
    /// Our advert interval in centiseconds (v2 adverts must match it).
    pub interval_cs: u16,
    /// Expected v2 authentication.
    pub v2_auth: V2Auth,
    /// Accepted v3 checksum forms on IPv4.
    pub v3_checksum: ChecksumPolicy,
    /// Require TTL/hop limit 255 (RFC: always; unicast peers may relax it).
    pub check_ttl: bool,
    /// If set, the advert must carry this many addresses.
    pub expected_addr_count: Option<usize>,
    /// rvs trailer handling.
    pub auth: AuthMode,
    /// Optional freshness window for trailer counters.
    pub freshness: Option<Freshness>,
}

impl RxPolicy {
    /// The RFC defaults for a version, family, VRID and interval: TTL checked, RFC checksum,
    /// no authentication, no address-count check.
    pub fn new(version: Version, family: Family, vrid: u8, interval_cs: u16) -> RxPolicy {
        RxPolicy {
            version,
            family,
            vrid,
            interval_cs,
            v2_auth: V2Auth::None,
            v3_checksum: ChecksumPolicy::Rfc,
            check_ttl: true,
            expected_addr_count: None,
            auth: AuthMode::Off,
            freshness: None,
        }
    }
}

/// An advert that passed every check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// Its contents.
    pub advert: Advert,
    /// The sender's address.
    pub src: IpAddr,
    /// Key id and counter of the verified trailer, if any.
    pub trailer: Option<(u8, u64)>,
}

/// Validates adverts for one instance and remembers peers' counters.
#[derive(Debug, Clone)]
pub struct Receiver {
    policy: RxPolicy,
    replay: ReplayTable<IpAddr>,
}

/// How many peers' replay windows a receiver keeps.
const PEER_WINDOWS: usize = 64;

impl Receiver {
    /// A receiver with `policy`.
    pub fn new(policy: RxPolicy) -> Receiver {
        Receiver { policy, replay: ReplayTable::with_capacity(PEER_WINDOWS) }
    }

    /// The policy.
    pub fn policy(&self) -> &RxPolicy {
        &self.policy
    }

    /// Checks `payload` (the IP payload of a received advert) and returns its contents.
    pub fn accept(&mut self, meta: &RxMeta, payload: &[u8]) -> Result<Accepted, DropReason> {
        let p = &self.policy;
        let family = Family::of(meta.src);
        if family != p.family || Family::of(meta.dst) != family {
            return Err(DropReason::WrongFamily);
        }
        let view = VrrpView::parse(payload, family)?;
        if view.version() != p.version {
            return Err(DropReason::BadVersion(view.version().number()));
        }
        if p.check_ttl && meta.ttl != VRRP_TTL {
            return Err(DropReason::BadTtl(meta.ttl));
        }
        let checksum_ok = match (view.version(), family, p.v3_checksum) {
            (Version::V2, _, _) | (Version::V3, Family::V4, ChecksumPolicy::AsV2) => {
                view.checksum_ok(ChecksumKind::MessageOnly, meta.src, meta.dst)
            }
            (Version::V3, Family::V4, ChecksumPolicy::Either) => {
                view.checksum_ok(ChecksumKind::PseudoHeader, meta.src, meta.dst)
                    || view.checksum_ok(ChecksumKind::MessageOnly, meta.src, meta.dst)
            }
            (Version::V3, _, _) => view.checksum_ok(ChecksumKind::PseudoHeader, meta.src, meta.dst),
        };
        if !checksum_ok {
            return Err(DropReason::BadChecksum);
        }
        if view.vrid() != p.vrid {
            return Err(DropReason::WrongVrid(view.vrid()));
        }
        if view.version() == Version::V2 {
            match (view.v2_auth(), p.v2_auth) {
                (Some(V2Auth::Ah), V2Auth::Ah) => return Err(DropReason::AuthUnsupported),
                (Some(got), want) if got == want => {}
                _ => return Err(DropReason::AuthMismatch),
            }
        }
        let trailer = self.check_trailer(meta, &view)?;
        let p = &self.policy;
        if let Some(expected) = p.expected_addr_count {
            let got = usize::from(view.count());
            if got != expected {
                return Err(DropReason::AddressCountMismatch { expected, got });
            }
        }
        if view.version() == Version::V2 && view.interval_cs() != p.interval_cs {
            return Err(DropReason::IntervalMismatch { expected: p.interval_cs, got: view.interval_cs() });
        }
        Ok(Accepted { advert: view.to_advert(), src: meta.src, trailer })
    }

    fn check_trailer(&mut self, meta: &RxMeta, view: &VrrpView<'_>) -> Result<Option<(u8, u64)>, DropReason> {
        let trailing = view.trailing();
        let (keys, required) = match &self.policy.auth {
            AuthMode::Off if trailing.is_empty() => return Ok(None),
            AuthMode::Off => return Err(DropReason::TrailingBytes),
            AuthMode::Permissive(k) => (k, false),
            AuthMode::Required(k) => (k, true),
        };
        if trailing.is_empty() {
            return if required { Err(DropReason::Unauthenticated) } else { Ok(None) };
        }
        let trailer = Trailer::parse(trailing).ok_or(DropReason::AuthMismatch)?;
        let ctx = AuthContext { src: meta.src, dst: meta.dst };
        auth::verify(keys, Domain::Vrrp, &ctx, view.message(), &trailer).map_err(|_| DropReason::AuthMismatch)?;
        if let (Some(f), Some(now)) = (self.policy.freshness, meta.now_unix_us) {
            f.check(trailer.counter, now).map_err(|_| DropReason::Stale)?;
        }
        self.replay.accept(&meta.src, trailer.counter).map_err(|e| match e {
            AuthError::Stale(_) => DropReason::Stale,
            _ => DropReason::Replayed,
        })?;
        Ok(Some((trailer.key_id, trailer.counter)))
    }
}
