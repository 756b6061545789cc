//! What a client sees of a director failover: a UDP query to the VIP every 5 ms (5 ms answer
//! timeout) and a short TCP connection (one HTTP GET) every 20 ms, both from the client
//! namespace. The takeover time is the longest stretch without an answered query from the
//! failure on: from the last answered query before it to the first one after, or between two
//! answered queries after it. Used by the failover tests and by `rvs bench`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

/// Time between two UDP queries, and how long each waits for its answer.
pub const PROBE_EVERY: Duration = Duration::from_millis(5);
/// Time between two short TCP connections.
pub const CONNECT_EVERY: Duration = Duration::from_millis(20);

/// What the prober recorded: when each answered query was sent, and how many went unanswered.
type ProbeLog = (Vec<Instant>, usize);

/// Queries the VIP over UDP every [`PROBE_EVERY`] until finished.
pub struct Prober {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<ProbeLog>>>,
}

/// The result of a probe run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// The service interruption from the failure on (None: never answered again).
    pub interruption: Option<Duration>,
    /// Queries that got no answer within their timeout, over the whole run.
    pub lost: usize,
    /// Queries answered.
    pub answered: usize,
}

impl Prober {
    /// Starts querying `target` (an address and port with a UDP echo-like service) from `netns`.
    pub fn start(netns: &str, target: SocketAddr) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, netns) = (stop.clone(), netns.to_string());
        let thread = std::thread::spawn(move || -> Result<ProbeLog> {
            rvs_lab::netns::enter(&netns).with_context(|| format!("entering {netns}"))?;
            let bind: SocketAddr = if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse()?;
            let s = UdpSocket::bind(bind)?;
            s.set_read_timeout(Some(PROBE_EVERY))?;
            let (mut answered, mut lost) = (Vec::new(), 0);
            let mut buf = [0u8; 512];
            while !flag.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let _ = s.send_to(b"who?", target);
                if s.recv_from(&mut buf).is_ok() {
                    answered.push(sent);
                } else {
                    lost += 1;
                }
                std::thread::sleep(PROBE_EVERY.saturating_sub(sent.elapsed()));
            }
            Ok((answered, lost))
        });
        Prober { stop, thread: Some(thread) }
    }

    /// Stops and returns the interruption counted from `failure` on.
    pub fn finish(mut self, failure: Instant) -> Result<ProbeOutcome> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().context("prober already finished")?;
        let (answered, lost) = thread.join().map_err(|_| anyhow!("the prober thread panicked"))??;
        Ok(ProbeOutcome { interruption: longest_gap(&answered, failure), lost, answered: answered.len() })
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The longest time without an answered query from `failure` on, given the send times of the
/// answered queries (in order): the gap from the last one before `failure` (or `failure`
/// itself when there was none) to the first after it, or between two after it. None when no
/// query was answered after `failure`.
pub fn longest_gap(answered: &[Instant], failure: Instant) -> Option<Duration> {
    let last_before = answered.iter().rev().find(|t| **t < failure).copied().unwrap_or(failure);
    let after: Vec<Instant> = answered.iter().copied().filter(|t| *t >= failure).collect();
    std::iter::once(last_before).chain(after.iter().copied()).zip(after.iter().copied()).map(|(a, b)| b - a).max()
}

/// Opens a short TCP connection (one HTTP/1.0 GET, answer must name a real server "rs...")
/// every [`CONNECT_EVERY`] until finished; counts the good and the failed ones.
pub struct ShortConnections {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(usize, usize)>>>,
}

/// Counts of short connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCounts {
    /// Connections answered by a real server.
    pub ok: usize,
    /// Connections that failed (refused, reset, timed out after 3 s, or a wrong answer).
    pub failed: usize,
}

impl ShortConnections {
    /// Starts connecting to `target` (an HTTP service) from `netns`.
    pub fn start(netns: &str, target: SocketAddr) -> ShortConnections {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, netns) = (stop.clone(), netns.to_string());
        let thread = std::thread::spawn(move || -> Result<(usize, usize)> {
            rvs_lab::netns::enter(&netns).with_context(|| format!("entering {netns}"))?;
            let (mut ok, mut failed) = (0, 0);
            while !flag.load(Ordering::Relaxed) {
                let good = (|| -> std::io::Result<bool> {
                    let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(3))?;
                    s.set_read_timeout(Some(Duration::from_secs(3)))?;
                    s.write_all(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n")?;
                    let mut body = String::new();
                    s.read_to_string(&mut body)?;
                    Ok(body.contains("rs"))
                })();
                if matches!(good, Ok(true)) {
                    ok += 1;
                } else {
                    failed += 1;
                }
                std::thread::sleep(CONNECT_EVERY);
            }
            Ok((ok, failed))
        });
        ShortConnections { stop, thread: Some(thread) }
    }

    /// Stops and returns the counts.
    pub fn finish(mut self) -> Result<ConnectionCounts> {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().context("already finished")?;
        let (ok, failed) = thread.join().map_err(|_| anyhow!("the connection thread panicked"))??;
        Ok(ConnectionCounts { ok, failed })
    }
}

impl Drop for ShortConnections {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_spans_from_the_last_answer_before_the_failure_to_the_first_after() {
        let t0 = Instant::now();
        let ms = |n: u64| t0 + Duration::from_millis(n);
        // Answers at 0, 5, 10; failure at 12; answers again at 40, 45, 60:
        // gaps after the failure are 10->40 = 30, 40->45 = 5, 45->60 = 15: the longest is 30.
        let answered = [ms(0), ms(5), ms(10), ms(40), ms(45), ms(60)];
        assert_eq!(longest_gap(&answered, ms(12)), Some(Duration::from_millis(30)));
        // No answer before the failure: counted from the failure, 12 -> 40 = 28 (the later gaps
        // are 5 and 15).
        assert_eq!(longest_gap(&answered[3..], ms(12)), Some(Duration::from_millis(28)));
        // Never answered again.
        assert_eq!(longest_gap(&answered[..3], ms(12)), None);
    }
}
