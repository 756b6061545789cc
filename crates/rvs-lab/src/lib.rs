//! rvs-lab: network-namespace topologies for rvs.
//!
//! [`Lab::up`] builds a client, a router, a switch (Linux bridges), one or two
//! directors and N real servers, each in its own network namespace, wired for
//! an LVS forwarding method ([`Method`]); the real servers run an HTTP server
//! (nginx or a built-in one) and a UDP echo server that answer with their
//! name. The returned [`LabDescription`] names every namespace, interface,
//! MAC and address. Dropping the [`Lab`] removes everything it created, also
//! on panic; [`sweep_stale`] removes what crashed runs left behind, and
//! [`install_signal_teardown`] tears labs down on SIGINT/SIGTERM.
//!
//! All names carry a run id (`rvs` + 6 hex digits), all addresses lie in
//! 198.18.0.0/15 and fd00::/8, and nothing is created in the host namespace.

pub mod cmd;
pub mod description;
pub mod error;
mod lab;
pub mod naming;
pub mod netns;
mod plan;
pub mod realserver;
mod servers;
mod signals;
pub mod spec;
mod state;
mod topology;

pub use description::{DualStack, HttpServerKind, Interface, LabDescription, MacAddr, Node, Role, Segment, Switch};
pub use error::{LabError, Result};
pub use lab::Lab;
pub use naming::RunId;
pub use plan::{HTTP_PORT, UDP_PORT, v4, v6};
pub use realserver::RealServerConfig;
pub use signals::install_signal_teardown;
pub use spec::{DirectorMode, HttpServerChoice, Method, TopologySpec};
pub use state::{SweepReport, sweep_stale};
