//! All-or-nothing application of a list of admin commands.
//!
//! The running table must never be half-changed, and the engine cannot be copied (it holds
//! the connection table), so a transaction is checked before anything is touched: every
//! command is validated, in order, against a [`Model`] of the current state (services with
//! the identities of their real servers, running sync daemons) and the model is advanced as
//! if the command had run. The model makes exactly the engine's refusals (service exists, no
//! such service, destination exists with the effective port, no such destination, invalid
//! specs via `rvs-core` validation, timeouts out of range) plus the daemon's own (sync daemon
//! already running / not running). Only when the whole list passes is it applied, under the
//! same engine lock, so nothing can change in between. A refusal carries the index of the
//! failing command and leaves everything untouched.
//!
//! Applying a checked command cannot fail unless the model and the engine disagree, which
//! would be a bug; it is then logged and answered as an `internal` error with its index.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use rvs_api::{ApiError, Command, ServiceId, SyncDaemonSpec, SyncRole};
use rvs_config::describe_service;
use rvs_core::conn::timeouts::MAX_SET_TIMEOUT_SECS;
use rvs_core::engine::Engine;
use rvs_core::{ConfigError, DestConfig, ForwardMethod, Instant, ServiceConfig, ServiceKey};
use tracing::{debug, error, info};

/// Longest sync message ipvsadm accepts.
const MAX_SYNC_MAXLEN: u16 = 65507;

/// One checked command, converted to the engine's types.
#[derive(Debug)]
enum Step {
    AddService(ServiceConfig),
    EditService(ServiceConfig),
    DeleteService(ServiceKey),
    Clear,
    AddDest(ServiceKey, DestConfig),
    EditDest(ServiceKey, DestConfig),
    DeleteDest(ServiceKey, IpAddr, u16),
    Zero(Option<ServiceKey>),
    SetTimeouts(u64, u64, u64),
    StartDaemon(SyncDaemonSpec),
    StopDaemon(SyncRole),
}

/// The state a transaction is checked against.
#[derive(Debug, Default)]
struct Model {
    /// Each service with the (address, stored port) of its real servers.
    services: HashMap<ServiceKey, Vec<(IpAddr, u16)>>,
    daemons: Vec<SyncRole>,
}

/// The port the engine stores for a real server: the virtual port for DR/TUN servers of an
/// address service (ipvsadm forces it), the given port otherwise.
fn effective_port(key: &ServiceKey, dest: &DestConfig) -> u16 {
    if !key.is_fwmark() && !matches!(dest.method, ForwardMethod::Masquerade) { key.port() } else { dest.port }
}

fn daemon_spec_error(d: &SyncDaemonSpec) -> Option<String> {
    if d.mcast_interface.is_empty() {
        Some("missing multicast interface".into())
    } else if !d.group.is_multicast() {
        Some(format!("invalid mcast-group `{}': not a multicast address", d.group))
    } else if d.maxlen == 0 || d.maxlen > MAX_SYNC_MAXLEN {
        Some(format!("invalid sync-maxlen {}: 1..{MAX_SYNC_MAXLEN}", d.maxlen))
    } else if d.port == 0 {
        Some("invalid mcast-port 0".into())
    } else if d.ttl == 0 {
        Some("invalid mcast-ttl 0".into())
    } else {
        None
    }
}

impl Model {
    fn of(engine: &Engine, daemons: &[SyncDaemonSpec]) -> Model {
        let services = engine
            .services()
            .map(|(id, s)| (s.config.key, engine.dests_of(id).map(|(_, d)| (d.config.addr, d.config.port)).collect()))
            .collect();
        Model { services, daemons: daemons.iter().map(|d| d.role).collect() }
    }

    fn dests_mut(&mut self, key: &ServiceKey) -> Result<&mut Vec<(IpAddr, u16)>, ApiError> {
        self.services.get_mut(key).ok_or_else(|| ConfigError::NoSuchService.into())
    }

