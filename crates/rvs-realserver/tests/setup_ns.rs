//! setup / check / teardown on a real-server namespace, for DR (through the
//! command line), TUN (with the decapsulator as a background process) and NAT:
//! check passes after setup, fails with an explanation once a setting is
//! broken, and teardown restores exactly the values the host had before.
//!
//! Needs root and network namespaces: skipped with a reason otherwise, or
//! failed under CI=true.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Scratch, ip_in, launcher, namespaces_or_skip, set_sysctl, sysctl, v4, v6};
use rvs_realserver::host::process_alive;
use rvs_realserver::{CheckRequest, DecapLaunch, Method, SetupRequest, check, setup, stop_decapsulator, teardown};

const VIP: &str = "198.18.100.1";
const VIP6: &str = "fd00:0:0:100::1";

/// A real-server namespace whose `eth0` leads to a peer namespace holding the
/// director (.1) and a router (.9); the default routes go via the router.
fn real_server(scratch: &mut Scratch) -> String {
    let rs = scratch.netns("rvsrs");
    let peer = scratch.netns("rvspeer");
    ip_in(&peer, &["link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns", &rs]);
    for (netns, dev, hosts) in [(&peer, "up0", &["1", "9"][..]), (&rs, "eth0", &["2"][..])] {
        ip_in(netns, &["link", "set", dev, "up"]);
        for host in hosts {
            ip_in(netns, &["addr", "add", &format!("198.18.60.{host}/24"), "dev", dev]);
            ip_in(netns, &["addr", "add", &format!("fd00:0:0:60::{host}/64"), "dev", dev, "nodad"]);
        }
    }
    ip_in(&rs, &["route", "add", "default", "via", "198.18.60.9"]);
    ip_in(&rs, &["-6", "route", "add", "default", "via", "fd00:0:0:60::9"]);
    rs
}

const ARP_KEYS: [&str; 6] = [
    "net/ipv4/conf/all/arp_ignore",
    "net/ipv4/conf/lo/arp_ignore",
    "net/ipv4/conf/eth0/arp_ignore",
    "net/ipv4/conf/all/arp_announce",
    "net/ipv4/conf/lo/arp_announce",
    "net/ipv4/conf/eth0/arp_announce",
];
const RP_KEYS: [&str; 4] = [
    "net/ipv4/conf/all/rp_filter",
    "net/ipv4/conf/default/rp_filter",
    "net/ipv4/conf/lo/rp_filter",
    "net/ipv4/conf/eth0/rp_filter",
];

fn snapshot(netns: &str, keys: &[&str]) -> Vec<String> {
    keys.iter().map(|key| sysctl(netns, key)).collect()
}

fn lo_addresses(netns: &str) -> String {
    ip_in(netns, &["-o", "addr", "show", "dev", "lo"])
}

fn cli(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_rvs-realserver")).args(args).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn dr_setup_check_teardown_through_the_command_line() {
    if !namespaces_or_skip("dr_setup_check_teardown_through_the_command_line") {
        return;
    }
    let mut scratch = Scratch::new();
    let rs = real_server(&mut scratch);
    let dir = scratch.state_dir.to_str().unwrap().to_owned();
    let before = snapshot(&rs, &ARP_KEYS);
    let place = ["--netns", rs.as_str(), "--state-dir", dir.as_str()];

    // A fresh namespace is not a DR real server: the VIP is missing and ARP is default.
    let (code, text) = cli(&[&["check", "--method", "dr", "--vip", VIP][..], &place].concat());
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("VIP 198.18.100.1 is not configured on lo"), "{text}");
    assert!(text.contains("arp_ignore on eth0 is effectively 0"), "{text}");

    let (code, text) = cli(&[&["setup", "--method", "dr", "--vip", VIP, "--vip", VIP6][..], &place].concat());
    assert_eq!(code, 0, "{text}");
    assert!(lo_addresses(&rs).contains("198.18.100.1/32"));
    assert!(lo_addresses(&rs).contains("fd00:0:0:100::1/128"));
    // The uplink was found from the default route.
    assert_eq!(sysctl(&rs, "net/ipv4/conf/eth0/arp_ignore"), "1");

    // check takes method, VIPs and uplinks from the state setup left.
    let (code, text) = cli(&[&["check"][..], &place].concat());
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("OK"), "{text}");

    // Break arp_ignore: the kernel uses max(all, eth0), so both must go.
    set_sysctl(&rs, "net/ipv4/conf/all/arp_ignore", "0");
    set_sysctl(&rs, "net/ipv4/conf/eth0/arp_ignore", "0");
    let (code, text) = cli(&[&["check"][..], &place].concat());
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("arp_ignore on eth0 is effectively 0"), "{text}");
    assert!(text.contains("ARP problem"), "the why is explained: {text}");
    assert!(text.contains("fix: sysctl -w net.ipv4.conf.all.arp_ignore=1"), "{text}");
    // Setting it on the interface alone is enough (max rule).
    set_sysctl(&rs, "net/ipv4/conf/eth0/arp_ignore", "1");
    let (code, text) = cli(&[&["check"][..], &place].concat());
    assert_eq!(code, 0, "{text}");

    let (code, text) = cli(&[&["teardown"][..], &place].concat());
    assert_eq!(code, 0, "{text}");
    assert_eq!(snapshot(&rs, &ARP_KEYS), before, "teardown restores the values from before setup");
    assert!(!lo_addresses(&rs).contains("198.18.100.1"));
    assert!(!lo_addresses(&rs).contains("fd00:0:0:100::1"));
    let (code, text) = cli(&[&["teardown"][..], &place].concat());
    assert_ne!(code, 0, "a second teardown has nothing to undo: {text}");
}

