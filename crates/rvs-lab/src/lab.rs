//! The [`Lab`] handle: builds a topology, owns every namespace, process,
//! thread and file it created, and removes them all when dropped (also while
//! a panic unwinds) or on [`Lab::down`].

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::cmd::{self, CommandOutput};
use crate::description::{HttpServerKind, LabDescription};
use crate::error::{LabError, Result};
use crate::naming::RunId;
use crate::netns;
use crate::plan;
use crate::servers::Servers;
use crate::signals;
use crate::spec::{HttpServerChoice, Method, TopologySpec};
use crate::state::{self, ProcessId, RunState, WORK_DIR_PREFIX};
use crate::topology;

/// What a lab must remove, shared with the signal handler's registry.
#[derive(Debug)]
pub(crate) struct Resources {
    run_id: RunId,
    state_path: PathBuf,
    state: RunState,
    servers: Servers,
    released: bool,
}

impl Resources {
    fn record_netns(&mut self, name: &str) -> Result<()> {
        self.state.namespaces.push(name.to_owned());
        state::save(&self.state_path, &self.state)
    }

    fn record_children(&mut self) -> Result<()> {
        self.state.children = self.servers.child_pids().into_iter().filter_map(ProcessId::of).collect();
        state::save(&self.state_path, &self.state)
    }

    /// Removes everything, in dependency order: servers (they hold sockets,
    /// hence their namespaces), namespaces (their veths and bridges go with
    /// them), the work directory, the state file. Every step is attempted;
    /// the failures are returned. Idempotent.
    pub(crate) fn release(&mut self) -> Vec<String> {
        if self.released {
            return Vec::new();
        }
        self.released = true;
        let mut errors = self.servers.stop();
        // Children are gone now; make sure, in case a stop failed.
        state::kill_children(&self.state.children);
        let failed = netns::delete_all(&self.state.namespaces);
        errors.extend(failed.iter().map(|(name, why)| format!("deleting netns {name}: {why}")));
        if let Some(dir) = &self.state.work_dir
            && let Err(err) = state::remove_work_dir(dir)
        {
            errors.push(err.to_string());
        }
        // Keep the state file if namespaces remain, so sweep_stale can retry.
        if failed.is_empty()
            && let Err(err) = state::remove(&self.state_path)
        {
            errors.push(err.to_string());
        }
        tracing::debug!(run = %self.run_id, errors = errors.len(), "lab released");
        errors
    }
}

/// Locks resources even if a panic poisoned the mutex (teardown must run).
pub(crate) fn lock(resources: &Mutex<Resources>) -> MutexGuard<'_, Resources> {
    resources.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A running lab. Dropping it tears everything down.
#[derive(Debug)]
pub struct Lab {
    description: LabDescription,
    resources: Arc<Mutex<Resources>>,
}

impl Lab {
    /// Builds the topology of `spec`, starts the real servers' HTTP and UDP
    /// echo servers, and returns the running lab. Needs root (CAP_NET_ADMIN,
    /// CAP_SYS_ADMIN) and the tools `ip` and `ethtool` (plus `nginx` for
    /// [`HttpServerChoice::Nginx`]). On failure everything already created is
    /// removed again before the error is returned.
    pub fn up(spec: &TopologySpec) -> Result<Lab> {
        spec.validate()?;
        cmd::require_tool("ip")?;
        cmd::require_tool("ethtool")?;
        if spec.http_server == HttpServerChoice::Nginx {
            cmd::require_tool("nginx")?;
        }
        let started = std::time::Instant::now();
        let owner = ProcessId::current()?;
        let (run_id, state_path) = state::claim(owner)?;
        let work_dir = PathBuf::from(format!("{WORK_DIR_PREFIX}{run_id}"));
        let state = RunState { owner, namespaces: Vec::new(), children: Vec::new(), work_dir: Some(work_dir.clone()) };
        let resources =
            Resources { run_id: run_id.clone(), state_path, state, servers: Servers::default(), released: false };
        let resources = Arc::new(Mutex::new(resources));
        signals::register(&resources);
        let plan = match plan::build(spec, &run_id, work_dir.clone()) {
            Ok(plan) => plan,
            Err(err) => {
                lock(&resources).release();
                return Err(err);
            }
        };
        // From here on, an early return drops `lab`, which releases everything.
        let mut lab = Lab { description: plan.description.clone(), resources };
        {
            let mut guard = lock(&lab.resources);
            guard.state.work_dir = Some(work_dir.clone());
            state::save(&guard.state_path, &guard.state)?;
        }
        std::fs::create_dir_all(&work_dir).map_err(|e| LabError::io(format!("creating {}", work_dir.display()), e))?;
        let resources = Arc::clone(&lab.resources);
        topology::apply(&plan, &mut |name| lock(&resources).record_netns(name))?;
        lab.description.http_server = Some(lab.start_servers(spec)?);
        tracing::info!(run = %run_id, method = %spec.method, elapsed = ?started.elapsed(), "lab up");
        Ok(lab)
    }

