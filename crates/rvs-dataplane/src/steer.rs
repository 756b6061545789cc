//! Steering: keeps the director's own kernel from also handling the traffic rvs handles.
//!
//! rvs reads frames with AF_PACKET taps, which see a frame before the netdev ingress hook;
//! an nftables table of family `netdev` with one ingress chain per interface then drops
//! exactly that traffic for the kernel:
//!
//! - packets to a VIP service (protocol, VIP, port; port 0 = every port of the protocol);
//! - NAT replies from real servers (protocol, RIP, port as source), unless addressed to
//!   one of the director's own addresses (health-check replies reach the kernel).
//!
//! Everything else (ARP and ND, ping, SSH, routing protocols) stays with the kernel. The
//! table is named per daemon instance (`rvs_<pid>` by default), installed and replaced
//! atomically with one `nft -f -` transaction, removed by [`Steering::remove`] or on drop;
//! [`remove_stale`] deletes the tables of dead daemons. `nft` runs in the network namespace
//! of the calling thread. Non-first IP fragments carry no ports and are not matched.
//!
//! Firewall-mark services cannot be steered at ingress: the operator's mark is set later,
//! at prerouting. For each of them, tables `ip`/`ip6` of the same name queue the packets
//! carrying the mark (TCP, UDP, SCTP) to NFQUEUE [`SteeringSpec::queue`] at priority
//! `mangle + 10`, where rvs takes them ([`crate::nfqueue`]); see `queue_rules` for how. They are
//! replaced in their own transaction after the netdev table, and removed with it.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rvs_core::addr::Family;
use rvs_core::service::Protocol;

mod queue_rules;

pub use queue_rules::{CHAIN as QUEUE_CHAIN, PRIORITY as QUEUE_PRIORITY};

/// Prefix of default table names; `remove_stale` only touches `<prefix><pid>` tables.
pub const TABLE_PREFIX: &str = "rvs_";
/// Longest table name accepted.
const MAX_TABLE_NAME: usize = 64;
/// Bound on one `nft` run.
const NFT_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of the steering rules.
#[derive(Debug, thiserror::Error)]
pub enum SteerError {
    /// A name in the spec cannot be used in an nftables script.
    #[error("invalid steering spec: {0}")]
    Invalid(String),
    /// `nft` could not be run.
    #[error("running nft: {0}")]
    Spawn(#[source] std::io::Error),
    /// nf_tables refused the queue rules (or could not be reached over netlink).
    #[error("{0}")]
    Netlink(String),
    /// `nft` refused the script or timed out.
    #[error("nft failed ({status}): {stderr}")]
    Nft {
        /// Exit status (or "timeout").
        status: String,
        /// Its error output.
        stderr: String,
    },
}

/// A VIP service whose packets the kernel must not see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SteeredService {
    /// Transport protocol.
    pub protocol: Protocol,
    /// The virtual address.
    pub addr: IpAddr,
    /// Destination port; 0 = every port (a persistent port-zero service).
    pub port: u16,
}

/// A NAT real server whose replies the kernel must not forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SteeredRealServer {
    /// Transport protocol.
    pub protocol: Protocol,
    /// The real server's address (source of its replies).
    pub addr: IpAddr,
    /// Its service port (source port of replies); 0 = every port.
    pub port: u16,
}

/// A firewall-mark service: packets of its family carrying its mark go to NFQUEUE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SteeredMark {
    /// Address family of the service.
    pub family: Family,
    /// The mark (non-zero).
    pub mark: u32,
}

/// What to steer, on which interfaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SteeringSpec {
    /// Interfaces that get an ingress chain (where VIP traffic and NAT replies arrive).
    pub interfaces: Vec<String>,
    /// VIP services dropped for the kernel.
    pub services: Vec<SteeredService>,
    /// NAT real servers whose replies are dropped for the kernel.
    pub nat_real_servers: Vec<SteeredRealServer>,
    /// The director's own addresses: real-server packets to them still reach the kernel.
    pub local_addrs: Vec<IpAddr>,
    /// Firewall-mark services whose marked packets are queued to rvs.
    pub marks: Vec<SteeredMark>,
    /// The NFQUEUE number marked packets go to.
    pub queue: u16,
}