#[test]
fn tun_setup_starts_the_decapsulator_and_teardown_stops_it() {
    if !namespaces_or_skip("tun_setup_starts_the_decapsulator_and_teardown_stops_it") {
        return;
    }
    let mut scratch = Scratch::new();
    let rs = real_server(&mut scratch);
    // Strict reverse-path filtering before setup, so restoring it is visible.
    for key in RP_KEYS {
        set_sysctl(&rs, key, "1");
    }
    // A VIP that is already on lo stays there after teardown.
    ip_in(&rs, &["addr", "add", "198.18.100.2/32", "dev", "lo"]);
    let before = snapshot(&rs, &[&ARP_KEYS[..], &RP_KEYS[..]].concat());

    let mut request = SetupRequest::new(Method::Tun, vec![v4(VIP), v4("198.18.100.2"), v6(VIP6)]);
    request.netns = Some(rs.clone());
    request.state_dir = scratch.state_dir.clone();
    request.decap = DecapLaunch::Daemon(launcher());
    let record = setup(&request).unwrap();
    let child = record.decap.clone().expect("TUN setup starts a decapsulator");
    assert!(process_alive(child.pid));
    assert!(ip_in(&rs, &["-o", "link", "show", "dev", &child.tun]).contains("UP"));
    assert_eq!(sysctl(&rs, "net/ipv4/conf/all/rp_filter"), "0");
    assert_eq!(sysctl(&rs, &format!("net/ipv4/conf/{}/rp_filter", child.tun)), "0");
    assert_eq!(record.vips_added, vec![v4(VIP), v6(VIP6)]);

    let mut check_request = CheckRequest::new();
    check_request.netns = Some(rs.clone());
    check_request.state_dir = scratch.state_dir.clone();
    let report = check(&check_request).unwrap();
    assert!(report.ok(), "{}", report.render());
    assert!(report.render().contains("raw IP sockets"), "check names the mechanism: {}", report.render());

    set_sysctl(&rs, "net/ipv4/conf/all/arp_ignore", "0");
    set_sysctl(&rs, "net/ipv4/conf/eth0/arp_ignore", "0");
    let report = check(&check_request).unwrap();
    assert!(!report.ok());
    let finding = report.findings.iter().find(|f| f.problem.contains("arp_ignore")).expect("arp_ignore finding");
    assert!(finding.fix.contains("sysctl -w net.ipv4.conf.all.arp_ignore=1"), "{finding:?}");
    set_sysctl(&rs, "net/ipv4/conf/all/arp_ignore", "1");

    // Strict rp_filter on the TUN device would drop the decapsulated packets.
    set_sysctl(&rs, &format!("net/ipv4/conf/{}/rp_filter", child.tun), "1");
    let report = check(&check_request).unwrap();
    assert!(
        report.findings.iter().any(|f| f.problem.contains("rp_filter") && f.why.contains("spoofed")),
        "{}",
        report.render()
    );
    set_sysctl(&rs, &format!("net/ipv4/conf/{}/rp_filter", child.tun), "0");
    assert!(check(&check_request).unwrap().ok());

    // Without the decapsulator the service is down, and check says why.
    stop_decapsulator(&child).unwrap();
    assert!(!process_alive(child.pid));
    let report = check(&check_request).unwrap();
    let finding = report.findings.iter().find(|f| f.problem.contains("no decapsulator")).expect("decap finding");
    assert!(finding.why.contains("ipip"), "{finding:?}");

    let actions = teardown(Some(&rs), &scratch.state_dir).unwrap();
    assert!(!actions.is_empty());
    assert_eq!(snapshot(&rs, &[&ARP_KEYS[..], &RP_KEYS[..]].concat()), before);
    let lo = lo_addresses(&rs);
    assert!(!lo.contains("198.18.100.1/32") && !lo.contains("fd00:0:0:100::1"), "{lo}");
    assert!(lo.contains("198.18.100.2/32"), "a VIP that was there before stays: {lo}");
    assert!(
        Command::new("ip").args(["-n", &rs, "link", "show", "dev", &child.tun]).output().unwrap().status.code()
            != Some(0)
    );
}

