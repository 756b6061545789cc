//! The `-L` views of services and real servers: default, `--stats`, `--rate`,
//! `--thresholds`, `--persistent-conn` and `--tun-info`, with the banner for whole-table
//! listings. Format strings are ipvsadm's (`print_title`, `print_service_entry`).

use rvs_api::{DestInfo, MethodSpec, ServiceId, ServiceInfo, Table};

use super::{addrport, cut, mask_text, service_is_v6, service_proto};
use crate::names::Names;
use crate::numbers::largenum;
use crate::parse::{Format, sched_flag_bits, sched_flag_names};
use crate::sort::{sort_dests, sort_services};

/// The IPVS version ipvsadm reports for the kernel.
pub const IPVS_VERSION: &str = "1.2.1";

/// `"IP Virtual Server version %d.%d.%d (size=%d)\n"`.
pub fn banner(conn_tab_size: u32) -> String {
    format!("IP Virtual Server version {IPVS_VERSION} (size={conn_tab_size})\n")
}

/// The column header of a view.
pub fn title(f: &Format) -> String {
    let first = "Prot LocalAddress:Port";
    if f.stats {
        format!(
            "{first:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        )
    } else if f.rate {
        format!(
            "{first:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n  -> RemoteAddress:Port\n",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        )
    } else if f.thresholds {
        format!(
            "{first:<33} {:<10} {:<10} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        )
    } else if f.persistent_conn {
        format!(
            "{first:<33} {:<9} {:<11} {:<10} {:<10}\n  -> RemoteAddress:Port\n",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        )
    } else if f.tun_info {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n".to_string()
    } else {
        "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n".to_string()
    }
}

/// The service column: `"%-4s %s"` of protocol and `addr:port` (cut at 33 bytes for IPv4),
/// or `"FWM  %u"` / `"FWM  %u IPv6"`.
pub fn service_name(id: &ServiceId, numeric: bool, names: &dyn Names) -> String {
    match id {
        ServiceId::Fwmark { mark, ipv6: false } => format!("FWM  {mark}"),
        ServiceId::Fwmark { mark, ipv6: true } => format!("FWM  {mark} IPv6"),
        ServiceId::Addr { protocol, addr, port } => {
            let proto = match protocol {
                rvs_api::Proto::Tcp => "TCP",
                rvs_api::Proto::Udp => "UDP",
                rvs_api::Proto::Sctp => "SCTP",
            };
            let text = format!("{proto:<4} {}", addrport(addr, *port, Some(*protocol), numeric, names));
            if addr.is_ipv4() { cut(&text, 33).to_string() } else { text }
        }
    }
}

/// `Masq`, `Local`, `Tunnel` or `Route`.
pub fn forward_name(m: &MethodSpec) -> &'static str {
    match m {
        MethodSpec::Masq => "Masq",
        MethodSpec::Local => "Local",
        MethodSpec::Tunnel { .. } => "Tunnel",
        MethodSpec::Route => "Route",
    }
}

/// `--tun-info` text: `ipip`, `gue:PORT:FLAGS`, `gre:FLAGS` (flags `-c`, `+c`, `r+c`), or
/// `n/a` for other methods.
pub fn tunnel_info(m: &MethodSpec) -> String {
    let MethodSpec::Tunnel { tun_type, tun_port, tun_csum } = m else { return "n/a".into() };
    let flags = match tun_csum.as_str() {
        "csum" => "+c",
        "remcsum" => "r+c",
        _ => "-c",
    };
    match tun_type.as_str() {
        "ipip" => "ipip".into(),
        "gue" => format!("gue:{tun_port}:{flags}"),
        "gre" => format!("gre:{flags}"),
        _ => "n/a".into(),
    }
}

fn default_service_line(s: &ServiceInfo, name: &str) -> String {
    let spec = &s.spec;
    let mut line = format!("{name} {}", spec.scheduler);
    let bits = sched_flag_bits(&spec.sched_flags);
    if bits != 0 {
        line.push_str(&format!(" ({})", sched_flag_names(&spec.scheduler, bits).join(",")));
    }
    if let Some(p) = &spec.persistence {
        line.push_str(&format!(" persistent {}", p.timeout));
        if let Some(mask) = mask_text(service_is_v6(&spec.id), &p.netmask) {
            line.push_str(&format!(" mask {mask}"));
        }
        if let Some(pe) = spec.pe.as_deref().filter(|pe| !pe.is_empty()) {
            line.push_str(&format!(" pe {pe}"));
        }
    }
    if spec.one_packet {
        line.push_str(" ops");
    }
    line.push('\n');
    line
}

fn dest_line(s: &ServiceInfo, d: &DestInfo, f: &Format, names: &dyn Names) -> String {
    let full = addrport(&d.spec.addr, d.spec.port, Some(service_proto(&s.spec.id)), f.numeric, names);
    let dname = if d.spec.addr.is_ipv4() { cut(&full, 28) } else { full.as_str() };
    let st = &d.stats;
    if f.stats {
        let nums: String =
            [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes].iter().map(|n| largenum(*n, f.exact)).collect();
        format!("  -> {dname:<28}{nums}\n")
    } else if f.rate {
        format!(
            "  -> {dname:<28} {:>8} {:>8} {:>8}{}{}\n",
            st.cps,
            st.inpps,
            st.outpps,
            largenum(st.inbps, f.exact),
            largenum(st.outbps, f.exact)
        )
    } else if f.thresholds {
        format!(
            "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}\n",
            d.spec.u_threshold, d.spec.l_threshold, d.active_conns, d.inactive_conns
        )
    } else if f.persistent_conn {
        format!(
            "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}\n",
            d.spec.weight, d.persist_conns, d.active_conns, d.inactive_conns
        )
    } else if f.tun_info {
        format!(
            "  -> {dname:<28} {:<7} {:<13} {:<6} {:<10} {:<10}\n",
            forward_name(&d.spec.method),
            tunnel_info(&d.spec.method),
            d.spec.weight,
            d.active_conns,
            d.inactive_conns
        )
    } else {
        format!(
            "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}\n",
            forward_name(&d.spec.method),
            d.spec.weight,
            d.active_conns,
            d.inactive_conns
        )
    }
}

/// One service and its real servers (destinations sorted unless `--nosort`).
pub fn service_block(s: &ServiceInfo, f: &Format, names: &dyn Names) -> String {
    let name = service_name(&s.spec.id, f.numeric, names);
    let st = &s.stats;
    let mut out = if f.stats {
        let nums: String =
            [st.conns, st.inpkts, st.outpkts, st.inbytes, st.outbytes].iter().map(|n| largenum(*n, f.exact)).collect();
        format!("{name:<33}{nums}\n")
    } else if f.rate {
        let nums: String =
            [st.cps, st.inpps, st.outpps, st.inbps, st.outbps].iter().map(|n| largenum(*n, f.exact)).collect();
        format!("{name:<33}{nums}\n")
    } else {
        default_service_line(s, &name)
    };
    let mut dests = s.dests.clone();
    if !f.nosort {
        sort_dests(&mut dests);
    }
    for d in &dests {
        out.push_str(&dest_line(s, d, f, names));
    }
    out
}

/// `-L`: banner, header, then every service (sorted unless `--nosort`).
pub fn render_all(table: &Table, f: &Format, names: &dyn Names) -> String {
    let mut out = banner(table.conn_tab_size);
    out.push_str(&title(f));
    let mut services = table.services.clone();
    if !f.nosort {
        sort_services(&mut services);
    }
    for s in &services {
        out.push_str(&service_block(s, f, names));
    }
    out
}

/// `-L -t VIP:PORT`: header and the one service, no banner.
pub fn render_one(service: &ServiceInfo, f: &Format, names: &dyn Names) -> String {
    let mut out = title(f);
    out.push_str(&service_block(service, f, names));
    out
}
