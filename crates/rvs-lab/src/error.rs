//! The error type of the lab: every failure names the command, path or
//! namespace it came from, so a failed `Lab::up` can be diagnosed from the
//! message alone.

use std::path::PathBuf;
use std::time::Duration;

/// Why a lab operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The topology spec asks for something the lab cannot build.
    #[error("invalid topology spec: {0}")]
    InvalidSpec(String),
    /// A tool the lab shells out to is not installed.
    #[error("required tool `{tool}` not found on PATH (run scripts/install-deps.sh as root)")]
    MissingTool {
        /// The program name looked up on PATH.
        tool: &'static str,
    },
    /// An external command exited unsuccessfully.
    #[error("`{command}` failed ({status}): {stderr}")]
    CommandFailed {
        /// The command line, for humans.
        command: String,
        /// Exit status as text ("exit status: 2", "signal: 9").
        status: String,
        /// What the command wrote to stderr (trimmed).
        stderr: String,
    },
    /// An external command did not finish in time and was killed.
    #[error("`{command}` did not finish within {timeout:?} and was killed")]
    CommandTimedOut {
        /// The command line, for humans.
        command: String,
        /// The limit that was exceeded.
        timeout: Duration,
    },
    /// A file-system or socket operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, including the path if any.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// Entering a network namespace failed.
    #[error("cannot enter network namespace {netns}: {source}")]
    EnterNetns {
        /// Namespace name under /run/netns.
        netns: String,
        /// The errno from setns(2) or open(2).
        #[source]
        source: std::io::Error,
    },
    /// No unused run id could be claimed.
    #[error("could not claim a unique run id in {dir}")]
    NoRunId {
        /// The state directory.
        dir: PathBuf,
    },
    /// A server in a real-server namespace did not come up.
    #[error("server {server} in {netns} did not start: {reason}")]
    ServerStart {
        /// Which server ("nginx", "builtin http", "udp echo").
        server: &'static str,
        /// The namespace it was started in.
        netns: String,
        /// What went wrong.
        reason: String,
    },
    /// Installing the signal handler failed.
    #[error("cannot install SIGINT/SIGTERM handler: {0}")]
    Signal(std::io::Error),
    /// Teardown hit one or more errors (every step was still attempted).
    #[error("teardown incomplete: {}", .0.join("; "))]
    Teardown(Vec<String>),
}

impl LabError {
    /// Wraps an I/O error with a description of what was being done.
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LabError::Io { context: context.into(), source }
    }
}

/// Result alias for the lab.
pub type Result<T, E = LabError> = std::result::Result<T, E>;
