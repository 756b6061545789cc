//! Destinations (real servers): address, forwarding method, weight, thresholds and the
//! connection counters schedulers read (the kernel's `struct ip_vs_dest`, ipvsadm's `-a/-e`).
//!
//! The overload rules of the kernel's `ip_vs_bind_dest` / `ip_vs_unbind_dest` live here:
//! a destination becomes overloaded when its active + inactive connections reach the upper
//! threshold, and is released below the lower threshold (or below 3/4 of the upper one).

use std::net::IpAddr;

use crate::addr::Family;
use crate::error::ConfigError;
use crate::stats::Stats;

/// Largest weight ipvsadm accepts.
pub const MAX_WEIGHT: u32 = 65535;
/// Largest threshold the kernel accepts (ipvsadm's man page says 65535, the code INT_MAX).
pub const MAX_THRESHOLD: u32 = i32::MAX as u32;

/// Tunnel encapsulation (`--tun-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TunnelType {
    /// IP-in-IP (IPIP, IPv6-in-IPv6, or across families): the default.
    Ipip,
    /// Generic UDP Encapsulation to `port`.
    Gue {
        /// UDP destination port on the real server (`--tun-port`).
        port: u16,
    },
    /// GRE.
    Gre,
}

/// Tunnel checksum option (`--tun-nocsum`, `--tun-csum`, `--tun-remcsum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TunnelChecksum {
    /// No outer checksum (default).
    #[default]
    None,
    /// Outer checksum.
    Checksum,
    /// Remote checksum offload (GUE only).
    Remote,
}

/// Tunnel parameters of a `-i` destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TunnelConfig {
    /// Encapsulation.
    pub kind: TunnelType,
    /// Checksum option.
    pub checksum: TunnelChecksum,
}

impl TunnelConfig {
    /// Plain IPIP, ipvsadm's default for `-i`.
    pub const IPIP: TunnelConfig = TunnelConfig { kind: TunnelType::Ipip, checksum: TunnelChecksum::None };

    /// Checks the combination as ipvsadm does.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match (self.kind, self.checksum) {
            (TunnelType::Gue { port: 0 }, _) => Err(ConfigError::GuePortRequired),
            (TunnelType::Ipip, TunnelChecksum::None) => Ok(()),
            (TunnelType::Ipip, _) => Err(ConfigError::TunnelOptionConflict),
            (TunnelType::Gre, TunnelChecksum::Remote) => Err(ConfigError::RemoteChecksumNotGue),
            _ => Ok(()),
        }
    }
}

/// How packets reach a destination (`-m`, `-g`, `-i`, or local).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForwardMethod {
    /// NAT ("Masq"): destination address and port rewritten, replies come back through us.
    Masquerade,
    /// The destination is this host ("Local").
    Local,
    /// IP tunnelling ("Tunnel"): encapsulated to the destination's address.
    Tunnel(TunnelConfig),
    /// Direct routing ("Route"): only the MAC changes; ipvsadm's default.
    DirectRoute,
}

impl ForwardMethod {
    /// The word ipvsadm prints in listings.
    pub fn list_name(&self) -> &'static str {
        match self {
            ForwardMethod::Masquerade => "Masq",
            ForwardMethod::Local => "Local",
            ForwardMethod::Tunnel(_) => "Tunnel",
            ForwardMethod::DirectRoute => "Route",
        }
    }

    /// True if replies bypass the director (DR and TUN): the director sees input only.
    pub fn is_input_only(&self) -> bool {
        matches!(self, ForwardMethod::DirectRoute | ForwardMethod::Tunnel(_))
    }
}

/// Everything `-a`/`-e` sets on a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DestConfig {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port (forced to the virtual port for DR/TUN on non-fwmark services).
    pub port: u16,
    /// Forwarding method.
    pub method: ForwardMethod,
    /// Weight 0..=65535; 0 = quiescent (no new connections).
    pub weight: u32,
    /// Upper connection threshold (0 = none).
    pub upper_threshold: u32,
    /// Lower connection threshold (0 = none).
    pub lower_threshold: u32,
}

impl DestConfig {
    /// A destination with ipvsadm's defaults: direct routing, weight 1, no thresholds.
    pub fn new(addr: IpAddr, port: u16) -> DestConfig {
        DestConfig { addr, port, method: ForwardMethod::DirectRoute, weight: 1, upper_threshold: 0, lower_threshold: 0 }
    }

    /// Checks the destination against its service's family.
    pub fn validate(&self, service_family: Family) -> Result<(), ConfigError> {
        if self.weight > MAX_WEIGHT {
            return Err(ConfigError::IllegalWeight);
        }
        if self.upper_threshold > MAX_THRESHOLD {
            return Err(ConfigError::IllegalUpperThreshold);
        }
        if self.lower_threshold > MAX_THRESHOLD {
            return Err(ConfigError::IllegalLowerThreshold);
        }
        if self.lower_threshold > self.upper_threshold && self.upper_threshold != 0 {
            return Err(ConfigError::ThresholdOrder);
        }
        if let ForwardMethod::Tunnel(t) = &self.method {
            t.validate()?;
        } else if Family::of(&self.addr) != service_family {
            return Err(ConfigError::FamilyMismatch);
        }
        Ok(())
    }
}

