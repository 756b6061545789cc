//! The policy of one service: turns the health of its real servers into the admin commands an
//! operator expects, as `rvs_api::Command`s the daemon applies as one transaction, plus notify
//! commands to run. Pure: no I/O, time passed in.
//!
//! The policy keeps the table it believes is installed and, after each event, computes the
//! desired table and emits the difference (AddDest / EditDest / DeleteDest):
//! - a healthy real server has its configured weight (or the dynamic weight a check asked for);
//! - an unhealthy one is quiesced (weight 0, existing connections finish) or removed;
//! - quorum: the total weight of healthy real servers. It is lost when that falls below
//!   `quorum - hysteresis` and regained at `quorum + hysteresis` or more (keepalived). While it
//!   is lost the sorry server is in the table and the real servers are taken out as if down,
//!   so every new connection goes to the sorry server; when regained, the sorry server leaves.
//!   With the defaults (quorum 1, hysteresis 0) the sorry server is there exactly while no real
//!   server is healthy.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rvs_api::{Command, DestSpec, MethodSpec, ServiceId};

use crate::check::external::run_command;
use crate::check::service_text;
use crate::config::{ConfigError, OnDown, PolicyConfig, SorryMethod, secs};
use crate::{HealthEvent, HealthEventKind};

/// A notify command to run (the daemon runs it off its main path, e.g. with [`Self::spawn`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyInvocation {
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Kill it after this long.
    pub timeout: Duration,
}

impl NotifyInvocation {
    /// Runs it on its own thread (killed at the timeout, output discarded).
    pub fn spawn(self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new().name("rvs-health-notify".into()).spawn(move || {
            let argv: Vec<String> = self.env_prefixed();
            let _ = run_command(&argv, std::time::Instant::now() + self.timeout, 4096);
        })
    }

    /// The command line with the environment passed through `env(1)`.
    fn env_prefixed(&self) -> Vec<String> {
        if self.env.is_empty() {
            return self.argv.clone();
        }
        let mut argv = vec!["env".to_string()];
        argv.extend(self.env.iter().map(|(k, v)| format!("{k}={v}")));
        argv.extend(self.argv.iter().cloned());
        argv
    }
}

/// What the daemon should do after an event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PolicyOutput {
    /// Commands, to be applied as one transaction (empty: nothing to change).
    pub commands: Vec<Command>,
    /// Notify commands to run.
    pub notify: Vec<NotifyInvocation>,
}

#[derive(Debug, Clone)]
struct Real {
    spec: DestSpec,
    healthy: bool,
    dynamic_weight: Option<u32>,
}

impl Real {
    fn weight(&self) -> u32 {
        self.dynamic_weight.unwrap_or(self.spec.weight)
    }
}

/// The policy of one service.
#[derive(Debug, Clone)]
pub struct Policy {
    service: ServiceId,
    config: PolicyConfig,
    notify_timeout: Duration,
    reals: Vec<Real>,
    sorry: Option<DestSpec>,
    quorum: bool,
    /// What the table holds, as far as the policy knows: (addr, port) → dest.
    installed: BTreeMap<(IpAddr, u16), DestSpec>,
}

fn sorry_method(m: SorryMethod) -> MethodSpec {
    match m {
        SorryMethod::Masq => MethodSpec::Masq,
        SorryMethod::Route => MethodSpec::Route,
        SorryMethod::Local => MethodSpec::Local,
        SorryMethod::Tunnel => MethodSpec::Tunnel { tun_type: "ipip".into(), tun_port: 0, tun_csum: "nocsum".into() },
    }
}

impl Policy {
    /// A policy for `service` with its configured real servers. `initially_up` is the health
    /// the monitor starts with (see `Timing::start`). The table is assumed to hold exactly the
    /// configured real servers with their configured weights; call [`Self::sync`] to converge.
    pub fn new(
        service: ServiceId,
        config: PolicyConfig,
        reals: Vec<DestSpec>,
        initially_up: bool,
    ) -> Result<Policy, ConfigError> {
        let notify_timeout = match &config.notify {
            Some(n) => secs("notify.timeout", n.timeout)?,
            None => Duration::from_secs(10),
        };
        let sorry = config.sorry_server.as_ref().map(|s| DestSpec {
            addr: s.addr,
            port: s.port.unwrap_or(match service {
                ServiceId::Addr { port, .. } => port,
                ServiceId::Fwmark { .. } => 0,
            }),
            method: sorry_method(s.method),
            weight: s.weight,
            u_threshold: 0,
            l_threshold: 0,
        });
        let installed = reals.iter().map(|d| ((d.addr, d.port), d.clone())).collect();
        let reals: Vec<Real> =
            reals.into_iter().map(|spec| Real { spec, healthy: initially_up, dynamic_weight: None }).collect();
        let mut policy = Policy { service, config, notify_timeout, reals, sorry, quorum: true, installed };
        policy.quorum = policy.live_weight() >= policy.config.quorum;
        Ok(policy)
    }

    /// Tells the policy what the table holds now (replacing its assumption).
    pub fn set_installed(&mut self, dests: impl IntoIterator<Item = DestSpec>) {
        self.installed = dests.into_iter().map(|d| ((d.addr, d.port), d)).collect();
    }

    /// Commands that bring the table to the desired state now (e.g. at start-up).
    pub fn sync(&mut self) -> Vec<Command> {
        self.converge()
    }

    /// Whether the service has quorum.
    pub fn has_quorum(&self) -> bool {
        self.quorum
    }

