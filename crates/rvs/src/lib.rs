//! The `rvs` command's library: the lab that runs rvs in network namespaces ([`lab`]), shared
//! by the `rvs lab` subcommands and the end-to-end tests.

pub mod bench;
pub mod failover_lab;
pub mod import;
pub mod lab;
