//! The engine: services, destinations and connections together, with the decisions the
//! kernel's `ip_vs_core.c` and `ip_vs_ctl.c` make.
//!
//! - [`admin`](Engine::add_service): add/edit/delete services and destinations as
//!   transactions (validated first, never half-applied), destinations kept in a "trash" while
//!   connections still use them;
//! - [`packet`]: the per-packet path: connection lookup or scheduling (with persistence
//!   templates, one-packet scheduling, expire_nodest_conn, conn_reuse_mode), state
//!   transitions, counters;
//! - [`housekeeping`]: expiry, the once-a-second work (estimators, DoS defences, lblc GC).
//!
//! The engine is single-threaded (`&mut self`); the data plane runs one per worker or
//! serialises access.

use std::collections::HashMap;

use crate::addr::{Addr16, Family};
use crate::conn::{ConnTable, Timeouts};
use crate::defense::{Defense, DefenseConfig};
use crate::dest::{DestArena, DestConfig, DestId, Destination, ForwardMethod};
use crate::error::ConfigError;
use crate::sched::{DestChange, DestList, Scheduler};
use crate::service::{ServiceConfig, ServiceKey};
use crate::stats::Stats;
use crate::time::Instant;

pub mod housekeeping;
pub mod observe;
pub mod packet;
pub mod sync;

pub use observe::DestEvent;
pub use packet::{DropReason, Forward, InVerdict, OutVerdict, Packet};

/// Default maximum number of connection entries.
pub const DEFAULT_MAX_CONNS: usize = 1 << 20;

/// The `net.ipv4.vs.*` switches the engine honours.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunables {
    /// Expire a connection at once when a packet arrives for it and its destination is gone
    /// (the client gets a reset); otherwise such packets are dropped.
    pub expire_nodest_conn: bool,
    /// Invalidate persistence templates whose destination has weight 0.
    pub expire_quiescent_template: bool,
    /// conn_reuse_mode bitmap (default 1): reschedule a reused client port when the old
    /// connection is closing (bit 2 also for FIN_WAIT on DR/TUN).
    pub conn_reuse_mode: u8,
    /// Create TCP connections from any packet, not only SYN.
    pub sloppy_tcp: bool,
    /// Create SCTP connections from any chunk, not only INIT.
    pub sloppy_sctp: bool,
}

impl Default for Tunables {
    fn default() -> Self {
        Tunables {
            expire_nodest_conn: false,
            expire_quiescent_template: false,
            conn_reuse_mode: 1,
            sloppy_tcp: false,
            sloppy_sctp: false,
        }
    }
}

/// Index of a service in the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServiceId(pub u32);

/// A virtual service with its destinations (list order) and scheduler.
#[derive(Debug)]
pub struct Service {
    /// Its configuration.
    pub config: ServiceConfig,
    dests: Vec<DestId>,
    scheduler: Box<dyn Scheduler>,
    /// Counters and rates.
    pub stats: Stats,
}

impl Service {
    /// Destination ids in list order.
    pub fn dest_ids(&self) -> &[DestId] {
        &self.dests
    }
}

/// Per-reason counters of packets the engine refused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounters {
    /// Packets for a connection whose destination was removed (expire_nodest_conn off).
    pub dest_unavailable: u64,
    /// New connections refused because the table was full.
    pub table_full: u64,
    /// New-connection packets dropped by the drop_packet defence.
    pub defense: u64,
    /// New connections with no destination available (ICMP unreachable sent).
    pub no_destination: u64,
    /// Packets of a protocol IPVS does not balance, for a virtual address.
    pub unsupported_protocol: u64,
    /// Connections removed by the drop_entry defence.
    pub defense_dropped_entries: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct AddrKey {
    protocol: u8,
    addr: Addr16,
    port: u16,
}

/// The IPVS engine.
#[derive(Debug)]
pub struct Engine {
    services: Vec<Option<Service>>,
    free_services: Vec<u32>,
    by_addr: HashMap<AddrKey, ServiceId>,
    by_mark: HashMap<(Family, u32), ServiceId>,
    zero_port_services: usize,
    dests: DestArena,
    conns: ConnTable,
    /// Connection timeouts (`--set`).
    pub timeouts: Timeouts,
    /// The `net.ipv4.vs.*` switches.
    pub tunables: Tunables,
    defense: Defense,
    todrop_counter: [u8; 9],
    stats: Stats,
    drops: DropCounters,
    expired: Vec<crate::conn::ConnId>,
    generation: u64,
    observe_dests: bool,
    dest_events: Vec<(DestId, DestEvent)>,
    lost_dest_events: u64,
}

