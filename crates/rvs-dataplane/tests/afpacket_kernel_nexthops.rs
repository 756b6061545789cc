//! KernelNextHops against a real kernel: a director namespace with one neighbour namespace
//! on a veth (MTU 1400) and routes through that neighbour. Neighbour entries start empty,
//! so the first lookups must trigger resolution (ARP, ND) and later ones succeed.

mod afpacket_common;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use afpacket_common::{TestNet, in_ns, ip, namespaces_available};
use rvs_dataplane::kernel_nexthops::KernelNextHops;
use rvs_dataplane::nexthop::{NextHop, NextHops};
use rvs_packet::MacAddr;

const DIRECTOR_MAC: MacAddr = MacAddr([0x02, 0x72, 0x76, 0x70, 0x00, 0x01]);
const NEIGHBOUR_MAC: MacAddr = MacAddr([0x02, 0x72, 0x76, 0x70, 0x00, 0x02]);

/// Looks `dst` up until it resolves or 3 s pass.
fn resolve(hops: &mut KernelNextHops, dst: &str) -> Option<NextHop> {
    let dst: IpAddr = dst.parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Some(hop) = hops.lookup(dst) {
            return Some(hop);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn kernel_nexthops_resolve_on_link_and_routed_addresses_with_mtu() {
    if !namespaces_available("kernel_nexthops_resolve_on_link_and_routed_addresses_with_mtu", &["ip"]) {
        return;
    }
    let mut net = TestNet::new();
    let director = net.netns("d");
    let neighbour = net.netns("n");
    let (d, n) = (net.ifname("d"), net.ifname("n"));
    net.veth((&director, &d, "02:72:76:70:00:01"), (&neighbour, &n, "02:72:76:70:00:02"));
    ip(&["-n", &director, "link", "set", &d, "mtu", "1400"]);
    for (ns, dev, addr) in [
        (&director, &d, "198.18.70.1/24"),
        (&director, &d, "fd00:70::1/64"),
        (&neighbour, &n, "198.18.70.2/24"),
        (&neighbour, &n, "fd00:70::2/64"),
    ] {
        ip(&["-n", ns, "addr", "add", addr, "dev", dev, "nodad"]);
    }
    ip(&["-n", &director, "route", "add", "198.18.71.0/24", "via", "198.18.70.2"]);
    ip(&["-n", &director, "route", "add", "fd00:71::/64", "via", "fd00:70::2"]);
    // `ip -o link` lines start with "<ifindex>: <name>...".
    let line = ip(&["-n", &director, "-o", "link", "show", "dev", &d]);
    let ifindex: u32 = line.split(':').next().unwrap().trim().parse().unwrap();
    let expected = NextHop { ifindex, src_mac: DIRECTOR_MAC, dst_mac: NEIGHBOUR_MAC, mtu: 1400 };

    let (on_link4, routed4, routed6, on_link6, unroutable, probes) = in_ns(&director, || {
        let mut hops = KernelNextHops::start().expect("start");
        // No neighbour entry yet: the first lookup cannot succeed, and starts resolution.
        let first = hops.lookup("198.18.70.2".parse().unwrap());
        assert_eq!(first, None, "no ARP entry can exist before any traffic");
        let on_link4 = resolve(&mut hops, "198.18.70.2");
        // The gateway of 198.18.71.0/24 is the same neighbour, now resolved.
        let routed4 = resolve(&mut hops, "198.18.71.9");
        // IPv6: the routed address first, which must resolve its gateway by ND.
        let routed6 = resolve(&mut hops, "fd00:71::9");
        let on_link6 = resolve(&mut hops, "fd00:70::2");
        // No default route: nothing to resolve.
        let unroutable = hops.lookup("198.18.99.1".parse().unwrap());
        (on_link4, routed4, routed6, on_link6, unroutable, hops.probe_count())
    });
    assert_eq!(on_link4, Some(expected));
    assert_eq!(routed4, Some(expected));
    assert_eq!(routed6, Some(expected));
    assert_eq!(on_link6, Some(expected));
    assert_eq!(unroutable, None);
    assert!(probes >= 2, "one ARP and one ND resolution started, got {probes}");
}