    /// The table the policy wants, in configuration order (sorry server last).
    pub fn desired(&self) -> Vec<DestSpec> {
        let mut out = Vec::new();
        for r in &self.reals {
            if self.quorum && r.healthy {
                out.push(DestSpec { weight: r.weight(), ..r.spec.clone() });
            } else if self.config.on_down == OnDown::Quiesce {
                out.push(DestSpec { weight: 0, ..r.spec.clone() });
            }
        }
        if !self.quorum
            && let Some(s) = &self.sorry
        {
            out.push(s.clone());
        }
        out
    }

    fn live_weight(&self) -> u32 {
        self.reals.iter().filter(|r| r.healthy).fold(0u32, |acc, r| acc.saturating_add(r.weight()))
    }

    /// Applies a health event (`unix_time` is put in notify arguments).
    pub fn apply(&mut self, event: &HealthEvent, unix_time: u64) -> PolicyOutput {
        let mut out = PolicyOutput::default();
        if event.service != self.service {
            return out;
        }
        let Some(real) = self.reals.iter_mut().find(|r| SocketAddr::new(r.spec.addr, r.spec.port) == event.real) else {
            return out;
        };
        let changed_health = match event.kind {
            HealthEventKind::Up => !std::mem::replace(&mut real.healthy, true),
            HealthEventKind::Down => {
                real.dynamic_weight = None;
                std::mem::replace(&mut real.healthy, false)
            }
            HealthEventKind::Weight(w) => {
                real.dynamic_weight = Some(w);
                false
            }
        };
        if changed_health {
            out.notify.extend(self.real_notify(event, unix_time));
        }
        let live = self.live_weight();
        let (q, h) = (self.config.quorum, self.config.hysteresis);
        if self.quorum && live < q.saturating_sub(h) {
            self.quorum = false;
            out.notify.extend(self.quorum_notify(false, unix_time));
        } else if !self.quorum && live >= q.saturating_add(h) {
            self.quorum = true;
            out.notify.extend(self.quorum_notify(true, unix_time));
        }
        out.commands = self.converge();
        out
    }

    fn group(&self) -> String {
        self.config.notify.as_ref().and_then(|n| n.group.clone()).unwrap_or_else(|| service_text(&self.service))
    }

    /// mon-style alert: `program [args] -s SERVICE -g GROUP -h RIP:RPORT -t UNIXTIME [-u]`.
    fn real_notify(&self, event: &HealthEvent, unix_time: u64) -> Option<NotifyInvocation> {
        let n = self.config.notify.as_ref()?;
        let program = n.program.clone()?;
        let up = event.kind == HealthEventKind::Up;
        let mut argv = vec![program];
        argv.extend(n.args.iter().cloned());
        argv.extend([
            "-s".into(),
            service_text(&self.service),
            "-g".into(),
            self.group(),
            "-h".into(),
            event.real.to_string(),
            "-t".into(),
            unix_time.to_string(),
        ]);
        if up {
            argv.push("-u".into());
        }
        let env = vec![
            ("RVS_EVENT".into(), if up { "up" } else { "down" }.into()),
            ("RVS_SERVICE".into(), service_text(&self.service)),
            ("RVS_REAL".into(), event.real.to_string()),
            ("RVS_REASON".into(), event.reason.clone()),
        ];
        Some(NotifyInvocation { argv, env, timeout: self.notify_timeout })
    }

    /// Quorum command: the configured argv followed by `-s SERVICE -g GROUP -t UNIXTIME [-u]`.
    fn quorum_notify(&self, up: bool, unix_time: u64) -> Option<NotifyInvocation> {
        let n = self.config.notify.as_ref()?;
        let base = if up { n.quorum_up.as_ref()? } else { n.quorum_down.as_ref()? };
        if base.is_empty() {
            return None;
        }
        let mut argv = base.clone();
        argv.extend([
            "-s".into(),
            service_text(&self.service),
            "-g".into(),
            self.group(),
            "-t".into(),
            unix_time.to_string(),
        ]);
        if up {
            argv.push("-u".into());
        }
        let env = vec![
            ("RVS_EVENT".into(), if up { "quorum_up" } else { "quorum_down" }.into()),
            ("RVS_SERVICE".into(), service_text(&self.service)),
        ];
        Some(NotifyInvocation { argv, env, timeout: self.notify_timeout })
    }

    /// Diffs the desired table against the installed one; updates `installed`.
    fn converge(&mut self) -> Vec<Command> {
        let desired = self.desired();
        let mut adds = Vec::new();
        let mut edits = Vec::new();
        let mut deletes = Vec::new();
        for d in &desired {
            match self.installed.get(&(d.addr, d.port)) {
                None => adds.push(Command::AddDest { service: self.service, dest: d.clone() }),
                Some(cur) if cur != d => edits.push(Command::EditDest { service: self.service, dest: d.clone() }),
                Some(_) => {}
            }
        }
        let managed = |addr: IpAddr, port: u16| {
            self.reals.iter().any(|r| r.spec.addr == addr && r.spec.port == port)
                || self.sorry.as_ref().is_some_and(|s| s.addr == addr && s.port == port)
        };
        for &(addr, port) in self.installed.keys() {
            if managed(addr, port) && !desired.iter().any(|d| d.addr == addr && d.port == port) {
                deletes.push(Command::DeleteDest { service: self.service, addr, port });
            }
        }
        self.installed.retain(|(a, p), _| !managed(*a, *p));
        self.installed.extend(desired.into_iter().map(|d| ((d.addr, d.port), d)));
        adds.extend(edits);
        adds.extend(deletes);
        adds
    }
}
