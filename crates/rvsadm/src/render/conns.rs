//! `-c`: the connection table (`IPVS connection entries`), with the `pe name`/`pe_data`
//! columns under `--persistent-conn`.

use rvs_api::{ConnInfo, Proto};

use super::addrport;
use crate::names::Names;
use crate::parse::Format;

fn proto_of(name: &str) -> Option<Proto> {
    match name {
        "TCP" => Some(Proto::Tcp),
        "UDP" => Some(Proto::Udp),
        "SCTP" => Some(Proto::Sctp),
        _ => None,
    }
}

/// The whole `-c` listing.
pub fn render_conns(conns: &[ConnInfo], f: &Format, names: &dyn Names) -> String {
    let mut out = String::from("IPVS connection entries\n");
    if f.persistent_conn {
        out.push_str(&format!(
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} {}\n",
            "state", "source", "virtual", "destination", "pe name", "pe_data"
        ));
    } else {
        out.push_str(&format!("pro expire {:<11} {:<18} {:<18} {}\n", "state", "source", "virtual", "destination"));
    }
    for c in conns {
        let proto = proto_of(&c.protocol);
        let cname = addrport(&c.caddr, c.cport, proto, f.numeric, names);
        let vname = addrport(&c.vaddr, c.vport, proto, f.numeric, names);
        let dname = addrport(&c.daddr, c.dport, proto, f.numeric, names);
        let expire = format!("{:02}:{:02}", c.expires / 60, c.expires % 60);
        match (f.persistent_conn, &c.pe_name, &c.pe_data) {
            (true, Some(pe_name), Some(pe_data)) => out.push_str(&format!(
                "{:<3} {:<6} {:<11} {:<18} {:<18} {:<16} {:<18} {}\n",
                c.protocol, expire, c.state, cname, vname, dname, pe_name, pe_data
            )),
            _ => out.push_str(&format!(
                "{:<3} {:<6} {:<11} {:<18} {:<18} {}\n",
                c.protocol, expire, c.state, cname, vname, dname
            )),
        }
    }
    out
}
