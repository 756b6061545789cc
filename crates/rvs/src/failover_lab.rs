//! A lab with two directors for failover tests: the same services on both, a floating next
//! hop (198.18.2.10 / fd00:0:0:2::10) that the router sends the VIP to and that the VRRP master
//! holds, and (NAT) the real servers' gateway 198.18.3.1 / fd00:0:0:3::1 floating too. The
//! caller adds the `[[vrrp]]` (and `[conn_sync]`) tables per director, and may run rvsd or
//! keepalived on each director, kill them, cut their links and bring them back, and measure
//! what a client sees of the takeover ([`probe`], [`FailoverLab::takeover`]).

pub mod probe;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rvs_api::client::Client;
use rvs_api::{Request, Response};
use rvs_lab::{DirectorMode, HttpServerChoice, Lab, LabDescription, Method, Segment, TopologySpec};

use crate::lab::{rvsd_config_for, sibling_binary};
use probe::{ConnectionCounts, ProbeOutcome, Prober, ShortConnections};

/// The floating next hop of the VIP on the LAN.
pub const FLOAT_V4: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 10);
/// Its IPv6 twin.
pub const FLOAT_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 2, 0, 0, 0, 0x10);

/// What runs on a director.
#[derive(Debug)]
enum Daemon {
    Rvsd(Child),
    Keepalived(Child, PathBuf),
}

/// How the master is failed in [`FailoverLab::takeover`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// kill -9 of its daemons and its links cut: a dead box.
    KillAndCut,
    /// SIGTERM: a clean stop (the master resigns with priority 0).
    Terminate,
}

/// What a client saw of a takeover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Takeover {
    /// UDP probes.
    pub probes: ProbeOutcome,
    /// Short TCP connections.
    pub connections: ConnectionCounts,
}

/// Two directors, each running rvsd, keepalived, or both (keepalived for VRRP, rvsd without
/// `[[vrrp]]` as the data plane).
pub struct FailoverLab {
    lab: Option<Lab>,
    daemons: [Vec<Daemon>; 2],
    method: Method,
    /// keepalived starts so far: each start gets its own pid files (a killed one leaves its
    /// files, and keepalived refuses to start over them).
    keepalived_starts: u32,
    /// Real-server namespaces set up for TUN (decapsulator running), torn down on stop.
    tun_real_servers: Vec<String>,
}

impl FailoverLab {
    /// Builds the lab for `method`: two directors, floating next hop, nothing started yet.
    pub fn up(method: Method) -> Result<FailoverLab> {
        let mut spec = TopologySpec::new(method);
        spec.directors = 2;
        spec.director_mode = DirectorMode::External;
        spec.http_server = HttpServerChoice::Auto;
        let lab = Lab::up(&spec).context("building the lab")?;
        let mut me = FailoverLab {
            lab: Some(lab),
            daemons: [Vec::new(), Vec::new()],
            method,
            keepalived_starts: 0,
            tun_real_servers: Vec::new(),
        };
        let d = me.description().clone();
        let router = d.router.netns.as_str();
        me.ip(router, &["route", "replace", &format!("{}/32", d.vip.v4), "via", &FLOAT_V4.to_string()])?;
        me.ip(router, &["-6", "route", "replace", &format!("{}/128", d.vip.v6), "via", &FLOAT_V6.to_string()])?;
        if let Some(gw) = d.nat_gateway {
            // The lab put the NAT gateway on dir1; from now on VRRP places it.
            let dir1 = d.directors.first().context("no director")?;
            let dev = dir1.interface(Segment::Private).context("no private interface")?.name.clone();
            me.ip(&dir1.netns, &["addr", "del", &format!("{}/24", gw.v4), "dev", &dev])?;
            me.ip(&dir1.netns, &["addr", "del", &format!("{}/64", gw.v6), "dev", &dev])?;
        }
        if method == Method::Tun {
            // The real servers decapsulate with rvs's own decapsulator (no ipip module here).
            let rvs = sibling_binary("rvs")?;
            for rs in &d.real_servers {
                let (v4, v6) = (d.vip.v4.to_string(), d.vip.v6.to_string());
                let args = ["realserver", "setup", "--method", "tun", "--netns", &rs.netns, "--vip", &v4, "--vip", &v6];
                let out = Command::new(&rvs).args(args).output().context("running rvs realserver setup")?;
                if !out.status.success() {
                    bail!("rvs realserver setup in {}: {}", rs.netns, String::from_utf8_lossy(&out.stderr));
                }
                me.tun_real_servers.push(rs.netns.clone());
            }
        }
        Ok(me)
    }

