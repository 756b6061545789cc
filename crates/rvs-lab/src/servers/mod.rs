//! The services each real server runs (HTTP and UDP echo), and their
//! shutdown. HTTP is nginx when available (or asked for), else the built-in
//! server; UDP echo is always built in.

mod http;
mod nginx;
mod udp;

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crate::cmd;
use crate::description::{HttpServerKind, Node};
use crate::error::{LabError, Result};
use crate::spec::HttpServerChoice;
use nginx::NginxProcess;

/// Every server process and thread of one lab.
#[derive(Debug, Default)]
pub(crate) struct Servers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    nginx: Vec<NginxProcess>,
}

impl Servers {
    /// Starts the HTTP server of real server `node`; returns which kind runs.
    pub fn start_http(
        &mut self,
        choice: HttpServerChoice,
        node: &Node,
        port: u16,
        work_dir: &Path,
    ) -> Result<HttpServerKind> {
        let use_nginx = match choice {
            HttpServerChoice::Nginx => {
                cmd::require_tool("nginx")?;
                true
            }
            HttpServerChoice::Auto => cmd::tool_available("nginx"),
            HttpServerChoice::Builtin => false,
        };
        if use_nginx {
            let probe = node.addr().map(|addr| SocketAddr::new(IpAddr::V4(addr.v4), port)).ok_or_else(|| {
                LabError::ServerStart {
                    server: "nginx",
                    netns: node.netns.clone(),
                    reason: "node has no address".to_owned(),
                }
            })?;
            match nginx::start(&node.netns, &node.name, port, &work_dir.join(&node.name), probe) {
                Ok(process) => {
                    self.nginx.push(process);
                    return Ok(HttpServerKind::Nginx);
                }
                Err(err) if choice == HttpServerChoice::Auto => {
                    tracing::warn!(%err, "nginx did not start, using the built-in HTTP server");
                }
                Err(err) => return Err(err),
            }
        }
        self.threads.push(http::start(&node.netns, &node.name, port, Arc::clone(&self.stop))?);
        Ok(HttpServerKind::Builtin)
    }

    /// Starts the UDP echo server of `node` on each of `addrs`.
    pub fn start_udp_echo(&mut self, node: &Node, addrs: &[IpAddr], port: u16) -> Result<()> {
        let handles = udp::start(&node.netns, &node.name, addrs, port, &self.stop)?;
        self.threads.extend(handles);
        Ok(())
    }

    /// Stops the nginx of the real server in `netns` (the built-in server cannot be stopped
    /// alone); its other servers keep running.
    pub fn stop_nginx_of(&mut self, netns: &str) -> Result<()> {
        let index =
            self.nginx.iter().position(|process| process.netns == netns).ok_or_else(|| LabError::ServerStart {
                server: "nginx",
                netns: netns.to_owned(),
                reason: "no nginx runs there (stopping one real server's HTTP server needs nginx)".to_owned(),
            })?;
        let mut process = self.nginx.remove(index);
        nginx::stop(&mut process)
    }

    /// Pids of the server processes (for the state file).
    pub fn child_pids(&self) -> Vec<u32> {
        self.nginx.iter().map(|process| process.child.id()).collect()
    }

    /// Stops everything; returns what failed. Afterwards no server holds a
    /// socket in any lab namespace, so deleting the namespaces frees them.
    pub fn stop(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        for mut process in self.nginx.drain(..) {
            if let Err(err) = nginx::stop(&mut process) {
                errors.push(err.to_string());
            }
        }
        self.stop.store(true, Ordering::Relaxed);
        for handle in self.threads.drain(..) {
            if handle.join().is_err() {
                errors.push("a server thread panicked".to_owned());
            }
        }
        errors
    }
}
