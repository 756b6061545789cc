//! `check`: compares the host with what its forwarding method needs and
//! explains every wrong or missing setting in plain words: what is wrong,
//! why it matters (the "ARP problem", reverse-path filtering, the return
//! path), and the command that fixes it.
//!
//! The kernel applies the larger of `net.ipv4.conf.all.X` and the
//! interface's own `X` for arp_ignore, arp_announce and rp_filter, so check
//! judges the effective value on each uplink (and on the decapsulator's TUN
//! device), not the raw keys. Values that also work are accepted:
//! arp_ignore 1, 2 or 8; arp_announce 2; rp_filter 0 or 2 (loose) for TUN.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;

use rvs_lab::Method;

use crate::decap::MECHANISM;
use crate::error::Result;
use crate::host::{self, Host, host_prefix, invalid, sysctl_fix};
use crate::setup::parse_method;
use crate::state::{self, DecapStatus, SetupState};

const WHY_VIP_ON_LO: &str = "The director forwards packets that are still addressed to the VIP (DR changes only \
    the MAC address, TUN wraps the packet in an outer header). This server accepts them only if the VIP is one of \
    its own addresses, and then answers from the VIP. It belongs on lo as a host address (/32, /128) so that it \
    is never announced on the network.";
const WHY_VIP_NOT_ON_UPLINK: &str = "An address on a real interface is answered in ARP (IPv6: neighbour \
    discovery) there, so this server competes with the director for the VIP and may receive client traffic \
    that should go to the director.";
const WHY_ARP_IGNORE: &str = "The VIP is also configured on the director. If this server answers ARP requests \
    for the VIP on the shared segment, the router may cache this server's MAC for the VIP and send clients \
    straight here, bypassing the director (the \"ARP problem\"). arp_ignore=1 answers only for addresses \
    configured on the receiving interface, and the VIP is on lo. The kernel uses the larger of the `all` value \
    and the interface's.";
const WHY_ARP_ANNOUNCE: &str = "When this server sends its own ARP requests it must not use the VIP as sender \
    address, or its neighbours learn \"VIP is at this server's MAC\" (the other half of the ARP problem). \
    arp_announce=2 always uses the best address of the outgoing interface. The kernel uses the larger of the \
    `all` value and the interface's.";
const WHY_RP_FILTER: &str = "Decapsulated packets arrive on the TUN device carrying the client's source \
    address, while the route back to the client leaves by the uplink. With strict reverse-path filtering \
    (rp_filter=1) the kernel drops them as spoofed. The kernel uses the larger of the `all` value and the \
    device's; 0 (off) or 2 (loose) work.";
const WHY_DECAP: &str = "In LVS-TUN the director wraps every client packet in an outer IP header (IPIP, \
    protocol 4; IPv6 inner: protocol 41). This kernel has no ipip/ip6tnl module, so without the user-space \
    decapsulator those packets are dropped (answered with ICMP protocol unreachable) and the service is down.";
const WHY_NAT_ROUTE: &str = "In LVS-NAT the director rewrites the destination to this server and must rewrite \
    the reply's source back to the VIP. Replies that do not go back through the director reach the client \
    from this server's own address and are dropped there.";
const WHY_KERNEL_TUNNEL: &str = "The kernel decapsulates IPIP itself on this device while the user-space \
    decapsulator also receives a copy of every tunnel packet: each packet would be delivered twice.";

/// What `check` should look at; empty fields are taken from the state file
/// that `setup` left (or detected: the uplinks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRequest {
    /// Forwarding method (`None`: the one setup recorded).
    pub method: Option<Method>,
    /// The VIPs.
    pub vips: Vec<IpAddr>,
    /// The uplinks.
    pub uplinks: Vec<String>,
    /// NAT: the director's address the default route must go through.
    pub gateways: Vec<IpAddr>,
    /// Namespace to look at.
    pub netns: Option<String>,
    /// Where setup's state and the decapsulator's status live.
    pub state_dir: PathBuf,
}

impl CheckRequest {
    /// Everything from the state file, in the caller's namespace.
    pub fn new() -> CheckRequest {
        CheckRequest {
            method: None,
            vips: Vec::new(),
            uplinks: Vec::new(),
            gateways: Vec::new(),
            netns: None,
            state_dir: PathBuf::from(state::DEFAULT_STATE_DIR),
        }
    }
}

