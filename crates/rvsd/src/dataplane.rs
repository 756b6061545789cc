//! The data plane's place in the daemon. **Stub: this is where the lead wires the packet
//! workers** (AF_PACKET rings + the `rvs-dataplane` pipeline: rx batch -> parse -> classify
//! -> connection lookup or schedule through the shared engine -> rewrite -> tx batch), and
//! whatever they install in the host (steering of VIP traffic, addresses, routes).
//!
//! For now [`start`] starts nothing and [`DataPlaneHandle::stop`] removes nothing. The
//! daemon calls `start` after the configuration is applied and `stop` on a clean shutdown
//! (SIGTERM/SIGINT), before the admin socket is removed; `stop` is the shutdown hook where
//! the data plane must remove everything it installed.

use std::sync::{Arc, Mutex};

use rvs_core::engine::Engine;

/// A running data plane.
#[derive(Debug)]
pub struct DataPlaneHandle {
    interfaces: Vec<String>,
}

impl DataPlaneHandle {
    /// The interfaces it was asked to forward on.
    pub fn interfaces(&self) -> &[String] {
        &self.interfaces
    }

    /// Stops the workers and removes what the data plane installed. (Stub: nothing to do.)
    pub fn stop(self) {
        tracing::debug!(interfaces = ?self.interfaces, "data plane stopped (no workers yet)");
    }
}

/// Starts the packet workers on the configured interfaces, sharing `engine` with the
/// control plane. (Stub: starts nothing.)
pub fn start(engine: Arc<Mutex<Engine>>, config: &rvs_config::Config) -> anyhow::Result<DataPlaneHandle> {
    drop(engine);
    tracing::info!(interfaces = ?config.director.interfaces, "data plane not started: packet workers are not wired yet");
    Ok(DataPlaneHandle { interfaces: config.director.interfaces.clone() })
}
