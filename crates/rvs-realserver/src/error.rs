//! The error type of the real-server setup and the decapsulator: every
//! failure names the file, command or setting it came from.

use std::path::PathBuf;

/// Why a real-server operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RealServerError {
    /// A lab helper (command runner, namespace entry, sysctl write) failed.
    #[error(transparent)]
    Lab(#[from] rvs_lab::LabError),
    /// A file or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The request itself is wrong (missing VIP, gateway of the wrong family...).
    #[error("{0}")]
    Invalid(String),
    /// `setup` ran before and was not torn down.
    #[error("already set up (state file {0} exists); run `rvs realserver teardown` first")]
    AlreadySetUp(PathBuf),
    /// `teardown` found no state file.
    #[error("nothing to tear down: no state file {0}")]
    NotSetUp(PathBuf),
    /// The state file cannot be read or written.
    #[error("state file {path}: {reason}")]
    State {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The decapsulator did not start.
    #[error("decapsulator did not start: {0}")]
    DecapStart(String),
    /// Some teardown steps failed (each one is listed).
    #[error("teardown incomplete: {}", .0.join("; "))]
    Teardown(Vec<String>),
}

impl RealServerError {
    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> RealServerError {
        RealServerError::Io { context: context.into(), source }
    }
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, RealServerError>;
