//! VRRP advertisement format: VRRPv2 (RFC 3768, IPv4, with the RFC 2338 authentication field)
//! and VRRPv3 (RFC 5798, IPv4 and IPv6). A borrowed [`VrrpView`] reads a received message without
//! copying; an owned [`Advert`] is what the state machine consumes and what [`Advert::encode`]
//! turns into bytes. Nothing here panics on any input.
//!
//! ```text
//! v2:  | 2|1 | VRID | Prio | Count | AuthType | AdverInt(s) | Checksum | addrs (4n) | auth data (8) |
//! v3:  | 3|1 | VRID | Prio | Count | rsvd(4)|MaxAdverInt(12, cs) | Checksum | addrs (4n or 16n) |
//! ```
//!
//! v2 checksums cover the VRRP message only; v3 checksums also cover the IPv4/IPv6
//! pseudo-header, unless the "v2-style" variant (keepalived's `v3_checksum_as_v2`) is used.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum::Checksum;
use crate::vrrp::rx::DropReason;
use crate::wire::array16;

/// IP protocol number of VRRP.
pub const VRRP_PROTOCOL: u8 = 112;
/// TTL / hop limit every VRRP packet is sent with and must arrive with.
pub const VRRP_TTL: u8 = 255;
/// IPv4 multicast group of VRRP.
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group of VRRP.
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The only VRRP packet type: ADVERTISEMENT.
pub const ADVERT_TYPE: u8 = 1;
/// Fixed header length (both versions).
pub const HEADER_LEN: usize = 8;
/// Length of the v2 authentication data.
pub const V2_AUTH_DATA_LEN: usize = 8;
/// Largest v3 Max Advertise Interval (12 bits, centiseconds).
pub const MAX_V3_INTERVAL_CS: u16 = 0x0fff;

/// Protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768.
    V2,
    /// RFC 5798.
    V3,
}

impl Version {
    /// The version number on the wire.
    pub fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// Address family of the advert (v2 is always IPv4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 (4-byte addresses).
    V4,
    /// IPv6 (16-byte addresses).
    V6,
}

impl Family {
    /// Size of one address.
    pub fn addr_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }

    /// The family of `addr`.
    pub fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

/// VRRPv2 authentication (RFC 2338 types; RFC 3768 keeps only type 0 on the wire, keepalived keeps all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum V2Auth {
    /// Type 0: no authentication, 8 zero bytes of auth data.
    None,
    /// Type 1: clear-text password, up to 8 bytes, zero padded.
    Password([u8; 8]),
    /// Type 2: IPsec AH. Recognised, never verified here (the AH header lives in the IP layer).
    Ah,
}

impl V2Auth {
    /// A PASS authentication from a password of at most 8 bytes (longer ones are cut, as keepalived does).
    pub fn password(pass: &[u8]) -> V2Auth {
        let mut data = [0u8; 8];
        for (d, p) in data.iter_mut().zip(pass) {
            *d = *p;
        }
        V2Auth::Password(data)
    }

    /// The auth type number.
    pub fn type_number(&self) -> u8 {
        match self {
            V2Auth::None => 0,
            V2Auth::Password(_) => 1,
            V2Auth::Ah => 2,
        }
    }

    /// The 8 bytes of auth data carried in the message.
    pub fn data(&self) -> [u8; 8] {
        match self {
            V2Auth::Password(d) => *d,
            V2Auth::None | V2Auth::Ah => [0; 8],
        }
    }
}

/// Which checksum a v3 message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumKind {
    /// Over the pseudo-header and the message (RFC 5798 §5.2.8).
    PseudoHeader,
    /// Over the message only (v2 style; keepalived's `v3_checksum_as_v2`, IPv4 only).
    MessageOnly,
}

/// Why an [`Advert`] cannot be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// v2 intervals are whole seconds 1..=255; v3 intervals are 1..=4095 centiseconds.
    #[error("advert interval {0} cs cannot be encoded in this version")]
    Interval(u16),
    /// More than 255 addresses.
    #[error("too many addresses: {0}")]
    TooManyAddresses(usize),
    /// An address of the wrong family (v2 is IPv4 only; all addresses share the packet's family).
    #[error("address family does not match the packet")]
    FamilyMismatch,
    /// v3 has no authentication field.
    #[error("VRRPv3 has no authentication field")]
    AuthInV3,
}

