//! Writes the seed corpora of the fuzz targets (`fuzz/corpus/<target>/seed_*`)
//! from the golden frames of the tests: whole frames, their L3 and L4 parts,
//! tunnel packets, and truncated copies. Run from the workspace root with
//! `cargo run -p rvs-packet --example write_fuzz_seeds`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use rvs_packet::encap::{self, TunnelParams};
use rvs_packet::{Parsed, parse_frame};

fn write(dir: &Path, name: &str, data: &[u8]) {
    fs::write(dir.join(format!("seed_{name}")), data).expect("write seed");
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus");
    let targets = ["frame", "ip", "ethernet", "arp", "ipv4", "ipv6", "tcp", "udp", "icmp", "tunnel"];
    for t in targets {
        fs::create_dir_all(root.join(t)).expect("create corpus dir");
    }
    let dir = |t: &str| root.join(t);
    for (name, frame) in common::frames::all() {
        write(&dir("frame"), name, &frame);
        write(&dir("frame"), &format!("{name}_cut"), &frame[..frame.len() * 2 / 3]);
        write(&dir("ethernet"), name, &frame[..frame.len().min(26)]);
        match parse_frame(&frame).expect("golden frames parse") {
            Parsed::Arp { eth, .. } => {
                write(&dir("arp"), name, &frame[eth.payload_offset..]);
                write(&dir("arp"), &format!("{name}_cut"), &frame[eth.payload_offset..frame.len() - 3]);
            }
            Parsed::Ip(s) => {
                let l3 = &frame[s.l3_offset..s.end];
                let l4 = &frame[s.l4_offset..s.end];
                write(&dir("ip"), name, l3);
                write(&dir("ip"), &format!("{name}_cut"), &l3[..l3.len() - 5]);
                let family_dir = if l3[0] >> 4 == 4 { "ipv4" } else { "ipv6" };
                write(&dir(family_dir), name, l3);
                let l4_dir = match s.protocol {
                    6 => "tcp",
                    17 => "udp",
                    _ => "icmp",
                };
                write(&dir(l4_dir), name, l4);
                write(&dir(l4_dir), &format!("{name}_cut"), &l4[..l4.len() / 2]);
                write(&dir("tunnel"), &format!("{name}_plain"), l3);
                let ends = [
                    ("4", IpAddr::V4(Ipv4Addr::new(198, 18, 1, 1)), IpAddr::V4(Ipv4Addr::new(198, 19, 0, 2))),
                    (
                        "6",
                        IpAddr::V6(Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, 0, 1)),
                        IpAddr::V6(Ipv6Addr::new(0xfd00, 2, 0, 0, 0, 0, 0, 2)),
                    ),
                ];
                for (tag, src, dst) in ends {
                    let mut buf = vec![0u8; 40];
                    buf.extend_from_slice(l3);
                    let p = TunnelParams { src, dst, ttl: None, ident: 1, flow_label: 0, mtu: 1500 };
                    let e = encap::encapsulate(&mut buf, 40, l3.len(), &p).expect("encapsulates");
                    write(&dir("tunnel"), &format!("{name}_in{tag}"), &buf[e.start..e.start + e.len]);
                }
            }
        }
    }
}