    fn ip(&self, netns: &str, args: &[&str]) -> Result<()> {
        let out = Command::new("ip").args(["-n", netns]).args(args).output().context("running ip")?;
        if !out.status.success() {
            bail!("ip -n {netns} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    }

    /// What was built.
    pub fn description(&self) -> &LabDescription {
        self.lab.as_ref().map(Lab::description).expect("lab is up while the run lives")
    }

    /// The namespace of director `i` (0 or 1).
    pub fn netns(&self, i: usize) -> String {
        self.description().directors.get(i).map(|n| n.netns.clone()).unwrap_or_default()
    }

    /// The interface of director `i` on `segment`.
    pub fn interface(&self, i: usize, segment: Segment) -> String {
        self.description()
            .directors
            .get(i)
            .and_then(|n| n.interface(segment))
            .map(|x| x.name.clone())
            .unwrap_or_default()
    }

    /// The floating addresses for director `i`'s VRRP instance: the next hop on the LAN and
    /// (NAT) the real servers' gateway on the private interface, as `virtual_addresses`
    /// entries. `ipv6` selects the family.
    pub fn virtual_addresses(&self, i: usize, ipv6: bool) -> Vec<String> {
        let mut out = vec![if ipv6 { format!("{FLOAT_V6}/64") } else { format!("{FLOAT_V4}/24") }];
        if let Some(gw) = self.description().nat_gateway {
            let dev = self.interface(i, Segment::Private);
            out.push(if ipv6 { format!("{}/64 dev {dev}", gw.v6) } else { format!("{}/24 dev {dev}", gw.v4) });
        }
        out
    }

    fn work(&self, name: &str) -> PathBuf {
        self.description().work_dir.join(name)
    }

    /// The admin socket of director `i`'s rvsd.
    pub fn socket(&self, i: usize) -> PathBuf {
        self.work(&format!("rvsd{i}.sock"))
    }

    /// Starts rvsd on director `i` with the lab's services plus `extra` (its `[[vrrp]]`
    /// tables), and waits until it answers.
    pub fn start_rvsd(&mut self, i: usize, scheduler: &str, extra: &str) -> Result<()> {
        let rvsd = sibling_binary("rvsd")?;
        let socket = self.socket(i);
        let config = self.work(&format!("rvsd{i}.toml"));
        let services = crate::lab::default_services(self.description(), scheduler)?;
        let text = format!("{}\n{extra}", rvsd_config_for(self.description(), i, &socket, &services)?);
        std::fs::write(&config, text).context("writing the rvsd configuration")?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.work(&format!("rvsd{i}.log")))?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns(i)])
            .arg(&rvsd)
            .args(["--foreground", "--config"])
            .arg(&config)
            .arg("--socket")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting rvsd")?;
        if let Some(slot) = self.daemons.get_mut(i) {
            slot.push(Daemon::Rvsd(child));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(Daemon::Rvsd(c)) = self.daemons.get_mut(i).and_then(|d| d.last_mut())
                && let Some(status) = c.try_wait()?
            {
                bail!("rvsd {i} exited at start ({status}); log: {}", self.log(i));
            }
            if self.status(i).is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        bail!("rvsd {i} did not answer within 10 s; log: {}", self.log(i))
    }

    /// Rewrites director `i`'s rvsd configuration (the lab's services plus `extra`) and has it
    /// reload (as SIGHUP does).
    pub fn reload_rvsd(&self, i: usize, scheduler: &str, extra: &str) -> Result<()> {
        let config = self.work(&format!("rvsd{i}.toml"));
        let services = crate::lab::default_services(self.description(), scheduler)?;
        let text = format!("{}\n{extra}", rvsd_config_for(self.description(), i, &self.socket(i), &services)?);
        std::fs::write(&config, text).context("writing the rvsd configuration")?;
        match self.call(i, &Request::Reload)? {
            Response::Applied => Ok(()),
            other => bail!("reload of rvsd {i} refused: {other:?}"),
        }
    }

    /// Starts keepalived (VRRP only, own pid files, foreground, logging to the console) on
    /// director `i` with `config` (a keepalived.conf text).
    pub fn start_keepalived(&mut self, i: usize, config: &str) -> Result<()> {
        let conf = self.work(&format!("keepalived{i}.conf"));
        std::fs::write(&conf, config)?;
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.work(&format!("keepalived{i}.log")))?;
        self.keepalived_starts += 1;
        let start = self.keepalived_starts;
        let pid = |n: &str| self.work(&format!("keepalived{i}.{start}.{n}.pid"));
        let vrrp_pid = pid("vrrp");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.netns(i), "keepalived", "-n", "-l", "-D", "--vrrp", "-f"])
            .arg(&conf)
            .arg("-p")
            .arg(pid("main"))
            .arg("-r")
            .arg(pid("vrrp"))
            .arg("-c")
            .arg(pid("checkers"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting keepalived (install it: scripts/install-deps.sh)")?;
        if let Some(slot) = self.daemons.get_mut(i) {
            slot.push(Daemon::Keepalived(child, vrrp_pid));
        }
        Ok(())
    }

    /// The log of director `i`'s daemon(s).
    pub fn log(&self, i: usize) -> String {
        let mut s = std::fs::read_to_string(self.work(&format!("rvsd{i}.log"))).unwrap_or_default();
        s.push_str(&std::fs::read_to_string(self.work(&format!("keepalived{i}.log"))).unwrap_or_default());
        s
    }

    /// Sends a request to director `i`'s rvsd.
    pub fn call(&self, i: usize, req: &Request) -> Result<Response> {
        let mut c = Client::connect(self.socket(i))?;
        Ok(c.call(req)?)
    }

    /// The `Status` counters of director `i`'s rvsd, if it answers.
    pub fn status(&self, i: usize) -> Option<std::collections::BTreeMap<String, u64>> {
        match self.call(i, &Request::Status) {
            Ok(Response::Status(s)) => Some(s.counters),
            _ => None,
        }
    }

    /// Whether director `i` holds `addr` on one of its interfaces.
    pub fn holds(&self, i: usize, addr: IpAddr) -> bool {
        let out = Command::new("ip").args(["-n", &self.netns(i), "-o", "addr", "show"]).output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).contains(&format!(" {addr}/"))).unwrap_or(false)
    }

    /// Which directors hold `addr`.
    pub fn holders(&self, addr: IpAddr) -> Vec<usize> {
        (0..2).filter(|i| self.holds(*i, addr)).collect()
    }

    /// Waits up to `timeout` until exactly director `i` holds `addr`.
    pub fn wait_holder(&self, i: usize, addr: IpAddr, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.holders(addr) == [i] {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    fn pids(&self, i: usize) -> Vec<u32> {
        let mut pids = Vec::new();
        for d in self.daemons.get(i).into_iter().flatten() {
            match d {
                Daemon::Rvsd(c) => pids.push(c.id()),
                Daemon::Keepalived(c, vrrp_pid) => {
                    // keepalived forks a VRRP child: kill -9 of the parent alone is not a crash.
                    pids.push(c.id());
                    let vrrp = std::fs::read_to_string(vrrp_pid).unwrap_or_default();
                    pids.extend(vrrp.trim().parse::<u32>().ok());
                }
            }
        }
        pids
    }

    /// Sends `signal` (`-KILL`, `-TERM`) to every daemon on director `i` (the last started
    /// first) and reaps them.
    pub fn signal(&mut self, i: usize, signal: &str) {
        let pids = self.pids(i);
        for p in pids.iter().rev() {
            let _ = Command::new("kill").arg(signal).arg(p.to_string()).status();
        }
        let daemons = self.daemons.get_mut(i).map(std::mem::take).unwrap_or_default();
        for d in daemons {
            let mut c = match d {
                Daemon::Rvsd(c) | Daemon::Keepalived(c, _) => c,
            };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && c.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Fails director `i` (the master) while the client probes the VIP (see [`probe`]): probes
    /// for 300 ms, fails it, and probes for `observe` more.
    pub fn takeover(&mut self, i: usize, failure: Failure, observe: Duration) -> Result<Takeover> {
        let d = self.description().clone();
        let vip = IpAddr::V4(d.vip.v4);
        let prober = Prober::start(&d.client.netns, SocketAddr::new(vip, d.udp_port));
        let short = ShortConnections::start(&d.client.netns, SocketAddr::new(vip, d.http_port));
        std::thread::sleep(Duration::from_millis(300));
        let t0 = Instant::now();
        match failure {
            Failure::KillAndCut => {
                // A dead box: its links go first, so nothing it does while dying gets out (a
                // killed keepalived's VRRP child gets SIGTERM from its parent's death and
                // would resign cleanly with priority 0), then its daemons are killed (a
                // killed process alone leaves the address answering ARP).
                self.set_links(i, false)?;
                self.signal(i, "-KILL");
            }
            Failure::Terminate => self.signal(i, "-TERM"),
        }
        std::thread::sleep(observe);
        let probes = prober.finish(t0)?;
        let connections = short.finish()?;
        Ok(Takeover { probes, connections })
    }

    /// A `[[vrrp]]` table for rvsd on director `i`: VRRPv3 instance "lan", vrid 51, the
    /// floating addresses of both families, `priority`, adverts every `advert` seconds,
    /// preemption, gratuitous ARPs at once.
    pub fn rvs_vrrp(&self, i: usize, priority: u8, advert: &str) -> String {
        let vips: Vec<String> =
            [false, true].iter().flat_map(|v6| self.virtual_addresses(i, *v6)).map(|a| format!("\"{a}\"")).collect();
        format!(
            "[[vrrp]]\nname = \"lan\"\ninterface = \"{}\"\nvrid = 51\npriority = {priority}\nversion = 3\n\
             advert_interval = {advert}\npreempt = true\nvirtual_addresses = [{}]\n\
             [vrrp.garp]\ndelay = 0\nrepeat = 3\n",
            self.interface(i, Segment::Lan),
            vips.join(", "),
        )
    }

    /// A keepalived.conf for director `i`: the same VRRPv3 instance for the IPv4 next hop,
    /// state BACKUP (preempting), `priority`, adverts every `advert` seconds, no gratuitous
    /// ARP delay.
    pub fn keepalived_vrrp(&self, i: usize, priority: u8, advert: &str) -> String {
        format!(
            "global_defs {{\n    router_id ka{i}\n    vrrp_garp_master_delay 0\n}}\n\
             vrrp_instance lan {{\n    state BACKUP\n    interface {}\n    virtual_router_id 51\n    \
             priority {priority}\n    advert_int {advert}\n    version 3\n    \
             virtual_ipaddress {{\n        {FLOAT_V4}/24\n    }}\n}}\n",
            self.interface(i, Segment::Lan)
        )
    }

    /// Sets director `i`'s LAN (and private) links up or down: a dead box. Taking a link down
    /// makes the kernel drop the routes through it; they are saved first and put back when
    /// the links come up (as a rebooted box would configure them again).
    pub fn set_links(&self, i: usize, up: bool) -> Result<()> {
        let netns = self.netns(i);
        let saved = self.work(&format!("routes{i}.txt"));
        if !up {
            let mut lines = String::new();
            for family in ["-4", "-6"] {
                let out = Command::new("ip").args(["-n", &netns, family, "route", "show"]).output()?;
                for l in String::from_utf8_lossy(&out.stdout).lines() {
                    lines.push_str(&format!("{family} {l}\n"));
                }
            }
            std::fs::write(&saved, lines)?;
        }
        let state = if up { "up" } else { "down" };
        for seg in [Segment::Lan, Segment::Private] {
            let dev = self.interface(i, seg);
            if !dev.is_empty() {
                self.ip(&netns, &["link", "set", &dev, state])?;
            }
        }
        if up {
            for l in std::fs::read_to_string(&saved).unwrap_or_default().lines() {
                let mut words: Vec<&str> = l.split_whitespace().collect();
                let Some(family) = (!words.is_empty()).then(|| words.remove(0)) else { continue };
                // Routes the kernel restores by itself fail here harmlessly.
                let _ = Command::new("ip")
                    .args(["-n", &netns, family, "route", "replace"])
                    .args(words.iter().filter(|w| **w != "linkdown"))
                    .output();
            }
        }
        Ok(())
    }

    /// Removes the floating addresses a crashed director left behind (what a reboot does).
    pub fn forget_floating(&self, i: usize) {
        for seg in [Segment::Lan, Segment::Private] {
            let dev = self.interface(i, seg);
            if dev.is_empty() {
                continue;
            }
            let mut addrs = vec![format!("{FLOAT_V4}/24"), format!("{FLOAT_V6}/64")];
            if let Some(gw) = self.description().nat_gateway {
                addrs.push(format!("{}/24", gw.v4));
                addrs.push(format!("{}/64", gw.v6));
            }
            for a in addrs {
                let _ = self.ip(&self.netns(i), &["addr", "del", &a, "dev", &dev]);
            }
        }
    }

    /// The forwarding method.
    pub fn method(&self) -> Method {
        self.method
    }

    fn shutdown(&mut self) -> Result<()> {
        for i in 0..2 {
            self.signal(i, "-TERM");
        }
        if !self.tun_real_servers.is_empty()
            && let Ok(rvs) = sibling_binary("rvs")
        {
            for ns in self.tun_real_servers.drain(..) {
                let _ = Command::new(&rvs).args(["realserver", "teardown", "--netns", &ns]).output();
            }
        }
        if let Some(lab) = self.lab.take() {
            lab.down().context("tearing the lab down")?;
        }
        Ok(())
    }

    /// Stops everything and removes the lab.
    pub fn stop(mut self) -> Result<()> {
        self.shutdown()
    }
}

impl Drop for FailoverLab {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            eprintln!("failover lab: teardown: {e:#}");
        }
    }
}
