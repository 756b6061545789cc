//! Nothing is left behind, however a lab's owner ends: a panic while the lab
//! is up (unwinding drops it), a crash that skips all destructors (the next
//! `sweep_stale` removes the leftovers, nginx processes included, and leaves
//! live labs alone), and SIGTERM with the signal handler installed.
//!
//! The crash and signal cases re-run this test binary as a child process
//! (selected by the RVS_LAB_CHILD variable) that builds a lab, prints its run
//! id and then aborts or waits for the signal.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{assert_nothing_left, assert_real_servers_answer, namespaces_available, namespaces_of};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rvs_lab::{HttpServerChoice, Lab, Method, RunId, TopologySpec, install_signal_teardown, sweep_stale};

const CHILD_MODE: &str = "RVS_LAB_CHILD";

#[test]
fn a_panic_with_a_lab_up_leaves_nothing_behind() {
    if !namespaces_available("a_panic_with_a_lab_up_leaves_nothing_behind") {
        return;
    }
    let (run_tx, run_rx) = mpsc::channel();
    let outcome = std::panic::catch_unwind(move || {
        let lab = Lab::up(&TopologySpec::new(Method::Nat)).expect("lab comes up");
        run_tx.send(lab.run_id().clone()).unwrap();
        assert_eq!(namespaces_of(lab.run_id()).len(), 7);
        panic!("test failure in the middle of a lab");
    });
    assert!(outcome.is_err(), "the closure panicked");
    let run = run_rx.recv_timeout(Duration::from_secs(1)).expect("lab was up before the panic");
    assert_nothing_left(&run);
}

/// Starts this test binary as a child running only `test` in `mode`; returns
/// the child and the run id it printed.
fn spawn_child(test: &str, mode: &str) -> (std::process::Child, RunId) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD_MODE, mode)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (line_tx, line_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            // libtest may print "test <name> ... " on the same line first.
            if let Some((_, rest)) = line.split_once("RUN_ID=") {
                let id: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
                let _ = line_tx.send(id);
            }
        }
    });
    let id = line_rx.recv_timeout(Duration::from_secs(60)).expect("child printed its run id");
    (child, RunId::parse(&id).expect("a valid run id"))
}

/// Waits at most `limit` for `child` to exit; returns its exit code.
fn wait_child(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("child did not exit within {limit:?}");
}

#[test]
fn leftovers_of_a_crashed_owner_are_swept_and_live_labs_kept() {
    let test = "leftovers_of_a_crashed_owner_are_swept_and_live_labs_kept";
    if std::env::var(CHILD_MODE).as_deref() == Ok("abort") {
        // Child: a lab with nginx servers, then a crash that runs no Drop.
        let mut spec = TopologySpec::new(Method::Dr);
        spec.http_server = HttpServerChoice::Auto;
        let lab = Lab::up(&spec).expect("child lab comes up");
        println!("RUN_ID={}", lab.run_id());
        std::process::abort();
    }
    if !namespaces_available(test) {
        return;
    }
    // A live lab of this (running) process must survive the sweep.
    let live = Lab::up(&TopologySpec::new(Method::Tun)).expect("live lab comes up");
    let (mut child, crashed) = spawn_child(test, "abort");
    wait_child(&mut child, Duration::from_secs(60));
    assert_eq!(namespaces_of(&crashed).len(), 7, "the crash left the namespaces behind");

    let report = sweep_stale().expect("sweep runs");
    assert!(report.runs.contains(&crashed), "{report:?}");
    assert!(!report.runs.contains(live.run_id()), "{report:?}");
    if rvs_lab::cmd::tool_available("nginx") {
        // The three nginx servers of the crashed run held its namespaces.
        assert!(report.processes_killed >= 3, "{report:?}");
    }
    assert_nothing_left(&crashed);
    assert_eq!(namespaces_of(live.run_id()).len(), 7);
    assert_real_servers_answer(&live);
    let live_run = live.run_id().clone();
    drop(live);
    assert_nothing_left(&live_run);
}

#[test]
fn sigterm_with_the_handler_installed_tears_labs_down() {
    let test = "sigterm_with_the_handler_installed_tears_labs_down";
    if std::env::var(CHILD_MODE).as_deref() == Ok("signal") {
        install_signal_teardown().expect("handler installs");
        let lab = Lab::up(&TopologySpec::new(Method::Dr)).expect("child lab comes up");
        println!("RUN_ID={}", lab.run_id());
        // Wait (bounded) for the parent's SIGTERM; the handler exits.
        std::thread::sleep(Duration::from_secs(60));
        panic!("no signal arrived");
    }
    if !namespaces_available(test) {
        return;
    }
    let (mut child, run) = spawn_child(test, "signal");
    assert_eq!(namespaces_of(&run).len(), 7);
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    kill(pid, Signal::SIGTERM).unwrap();
    // 128 + SIGTERM(15): the handler tore down and exited.
    assert_eq!(wait_child(&mut child, Duration::from_secs(30)), Some(143));
    assert_nothing_left(&run);
}