    /// Checks `cmd` against the model and advances the model past it.
    fn check(&mut self, cmd: &Command, engine: &Engine) -> Result<Step, ApiError> {
        Ok(match cmd {
            Command::AddService(spec) => {
                let cfg = spec.to_config()?;
                if self.services.contains_key(&cfg.key) {
                    return Err(ConfigError::ServiceExists.into());
                }
                self.services.insert(cfg.key, Vec::new());
                Step::AddService(cfg)
            }
            Command::EditService(spec) => {
                let cfg = spec.to_config()?;
                self.dests_mut(&cfg.key)?;
                Step::EditService(cfg)
            }
            Command::DeleteService { id } => {
                let key = ServiceKey::from(*id);
                self.services.remove(&key).ok_or(ConfigError::NoSuchService)?;
                Step::DeleteService(key)
            }
            Command::Clear => {
                self.services.clear();
                Step::Clear
            }
            Command::AddDest { service, dest } => {
                let key = ServiceKey::from(*service);
                let dests = self.dests_mut(&key)?;
                let mut cfg = dest.to_config()?;
                cfg.validate(key.family())?;
                cfg.port = effective_port(&key, &cfg);
                if dests.contains(&(cfg.addr, cfg.port)) {
                    return Err(ConfigError::DestExists.into());
                }
                dests.push((cfg.addr, cfg.port));
                Step::AddDest(key, cfg)
            }
            Command::EditDest { service, dest } => {
                let key = ServiceKey::from(*service);
                let dests = self.dests_mut(&key)?;
                let mut cfg = dest.to_config()?;
                cfg.validate(key.family())?;
                cfg.port = effective_port(&key, &cfg);
                if !dests.contains(&(cfg.addr, cfg.port)) {
                    return Err(ConfigError::NoSuchDest.into());
                }
                Step::EditDest(key, cfg)
            }
            Command::DeleteDest { service, addr, port } => {
                let key = ServiceKey::from(*service);
                let dests = self.dests_mut(&key)?;
                // As the engine: the given port, or the virtual port DR/TUN servers are stored with.
                let pos = dests
                    .iter()
                    .position(|d| *d == (*addr, *port))
                    .or_else(|| dests.iter().position(|d| *d == (*addr, key.port())))
                    .ok_or(ConfigError::NoSuchDest)?;
                dests.remove(pos);
                Step::DeleteDest(key, *addr, *port)
            }
            Command::Zero { service } => {
                let key = service.map(ServiceKey::from);
                if let Some(k) = &key {
                    self.dests_mut(k)?;
                }
                Step::Zero(key)
            }
            Command::SetTimeouts { tcp, tcpfin, udp } => {
                for v in [*tcp, *tcpfin, *udp] {
                    if v > u64::from(MAX_SET_TIMEOUT_SECS) {
                        return Err(ConfigError::InvalidTimeout(v).into());
                    }
                }
                // The same check the engine makes, on a copy.
                engine.timeouts.clone().set(*tcp, *tcpfin, *udp)?;
                Step::SetTimeouts(*tcp, *tcpfin, *udp)
            }
            Command::StartDaemon(spec) => {
                if self.daemons.contains(&spec.role) {
                    return Err(ApiError::new("daemon_running", "Daemon has already run"));
                }
                if let Some(msg) = daemon_spec_error(spec) {
                    return Err(ApiError::new("invalid", msg));
                }
                self.daemons.push(spec.role);
                Step::StartDaemon(spec.clone())
            }
            Command::StopDaemon { role } => {
                let pos = self
                    .daemons
                    .iter()
                    .position(|r| r == role)
                    .ok_or_else(|| ApiError::new("no_daemon", "No daemon is running"))?;
                self.daemons.remove(pos);
                Step::StopDaemon(*role)
            }
        })
    }
}

fn with_index(mut e: ApiError, index: usize) -> ApiError {
    e.command_index = Some(index);
    e
}

fn name(key: &ServiceKey) -> String {
    describe_service(&ServiceId::from(*key))
}

fn role_name(role: SyncRole) -> &'static str {
    match role {
        SyncRole::Master => "master",
        SyncRole::Backup => "backup",
    }
}

