//! Traffic statistics: counters per service, per destination and global, and the IPVS
//! rate estimator (2 s samples, EWMA with weight 1/4) giving cps/pps/bps.

/// Monotonic traffic counters (`ipvsadm --stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets in (client -> real server).
    pub in_pkts: u64,
    /// Packets out (real server -> client, NAT only).
    pub out_pkts: u64,
    /// Bytes in.
    pub in_bytes: u64,
    /// Bytes out.
    pub out_bytes: u64,
}

/// Counters and their estimated rates.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    /// The counters.
    pub counters: Counters,
}

impl Stats {
    /// One new connection.
    pub fn add_conn(&mut self) {
        self.counters.conns = self.counters.conns.wrapping_add(1);
    }

    /// One inbound packet of `bytes`.
    pub fn add_in(&mut self, bytes: u64) {
        self.counters.in_pkts = self.counters.in_pkts.wrapping_add(1);
        self.counters.in_bytes = self.counters.in_bytes.wrapping_add(bytes);
    }

    /// One outbound packet of `bytes`.
    pub fn add_out(&mut self, bytes: u64) {
        self.counters.out_pkts = self.counters.out_pkts.wrapping_add(1);
        self.counters.out_bytes = self.counters.out_bytes.wrapping_add(bytes);
    }
}
