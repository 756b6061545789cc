//! Real-server host setup for the LVS forwarding methods, the part the seed
//! guides do by hand on every real server: for DR and TUN the VIP goes on the
//! loopback device (as /32 and /128) so the server accepts packets addressed
//! to it and answers from it, and the ARP sysctls keep the server from
//! answering or advertising the VIP on the shared segment:
//! `arp_ignore = 1` (reply only for addresses on the receiving interface) and
//! `arp_announce = 2` (use the best local address as ARP source), set on `all`,
//! `lo` and the uplinks because the kernel applies the larger of `all` and the
//! interface's value. TUN also turns the reverse-path filter off, since the
//! decapsulated packets carry client source addresses. NAT needs nothing here
//! (only the director as default gateway, which is a routing matter).
//!
//! This kernel has no ipip module, so for TUN the VIP also sits on lo and the
//! decapsulation is left to a user-space or tc decapsulator.
//!
//! Used by the lab for its real-server namespaces and, later, by
//! `rvs realserver` on a real host (`netns = None`).

use std::net::IpAddr;

use crate::cmd;
use crate::error::{LabError, Result};
use crate::netns;
use crate::spec::Method;

/// What one real server needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServerConfig {
    /// Forwarding method the director uses towards this server.
    pub method: Method,
    /// The virtual addresses it serves (IPv4 and/or IPv6).
    pub vips: Vec<IpAddr>,
    /// Interfaces facing the director's segment (their ARP sysctls are set too).
    pub uplinks: Vec<String>,
}

/// One change the setup makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write `value` to /proc/sys/`key`.
    Sysctl {
        /// Key as a path below /proc/sys (`net/ipv4/conf/all/arp_ignore`).
        key: String,
        /// The value written.
        value: String,
    },
    /// Put a VIP on the loopback device as a host address (/32 or /128).
    VipOnLoopback(IpAddr),
}

impl RealServerConfig {
    /// The changes, in the order they are applied (sysctls before addresses,
    /// so the VIP is never announced in between).
    pub fn steps(&self) -> Vec<Step> {
        let mut steps = Vec::new();
        if self.method == Method::Nat {
            return steps;
        }
        let mut devices: Vec<&str> = vec!["all", "lo"];
        devices.extend(self.uplinks.iter().map(String::as_str));
        let mut sysctl = |key: String, value: &str| steps.push(Step::Sysctl { key, value: value.to_owned() });
        for device in &devices {
            sysctl(format!("net/ipv4/conf/{device}/arp_ignore"), "1");
            sysctl(format!("net/ipv4/conf/{device}/arp_announce"), "2");
        }
        if self.method == Method::Tun {
            sysctl("net/ipv4/conf/default/rp_filter".to_owned(), "0");
            for device in &devices {
                sysctl(format!("net/ipv4/conf/{device}/rp_filter"), "0");
            }
        }
        steps.extend(self.vips.iter().map(|vip| Step::VipOnLoopback(*vip)));
        steps
    }

    /// Applies the setup in namespace `netns`, or in the caller's own
    /// namespace when `None`. Idempotent.
    pub fn apply(&self, netns: Option<&str>) -> Result<()> {
        let steps = self.steps();
        let sysctls: Vec<(String, String)> = steps
            .iter()
            .filter_map(|step| match step {
                Step::Sysctl { key, value } => Some((key.clone(), value.clone())),
                Step::VipOnLoopback(_) => None,
            })
            .collect();
        match netns {
            Some(name) => netns::write_sysctls(name, &sysctls)?,
            None => netns::write_sysctls_here(&sysctls)?,
        }
        for step in &steps {
            if let Step::VipOnLoopback(vip) = step {
                let prefix = host_prefix(vip);
                let address = format!("{vip}/{prefix}");
                let mut args: Vec<&str> = Vec::new();
                if let Some(name) = netns {
                    args.extend(["-n", name]);
                }
                args.extend(["addr", "replace", &address, "dev", "lo"]);
                cmd::run("ip", &args)?;
            }
        }
        Ok(())
    }

    /// Compares the host with the setup; returns one line per difference
    /// (empty when everything is in place).
    pub fn check(&self, netns: Option<&str>) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        let mut args: Vec<&str> = Vec::new();
        if let Some(name) = netns {
            args.extend(["-n", name]);
        }
        args.extend(["-o", "addr", "show", "dev", "lo"]);
        let loopback = cmd::run("ip", &args)?;
        for step in self.steps() {
            match step {
                Step::Sysctl { key, value } => {
                    let current = match netns {
                        Some(name) => netns::read_sysctl(name, &key)?,
                        None => {
                            let path = netns::sysctl_path(&key);
                            std::fs::read_to_string(&path)
                                .map(|text| text.trim().to_owned())
                                .map_err(|e| LabError::io(format!("reading {}", path.display()), e))?
                        }
                    };
                    if current != value {
                        problems.push(format!("{key} is {current}, want {value}"));
                    }
                }
                Step::VipOnLoopback(vip) => {
                    let wanted = format!(" {vip}/{} ", host_prefix(&vip));
                    if !loopback.contains(&wanted) {
                        problems.push(format!("VIP {vip} is not on lo"));
                    }
                }
            }
        }
        Ok(problems)
    }
}

fn host_prefix(addr: &IpAddr) -> u8 {
    if addr.is_ipv4() { 32 } else { 128 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(method: Method) -> RealServerConfig {
        RealServerConfig {
            method,
            vips: vec!["198.18.100.1".parse().unwrap(), "fd00:0:0:100::1".parse().unwrap()],
            uplinks: vec!["eth0".to_owned()],
        }
    }

    fn sysctl(steps: &[Step], key: &str) -> Option<String> {
        steps.iter().find_map(|step| match step {
            Step::Sysctl { key: k, value } if k == key => Some(value.clone()),
            _ => None,
        })
    }

    #[test]
    fn dr_sets_arp_sysctls_on_all_lo_and_uplinks_then_vips() {
        let steps = config(Method::Dr).steps();
        for device in ["all", "lo", "eth0"] {
            assert_eq!(sysctl(&steps, &format!("net/ipv4/conf/{device}/arp_ignore")).as_deref(), Some("1"));
            assert_eq!(sysctl(&steps, &format!("net/ipv4/conf/{device}/arp_announce")).as_deref(), Some("2"));
        }
        assert_eq!(sysctl(&steps, "net/ipv4/conf/all/rp_filter"), None);
        // The VIPs come last, after every sysctl.
        let first_vip = steps.iter().position(|s| matches!(s, Step::VipOnLoopback(_))).unwrap();
        assert!(steps[..first_vip].iter().all(|s| matches!(s, Step::Sysctl { .. })));
        assert_eq!(steps.len() - first_vip, 2);
    }

    #[test]
    fn tun_also_disables_reverse_path_filter() {
        let steps = config(Method::Tun).steps();
        for device in ["all", "default", "lo", "eth0"] {
            assert_eq!(sysctl(&steps, &format!("net/ipv4/conf/{device}/rp_filter")).as_deref(), Some("0"));
        }
        assert_eq!(sysctl(&steps, "net/ipv4/conf/all/arp_ignore").as_deref(), Some("1"));
    }

    #[test]
    fn nat_needs_no_host_changes() {
        assert!(config(Method::Nat).steps().is_empty());
    }

    #[test]
    fn vips_are_host_routes() {
        assert_eq!(host_prefix(&"198.18.100.1".parse().unwrap()), 32);
        assert_eq!(host_prefix(&"fd00::1".parse().unwrap()), 128);
    }
}
