//! The rvsd binary as a child process: starts from a file, serves the socket (mode 0600),
//! reloads on SIGHUP, stops on SIGTERM removing its socket, refuses a bad file with its line.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Child, Command, Stdio};

use common::{CONFIG, TempDir, list, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

fn spawn(dir: &TempDir) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .arg("--config")
        .arg(dir.config())
        .arg("--socket")
        .arg(dir.socket())
        .arg("--foreground")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: Signal) {
    kill(Pid::from_raw(i32::try_from(child.id()).unwrap()), sig).unwrap();
}

/// Kills the child if a test fails half way.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn the_binary_serves_reloads_on_sighup_and_stops_on_sigterm() {
    let dir = TempDir::new("proc");
    dir.write_config(CONFIG);
    let mut guard = Guard(Some(spawn(&dir)));
    let socket = dir.socket();
    wait_until("the admin socket", || socket.exists() && rvs_api::client::Client::connect(&socket).is_ok());
    assert_eq!(std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(list(&socket).services.len(), 2);

    // SIGHUP with a file that drops the UDP service.
    let cut = CONFIG.find("\n[[service]]\nvip = \"198.18.100.2:53\"").unwrap();
    dir.write_config(&CONFIG[..cut]);
    let child = guard.0.as_ref().unwrap();
    signal(child, Signal::SIGHUP);
    wait_until("the reload", || list(&socket).services.len() == 1);

    // SIGHUP with a broken file: still one service, still serving.
    dir.write_config("[[service]]\nvip = \n");
    signal(child, Signal::SIGHUP);
    wait_until("the refused reload", || match common::call(&socket, &rvs_api::Request::Status) {
        rvs_api::Response::Status(s) => s.counters.get("reloads_refused") == Some(&1),
        other => panic!("{other:?}"),
    });
    assert_eq!(list(&socket).services.len(), 1);

    signal(child, Signal::SIGTERM);
    let mut child = guard.0.take().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM: {status}");
    assert!(!socket.exists(), "SIGTERM removes the socket");
}

#[test]
fn a_bad_file_is_refused_at_start_with_its_line() {
    let dir = TempDir::new("badstart");
    // Line 4: weight out of range.
    dir.write_config(
        "[[service]]\nvip = \"198.18.100.1:80\"\n[[service.real]]\naddress = \"198.18.2.1\"\nweight = 65536\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .arg("--config")
        .arg(dir.config())
        .arg("--socket")
        .arg(dir.socket())
        .arg("--foreground")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rvs.toml:5:10: service[0].real[0].weight: illegal weight specified"), "{stderr}");
    assert!(!dir.socket().exists(), "nothing was bound");

    // No --config at all: usage, exit code 2.
    let out = Command::new(env!("CARGO_BIN_EXE_rvsd")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: rvsd --config FILE"));
}