/// Index of a destination in the engine's destination arena. Stable for the destination's
/// life, including the time it spends removed-but-referenced (the kernel's "trash").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DestId(pub u32);

/// A real server as the engine and the schedulers see it.
#[derive(Debug, Clone)]
pub struct Destination {
    /// The configuration (address, port, method, weight, thresholds).
    pub config: DestConfig,
    /// The last non-zero weight (Maglev builds its table from it, so quiescing does not
    /// reshuffle).
    pub last_weight: u32,
    /// In the service's list (false once removed, while connections still reference it).
    pub available: bool,
    /// Over its upper threshold: skipped by every scheduler.
    pub overloaded: bool,
    /// Connections counted active (established-like states).
    pub active_conns: u32,
    /// Connections counted inactive (closing, UDP ...).
    pub inactive_conns: u32,
    /// Persistence templates pointing here.
    pub persist_conns: u32,
    /// Traffic counters and rates.
    pub stats: Stats,
    /// The owning service's id (engine bookkeeping).
    pub service: u32,
    /// Position in the service's list while available (engine bookkeeping).
    pub position: u32,
}

impl Destination {
    /// A new, available destination with zero counters.
    pub fn new(config: DestConfig) -> Destination {
        Destination {
            last_weight: config.weight,
            config,
            available: true,
            overloaded: false,
            active_conns: 0,
            inactive_conns: 0,
            persist_conns: 0,
            stats: Stats::default(),
            service: u32::MAX,
            position: 0,
        }
    }

    /// Current weight.
    pub fn weight(&self) -> u32 {
        self.config.weight
    }

    /// The kernel's `ip_vs_dest_conn_overhead`: active * 256 + inactive.
    pub fn overhead(&self) -> u64 {
        (u64::from(self.active_conns) << 8) + u64::from(self.inactive_conns)
    }

    /// Active + inactive connections (what thresholds compare against).
    pub fn total_conns(&self) -> u64 {
        u64::from(self.active_conns) + u64::from(self.inactive_conns)
    }

    /// May a scheduler pick this destination for a new connection? (weight > 0, not
    /// overloaded, still in the service).
    pub fn is_schedulable(&self) -> bool {
        self.available && self.config.weight > 0 && !self.overloaded
    }

    /// Applies an edit (`-e`): new weight/thresholds/method. Clears the overload flag when
    /// the upper threshold is removed or raised, as the kernel does.
    pub fn apply_edit(&mut self, config: DestConfig) {
        if config.upper_threshold == 0 || config.upper_threshold > self.config.upper_threshold {
            self.overloaded = false;
        }
        if config.weight > 0 {
            self.last_weight = config.weight;
        }
        self.config = config;
    }

    /// A connection (or template) was bound to this destination.
    pub fn bind(&mut self, template: bool, inactive: bool) {
        if template {
            self.persist_conns = self.persist_conns.saturating_add(1);
        } else if inactive {
            self.inactive_conns = self.inactive_conns.saturating_add(1);
        } else {
            self.active_conns = self.active_conns.saturating_add(1);
        }
        let upper = u64::from(self.config.upper_threshold);
        if upper != 0 && self.total_conns() >= upper {
            self.overloaded = true;
        }
    }

    /// A connection (or template) bound here went away.
    pub fn unbind(&mut self, template: bool, inactive: bool) {
        if template {
            self.persist_conns = self.persist_conns.saturating_sub(1);
        } else if inactive {
            self.inactive_conns = self.inactive_conns.saturating_sub(1);
        } else {
            self.active_conns = self.active_conns.saturating_sub(1);
        }
        self.update_overload_on_release();
    }

    /// A bound connection moved between active and inactive.
    pub fn move_conn(&mut self, now_inactive: bool) {
        if now_inactive {
            self.active_conns = self.active_conns.saturating_sub(1);
            self.inactive_conns = self.inactive_conns.saturating_add(1);
        } else {
            self.inactive_conns = self.inactive_conns.saturating_sub(1);
            self.active_conns = self.active_conns.saturating_add(1);
        }
    }

    fn update_overload_on_release(&mut self) {
        let total = self.total_conns();
        let lower = u64::from(self.config.lower_threshold);
        let upper = u64::from(self.config.upper_threshold);
        if lower != 0 {
            if total < lower {
                self.overloaded = false;
            }
        } else if upper != 0 {
            if total * 4 < upper * 3 {
                self.overloaded = false;
            }
        } else {
            self.overloaded = false;
        }
    }

    /// References held by connections and templates (the dest may be freed at zero).
    pub fn refs(&self) -> u64 {
        self.total_conns() + u64::from(self.persist_conns)
    }
}

/// Storage for every destination of every service, indexed by [`DestId`].
#[derive(Debug, Default, Clone)]
pub struct DestArena {
    slots: Vec<Option<Destination>>,
    free: Vec<u32>,
}