impl Default for CheckRequest {
    fn default() -> Self {
        CheckRequest::new()
    }
}

/// One wrong or missing setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// What is wrong, naming the setting and its value.
    pub problem: String,
    /// Why it matters.
    pub why: String,
    /// The command that fixes it.
    pub fix: String,
}

/// The result of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    /// The method checked for.
    pub method: Method,
    /// Everything wrong; empty when the host is ready.
    pub findings: Vec<Finding>,
    /// What was looked at, and the decapsulator's mechanism and counters.
    pub notes: Vec<String>,
}

impl CheckReport {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }

    /// The report as text for a terminal.
    pub fn render(&self) -> String {
        let mut text = String::new();
        for note in &self.notes {
            let _ = writeln!(text, "{note}");
        }
        for finding in &self.findings {
            let _ = writeln!(text, "\nPROBLEM: {}", finding.problem);
            let _ = writeln!(text, "  why: {}", finding.why);
            let _ = writeln!(text, "  fix: {}", finding.fix);
        }
        let verdict = if self.ok() {
            format!("\nOK: this host is ready to be an LVS-{} real server", self.method.to_string().to_uppercase())
        } else {
            format!("\n{} problem(s) found", self.findings.len())
        };
        let _ = writeln!(text, "{verdict}");
        text
    }
}

/// Checks the host; see the module documentation.
pub fn check(request: &CheckRequest) -> Result<CheckReport> {
    let host = Host::new(request.netns.clone());
    let id = state::id_of(request.netns.as_deref());
    let record: Option<SetupState> = state::read_json(&state::state_path(&request.state_dir, &id))?;
    let method = match (request.method, &record) {
        (Some(method), _) => method,
        (None, Some(record)) => parse_method(&record.method).map_err(invalid)?,
        (None, None) => return Err(invalid("which method? pass --method dr|tun|nat (no setup state found)")),
    };
    let pick = |given: &Vec<IpAddr>, recorded: Option<Vec<IpAddr>>| {
        if given.is_empty() { recorded.unwrap_or_default() } else { given.clone() }
    };
    let vips = pick(&request.vips, record.as_ref().map(|r| r.vips.clone()));
    let gateways = pick(&request.gateways, record.as_ref().map(|r| r.routes.iter().map(|c| c.gateway).collect()));
    let uplinks = match (&request.uplinks, &record) {
        (given, _) if !given.is_empty() => given.clone(),
        (_, Some(record)) if !record.uplinks.is_empty() => record.uplinks.clone(),
        _ => host.default_route_devices()?,
    };
    let mut report = CheckReport { method, findings: Vec::new(), notes: Vec::new() };
    let listed = |items: Vec<String>| if items.is_empty() { "none".to_owned() } else { items.join(" ") };
    report.notes.push(format!(
        "method {method}; VIPs {}; uplinks {}",
        listed(vips.iter().map(IpAddr::to_string).collect()),
        listed(uplinks.clone())
    ));
    match method {
        Method::Nat => check_nat(&host, &gateways, &mut report)?,
        Method::Dr | Method::Tun => {
            if vips.is_empty() {
                return Err(invalid("which VIPs? pass --vip (no setup state found)"));
            }
            let decap = if method == Method::Tun { running_decapsulator(&request.state_dir, &id) } else { None };
            check_vips(&host, &vips, decap.as_ref().map(|status| status.tun.as_str()), &mut report)?;
            if vips.iter().any(IpAddr::is_ipv4) {
                check_arp(&host, &uplinks, &mut report)?;
            }
            if vips.iter().any(IpAddr::is_ipv6) {
                report.notes.push(
                    "IPv6 VIPs need no ARP settings: Linux answers neighbour solicitations only for addresses \
                     on the receiving interface, and the VIP is on lo"
                        .to_owned(),
                );
            }
            if method == Method::Tun {
                check_tun(&host, &vips, decap, &mut report)?;
            }
            for gateway in &gateways {
                check_default_route(&host, gateway, "the router", &mut report)?;
            }
        }
    }
    Ok(report)
}

