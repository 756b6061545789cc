//! Connection sync on the engine side (the kernel's `ip_vs_sync.c` receive and send halves,
//! without the wire format): [`Engine::install_synced`] creates or refreshes a connection or
//! persistence template that a master reported, bound to the destination found by
//! (service, daddr, dport), flagged SYNC and never scheduled here; [`Engine::sync_records`]
//! lists what a master sends.

use std::net::{IpAddr, Ipv4Addr};

use crate::addr::{Addr16, Family};
use crate::conn::sctp::SctpState;
use crate::conn::{Conn, ConnFlags, ConnId, TcpState};
use crate::engine::{Engine, ServiceId};
use crate::service::ServiceKey;
use crate::time::Instant;

/// A connection or template as synced, in the engine's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SyncRecord {
    /// IP protocol (templates: the service's; 0 for fwmark templates).
    pub protocol: u8,
    /// Client address (templates: the masked client network).
    pub caddr: IpAddr,
    /// Client port (0 for templates).
    pub cport: u16,
    /// Virtual address.
    pub vaddr: IpAddr,
    /// Virtual port (0 for port-zero and fwmark templates).
    pub vport: u16,
    /// Real server address.
    pub daddr: IpAddr,
    /// Real server port (0 for templates of port-zero services).
    pub dport: u16,
    /// The service's firewall mark (0 for address services).
    pub fwmark: u32,
    /// A persistence template.
    pub template: bool,
    /// Protocol state index (kernel numbering, as `TcpState` / `SctpState`).
    pub state: u8,
    /// Not counted as active on the destination.
    pub inactive: bool,
    /// No reply seen through the director (DR/TUN).
    pub no_output: bool,
    /// Remaining lifetime in milliseconds (0: the protocol's timeout for the state).
    pub timeout_ms: u64,
}

/// Why a synced entry was not installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SyncInstallError {
    /// No local service matches (protocol, vaddr, vport) or the fwmark.
    #[error("no matching virtual service")]
    NoService,
    /// The service has no destination with that address and port.
    #[error("no matching real server")]
    NoDestination,
    /// Addresses of mixed families.
    #[error("mixed address families")]
    MixedFamily,
    /// The connection table is full.
    #[error("connection table full")]
    TableFull,
}

/// Whether a synced entry created a new entry or refreshed an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Installed {
    /// A new entry.
    Created(ConnId),
    /// An existing entry got the new state and timer.
    Refreshed(ConnId),
}

/// The virtual-address field of a fwmark template (as the scheduler writes it).
fn mark_addr(mark: u32) -> Addr16 {
    Addr16::from_ip(IpAddr::V4(Ipv4Addr::from(mark)))
}

impl Engine {
    /// The service a synced entry belongs to: by fwmark, else by (protocol, vaddr, vport),
    /// else (templates with port 0) by (protocol, vaddr) on a port-zero or any-port service.
    fn synced_service(&self, r: &SyncRecord) -> Option<ServiceId> {
        let family = Family::of(&r.vaddr);
        if r.fwmark != 0 {
            return self
                .services()
                .find(|(_, s)| matches!(s.config.key, ServiceKey::Fwmark { mark, family: f } if mark == r.fwmark && f == family))
                .map(|(id, _)| id);
        }
        let vaddr = Addr16::from_ip(r.vaddr);
        if let Some(id) = self.classify(family, 0, r.protocol, &vaddr, r.vport) {
            return Some(id);
        }
        if !(r.template && r.vport == 0) {
            return None;
        }
        self.services()
            .find(|(_, s)| {
                matches!(s.config.key, ServiceKey::Addr { protocol, addr, .. }
                    if addr == r.vaddr && protocol.number() == r.protocol)
            })
            .map(|(id, _)| id)
    }

    fn default_timeout_ms(&self, protocol: u8, state: u8) -> u64 {
        let s = match protocol {
            6 => self.timeouts.tcp(TcpState::from_index(state)),
            132 => self.timeouts.sctp(SctpState::from_index(state)),
            _ => self.timeouts.udp(),
        };
        u64::from(s) * 1000
    }

