//! Passive health signals from the data path. The forwarding code reports what it sees per real
//! server ("SYN forwarded", "reply seen", "RST answered a SYN", "UDP request got no reply"); the
//! tracker flags a real server as *suspect* when failures pile up faster than the active checks
//! would notice. A suspicion is a hint, not a verdict: the daemon answers it with an immediate
//! active round ([`crate::MonitorHandle::probe_now`]), which decides. Repeated suspicions of the
//! same server are spaced by an exponential back-off, reset by the next success. Pure: time is
//! passed in; memory per server is bounded.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// What the data path saw for one real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// A client SYN was forwarded to the server.
    SynForwarded,
    /// The server answered a forwarded SYN (SYN-ACK seen / connection established).
    Established,
    /// The server answered a SYN with a RST (port closed).
    RstToSyn,
    /// A UDP request got a reply.
    UdpReply,
    /// A UDP request got no reply within the data path's own wait.
    UdpNoReply,
}

/// Tracker settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PassiveConfig {
    /// A forwarded SYN not answered within this long counts as a failure. Default 1 s.
    pub syn_timeout: Duration,
    /// Failures within `window` (and no success since) that make a server suspect. Default 3.
    pub threshold: u32,
    /// Window over which failures are counted. Default 5 s.
    pub window: Duration,
    /// Quiet time after a suspicion before the next one; doubles each time. Default 1 s.
    pub backoff_initial: Duration,
    /// Upper bound of the back-off. Default 30 s.
    pub backoff_max: Duration,
    /// Unanswered SYNs remembered per server (older ones count as failures). Default 256.
    pub max_pending: usize,
}

impl Default for PassiveConfig {
    fn default() -> Self {
        PassiveConfig {
            syn_timeout: Duration::from_secs(1),
            threshold: 3,
            window: Duration::from_secs(5),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            max_pending: 256,
        }
    }
}

/// A real server the tracker suspects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Suspect<K> {
    /// The server.
    pub key: K,
    /// Failures in the window.
    pub failures: u32,
    /// What the last failure was.
    pub reason: String,
}

#[derive(Debug, Default)]
struct Server {
    /// Times of SYNs forwarded and not yet answered, oldest first.
    pending_syns: VecDeque<Instant>,
    /// Times of recent failures, oldest first.
    failures: VecDeque<Instant>,
    last_reason: String,
    quiet_until: Option<Instant>,
    backoff: Duration,
}

/// The tracker, keyed by whatever identifies a real server to the caller.
#[derive(Debug)]
pub struct PassiveTracker<K> {
    config: PassiveConfig,
    servers: HashMap<K, Server>,
}

impl<K: Eq + Hash + Clone> PassiveTracker<K> {
    /// A tracker.
    pub fn new(config: PassiveConfig) -> Self {
        PassiveTracker { config, servers: HashMap::new() }
    }

    /// Records an observation at `now`; returns a suspicion if this one tips the server.
    pub fn observe(&mut self, key: &K, observation: Observation, now: Instant) -> Option<Suspect<K>> {
        let cfg = self.config;
        let server = self.servers.entry(key.clone()).or_default();
        match observation {
            Observation::SynForwarded => {
                server.pending_syns.push_back(now);
                if server.pending_syns.len() > cfg.max_pending.max(1) {
                    server.pending_syns.pop_front();
                    Self::fail(server, now, "SYN not answered (too many pending)");
                }
            }
            Observation::Established | Observation::UdpReply => {
                if observation == Observation::Established {
                    server.pending_syns.pop_front();
                }
                server.failures.clear();
                server.quiet_until = None;
                server.backoff = Duration::ZERO;
            }
            Observation::RstToSyn => {
                server.pending_syns.pop_front();
                Self::fail(server, now, "RST in answer to SYN");
            }
            Observation::UdpNoReply => Self::fail(server, now, "UDP request without reply"),
        }
        Self::judge(&cfg, key, server, now)
    }

    /// Ages pending SYNs (unanswered past `syn_timeout` = failure); returns new suspicions.
    /// Call it about every `syn_timeout / 2`.
    pub fn poll(&mut self, now: Instant) -> Vec<Suspect<K>> {
        let cfg = self.config;
        let mut out = Vec::new();
        for (key, server) in &mut self.servers {
            while let Some(&t) = server.pending_syns.front() {
                if now.saturating_duration_since(t) < cfg.syn_timeout {
                    break;
                }
                server.pending_syns.pop_front();
                Self::fail(server, now, "SYN not answered in time");
            }
            out.extend(Self::judge(&cfg, key, server, now));
        }
        out
    }

    /// Forgets a server (removed from the configuration).
    pub fn forget(&mut self, key: &K) {
        self.servers.remove(key);
    }

    fn fail(server: &mut Server, now: Instant, reason: &str) {
        server.failures.push_back(now);
        server.last_reason = reason.to_string();
    }