/// Applies one checked step, logging the state change.
fn apply(engine: &mut Engine, daemons: &mut Vec<SyncDaemonSpec>, step: Step, now: Instant) -> Result<(), ConfigError> {
    match step {
        Step::AddService(cfg) => {
            let (service, scheduler) = (name(&cfg.key), cfg.scheduler.name());
            engine.add_service(cfg)?;
            info!(%service, scheduler, "service added");
        }
        Step::EditService(cfg) => {
            let (service, scheduler) = (name(&cfg.key), cfg.scheduler.name());
            engine.edit_service(cfg)?;
            info!(%service, scheduler, "service edited");
        }
        Step::DeleteService(key) => {
            engine.delete_service(&key)?;
            info!(service = %name(&key), "service removed");
        }
        Step::Clear => {
            engine.clear();
            info!("all services removed");
        }
        Step::AddDest(key, cfg) => {
            engine.add_dest(&key, cfg)?;
            info!(
                service = %name(&key),
                real = %SocketAddr::new(cfg.addr, cfg.port),
                method = cfg.method.list_name(),
                weight = cfg.weight,
                "real server added"
            );
        }
        Step::EditDest(key, cfg) => {
            engine.edit_dest(&key, cfg)?;
            info!(
                service = %name(&key),
                real = %SocketAddr::new(cfg.addr, cfg.port),
                method = cfg.method.list_name(),
                weight = cfg.weight,
                u_threshold = cfg.upper_threshold,
                l_threshold = cfg.lower_threshold,
                "real server edited"
            );
        }
        Step::DeleteDest(key, addr, port) => {
            engine.delete_dest(&key, addr, port)?;
            info!(service = %name(&key), real = %SocketAddr::new(addr, port), "real server removed");
        }
        Step::Zero(key) => {
            let id = match &key {
                Some(k) => Some(engine.find_service(k).ok_or(ConfigError::NoSuchService)?),
                None => None,
            };
            engine.zero_stats(id, now);
            debug!(service = ?key.as_ref().map(name), "counters zeroed");
        }
        Step::SetTimeouts(tcp, tcpfin, udp) => {
            engine.timeouts.set(tcp, tcpfin, udp)?;
            let (tcp, tcpfin, udp) = engine.timeouts.get();
            info!(tcp, tcpfin, udp, "timeouts set");
        }
        Step::StartDaemon(spec) => {
            info!(
                role = role_name(spec.role),
                interface = %spec.mcast_interface,
                syncid = spec.syncid,
                group = %spec.group,
                port = spec.port,
                "sync daemon configured (connection sync is not implemented yet)"
            );
            daemons.push(spec);
        }
        Step::StopDaemon(role) => {
            daemons.retain(|d| d.role != role);
            info!(role = role_name(role), "sync daemon stopped");
        }
    }
    Ok(())
}

