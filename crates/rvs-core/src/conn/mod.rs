//! Connections: the table of flows with IPVS semantics.
//!
//! - [`tcp`], [`sctp`]: the protocol state machines and which states count as active;
//! - [`timeouts`]: per-state timeouts and `--set tcp tcpfin udp`;
//! - [`table`]: the bounded table itself (slab + [`index`] + [`wheel`]).
//!
//! What happens to a connection on each packet (scheduling, persistence templates,
//! expire_nodest_conn, conn_reuse_mode) is decided in [`crate::engine`].

mod hugepages;
pub mod index;
pub mod sctp;
pub mod table;
pub mod tcp;
pub mod timeouts;
pub mod wheel;

pub use table::{Conn, ConnFlags, ConnId, ConnTable, InKey, TableFull};
pub use tcp::{Direction, TcpFlags, TcpState};
pub use timeouts::Timeouts;