fn protocol_name(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "tcp",
        Protocol::Udp => "udp",
        Protocol::Sctp => "sctp",
    }
}

fn family_keyword(addr: &IpAddr) -> &'static str {
    if addr.is_ipv4() { "ip" } else { "ip6" }
}

/// Checks that `name` is safe inside a quoted nft string (an interface name).
fn check_ifname(name: &str) -> Result<(), SteerError> {
    let valid = !name.is_empty()
        && name.len() <= 15
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'@' | b':'));
    if valid { Ok(()) } else { Err(SteerError::Invalid(format!("interface name {name:?}"))) }
}

/// Checks that `name` is a plain nft identifier.
fn check_table_name(name: &str) -> Result<(), SteerError> {
    let valid = name.len() <= MAX_TABLE_NAME
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if valid { Ok(()) } else { Err(SteerError::Invalid(format!("table name {name:?}"))) }
}

/// The rules of one chain (the same for every interface), one per line.
fn rules(spec: &SteeringSpec) -> Vec<String> {
    let mut lines = Vec::new();
    let services: BTreeSet<_> = spec.services.iter().collect();
    for service in services {
        let family = family_keyword(&service.addr);
        let proto = protocol_name(service.protocol);
        let port =
            if service.port == 0 { format!("meta l4proto {proto}") } else { format!("{proto} dport {}", service.port) };
        lines.push(format!("{family} daddr {} {port} counter drop comment \"vip\"", service.addr));
    }
    let real_servers: BTreeSet<_> = spec.nat_real_servers.iter().collect();
    for server in real_servers {
        let family = family_keyword(&server.addr);
        let proto = protocol_name(server.protocol);
        let port =
            if server.port == 0 { format!("meta l4proto {proto}") } else { format!("{proto} sport {}", server.port) };
        let locals: BTreeSet<String> = spec
            .local_addrs
            .iter()
            .filter(|local| local.is_ipv4() == server.addr.is_ipv4())
            .map(ToString::to_string)
            .collect();
        let except = if locals.is_empty() {
            String::new()
        } else {
            format!(" {family} daddr != {{ {} }}", locals.into_iter().collect::<Vec<_>>().join(", "))
        };
        lines.push(format!("{family} saddr {} {port}{except} counter drop comment \"nat-reply\"", server.addr));
    }
    lines
}

/// The nft script that (re)creates table `table` for `spec` in one transaction: create
/// (so the delete cannot fail), delete, then define it afresh.
pub fn render_script(table: &str, spec: &SteeringSpec) -> Result<String, SteerError> {
    check_table_name(table)?;
    let mut interfaces: Vec<&String> = Vec::new();
    for name in &spec.interfaces {
        check_ifname(name)?;
        if !interfaces.contains(&name) {
            interfaces.push(name);
        }
    }
    let rules = rules(spec);
    let mut script = format!("add table netdev {table}\ndelete table netdev {table}\ntable netdev {table} {{\n");
    for (index, name) in interfaces.iter().enumerate() {
        let _ = writeln!(script, "  chain ingress_{index} {{");
        let _ = writeln!(script, "    type filter hook ingress device \"{name}\" priority 0; policy accept;");
        for rule in &rules {
            let _ = writeln!(script, "    {rule}");
        }
        let _ = writeln!(script, "  }}");
    }
    script.push_str("}\n");
    Ok(script)
}

