//! Ownership records of running labs, and the sweep of crashed ones.
//!
//! Each lab writes `/run/rvs-lab/<run id>.state` before it creates anything:
//! the owner's pid and start time (so a reused pid is not mistaken for the
//! owner), then every namespace, child process and work directory as they
//! are created. [`sweep_stale`] removes the leftovers of every run whose owner
//! process is gone, and namespaces of the lab's naming scheme that no state
//! file claims.

use std::collections::BTreeSet;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::error::{LabError, Result};
use crate::naming::RunId;
use crate::netns;

/// Directory of the state files.
pub const STATE_DIR: &str = "/run/rvs-lab";
/// Prefix of per-run work directories under /tmp.
pub(crate) const WORK_DIR_PREFIX: &str = "/tmp/rvs-lab-";

/// A process identified by pid and start time (clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcessId {
    pub pid: u32,
    pub start: u64,
}

impl ProcessId {
    /// The calling process.
    pub fn current() -> Result<ProcessId> {
        let pid = std::process::id();
        let start = start_time(pid).ok_or_else(|| {
            LabError::io("reading /proc/self/stat", std::io::Error::other("no start time for own pid"))
        })?;
        Ok(ProcessId { pid, start })
    }

    /// A child or other process by pid, if it is running.
    pub fn of(pid: u32) -> Option<ProcessId> {
        start_time(pid).map(|start| ProcessId { pid, start })
    }

    /// Whether this very process (same pid and start time) still runs.
    pub fn is_alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// Start time of a process (field 22 of /proc/<pid>/stat), if it exists.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

/// Field 22 of a /proc/<pid>/stat line. The command name (field 2) is in
/// parentheses and may contain spaces, so fields are counted after the last ')'.
fn parse_start_time(stat: &str) -> Option<u64> {
    let (_, after_comm) = stat.rsplit_once(')')?;
    // after_comm starts at field 3; field 22 is 19 fields further.
    after_comm.split_whitespace().nth(19)?.parse().ok()
}

/// What a state file records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RunState {
    pub owner: ProcessId,
    pub namespaces: Vec<String>,
    pub children: Vec<ProcessId>,
    pub work_dir: Option<PathBuf>,
}

impl RunState {
    fn render(&self) -> String {
        let mut text = format!("owner {} {}\n", self.owner.pid, self.owner.start);
        for name in &self.namespaces {
            text.push_str(&format!("netns {name}\n"));
        }
        for child in &self.children {
            text.push_str(&format!("child {} {}\n", child.pid, child.start));
        }
        if let Some(dir) = &self.work_dir {
            text.push_str(&format!("workdir {}\n", dir.display()));
        }
        text
    }

    fn parse(text: &str) -> Option<RunState> {
        let mut owner = None;
        let mut state = RunState {
            owner: ProcessId { pid: 0, start: 0 },
            namespaces: Vec::new(),
            children: Vec::new(),
            work_dir: None,
        };
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match (words.next(), words.next(), words.next()) {
                (Some("owner"), Some(pid), Some(start)) => {
                    owner = Some(ProcessId { pid: pid.parse().ok()?, start: start.parse().ok()? });
                }
                (Some("netns"), Some(name), None) => state.namespaces.push(name.to_owned()),
                (Some("child"), Some(pid), Some(start)) => {
                    state.children.push(ProcessId { pid: pid.parse().ok()?, start: start.parse().ok()? });
                }
                (Some("workdir"), Some(dir), None) => state.work_dir = Some(PathBuf::from(dir)),
                _ => {}
            }
        }
        state.owner = owner?;
        Some(state)
    }
}

fn state_path(run: &RunId) -> PathBuf {
    Path::new(STATE_DIR).join(format!("{run}.state"))
}

/// Draws a run id no other lab uses and claims it by creating its state file
/// (exclusive create, so two processes cannot claim the same id).
pub(crate) fn claim(owner: ProcessId) -> Result<(RunId, PathBuf)> {
    fs::create_dir_all(STATE_DIR).map_err(|e| LabError::io(format!("creating {STATE_DIR}"), e))?;
    let existing = netns::list()?;
    for _ in 0..64 {
        let run = RunId::random();
        let prefix = format!("{run}-");
        if existing.iter().any(|name| name.starts_with(&prefix)) {
            continue;
        }
        let path = state_path(&run);
        let state = RunState { owner, namespaces: Vec::new(), children: Vec::new(), work_dir: None };
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut file) => {
                file.write_all(state.render().as_bytes())
                    .map_err(|e| LabError::io(format!("writing {}", path.display()), e))?;
                return Ok((run, path));
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(LabError::io(format!("creating {}", path.display()), err)),
        }
    }
    Err(LabError::NoRunId { dir: STATE_DIR.into() })
}

/// Replaces a state file's content atomically (write + rename).
pub(crate) fn save(path: &Path, state: &RunState) -> Result<()> {
    let temporary = path.with_extension("state.tmp");
    fs::write(&temporary, state.render()).map_err(|e| LabError::io(format!("writing {}", temporary.display()), e))?;
    fs::rename(&temporary, path).map_err(|e| LabError::io(format!("renaming to {}", path.display()), e))
}

/// Removes a state file (missing is fine).
pub(crate) fn remove(path: &Path) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(LabError::io(format!("removing {}", path.display()), err)),
    }
}

