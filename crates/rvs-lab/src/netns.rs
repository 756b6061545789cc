//! Named network namespaces (the `ip netns` kind under /run/netns): create,
//! delete, list, run a command inside one, and run a closure on a thread that
//! has entered one (sockets created there stay in that namespace).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use nix::sched::{CloneFlags, setns};

use crate::cmd::{self, CommandOutput};
use crate::error::{LabError, Result};

/// Where `ip netns` keeps its namespace handles.
pub const NETNS_DIR: &str = "/run/netns";

/// `ip netns add` prepares /run/netns on first use; serialise it within the
/// process so parallel labs do not race on that setup.
static CREATE_LOCK: Mutex<()> = Mutex::new(());

/// The handle path of a named namespace.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Creates a named namespace and brings its loopback up.
pub fn create(name: &str) -> Result<()> {
    {
        let _guard = CREATE_LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cmd::run("ip", &["netns", "add", name])?;
    }
    cmd::run("ip", &["-n", name, "link", "set", "lo", "up"])?;
    Ok(())
}

/// Deletes named namespaces (one `ip` call; continues past failures).
/// Interfaces inside them, veth ends included, go with them once nothing else
/// holds the namespace. Returns the names that could not be deleted.
pub fn delete_all(names: &[String]) -> Vec<(String, String)> {
    let existing: Vec<&String> = names.iter().filter(|name| netns_path(name).exists()).collect();
    if existing.is_empty() {
        return Vec::new();
    }
    let script: String = existing.iter().map(|name| format!("netns delete {name}\n")).collect();
    let batch = cmd::run_raw("ip", &["-force", "-batch", "-"], Some(&script), cmd::DEFAULT_TIMEOUT);
    let detail = match &batch {
        Ok(output) => output.stderr.trim().to_owned(),
        Err(err) => err.to_string(),
    };
    existing.into_iter().filter(|name| netns_path(name).exists()).map(|name| (name.clone(), detail.clone())).collect()
}

/// Names of all named namespaces on the machine.
pub fn list() -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(NETNS_DIR) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(LabError::io(format!("reading {NETNS_DIR}"), err)),
    };
    let mut names: Vec<String> =
        entries.filter_map(|entry| entry.ok()).filter_map(|entry| entry.file_name().into_string().ok()).collect();
    names.sort();
    Ok(names)
}

/// Whether a named namespace exists.
pub fn exists(name: &str) -> bool {
    netns_path(name).exists()
}

/// Runs `program args...` inside namespace `netns` via `ip netns exec`,
/// bounded by `timeout`; returns its output whatever the exit status.
pub fn exec(netns: &str, program: &str, args: &[&str], timeout: Duration) -> Result<CommandOutput> {
    let mut full: Vec<&str> = vec!["netns", "exec", netns, program];
    full.extend_from_slice(args);
    cmd::run_raw("ip", &full, None, timeout)
}

/// Like [`exec`], but fails unless the program exits with status 0.
pub fn exec_ok(netns: &str, program: &str, args: &[&str]) -> Result<String> {
    let output = exec(netns, program, args, cmd::DEFAULT_TIMEOUT)?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        let mut line = format!("ip netns exec {netns} ");
        line.push_str(&cmd::describe(program, args));
        Err(LabError::CommandFailed { command: line, status: output.status.to_string(), stderr: output.stderr })
    }
}

/// Moves the calling thread into namespace `netns`. Only for threads the lab
/// owns: the thread stays there until it exits.
pub fn enter(netns: &str) -> Result<()> {
    let path = netns_path(netns);
    let enter_error = |source| LabError::EnterNetns { netns: netns.to_owned(), source };
    let handle = File::open(&path).map_err(enter_error)?;
    setns(&handle, CloneFlags::CLONE_NEWNET).map_err(|errno| enter_error(std::io::Error::from(errno)))
}

/// Runs `work` on a fresh thread inside namespace `netns` and returns its
/// result. Sockets opened by `work` belong to that namespace, and /proc/sys/net
/// read or written there is that namespace's.
pub fn run_in<T, F>(netns: &str, work: F) -> Result<T>
where
    T: Send,
    F: FnOnce() -> Result<T> + Send,
{
    std::thread::scope(|scope| {
        let worker = scope.spawn(|| {
            enter(netns)?;
            work()
        });
        worker.join().unwrap_or_else(|_| {
            Err(LabError::io(format!("worker thread in {netns} panicked"), std::io::Error::other("panic")))
        })
    })
}

/// Writes sysctl values inside `netns`. Keys are paths below /proc/sys with
/// slashes (`net/ipv4/ip_forward`), so interface names with dots stay intact.
pub fn write_sysctls(netns: &str, settings: &[(String, String)]) -> Result<()> {
    if settings.is_empty() {
        return Ok(());
    }
    run_in(netns, || write_sysctls_here(settings))
}

/// Writes sysctl values in the calling thread's own namespace.
pub fn write_sysctls_here(settings: &[(String, String)]) -> Result<()> {
    for (key, value) in settings {
        let path = sysctl_path(key);
        std::fs::write(&path, value).map_err(|e| LabError::io(format!("writing {value} to {}", path.display()), e))?;
    }
    Ok(())
}

/// Reads a sysctl value inside `netns` (trimmed).
pub fn read_sysctl(netns: &str, key: &str) -> Result<String> {
    let path = sysctl_path(key);
    run_in(netns, || {
        std::fs::read_to_string(&path)
            .map(|text| text.trim().to_owned())
            .map_err(|e| LabError::io(format!("reading {}", path.display()), e))
    })
}

/// `/proc/sys/...` path of a sysctl key written with slashes.
pub fn sysctl_path(key: &str) -> PathBuf {
    Path::new("/proc/sys").join(key.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_keys_map_to_proc_paths() {
        assert_eq!(sysctl_path("net/ipv4/ip_forward"), PathBuf::from("/proc/sys/net/ipv4/ip_forward"));
        assert_eq!(
            sysctl_path("net/ipv4/conf/eth0.5/rp_filter"),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.5/rp_filter")
        );
    }
}
