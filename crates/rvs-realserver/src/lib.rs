//! rvs-realserver: the real-server side of rvs.
//!
//! - [`setup()`] / [`check()`] / [`teardown()`]: what an LVS real server needs
//!   for its forwarding method (VIP on lo, `arp_ignore`/`arp_announce` against
//!   the "ARP problem", reverse-path filter off for TUN, default route through
//!   the director for NAT), with every change recorded under
//!   /run/rvs-realserver/ so teardown restores exactly what was there, and a
//!   check that explains each wrong setting and how to fix it.
//! - [`Decapsulator`]: LVS-TUN decapsulation in user space for kernels without
//!   ipip/ip6tnl (raw IP sockets for protocols 4 and 41, inner packet written
//!   into a TUN device); see [`decap`].
//! - [`main_args`]: the `rvs realserver setup|check|teardown|decap` command line.

pub mod check;
mod cli;
pub mod decap;
pub mod error;
pub mod host;
pub mod setup;
pub mod state;

pub use check::{CheckReport, CheckRequest, Finding, check};
pub use cli::main_args;
pub use decap::{Counters, DecapConfig, Decapsulator, DropReason, MECHANISM, classify};
pub use error::{RealServerError, Result};
pub use rvs_lab::Method;
pub use setup::{DecapLaunch, Launcher, SetupRequest, describe, parse_method, setup, stop_decapsulator, teardown};
pub use state::{DecapStatus, SetupState};
