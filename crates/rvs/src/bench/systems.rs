//! The systems under test and what each needs in the lab: the clusters (a kernel-forwarding
//! lab for the kernel, nftables and HAProxy rows; rvs labs for DR, NAT and TUN), the nftables
//! DNAT table, the HAProxy process, and child processes that are killed when dropped.

use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rvs_lab::{DirectorMode, HttpServerChoice, Lab, LabDescription, Method, Node, Segment, TopologySpec};

use super::{counters, stopped};
use crate::lab::LabRun;

/// A configuration measured by the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum System {
    /// The director routes with the kernel (no load balancing): the baseline.
    KernelForward,
    /// The kernel with an nftables DNAT rule spreading over the real servers (numgen).
    NftDnat,
    /// HAProxy in TCP mode, one process, one thread, in the director namespace.
    Haproxy,
    /// rvs, direct routing.
    RvsDr,
    /// rvs, NAT.
    RvsNat,
    /// rvs, IP-in-IP tunnelling.
    RvsTun,
    /// keepalived (VRRP) on two directors with 0.1 s adverts, rvsd as their data plane: the
    /// failover baseline.
    Keepalived,
    /// The same with keepalived's default 1 s adverts.
    Keepalived1s,
    /// rvsd's own VRRP on two directors, 10 ms adverts.
    RvsVrrp,
    /// keepalived's default TCP_CHECK timing, computed (not measured): the ejection baseline.
    KeepalivedDefaults,
    /// rvs active health checks, a TCP connect every 200 ms, fall 2.
    RvsActive,
    /// rvs passive health checking (NAT: RSTs to SYNs reported by the data path).
    RvsPassive,
}

impl System {
    /// Name in the table.
    pub fn label(self) -> &'static str {
        match self {
            System::KernelForward => "kernel forwarding",
            System::NftDnat => "nftables DNAT",
            System::Haproxy => "HAProxy (TCP mode)",
            System::RvsDr => "rvs DR",
            System::RvsNat => "rvs NAT",
            System::RvsTun => "rvs TUN",
            System::Keepalived => "keepalived, 0.1 s adverts",
            System::Keepalived1s => "keepalived, 1 s adverts",
            System::RvsVrrp => "rvs, 10 ms adverts",
            System::KeepalivedDefaults => "keepalived (computed)",
            System::RvsActive => "rvs active, 200 ms x 2",
            System::RvsPassive => "rvs passive, NAT",
        }
    }

    /// Name in the JSON output.
    pub fn key(self) -> &'static str {
        match self {
            System::KernelForward => "kernel_forward",
            System::NftDnat => "nft_dnat",
            System::Haproxy => "haproxy",
            System::RvsDr => "rvs_dr",
            System::RvsNat => "rvs_nat",
            System::RvsTun => "rvs_tun",
            System::Keepalived => "keepalived_advert_100ms",
            System::Keepalived1s => "keepalived_advert_1s",
            System::RvsVrrp => "rvs_advert_10ms",
            System::KeepalivedDefaults => "keepalived_defaults_computed",
            System::RvsActive => "rvs_active_200ms_fall2",
            System::RvsPassive => "rvs_passive_nat",
        }
    }
}

/// A lab the benchmark runs systems in.
pub enum Cluster {
    /// NAT-shaped topology (real servers behind the director) with kernel forwarding on.
    Kernel(Lab),
    /// rvsd directing the lab.
    Rvs(LabRun),
}

impl Cluster {
    /// The kernel-forwarding lab: the real servers sit on the private segment behind the
    /// director, so every packet to them crosses the director.
    pub fn kernel() -> Result<Cluster> {
        let mut spec = TopologySpec::new(Method::Nat);
        spec.director_mode = DirectorMode::KernelForward;
        spec.http_server = HttpServerChoice::Auto;
        Ok(Cluster::Kernel(Lab::up(&spec).context("building the kernel-forwarding lab")?))
    }

    /// A lab with rvsd directing `method` (round robin).
    pub fn rvs(method: Method) -> Result<Cluster> {
        Ok(Cluster::Rvs(LabRun::start(method, "rr")?))
    }

    /// What was built.
    pub fn description(&self) -> &LabDescription {
        match self {
            Cluster::Kernel(lab) => lab.description(),
            Cluster::Rvs(run) => run.description(),
        }
    }

