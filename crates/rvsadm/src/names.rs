//! Host and service names: forward lookups for the command line (`-t www:http`) and
//! reverse lookups for non-numeric listings (`-L` without `-n`), plus the C address
//! parsers and printers (`inet_aton`, `inet_ntop`) whose exact behaviour ipvsadm inherits.
//!
//! [`SystemNames`] resolves host names forward with the system resolver (std's
//! `ToSocketAddrs`, i.e. `getaddrinfo`), ports through `/etc/services`, and addresses
//! backwards through `/etc/hosts` only: std has no `getnameinfo`, so an address that
//! `/etc/hosts` does not name is printed numerically (ipvsadm would also ask DNS).

use std::cell::OnceCell;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, ToSocketAddrs};
use std::path::PathBuf;

use rvs_api::Proto;

/// Name lookups used by the parser and the listings.
pub trait Names {
    /// The first IPv4 address of a host name (`gethostbyname`).
    fn host_v4(&self, name: &str) -> Option<Ipv4Addr>;
    /// The port of a service name for a protocol (`getservbyname`).
    fn port_by_name(&self, name: &str, proto: Proto) -> Option<u16>;
    /// The name of an address (`gethostbyaddr`).
    fn host_by_addr(&self, addr: IpAddr) -> Option<String>;
    /// The name of a port for a protocol (`getservbyport`).
    fn service_by_port(&self, port: u16, proto: Proto) -> Option<String>;
}

/// One `/etc/services` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ServiceEntry {
    name: String,
    aliases: Vec<String>,
    port: u16,
    proto: String,
}

/// One `/etc/hosts` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostEntry {
    addr: IpAddr,
    name: String,
}

/// The system's resolver plus `/etc/services` and `/etc/hosts` (paths replaceable for tests).
pub struct SystemNames {
    services_path: PathBuf,
    hosts_path: PathBuf,
    services: OnceCell<Vec<ServiceEntry>>,
    hosts: OnceCell<Vec<HostEntry>>,
}

impl Default for SystemNames {
    fn default() -> Self {
        SystemNames::with_files("/etc/services", "/etc/hosts")
    }
}

impl SystemNames {
    /// Lookups reading the given services and hosts files.
    pub fn with_files(services: impl Into<PathBuf>, hosts: impl Into<PathBuf>) -> SystemNames {
        SystemNames {
            services_path: services.into(),
            hosts_path: hosts.into(),
            services: OnceCell::new(),
            hosts: OnceCell::new(),
        }
    }

    fn services(&self) -> &[ServiceEntry] {
        self.services.get_or_init(|| parse_services(&std::fs::read_to_string(&self.services_path).unwrap_or_default()))
    }

    fn hosts(&self) -> &[HostEntry] {
        self.hosts.get_or_init(|| parse_hosts(&std::fs::read_to_string(&self.hosts_path).unwrap_or_default()))
    }
}

fn proto_key(proto: Proto) -> &'static str {
    match proto {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
        Proto::Sctp => "sctp",
    }
}

impl Names for SystemNames {
    fn host_v4(&self, name: &str) -> Option<Ipv4Addr> {
        if name.is_empty() {
            return None;
        }
        let addrs = (name, 0u16).to_socket_addrs().ok()?;
        addrs.into_iter().find_map(|a| match a.ip() {
            IpAddr::V4(v4) => Some(v4),
            IpAddr::V6(_) => None,
        })
    }

    fn port_by_name(&self, name: &str, proto: Proto) -> Option<u16> {
        let key = proto_key(proto);
        self.services()
            .iter()
            .find(|e| e.proto == key && (e.name == name || e.aliases.iter().any(|a| a == name)))
            .map(|e| e.port)
    }

    fn host_by_addr(&self, addr: IpAddr) -> Option<String> {
        self.hosts().iter().find(|h| h.addr == addr).map(|h| h.name.clone())
    }

    fn service_by_port(&self, port: u16, proto: Proto) -> Option<String> {
        let key = proto_key(proto);
        self.services().iter().find(|e| e.proto == key && e.port == port).map(|e| e.name.clone())
    }
}

/// Only numbers: no lookups at all (what `-n` would give, used by tests and `--json`).
pub struct NumericNames;

impl Names for NumericNames {
    fn host_v4(&self, _name: &str) -> Option<Ipv4Addr> {
        None
    }
    fn port_by_name(&self, _name: &str, _proto: Proto) -> Option<u16> {
        None
    }
    fn host_by_addr(&self, _addr: IpAddr) -> Option<String> {
        None
    }
    fn service_by_port(&self, _port: u16, _proto: Proto) -> Option<String> {
        None
    }
}

fn strip_comment(line: &str) -> &str {
    line.split('#').next().unwrap_or("")
}

fn parse_services(text: &str) -> Vec<ServiceEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = strip_comment(line).split_whitespace();
        let (Some(name), Some(port_proto)) = (words.next(), words.next()) else { continue };
        let Some((port, proto)) = port_proto.split_once('/') else { continue };
        let Ok(port) = port.parse::<u16>() else { continue };
        out.push(ServiceEntry {
            name: name.to_string(),
            aliases: words.map(str::to_string).collect(),
            port,
            proto: proto.to_ascii_lowercase(),
        });
    }
    out
}

fn parse_hosts(text: &str) -> Vec<HostEntry> {
    let mut out = Vec::new();
    for line in text.lines() {
        let mut words = strip_comment(line).split_whitespace();
        let (Some(addr), Some(name)) = (words.next(), words.next()) else { continue };
        let Ok(addr) = addr.parse::<IpAddr>() else { continue };
        out.push(HostEntry { addr, name: name.to_string() });
    }
    out
}

