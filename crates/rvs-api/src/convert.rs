//! Conversions between the API's serialisable types and `rvs-core`'s model, and the
//! listings built from a running engine.

use std::net::IpAddr;

use rvs_core::addr::Family;
use rvs_core::conn::sctp::SctpState;
use rvs_core::conn::tcp::TcpState;
use rvs_core::engine::Engine;
use rvs_core::service::{Netmask, Persistence, Protocol, ServiceConfig, ServiceKey};
use rvs_core::stats::Stats;
use rvs_core::{
    ConfigError, DestConfig, Destination, ForwardMethod, Instant, SchedFlags, SchedulerKind, TunnelChecksum,
    TunnelConfig, TunnelType,
};

use crate::{
    ApiError, ConnInfo, DestInfo, DestSpec, MethodSpec, NetmaskSpec, PersistenceSpec, Proto, ServiceId, ServiceInfo,
    ServiceSpec, StatsInfo, Table,
};

impl ApiError {
    /// An error of `kind` with `message`.
    pub fn new(kind: &str, message: impl Into<String>) -> ApiError {
        ApiError { kind: kind.into(), message: message.into(), command_index: None }
    }
}

impl From<ConfigError> for ApiError {
    fn from(e: ConfigError) -> ApiError {
        let kind = match e {
            ConfigError::ServiceExists => "service_exists",
            ConfigError::NoSuchService => "no_such_service",
            ConfigError::DestExists => "dest_exists",
            ConfigError::NoSuchDest => "no_such_dest",
            ConfigError::UnknownScheduler(_) => "no_scheduler",
            _ => "invalid",
        };
        ApiError::new(kind, e.to_string())
    }
}

impl From<Protocol> for Proto {
    fn from(p: Protocol) -> Proto {
        match p {
            Protocol::Tcp => Proto::Tcp,
            Protocol::Udp => Proto::Udp,
            Protocol::Sctp => Proto::Sctp,
        }
    }
}

impl From<Proto> for Protocol {
    fn from(p: Proto) -> Protocol {
        match p {
            Proto::Tcp => Protocol::Tcp,
            Proto::Udp => Protocol::Udp,
            Proto::Sctp => Protocol::Sctp,
        }
    }
}

impl From<ServiceId> for ServiceKey {
    fn from(id: ServiceId) -> ServiceKey {
        match id {
            ServiceId::Addr { protocol, addr, port } => ServiceKey::Addr { protocol: protocol.into(), addr, port },
            ServiceId::Fwmark { mark, ipv6 } => {
                ServiceKey::Fwmark { family: if ipv6 { Family::V6 } else { Family::V4 }, mark }
            }
        }
    }
}

impl From<ServiceKey> for ServiceId {
    fn from(k: ServiceKey) -> ServiceId {
        match k {
            ServiceKey::Addr { protocol, addr, port } => ServiceId::Addr { protocol: protocol.into(), addr, port },
            ServiceKey::Fwmark { family, mark } => ServiceId::Fwmark { mark, ipv6: family == Family::V6 },
        }
    }
}