/// An advertisement's contents.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Advert {
    /// Protocol version.
    pub version: Version,
    /// Virtual router id.
    pub vrid: u8,
    /// Sender's priority (0 = resigning, 255 = address owner).
    pub priority: u8,
    /// Advertisement interval in centiseconds (v2: the seconds field × 100).
    pub interval_cs: u16,
    /// v2 authentication; always `None` for v3.
    pub auth: V2Auth,
    /// The virtual addresses.
    pub addrs: Vec<IpAddr>,
}

impl Advert {
    /// Length of the encoded message.
    pub fn encoded_len(&self, family: Family) -> usize {
        let auth = if self.version == Version::V2 { V2_AUTH_DATA_LEN } else { 0 };
        HEADER_LEN + self.addrs.len() * family.addr_len() + auth
    }

    /// Encodes the message with its checksum. `src`/`dst` are the IP addresses it will travel
    /// between (they decide the family and feed the v3 pseudo-header); `kind` is ignored for v2
    /// (always message-only) and for IPv6 (always pseudo-header).
    pub fn encode(&self, src: IpAddr, dst: IpAddr, kind: ChecksumKind) -> Result<Vec<u8>, BuildError> {
        let family = Family::of(src);
        if Family::of(dst) != family || self.addrs.iter().any(|a| Family::of(*a) != family) {
            return Err(BuildError::FamilyMismatch);
        }
        let count = u8::try_from(self.addrs.len()).map_err(|_| BuildError::TooManyAddresses(self.addrs.len()))?;
        let mut out = Vec::with_capacity(self.encoded_len(family));
        out.extend_from_slice(&[(self.version.number() << 4) | ADVERT_TYPE, self.vrid, self.priority, count]);
        match self.version {
            Version::V2 => {
                if family != Family::V4 {
                    return Err(BuildError::FamilyMismatch);
                }
                let secs = self.interval_cs / 100;
                if !self.interval_cs.is_multiple_of(100) || secs == 0 || secs > 255 {
                    return Err(BuildError::Interval(self.interval_cs));
                }
                out.extend_from_slice(&[self.auth.type_number(), secs as u8, 0, 0]);
            }
            Version::V3 => {
                if self.auth != V2Auth::None {
                    return Err(BuildError::AuthInV3);
                }
                if self.interval_cs == 0 || self.interval_cs > MAX_V3_INTERVAL_CS {
                    return Err(BuildError::Interval(self.interval_cs));
                }
                out.extend_from_slice(&self.interval_cs.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
            }
        }
        for addr in &self.addrs {
            match addr {
                IpAddr::V4(a) => out.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => out.extend_from_slice(&a.octets()),
            }
        }
        if self.version == Version::V2 {
            out.extend_from_slice(&self.auth.data());
        }
        let sum = message_checksum(&out, self.version, family, kind, src, dst);
        if let Some(slot) = out.get_mut(6..8) {
            slot.copy_from_slice(&sum.to_be_bytes());
        }
        Ok(out)
    }
}

/// The checksum of a message whose checksum field is zero (or, when verifying, of a message
/// with its checksum in place: then the result is 0 for a correct one).
pub fn message_checksum(
    message: &[u8],
    version: Version,
    family: Family,
    kind: ChecksumKind,
    src: IpAddr,
    dst: IpAddr,
) -> u16 {
    let mut sum = Checksum::new();
    let pseudo = version == Version::V3 && (family == Family::V6 || kind == ChecksumKind::PseudoHeader);
    if pseudo {
        sum.add_pseudo_header(src, dst, VRRP_PROTOCOL, message.len() as u32);
    }
    sum.add(message).finish()
}

/// A received message, structurally checked: version 2 or 3, type ADVERTISEMENT, long enough for
/// the stated address count. Bytes after the message are kept as `trailing` (an rvs trailer, or garbage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VrrpView<'a> {
    message: &'a [u8],
    trailing: &'a [u8],
    family: Family,
}