impl Engine {
    /// An empty engine with at most `max_conns` connection entries; `seed` keys the
    /// connection hash (pass a random value).
    pub fn new(max_conns: usize, seed: u64) -> Engine {
        Engine {
            services: Vec::new(),
            free_services: Vec::new(),
            by_addr: HashMap::new(),
            by_mark: HashMap::new(),
            zero_port_services: 0,
            dests: DestArena::default(),
            conns: ConnTable::new(max_conns, seed),
            timeouts: Timeouts::default(),
            tunables: Tunables::default(),
            defense: Defense::new(DefenseConfig::default()),
            todrop_counter: [0; 9],
            stats: Stats::default(),
            drops: DropCounters::default(),
            expired: Vec::new(),
            generation: 0,
            observe_dests: false,
            dest_events: Vec::new(),
            lost_dest_events: 0,
        }
    }

    /// Counts changes of the service table (services, destinations): the data plane
    /// compares it to know when to re-derive what it installed (e.g. steering rules).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    // ---- lookups -------------------------------------------------------------------

    /// The service with this key.
    pub fn find_service(&self, key: &ServiceKey) -> Option<ServiceId> {
        match *key {
            ServiceKey::Addr { protocol, addr, port } => {
                self.by_addr.get(&AddrKey { protocol: protocol.number(), addr: Addr16::from_ip(addr), port }).copied()
            }
            ServiceKey::Fwmark { family, mark } => self.by_mark.get(&(family, mark)).copied(),
        }
    }

    /// The service a packet belongs to, as the kernel looks it up: fwmark first, then
    /// (protocol, address, port), then a persistent port-zero service on the address.
    pub fn classify(&self, family: Family, fwmark: u32, protocol: u8, vaddr: &Addr16, vport: u16) -> Option<ServiceId> {
        if fwmark != 0
            && let Some(&id) = self.by_mark.get(&(family, fwmark))
        {
            return Some(id);
        }
        if let Some(&id) = self.by_addr.get(&AddrKey { protocol, addr: *vaddr, port: vport }) {
            return Some(id);
        }
        if self.zero_port_services > 0 {
            return self.by_addr.get(&AddrKey { protocol, addr: *vaddr, port: 0 }).copied();
        }
        None
    }

    /// A service by id.
    pub fn service(&self, id: ServiceId) -> Option<&Service> {
        self.services.get(id.0 as usize)?.as_ref()
    }

    fn service_mut(&mut self, id: ServiceId) -> Option<&mut Service> {
        self.services.get_mut(id.0 as usize)?.as_mut()
    }

    /// Every service.
    pub fn services(&self) -> impl Iterator<Item = (ServiceId, &Service)> {
        self.services.iter().enumerate().filter_map(|(i, s)| s.as_ref().map(|s| (ServiceId(i as u32), s)))
    }

    /// A destination by id (also one in the trash).
    pub fn dest(&self, id: DestId) -> Option<&Destination> {
        self.dests.get(id)
    }

    /// A service's destinations in list order.
    pub fn dests_of(&self, id: ServiceId) -> impl Iterator<Item = (DestId, &Destination)> {
        let ids: &[DestId] = self.service(id).map(|s| s.dests.as_slice()).unwrap_or(&[]);
        ids.iter().filter_map(|&d| self.dests.get(d).map(|x| (d, x)))
    }

    /// The destination of a service with this address and port.
    pub fn find_dest(&self, svc: ServiceId, addr: std::net::IpAddr, port: u16) -> Option<DestId> {
        self.dests_of(svc).find(|(_, d)| d.config.addr == addr && d.config.port == port).map(|(id, _)| id)
    }

    /// The connection table (for listings and sync).
    pub fn conns(&self) -> &ConnTable {
        &self.conns
    }

    /// Global counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Refusal counters.
    pub fn drops(&self) -> &DropCounters {
        &self.drops
    }

    /// The DoS defence state.
    pub fn defense(&self) -> &Defense {
        &self.defense
    }

    /// The DoS defence state, to change its modes.
    pub fn defense_mut(&mut self) -> &mut Defense {
        &mut self.defense
    }

    // ---- administration ------------------------------------------------------------

