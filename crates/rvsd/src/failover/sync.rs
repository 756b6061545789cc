//! Connection sync between directors (`[conn_sync]`): one thread whose role follows a VRRP
//! instance. As master it scans the engine every [`SCAN`] and sends the connections and
//! templates that are new or changed state since the last scan (all of them every `period`,
//! which refreshes the backups' timers) as IPVS sync v1 messages, with the rvs HMAC trailer if
//! configured, to the multicast group or the unicast peers. As backup (or fault) it receives
//! them and installs each entry in the engine without scheduling
//! ([`rvs_core::engine::Engine::install_synced`]), so that after a takeover established
//! connections keep going to the same real server.
//!
//! Sync runs both ways: whichever director is master sends. After each full round the master
//! sends an end-of-round marker ([`rvs_ha::sync::v1::round_end`]) with the number of datagrams
//! since its previous marker. A backup counts the datagrams it accepted from that master since
//! its last marker (or since it entered Backup); when the counts agree it holds the master's
//! whole table and opens the preemption gate, which the followed VRRP instance waits for
//! before it takes the addresses back from a lower-priority master (a returning director
//! learns the current connections first). Without a complete round within 2 × `period` (a
//! peer that sends no markers, lost datagrams) the gate opens anyway.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant as StdInstant};