impl<'a> VrrpView<'a> {
    /// Reads `bytes` (the IP payload) as a VRRP message of `family`.
    pub fn parse(bytes: &'a [u8], family: Family) -> Result<VrrpView<'a>, DropReason> {
        let header = bytes.get(..HEADER_LEN).ok_or(DropReason::Truncated)?;
        let (vers_type, count) = (header[0], usize::from(header[3]));
        let version = match vers_type >> 4 {
            2 => Version::V2,
            3 => Version::V3,
            other => return Err(DropReason::BadVersion(other)),
        };
        if vers_type & 0x0f != ADVERT_TYPE {
            return Err(DropReason::BadType(vers_type & 0x0f));
        }
        if version == Version::V2 && family != Family::V4 {
            return Err(DropReason::BadVersion(2));
        }
        let auth = if version == Version::V2 { V2_AUTH_DATA_LEN } else { 0 };
        let len = HEADER_LEN + count * family.addr_len() + auth;
        if bytes.len() < len {
            return Err(DropReason::Truncated);
        }
        let (message, trailing) = bytes.split_at(len);
        Ok(VrrpView { message, trailing, family })
    }

    /// The message bytes (header, addresses, v2 auth data).
    pub fn message(&self) -> &'a [u8] {
        self.message
    }

    /// Bytes after the message.
    pub fn trailing(&self) -> &'a [u8] {
        self.trailing
    }

    /// The family the message was read as.
    pub fn family(&self) -> Family {
        self.family
    }

    fn byte(&self, i: usize) -> u8 {
        self.message.get(i).copied().unwrap_or(0)
    }

    /// Protocol version.
    pub fn version(&self) -> Version {
        if self.byte(0) >> 4 == 2 { Version::V2 } else { Version::V3 }
    }

    /// Virtual router id.
    pub fn vrid(&self) -> u8 {
        self.byte(1)
    }

    /// Priority.
    pub fn priority(&self) -> u8 {
        self.byte(2)
    }

    /// Count of addresses.
    pub fn count(&self) -> u8 {
        self.byte(3)
    }

    /// v2 auth type (None for v3).
    pub fn auth_type(&self) -> Option<u8> {
        (self.version() == Version::V2).then(|| self.byte(4))
    }

    /// Advertisement interval in centiseconds (v2 seconds × 100; v3 low 12 bits).
    pub fn interval_cs(&self) -> u16 {
        match self.version() {
            Version::V2 => u16::from(self.byte(5)) * 100,
            Version::V3 => u16::from_be_bytes([self.byte(4), self.byte(5)]) & MAX_V3_INTERVAL_CS,
        }
    }

    /// The v3 reserved bits (high 4 bits of the interval word; must be sent as 0, ignored on receipt).
    pub fn v3_reserved(&self) -> u8 {
        if self.version() == Version::V3 { self.byte(4) >> 4 } else { 0 }
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        u16::from_be_bytes([self.byte(6), self.byte(7)])
    }

    /// Whether the checksum verifies with `kind` for a packet from `src` to `dst`.
    pub fn checksum_ok(&self, kind: ChecksumKind, src: IpAddr, dst: IpAddr) -> bool {
        message_checksum(self.message, self.version(), self.family, kind, src, dst) == 0
    }

    /// The addresses.
    pub fn addrs(&self) -> impl Iterator<Item = IpAddr> + 'a {
        let family = self.family;
        let end = HEADER_LEN + usize::from(self.count()) * family.addr_len();
        let list = self.message.get(HEADER_LEN..end).unwrap_or(&[]);
        list.chunks_exact(family.addr_len()).map(move |c| match c {
            [a, b, c, d] => IpAddr::V4(Ipv4Addr::new(*a, *b, *c, *d)),
            _ => IpAddr::V6(Ipv6Addr::from(array16(c))),
        })
    }

    /// v2 auth data (None for v3).
    pub fn auth_data(&self) -> Option<[u8; 8]> {
        if self.version() != Version::V2 {
            return None;
        }
        let start = self.message.len().checked_sub(V2_AUTH_DATA_LEN)?;
        self.message.get(start..)?.try_into().ok()
    }

    /// The v2 authentication as a typed value; unknown types yield `None`.
    pub fn v2_auth(&self) -> Option<V2Auth> {
        match self.auth_type()? {
            0 => Some(V2Auth::None),
            1 => Some(V2Auth::Password(self.auth_data()?)),
            2 => Some(V2Auth::Ah),
            _ => None,
        }
    }

    /// The owned contents. Unknown v2 auth types map to `V2Auth::None`; check [`Self::v2_auth`] first.
    pub fn to_advert(&self) -> Advert {
        Advert {
            version: self.version(),
            vrid: self.vrid(),
            priority: self.priority(),
            interval_cs: self.interval_cs(),
            auth: self.v2_auth().unwrap_or(V2Auth::None),
            addrs: self.addrs().collect(),
        }
    }
}
