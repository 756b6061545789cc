//! Director failover for rvs, as pure protocol and decision code (no sockets, no clocks):
//!
//! - [`vrrp`]: VRRPv2/v3 adverts (parse, build, validate with drop reasons), the RFC 5798 state
//!   machine with tracking, preemption and sync groups;
//! - [`garp`]: gratuitous ARP / unsolicited NA frames and their repeat schedule;
//! - [`sync`]: IPVS connection sync messages (v1 build/parse, v0 parse);
//! - [`auth`]: the rvs HMAC-SHA256 trailer with anti-replay counters, shared by VRRP and sync;
//! - [`checksum`], [`wire`]: Internet checksum and minimal Ethernet/IP framing.

pub mod auth;
pub mod checksum;
pub mod garp;
pub mod sync;
pub mod vrrp;
pub mod wire;
