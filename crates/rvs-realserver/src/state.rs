//! The record of what `setup` changed, kept under /run/rvs-realserver/ so
//! that `teardown` undoes exactly that (and nothing the host had before),
//! and the status file the decapsulator keeps up to date for `check`.
//!
//! One state file per namespace: `<id>.json`, where the id is the namespace
//! name or `host` for the caller's own namespace.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{RealServerError, Result};

/// Default directory of state, pid, status and log files.
pub const DEFAULT_STATE_DIR: &str = "/run/rvs-realserver";

/// A sysctl setup wrote, with the value it had before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlChange {
    /// Key as a path below /proc/sys.
    pub key: String,
    /// Value before setup.
    pub previous: String,
    /// Value setup wrote.
    pub value: String,
}

/// A default route setup installed (NAT), with the ones it replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteChange {
    /// The gateway (the director) the new default route goes through.
    pub gateway: IpAddr,
    /// `ip route` lines of the default routes of that family before setup.
    pub previous: Vec<String>,
}

/// The decapsulator setup started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecapChild {
    /// Its process id.
    pub pid: u32,
    /// The TUN device it writes into.
    pub tun: String,
    /// Its status file.
    pub status_file: PathBuf,
    /// Its log file (stdout and stderr).
    pub log_file: PathBuf,
}

/// Everything one `setup` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetupState {
    /// Namespace it ran in (`None`: the host's own).
    pub netns: Option<String>,
    /// Forwarding method, as on the command line (`dr`, `tun`, `nat`).
    pub method: String,
    /// The VIPs.
    pub vips: Vec<IpAddr>,
    /// The uplinks whose sysctls were set.
    pub uplinks: Vec<String>,
    /// Sysctls written, in order.
    pub sysctls: Vec<SysctlChange>,
    /// VIPs added to lo (those already there are not listed, and stay).
    pub vips_added: Vec<IpAddr>,
    /// Default routes replaced (NAT).
    pub routes: Vec<RouteChange>,
    /// The decapsulator (TUN).
    pub decap: Option<DecapChild>,
}

/// Counters and identity the decapsulator publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DecapStatus {
    /// Its process id.
    pub pid: u32,
    /// The TUN device it writes into.
    pub tun: String,
    /// How it works, in words.
    pub mechanism: String,
    /// The VIPs it accepts.
    pub vips: Vec<IpAddr>,
    /// Packets decapsulated and delivered.
    pub decapsulated: u64,
    /// Packets dropped because the inner destination is not a VIP.
    pub dropped_not_vip: u64,
    /// Packets dropped as malformed (bad headers, ECN rule, not a tunnel).
    pub dropped_malformed: u64,
    /// Packets the TUN device refused.
    pub dropped_write: u64,
}

/// Namespace id used in file names.
pub fn id_of(netns: Option<&str>) -> String {
    netns.unwrap_or("host").to_owned()
}

/// Path of the state file.
pub fn state_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.json"))
}

/// Path of the decapsulator's status file.
pub fn status_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.decap.json"))
}

/// Path of the decapsulator's pid file.
pub fn pid_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.decap.pid"))
}

/// Path of the decapsulator's log file.
pub fn log_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.decap.log"))
}

/// Writes JSON atomically (temporary file, then rename).
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| RealServerError::io(format!("creating {}", dir.display()), e))?;
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| RealServerError::State { path: path.to_owned(), reason: e.to_string() })?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text).map_err(|e| RealServerError::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| RealServerError::io(format!("renaming to {}", path.display()), e))
}

/// Reads JSON; `None` if the file does not exist.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(RealServerError::io(format!("reading {}", path.display()), err)),
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| RealServerError::State { path: path.to_owned(), reason: e.to_string() })
}

/// Removes a file; a missing file is fine.
pub fn remove(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(RealServerError::io(format!("removing {}", path.display()), err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_json() {
        let dir = std::env::temp_dir().join(format!("rvs-realserver-state-{}", std::process::id()));
        let state = SetupState {
            netns: Some("ns".into()),
            method: "tun".into(),
            vips: vec!["198.18.100.1".parse().unwrap()],
            uplinks: vec!["eth0".into()],
            sysctls: vec![SysctlChange {
                key: "net/ipv4/conf/all/arp_ignore".into(),
                previous: "0".into(),
                value: "1".into(),
            }],
            vips_added: vec![],
            routes: vec![RouteChange {
                gateway: "198.18.3.1".parse().unwrap(),
                previous: vec!["default via 198.18.3.9 dev eth0".into()],
            }],
            decap: None,
        };
        let path = state_path(&dir, "ns");
        write_json(&path, &state).unwrap();
        assert_eq!(read_json::<SetupState>(&path).unwrap(), Some(state));
        remove(&path).unwrap();
        assert_eq!(read_json::<SetupState>(&path).unwrap(), None);
        let _ = std::fs::remove_dir(&dir);
    }
}