fn check_vips(host: &Host, vips: &[IpAddr], tun: Option<&str>, report: &mut CheckReport) -> Result<()> {
    let addresses = host.addresses()?;
    for vip in vips {
        let holders: Vec<&host::HostAddr> = addresses.iter().filter(|found| found.addr == *vip).collect();
        let prefix = host_prefix(vip);
        if !holders.iter().any(|found| found.dev == "lo" && found.prefix == prefix) {
            let problem = match holders.iter().find(|found| found.dev == "lo") {
                Some(found) => format!("VIP {vip} is on lo as /{} instead of a host address /{prefix}", found.prefix),
                None => format!("VIP {vip} is not configured on lo"),
            };
            report.findings.push(Finding {
                problem,
                why: WHY_VIP_ON_LO.to_owned(),
                fix: format!("ip addr replace {vip}/{prefix} dev lo"),
            });
        }
        for found in holders.iter().filter(|found| found.dev != "lo" && Some(found.dev.as_str()) != tun) {
            report.findings.push(Finding {
                problem: format!("VIP {vip} is configured on {} (a network interface)", found.dev),
                why: WHY_VIP_NOT_ON_UPLINK.to_owned(),
                fix: format!("ip addr del {vip}/{} dev {}", found.prefix, found.dev),
            });
        }
    }
    Ok(())
}

/// The value the kernel uses for `setting` on `dev`: max(all, dev).
struct Effective {
    all: Option<i64>,
    dev: Option<i64>,
}

impl Effective {
    fn read(host: &Host, setting: &str, dev: &str) -> Result<Effective> {
        let all = host.read_sysctl_number(&format!("net/ipv4/conf/all/{setting}"))?;
        let dev = if dev == "all" { None } else { host.read_sysctl_number(&format!("net/ipv4/conf/{dev}/{setting}"))? };
        Ok(Effective { all, dev })
    }

    fn value(&self) -> i64 {
        self.all.unwrap_or(0).max(self.dev.unwrap_or(0))
    }

    fn show(&self, setting: &str, dev: &str) -> String {
        let show = |value: Option<i64>| value.map_or_else(|| "missing".to_owned(), |v| v.to_string());
        if dev == "all" {
            format!("net.ipv4.conf.all.{setting} is {}", show(self.all))
        } else {
            format!(
                "{setting} on {dev} is effectively {} (the larger of net.ipv4.conf.all.{setting}={} and net.ipv4.conf.{dev}.{setting}={})",
                self.value(),
                show(self.all),
                show(self.dev)
            )
        }
    }
}

/// A fix that sets `setting` to `value` on `all` and on `dev`.
fn fix_both(setting: &str, value: &str, dev: &str) -> String {
    let mut fixes = vec![sysctl_fix(&format!("net/ipv4/conf/all/{setting}"), value)];
    if dev != "all" {
        fixes.push(sysctl_fix(&format!("net/ipv4/conf/{dev}/{setting}"), value));
    }
    fixes.join("; ")
}

fn check_arp(host: &Host, uplinks: &[String], report: &mut CheckReport) -> Result<()> {
    let devices: Vec<&str> =
        if uplinks.is_empty() { vec!["all"] } else { uplinks.iter().map(String::as_str).collect() };
    for dev in devices {
        let ignore = Effective::read(host, "arp_ignore", dev)?;
        if !matches!(ignore.value(), 1 | 2 | 8) {
            report.findings.push(Finding {
                problem: format!(
                    "{}: this server answers ARP requests for the VIP{}",
                    ignore.show("arp_ignore", dev),
                    if dev == "all" { String::new() } else { format!(" on {dev}") }
                ),
                why: WHY_ARP_IGNORE.to_owned(),
                fix: fix_both("arp_ignore", "1", dev),
            });
        }
        let announce = Effective::read(host, "arp_announce", dev)?;
        if announce.value() != 2 {
            report.findings.push(Finding {
                problem: format!(
                    "{}: ARP requests may carry the VIP as sender address",
                    announce.show("arp_announce", dev)
                ),
                why: WHY_ARP_ANNOUNCE.to_owned(),
                fix: fix_both("arp_announce", "2", dev),
            });
        }
    }
    Ok(())
}

