//! Teardown on Ctrl-C: every lab registers its resources here (weakly), and
//! [`install_signal_teardown`] starts a thread that, on the first SIGINT or
//! SIGTERM, releases every registered lab that is still alive and exits the
//! process with 128 + the signal number.

use std::sync::{Arc, Mutex, Weak};

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::error::{LabError, Result};
use crate::lab::{Resources, lock};

static REGISTRY: Mutex<Vec<Weak<Mutex<Resources>>>> = Mutex::new(Vec::new());
static INSTALLED: Mutex<bool> = Mutex::new(false);

/// Records a lab's resources so a signal can release them.
pub(crate) fn register(resources: &Arc<Mutex<Resources>>) {
    let mut registry = REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    registry.retain(|entry| entry.strong_count() > 0);
    registry.push(Arc::downgrade(resources));
}

/// Releases every registered lab still alive; returns how many there were.
pub(crate) fn teardown_all() -> usize {
    let live: Vec<Arc<Mutex<Resources>>> = {
        let registry = REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        registry.iter().filter_map(Weak::upgrade).collect()
    };
    for resources in &live {
        for error in lock(resources).release() {
            tracing::warn!(%error, "lab teardown on signal");
        }
    }
    live.len()
}

/// Installs the SIGINT/SIGTERM handler that tears down all labs of this
/// process before exiting (exit status 130 for SIGINT, 143 for SIGTERM).
/// Calling it again is a no-op.
pub fn install_signal_teardown() -> Result<()> {
    let mut installed = INSTALLED.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if *installed {
        return Ok(());
    }
    let mut signals = Signals::new([SIGINT, SIGTERM]).map_err(LabError::Signal)?;
    std::thread::Builder::new()
        .name("rvs-lab-signals".to_owned())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let count = teardown_all();
                eprintln!("rvs-lab: signal {signal}: tore down {count} lab(s)");
                std::process::exit(128 + signal);
            }
        })
        .map_err(LabError::Signal)?;
    *installed = true;
    Ok(())
}
