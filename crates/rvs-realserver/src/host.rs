//! The machine being configured: the caller's own network namespace or a
//! named one (`ip netns`). Reads and writes sysctls, runs `ip` there, and
//! answers the questions setup and check ask (addresses on lo, default
//! routes, links, whether a process is alive).

use std::net::IpAddr;
use std::path::Path;

use rvs_lab::cmd::{self, CommandOutput};
use rvs_lab::netns;

use crate::error::{RealServerError, Result};

/// Where settings are read and written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Host {
    netns: Option<String>,
}

/// One address as `ip -o addr` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddr {
    /// Interface holding it.
    pub dev: String,
    /// The address.
    pub addr: IpAddr,
    /// Its prefix length.
    pub prefix: u8,
}

impl Host {
    /// The caller's own namespace (`None`) or a named one.
    pub fn new(netns: Option<String>) -> Host {
        Host { netns }
    }

    /// The named namespace, if any.
    pub fn netns(&self) -> Option<&str> {
        self.netns.as_deref()
    }

    /// Reads a sysctl (`net/ipv4/conf/all/arp_ignore`); `None` if it does not
    /// exist (for instance the interface is missing).
    pub fn read_sysctl(&self, key: &str) -> Result<Option<String>> {
        let path = netns::sysctl_path(key);
        let read = move || -> rvs_lab::Result<Option<String>> {
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok(Some(text.trim().to_owned())),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(rvs_lab::LabError::Io { context: format!("reading {}", path.display()), source }),
            }
        };
        Ok(match &self.netns {
            Some(name) => netns::run_in(name, read)?,
            None => read()?,
        })
    }

    /// Reads a sysctl that holds a number; `None` if missing or not a number.
    pub fn read_sysctl_number(&self, key: &str) -> Result<Option<i64>> {
        Ok(self.read_sysctl(key)?.and_then(|text| text.parse().ok()))
    }

    /// Writes sysctls in order.
    pub fn write_sysctls(&self, settings: &[(String, String)]) -> Result<()> {
        match &self.netns {
            Some(name) => netns::write_sysctls(name, settings)?,
            None => netns::write_sysctls_here(settings)?,
        }
        Ok(())
    }

    fn ip_args<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        let mut full: Vec<&str> = Vec::new();
        if let Some(name) = &self.netns {
            full.extend(["-n", name.as_str()]);
        }
        full.extend_from_slice(args);
        full
    }

    /// Runs `ip [-n netns] args...`; fails unless it exits 0.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        Ok(cmd::run("ip", &self.ip_args(args))?)
    }

    /// Runs `ip [-n netns] args...` and returns its output whatever the status.
    pub fn ip_raw(&self, args: &[&str]) -> Result<CommandOutput> {
        Ok(cmd::run_raw("ip", &self.ip_args(args), None, cmd::DEFAULT_TIMEOUT)?)
    }

    /// Every address of every interface.
    pub fn addresses(&self) -> Result<Vec<HostAddr>> {
        Ok(parse_addresses(&self.ip(&["-o", "addr", "show"])?))
    }

    /// The default routes of one family, one `ip route` line each.
    pub fn default_routes(&self, v6: bool) -> Result<Vec<String>> {
        let family = if v6 { "-6" } else { "-4" };
        let text = self.ip(&[family, "-o", "route", "show", "default"])?;
        Ok(text.lines().map(str::trim).filter(|line| !line.is_empty()).map(str::to_owned).collect())
    }

    /// Interfaces the default routes leave by (the uplinks), without duplicates.
    pub fn default_route_devices(&self) -> Result<Vec<String>> {
        let mut devices: Vec<String> = Vec::new();
        for v6 in [false, true] {
            for line in self.default_routes(v6)? {
                if let Some(dev) = route_field(&line, "dev")
                    && dev != "lo"
                    && !devices.iter().any(|known| known == dev)
                {
                    devices.push(dev.to_owned());
                }
            }
        }
        Ok(devices)
    }

    /// Whether an interface exists, and whether it is administratively up.
    pub fn link_state(&self, dev: &str) -> Result<Option<bool>> {
        let output = self.ip_raw(&["-o", "link", "show", "dev", dev])?;
        if !output.status.success() {
            return Ok(None);
        }
        let flags = output.stdout.split('<').nth(1).and_then(|rest| rest.split('>').next()).unwrap_or("");
        Ok(Some(flags.split(',').any(|flag| flag == "UP")))
    }
}