use anyhow::Context;
use rvs_config::failover::ConnSync;
use rvs_core::engine::Engine;
use rvs_core::engine::sync::{Installed, SyncInstallError, SyncRecord};
use rvs_ha::auth::{AuthContext, AuthMode, Domain, Freshness, KeyRing, Signer};
use rvs_ha::sync::entry::{CONN_F_INACTIVE, CONN_F_NOOUTPUT, CONN_F_TEMPLATE};
use rvs_ha::sync::{SyncEntry, SyncError, SyncReceiver, SyncSender};
use socket2::{Domain as SockDomain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tracing::{debug, info, warn};

use crate::clock::Clock;
use crate::control::lock;
use crate::failover::addrs;
use crate::failover::link::ifindex;
use crate::failover::stats::{InstanceStats, bump};

/// How often a master looks for new or changed connections.
pub const SCAN: Duration = Duration::from_millis(50);
/// Longest receive wait (bounds the reaction to the stop flag and to role changes).
const RX_WAIT: Duration = Duration::from_millis(20);

/// Connection sync counters.
#[derive(Debug, Default)]
pub struct SyncStats {
    /// Datagrams sent.
    pub tx_messages: AtomicU64,
    /// Entries sent.
    pub tx_entries: AtomicU64,
    /// Sends that failed.
    pub tx_errors: AtomicU64,
    /// Datagrams accepted.
    pub rx_messages: AtomicU64,
    /// Entries installed as new connections.
    pub installed: AtomicU64,
    /// Entries that refreshed an existing connection.
    pub refreshed: AtomicU64,
    /// Entries for which no service / real server matches here.
    pub refused: AtomicU64,
    /// Datagrams received while master (ignored).
    pub ignored_as_master: AtomicU64,
    /// Datagrams dropped: malformed.
    pub drop_malformed: AtomicU64,
    /// Datagrams dropped: other sync id.
    pub drop_syncid: AtomicU64,
    /// Datagrams dropped: no trailer though required.
    pub drop_unauthenticated: AtomicU64,
    /// Datagrams dropped: bad trailer or tag.
    pub drop_auth_mismatch: AtomicU64,
    /// Datagrams dropped: replayed or stale counter.
    pub drop_replayed: AtomicU64,
    /// End-of-round markers sent.
    pub tx_rounds: AtomicU64,
    /// Full rounds received complete (the marker's count matched).
    pub rx_rounds: AtomicU64,
    /// Markers whose count did not match (joined mid-round or lost datagrams).
    pub rx_rounds_incomplete: AtomicU64,
    /// Times the preemption gate opened on the 2 × period time bound instead of a full round.
    pub gate_timeouts: AtomicU64,
    /// 1 while the preemption gate is open (a backup holds the master's table).
    pub table_ready: AtomicU64,
}

impl SyncStats {
    /// `(name, value)` pairs for `Status`.
    pub fn counters(&self) -> Vec<(String, u64)> {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        [
            ("tx_messages", &self.tx_messages),
            ("tx_entries", &self.tx_entries),
            ("tx_errors", &self.tx_errors),
            ("rx_messages", &self.rx_messages),
            ("installed", &self.installed),
            ("refreshed", &self.refreshed),
            ("refused", &self.refused),
            ("ignored_as_master", &self.ignored_as_master),
            ("drop_malformed", &self.drop_malformed),
            ("drop_syncid", &self.drop_syncid),
            ("drop_unauthenticated", &self.drop_unauthenticated),
            ("drop_auth_mismatch", &self.drop_auth_mismatch),
            ("drop_replayed", &self.drop_replayed),
            ("tx_rounds", &self.tx_rounds),
            ("rx_rounds", &self.rx_rounds),
            ("rx_rounds_incomplete", &self.rx_rounds_incomplete),
            ("gate_timeouts", &self.gate_timeouts),
            ("table_ready", &self.table_ready),
        ]
        .into_iter()
        .map(|(k, v)| (format!("conn_sync_{k}"), get(v)))
        .collect()
    }

    fn count_drop(&self, e: &SyncError) {
        let c = match e {
            SyncError::WrongSyncId(_) => &self.drop_syncid,
            SyncError::Unauthenticated => &self.drop_unauthenticated,
            SyncError::AuthMismatch => &self.drop_auth_mismatch,
            SyncError::Replayed | SyncError::Stale => &self.drop_replayed,
            _ => &self.drop_malformed,
        };
        bump(c);
    }
}

/// The wall clock in µs since the Unix epoch.
fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// An engine record as a sync entry (flags: template / inactive / no-output; forwarding
/// method bits 0, since the backup binds to its own destination and uses its method).
pub fn entry_of(r: &SyncRecord) -> SyncEntry {
    let mut flags = 0;
    if r.template {
        flags |= CONN_F_TEMPLATE;
    }
    if r.inactive {
        flags |= CONN_F_INACTIVE;
    }
    if r.no_output {
        flags |= CONN_F_NOOUTPUT;
    }
    SyncEntry {
        protocol: r.protocol,
        caddr: r.caddr,
        cport: r.cport,
        vaddr: r.vaddr,
        vport: r.vport,
        daddr: r.daddr,
        dport: r.dport,
        fwmark: r.fwmark,
        flags,
        state: u16::from(r.state),
        timeout_s: u32::try_from(r.timeout_ms.div_ceil(1000)).unwrap_or(u32::MAX),
        seq: None,
        pe_data: None,
        pe_name: None,
    }
}

/// A received entry as an engine record.
pub fn record_of(e: &SyncEntry) -> SyncRecord {
    SyncRecord {
        protocol: e.protocol,
        caddr: e.caddr,
        cport: e.cport,
        vaddr: e.vaddr,
        vport: e.vport,
        daddr: e.daddr,
        dport: e.dport,
        fwmark: e.fwmark,
        template: e.flags & CONN_F_TEMPLATE != 0,
        state: u8::try_from(e.state).unwrap_or(u8::MAX),
        inactive: e.flags & CONN_F_INACTIVE != 0,
        no_output: e.flags & CONN_F_NOOUTPUT != 0,
        timeout_ms: u64::from(e.timeout_s) * 1000,
    }
}

/// What identifies an entry between scans, and what makes it worth sending again.
type EntryKey = (u8, IpAddr, u16, IpAddr, u16, bool);

fn key_of(r: &SyncRecord) -> EntryKey {
    (r.protocol, r.caddr, r.cport, r.vaddr, r.vport, r.template)
}

/// The sync thread's state.
struct SyncWorker {
    cfg: ConnSync,
    engine: Arc<Mutex<Engine>>,
    clock: Clock,
    role: Arc<InstanceStats>,
    stats: Arc<SyncStats>,
    socket: UdpSocket,
    local: IpAddr,
    sender: SyncSender,
    receiver: SyncReceiver,
    sent: HashMap<EntryKey, (u8, bool)>,
    last_full: Option<StdInstant>,
    last_scan: StdInstant,
    /// Datagrams sent (to each destination) since our last end-of-round marker.
    tx_since_marker: usize,
    /// Per master: datagrams accepted since its last marker or since we entered Backup.
    rx_since_marker: HashMap<IpAddr, usize>,
    /// When the followed instance last entered Backup (None: not in Backup).
    backup_since: Option<StdInstant>,
    /// The followed instance's (transition count, state) last seen.
    role_seen: (u64, u64),
    gate: PreemptionGate,
}

/// Open once a backup holds the master's whole table; the followed VRRP instance holds
/// preemption while it is closed. Shared by the sync thread (opens it) and the instance
/// (closes it whenever it leaves Backup).
#[derive(Debug, Clone, Default)]
pub struct PreemptionGate(Arc<AtomicBool>);

impl PreemptionGate {
    /// Whether the table is complete.
    pub fn is_open(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    /// Opens or closes the gate.
    pub fn set(&self, open: bool) {
        self.0.store(open, Ordering::Relaxed);
    }
}

/// A running sync thread.
#[derive(Debug)]
pub struct SyncHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SyncHandle {
    /// Starts connection sync with `cfg`, following the instance whose counters are `role`,
    /// opening `gate` when a backup holds the master's table.
    pub fn start(
        cfg: ConnSync,
        engine: Arc<Mutex<Engine>>,
        clock: Clock,
        role: Arc<InstanceStats>,
        stats: Arc<SyncStats>,
        gate: PreemptionGate,
    ) -> anyhow::Result<SyncHandle> {
        let ipv6 = cfg.peers.first().map_or(cfg.group.is_ipv6(), IpAddr::is_ipv6);
        let local = addrs::primary_address(&cfg.interface, ipv6, &[])
            .with_context(|| format!("reading the addresses of {}", cfg.interface))?
            .with_context(|| format!("{} has no address to sync from", cfg.interface))?;
        let socket = open_socket(&cfg, local).context("opening the connection sync socket")?;
        let keys = match &cfg.auth {
            Some(h) => Some((KeyRing::single(h.key_id, &h.key).map_err(|e| anyhow::anyhow!("sync key: {e}"))?, h)),
            None => None,
        };
        let signer = keys.as_ref().map(|(ring, _)| Signer::new(ring.clone(), Domain::Sync, unix_us()));
        let (mode, freshness) = match &keys {
            None => (AuthMode::Off, None),
            Some((ring, h)) => (
                if h.required { AuthMode::Required(ring.clone()) } else { AuthMode::Permissive(ring.clone()) },
                h.freshness.map(|w| Freshness { window_us: u64::try_from(w.as_micros()).unwrap_or(u64::MAX) }),
            ),
        };
        let worker = SyncWorker {
            sender: SyncSender::new(cfg.syncid, usize::from(cfg.maxlen), signer),
            receiver: SyncReceiver::new(cfg.syncid, mode, freshness),
            cfg,
            engine,
            clock,
            role,
            stats,
            socket,
            local,
            sent: HashMap::new(),
            last_full: None,
            last_scan: StdInstant::now(),
            tx_since_marker: 0,
            rx_since_marker: HashMap::new(),
            backup_since: None,
            role_seen: (u64::MAX, u64::MAX),
            gate,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("rvsd-conn-sync".into())
            .spawn(move || worker.run(&flag))
            .context("spawning the connection sync thread")?;
        Ok(SyncHandle { stop, thread: Some(thread) })
    }

    /// Stops the thread.
    pub fn stop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            warn!("the connection sync thread panicked");
        }
    }
}

impl Drop for SyncHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The UDP socket: bound to the port on the interface, member of the group, sending from
/// `local` with TTL 1 and no loopback of our own messages.
fn open_socket(cfg: &ConnSync, local: IpAddr) -> io::Result<UdpSocket> {
    let index = ifindex(&cfg.interface)?;
    let (domain, any) = if local.is_ipv6() {
        (SockDomain::IPV6, IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    } else {
        (SockDomain::IPV4, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    s.bind_device(Some(cfg.interface.as_bytes()))?;
    s.bind(&SockAddr::from(SocketAddr::new(any, cfg.port)))?;
    match (cfg.group, local) {
        (IpAddr::V4(g), IpAddr::V4(l)) => {
            if cfg.peers.is_empty() {
                s.join_multicast_v4_n(&g, &InterfaceIndexOrAddress::Index(index))?;
            }
            s.set_multicast_if_v4(&l)?;
            s.set_multicast_loop_v4(false)?;
            s.set_multicast_ttl_v4(1)?;
        }
        (IpAddr::V6(g), IpAddr::V6(_)) => {
            if cfg.peers.is_empty() {
                s.join_multicast_v6(&g, index)?;
            }
            s.set_multicast_if_v6(index)?;
            s.set_multicast_loop_v6(false)?;
            s.set_multicast_hops_v6(1)?;
        }
        _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "group and interface address families differ")),
    }
    s.set_read_timeout(Some(RX_WAIT))?;
    Ok(UdpSocket::from(s))
}

impl SyncWorker {
    fn is_master(&self) -> bool {
        self.role.state.load(Ordering::Relaxed) == 2
    }

    /// Follows the instance's transitions: entering Backup starts a new wait for a full round;
    /// leaving it closes the gate. The gate opens on the time bound if no round completes.
    fn track_role(&mut self) {
        let seen = (self.role.transitions.load(Ordering::Relaxed), self.role.state.load(Ordering::Relaxed));
        if seen != self.role_seen {
            self.role_seen = seen;
            let backup = seen.1 == 1;
            self.rx_since_marker.clear();
            self.backup_since = backup.then(StdInstant::now);
            self.set_gate(false);
        }
        if let Some(since) = self.backup_since
            && !self.gate.is_open()
            && since.elapsed() >= self.cfg.period.saturating_mul(2)
        {
            info!(period = ?self.cfg.period, "no complete sync round within 2 x period: preemption allowed");
            bump(&self.stats.gate_timeouts);
            self.set_gate(true);
        }
    }

    fn set_gate(&self, open: bool) {
        self.gate.set(open);
        self.stats.table_ready.store(u64::from(open), Ordering::Relaxed);
    }

    fn run(mut self, stop: &AtomicBool) {
        info!(interface = %self.cfg.interface, local = %self.local, "connection sync started");
        let mut buf = vec![0u8; 65536];
        let mut was_master = false;
        while !stop.load(Ordering::Relaxed) {
            self.track_role();
            let master = self.is_master();
            if master != was_master {
                // A new master sends everything at once.
                self.sent.clear();
                self.last_full = None;
                self.tx_since_marker = 0;
                was_master = master;
            }
            if master && self.last_scan.elapsed() >= SCAN {
                self.last_scan = StdInstant::now();
                self.send_changes();
            }
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let data = buf.get(..n).unwrap_or(&[]).to_vec();
                    self.on_datagram(from.ip(), &data);
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    warn!(error = %e, "connection sync receive failed");
                    std::thread::sleep(RX_WAIT);
                }
            }
        }
        info!("connection sync stopped");
    }

    fn destinations(&self) -> Vec<IpAddr> {
        if self.cfg.peers.is_empty() { vec![self.cfg.group] } else { self.cfg.peers.clone() }
    }

    fn send_changes(&mut self) {
        let full = self.last_full.is_none_or(|t| t.elapsed() >= self.cfg.period);
        let records = {
            let engine = lock(&self.engine);
            engine.sync_records(self.clock.now())
        };
        let mut current = HashMap::with_capacity(records.len());
        let mut entries = Vec::new();
        for r in &records {
            let key = key_of(r);
            let mark = (r.state, r.inactive);
            if full || self.sent.get(&key) != Some(&mark) {
                entries.push(entry_of(r));
            }
            current.insert(key, mark);
        }
        self.sent = current;
        if full {
            self.last_full = Some(StdInstant::now());
        }
        if entries.is_empty() && !full {
            return;
        }
        let mut sent_each = 0;
        for dst in self.destinations() {
            let ctx = AuthContext { src: self.local, dst };
            let mut datagrams = if entries.is_empty() {
                Vec::new()
            } else {
                match self.sender.datagrams(&entries, &ctx, unix_us()) {
                    Ok(d) => d,
                    Err(e) => {
                        warn!(error = %e, "cannot build sync messages");
                        return;
                    }
                }
            };
            sent_each = datagrams.len();
            if full {
                datagrams.push(self.sender.round_end(self.tx_since_marker + sent_each, &ctx, unix_us()));
                bump(&self.stats.tx_rounds);
            }
            let to = SocketAddr::new(dst, self.cfg.port);
            for d in &datagrams {
                match self.socket.send_to(d, to) {
                    Ok(_) => bump(&self.stats.tx_messages),
                    Err(e) => {
                        bump(&self.stats.tx_errors);
                        debug!(error = %e, %dst, "sync message not sent");
                    }
                }
            }
            self.stats.tx_entries.fetch_add(entries.len() as u64, Ordering::Relaxed);
        }
        self.tx_since_marker = if full { 0 } else { self.tx_since_marker + sent_each };
    }

    fn on_datagram(&mut self, src: IpAddr, data: &[u8]) {
        if self.is_master() {
            bump(&self.stats.ignored_as_master);
            return;
        }
        let dst = if self.cfg.peers.is_empty() { self.cfg.group } else { self.local };
        let message = match self.receiver.accept(src, dst, data, Some(unix_us())) {
            Ok(m) => m,
            Err(e) => {
                self.stats.count_drop(&e);
                debug!(%src, error = %e, "sync message dropped");
                return;
            }
        };
        bump(&self.stats.rx_messages);
        let counted = self.rx_since_marker.entry(src).or_insert(0);
        if let Some(expected) = message.round_end {
            let complete = *counted >= usize::from(expected);
            *counted = 0;
            if complete {
                bump(&self.stats.rx_rounds);
                if self.backup_since.is_some() && !self.gate.is_open() {
                    info!(%src, datagrams = expected, "received the master's full table: preemption allowed");
                    self.set_gate(true);
                }
            } else {
                bump(&self.stats.rx_rounds_incomplete);
            }
            return;
        }
        *counted += 1;
        let now = self.clock.now();
        let mut engine = lock(&self.engine);
        for e in &message.entries {
            match engine.install_synced(&record_of(e), now) {
                Ok(Installed::Created(_)) => bump(&self.stats.installed),
                Ok(Installed::Refreshed(_)) => bump(&self.stats.refreshed),
                Err(SyncInstallError::NoService | SyncInstallError::NoDestination | SyncInstallError::MixedFamily) => {
                    bump(&self.stats.refused)
                }
                Err(SyncInstallError::TableFull) => bump(&self.stats.refused),
            }
        }
    }
}