    /// Adds a service (`ipvsadm -A`).
    pub fn add_service(&mut self, config: ServiceConfig) -> Result<ServiceId, ConfigError> {
        self.generation += 1;
        config.validate()?;
        if self.find_service(&config.key).is_some() {
            return Err(ConfigError::ServiceExists);
        }
        let svc = Service { scheduler: config.scheduler.build(), config, dests: Vec::new(), stats: Stats::default() };
        let key = svc.config.key;
        let id = match self.free_services.pop() {
            Some(i) => {
                self.services[i as usize] = Some(svc);
                ServiceId(i)
            }
            None => {
                self.services.push(Some(svc));
                ServiceId((self.services.len() - 1) as u32)
            }
        };
        match key {
            ServiceKey::Addr { protocol, addr, port } => {
                self.by_addr.insert(AddrKey { protocol: protocol.number(), addr: Addr16::from_ip(addr), port }, id);
                if port == 0 {
                    self.zero_port_services += 1;
                }
            }
            ServiceKey::Fwmark { family, mark } => {
                self.by_mark.insert((family, mark), id);
            }
        }
        Ok(id)
    }

    /// Changes a service's scheduler, persistence and flags (`ipvsadm -E`). Existing
    /// connections keep their destinations.
    pub fn edit_service(&mut self, config: ServiceConfig) -> Result<ServiceId, ConfigError> {
        self.generation += 1;
        config.validate()?;
        let id = self.find_service(&config.key).ok_or(ConfigError::NoSuchService)?;
        let Engine { services, dests, .. } = self;
        let svc = services[id.0 as usize].as_mut().ok_or(ConfigError::NoSuchService)?;
        if svc.config.scheduler != config.scheduler {
            svc.scheduler = config.scheduler.build();
        }
        svc.config = config;
        svc.scheduler.update_dests(DestList::new(&svc.dests, dests), DestChange::Reset);
        Ok(id)
    }

    /// Deletes a service and its destinations (`ipvsadm -D`). Connections stay until they
    /// expire; their packets are handled per expire_nodest_conn.
    pub fn delete_service(&mut self, key: &ServiceKey) -> Result<(), ConfigError> {
        self.generation += 1;
        let id = self.find_service(key).ok_or(ConfigError::NoSuchService)?;
        let svc = self.services[id.0 as usize].take().ok_or(ConfigError::NoSuchService)?;
        self.free_services.push(id.0);
        match *key {
            ServiceKey::Addr { protocol, addr, port } => {
                self.by_addr.remove(&AddrKey { protocol: protocol.number(), addr: Addr16::from_ip(addr), port });
                if port == 0 {
                    self.zero_port_services -= 1;
                }
            }
            ServiceKey::Fwmark { family, mark } => {
                self.by_mark.remove(&(family, mark));
            }
        }
        for d in svc.dests {
            self.retire_dest(d);
        }
        Ok(())
    }

    /// Deletes every service (`ipvsadm -C`).
    pub fn clear(&mut self) {
        let keys: Vec<ServiceKey> = self.services().map(|(_, s)| s.config.key).collect();
        for k in keys {
            let _ = self.delete_service(&k);
        }
    }

    fn effective_dest_config(svc: &ServiceConfig, mut config: DestConfig) -> DestConfig {
        // ipvsadm forces the real port to the virtual port for DR and TUN (non-fwmark).
        if !svc.key.is_fwmark() && !matches!(config.method, ForwardMethod::Masquerade) {
            config.port = svc.key.port();
        }
        config
    }

    /// Adds a destination to a service (`ipvsadm -a`). A destination removed earlier but
    /// still used by connections is brought back (its counters continue).
    pub fn add_dest(&mut self, key: &ServiceKey, config: DestConfig) -> Result<DestId, ConfigError> {
        self.generation += 1;
        let id = self.find_service(key).ok_or(ConfigError::NoSuchService)?;
        let svc_cfg = self.service(id).ok_or(ConfigError::NoSuchService)?.config.clone();
        config.validate(svc_cfg.key.family())?;
        let config = Self::effective_dest_config(&svc_cfg, config);
        if self.find_dest(id, config.addr, config.port).is_some() {
            return Err(ConfigError::DestExists);
        }
        let trashed = self
            .dests
            .iter()
            .find(|(_, d)| {
                !d.available && d.service == id.0 && d.config.addr == config.addr && d.config.port == config.port
            })
            .map(|(i, _)| i);
        let did = match trashed {
            Some(did) => {
                let d = self.dests.get_mut(did).ok_or(ConfigError::NoSuchDest)?;
                d.apply_edit(config);
                d.available = true;
                did
            }
            None => {
                let mut d = Destination::new(config);
                d.service = id.0;
                self.dests.insert(d)
            }
        };
        let Engine { services, dests, .. } = self;
        let svc = services[id.0 as usize].as_mut().ok_or(ConfigError::NoSuchService)?;
        svc.dests.push(did);
        let pos = svc.dests.len() - 1;
        if let Some(d) = dests.get_mut(did) {
            d.position = pos as u32;
        }
        svc.scheduler.update_dests(DestList::new(&svc.dests, dests), DestChange::Added { pos });
        Ok(did)
    }