#[test]
fn tun_teardown_stops_a_running_decapsulator() {
    if !namespaces_or_skip("tun_teardown_stops_a_running_decapsulator") {
        return;
    }
    let mut scratch = Scratch::new();
    let rs = real_server(&mut scratch);
    let mut request = SetupRequest::new(Method::Tun, vec![v4(VIP)]);
    request.netns = Some(rs.clone());
    request.state_dir = scratch.state_dir.clone();
    request.decap = DecapLaunch::Daemon(launcher());
    let child = setup(&request).unwrap().decap.unwrap();
    teardown(Some(&rs), &scratch.state_dir).unwrap();
    assert!(
        common::wait_for(Duration::from_secs(2), || (!process_alive(child.pid)).then_some(())).is_some(),
        "decapsulator {} still running",
        child.pid
    );
}

#[test]
fn nat_setup_routes_through_the_director_and_teardown_restores_the_old_route() {
    if !namespaces_or_skip("nat_setup_routes_through_the_director_and_teardown_restores_the_old_route") {
        return;
    }
    let mut scratch = Scratch::new();
    let rs = real_server(&mut scratch);
    let before = snapshot(&rs, &[&ARP_KEYS[..], &RP_KEYS[..]].concat());
    let mut request = SetupRequest::new(Method::Nat, vec![v4(VIP)]);
    request.netns = Some(rs.clone());
    request.state_dir = scratch.state_dir.clone();
    request.gateways = vec![v4("198.18.60.1"), v6("fd00:0:0:60::1")];
    let record = setup(&request).unwrap();
    assert!(record.sysctls.is_empty() && record.vips_added.is_empty(), "NAT changes no sysctl and no address");
    assert!(ip_in(&rs, &["-4", "route", "show", "default"]).contains("via 198.18.60.1"));
    assert!(ip_in(&rs, &["-6", "route", "show", "default"]).contains("via fd00:0:0:60::1"));

    let mut check_request = CheckRequest::new();
    check_request.netns = Some(rs.clone());
    check_request.state_dir = scratch.state_dir.clone();
    let report = check(&check_request).unwrap();
    assert!(report.ok(), "{}", report.render());

    // Replies that bypass the director break NAT: check says so.
    ip_in(&rs, &["-4", "route", "replace", "default", "via", "198.18.60.9"]);
    let report = check(&check_request).unwrap();
    assert_eq!(report.findings.len(), 1, "{}", report.render());
    let finding = &report.findings[0];
    assert!(finding.problem.contains("does not go through the director 198.18.60.1"), "{finding:?}");
    assert!(finding.why.contains("rewrite"), "{finding:?}");
    assert_eq!(finding.fix, "ip route replace default via 198.18.60.1");
    ip_in(&rs, &["-4", "route", "replace", "default", "via", "198.18.60.1"]);

    teardown(Some(&rs), &scratch.state_dir).unwrap();
    let v4_routes = ip_in(&rs, &["-4", "route", "show", "default"]);
    let v6_routes = ip_in(&rs, &["-6", "route", "show", "default"]);
    assert!(v4_routes.contains("via 198.18.60.9") && !v4_routes.contains("198.18.60.1"), "{v4_routes}");
    assert!(v6_routes.contains("via fd00:0:0:60::9") && !v6_routes.contains("60::1 "), "{v6_routes}");
    assert_eq!(snapshot(&rs, &[&ARP_KEYS[..], &RP_KEYS[..]].concat()), before);
}
