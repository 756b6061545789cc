//! The host side of address ownership: adding and removing the virtual addresses with
//! `ip -batch` (one process for all of them), and finding an interface's primary address.

use std::io::{self, Write};
use std::net::IpAddr;
use std::process::{Command, Stdio};

/// One address on one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddr {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
    /// Interface.
    pub dev: String,
}

/// The `ip -batch` lines that add (or delete) `addrs`. IPv6 addresses skip duplicate address
/// detection so they are usable at once.
pub fn batch(addrs: &[HostAddr], add: bool) -> String {
    let mut out = String::new();
    for a in addrs {
        let verb = if add { "add" } else { "del" };
        let nodad = if add && a.addr.is_ipv6() { " nodad" } else { "" };
        out.push_str(&format!("address {verb} {}/{} dev {}{nodad}\n", a.addr, a.prefix, a.dev));
    }
    out
}

/// Adds or removes `addrs`. Errors of single lines (an address already present, or absent)
/// are expected and ignored (`-force`); only failing to run `ip` is an error.
pub fn apply(addrs: &[HostAddr], add: bool) -> io::Result<()> {
    if addrs.is_empty() {
        return Ok(());
    }
    let mut child = Command::new("ip")
        .args(["-force", "-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(batch(addrs, add).as_bytes())?;
    }
    child.wait()?;
    Ok(())
}

/// The first address of `dev` in the family (IPv6: the link-local one, as RFC 5798 wants for
/// the advert source; IPv4: the first global one), skipping `exclude` (the virtual addresses).
pub fn primary_address(dev: &str, ipv6: bool, exclude: &[IpAddr]) -> io::Result<Option<IpAddr>> {
    let family = if ipv6 { "-6" } else { "-4" };
    let out = Command::new("ip").args(["-o", family, "addr", "show", "dev", dev]).output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!("ip addr show dev {dev}: {}", String::from_utf8_lossy(&out.stderr))));
    }
    Ok(parse_primary(&String::from_utf8_lossy(&out.stdout), ipv6, exclude))
}

/// Picks the primary address from `ip -o addr show` output.
pub fn parse_primary(text: &str, ipv6: bool, exclude: &[IpAddr]) -> Option<IpAddr> {
    let addrs: Vec<(IpAddr, bool)> = text
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            words.find(|w| *w == "inet" || *w == "inet6")?;
            let addr: IpAddr = words.next()?.split('/').next()?.parse().ok()?;
            let link_scope = line.contains("scope link");
            Some((addr, link_scope))
        })
        .filter(|(a, _)| !exclude.contains(a))
        .collect();
    if ipv6 {
        addrs.iter().find(|(_, link)| *link).or(addrs.first()).map(|(a, _)| *a)
    } else {
        addrs.iter().find(|(_, link)| !*link).or(addrs.first()).map(|(a, _)| *a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_lines_are_ip_commands() {
        let a = [
            HostAddr { addr: "198.18.2.10".parse().unwrap(), prefix: 24, dev: "eth0".into() },
            HostAddr { addr: "fd00::10".parse().unwrap(), prefix: 64, dev: "eth0".into() },
        ];
        assert_eq!(batch(&a, true), "address add 198.18.2.10/24 dev eth0\naddress add fd00::10/64 dev eth0 nodad\n");
        assert_eq!(batch(&a, false), "address del 198.18.2.10/24 dev eth0\naddress del fd00::10/64 dev eth0\n");
    }

    #[test]
    fn primary_skips_virtual_addresses_and_prefers_link_local_for_ipv6() {
        let v4 = "2: eth0    inet 198.18.2.10/24 scope global eth0\\       valid_lft forever\n\
                  2: eth0    inet 198.18.2.11/24 scope global eth0\\       valid_lft forever\n";
        let vip: IpAddr = "198.18.2.10".parse().unwrap();
        assert_eq!(parse_primary(v4, false, &[vip]), Some("198.18.2.11".parse().unwrap()));
        let v6 = "2: eth0    inet6 fd00:0:0:2::11/64 scope global \\       valid_lft forever\n\
                  2: eth0    inet6 fe80::1/64 scope link \\       valid_lft forever\n";
        assert_eq!(parse_primary(v6, true, &[]), Some("fe80::1".parse().unwrap()));
        assert_eq!(parse_primary("", true, &[]), None);
    }
}