impl ServiceSpec {
    /// The core configuration, validated.
    pub fn to_config(&self) -> Result<ServiceConfig, ApiError> {
        let key: ServiceKey = self.id.into();
        let scheduler: SchedulerKind = self.scheduler.parse()?;
        let sched_flags = if self.sched_flags.is_empty() {
            SchedFlags::NONE
        } else {
            SchedFlags::parse(&self.sched_flags.join(","), scheduler)?
        };
        let persistence = self.persistence.map(|p| Persistence {
            timeout_secs: p.timeout,
            netmask: match p.netmask {
                NetmaskSpec::V4(m) => Netmask::V4(m),
                NetmaskSpec::V6(n) => Netmask::V6Prefix(n),
            },
        });
        let cfg = ServiceConfig {
            key,
            scheduler,
            sched_flags,
            persistence,
            one_packet: self.one_packet,
            pe_name: self.pe.clone(),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    /// The API form of a core configuration.
    pub fn from_config(c: &ServiceConfig) -> ServiceSpec {
        ServiceSpec {
            id: c.key.into(),
            scheduler: c.scheduler.name().into(),
            sched_flags: c.sched_flags.names(c.scheduler).into_iter().map(String::from).collect(),
            persistence: c.persistence.map(|p| PersistenceSpec {
                timeout: p.timeout_secs,
                netmask: match p.netmask {
                    Netmask::V4(m) => NetmaskSpec::V4(m),
                    Netmask::V6Prefix(n) => NetmaskSpec::V6(n),
                },
            }),
            one_packet: c.one_packet,
            pe: c.pe_name.clone(),
        }
    }
}

impl MethodSpec {
    /// The core forwarding method.
    pub fn to_method(&self) -> Result<ForwardMethod, ApiError> {
        Ok(match self {
            MethodSpec::Masq => ForwardMethod::Masquerade,
            MethodSpec::Route => ForwardMethod::DirectRoute,
            MethodSpec::Local => ForwardMethod::Local,
            MethodSpec::Tunnel { tun_type, tun_port, tun_csum } => {
                let kind = match tun_type.as_str() {
                    "ipip" => TunnelType::Ipip,
                    "gue" => TunnelType::Gue { port: *tun_port },
                    "gre" => TunnelType::Gre,
                    other => return Err(ApiError::new("invalid", format!("unknown tunnel type `{other}'"))),
                };
                let checksum = match tun_csum.as_str() {
                    "nocsum" => TunnelChecksum::None,
                    "csum" => TunnelChecksum::Checksum,
                    "remcsum" => TunnelChecksum::Remote,
                    other => return Err(ApiError::new("invalid", format!("unknown tunnel checksum `{other}'"))),
                };
                let t = TunnelConfig { kind, checksum };
                t.validate()?;
                ForwardMethod::Tunnel(t)
            }
        })
    }

    /// The API form of a core forwarding method.
    pub fn from_method(m: &ForwardMethod) -> MethodSpec {
        match m {
            ForwardMethod::Masquerade => MethodSpec::Masq,
            ForwardMethod::DirectRoute => MethodSpec::Route,
            ForwardMethod::Local => MethodSpec::Local,
            ForwardMethod::Tunnel(t) => {
                let (tun_type, tun_port) = match t.kind {
                    TunnelType::Ipip => ("ipip", 0),
                    TunnelType::Gue { port } => ("gue", port),
                    TunnelType::Gre => ("gre", 0),
                };
                let tun_csum = match t.checksum {
                    TunnelChecksum::None => "nocsum",
                    TunnelChecksum::Checksum => "csum",
                    TunnelChecksum::Remote => "remcsum",
                };
                MethodSpec::Tunnel { tun_type: tun_type.into(), tun_port, tun_csum: tun_csum.into() }
            }
        }
    }
}

impl DestSpec {
    /// The core configuration (validated against the service by the engine).
    pub fn to_config(&self) -> Result<DestConfig, ApiError> {
        Ok(DestConfig {
            addr: self.addr,
            port: self.port,
            method: self.method.to_method()?,
            weight: self.weight,
            upper_threshold: self.u_threshold,
            lower_threshold: self.l_threshold,
        })
    }

    /// The API form of a core destination.
    pub fn from_config(c: &DestConfig) -> DestSpec {
        DestSpec {
            addr: c.addr,
            port: c.port,
            method: MethodSpec::from_method(&c.method),
            weight: c.weight,
            u_threshold: c.upper_threshold,
            l_threshold: c.lower_threshold,
        }
    }
}

impl StatsInfo {
    /// Counters and rates of a core stats object.
    pub fn from_stats(s: &Stats) -> StatsInfo {
        let c = s.counters;
        let r = s.rates();
        StatsInfo {
            conns: c.conns,
            inpkts: c.in_pkts,
            outpkts: c.out_pkts,
            inbytes: c.in_bytes,
            outbytes: c.out_bytes,
            cps: r.cps,
            inpps: r.in_pps,
            outpps: r.out_pps,
            inbps: r.in_bps,
            outbps: r.out_bps,
        }
    }
}

fn dest_info(d: &Destination) -> DestInfo {
    DestInfo {
        spec: DestSpec::from_config(&d.config),
        active_conns: d.active_conns,
        inactive_conns: d.inactive_conns,
        persist_conns: d.persist_conns,
        stats: StatsInfo::from_stats(&d.stats),
    }
}

/// The whole table of a running engine. `conn_tab_size` is what the banner shows.
pub fn table_of(engine: &Engine, conn_tab_size: u32) -> Table {
    let services = engine
        .services()
        .map(|(id, s)| ServiceInfo {
            spec: ServiceSpec::from_config(&s.config),
            stats: StatsInfo::from_stats(&s.stats),
            dests: engine.dests_of(id).map(|(_, d)| dest_info(d)).collect(),
        })
        .collect();
    Table { conn_tab_size, services, stats: StatsInfo::from_stats(engine.stats()) }
}

/// The connection table of a running engine, as `-Lnc` shows it.
pub fn conns_of(engine: &Engine, now: Instant) -> Vec<ConnInfo> {
    use rvs_core::conn::ConnFlags;
    let table = engine.conns();
    table
        .iter()
        .map(|(id, c)| {
            let fam = if c.flags.has(ConnFlags::V6) { Family::V6 } else { Family::V4 };
            let dfam = if c.flags.has(ConnFlags::DEST_V6) { Family::V6 } else { Family::V4 };
            let fwmark = c.flags.has(ConnFlags::FWMARK);
            let protocol = match Protocol::from_number(c.protocol) {
                Some(p) => p.name().to_string(),
                None => "IP".to_string(),
            };
            let state = match c.protocol {
                6 => TcpState::from_index(c.state).name(),
                132 => SctpState::from_index(c.state).name(),
                17 => "UDP",
                _ => "NONE",
            };
            let vaddr: IpAddr = if fwmark { c.vaddr.to_ip(Family::V4) } else { c.vaddr.to_ip(fam) };
            ConnInfo {
                protocol,
                expires: table.remaining_ms(id, now.as_millis()) / 1000,
                state: state.into(),
                caddr: c.caddr.to_ip(fam),
                cport: c.cport,
                vaddr,
                vport: c.vport,
                daddr: c.daddr.to_ip(dfam),
                dport: c.dport,
                template: c.is_template(),
                pe_name: None,
                pe_data: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Command, Request, Response};

    #[test]
    fn specs_round_trip_through_core_and_json() {
        let spec = ServiceSpec {
            id: ServiceId::Addr { protocol: Proto::Udp, addr: "198.18.0.10".parse().unwrap(), port: 53 },
            scheduler: "sh".into(),
            sched_flags: vec!["sh-fallback".into(), "sh-port".into()],
            persistence: Some(PersistenceSpec {
                timeout: 300,
                netmask: NetmaskSpec::V4("255.255.255.0".parse().unwrap()),
            }),
            one_packet: true,
            pe: None,
        };
        let cfg = spec.to_config().unwrap();
        assert_eq!(ServiceSpec::from_config(&cfg), spec);
        let req = Request::Apply { commands: vec![Command::AddService(spec.clone())] };
        let json = serde_json::to_string(&req).unwrap();
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), req);

        let d = DestSpec {
            addr: "198.18.1.1".parse().unwrap(),
            port: 53,
            method: MethodSpec::Tunnel { tun_type: "gue".into(), tun_port: 6080, tun_csum: "csum".into() },
            weight: 3,
            u_threshold: 0,
            l_threshold: 0,
        };
        assert_eq!(DestSpec::from_config(&d.to_config().unwrap()), d);
    }

    #[test]
    fn invalid_specs_are_errors_with_ipvsadm_meaning() {
        let mut spec = ServiceSpec {
            id: ServiceId::Addr { protocol: Proto::Tcp, addr: "198.18.0.10".parse().unwrap(), port: 0 },
            scheduler: "wlc".into(),
            sched_flags: vec![],
            persistence: None,
            one_packet: false,
            pe: None,
        };
        assert_eq!(spec.to_config().unwrap_err().message, "Zero port specified for non-persistent service");
        spec.scheduler = "nope".into();
        assert_eq!(spec.to_config().unwrap_err().kind, "no_scheduler");
        let bad: Result<Response, _> = serde_json::from_str("{\"response\":\"bogus\"}");
        assert!(bad.is_err());
    }
}
