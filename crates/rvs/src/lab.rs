//! `rvs lab`: a whole LVS cluster in network namespaces with rvs as the director.
//!
//! [`LabRun::start`] builds the topology for a forwarding method (rvs-lab: client, router,
//! switch, director, three nginx real servers), writes an rvsd configuration for it, sets the
//! real servers up (`rvs realserver setup`, which starts the TUN decapsulator for TUN), and
//! starts `rvsd` inside the director namespace. Dropping the run stops rvsd, tears the real
//! servers down and removes every namespace, also on error and on Ctrl-C.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rvs_api::client::Client;
use rvs_api::{Command as ApiCommand, Request, Response, ServiceSpec};
use rvs_lab::{DirectorMode, HttpServerChoice, Lab, LabDescription, Method, Segment, TopologySpec};

/// Requests per scheduler and address family in the demo.
const DEMO_REQUESTS: usize = 30;

/// A running lab with rvsd directing it.
pub struct LabRun {
    lab: Option<Lab>,
    rvsd: Option<Child>,
    socket: PathBuf,
    config: PathBuf,
    tun_real_servers: Vec<String>,
    exe: PathBuf,
}

/// A program built next to this one (`rvsd`, `rvsadm`, `rvs`): in the same directory, or one
/// up when running from `target/<profile>/deps` (tests).
pub fn sibling_binary(name: &str) -> Result<PathBuf> {
    let me = std::env::current_exe().context("locating the rvs binary")?;
    let dir = me.parent().context("rvs binary has no directory")?;
    // Test binaries live in target/<profile>/deps; the programs one level up.
    for d in [dir, dir.parent().unwrap_or(dir)] {
        let p = d.join(name);
        if p.is_file() {
            return Ok(p);
        }
    }
    bail!("{name} not found next to {} (build it: cargo build -p {name})", me.display())
}

/// The method's name in rvs configuration files.
fn method_word(m: Method) -> &'static str {
    match m {
        Method::Dr => "dr",
        Method::Nat => "nat",
        Method::Tun => "tun",
    }
}

/// The rvsd configuration for a lab: the `[director]` section, then `services`.
fn rvsd_config(d: &LabDescription, socket: &Path, services: &str) -> Result<String> {
    rvsd_config_for(d, 0, socket, services)
}

/// [`rvsd_config`] for the director at `index` (0-based).
pub(crate) fn rvsd_config_for(d: &LabDescription, index: usize, socket: &Path, services: &str) -> Result<String> {
    let director = d.directors.get(index).context("lab has no such director")?;
    let mut interfaces = Vec::new();
    let mut addresses = Vec::new();
    for seg in [Segment::Lan, Segment::Private] {
        if let Some(i) = director.interface(seg) {
            interfaces.push(format!("\"{}\"", i.name));
            addresses.push(format!("\"{}\"", i.addr.v4));
            addresses.push(format!("\"{}\"", i.addr.v6));
        }
    }
    let mut text = String::new();
    let _ = writeln!(text, "[director]\ninterfaces = [{}]", interfaces.join(", "));
    let _ = writeln!(text, "addresses = [{}]\nsocket = \"{}\"\n", addresses.join(", "), socket.display());
    text.push_str(services);
    Ok(text)
}

/// The address of real server `index` (0-based) that the director reaches it by (on the
/// private segment for NAT, the LAN otherwise), as written in a configuration: IPv6 in
/// brackets.
pub fn real_server_address(d: &LabDescription, index: usize, v4: bool) -> Result<String> {
    let seg = if d.spec.method == Method::Nat { Segment::Private } else { Segment::Lan };
    let rs = d.real_servers.get(index).context("no such real server")?;
    let i = rs.interface(seg).context("real server without an interface on its segment")?;
    Ok(if v4 { i.addr.v4.to_string() } else { format!("[{}]", i.addr.v6) })
}

