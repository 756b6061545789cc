//! `rvsadm`: a drop-in replacement for `ipvsadm` 1.31 that drives `rvsd` through its admin
//! API (`rvs-api`) instead of the kernel. Same commands and options (parsed like popt does),
//! same messages and exit statuses (2 usage, 255 refused/unknown option/no daemon, 1 failed
//! listing), same listings byte for byte (including ipvsadm's sort quirks), plus `--json`
//! listings, `--socket PATH`, and an all-or-nothing `-R`.
//!
//! Module map: [`popt`] lexes the command line, [`options`] is the option table,
//! [`matrix`] the legality rules, [`parse`] builds an [`parse::Invocation`], [`restore`]
//! reads `-R` input, [`render`] prints listings, [`sort`] orders them, [`names`] resolves
//! host and service names, [`refusal`] words the daemon's errors, [`app`] runs it all.

pub mod app;
pub mod error;
pub mod help;
pub mod matrix;
pub mod names;
pub mod numbers;
pub mod options;
pub mod parse;
pub mod popt;
pub mod refusal;
pub mod render;
pub mod restore;
pub mod sort;

pub use app::{Environment, Streams, run};
pub use error::CliError;
pub use names::{Names, NumericNames, SystemNames};
pub use parse::{Action, Format, Invocation, ListWhat, parse_command_line};

/// Environment variable naming the admin socket (`--socket` wins over it).
pub const SOCKET_ENV: &str = "RVSADM_SOCKET";