/// The decapsulator's published status, if its process is alive.
fn running_decapsulator(state_dir: &std::path::Path, id: &str) -> Option<DecapStatus> {
    let status: DecapStatus = state::read_json(&state::status_path(state_dir, id)).ok().flatten()?;
    host::process_alive(status.pid).then_some(status)
}

fn check_tun(host: &Host, vips: &[IpAddr], decap: Option<DecapStatus>, report: &mut CheckReport) -> Result<()> {
    let rp_device = match &decap {
        Some(status) => {
            report.notes.push(format!("decapsulator: pid {} on {}; {}", status.pid, status.tun, status.mechanism));
            report.notes.push(format!(
                "decapsulated {} packets; dropped {} (inner destination not a VIP), {} (malformed), {} (TUN write failed)",
                status.decapsulated, status.dropped_not_vip, status.dropped_malformed, status.dropped_write
            ));
            for vip in vips.iter().filter(|vip| !status.vips.contains(vip)) {
                report.findings.push(Finding {
                    problem: format!("the running decapsulator does not accept VIP {vip}"),
                    why: "Tunnelled packets for a VIP the decapsulator does not know are dropped.".to_owned(),
                    fix: "rvs realserver teardown, then rvs realserver setup with every --vip".to_owned(),
                });
            }
            match host.link_state(&status.tun)? {
                Some(true) => {}
                state => report.findings.push(Finding {
                    problem: format!(
                        "the decapsulator's TUN device {} is {}",
                        status.tun,
                        if state.is_none() { "missing" } else { "down" }
                    ),
                    why: "Decapsulated packets enter the kernel through that device.".to_owned(),
                    fix: format!("ip link set dev {} up", status.tun),
                }),
            }
            status.tun.clone()
        }
        None => {
            let vip_args: Vec<String> = vips.iter().map(|vip| format!("--vip {vip}")).collect();
            report.findings.push(Finding {
                problem: "no decapsulator is running".to_owned(),
                why: WHY_DECAP.to_owned(),
                fix: format!(
                    "rvs realserver setup --method tun {} (or run `rvs realserver decap {}`)",
                    vip_args.join(" "),
                    vip_args.join(" ")
                ),
            });
            report.notes.push(format!("mechanism when running: {MECHANISM}"));
            "all".to_owned()
        }
    };
    let rp = Effective::read(host, "rp_filter", &rp_device)?;
    if !matches!(rp.value(), 0 | 2) {
        report.findings.push(Finding {
            problem: format!("{}: strict reverse-path filtering", rp.show("rp_filter", &rp_device)),
            why: WHY_RP_FILTER.to_owned(),
            fix: fix_both("rp_filter", "0", &rp_device),
        });
    }
    let decap_running = rp_device != "all";
    for kernel_tunnel in ["tunl0", "ip6tnl0", "sit0"] {
        if decap_running && host.link_state(kernel_tunnel)? == Some(true) {
            report.findings.push(Finding {
                problem: format!("the kernel tunnel device {kernel_tunnel} is up"),
                why: WHY_KERNEL_TUNNEL.to_owned(),
                fix: format!("ip link set dev {kernel_tunnel} down"),
            });
        }
    }
    Ok(())
}

fn check_nat(host: &Host, gateways: &[IpAddr], report: &mut CheckReport) -> Result<()> {
    if gateways.is_empty() {
        return Err(invalid("nat: which director address? pass --gateway (no setup state found)"));
    }
    for gateway in gateways {
        check_default_route(host, gateway, "the director", report)?;
    }
    Ok(())
}

fn check_default_route(host: &Host, gateway: &IpAddr, whom: &str, report: &mut CheckReport) -> Result<()> {
    let routes = host.default_routes(gateway.is_ipv6())?;
    let wanted = gateway.to_string();
    if !routes.iter().any(|line| host::route_field(line, "via") == Some(wanted.as_str())) {
        let now = if routes.is_empty() { "there is none".to_owned() } else { format!("it is `{}`", routes.join("; ")) };
        let why = if whom == "the director" {
            WHY_NAT_ROUTE.to_owned()
        } else {
            "Replies should leave by the gateway the setup was given.".to_owned()
        };
        report.findings.push(Finding {
            problem: format!("the default route does not go through {whom} {gateway} ({now})"),
            why,
            fix: format!("ip route replace default via {gateway}"),
        });
    }
    Ok(())
}