    /// Changes a destination's weight, thresholds or method (`ipvsadm -e`).
    pub fn edit_dest(&mut self, key: &ServiceKey, config: DestConfig) -> Result<DestId, ConfigError> {
        self.generation += 1;
        let id = self.find_service(key).ok_or(ConfigError::NoSuchService)?;
        let svc_cfg = self.service(id).ok_or(ConfigError::NoSuchService)?.config.clone();
        config.validate(svc_cfg.key.family())?;
        let config = Self::effective_dest_config(&svc_cfg, config);
        let did = self.find_dest(id, config.addr, config.port).ok_or(ConfigError::NoSuchDest)?;
        let Engine { services, dests, .. } = self;
        let d = dests.get_mut(did).ok_or(ConfigError::NoSuchDest)?;
        d.apply_edit(config);
        let pos = d.position as usize;
        let svc = services[id.0 as usize].as_mut().ok_or(ConfigError::NoSuchService)?;
        svc.scheduler.update_dests(DestList::new(&svc.dests, dests), DestChange::Edited { pos });
        Ok(did)
    }

    /// Removes a destination from a service (`ipvsadm -d`). Its connections stay until they
    /// expire (packets for them follow expire_nodest_conn).
    pub fn delete_dest(&mut self, key: &ServiceKey, addr: std::net::IpAddr, port: u16) -> Result<(), ConfigError> {
        self.generation += 1;
        let id = self.find_service(key).ok_or(ConfigError::NoSuchService)?;
        let svc_cfg = self.service(id).ok_or(ConfigError::NoSuchService)?.config.clone();
        // DR/TUN destinations were stored with the virtual port; find either form.
        let did = self
            .find_dest(id, addr, port)
            .or_else(|| self.find_dest(id, addr, svc_cfg.key.port()))
            .ok_or(ConfigError::NoSuchDest)?;
        let Engine { services, dests, .. } = self;
        let svc = services[id.0 as usize].as_mut().ok_or(ConfigError::NoSuchService)?;
        let pos = svc.dests.iter().position(|&x| x == did).ok_or(ConfigError::NoSuchDest)?;
        svc.dests.remove(pos);
        for (p, &other) in svc.dests.iter().enumerate().skip(pos) {
            if let Some(d) = dests.get_mut(other) {
                d.position = p as u32;
            }
        }
        if let Some(d) = dests.get_mut(did) {
            d.available = false;
        }
        svc.scheduler.update_dests(DestList::new(&svc.dests, dests), DestChange::Removed { pos, id: did });
        self.free_dest_if_unused(did);
        Ok(())
    }

    /// Marks a destination unavailable (its service is gone) and frees it if unused.
    fn retire_dest(&mut self, did: DestId) {
        if let Some(d) = self.dests.get_mut(did) {
            d.available = false;
            d.service = u32::MAX;
        }
        self.free_dest_if_unused(did);
    }

    fn free_dest_if_unused(&mut self, did: DestId) {
        if self.dests.get(did).is_some_and(|d| !d.available && d.refs() == 0) {
            self.dests.remove(did);
        }
    }

    /// Tells the service's scheduler that a destination's load changed.
    fn notify_load(&mut self, did: DestId) {
        let Some(d) = self.dests.get(did) else { return };
        if !d.available {
            return;
        }
        let (sid, pos) = (d.service, d.position as usize);
        let Engine { services, dests, .. } = self;
        if let Some(Some(svc)) = services.get_mut(sid as usize) {
            svc.scheduler.load_changed(DestList::new(&svc.dests, dests), pos);
        }
    }

    /// Zeroes counters of one service and its destinations, or of everything (`-Z`).
    pub fn zero_stats(&mut self, service: Option<ServiceId>, now: Instant) {
        let ids: Vec<ServiceId> = match service {
            Some(id) => vec![id],
            None => {
                self.stats.zero(now);
                self.services().map(|(id, _)| id).collect()
            }
        };
        for id in ids {
            let dest_ids: Vec<DestId> = self.service(id).map(|s| s.dests.clone()).unwrap_or_default();
            if let Some(s) = self.service_mut(id) {
                s.stats.zero(now);
            }
            for d in dest_ids {
                if let Some(d) = self.dests.get_mut(d) {
                    d.stats.zero(now);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
