//! The signals rvsd answers: SIGHUP reloads the configuration, SIGTERM and SIGINT stop the
//! daemon cleanly. Registered before the daemon starts (so an early signal is not fatal)
//! and consumed by [`crate::Rvsd::run_until_signalled`].

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalAction {
    /// Re-read the configuration.
    Reload,
    /// Stop.
    Stop(i32),
}

/// The registered signal handlers.
pub struct SignalWatcher {
    signals: Signals,
}

impl std::fmt::Debug for SignalWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignalWatcher")
    }
}

impl SignalWatcher {
    /// Installs the handlers for SIGHUP, SIGTERM and SIGINT.
    pub fn register() -> std::io::Result<SignalWatcher> {
        Ok(SignalWatcher { signals: Signals::new([SIGHUP, SIGTERM, SIGINT])? })
    }

    /// A handle that ends [`SignalWatcher::wait`] from another thread (`close()`).
    pub fn handle(&self) -> Handle {
        self.signals.handle()
    }

    /// Blocks until the next signal; `None` once the handle was closed.
    pub fn wait(&mut self) -> Option<SignalAction> {
        self.signals.forever().next().map(|s| if s == SIGHUP { SignalAction::Reload } else { SignalAction::Stop(s) })
    }
}
