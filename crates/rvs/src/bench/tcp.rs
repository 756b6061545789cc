//! TCP through the director with wrk in the client namespace: new connections per second
//! (every request on its own connection: `Connection: close`, which nginx honours by
//! closing, and wrk reconnects) and keep-alive requests per second, each with wrk's latency
//! percentiles; plus the director process's CPU per request when the director is a process
//! (rvsd, HAProxy).

use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::counters;
use super::systems::Spawned;

/// wrk's concurrent connections.
pub const CONNECTIONS: u32 = 64;

/// What one wrk run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WrkResult {
    /// Completed requests per second.
    pub requests_per_sec: f64,
    /// Completed requests.
    pub requests: u64,
    /// Socket errors (connect, read, write, timeout) plus non-2xx/3xx responses.
    pub errors: u64,
    /// Median latency, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile latency, milliseconds.
    pub p99_ms: f64,
}

/// One run with the director process's CPU.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TcpResult {
    /// wrk's figures.
    pub wrk: WrkResult,
    /// The director process's user + system time per request, microseconds.
    pub process_us_per_request: Option<f64>,
}

/// Runs wrk from `client_netns` against `url` for `duration`; with `close`, one request per
/// connection. `director_pid` is rvsd's or HAProxy's pid, for its CPU time.
pub fn run(
    client_netns: &str,
    url: &str,
    close: bool,
    duration: Duration,
    director_pid: Option<u32>,
) -> Result<TcpResult> {
    let secs = format!("{}s", duration.as_secs().max(1));
    let conns = CONNECTIONS.to_string();
    let mut args = vec!["-t1", "-c", &conns, "-d", &secs, "--latency"];
    if close {
        args.extend(["-H", "Connection: close"]);
    }
    args.push(url);
    let before = director_pid.map(counters::process_ticks).transpose()?;
    let wrk = Spawned::start(client_netns, "wrk", "wrk", &args, true)?;
    let (out, err) = wrk.wait_output(duration + Duration::from_secs(15))?;
    let after = director_pid.map(counters::process_ticks).transpose()?;
    let wrk = parse_wrk(&out).with_context(|| format!("wrk output:\n{out}\n{err}"))?;
    let process_us_per_request = match (before, after) {
        (Some(a), Some(b)) if wrk.requests > 0 => {
            Some(b.total().saturating_sub(a.total()) as f64 * (1e6 / counters::USER_HZ) / wrk.requests as f64)
        }
        _ => None,
    };
    Ok(TcpResult { wrk, process_us_per_request })
}

/// A wrk duration (`812.00us`, `2.81ms`, `1.02s`, `2.00m`) in milliseconds.
fn duration_ms(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let scale = match unit {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3600e3,
        _ => return None,
    };
    Some(value * scale)
}

/// Parses wrk's report (with `--latency`).
pub fn parse_wrk(text: &str) -> Result<WrkResult> {
    let mut rps = None;
    let mut requests = None;
    let mut errors = 0u64;
    let mut p50 = None;
    let mut p99 = None;
    for line in text.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => rps = v.parse::<f64>().ok(),
            [n, "requests", "in", ..] => requests = n.parse::<u64>().ok(),
            ["50%", v] => p50 = duration_ms(v),
            ["99%", v] => p99 = duration_ms(v),
            ["Socket", "errors:", rest @ ..] => {
                // connect N, read N, write N, timeout N
                errors += rest.iter().filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok()).sum::<u64>();
            }
            ["Non-2xx", "or", "3xx", "responses:", v] => errors += v.parse::<u64>().unwrap_or(0),
            _ => {}
        }
    }
    let (Some(requests_per_sec), Some(requests), Some(p50_ms), Some(p99_ms)) = (rps, requests, p50, p99) else {
        bail!("wrk printed no complete report");
    };
    Ok(WrkResult { requests_per_sec, requests, errors, p50_ms, p99_ms })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 10s test @ http://198.18.100.1/
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.95ms    1.03ms  25.10ms   89.58%
    Req/Sec    21.81k     1.32k   24.31k    72.00%
  Latency Distribution
     50%  812.00us
     75%    3.22ms
     90%    3.80ms
     99%    1.20s
  217049 requests in 10.00s, 176.12MB read
  Socket errors: connect 3, read 4, write 0, timeout 1
  Non-2xx or 3xx responses: 5
Requests/sec:  21702.51
Transfer/sec:     17.61MB
";

    #[test]
    fn wrk_report_fields_and_units() {
        let r = parse_wrk(REPORT).unwrap();
        assert_eq!(r.requests, 217_049);
        assert!((r.requests_per_sec - 21_702.51).abs() < 1e-9);
        // 812 us = 0.812 ms; 1.20 s = 1200 ms.
        assert!((r.p50_ms - 0.812).abs() < 1e-9);
        assert!((r.p99_ms - 1200.0).abs() < 1e-9);
        // 3 + 4 + 0 + 1 socket errors and 5 bad responses.
        assert_eq!(r.errors, 13);
    }

    #[test]
    fn a_report_without_latency_is_refused() {
        assert!(parse_wrk("Requests/sec: 5\n").is_err());
    }
}