/// The default services: one TCP service on the HTTP port and one UDP service on the UDP
/// port per family, every real server behind each by the lab's method.
pub(crate) fn default_services(d: &LabDescription, scheduler: &str) -> Result<String> {
    let method = method_word(d.spec.method);
    let mut text = String::new();
    for vip in d.vip.both() {
        let host = match vip {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        for (proto, port) in [("tcp", d.http_port), ("udp", d.udp_port)] {
            let _ = writeln!(text, "[[service]]\nvip = \"{host}:{port}\"\nprotocol = \"{proto}\"");
            let _ = writeln!(text, "scheduler = \"{scheduler}\"\n");
            for index in 0..d.real_servers.len() {
                let addr = real_server_address(d, index, vip.is_ipv4())?;
                let _ = writeln!(text, "[[service.real]]\naddress = \"{addr}:{port}\"\nmethod = \"{method}\"\n");
            }
        }
    }
    Ok(text)
}

impl LabRun {
    /// Builds the lab for `method` and starts rvsd on its director with `scheduler`.
    pub fn start(method: Method, scheduler: &str) -> Result<LabRun> {
        LabRun::start_with(method, scheduler, "")
    }

    /// Like [`LabRun::start`], with `extra` appended to the rvsd configuration (e.g. a
    /// `[sysctl]` table).
    ///
    /// Unless `extra` has its own `[sysctl]` table, the lab sets `conn_reuse_mode = 3`: a SYN
    /// from a client port whose earlier DR/TUN connection is still in FIN_WAIT opens a new,
    /// newly scheduled connection (with the kernel's default 1 it rides the old one, so a
    /// reused port would skew the spreads the demo and the tests show).
    pub fn start_with(method: Method, scheduler: &str, extra: &str) -> Result<LabRun> {
        let sysctl = if extra.contains("[sysctl]") { "" } else { "[sysctl]\nconn_reuse_mode = 3\n" };
        LabRun::start_configured(method, |d| Ok(format!("{}\n{extra}\n{sysctl}", default_services(d, scheduler)?)))
    }

    /// Like [`LabRun::start`], with the generated services passed through `edit` before rvsd
    /// reads them (e.g. to give a service a `[service.health]` block).
    pub fn start_edited(method: Method, scheduler: &str, edit: impl FnOnce(String) -> String) -> Result<LabRun> {
        LabRun::start_configured(method, |d| Ok(edit(default_services(d, scheduler)?)))
    }

    /// Builds the lab for `method` and starts rvsd with the services (and any other
    /// configuration after `[director]`) that `services` writes for the lab built, instead of
    /// the default ones.
    pub fn start_configured(
        method: Method,
        services: impl FnOnce(&LabDescription) -> Result<String>,
    ) -> Result<LabRun> {
        let exe = sibling_binary("rvs")?;
        let rvsd = sibling_binary("rvsd")?;
        let mut spec = TopologySpec::new(method);
        spec.director_mode = DirectorMode::External;
        spec.http_server = HttpServerChoice::Auto;
        let lab = Lab::up(&spec).context("building the lab")?;
        let d = lab.description().clone();
        let socket = d.work_dir.join("rvsd.sock");
        let config = d.work_dir.join("rvsd.toml");
        let text = rvsd_config(&d, &socket, &services(&d)?)?;
        std::fs::write(&config, text).context("writing the rvsd configuration")?;
        let mut run = LabRun { lab: Some(lab), rvsd: None, socket, config, tun_real_servers: Vec::new(), exe };
        if method == Method::Tun {
            for rs in &d.real_servers {
                let vips: Vec<String> = d.vip.both().iter().map(ToString::to_string).collect();
                let mut args = vec!["realserver", "setup", "--method", "tun", "--netns", rs.netns.as_str()];
                for v in &vips {
                    args.push("--vip");
                    args.push(v);
                }
                let out = Command::new(&run.exe).args(&args).output().context("running rvs realserver setup")?;
                if !out.status.success() {
                    bail!("rvs realserver setup in {}: {}", rs.netns, String::from_utf8_lossy(&out.stderr));
                }
                run.tun_real_servers.push(rs.netns.clone());
            }
        }
        let director = d.directors.first().context("lab has no director")?.netns.clone();
        let log = std::fs::File::create(d.work_dir.join("rvsd.log")).context("creating the rvsd log")?;
        let child = Command::new("ip")
            .args(["netns", "exec", &director])
            .arg(&rvsd)
            .args(["--foreground", "--config"])
            .arg(&run.config)
            .arg("--socket")
            .arg(&run.socket)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting rvsd")?;
        run.rvsd = Some(child);
        run.wait_ready()?;
        Ok(run)
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(c) = self.rvsd.as_mut()
                && let Some(status) = c.try_wait()?
            {
                bail!("rvsd exited at start ({status}); log: {}", self.log());
            }
            if let Ok(mut c) = Client::connect(&self.socket)
                && matches!(c.call(&Request::Status), Ok(Response::Status(_)))
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("rvsd did not answer on {} within 10 s; log: {}", self.socket.display(), self.log())
    }

    /// The rvsd log so far.
    pub fn log(&self) -> String {
        self.lab
            .as_ref()
            .and_then(|l| std::fs::read_to_string(l.description().work_dir.join("rvsd.log")).ok())
            .unwrap_or_default()
    }

    /// What was built.
    pub fn description(&self) -> &LabDescription {
        self.lab.as_ref().map(Lab::description).expect("lab is up while the run lives")
    }

    /// The lab itself (to stop and start a real server's HTTP server).
    pub fn lab(&self) -> &Lab {
        self.lab.as_ref().expect("lab is up while the run lives")
    }

    /// The admin socket of this lab's rvsd.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Sends a request to rvsd.
    pub fn call(&self, req: &Request) -> Result<Response> {
        let mut c = Client::connect(&self.socket)?;
        Ok(c.call(req)?)
    }

    /// Changes the scheduler of every service.
    pub fn set_scheduler(&self, scheduler: &str) -> Result<()> {
        let Response::Table(t) = self.call(&Request::List)? else { bail!("unexpected answer to List") };
        let commands = t
            .services
            .into_iter()
            .map(|s| ApiCommand::EditService(ServiceSpec { scheduler: scheduler.into(), ..s.spec }))
            .collect();
        match self.call(&Request::Apply { commands })? {
            Response::Applied => Ok(()),
            other => bail!("rvsd refused the scheduler change: {other:?}"),
        }
    }

    /// `n` HTTP requests from the client to `vip`, each on a new connection; the names of the
    /// real servers that answered, in order (an empty string for a failed request).
    pub fn http(&self, vip: IpAddr, n: usize) -> Result<Vec<String>> {
        self.http_to(vip, self.description().http_port, n)
    }

    /// Like [`LabRun::http`], to port `port` of `vip`.
    pub fn http_to(&self, vip: IpAddr, port: u16, n: usize) -> Result<Vec<String>> {
        let d = self.description();
        let url = match vip {
            IpAddr::V4(a) => format!("http://{a}:{port}/"),
            IpAddr::V6(a) => format!("http://[{a}]:{port}/"),
        };
        let mut args: Vec<String> =
            ["netns", "exec", &d.client.netns, "curl", "-s", "-m", "3"].iter().map(ToString::to_string).collect();
        args.extend(["-H".into(), "Connection: close".into()]);
        args.extend(std::iter::repeat_n(url, n));
        let out = Command::new("ip").args(&args).output().context("running curl in the client namespace")?;
        // Each real server answers its name on a line of its own ("rs1").
        let names = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("rs"))
            .map(String::from)
            .collect();
        Ok(names)
    }

    /// Applies commands as one transaction.
    pub fn apply(&self, commands: Vec<ApiCommand>) -> Result<()> {
        match self.call(&Request::Apply { commands })? {
            Response::Applied => Ok(()),
            other => bail!("rvsd refused the change: {other:?}"),
        }
    }

    /// Stops rvsd and removes everything.
    pub fn stop(mut self) -> Result<()> {
        self.shutdown()
    }

    /// Stops rvsd only (SIGTERM; the lab stays up). Returns rvsd's exit status.
    pub fn stop_rvsd(&mut self) -> Result<Option<std::process::ExitStatus>> {
        let Some(mut c) = self.rvsd.take() else { return Ok(None) };
        let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(status) = c.try_wait()? {
                return Ok(Some(status));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.kill();
        bail!("rvsd did not stop within 5 s of SIGTERM")
    }

    fn shutdown(&mut self) -> Result<()> {
        if let Some(mut c) = self.rvsd.take() {
            // `ip netns exec` passes signals on; SIGTERM lets rvsd remove its steering rules.
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && c.try_wait().ok().flatten().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.tun_real_servers.drain(..) {
            let _ = Command::new(&self.exe).args(["realserver", "teardown", "--netns", &ns]).output();
        }
        if let Some(lab) = self.lab.take() {
            lab.down().context("tearing the lab down")?;
        }
        Ok(())
    }
}

impl Drop for LabRun {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            eprintln!("rvs lab: teardown: {e:#}");
        }
    }
}