/// Sends SIGKILL to each still-running child and waits (bounded) until they
/// are gone. Returns how many were killed.
pub(crate) fn kill_children(children: &[ProcessId]) -> usize {
    let mut killed = 0;
    for child in children.iter().filter(|child| child.is_alive()) {
        if let Ok(pid) = i32::try_from(child.pid)
            && kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok()
        {
            killed += 1;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(3);
    while children.iter().any(ProcessId::is_alive) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    killed
}

/// Removes a per-run work directory, but only one of the lab's own.
pub(crate) fn remove_work_dir(dir: &Path) -> Result<()> {
    if !dir.to_string_lossy().starts_with(WORK_DIR_PREFIX) {
        return Ok(());
    }
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(LabError::io(format!("removing {}", dir.display()), err)),
    }
}

/// What [`sweep_stale`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Runs whose owner was gone and whose leftovers were removed.
    pub runs: Vec<RunId>,
    /// Namespaces deleted (of those runs, or unclaimed ones of the scheme).
    pub namespaces: Vec<String>,
    /// Leftover server processes killed.
    pub processes_killed: usize,
    /// Steps that failed (the sweep goes on past them).
    pub errors: Vec<String>,
}

/// Removes what crashed lab runs left behind: for every state file whose
/// owner process is gone, its server processes, namespaces, work directory
/// and state file; then every namespace named by the lab scheme
/// (`rvs<6 hex>-<role>`) that no state file claims. Labs of running
/// processes are never touched.
pub fn sweep_stale() -> Result<SweepReport> {
    let mut report = SweepReport::default();
    let mut claimed: BTreeSet<RunId> = BTreeSet::new();
    let entries = match fs::read_dir(STATE_DIR) {
        Ok(entries) => entries.filter_map(|entry| entry.ok()).map(|entry| entry.path()).collect(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(err) => return Err(LabError::io(format!("reading {STATE_DIR}"), err)),
    };
    for path in entries {
        let Some(run) = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".state"))
            .and_then(RunId::parse)
        else {
            continue;
        };
        let state = fs::read_to_string(&path).ok().and_then(|text| RunState::parse(&text));
        if let Some(state) = &state
            && state.owner.is_alive()
        {
            claimed.insert(run);
            continue;
        }
        // Owner gone (or the file is unreadable garbage of ours): clean up.
        let state = state.unwrap_or(RunState {
            owner: ProcessId { pid: 0, start: 0 },
            namespaces: Vec::new(),
            children: Vec::new(),
            work_dir: None,
        });
        report.processes_killed += kill_children(&state.children);
        let prefix = format!("{run}-");
        let mut names: BTreeSet<String> = state.namespaces.iter().cloned().collect();
        names.extend(netns::list()?.into_iter().filter(|name| name.starts_with(&prefix)));
        let names: Vec<String> = names.into_iter().collect();
        let failed = netns::delete_all(&names);
        report.errors.extend(failed.iter().map(|(name, why)| format!("deleting netns {name}: {why}")));
        report.namespaces.extend(names.into_iter().filter(|name| !netns::exists(name)));
        let work_dir = state.work_dir.clone().unwrap_or_else(|| PathBuf::from(format!("{WORK_DIR_PREFIX}{run}")));
        if let Err(err) = remove_work_dir(&work_dir) {
            report.errors.push(err.to_string());
        }
        if let Err(err) = remove(&path) {
            report.errors.push(err.to_string());
        }
        report.runs.push(run);
    }
    // Namespaces of the scheme that no live run claims.
    let orphans: Vec<String> = netns::list()?
        .into_iter()
        .filter(|name| RunId::of_netns(name).is_some_and(|run| !claimed.contains(&run)))
        .filter(|name| RunId::of_netns(name).is_some_and(|run| !state_path(&run).exists()))
        .collect();
    let failed = netns::delete_all(&orphans);
    report.errors.extend(failed.iter().map(|(name, why)| format!("deleting netns {name}: {why}")));
    report.namespaces.extend(orphans.into_iter().filter(|name| !netns::exists(name)));
    if !report.runs.is_empty() || !report.namespaces.is_empty() {
        tracing::info!(runs = report.runs.len(), namespaces = report.namespaces.len(), "swept stale labs");
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_is_field_22_even_with_spaces_in_the_name() {
        // Fields: 1 pid, 2 (comm), 3 state, 4..21 = 18 numbers, 22 starttime.
        let line = "42 (a b) c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 777 99 100";
        assert_eq!(parse_start_time(line), Some(777));
        assert_eq!(parse_start_time("42 (x) S 1"), None);
    }

    #[test]
    fn own_process_is_alive_and_a_wrong_start_time_is_not() {
        let me = ProcessId::current().unwrap();
        assert!(me.is_alive());
        assert!(!ProcessId { pid: me.pid, start: me.start + 1 }.is_alive());
    }

    #[test]
    fn state_round_trips() {
        let state = RunState {
            owner: ProcessId { pid: 10, start: 20 },
            namespaces: vec!["rvs000001-client".into(), "rvs000001-rs1".into()],
            children: vec![ProcessId { pid: 11, start: 21 }],
            work_dir: Some("/tmp/rvs-lab-rvs000001".into()),
        };
        assert_eq!(RunState::parse(&state.render()), Some(state));
        assert_eq!(RunState::parse("netns x\n"), None, "no owner line");
    }

    #[test]
    fn only_lab_work_dirs_are_removed() {
        // A directory outside /tmp/rvs-lab-* is never deleted.
        let outside = std::env::temp_dir().join(format!("rvs-keep-{}", std::process::id()));
        fs::create_dir_all(&outside).unwrap();
        remove_work_dir(&outside).unwrap();
        assert!(outside.exists());
        fs::remove_dir_all(&outside).unwrap();
    }
}