    /// The rvsd process, if rvs directs this lab.
    pub fn rvsd_pid(&self) -> Option<u32> {
        let Cluster::Rvs(run) = self else { return None };
        let socket = run.socket().display().to_string();
        counters::find_processes(&["rvsd", &socket]).into_iter().find(|pid| {
            // `ip netns exec` execs rvsd in place; skip any wrapper that is not rvsd itself.
            std::fs::read_link(format!("/proc/{pid}/exe"))
                .map(|exe| exe.file_name().is_some_and(|n| n.to_string_lossy().starts_with("rvsd")))
                .unwrap_or(false)
        })
    }
}

/// The first director of a lab.
pub fn director(d: &LabDescription) -> Result<&Node> {
    d.directors.first().context("lab has no director")
}

/// The IPv4 address of real server `index` on its segment (private for NAT-shaped labs).
pub fn real_server_v4(d: &LabDescription, index: usize) -> Result<Ipv4Addr> {
    let seg = if d.spec.method == Method::Nat { Segment::Private } else { Segment::Lan };
    let rs = d.real_servers.get(index).context("no such real server")?;
    Ok(rs.interface(seg).context("real server without an interface on its segment")?.addr.v4)
}

/// Runs a command inside `netns`, failing with its stderr.
pub fn netns_run(netns: &str, program: &str, args: &[&str]) -> Result<String> {
    rvs_lab::netns::exec_ok(netns, program, args).with_context(|| format!("{program} {} in {netns}", args.join(" ")))
}

/// Runs a shell snippet inside `netns` (where `ip netns exec` mounted the namespace's /sys).
pub fn netns_sh(netns: &str, script: &str) -> Result<()> {
    let out = Command::new("ip").args(["netns", "exec", netns, "sh", "-c", script]).output().context("running sh")?;
    if !out.status.success() {
        bail!("`{script}` in {netns}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Children to signal when the user interrupts the benchmark.
static CHILDREN: Mutex<Vec<u32>> = Mutex::new(Vec::new());

/// Sends SIGTERM to every child process registered by a live [`Spawned`].
pub fn terminate_children() {
    let pids = CHILDREN.lock().map(|c| c.clone()).unwrap_or_default();
    for pid in pids {
        if let Ok(pid) = i32::try_from(pid) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGTERM);
        }
    }
}

/// A child process that is terminated (SIGTERM, then SIGKILL after 2 s) when dropped.
pub struct Spawned {
    child: Child,
    what: String,
}

impl Spawned {
    /// Starts `program args` inside `netns` (`ip netns exec` execs it in place, so the
    /// child's pid is the program's).
    /// With `capture`, its standard output and error are kept for [`Spawned::wait_output`];
    /// else they are discarded.
    pub fn start(netns: &str, what: &str, program: &str, args: &[&str], capture: bool) -> Result<Spawned> {
        let pipe = || if capture { Stdio::piped() } else { Stdio::null() };
        let child = Command::new("ip")
            .args(["netns", "exec", netns, program])
            .args(args)
            .stdin(Stdio::null())
            .stdout(pipe())
            .stderr(pipe())
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        if let Ok(mut c) = CHILDREN.lock() {
            c.push(child.id());
        }
        Ok(Spawned { child, what: what.to_owned() })
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the child to exit by itself, at most `limit` (then it is killed); returns
    /// its standard output and error.
    pub fn wait_output(mut self, limit: Duration) -> Result<(String, String)> {
        let deadline = Instant::now() + limit;
        loop {
            if self.child.try_wait()?.is_some() {
                break;
            }
            if Instant::now() > deadline {
                bail!("{} did not finish within {limit:?}", self.what);
            }
            if stopped() {
                bail!("interrupted");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut s) = self.child.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut s, &mut out);
        }
        if let Some(mut s) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut s, &mut err);
        }
        Ok((out, err))
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let pid = self.child.id();
        if matches!(self.child.try_wait(), Ok(None)) {
            if let Ok(p) = i32::try_from(pid) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), nix::sys::signal::Signal::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        if let Ok(mut c) = CHILDREN.lock() {
            c.retain(|p| *p != pid);
        }
    }
}

/// Name of the nftables table the benchmark adds to the director.
const NFT_TABLE: &str = "rvs_bench";

/// An nftables DNAT load balancer on the director of a kernel lab: new flows to the VIP (TCP
/// port 80, UDP port 53) go to the three real servers in turn (`numgen inc mod 3`);
/// conntrack translates the rest of each flow and the replies. Removed when dropped.
pub struct NftDnat {
    netns: String,
}

