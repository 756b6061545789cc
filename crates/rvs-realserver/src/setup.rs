//! `setup` and `teardown`: what the seed guides do by hand on each real
//! server, recorded so that it can be undone exactly.
//!
//! Setup, per method (the sysctls and the VIP come from
//! [`rvs_lab::RealServerConfig`], which also applies them):
//! - DR: `arp_ignore=1`, `arp_announce=2` on `all`, `lo` and the uplinks, then
//!   the VIPs on lo as /32 and /128.
//! - TUN: the same, plus `rp_filter=0` on `all`, `default`, `lo` and the uplinks,
//!   plus the decapsulator (a child process with a status file), which turns
//!   the reverse-path filter of its own TUN device off.
//! - NAT: nothing on the host itself; the default route goes through the
//!   director (`--gateway`).
//!
//! `--gateway` may be given for DR/TUN too (the real router). The state file is
//! written before the first change, so even a setup that dies half-way can be
//! torn down; a setup that fails rolls back what it did.

use std::fs::File;
use std::net::IpAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use rvs_lab::realserver::Step;
use rvs_lab::{Method, RealServerConfig};

use crate::decap::{DEFAULT_TUN_PATTERN, MECHANISM};
use crate::error::{RealServerError, Result};
use crate::host::{self, Host, host_prefix, invalid, sysctl_display};
use crate::state::{self, DecapChild, DecapStatus, RouteChange, SetupState, SysctlChange};

/// How long setup waits for the decapsulator to report ready.
const DECAP_START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long teardown waits for the decapsulator to exit after SIGTERM.
const DECAP_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// How to start the decapsulator as a child process: the program and the
/// arguments that come before `decap` (`rvs realserver decap ...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launcher {
    /// The executable.
    pub program: PathBuf,
    /// Arguments before the `decap` subcommand (`["realserver"]` for `rvs`).
    pub leading_args: Vec<String>,
}

/// Who runs the decapsulator for TUN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecapLaunch {
    /// Setup starts it as a background process and teardown stops it.
    Daemon(Launcher),
    /// The caller runs [`crate::Decapsulator`] itself (for instance on a thread).
    Caller,
}

/// What `setup` should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupRequest {
    /// Forwarding method.
    pub method: Method,
    /// The VIPs (needed for DR and TUN).
    pub vips: Vec<IpAddr>,
    /// Uplinks; empty means the interfaces of the default routes.
    pub uplinks: Vec<String>,
    /// Default gateways to install, at most one per family (required for NAT).
    pub gateways: Vec<IpAddr>,
    /// Namespace to work in (`None`: the caller's).
    pub netns: Option<String>,
    /// Where the state, status and log files go.
    pub state_dir: PathBuf,
    /// Who runs the decapsulator (TUN only).
    pub decap: DecapLaunch,
    /// TUN device name or pattern for the decapsulator.
    pub tun_name: String,
}

impl SetupRequest {
    /// A request with the defaults: uplinks detected, no gateway, the caller's
    /// namespace, /run/rvs-realserver, the decapsulator run by the caller.
    pub fn new(method: Method, vips: Vec<IpAddr>) -> SetupRequest {
        SetupRequest {
            method,
            vips,
            uplinks: Vec::new(),
            gateways: Vec::new(),
            netns: None,
            state_dir: PathBuf::from(state::DEFAULT_STATE_DIR),
            decap: DecapLaunch::Caller,
            tun_name: DEFAULT_TUN_PATTERN.to_owned(),
        }
    }
}

/// Parses `dr`, `tun` or `nat`.
pub fn parse_method(text: &str) -> std::result::Result<Method, String> {
    match text.to_ascii_lowercase().as_str() {
        "dr" | "route" | "direct" => Ok(Method::Dr),
        "tun" | "tunnel" | "ipip" => Ok(Method::Tun),
        "nat" | "masq" | "masquerading" => Ok(Method::Nat),
        other => Err(format!("unknown method `{other}` (dr, tun or nat)")),
    }
}

