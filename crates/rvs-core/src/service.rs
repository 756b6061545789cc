//! Virtual services: what clients connect to. A service is keyed by (protocol, VIP, port)
//! or by a firewall mark, and carries its scheduler, persistence and flags
//! (the kernel's `struct ip_vs_service`, the `-A/-E` options of ipvsadm).

use std::net::{IpAddr, Ipv4Addr};

use crate::addr::Family;
use crate::error::ConfigError;
use crate::sched::{SchedFlags, SchedulerKind};

/// Longest persistence timeout ipvsadm accepts: 31 days, in seconds.
pub const MAX_TIMEOUT_SECS: u32 = 86400 * 31;
/// Persistence timeout when `-p` is given without a value (`IPVS_SVC_PERSISTENT_TIMEOUT`).
pub const DEFAULT_PERSISTENT_TIMEOUT_SECS: u32 = 360;

/// Transport protocol of a service or connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// TCP (6).
    Tcp,
    /// UDP (17).
    Udp,
    /// SCTP (132).
    Sctp,
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    /// The protocol for an IP protocol number, if IPVS balances it.
    pub fn from_number(n: u8) -> Option<Protocol> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The name ipvsadm prints ("TCP", "UDP", "SCTP").
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// What identifies a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKey {
    /// (protocol, VIP, port); port 0 is a wildcard allowed only for persistent services.
    Addr {
        /// Transport protocol.
        protocol: Protocol,
        /// The virtual IP.
        addr: IpAddr,
        /// The virtual port (0 = any port, persistent services only).
        port: u16,
    },
    /// Firewall-mark service: every packet carrying `mark` in the given family.
    Fwmark {
        /// Address family of the marked traffic (`-6` selects IPv6).
        family: Family,
        /// The mark, 1..=u32::MAX.
        mark: u32,
    },
}

impl ServiceKey {
    /// Address family of the service.
    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Addr { addr, .. } => Family::of(addr),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }

    /// True for firewall-mark services.
    pub fn is_fwmark(&self) -> bool {
        matches!(self, ServiceKey::Fwmark { .. })
    }

    /// The virtual port (0 for fwmark services).
    pub fn port(&self) -> u16 {
        match self {
            ServiceKey::Addr { port, .. } => *port,
            ServiceKey::Fwmark { .. } => 0,
        }
    }
}

/// Client grouping for persistence: which part of the client address selects the template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Netmask {
    /// IPv4 dotted mask (any bit pattern is accepted, as ipvsadm does).
    V4(Ipv4Addr),
    /// IPv6 prefix length, 1..=128.
    V6Prefix(u8),
}

impl Netmask {
    /// The default for a family: /32 or /128 (one template per client address).
    pub fn host(family: Family) -> Netmask {
        match family {
            Family::V4 => Netmask::V4(Ipv4Addr::BROADCAST),
            Family::V6 => Netmask::V6Prefix(128),
        }
    }

    /// True if the mask keeps the whole address.
    pub fn is_host(&self) -> bool {
        match self {
            Netmask::V4(m) => *m == Ipv4Addr::BROADCAST,
            Netmask::V6Prefix(p) => *p == 128,
        }
    }

    /// `addr & mask`. An address of the other family is returned unchanged.
    pub fn apply(&self, addr: IpAddr) -> IpAddr {
        match (self, addr) {
            (Netmask::V4(m), IpAddr::V4(a)) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & u32::from(*m))),
            (Netmask::V6Prefix(p), IpAddr::V6(a)) => {
                let bits = u128::from(a);
                let mask = if *p == 0 { 0 } else { u128::MAX << (128 - u32::from((*p).min(128))) };
                IpAddr::V6((bits & mask).into())
            }
            (_, other) => other,
        }
    }
}

/// Persistence (`-p`, `-M`): connections of one client (group) go to the same real server
/// while a template lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Persistence {
    /// Template timeout in seconds (1..=2678400; default 360).
    pub timeout_secs: u32,
    /// Client grouping mask.
    pub netmask: Netmask,
}

impl Persistence {
    /// Persistence with ipvsadm's defaults for a family (360 s, host mask).
    pub fn default_for(family: Family) -> Persistence {
        Persistence { timeout_secs: DEFAULT_PERSISTENT_TIMEOUT_SECS, netmask: Netmask::host(family) }
    }
}

/// Everything `-A`/`-E` sets on a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceConfig {
    /// What the service is keyed by.
    pub key: ServiceKey,
    /// The scheduler (default wlc).
    pub scheduler: SchedulerKind,
    /// Scheduler flags (`-b`).
    pub sched_flags: SchedFlags,
    /// Persistence, if any.
    pub persistence: Option<Persistence>,
    /// One-packet scheduling (`-o`), UDP and fwmark services only.
    pub one_packet: bool,
    /// Persistence engine name (`--pe`), e.g. "sip".
    pub pe_name: Option<String>,
}

