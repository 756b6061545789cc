//! `-S`: the rules as `-A`/`-a` lines that `-R` reads back. Thresholds, timeouts and
//! daemons are not saved (as in ipvsadm); tunnel servers name their tunnel type.

use rvs_api::{MethodSpec, Proto, ServiceId, ServiceInfo, Table};

use super::{addrport, mask_text, service_is_v6, service_proto};
use crate::names::Names;
use crate::parse::{sched_flag_bits, sched_flag_names};
use crate::sort::sort_services;

/// The `-t host:port` / `-u …` / `--sctp-service …` / `-f N [-6]` words of a service.
pub fn service_option(id: &ServiceId, numeric: bool, names: &dyn Names) -> String {
    match id {
        ServiceId::Fwmark { mark, ipv6: false } => format!("-f {mark}"),
        ServiceId::Fwmark { mark, ipv6: true } => format!("-f {mark} -6"),
        ServiceId::Addr { protocol, addr, port } => {
            let opt = match protocol {
                Proto::Tcp => "-t",
                Proto::Udp => "-u",
                Proto::Sctp => "--sctp-service",
            };
            format!("{opt} {}", addrport(addr, *port, Some(*protocol), numeric, names))
        }
    }
}

fn service_lines(s: &ServiceInfo, numeric: bool, names: &dyn Names) -> String {
    let spec = &s.spec;
    let svc = service_option(&spec.id, numeric, names);
    let mut out = format!("-A {svc} -s {}", spec.scheduler);
    if let Some(p) = &spec.persistence {
        out.push_str(&format!(" -p {}", p.timeout));
        if let Some(mask) = mask_text(service_is_v6(&spec.id), &p.netmask) {
            out.push_str(&format!(" -M {mask}"));
        }
    }
    if let Some(pe) = spec.pe.as_deref().filter(|pe| !pe.is_empty()) {
        out.push_str(&format!(" --pe {pe}"));
    }
    if spec.one_packet {
        out.push_str(" -o");
    }
    let bits = sched_flag_bits(&spec.sched_flags);
    if bits != 0 {
        out.push_str(&format!(" -b {}", sched_flag_names(&spec.scheduler, bits).join(",")));
    }
    out.push('\n');
    for d in &s.dests {
        let dname = addrport(&d.spec.addr, d.spec.port, Some(service_proto(&spec.id)), numeric, names);
        let switch = match d.spec.method {
            MethodSpec::Masq => "-m",
            MethodSpec::Tunnel { .. } => "-i",
            MethodSpec::Route | MethodSpec::Local => "-g",
        };
        out.push_str(&format!("-a {svc} -r {dname} {switch} -w {}", d.spec.weight));
        if let MethodSpec::Tunnel { tun_type, tun_port, tun_csum } = &d.spec.method {
            let csum = match tun_csum.as_str() {
                "csum" => "--tun-csum",
                "remcsum" => "--tun-remcsum",
                _ => "--tun-nocsum",
            };
            match tun_type.as_str() {
                "ipip" => out.push_str(" --tun-type ipip"),
                "gue" => out.push_str(&format!(" --tun-type gue --tun-port {tun_port} {csum}")),
                "gre" => out.push_str(&format!(" --tun-type gre {csum}")),
                _ => {}
            }
        }
        out.push('\n');
    }
    out
}

/// The whole save text (services and their servers in listing order).
pub fn render_save(table: &Table, numeric: bool, names: &dyn Names) -> String {
    let mut services = table.services.clone();
    sort_services(&mut services);
    services.iter().map(|s| service_lines(s, numeric, names)).collect()
}