    /// Installs (or refreshes) a connection or template reported by a master: never
    /// scheduled, bound to the destination with `daddr`/`dport` in the matching service,
    /// flagged [`ConnFlags::SYNC`]. A connection under a persistent service is linked to its
    /// template when the template is already here.
    pub fn install_synced(&mut self, r: &SyncRecord, now: Instant) -> Result<Installed, SyncInstallError> {
        let family = Family::of(&r.caddr);
        if Family::of(&r.vaddr) != family {
            return Err(SyncInstallError::MixedFamily);
        }
        let sid = self.synced_service(r).ok_or(SyncInstallError::NoService)?;
        let did = self
            .dests_of(sid)
            .find(|(_, d)| d.config.addr == r.daddr && (d.config.port == r.dport || r.template || d.config.port == 0))
            .map(|(id, _)| id)
            .ok_or(SyncInstallError::NoDestination)?;
        let timeout_ms = if r.timeout_ms == 0 { self.default_timeout_ms(r.protocol, r.state) } else { r.timeout_ms };
        let caddr = Addr16::from_ip(r.caddr);
        let vaddr = if r.template && r.protocol == 0 { mark_addr(r.fwmark) } else { Addr16::from_ip(r.vaddr) };
        let existing = if r.template {
            self.conns.find_template(r.protocol, &caddr, &vaddr, r.vport)
        } else {
            self.conns.find_in(r.protocol, &caddr, r.cport, &vaddr, r.vport)
        };
        if let Some(id) = existing {
            let mut moved = None;
            if let Some(c) = self.conns.get_mut(id) {
                c.state = r.state;
                let inactive = c.flags.has(ConnFlags::INACTIVE);
                if !c.is_template() && c.protocol != 17 && inactive != r.inactive {
                    c.flags.set(ConnFlags::INACTIVE, r.inactive);
                    moved = Some((c.dest, r.inactive));
                }
            }
            self.conns.refresh(id, now.as_millis(), timeout_ms);
            if let Some((d, now_inactive)) = moved
                && let Some(dest) = self.dests.get_mut(d)
            {
                dest.move_conn(now_inactive);
            }
            return Ok(Installed::Refreshed(id));
        }
        let mut flags = ConnFlags::new(ConnFlags::SYNC);
        flags.set(ConnFlags::TEMPLATE, r.template);
        flags.set(ConnFlags::V6, family == Family::V6);
        flags.set(ConnFlags::DEST_V6, Family::of(&r.daddr) == Family::V6);
        flags.set(ConnFlags::NO_OUTPUT, r.no_output && !r.template);
        flags.set(ConnFlags::FWMARK, r.template && r.protocol == 0);
        // Templates are neither active nor inactive; UDP stays inactive as the kernel counts it.
        let inactive = !r.template && (r.inactive || r.protocol == 17);
        flags.set(ConnFlags::INACTIVE, inactive);
        let mut c =
            Conn::new(r.protocol, caddr, r.cport, vaddr, r.vport, Addr16::from_ip(r.daddr), r.dport, did, flags);
        c.state = r.state;
        let template = if r.template { None } else { self.synced_template_of(sid, r) };
        if let Some(t) = template {
            c.link = t.0;
        }
        let id = self.conns.insert(c, now.as_millis(), timeout_ms).map_err(|_| {
            self.drops.table_full += 1;
            SyncInstallError::TableFull
        })?;
        if let Some(t) = template
            && let Some(tc) = self.conns.get_mut(t)
        {
            tc.link = tc.link.saturating_add(1);
        }
        if let Some(d) = self.dests.get_mut(did) {
            d.bind(r.template, inactive);
        }
        Ok(Installed::Created(id))
    }

    /// The template a synced connection of a persistent service belongs to, if present.
    fn synced_template_of(&self, sid: ServiceId, r: &SyncRecord) -> Option<ConnId> {
        let svc = self.service(sid)?;
        let persist = svc.config.persistence?;
        let masked = Addr16::from_ip(persist.netmask.apply(r.caddr));
        match svc.config.key {
            ServiceKey::Fwmark { mark, .. } => self.conns.find_template(0, &masked, &mark_addr(mark), 0),
            ServiceKey::Addr { port, .. } => {
                let vaddr = Addr16::from_ip(r.vaddr);
                self.conns
                    .find_template(r.protocol, &masked, &vaddr, r.vport)
                    .or_else(|| (port == 0).then(|| self.conns.find_template(r.protocol, &masked, &vaddr, 0)).flatten())
            }
        }
    }

    /// Every connection and template as a master reports it (templates first, so a backup
    /// can link connections to them), with its remaining lifetime at `now`. One-packet
    /// entries and fwmark services' connections carry the service's mark.
    pub fn sync_records(&self, now: Instant) -> Vec<SyncRecord> {
        let mut out = Vec::with_capacity(self.conns.len());
        for pass_templates in [true, false] {
            for (id, c) in self.conns.iter() {
                if c.is_template() != pass_templates || c.flags.has(ConnFlags::ONE_PACKET) {
                    continue;
                }
                let fam = if c.flags.has(ConnFlags::V6) { Family::V6 } else { Family::V4 };
                let dfam = if c.flags.has(ConnFlags::DEST_V6) { Family::V6 } else { Family::V4 };
                let fwmark = self.dest(c.dest).and_then(|d| self.service(ServiceId(d.service))).map_or(0, |s| match s
                    .config
                    .key
                {
                    ServiceKey::Fwmark { mark, .. } => mark,
                    ServiceKey::Addr { .. } => 0,
                });
                let is_fwmark_template = c.flags.has(ConnFlags::FWMARK);
                out.push(SyncRecord {
                    protocol: c.protocol,
                    caddr: c.caddr.to_ip(fam),
                    cport: c.cport,
                    // A fwmark template's vaddr holds the mark; report the unspecified address.
                    vaddr: if is_fwmark_template {
                        if fam == Family::V6 {
                            IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
                        } else {
                            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                        }
                    } else {
                        c.vaddr.to_ip(fam)
                    },
                    vport: c.vport,
                    daddr: c.daddr.to_ip(dfam),
                    dport: c.dport,
                    fwmark,
                    template: c.is_template(),
                    state: c.state,
                    inactive: c.flags.has(ConnFlags::INACTIVE),
                    no_output: c.flags.has(ConnFlags::NO_OUTPUT),
                    timeout_ms: self.conns.remaining_ms(id, now.as_millis()),
                });
            }
        }
        out
    }
}