impl ServiceConfig {
    /// A service with ipvsadm's defaults: wlc, no persistence, no flags.
    pub fn new(key: ServiceKey) -> ServiceConfig {
        ServiceConfig {
            key,
            scheduler: SchedulerKind::Wlc,
            sched_flags: SchedFlags::NONE,
            persistence: None,
            one_packet: false,
            pe_name: None,
        }
    }

    /// Checks the combination the way ipvsadm and the kernel do.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match self.key {
            ServiceKey::Addr { protocol, port, .. } => {
                if port == 0 && self.persistence.is_none() {
                    return Err(ConfigError::ZeroPortNonPersistent);
                }
                if self.one_packet && protocol != Protocol::Udp {
                    return Err(ConfigError::OnePacketNotUdp);
                }
            }
            ServiceKey::Fwmark { mark, .. } => {
                if mark == 0 {
                    return Err(ConfigError::ZeroFwmark);
                }
            }
        }
        if let Some(p) = &self.persistence {
            if p.timeout_secs == 0 || p.timeout_secs > MAX_TIMEOUT_SECS {
                return Err(ConfigError::InvalidPersistTimeout(u64::from(p.timeout_secs)));
            }
            match (self.key.family(), p.netmask) {
                (Family::V4, Netmask::V4(_)) => {}
                (Family::V6, Netmask::V6Prefix(n)) if (1..=128).contains(&n) => {}
                _ => return Err(ConfigError::InvalidNetmask),
            }
        }
        if let Some(pe) = &self.pe_name
            && pe != "sip"
        {
            return Err(ConfigError::UnknownScheduler(pe.clone()));
        }
        self.sched_flags.check_compatible(self.scheduler)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(port: u16) -> ServiceKey {
        ServiceKey::Addr { protocol: Protocol::Tcp, addr: "198.18.0.10".parse().unwrap(), port }
    }

    #[test]
    fn zero_port_needs_persistence() {
        let mut s = ServiceConfig::new(tcp(0));
        assert_eq!(s.validate(), Err(ConfigError::ZeroPortNonPersistent));
        s.persistence = Some(Persistence::default_for(Family::V4));
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn one_packet_only_for_udp_and_fwmark() {
        let mut s = ServiceConfig::new(tcp(80));
        s.one_packet = true;
        assert_eq!(s.validate(), Err(ConfigError::OnePacketNotUdp));
        s.key = ServiceKey::Addr { protocol: Protocol::Udp, addr: "198.18.0.10".parse().unwrap(), port: 53 };
        assert_eq!(s.validate(), Ok(()));
        s.key = ServiceKey::Fwmark { family: Family::V4, mark: 1 };
        assert_eq!(s.validate(), Ok(()));
    }

    #[test]
    fn persistence_bounds_and_masks() {
        let mut s = ServiceConfig::new(tcp(80));
        s.persistence = Some(Persistence { timeout_secs: 0, netmask: Netmask::host(Family::V4) });
        assert_eq!(s.validate(), Err(ConfigError::InvalidPersistTimeout(0)));
        s.persistence = Some(Persistence { timeout_secs: MAX_TIMEOUT_SECS + 1, netmask: Netmask::host(Family::V4) });
        assert!(s.validate().is_err());
        s.persistence = Some(Persistence { timeout_secs: 60, netmask: Netmask::V6Prefix(64) });
        assert_eq!(s.validate(), Err(ConfigError::InvalidNetmask));
        s.key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: "fd00::1".parse().unwrap(), port: 80 };
        assert_eq!(s.validate(), Ok(()));
        s.persistence = Some(Persistence { timeout_secs: 60, netmask: Netmask::V6Prefix(0) });
        assert_eq!(s.validate(), Err(ConfigError::InvalidNetmask));
    }

    #[test]
    fn netmask_groups_clients() {
        let m = Netmask::V4("255.255.255.0".parse().unwrap());
        assert_eq!(m.apply("198.18.5.77".parse().unwrap()), "198.18.5.0".parse::<IpAddr>().unwrap());
        let m6 = Netmask::V6Prefix(48);
        assert_eq!(m6.apply("fd00:1:2:3::9".parse().unwrap()), "fd00:1:2::".parse::<IpAddr>().unwrap());
        assert!(Netmask::host(Family::V6).is_host());
    }

    #[test]
    fn unknown_pe_is_refused() {
        let mut s = ServiceConfig::new(tcp(80));
        s.pe_name = Some("nope".into());
        assert!(matches!(s.validate(), Err(ConfigError::UnknownScheduler(_))));
    }
}