fn validate(request: &SetupRequest) -> Result<()> {
    if request.method != Method::Nat && request.vips.is_empty() {
        return Err(invalid(format!("{} needs at least one --vip", request.method)));
    }
    if request.method == Method::Nat && request.gateways.is_empty() {
        return Err(invalid("nat needs --gateway: the director's address on the real servers' segment"));
    }
    let v4 = request.gateways.iter().filter(|gw| gw.is_ipv4()).count();
    if v4 > 1 || request.gateways.len() - v4 > 1 {
        return Err(invalid("at most one --gateway per address family"));
    }
    Ok(())
}

/// Applies the setup and records it; returns the record (see [`describe`]).
pub fn setup(request: &SetupRequest) -> Result<SetupState> {
    validate(request)?;
    let host = Host::new(request.netns.clone());
    let id = state::id_of(request.netns.as_deref());
    let path = state::state_path(&request.state_dir, &id);
    if path.exists() {
        return Err(RealServerError::AlreadySetUp(path));
    }
    let uplinks = if request.uplinks.is_empty() { host.default_route_devices()? } else { request.uplinks.clone() };
    let config = RealServerConfig { method: request.method, vips: request.vips.clone(), uplinks: uplinks.clone() };
    let mut sysctls = Vec::new();
    for step in config.steps() {
        if let Step::Sysctl { key, value } = step {
            let previous = host
                .read_sysctl(&key)?
                .ok_or_else(|| invalid(format!("{} does not exist (is the interface there?)", sysctl_display(&key))))?;
            sysctls.push(SysctlChange { key, previous, value });
        }
    }
    let on_lo: Vec<IpAddr> = host
        .addresses()?
        .into_iter()
        .filter(|found| found.dev == "lo" && found.prefix == host_prefix(&found.addr))
        .map(|found| found.addr)
        .collect();
    let vips_added = if request.method == Method::Nat {
        Vec::new()
    } else {
        request.vips.iter().filter(|vip| !on_lo.contains(vip)).copied().collect()
    };
    let mut routes = Vec::new();
    for gateway in &request.gateways {
        routes.push(RouteChange { gateway: *gateway, previous: host.default_routes(gateway.is_ipv6())? });
    }
    let mut record = SetupState {
        netns: request.netns.clone(),
        method: request.method.to_string(),
        vips: request.vips.clone(),
        uplinks,
        sysctls,
        vips_added,
        routes,
        decap: None,
    };
    // Recorded before the first change: a setup that dies half-way can still be torn down.
    state::write_json(&path, &record)?;
    match apply(request, &host, &config, &mut record, &path) {
        Ok(()) => Ok(record),
        Err(err) => {
            let undo = undo(&host, &record);
            if undo.errors.is_empty() {
                let _ = state::remove(&path);
            }
            for error in undo.errors {
                tracing::warn!(%error, "rolling back a failed setup");
            }
            Err(err)
        }
    }
}

fn apply(
    request: &SetupRequest,
    host: &Host,
    config: &RealServerConfig,
    record: &mut SetupState,
    path: &Path,
) -> Result<()> {
    config.apply(request.netns.as_deref())?;
    for change in &record.routes {
        let gateway = change.gateway.to_string();
        host.ip(&[family_flag(&change.gateway), "route", "replace", "default", "via", &gateway])?;
    }
    if let (Method::Tun, DecapLaunch::Daemon(launcher)) = (request.method, &request.decap) {
        let id = state::id_of(request.netns.as_deref());
        record.decap = Some(launch(launcher, request, &id)?);
        state::write_json(path, record)?;
    }
    Ok(())
}

fn family_flag(addr: &IpAddr) -> &'static str {
    if addr.is_ipv4() { "-4" } else { "-6" }
}