/// For end-to-end tests: true if this process may create network namespaces (root). If not,
/// a test must fail under CI=true (this panics then) and may skip otherwise (it says why).
pub fn can_run_namespace_tests() -> bool {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| s.lines().any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false);
    if root {
        return true;
    }
    assert!(std::env::var("CI").as_deref() != Ok("true"), "CI=true: end-to-end tests need root to create namespaces");
    eprintln!("SKIPPED: not root, cannot create network namespaces");
    false
}

/// How many answers came from rs1, rs2 and rs3.
pub fn spread(names: &[String]) -> [usize; 3] {
    let c = |n: &str| names.iter().filter(|x| x.as_str() == n).count();
    [c("rs1"), c("rs2"), c("rs3")]
}

fn parse_method(s: &str) -> Result<Method> {
    Ok(match s {
        "dr" => Method::Dr,
        "nat" => Method::Nat,
        "tun" => Method::Tun,
        other => bail!("unknown method `{other}' (dr, nat or tun)"),
    })
}

/// `rvs lab ...`.
pub fn main(args: &[String]) -> Result<i32> {
    match args.first().map(String::as_str) {
        Some("up") => {
            let method = parse_method(args.get(1).map(String::as_str).unwrap_or("dr"))?;
            rvs_lab::sweep_stale().context("removing leftovers of earlier labs")?;
            rvs_lab::install_signal_teardown().context("installing the Ctrl-C handler")?;
            let run = LabRun::start(method, "wlc")?;
            println!("{}", run.description().summary());
            println!("rvsd admin socket: {}", run.socket().display());
            println!(
                "try: ip netns exec {} curl http://{}/   |   rvsadm --socket {} -Ln",
                run.description().client.netns,
                run.description().vip.v4,
                run.socket().display()
            );
            println!("press Enter (or Ctrl-C) to tear the lab down");
            let _ = std::io::stdout().flush();
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
            run.stop()?;
            Ok(0)
        }
        Some("down") => {
            let report = rvs_lab::sweep_stale()?;
            println!("removed {} stale lab(s), {} namespace(s)", report.runs.len(), report.namespaces.len());
            Ok(0)
        }
        Some("status") => {
            let out = Command::new("ip").args(["netns", "list"]).output()?;
            let labs: std::collections::BTreeSet<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .filter(|n| n.starts_with("rvs") && n.contains('-'))
                .filter_map(|n| n.split('-').next().map(String::from))
                .collect();
            if labs.is_empty() {
                println!("no lab is up");
            }
            for l in labs {
                println!("lab {l} is up");
            }
            Ok(0)
        }
        Some("demo") => demo(),
        _ => {
            println!("usage: rvs lab up [dr|nat|tun] | status | down | demo");
            Ok(2)
        }
    }
}