impl DestArena {
    /// Stores a destination and returns its id.
    pub fn insert(&mut self, d: Destination) -> DestId {
        if let Some(i) = self.free.pop() {
            self.slots[i as usize] = Some(d);
            DestId(i)
        } else {
            self.slots.push(Some(d));
            DestId((self.slots.len() - 1) as u32)
        }
    }

    /// Frees a slot.
    pub fn remove(&mut self, id: DestId) -> Option<Destination> {
        let d = self.slots.get_mut(id.0 as usize)?.take();
        if d.is_some() {
            self.free.push(id.0);
        }
        d
    }

    /// The destination with this id.
    pub fn get(&self, id: DestId) -> Option<&Destination> {
        self.slots.get(id.0 as usize)?.as_ref()
    }

    /// The destination with this id, mutably.
    pub fn get_mut(&mut self, id: DestId) -> Option<&mut Destination> {
        self.slots.get_mut(id.0 as usize)?.as_mut()
    }

    /// Every stored destination (in the service or in the trash).
    pub fn iter(&self) -> impl Iterator<Item = (DestId, &Destination)> {
        self.slots.iter().enumerate().filter_map(|(i, d)| d.as_ref().map(|d| (DestId(i as u32), d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(u: u32, l: u32) -> Destination {
        let mut c = DestConfig::new("198.18.1.1".parse().unwrap(), 80);
        c.upper_threshold = u;
        c.lower_threshold = l;
        Destination::new(c)
    }

    #[test]
    fn overload_set_at_upper_and_cleared_below_lower() {
        let mut d = dest(4, 2);
        for _ in 0..3 {
            d.bind(false, false);
        }
        assert!(!d.overloaded);
        d.bind(false, true);
        assert!(d.overloaded, "4 conns reach u_threshold 4");
        d.unbind(false, false);
        d.unbind(false, false);
        assert!(d.overloaded, "2 conns are not below l_threshold 2");
        d.unbind(false, false);
        assert!(!d.overloaded, "1 conn is below l_threshold 2");
    }

    #[test]
    fn without_lower_threshold_clear_below_three_quarters_of_upper() {
        let mut d = dest(8, 0);
        for _ in 0..8 {
            d.bind(false, false);
        }
        assert!(d.overloaded);
        d.unbind(false, false); // 7: 28 < 24? no
        d.unbind(false, false); // 6: 24 < 24? no
        assert!(d.overloaded);
        d.unbind(false, false); // 5: 20 < 24
        assert!(!d.overloaded);
    }

    #[test]
    fn templates_do_not_count_towards_thresholds() {
        let mut d = dest(1, 0);
        d.bind(true, false);
        assert!(!d.overloaded);
        assert_eq!(d.persist_conns, 1);
        d.bind(false, false);
        assert!(d.overloaded);
    }

    #[test]
    fn raising_or_clearing_upper_threshold_clears_overload() {
        let mut d = dest(1, 0);
        d.bind(false, false);
        assert!(d.overloaded);
        let mut c = d.config;
        c.upper_threshold = 1;
        d.apply_edit(c);
        assert!(d.overloaded, "same threshold keeps overload");
        c.upper_threshold = 0;
        d.apply_edit(c);
        assert!(!d.overloaded);
    }

    #[test]
    fn validation_matches_ipvsadm() {
        let mut c = DestConfig::new("198.18.1.1".parse().unwrap(), 80);
        c.weight = 65536;
        assert_eq!(c.validate(Family::V4), Err(ConfigError::IllegalWeight));
        c.weight = 0;
        assert_eq!(c.validate(Family::V4), Ok(()));
        assert_eq!(c.validate(Family::V6), Err(ConfigError::FamilyMismatch));
        c.method = ForwardMethod::Tunnel(TunnelConfig::IPIP);
        assert_eq!(c.validate(Family::V6), Ok(()), "tunnels may cross families");
        c.method =
            ForwardMethod::Tunnel(TunnelConfig { kind: TunnelType::Gue { port: 0 }, checksum: TunnelChecksum::None });
        assert_eq!(c.validate(Family::V4), Err(ConfigError::GuePortRequired));
        c.method = ForwardMethod::Tunnel(TunnelConfig { kind: TunnelType::Gre, checksum: TunnelChecksum::Remote });
        assert_eq!(c.validate(Family::V4), Err(ConfigError::RemoteChecksumNotGue));
        c.method = ForwardMethod::Tunnel(TunnelConfig { kind: TunnelType::Ipip, checksum: TunnelChecksum::Checksum });
        assert_eq!(c.validate(Family::V4), Err(ConfigError::TunnelOptionConflict));
        c.method = ForwardMethod::Masquerade;
        c.upper_threshold = 5;
        c.lower_threshold = 6;
        assert_eq!(c.validate(Family::V4), Err(ConfigError::ThresholdOrder));
        c.upper_threshold = MAX_THRESHOLD + 1;
        assert_eq!(c.validate(Family::V4), Err(ConfigError::IllegalUpperThreshold));
    }
}
