//! Listings, byte for byte as ipvsadm prints them: the service table views, the save
//! format, the connection table, timeouts and sync daemons.

pub mod conns;
pub mod misc;
pub mod save;
pub mod table;

use std::net::IpAddr;

use rvs_api::{NetmaskSpec, Proto, ServiceId};

use crate::names::{Names, ntop};

/// ipvsadm formats `addr:port` into a 60-byte buffer; longer text is cut at 59 bytes.
const ADDRPORT_MAX: usize = 59;

/// The longest prefix of at most `max` bytes ending on a character boundary.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// ipvsadm's `addrport_to_anyname`: `a.b.c.d:port` / `[v6]:port`, with names unless numeric
/// (the port named for `proto`; no protocol means always numeric).
pub fn addrport(addr: &IpAddr, port: u16, proto: Option<Proto>, numeric: bool, names: &dyn Names) -> String {
    let (open, close) = if addr.is_ipv4() { ("", "") } else { ("[", "]") };
    let text = if numeric {
        format!("{open}{}{close}:{port}", ntop(addr))
    } else {
        let host = names.host_by_addr(*addr).unwrap_or_else(|| ntop(addr));
        let service = proto.and_then(|p| names.service_by_port(port, p)).unwrap_or_else(|| port.to_string());
        format!("{open}{host}{close}:{service}")
    };
    cut(&text, ADDRPORT_MAX).to_string()
}

/// True for IPv6 services (fwmark services with `-6` included).
pub(crate) fn service_is_v6(id: &ServiceId) -> bool {
    match id {
        ServiceId::Addr { addr, .. } => addr.is_ipv6(),
        ServiceId::Fwmark { ipv6, .. } => *ipv6,
    }
}

/// The protocol used to name ports of a service (fwmark services are TCP inside ipvsadm).
pub(crate) fn service_proto(id: &ServiceId) -> Proto {
    match id {
        ServiceId::Addr { protocol, .. } => *protocol,
        ServiceId::Fwmark { .. } => Proto::Tcp,
    }
}

/// The persistence mask text if it is not the host mask: dotted for IPv4 services, a prefix
/// length for IPv6 ones.
pub(crate) fn mask_text(v6_service: bool, mask: &NetmaskSpec) -> Option<String> {
    match (v6_service, mask) {
        (false, NetmaskSpec::V4(m)) if u32::from(*m) != u32::MAX => Some(m.to_string()),
        (true, NetmaskSpec::V6(p)) if *p != 128 => Some(p.to_string()),
        _ => None,
    }
}