/// Runs `nft` with `args`, feeding `input`; returns stdout.
fn run_nft(args: &[&str], input: Option<&str>) -> Result<String, SteerError> {
    let mut child = Command::new("nft")
        .args(args)
        .stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(SteerError::Spawn)?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        // nft reads the whole script before acting; a write error shows in its status.
        let _ = stdin.write_all(text.as_bytes());
    }
    let deadline = Instant::now() + NFT_TIMEOUT;
    loop {
        match child.try_wait().map_err(SteerError::Spawn)? {
            Some(_) => break,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(SteerError::Nft { status: "timeout".to_owned(), stderr: String::new() });
            }
            None => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    let output = child.wait_with_output().map_err(SteerError::Spawn)?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(SteerError::Nft {
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Installed steering rules; dropping it removes them.
#[derive(Debug)]
pub struct Steering {
    table: String,
    spec: SteeringSpec,
    installed: bool,
}

impl Steering {
    /// The default table name of this process: `rvs_<pid>`.
    pub fn default_table_name() -> String {
        format!("{TABLE_PREFIX}{}", std::process::id())
    }

    /// Installs `spec` in a table named `rvs_<pid>`.
    pub fn install(spec: SteeringSpec) -> Result<Steering, SteerError> {
        Steering::install_named(&Steering::default_table_name(), spec)
    }

    /// Installs `spec` in table `table` (replacing a table of that name atomically).
    pub fn install_named(table: &str, spec: SteeringSpec) -> Result<Steering, SteerError> {
        let script = render_script(table, &spec)?;
        run_nft(&["-f", "-"], Some(&script))?;
        let steering = Steering { table: table.to_owned(), spec, installed: true };
        if !steering.spec.marks.is_empty() {
            // On error, dropping `steering` removes what was installed.
            queue_rules::replace(table, &steering.spec.marks, steering.spec.queue)?;
        }
        Ok(steering)
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The spec in force.
    pub fn spec(&self) -> &SteeringSpec {
        &self.spec
    }

    /// Replaces the rules with those of `spec` in one transaction: at no moment are the
    /// old rules gone and the new ones missing. On error the old rules stay.
    /// The netdev table and the queue tables are each replaced in their own transaction;
    /// if the second fails, the new netdev rules stay and the old queue rules too.
    pub fn update(&mut self, spec: SteeringSpec) -> Result<(), SteerError> {
        let script = render_script(&self.table, &spec)?;
        run_nft(&["-f", "-"], Some(&script))?;
        let queue_changed = spec.marks != self.spec.marks || spec.queue != self.spec.queue;
        let result = if queue_changed { queue_rules::replace(&self.table, &spec.marks, spec.queue) } else { Ok(()) };
        let old = std::mem::replace(&mut self.spec, spec);
        if result.is_err() {
            self.spec.marks = old.marks;
            self.spec.queue = old.queue;
        }
        self.installed = true;
        result
    }

    /// The queue tables (`ip` and `ip6`) as `nft list table` prints them; empty for a
    /// family without marks.
    pub fn list_queue_rules(&self) -> Result<String, SteerError> {
        let mut text = String::new();
        for family in ["ip", "ip6"] {
            if self.spec.marks.iter().any(|m| (m.family == Family::V4) == (family == "ip")) {
                text.push_str(&run_nft(&["list", "table", family, &self.table], None)?);
            }
        }
        Ok(text)
    }

    /// The table as `nft list table` prints it (rules with their counters).
    pub fn list(&self) -> Result<String, SteerError> {
        run_nft(&["list", "table", "netdev", &self.table], None)
    }

    /// Total packets dropped by the rules so far (sum of the rule counters).
    pub fn dropped_packets(&self) -> Result<u64, SteerError> {
        Ok(sum_counter_packets(&self.list()?))
    }

    /// Removes the table now (dropping does the same, but can only log a failure).
    pub fn remove(mut self) -> Result<(), SteerError> {
        self.installed = false;
        delete_table(&self.table)
    }
}

impl Drop for Steering {
    fn drop(&mut self) {
        if self.installed
            && let Err(err) = delete_table(&self.table)
        {
            tracing::warn!(table = %self.table, %err, "removing steering table");
        }
    }
}

/// Families of the tables rvs creates under one name.
const FAMILIES: [&str; 3] = ["netdev", "ip", "ip6"];

fn delete_table(table: &str) -> Result<(), SteerError> {
    check_table_name(table)?;
    // Adding first makes the delete succeed whether or not the table is still there.
    let script: String =
        FAMILIES.iter().map(|family| format!("add table {family} {table}\ndelete table {family} {table}\n")).collect();
    run_nft(&["-f", "-"], Some(&script)).map(|_| ())
}

/// Sums the `packets N` fields of `counter` statements in `nft list` output.
pub fn sum_counter_packets(listing: &str) -> u64 {
    let mut total = 0u64;
    for line in listing.lines() {
        let mut words = line.split_whitespace();
        while let Some(word) = words.next() {
            if word == "packets"
                && let Some(n) = words.next().and_then(|n| n.parse::<u64>().ok())
            {
                total = total.saturating_add(n);
            }
        }
    }
    total
}

/// Deletes the tables (`netdev`, and the `ip`/`ip6` queue tables) named `rvs_<pid>` whose
/// process no longer exists (leftovers of daemons that died without cleaning up). Returns
/// the names removed.
pub fn remove_stale() -> Result<Vec<String>, SteerError> {
    let listing = run_nft(&["list", "tables"], None)?;
    let mut removed: Vec<String> = Vec::new();
    for line in listing.lines() {
        let mut words = line.split_whitespace();
        let (Some("table"), Some(family), Some(name)) = (words.next(), words.next(), words.next()) else {
            continue;
        };
        if !FAMILIES.contains(&family) || removed.iter().any(|r| r == name) {
            continue;
        }
        let Some(pid) = name.strip_prefix(TABLE_PREFIX).and_then(|pid| pid.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        delete_table(name)?;
        removed.push(name.to_owned());
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn spec() -> SteeringSpec {
        SteeringSpec {
            interfaces: vec!["eth0".into(), "eth1".into(), "eth0".into()],
            services: vec![
                SteeredService { protocol: Protocol::Tcp, addr: IpAddr::V4(Ipv4Addr::new(198, 18, 100, 1)), port: 80 },
                SteeredService {
                    protocol: Protocol::Udp,
                    addr: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0x100, 0, 0, 0, 1)),
                    port: 0,
                },
            ],
            nat_real_servers: vec![SteeredRealServer {
                protocol: Protocol::Tcp,
                addr: IpAddr::V4(Ipv4Addr::new(198, 18, 3, 21)),
                port: 80,
            }],
            local_addrs: vec![
                IpAddr::V4(Ipv4Addr::new(198, 18, 3, 2)),
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 3, 0, 0, 0, 2)),
            ],
            marks: vec![SteeredMark { family: Family::V4, mark: 1 }],
            queue: 3,
        }
    }

    #[test]
    fn script_replaces_the_table_with_one_chain_per_interface() {
        let script = render_script("rvs_42", &spec()).unwrap();
        assert!(script.starts_with("add table netdev rvs_42\ndelete table netdev rvs_42\ntable netdev rvs_42 {\n"));
        // eth0 listed twice: two chains, not three.
        assert_eq!(script.matches("type filter hook ingress").count(), 2);
        assert!(script.contains("device \"eth0\""));
        assert!(script.contains("device \"eth1\""));
        assert!(script.contains("ip daddr 198.18.100.1 tcp dport 80 counter drop"));
        assert!(script.contains("ip6 daddr fd00:0:0:100::1 meta l4proto udp counter drop"));
        // Replies to the director's own IPv4 address are exempt; the IPv6 local address
        // does not appear in an IPv4 rule.
        assert!(script.contains("ip saddr 198.18.3.21 tcp sport 80 ip daddr != { 198.18.3.2 } counter drop"));
    }

    #[test]
    fn names_that_could_inject_nft_syntax_are_refused() {
        let mut bad = spec();
        bad.interfaces = vec!["eth0\"; flush ruleset".into()];
        assert!(matches!(render_script("rvs_1", &bad), Err(SteerError::Invalid(_))));
        assert!(render_script("rvs 1", &spec()).is_err());
        assert!(render_script("1rvs", &spec()).is_err());
    }

    #[test]
    fn counters_are_summed_from_a_listing() {
        let listing = "table netdev t {\n chain c {\n  ip daddr 1.2.3.4 tcp dport 80 counter packets 3 bytes 180 drop\n  \
                       ip saddr 5.6.7.8 counter packets 4 bytes 1 drop\n }\n}\n";
        assert_eq!(sum_counter_packets(listing), 7);
    }
}