/// Applies `commands` to `engine` and the sync-daemon registry as one transaction: all of
/// them, or (on the first refusal, reported with its index) none.
pub fn run(
    engine: &mut Engine,
    daemons: &mut Vec<SyncDaemonSpec>,
    commands: &[Command],
    now: Instant,
) -> Result<(), ApiError> {
    let mut model = Model::of(engine, daemons);
    let mut steps = Vec::with_capacity(commands.len());
    for (i, cmd) in commands.iter().enumerate() {
        steps.push(model.check(cmd, engine).map_err(|e| with_index(e, i))?);
    }
    for (i, step) in steps.into_iter().enumerate() {
        if let Err(e) = apply(engine, daemons, step, now) {
            error!(index = i, error = %e, "engine refused a checked command: the transaction is partly applied");
            return Err(with_index(ApiError::new("internal", format!("engine refused a checked command: {e}")), i));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_api::convert::table_of;
    use rvs_api::{DestSpec, MethodSpec, Proto, ServiceSpec};
    use rvs_core::SplitMix64;

    fn svc(port: u16) -> ServiceSpec {
        ServiceSpec {
            id: ServiceId::Addr { protocol: Proto::Tcp, addr: "198.18.100.1".parse().unwrap(), port },
            scheduler: "wlc".into(),
            sched_flags: vec![],
            persistence: None,
            one_packet: false,
            pe: None,
        }
    }

    /// What the engine alone answers for one command (the reference the model must match).
    fn direct(engine: &mut Engine, cmd: &Command) -> Result<(), ApiError> {
        match cmd {
            Command::AddService(s) => engine.add_service(s.to_config()?).map(drop)?,
            Command::EditService(s) => engine.edit_service(s.to_config()?).map(drop)?,
            Command::DeleteService { id } => engine.delete_service(&ServiceKey::from(*id))?,
            Command::AddDest { service, dest } => {
                engine.add_dest(&ServiceKey::from(*service), dest.to_config()?).map(drop)?
            }
            Command::EditDest { service, dest } => {
                engine.edit_dest(&ServiceKey::from(*service), dest.to_config()?).map(drop)?
            }
            Command::DeleteDest { service, addr, port } => {
                engine.delete_dest(&ServiceKey::from(*service), *addr, *port)?
            }
            other => panic!("not generated: {other:?}"),
        }
        Ok(())
    }

    #[test]
    fn the_model_refuses_exactly_what_the_engine_refuses() {
        // Random single commands over small pools, so that existing/missing services and
        // destinations, DR port forcing (8080 on a port-80 service) and invalid weights all
        // occur often. Each command runs as a one-command transaction on one engine and
        // directly on a twin: both must accept or refuse it alike, and end up listing alike.
        let mut a = Engine::new(1024, 1);
        let mut b = Engine::new(1024, 1);
        let mut daemons = Vec::new();
        let mut rng = SplitMix64::new(42);
        let mut pick = |n: u64| (rng.next_u64() % n) as usize;
        let ports = [80u16, 443];
        let addrs = ["198.18.2.1", "198.18.2.2", "198.18.2.3"];
        let (mut accepted, mut refused) = (0, 0);
        for _ in 0..2000 {
            let s = svc(ports[pick(2)]);
            let dest = DestSpec {
                addr: addrs[pick(3)].parse().unwrap(),
                port: [80u16, 8080][pick(2)],
                method: if pick(2) == 0 { MethodSpec::Route } else { MethodSpec::Masq },
                weight: [0u32, 1, 5, 70_000][pick(4)],
                u_threshold: 0,
                l_threshold: 0,
            };
            let cmd = match pick(6) {
                0 => Command::AddService(s),
                1 => Command::EditService(ServiceSpec { scheduler: ["rr", "wlc"][pick(2)].into(), ..s }),
                2 => Command::DeleteService { id: s.id },
                3 => Command::AddDest { service: s.id, dest },
                4 => Command::EditDest { service: s.id, dest },
                _ => Command::DeleteDest { service: s.id, addr: dest.addr, port: dest.port },
            };
            let via_model = run(&mut a, &mut daemons, std::slice::from_ref(&cmd), Instant::ZERO);
            let reference = direct(&mut b, &cmd);
            assert_eq!(
                via_model.as_ref().map_err(|e| e.message.clone()),
                reference.as_ref().map_err(|e| e.message.clone()),
                "{cmd:?}"
            );
            if via_model.is_ok() {
                accepted += 1
            } else {
                refused += 1
            }
            assert_eq!(table_of(&a, 0), table_of(&b, 0));
        }
        assert!(accepted > 200 && refused > 200, "both paths exercised: {accepted} / {refused}");
    }

    #[test]
    fn a_refused_transaction_leaves_the_engine_as_it_was() {
        let mut e = Engine::new(1024, 1);
        let mut daemons = Vec::new();
        let s = svc(80);
        let d = DestSpec {
            addr: "198.18.2.1".parse().unwrap(),
            port: 80,
            method: MethodSpec::Route,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
        };
        run(&mut e, &mut daemons, &[Command::AddService(s.clone())], Instant::ZERO).unwrap();
        let before = table_of(&e, 0);
        let timeouts = e.timeouts.clone();
        let cmds = vec![
            Command::AddDest { service: s.id, dest: d.clone() },
            Command::SetTimeouts { tcp: 5, tcpfin: 5, udp: 5 },
            Command::StartDaemon(SyncDaemonSpec {
                role: SyncRole::Master,
                mcast_interface: "eth0".into(),
                syncid: 0,
                maxlen: 1472,
                group: "224.0.0.81".parse().unwrap(),
                port: 8848,
                ttl: 1,
            }),
            // The same destination again: refused at index 3.
            Command::AddDest { service: s.id, dest: d },
        ];
        let err = run(&mut e, &mut daemons, &cmds, Instant::ZERO).unwrap_err();
        assert_eq!((err.kind.as_str(), err.command_index), ("dest_exists", Some(3)));
        assert_eq!(table_of(&e, 0), before);
        assert_eq!(e.timeouts, timeouts);
        assert!(daemons.is_empty());
    }
}
