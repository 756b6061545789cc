//! Measures the time from a loopback server's death to the Down event with interval 200 ms and
//! fall 2 (TCP connect check, timeout 200 ms, default retry interval = interval / 2, jitter ±10 %).
//!
//! Run: `cargo run -p rvs-health --example detect_time [runs]`.
//! Expected from the rules: after the death, the next round comes within one interval
//! (0–220 ms), fails at once (connection refused on loopback), puts the state in doubt, and the
//! second failure comes one retry interval later (90–110 ms): about 90–330 ms in all.

use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rvs_api::{Proto, ServiceId};
use rvs_health::config::TcpCheckConfig;
use rvs_health::{CheckConfig, HealthConfig, HealthEventKind, Monitor, MonitorOptions, TargetSpec};

fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(20);
    let service =
        ServiceId::Addr { protocol: Proto::Tcp, addr: "198.18.0.1".parse().unwrap_or([0, 0, 0, 0].into()), port: 80 };
    let config = HealthConfig {
        interval: 0.2,
        timeout: 0.2,
        fall: 2,
        rise: 1,
        checks: vec![CheckConfig::Tcp(TcpCheckConfig::default())],
        ..HealthConfig::default()
    };
    let mut samples = Vec::new();
    for run in 0..runs {
        let Ok(listener) = TcpListener::bind("127.0.0.1:0") else { return eprintln!("cannot bind") };
        let Ok(addr) = listener.local_addr() else { return };
        let Ok(spec) = TargetSpec::from_config(service, addr, &config) else { return eprintln!("bad config") };
        let (tx, rx) = mpsc::channel();
        let Ok(handle) = Monitor::start(vec![spec], MonitorOptions::default(), tx) else { return };
        // Let it settle, at a point in the cycle that differs from run to run.
        std::thread::sleep(Duration::from_millis(500 + 37 * run as u64 % 200));
        let died = Instant::now();
        drop(listener);
        let detected = loop {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok(e) if e.kind == HealthEventKind::Down => break Some(died.elapsed()),
                Ok(_) => continue,
                Err(_) => break None,
            }
        };
        handle.stop();
        match detected {
            Some(d) => samples.push(d),
            None => eprintln!("run {run}: no Down event within 10 s"),
        }
    }
    samples.sort();
    if samples.is_empty() {
        return;
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let mean = samples.iter().map(|d| ms(*d)).sum::<f64>() / samples.len() as f64;
    println!(
        "death → Down over {} runs (interval 200 ms, fall 2): min {:.0} ms, median {:.0} ms, mean {:.0} ms, max {:.0} ms",
        samples.len(),
        ms(samples[0]),
        ms(samples[samples.len() / 2]),
        mean,
        ms(samples[samples.len() - 1]),
    );
}
