//! The monitor end to end on loopback: up/down/up sequences, alpha, dynamic weights, probes on
//! demand, and a hanging server that does not hold up the other servers' results.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use common::*;
use rvs_health::config::{ExternalCheckConfig, HttpCheckConfig, TcpCheckConfig};
use rvs_health::state::StartState;
use rvs_health::{Check, CheckConfig, HealthConfig, HealthEvent, HealthEventKind, Monitor, MonitorOptions, TargetSpec};

fn tcp_spec(real: SocketAddr, interval: f64, fall: u32, rise: u32) -> TargetSpec {
    let cfg = HealthConfig {
        interval,
        timeout: 0.5,
        fall,
        rise,
        checks: vec![CheckConfig::Tcp(TcpCheckConfig::default())],
        ..HealthConfig::default()
    };
    TargetSpec::from_config(service(), real, &cfg).unwrap()
}

fn options() -> MonitorOptions {
    MonitorOptions { seed: Some(7), ..MonitorOptions::default() }
}

/// Next event for `real`, skipping others, within a generous bound.
fn next_for(rx: &Receiver<HealthEvent>, real: SocketAddr, within: Duration) -> Option<HealthEvent> {
    let end = Instant::now() + within;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(e) if e.real == real => return Some(e),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

#[test]
fn down_then_up_again_when_the_server_returns() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    let handle = Monitor::start(vec![tcp_spec(addr, 0.05, 2, 2)], options(), tx).unwrap();
    // Starts up (default): no event while the server answers.
    assert!(next_for(&rx, addr, Duration::from_millis(300)).is_none());
    drop(listener);
    let down = next_for(&rx, addr, Duration::from_secs(10)).expect("down event");
    assert_eq!(down.kind, HealthEventKind::Down);
    assert!(down.reason.starts_with("tcp: connection refused"), "{}", down.reason);
    assert_eq!(down.service, service());
    let _listener = TcpListener::bind(addr).unwrap();
    let up = next_for(&rx, addr, Duration::from_secs(10)).expect("up event");
    assert_eq!(up.kind, HealthEventKind::Up);
    let status = handle.status().unwrap();
    assert!(status[0].up);
    handle.stop();
}

#[test]
fn alpha_starts_down_and_comes_up_on_first_success() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut spec = tcp_spec(addr, 0.05, 2, 5);
    spec.timing.start = StartState::Down;
    let (tx, rx) = mpsc::channel();
    let handle = Monitor::start(vec![spec], options(), tx).unwrap();
    let up = next_for(&rx, addr, Duration::from_secs(10)).expect("up event");
    assert_eq!(up.kind, HealthEventKind::Up);
    drop(handle);
}

#[test]
fn all_checks_must_pass_and_dynamic_weight_is_reported() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let dynamic = CheckConfig::External(ExternalCheckConfig {
        program: "sh".into(),
        args: vec!["-c".into(), "exit 12".into()],
        port: None,
        timeout: Some(5.0),
        dynamic: true,
        output_cap: 100,
    });
    let cfg = HealthConfig {
        interval: 0.05,
        fall: 1,
        checks: vec![CheckConfig::Tcp(TcpCheckConfig::default()), dynamic],
        ..HealthConfig::default()
    };
    let (tx, rx) = mpsc::channel();
    let handle = Monitor::start(vec![TargetSpec::from_config(service(), addr, &cfg).unwrap()], options(), tx).unwrap();
    // exit 12 → weight 10.
    let w = next_for(&rx, addr, Duration::from_secs(10)).expect("weight event");
    assert_eq!(w.kind, HealthEventKind::Weight(10));
    // The external check still passes, the TCP one fails: the round fails.
    drop(listener);
    let down = next_for(&rx, addr, Duration::from_secs(10)).expect("down event");
    assert_eq!(down.kind, HealthEventKind::Down);
    assert!(down.reason.starts_with("tcp:"), "{}", down.reason);
    drop(handle);
}

