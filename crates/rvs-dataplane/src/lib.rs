//! rvs-dataplane: the director's packet path.
//!
//! ```text
//! rx batch -> parse -> service lookup -> connection lookup or schedule -> rewrite -> tx batch
//! ```
//!
//! - [`io`]: frames, batches and the [`io::PacketIo`] trait every backend implements
//!   (in-memory for tests; AF_PACKET for real interfaces; AF_XDP later);
//! - [`nexthop`]: where a rewritten frame goes (egress interface, MACs, MTU).

pub mod io;
pub mod nexthop;
pub mod pipeline;