/// C's `inet_aton`: one to four parts separated by dots, each decimal, octal (leading 0)
/// or hexadecimal (leading 0x); the last part fills the remaining bytes. Anything after
/// white space is ignored, as glibc does.
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let text = match s.find(|c: char| c.is_ascii_whitespace()) {
        Some(i) => s.get(..i)?,
        None => s,
    };
    let parts: Vec<&str> = text.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(parts.len());
    for part in &parts {
        values.push(parse_c_number(part)?);
    }
    let (last, leading) = values.split_last()?;
    let mut addr: u64 = 0;
    for (i, v) in leading.iter().enumerate() {
        if *v > 0xff {
            return None;
        }
        addr |= v << (24 - 8 * i);
    }
    let last_bits = 32 - 8 * leading.len();
    if *last >= (1u64 << last_bits) {
        return None;
    }
    addr |= last;
    u32::try_from(addr).ok().map(Ipv4Addr::from)
}

/// One `inet_aton` part: decimal, 0-prefixed octal or 0x-prefixed hex; at most 32 bits.
fn parse_c_number(part: &str) -> Option<u64> {
    if !part.as_bytes().first()?.is_ascii_digit() {
        return None;
    }
    let (digits, radix) = if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
        (hex, 16)
    } else if part.len() > 1 && part.starts_with('0') {
        (part.get(1..)?, 8)
    } else {
        (part, 10)
    };
    if digits.is_empty() {
        return Some(0);
    }
    let v = u64::from_str_radix(digits, radix).ok()?;
    (v <= u64::from(u32::MAX)).then_some(v)
}

/// glibc's `inet_ntop(AF_INET6)`: the longest run (first on ties) of two or more zero
/// groups becomes `::`; an address whose first 96 bits are zero (except `::` and `::1`-like
/// forms where fewer than 6 leading groups are the run) or that is IPv4-mapped ends in a
/// dotted quad.
pub fn ntop6(addr: &Ipv6Addr) -> String {
    let words = addr.segments();
    // Longest run of zero words.
    let (mut best_base, mut best_len) = (None::<usize>, 0usize);
    let mut i = 0;
    while i < 8 {
        if words[i] == 0 {
            let start = i;
            while i < 8 && words[i] == 0 {
                i += 1;
            }
            let len = i - start;
            if len > best_len {
                best_base = Some(start);
                best_len = len;
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best_base = None;
    }
    let mut out = String::new();
    let mut i = 0;
    while i < 8 {
        if let Some(base) = best_base
            && i >= base
            && i < base + best_len
        {
            if i == base {
                out.push(':');
            }
            i += 1;
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        let embedded_v4 = i == 6 && best_base == Some(0) && (best_len == 6 || (best_len == 5 && words[5] == 0xffff));
        if embedded_v4 {
            let o = addr.octets();
            out.push_str(&format!("{}.{}.{}.{}", o[12], o[13], o[14], o[15]));
            return out;
        }
        out.push_str(&format!("{:x}", words[i]));
        i += 1;
    }
    if best_base.is_some_and(|b| b + best_len == 8) {
        out.push(':');
    }
    out
}

/// An address as `inet_ntop` prints it.
pub fn ntop(addr: &IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => ntop6(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_aton_accepts_the_classic_shorthands() {
        assert_eq!(inet_aton("192.168.1.1"), Some(Ipv4Addr::new(192, 168, 1, 1)));
        assert_eq!(inet_aton("10.1"), Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(inet_aton("10.1.2"), Some(Ipv4Addr::new(10, 1, 0, 2)));
        assert_eq!(inet_aton("0x0a.010.0.1"), Some(Ipv4Addr::new(10, 8, 0, 1)));
        assert_eq!(inet_aton("3232235777"), Some(Ipv4Addr::new(192, 168, 1, 1)));
        assert_eq!(inet_aton("64"), Some(Ipv4Addr::new(0, 0, 0, 64)));
        assert_eq!(inet_aton("1.2.3.4 junk"), Some(Ipv4Addr::new(1, 2, 3, 4)));
        assert_eq!(inet_aton("256.1.1.1"), None);
        assert_eq!(inet_aton("1..2"), None);
        assert_eq!(inet_aton("08"), None);
        assert_eq!(inet_aton("www"), None);
        assert_eq!(inet_aton(""), None);
    }

    #[test]
    fn ntop6_matches_glibc() {
        let p = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert_eq!(ntop6(&p("2001:db8::5")), "2001:db8::5");
        assert_eq!(ntop6(&p("::")), "::");
        assert_eq!(ntop6(&p("::1")), "::1");
        assert_eq!(ntop6(&p("fe80::")), "fe80::");
        // A single zero group is not compressed.
        assert_eq!(ntop6(&p("2001:db8:0:1:1:1:1:1")), "2001:db8:0:1:1:1:1:1");
        // First of two equal runs wins.
        assert_eq!(ntop6(&p("1:0:0:2:0:0:3:4")), "1::2:0:0:3:4");
        assert_eq!(ntop6(&p("::ffff:1.2.3.4")), "::ffff:1.2.3.4");
        // IPv4-compatible form (first 96 bits zero, word 6 non-zero).
        assert_eq!(ntop6(&p("::102:304")), "::1.2.3.4");
    }

    #[test]
    fn services_and_hosts_files_are_read() {
        let services = parse_services("http 80/tcp www # web\nhttp 80/udp\ndomain 53/udp\n# c\nbad line\n");
        assert_eq!(services.len(), 3);
        assert_eq!(services[0].aliases, vec!["www".to_string()]);
        let hosts = parse_hosts("127.0.0.1 localhost lh\n::1 ip6-localhost\nnot-an-ip x\n");
        assert_eq!(hosts.len(), 2);
        assert_eq!(hosts[0].name, "localhost");
    }
}