#[test]
fn probe_now_runs_a_round_before_the_interval() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut spec = tcp_spec(addr, 3600.0, 1, 1);
    spec.timing.warmup = false; // first round at once, the next one an hour later
    let (tx, rx) = mpsc::channel();
    let handle = Monitor::start(vec![spec], options(), tx).unwrap();
    // Let the first round (due at once) pass, then take the server away.
    std::thread::sleep(Duration::from_millis(200));
    assert!(handle.status().unwrap()[0].up);
    drop(listener);
    assert!(next_for(&rx, addr, Duration::from_millis(300)).is_none(), "no round due for an hour");
    handle.probe_now(service(), addr);
    let down = next_for(&rx, addr, Duration::from_secs(10)).expect("down after probe");
    assert_eq!(down.kind, HealthEventKind::Down);
}

#[test]
fn hanging_server_does_not_delay_the_others() {
    // One server accepts and never answers an HTTP check with a 30 s timeout; three others go
    // down. Their Down events must arrive long before the hanging check's timeout.
    let hang = hanging_server();
    let hang_cfg = HealthConfig {
        interval: 0.05,
        timeout: 30.0,
        fall: 1,
        checks: vec![CheckConfig::Http(HttpCheckConfig::default())],
        ..HealthConfig::default()
    };
    let mut specs = vec![TargetSpec::from_config(service(), hang, &hang_cfg).unwrap()];
    let mut listeners = Vec::new();
    for _ in 0..3 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        specs.push(tcp_spec(l.local_addr().unwrap(), 0.05, 1, 1));
        listeners.push(l);
    }
    let others: Vec<SocketAddr> = listeners.iter().map(|l| l.local_addr().unwrap()).collect();
    let (tx, rx) = mpsc::channel();
    // Two workers only: the hanging check holds one of them the whole time.
    let opts = MonitorOptions { workers: 2, ..options() };
    let handle = Monitor::start(specs, opts, tx).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let start = Instant::now();
    drop(listeners);
    let mut down = Vec::new();
    while down.len() < others.len() && start.elapsed() < Duration::from_secs(20) {
        if let Ok(e) = rx.recv_timeout(Duration::from_millis(100))
            && e.kind == HealthEventKind::Down
        {
            assert_ne!(e.real, hang, "the hanging server cannot have failed yet (30 s timeout)");
            down.push(e.real);
        }
    }
    down.sort();
    let mut want = others.clone();
    want.sort();
    assert_eq!(down, want);
    assert!(start.elapsed() < Duration::from_secs(20));
    handle.stop();
}

#[test]
fn empty_check_list_always_passes() {
    let spec = TargetSpec {
        target: target(closed_port()),
        timing: HealthConfig { interval: 0.05, start: StartState::Down, ..HealthConfig::default() }.timing().unwrap(),
        checks: Vec::<Check>::new(),
    };
    let real = spec.target.real;
    let (tx, rx) = mpsc::channel();
    let _h = Monitor::start(vec![spec], options(), tx).unwrap();
    assert_eq!(next_for(&rx, real, Duration::from_secs(10)).map(|e| e.kind), Some(HealthEventKind::Up));
}

#[test]
fn exhausted_pool_still_reports_instead_of_blocking() {
    // One worker, no replacements: a check hanging for 30 s holds it. The other target's check
    // cannot start; after twice its timeout + grace it fails as "all workers busy" rather than
    // waiting behind the hung one.
    let hang_cfg = HealthConfig {
        interval: 0.05,
        timeout: 30.0,
        warmup: false,
        checks: vec![CheckConfig::Http(HttpCheckConfig::default())],
        ..HealthConfig::default()
    };
    let other = closed_port();
    let other_cfg = HealthConfig { interval: 0.05, timeout: 0.2, fall: 1, warmup: false, ..HealthConfig::default() };
    let specs = vec![
        TargetSpec::from_config(service(), hanging_server(), &hang_cfg).unwrap(),
        TargetSpec::from_config(service(), other, &other_cfg).unwrap(),
    ];
    let (tx, rx) = mpsc::channel();
    let opts = MonitorOptions { workers: 1, max_threads: 1, ..options() };
    let _h = Monitor::start(specs, opts, tx).unwrap();
    let down = next_for(&rx, other, Duration::from_secs(10)).expect("down event");
    assert_eq!(down.kind, HealthEventKind::Down);
    assert_eq!(down.reason, "tcp: check not started: all workers busy");
}