    fn start_servers(&self, spec: &TopologySpec) -> Result<HttpServerKind> {
        let lab = &self.description;
        let mut kinds = Vec::new();
        for node in &lab.real_servers {
            let mut addrs: Vec<IpAddr> = node.interfaces.iter().flat_map(|interface| interface.addr.both()).collect();
            if spec.method != Method::Nat {
                addrs.extend(lab.vip.both());
            }
            let mut guard = lock(&self.resources);
            kinds.push(guard.servers.start_http(spec.http_server, node, lab.http_port, &lab.work_dir)?);
            guard.record_children()?;
            guard.servers.start_udp_echo(node, &addrs, lab.udp_port)?;
        }
        // Auto may fall back per server; report nginx only if all run it.
        Ok(if kinds.iter().all(|kind| *kind == HttpServerKind::Nginx) {
            HttpServerKind::Nginx
        } else {
            HttpServerKind::Builtin
        })
    }

    /// What was built.
    pub fn description(&self) -> &LabDescription {
        &self.description
    }

    /// The run id carried by every name of this lab.
    pub fn run_id(&self) -> &RunId {
        &self.description.run_id
    }

    /// Runs a program inside one of the lab's namespaces (`ip netns exec`),
    /// bounded by `timeout`; returns its output whatever the exit status.
    pub fn exec(&self, netns: &str, program: &str, args: &[&str], timeout: Duration) -> Result<CommandOutput> {
        netns::exec(netns, program, args, timeout)
    }

    /// Stops the HTTP server (nginx) of real server `index` (0 = rs1), as an operator
    /// stopping nginx would; its UDP echo and the rest of the lab keep running.
    pub fn stop_http(&self, index: usize) -> Result<()> {
        let node = self.description.real_servers.get(index).ok_or_else(|| {
            LabError::InvalidSpec(format!(
                "no real server {index} (the lab has {})",
                self.description.real_servers.len()
            ))
        })?;
        let mut guard = lock(&self.resources);
        guard.servers.stop_nginx_of(&node.netns)?;
        guard.record_children()
    }

    /// Starts the HTTP server (nginx) of real server `index` again after [`Lab::stop_http`];
    /// returns once it accepts connections.
    pub fn start_http(&self, index: usize) -> Result<()> {
        let lab = &self.description;
        let node = lab.real_servers.get(index).ok_or_else(|| {
            LabError::InvalidSpec(format!("no real server {index} (the lab has {})", lab.real_servers.len()))
        })?;
        let mut guard = lock(&self.resources);
        guard.servers.start_http(HttpServerChoice::Nginx, node, lab.http_port, &lab.work_dir)?;
        guard.record_children()
    }

    /// Tears the lab down now and reports any step that failed (dropping the
    /// lab does the same but can only log failures).
    pub fn down(self) -> Result<()> {
        let errors = lock(&self.resources).release();
        if errors.is_empty() { Ok(()) } else { Err(LabError::Teardown(errors)) }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let errors = lock(&self.resources).release();
        for error in errors {
            tracing::warn!(run = %self.description.run_id, %error, "lab teardown");
        }
    }
}
