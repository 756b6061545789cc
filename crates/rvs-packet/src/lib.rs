//! rvs-packet: the wire layer of rvs.
//!
//! Zero-copy parsing and in-place rewriting of Ethernet (with 802.1Q/802.1ad
//! tags), ARP, IPv4, IPv6, TCP, UDP and ICMP/ICMPv6 frames, with RFC 1624
//! incremental checksum updates; IP-in-IP encapsulation for the TUN forwarding
//! method; ICMP error translation and the ICMP "too big" replies of pmtu_disc.
//!
//! The per-packet path is [`parse_frame`] (or [`parse_ip`]) giving a
//! [`PacketSummary`], then the [`rewrite`] functions or [`encap::encapsulate`].
//! Nothing here panics on any input, allocates, or uses `unsafe`: bad input is a
//! [`ParseError`] whose [`ParseError::reason`] names the counter to bump.
//!
//! The typed views ([`ipv4::Ipv4Packet`], [`ipv6::Ipv6Packet`], [`tcp::TcpPacket`],
//! [`udp::UdpPacket`], [`icmp::IcmpPacket`]) wrap any `AsRef<[u8]>` buffer, check
//! its length once, and read or write fields in place.

pub mod arp;
pub mod checksum;
pub mod encap;
pub mod error;
pub mod ethernet;
mod field;
#[doc(hidden)]
pub mod fuzzing;
pub mod icmp;
pub mod ip;
pub mod ipv4;
pub mod ipv6;
pub mod parse;
pub mod rewrite;
pub mod tcp;
pub mod udp;

pub use error::{BuildError, ParseError, RewriteError};
pub use ethernet::MacAddr;
pub use icmp::QuotedFlow;
pub use ip::Family;
pub use parse::{IcmpInfo, PacketSummary, Parsed, parse_frame, parse_ip};
pub use tcp::TcpFlags;
