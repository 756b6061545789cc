//! Failover counters for `Status`: per instance its state, adverts received and sent,
//! transitions, announcements, and every dropped advert by reason.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rvs_ha::vrrp::rx::DropReason;
use rvs_ha::vrrp::state::State;

/// Drop reason names, in [`drop_index`] order.
pub const DROP_NAMES: [&str; 17] = [
    "truncated",
    "bad_ip_header",
    "bad_version",
    "bad_type",
    "wrong_vrid",
    "bad_ttl",
    "bad_checksum",
    "auth_mismatch",
    "auth_unsupported",
    "replayed",
    "stale",
    "unauthenticated",
    "address_count",
    "interval_mismatch",
    "trailing_bytes",
    "wrong_family",
    "from_self",
];

/// The counter slot of a drop reason.
pub fn drop_index(r: &DropReason) -> usize {
    match r {
        DropReason::Truncated => 0,
        DropReason::BadIpHeader => 1,
        DropReason::BadVersion(_) => 2,
        DropReason::BadType(_) => 3,
        DropReason::WrongVrid(_) => 4,
        DropReason::BadTtl(_) => 5,
        DropReason::BadChecksum => 6,
        DropReason::AuthMismatch => 7,
        DropReason::AuthUnsupported => 8,
        DropReason::Replayed => 9,
        DropReason::Stale => 10,
        DropReason::Unauthenticated => 11,
        DropReason::AddressCountMismatch { .. } => 12,
        DropReason::IntervalMismatch { .. } => 13,
        DropReason::TrailingBytes => 14,
        DropReason::WrongFamily => 15,
        DropReason::FromSelf => 16,
    }
}

/// State as a number: 0 init/stopped, 1 backup, 2 master, 3 fault.
pub fn state_number(s: State) -> u64 {
    match s {
        State::Initialize => 0,
        State::Backup => 1,
        State::Master => 2,
        State::Fault => 3,
    }
}

/// One instance's counters.
#[derive(Debug, Default)]
pub struct InstanceStats {
    /// [`state_number`] of the current state.
    pub state: AtomicU64,
    /// Current effective priority.
    pub priority: AtomicU64,
    /// Adverts accepted.
    pub adverts_rx: AtomicU64,
    /// Adverts sent.
    pub adverts_tx: AtomicU64,
    /// Sends that failed.
    pub send_errors: AtomicU64,
    /// State changes.
    pub transitions: AtomicU64,
    /// Gratuitous ARPs and unsolicited NAs sent.
    pub announcements: AtomicU64,
    /// Dropped adverts by reason.
    pub drops: [AtomicU64; DROP_NAMES.len()],
}

/// Adds one to a counter.
pub fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// All counters of the failover subsystem.
#[derive(Debug, Default)]
pub struct FailoverStats {
    /// (instance name, counters) of the running instances.
    pub instances: std::sync::Mutex<Vec<(String, Arc<InstanceStats>)>>,
    /// Connection sync counters (name, value), shared with the sync threads.
    pub sync: Arc<crate::failover::sync::SyncStats>,
}

impl FailoverStats {
    /// `(name, value)` pairs for `Status`: `vrrp_<instance>_<counter>`,
    /// `vrrp_<instance>_drop_<reason>`, `conn_sync_<counter>`.
    pub fn counters(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let instances = crate::control::lock(&self.instances).clone();
        for (name, s) in &instances {
            let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
            for (k, v) in [
                ("state", get(&s.state)),
                ("priority", get(&s.priority)),
                ("adverts_rx", get(&s.adverts_rx)),
                ("adverts_tx", get(&s.adverts_tx)),
                ("send_errors", get(&s.send_errors)),
                ("transitions", get(&s.transitions)),
                ("announcements", get(&s.announcements)),
            ] {
                out.push((format!("vrrp_{name}_{k}"), v));
            }
            for (reason, c) in DROP_NAMES.iter().zip(&s.drops) {
                out.push((format!("vrrp_{name}_drop_{reason}"), get(c)));
            }
        }
        out.extend(self.sync.counters());
        out
    }
}
