//! Running external programs (`ip`, `ethtool`, `nginx` ...) with a time limit,
//! captured output and an error that quotes the command and its stderr.

use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};

/// Default limit for one configuration command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// What a finished command printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// How it exited.
    pub status: ExitStatus,
    /// Everything written to stdout (lossy UTF-8).
    pub stdout: String,
    /// Everything written to stderr (lossy UTF-8).
    pub stderr: String,
}

/// Renders a command line for messages.
pub(crate) fn describe(program: &str, args: &[&str]) -> String {
    let mut line = program.to_owned();
    for arg in args {
        line.push(' ');
        line.push_str(arg);
    }
    line
}

/// Whether `program` is an executable file in one of the PATH directories
/// (or an existing path, if it contains a slash).
pub fn tool_available(program: &str) -> bool {
    if program.contains('/') {
        return std::path::Path::new(program).is_file();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<std::path::PathBuf> = std::env::split_paths(&path).collect();
    // Root's tools live in sbin, which a non-login PATH may lack.
    for extra in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
        dirs.push(extra.into());
    }
    dirs.iter().any(|dir| dir.join(program).is_file())
}

/// Fails with `MissingTool` unless `program` is installed.
pub fn require_tool(program: &'static str) -> Result<()> {
    if tool_available(program) { Ok(()) } else { Err(LabError::MissingTool { tool: program }) }
}

/// Runs a command, feeding `stdin` if given, and waits at most `timeout`.
/// Returns its output whatever the exit status.
pub fn run_raw(program: &str, args: &[&str], stdin: Option<&str>, timeout: Duration) -> Result<CommandOutput> {
    let line = describe(program, args);
    tracing::debug!(command = %line, "run");
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| LabError::io(format!("cannot start `{line}`"), e))?;

    // Feed stdin and drain both pipes on helper threads so that neither side
    // can block the other; the wait below is bounded by `timeout`.
    let feeder = match (stdin, child.stdin.take()) {
        (Some(text), Some(mut pipe)) => {
            let text = text.to_owned();
            Some(thread::spawn(move || {
                // A child that exits early closes the pipe; that is reported by
                // its exit status, so a write error here is not interesting.
                let _ = pipe.write_all(text.as_bytes());
            }))
        }
        _ => None,
    };
    let stdout_reader = child.stdout.take().map(spawn_reader);
    let stderr_reader = child.stderr.take().map(spawn_reader);

    let status = wait_bounded(&mut child, timeout).map_err(|e| LabError::io(format!("waiting for `{line}`"), e))?;
    let Some(status) = status else {
        return Err(LabError::CommandTimedOut { command: line, timeout });
    };
    if let Some(handle) = feeder {
        let _ = handle.join();
    }
    let stdout = stdout_reader.map(join_reader).unwrap_or_default();
    let stderr = stderr_reader.map(join_reader).unwrap_or_default();
    Ok(CommandOutput { status, stdout, stderr })
}

/// Runs a command and fails unless it exits with status 0; returns stdout.
pub fn run(program: &str, args: &[&str]) -> Result<String> {
    run_with_input(program, args, None)
}

/// Like [`run`], with text fed on stdin.
pub fn run_with_input(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let output = run_raw(program, args, stdin, DEFAULT_TIMEOUT)?;
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(LabError::CommandFailed {
            command: describe(program, args),
            status: output.status.to_string(),
            stderr: output.stderr.trim().to_owned(),
        })
    }
}

/// Waits for `child` at most `timeout`; kills and reaps it on timeout
/// (returning `None`).
pub(crate) fn wait_bounded(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

fn spawn_reader<R: Read + Send + 'static>(mut pipe: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn join_reader(handle: thread::JoinHandle<String>) -> String {
    handle.join().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_stdout_and_feeds_stdin() {
        let out = run_with_input("cat", &[], Some("hello\n")).unwrap();
        assert_eq!(out, "hello\n");
    }

    #[test]
    fn failure_quotes_command_and_stderr() {
        let err = run("sh", &["-c", "echo boom >&2; exit 3"]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("sh -c"), "{text}");
        assert!(text.contains("boom"), "{text}");
        assert!(text.contains('3'), "{text}");
    }

    #[test]
    fn a_hanging_command_is_killed_at_the_deadline() {
        let err = run_raw("sleep", &["30"], None, Duration::from_millis(100)).unwrap_err();
        assert!(matches!(err, LabError::CommandTimedOut { .. }), "{err}");
    }

    #[test]
    fn tool_lookup() {
        assert!(tool_available("sh"));
        assert!(!tool_available("definitely-not-a-tool-rvs"));
    }
}