impl NftDnat {
    /// Installs the table (and a 1 s conntrack TIME_WAIT, else ~20k conn/s fill the table).
    pub fn install(d: &LabDescription) -> Result<NftDnat> {
        let netns = director(d)?.netns.clone();
        let servers: Vec<String> = (0..d.real_servers.len())
            .map(|i| real_server_v4(d, i).map(|a| format!("{i} : {a}")))
            .collect::<Result<_>>()?;
        let map = format!("numgen inc mod {} map {{ {} }}", servers.len(), servers.join(", "));
        let vip = d.vip.v4;
        let rules = format!(
            "table ip {NFT_TABLE} {{\n chain prerouting {{\n  type nat hook prerouting priority dstnat; policy accept;\n  \
             ip daddr {vip} tcp dport {http} dnat to {map}\n  ip daddr {vip} udp dport {udp} dnat to {map}\n }}\n}}\n",
            http = d.http_port,
            udp = d.udp_port,
        );
        let out = rvs_lab::cmd::run_raw(
            "ip",
            &["netns", "exec", &netns, "nft", "-f", "-"],
            Some(&rules),
            Duration::from_secs(10),
        )
        .context("running nft")?;
        if !out.status.success() {
            bail!("nft refused the DNAT table: {}", out.stderr.trim());
        }
        let table = NftDnat { netns };
        netns_sh(&table.netns, "echo 1 > /proc/sys/net/netfilter/nf_conntrack_tcp_timeout_time_wait")?;
        Ok(table)
    }
}

impl Drop for NftDnat {
    fn drop(&mut self) {
        let _ =
            rvs_lab::netns::exec(&self.netns, "nft", &["delete", "table", "ip", NFT_TABLE], Duration::from_secs(10));
    }
}

/// HAProxy in TCP mode on the director of a kernel lab, listening on the VIP (added to the
/// director's lo for the time it runs) and balancing round robin over the real servers. One
/// process, one thread, its own configuration and pid file in the lab's work directory.
pub struct Haproxy {
    process: Spawned,
    netns: String,
    vip: Ipv4Addr,
}

impl Haproxy {
    /// Writes the configuration and starts HAProxy; returns once it accepts connections.
    pub fn start(d: &LabDescription) -> Result<Haproxy> {
        rvs_lab::cmd::require_tool("haproxy").context("HAProxy is not installed (scripts/install-deps.sh)")?;
        let netns = director(d)?.netns.clone();
        let vip = d.vip.v4;
        let mut servers = String::new();
        for i in 0..d.real_servers.len() {
            servers.push_str(&format!("    server rs{} {}:{}\n", i + 1, real_server_v4(d, i)?, d.http_port));
        }
        let config = format!(
            "global\n    nbthread 1\n    maxconn 8000\n\ndefaults\n    mode tcp\n    timeout connect 5s\n    \
             timeout client 30s\n    timeout server 30s\n\nfrontend vip\n    bind {vip}:{port}\n    \
             default_backend reals\n\nbackend reals\n    balance roundrobin\n{servers}",
            port = d.http_port
        );
        let dir = &d.work_dir;
        let cfg = dir.join("haproxy.cfg");
        let pid = dir.join("haproxy.pid");
        std::fs::write(&cfg, config).context("writing the HAProxy configuration")?;
        netns_run(&netns, "ip", &["addr", "add", &format!("{vip}/32"), "dev", "lo"])?;
        let cfg = cfg.display().to_string();
        let pid = pid.display().to_string();
        let process = Spawned::start(&netns, "haproxy", "haproxy", &["-db", "-f", &cfg, "-p", &pid], false);
        let process = match process {
            Ok(p) => p,
            Err(e) => {
                let _ = netns_run(&netns, "ip", &["addr", "del", &format!("{vip}/32"), "dev", "lo"]);
                return Err(e);
            }
        };
        let mut haproxy = Haproxy { process, netns, vip };
        let client = d.client.netns.clone();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if !haproxy.process.running() {
                bail!("haproxy exited at start");
            }
            let probe = rvs_lab::netns::exec(
                &client,
                "curl",
                &["-s", "-m", "1", "-o", "/dev/null", "-w", "%{http_code}", &format!("http://{vip}:{}/", d.http_port)],
                Duration::from_secs(3),
            );
            if probe.is_ok_and(|o| o.stdout.trim() == "200") {
                return Ok(haproxy);
            }
            if Instant::now() > deadline {
                bail!("haproxy did not answer on {vip} within 10 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Its pid.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.process.pid()).unwrap_or(0)),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = netns_run(&self.netns, "ip", &["addr", "del", &format!("{}/32", self.vip), "dev", "lo"]);
    }
}
