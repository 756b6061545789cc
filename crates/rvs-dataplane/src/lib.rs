//! rvs-dataplane: the director's packet path.
//!
//! ```text
//! rx batch -> parse -> service lookup -> connection lookup or schedule -> rewrite -> tx batch
//! ```
//!
//! - [`io`]: frames, batches and the [`io::PacketIo`] trait every backend implements
//!   (in-memory for tests; AF_PACKET for real interfaces; AF_XDP later);
//! - [`nexthop`]: where a rewritten frame goes (egress interface, MACs, MTU);
//! - [`afpacket`]: the AF_PACKET backend (TPACKET_V3 rx rings, `sendmmsg` tx);
//! - [`steer`]: nftables netdev-ingress rules that keep the director's kernel away from
//!   the traffic rvs handles, and the rules queueing marked packets of firewall-mark
//!   services to NFQUEUE;
//! - [`nfqueue`]: the NFQUEUE source (packets after netfilter, with their firewall mark);
//! - [`kernel_nexthops`]: next hops read from the kernel's routes, links and neighbours.

pub mod afpacket;
pub mod io;
pub mod kernel_nexthops;
pub mod nexthop;
pub mod nfqueue;
pub mod pipeline;
pub mod steer;
