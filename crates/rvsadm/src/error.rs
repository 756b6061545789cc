//! Command-line errors with ipvsadm's messages and exit codes.

/// Why a command line was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CliError {
    /// A usage error (bad value, illegal or missing option ...): the message, exit 2.
    #[error("{0}")]
    Usage(String),
    /// No command first, or a problem with the first option: only the "Try ... -h" hint,
    /// exit 255.
    #[error("Try `-h' or '--help' for more information.")]
    TryHelp,
    /// popt refused an option after the command: "`word`: reason", exit 255.
    #[error("{word}: {reason}")]
    Popt {
        /// The offending command-line word.
        word: String,
        /// popt's reason ("unknown option", "missing argument" ...).
        reason: &'static str,
    },
}

impl CliError {
    /// A usage error.
    pub fn usage(msg: impl Into<String>) -> CliError {
        CliError::Usage(msg.into())
    }

    /// The exit status ipvsadm gives this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) => 2,
            CliError::TryHelp | CliError::Popt { .. } => 255,
        }
    }

    /// The text for stderr (with its newline), naming the program as invoked.
    pub fn render(&self, program: &str) -> String {
        match self {
            CliError::TryHelp => {
                format!("Try `{program} -h' or '{program} --help' for more information.\n")
            }
            other => format!("{other}\n"),
        }
    }
}