/// The main job: for each forwarding method, a lab with rvs directing; real HTTP requests
/// from the client to the VIP (IPv4 and IPv6) under several schedulers; how they were spread.
pub fn demo() -> Result<i32> {
    rvs_lab::sweep_stale().context("removing leftovers of earlier labs")?;
    rvs_lab::install_signal_teardown().context("installing the Ctrl-C handler")?;
    println!("rvs lab demo: rvs directs a VIP to three nginx real servers (rs1, rs2, rs3) in network");
    println!("namespaces; the client sends {DEMO_REQUESTS} HTTP requests per row, each on a new TCP connection.\n");
    println!("{:<4} {:<6} {:<5} {:>4} {:>4} {:>4} {:>7}", "", "sched", "fam", "rs1", "rs2", "rs3", "failed");
    let mut failures = 0;
    for method in [Method::Dr, Method::Nat, Method::Tun] {
        let run = LabRun::start(method, "rr")?;
        for sched in ["rr", "wlc", "sh", "mh"] {
            run.set_scheduler(sched)?;
            for vip in run.description().vip.both() {
                let names = run.http(vip, DEMO_REQUESTS)?;
                let count = |n: &str| names.iter().filter(|x| x.as_str() == n).count();
                let failed = DEMO_REQUESTS.saturating_sub(names.len());
                failures += failed;
                println!(
                    "{:<4} {:<6} {:<5} {:>4} {:>4} {:>4} {:>7}",
                    method_word(method).to_uppercase(),
                    sched,
                    if vip.is_ipv4() { "IPv4" } else { "IPv6" },
                    count("rs1"),
                    count("rs2"),
                    count("rs3"),
                    failed
                );
            }
        }
        if let Ok(Response::Status(s)) = run.call(&Request::Status) {
            println!("     rvsd: {} connections in the table", s.connections);
        }
        run.stop()?;
    }
    println!("\nrr spreads evenly; wlc follows the least loaded (all idle here, so it rotates as");
    println!("connections close); sh and mh keep one client on one server.");
    Ok(if failures == 0 { 0 } else { 1 })
}