    fn judge(cfg: &PassiveConfig, key: &K, server: &mut Server, now: Instant) -> Option<Suspect<K>> {
        while server.failures.front().is_some_and(|t| now.saturating_duration_since(*t) > cfg.window) {
            server.failures.pop_front();
        }
        // Bound memory: only the last `threshold` failures matter.
        while server.failures.len() > cfg.threshold.max(1) as usize {
            server.failures.pop_front();
        }
        let count = server.failures.len() as u32;
        if count < cfg.threshold.max(1) || server.quiet_until.is_some_and(|q| now < q) {
            return None;
        }
        server.backoff =
            if server.backoff.is_zero() { cfg.backoff_initial } else { (server.backoff * 2).min(cfg.backoff_max) };
        server.quiet_until = Some(now + crate::timing::clamp(server.backoff));
        Some(Suspect { key: key.clone(), failures: count, reason: server.last_reason.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn three_rsts_make_a_suspect() {
        let t0 = Instant::now();
        let mut p = PassiveTracker::new(PassiveConfig::default());
        for i in 0..2 {
            p.observe(&"a", Observation::SynForwarded, ms(t0, i * 10));
            assert_eq!(p.observe(&"a", Observation::RstToSyn, ms(t0, i * 10 + 1)), None);
        }
        p.observe(&"a", Observation::SynForwarded, ms(t0, 20));
        let s = p.observe(&"a", Observation::RstToSyn, ms(t0, 21)).unwrap();
        assert_eq!((s.key, s.failures, s.reason.as_str()), ("a", 3, "RST in answer to SYN"));
    }

    #[test]
    fn unanswered_syns_time_out_on_poll() {
        let t0 = Instant::now();
        let mut p = PassiveTracker::new(PassiveConfig::default());
        for i in 0..3 {
            p.observe(&1u8, Observation::SynForwarded, ms(t0, i));
        }
        assert!(p.poll(ms(t0, 999)).is_empty(), "SYN timeout is 1 s");
        let s = p.poll(ms(t0, 1002));
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].reason, "SYN not answered in time");
    }

    #[test]
    fn success_resets_and_answered_syns_do_not_count() {
        let t0 = Instant::now();
        let mut p = PassiveTracker::new(PassiveConfig::default());
        p.observe(&1u8, Observation::UdpNoReply, t0);
        p.observe(&1u8, Observation::UdpNoReply, t0);
        p.observe(&1u8, Observation::UdpReply, t0);
        assert_eq!(p.observe(&1u8, Observation::UdpNoReply, t0), None, "count restarted");
        p.observe(&1u8, Observation::SynForwarded, t0);
        p.observe(&1u8, Observation::Established, ms(t0, 5));
        assert!(p.poll(ms(t0, 5000)).is_empty());
    }

    #[test]
    fn failures_outside_window_are_forgotten() {
        let t0 = Instant::now();
        let mut p = PassiveTracker::new(PassiveConfig::default());
        p.observe(&1u8, Observation::UdpNoReply, t0);
        p.observe(&1u8, Observation::UdpNoReply, ms(t0, 1000));
        // 6 s later the first is out of the 5 s window: 2 failures, not 3.
        assert_eq!(p.observe(&1u8, Observation::UdpNoReply, ms(t0, 6000)), None);
    }

    #[test]
    fn backoff_doubles_and_resets_on_success() {
        let t0 = Instant::now();
        let mut p = PassiveTracker::new(PassiveConfig { threshold: 1, ..PassiveConfig::default() });
        let k = &7u8;
        // First suspicion at 0, then quiet 1 s; next at ≥ 1 s, then quiet 2 s; next at ≥ 3 s.
        assert!(p.observe(k, Observation::UdpNoReply, t0).is_some());
        assert!(p.observe(k, Observation::UdpNoReply, ms(t0, 999)).is_none());
        assert!(p.observe(k, Observation::UdpNoReply, ms(t0, 1000)).is_some());
        assert!(p.observe(k, Observation::UdpNoReply, ms(t0, 2999)).is_none());
        assert!(p.observe(k, Observation::UdpNoReply, ms(t0, 3000)).is_some());
        // A success clears the back-off: the next failure is reported at once.
        p.observe(k, Observation::UdpReply, ms(t0, 3001));
        assert!(p.observe(k, Observation::UdpNoReply, ms(t0, 3002)).is_some());
    }

    #[test]
    fn backoff_is_capped() {
        let t0 = Instant::now();
        let cfg = PassiveConfig { threshold: 1, backoff_max: Duration::from_secs(4), ..PassiveConfig::default() };
        let mut p = PassiveTracker::new(cfg);
        // Reports at 0 (quiet 1), 1 (quiet 2), 3 (quiet 4), 7 (quiet 4, capped), 11.
        let mut reports = Vec::new();
        for s in 0..12u64 {
            if p.observe(&0u8, Observation::UdpNoReply, ms(t0, s * 1000)).is_some() {
                reports.push(s);
            }
        }
        assert_eq!(reports, [0, 1, 3, 7, 11]);
    }

    #[test]
    fn pending_syns_are_bounded() {
        let t0 = Instant::now();
        let mut p = PassiveTracker::new(PassiveConfig { max_pending: 2, threshold: 100, ..PassiveConfig::default() });
        for _ in 0..10 {
            p.observe(&0u8, Observation::SynForwarded, t0);
        }
        assert!(p.servers.get(&0u8).is_some_and(|s| s.pending_syns.len() == 2 && s.failures.len() == 8));
    }
}