/// The word after `key` in an `ip route` line (`dev eth0` -> `eth0`).
pub fn route_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let mut words = line.split_whitespace();
    while let Some(word) = words.next() {
        if word == key {
            return words.next();
        }
    }
    None
}

/// Parses `ip -o addr show` output.
fn parse_addresses(text: &str) -> Vec<HostAddr> {
    let mut found = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let Some(dev) = words.get(1) else { continue };
        let dev = dev.split('@').next().unwrap_or(dev);
        for pair in words.windows(2) {
            let [kind, value] = pair else { continue };
            if *kind != "inet" && *kind != "inet6" {
                continue;
            }
            let (addr, prefix) = value.split_once('/').unwrap_or((value, ""));
            if let (Ok(addr), Ok(prefix)) = (addr.parse::<IpAddr>(), prefix.parse::<u8>()) {
                found.push(HostAddr { dev: dev.to_owned(), addr, prefix });
            }
        }
    }
    found
}

/// Host prefix length of an address (/32 or /128).
pub fn host_prefix(addr: &IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

/// Whether process `pid` exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    let stat = match std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")) {
        Ok(stat) => stat,
        Err(_) => return false,
    };
    // The state letter follows the parenthesised command name.
    let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start()).and_then(|rest| rest.chars().next());
    !matches!(state, Some('Z' | 'X') | None)
}

/// Human form of a sysctl key: dotted when the interface name has no dot.
pub fn sysctl_display(key: &str) -> String {
    if key.contains('.') { format!("/proc/sys/{key}") } else { key.replace('/', ".") }
}

/// The shell command that sets a sysctl.
pub fn sysctl_fix(key: &str, value: &str) -> String {
    if key.contains('.') {
        format!("echo {value} > /proc/sys/{key}")
    } else {
        format!("sysctl -w {}={value}", key.replace('/', "."))
    }
}

/// Error for an unusable request.
pub fn invalid(message: impl Into<String>) -> RealServerError {
    RealServerError::Invalid(message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_parsed_from_ip_one_line_output() {
        let text = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever\n\
                    1: lo    inet 198.18.100.1/32 scope global lo\\       valid_lft forever\n\
                    2: eth0@if3    inet6 fd00:0:0:2::21/64 scope global \\       valid_lft forever\n";
        let found = parse_addresses(text);
        assert_eq!(found.len(), 3);
        assert_eq!(found[1], HostAddr { dev: "lo".into(), addr: "198.18.100.1".parse().unwrap(), prefix: 32 });
        assert_eq!(found[2].dev, "eth0");
        assert_eq!(found[2].prefix, 64);
    }

    #[test]
    fn route_fields_are_found_by_keyword() {
        let line = "default via 198.18.2.1 dev eth0 proto static metric 5";
        assert_eq!(route_field(line, "via"), Some("198.18.2.1"));
        assert_eq!(route_field(line, "dev"), Some("eth0"));
        assert_eq!(route_field(line, "src"), None);
    }

    #[test]
    fn sysctl_keys_render_for_humans() {
        assert_eq!(sysctl_display("net/ipv4/conf/all/arp_ignore"), "net.ipv4.conf.all.arp_ignore");
        assert_eq!(sysctl_fix("net/ipv4/conf/eth0/arp_ignore", "1"), "sysctl -w net.ipv4.conf.eth0.arp_ignore=1");
        // A VLAN interface name has a dot: the /proc path form stays unambiguous.
        assert_eq!(
            sysctl_fix("net/ipv4/conf/eth0.5/rp_filter", "0"),
            "echo 0 > /proc/sys/net/ipv4/conf/eth0.5/rp_filter"
        );
    }

    #[test]
    fn this_process_is_alive() {
        assert!(process_alive(std::process::id()));
    }
}
