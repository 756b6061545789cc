//! External command check (ldirectord `checkcommand`, keepalived `MISC_CHECK`): run a program
//! with placeholders expanded, capture stdout and stderr up to a cap, and kill the command (its
//! whole process group) at the deadline. Exit 0 = up; with `dynamic`, 1 = down and 2..=255 = up
//! with weight `status - 2` (keepalived `misc_dynamic`); otherwise any non-zero status = down.
//! [`run_command`] is also used to run notify commands.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::{CheckOutcome, Target, net};
use crate::config::{ConfigError, ExternalCheckConfig, invalid};

/// What a finished (or killed) command left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    /// Its exit status (None if it could not be waited for).
    pub status: Option<ExitStatus>,
    /// The first `cap` bytes of stdout.
    pub stdout: Vec<u8>,
    /// The first `cap` bytes of stderr.
    pub stderr: Vec<u8>,
    /// Whether it was killed at the deadline.
    pub timed_out: bool,
}

/// Reads a pipe to its end, keeping the first `cap` bytes (the rest is drained so the child
/// never blocks on a full pipe).
fn capture(mut pipe: impl Read + Send + 'static, cap: usize) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    let spawned = thread::Builder::new().name("rvs-health-pipe".into()).spawn(move || {
        let mut kept = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            match pipe.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let room = cap.saturating_sub(kept.len()).min(n);
                    kept.extend_from_slice(chunk.get(..room).unwrap_or_default());
                }
            }
        }
        let _ = tx.send(kept);
    });
    if spawned.is_err() {
        // No thread: the receiver reports nothing captured.
    }
    rx
}

/// Runs `argv` with no stdin, killing its process group at `deadline`.
pub fn run_command(argv: &[String], deadline: Instant, cap: usize) -> Result<CommandResult, String> {
    let Some((program, args)) = argv.split_first() else { return Err("empty command".into()) };
    let mut child = {
        use std::os::unix::process::CommandExt;
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run {program}: {e}"))?
    };
    let out_rx = child.stdout.take().map(|p| capture(p, cap));
    let err_rx = child.stderr.take().map(|p| capture(p, cap));
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) => {}
            Err(_) => break None,
        }
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = child.kill();
            break child.wait().ok();
        }
        thread::sleep((deadline - now).min(Duration::from_millis(5)));
    };
    // The pipes close when the group is gone; a grandchild that escaped the group could keep
    // one open, so do not wait for the readers for long.
    let grace = Instant::now() + Duration::from_millis(200);
    let collect = |rx: Option<mpsc::Receiver<Vec<u8>>>| {
        rx.and_then(|rx| rx.recv_timeout(grace.saturating_duration_since(Instant::now())).ok()).unwrap_or_default()
    };
    let stdout = collect(out_rx);
    let stderr = collect(err_rx);
    Ok(CommandResult { status, stdout, stderr, timed_out })
}

/// A compiled external check.
#[derive(Debug, Clone)]
pub struct ExternalCheck {
    program: String,
    args: Vec<String>,
    port: Option<u16>,
    dynamic: bool,
    output_cap: usize,
}

impl ExternalCheck {
    /// From configuration.
    pub fn new(c: &ExternalCheckConfig) -> Result<Self, ConfigError> {
        if c.program.is_empty() {
            return Err(invalid("program", "must not be empty"));
        }
        Ok(ExternalCheck {
            program: c.program.clone(),
            args: c.args.clone(),
            port: c.port,
            dynamic: c.dynamic,
            output_cap: c.output_cap,
        })
    }

    /// The command line for `target`, placeholders expanded.
    pub fn argv(&self, target: &Target) -> Vec<String> {
        let port = self.port.unwrap_or(target.real.port()).to_string();
        let mut argv = vec![self.program.clone()];
        argv.extend(self.args.iter().map(|a| {
            a.replace("{vip}", &target.vip_text())
                .replace("{vport}", &target.vport().to_string())
                .replace("{rip}", &target.real.ip().to_string())
                .replace("{rport}", &target.real.port().to_string())
                .replace("{port}", &port)
        }));
        argv
    }

    /// Runs it.
    pub fn run(&self, target: &Target, deadline: Instant) -> CheckOutcome {
        let result = match run_command(&self.argv(target), deadline, self.output_cap) {
            Ok(r) => r,
            Err(e) => return CheckOutcome::fail(e),
        };
        let output = || {
            let text = if result.stderr.is_empty() { &result.stdout } else { &result.stderr };
            if text.is_empty() { String::new() } else { format!(": {}", net::snippet(text.trim_ascii(), 200)) }
        };
        if result.timed_out {
            return CheckOutcome::fail(format!("{} timed out and was killed{}", self.program, output()));
        }
        let Some(status) = result.status else {
            return CheckOutcome::fail(format!("{}: lost track of the process", self.program));
        };
        match status.code() {
            Some(0) => CheckOutcome::PASS,
            Some(code) if self.dynamic && code >= 2 => {
                CheckOutcome::Pass { weight: Some(u32::try_from(code - 2).unwrap_or(0)) }
            }
            Some(code) => CheckOutcome::fail(format!("{} exited with status {code}{}", self.program, output())),
            None => {
                use std::os::unix::process::ExitStatusExt;
                let sig = status.signal().unwrap_or(0);
                CheckOutcome::fail(format!("{} killed by signal {sig}{}", self.program, output()))
            }
        }
    }
}