/// Starts `decap` as a background process in its own process group and waits
/// until its status file names it.
fn launch(launcher: &Launcher, request: &SetupRequest, id: &str) -> Result<DecapChild> {
    let dir = &request.state_dir;
    std::fs::create_dir_all(dir).map_err(|e| RealServerError::io(format!("creating {}", dir.display()), e))?;
    let status_file = state::status_path(dir, id);
    let log_file = state::log_path(dir, id);
    state::remove(&status_file)?;
    let log =
        File::create(&log_file).map_err(|e| RealServerError::io(format!("creating {}", log_file.display()), e))?;
    let log_err = log.try_clone().map_err(|e| RealServerError::io("duplicating the log file", e))?;
    let mut command = Command::new(&launcher.program);
    command.args(&launcher.leading_args).arg("decap");
    for vip in &request.vips {
        command.arg("--vip").arg(vip.to_string());
    }
    command.arg("--tun-name").arg(&request.tun_name).arg("--state-dir").arg(dir).arg("--id").arg(id);
    if let Some(netns) = &request.netns {
        command.arg("--netns").arg(netns);
    }
    command.stdin(Stdio::null()).stdout(log).stderr(log_err).process_group(0);
    let mut child =
        command.spawn().map_err(|e| RealServerError::io(format!("starting {}", launcher.program.display()), e))?;
    let pid = child.id();
    let deadline = Instant::now() + DECAP_START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = state::read_json::<DecapStatus>(&status_file)
            && status.pid == pid
        {
            tracing::info!(pid, tun = %status.tun, "decapsulator started: {MECHANISM}");
            return Ok(DecapChild { pid, tun: status.tun, status_file, log_file });
        }
        if let Ok(Some(exit)) = child.try_wait() {
            return Err(RealServerError::DecapStart(format!("it exited ({exit}): {}", log_tail(&log_file))));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(RealServerError::DecapStart(format!(
                "no status after {DECAP_START_TIMEOUT:?}: {}",
                log_tail(&log_file)
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join(" | ")
}

/// Whether `pid` is a decapsulator (and not a recycled pid).
fn is_decapsulator(pid: u32) -> bool {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    host::process_alive(pid) && cmdline.split(|b| *b == 0).any(|arg| arg == b"decap")
}

/// Stops a decapsulator: SIGTERM, then SIGKILL if it is still there after 5 s.
/// Reaps it when it is our child.
pub fn stop_decapsulator(child: &DecapChild) -> Result<()> {
    let pid = Pid::from_raw(i32::try_from(child.pid).map_err(|_| invalid("pid out of range"))?);
    if is_decapsulator(child.pid) {
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + DECAP_STOP_TIMEOUT;
        while host::process_alive(child.pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if host::process_alive(child.pid) {
            let _ = kill(pid, Signal::SIGKILL);
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // Reap it if we started it (ECHILD otherwise, which is fine).
    let _ = waitpid(pid, Some(WaitPidFlag::WNOHANG));
    state::remove(&child.status_file)?;
    state::remove(&child.log_file)?;
    if host::process_alive(child.pid) {
        return Err(RealServerError::Teardown(vec![format!("decapsulator pid {} is still running", child.pid)]));
    }
    Ok(())
}

/// What undoing did and what failed.
#[derive(Debug, Default)]
struct Undo {
    actions: Vec<String>,
    errors: Vec<String>,
}

/// Undoes a record, newest change first; every step is attempted.
fn undo(host: &Host, record: &SetupState) -> Undo {
    let mut result = Undo::default();
    if let Some(child) = &record.decap {
        match stop_decapsulator(child) {
            Ok(()) => {
                result.actions.push(format!("stopped decapsulator pid {} (device {} is gone)", child.pid, child.tun))
            }
            Err(err) => result.errors.push(err.to_string()),
        }
    }
    for change in record.routes.iter().rev() {
        let flag = family_flag(&change.gateway);
        let current = host.default_routes(change.gateway.is_ipv6()).unwrap_or_default();
        let gateway = change.gateway.to_string();
        if current.iter().any(|line| host::route_field(line, "via") == Some(gateway.as_str()))
            && let Err(err) = host.ip(&[flag, "route", "del", "default", "via", &gateway])
        {
            result.errors.push(err.to_string());
        }
        for line in &change.previous {
            let mut args = vec![flag, "route", "replace"];
            args.extend(restorable_route_words(line));
            match host.ip(&args) {
                Ok(_) => result.actions.push(format!("restored route: {line}")),
                Err(err) => result.errors.push(err.to_string()),
            }
        }
        if change.previous.is_empty() {
            result.actions.push(format!("removed default route via {gateway}"));
        }
    }
    let on_lo: Vec<IpAddr> =
        host.addresses().unwrap_or_default().into_iter().filter(|a| a.dev == "lo").map(|a| a.addr).collect();
    for vip in &record.vips_added {
        if !on_lo.contains(vip) {
            continue;
        }
        let address = format!("{vip}/{}", host_prefix(vip));
        match host.ip(&["addr", "del", &address, "dev", "lo"]) {
            Ok(_) => result.actions.push(format!("removed {address} from lo")),
            Err(err) => result.errors.push(err.to_string()),
        }
    }
    for change in record.sysctls.iter().rev() {
        match host.write_sysctls(&[(change.key.clone(), change.previous.clone())]) {
            Ok(()) => result.actions.push(format!("{} = {} (restored)", sysctl_display(&change.key), change.previous)),
            Err(err) => result.errors.push(err.to_string()),
        }
    }
    result
}

/// The words of an `ip route show` line that `ip route replace` accepts again
/// (status flags such as `linkdown` are dropped).
fn restorable_route_words(line: &str) -> Vec<&str> {
    const STATUS_FLAGS: [&str; 7] = ["linkdown", "dead", "offload", "trap", "rt_offload", "rt_trap", "offload_failed"];
    line.split_whitespace().filter(|word| !STATUS_FLAGS.contains(word)).collect()
}

/// Undoes the setup recorded for `netns` in `state_dir`; returns what was done.
pub fn teardown(netns: Option<&str>, state_dir: &Path) -> Result<Vec<String>> {
    let path = state::state_path(state_dir, &state::id_of(netns));
    let record: SetupState = state::read_json(&path)?.ok_or_else(|| RealServerError::NotSetUp(path.clone()))?;
    let host = Host::new(record.netns.clone());
    let result = undo(&host, &record);
    if !result.errors.is_empty() {
        return Err(RealServerError::Teardown(result.errors));
    }
    state::remove(&path)?;
    Ok(result.actions)
}

/// One line per change a setup made, for the user.
pub fn describe(record: &SetupState) -> Vec<String> {
    let mut lines = Vec::new();
    for change in &record.sysctls {
        lines.push(format!("{} = {} (was {})", sysctl_display(&change.key), change.value, change.previous));
    }
    for vip in &record.vips {
        let address = format!("{vip}/{}", host_prefix(vip));
        let verb = if record.vips_added.contains(vip) { "added" } else { "already had" };
        lines.push(format!("{verb} {address} on lo"));
    }
    for change in &record.routes {
        let before = if change.previous.is_empty() { "none".to_owned() } else { change.previous.join("; ") };
        lines.push(format!("default route via {} (was: {before})", change.gateway));
    }
    if let Some(child) = &record.decap {
        lines.push(format!(
            "decapsulator pid {} on {} (log {}): {MECHANISM}",
            child.pid,
            child.tun,
            child.log_file.display()
        ));
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_parse_case_insensitively() {
        assert_eq!(parse_method("DR"), Ok(Method::Dr));
        assert_eq!(parse_method("tun"), Ok(Method::Tun));
        assert_eq!(parse_method("nat"), Ok(Method::Nat));
        assert!(parse_method("gre").is_err());
    }

    #[test]
    fn requests_are_validated_before_touching_anything() {
        let vip: IpAddr = "198.18.100.1".parse().unwrap();
        assert!(validate(&SetupRequest::new(Method::Dr, vec![])).is_err());
        assert!(validate(&SetupRequest::new(Method::Dr, vec![vip])).is_ok());
        let mut nat = SetupRequest::new(Method::Nat, vec![vip]);
        assert!(validate(&nat).is_err(), "NAT without a gateway");
        nat.gateways = vec!["198.18.3.1".parse().unwrap()];
        assert!(validate(&nat).is_ok());
        nat.gateways.push("198.18.3.2".parse().unwrap());
        assert!(validate(&nat).is_err(), "two IPv4 gateways");
    }

    #[test]
    fn route_status_flags_are_not_replayed() {
        assert_eq!(
            restorable_route_words("default via 198.18.2.1 dev eth0 proto static linkdown"),
            ["default", "via", "198.18.2.1", "dev", "eth0", "proto", "static"]
        );
    }
}
