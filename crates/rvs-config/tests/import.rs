//! Importers: heartbeat and keepalived configurations as in the seeds become `[[vrrp]]`
//! tables that parse, mean what the originals meant, and list what could not be mapped.

use std::time::Duration;

use rvs_config::Config;
use rvs_config::failover::{ProbeKind, VrrpAuth, VrrpVersion};
use rvs_config::import::{heartbeat, keepalived};

const HA_CF: &str = "\
# seed-style ha.cf
keepalive 2
deadtime 10
warntime 5
initdead 120
udpport 694
bcast eth1
auto_failback off
node director1
node director2
ping 192.168.1.254
respawn hacluster /usr/lib/heartbeat/ipfail
logfacility local0
";

const HARESOURCES: &str = "director1 IPaddr::192.168.1.100/24/eth0 ldirectord::ldirectord.cf\n";

const AUTHKEYS: &str = "auth 3\n1 crc\n3 sha1 a-long-enough-shared-secret\n";

#[test]
fn heartbeat_maps_timing_failback_pings_addresses_and_keys() {
    let out = heartbeat::import(("ha.cf", HA_CF), ("haresources", HARESOURCES), Some(("authkeys", AUTHKEYS)), None);
    let c = Config::parse(&out.toml, "imported.toml").unwrap_or_else(|e| panic!("{e}\n{}", out.toml));
    let v = &c.vrrp[0];
    assert_eq!((v.interface.as_str(), v.vrid, v.priority, v.version), ("eth1", 1, 150, VrrpVersion::V3));
    // keepalive 2 s -> 200 cs; deadtime 10 s / 2 s -> 5 adverts.
    assert_eq!((v.advert_interval_cs, v.down_timer_adverts), (200, 5));
    assert!(!v.preempt, "auto_failback off = nopreempt");
    assert_eq!(v.virtual_addresses[0].addr.to_string(), "192.168.1.100");
    assert_eq!(v.virtual_addresses[0].dev.as_deref(), Some("eth0"));
    assert_eq!(v.track_probes[0].kind, ProbeKind::Ping("192.168.1.254".parse().unwrap()));
    assert_eq!((v.track_probes[0].weight, v.track_probes[0].interval), (0, Duration::from_secs(2)));
    let VrrpAuth::Hmac(h) = &v.auth else { panic!("sha1 key becomes the HMAC key") };
    assert_eq!((h.key_id, h.key.as_slice()), (3, b"a-long-enough-shared-secret".as_slice()));
    let joined = out.unmapped.join("\n");
    assert!(joined.contains("ldirectord"), "{joined}");
    assert!(joined.contains("initdead"), "{joined}");
    assert!(!joined.contains("ipfail"), "ipfail is covered by the ping tracker: {joined}");
    // The other node gets the lower priority.
    let other = heartbeat::import(("ha.cf", HA_CF), ("haresources", HARESOURCES), None, Some("director2"));
    assert_eq!(Config::parse(&other.toml, "o").unwrap().vrrp[0].priority, 100);
}

#[test]
fn heartbeat_scripts_become_notify_commands() {
    let out = heartbeat::import(
        ("ha.cf", "keepalive 500ms\ndeadtime 2\nucast eth0 10.0.0.2\n"),
        ("haresources", "n1 10.0.0.100/24 httpd mysql::start_opts\n"),
        None,
        None,
    );
    let c = Config::parse(&out.toml, "imported.toml").unwrap_or_else(|e| panic!("{e}\n{}", out.toml));
    let v = &c.vrrp[0];
    assert_eq!(v.advert_interval_cs, 50);
    assert_eq!(v.unicast_peers, vec!["10.0.0.2".parse::<std::net::IpAddr>().unwrap()]);
    // Started left to right, stopped right to left (haresources order).
    assert_eq!(v.notify.master.as_deref(), Some("httpd start && mysql start_opts start"));
    assert_eq!(v.notify.backup.as_deref(), Some("mysql start_opts stop; httpd stop"));
}

const KEEPALIVED: &str = r#"
! Configuration File for keepalived
global_defs {
   router_id LVS_DEVEL
}
vrrp_script chk_gw {
    script "/bin/ping -c1 -W1 192.168.1.254"
    interval 2
    fall 2
    weight -20
}
vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    nopreempt
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    virtual_ipaddress {
        192.168.200.16/24
        192.168.200.17/24 dev eth1 label eth1:1
    }
    track_interface {
        eth1 weight -30
    }
    track_script {
        chk_gw
    }
    notify_master "/etc/keepalived/master.sh"
    garp_master_delay 1
    smtp_alert
}
virtual_server 192.168.200.16 80 {
    delay_loop 6
}
"#;

#[test]
fn keepalived_instances_scripts_and_auth_are_mapped() {
    let out = keepalived::import("keepalived.conf", KEEPALIVED);
    let c = Config::parse(&out.toml, "imported.toml").unwrap_or_else(|e| panic!("{e}\n{}", out.toml));
    let v = &c.vrrp[0];
    assert_eq!((v.name.as_str(), v.interface.as_str(), v.vrid, v.priority), ("VI_1", "eth0", 51, 150));
    assert_eq!((v.version, v.advert_interval_cs, v.preempt), (VrrpVersion::V2, 100, false));
    assert_eq!(v.auth, VrrpAuth::Pass(b"1111".to_vec()));
    assert_eq!(v.virtual_addresses.len(), 2);
    assert_eq!(v.virtual_addresses[1].dev.as_deref(), Some("eth1"));
    assert_eq!(v.track_interfaces[0].weight, -30);
    let s = &v.track_probes[0];
    assert_eq!(s.kind, ProbeKind::Script("/bin/ping -c1 -W1 192.168.1.254".into()));
    assert_eq!((s.interval, s.fall, s.weight), (Duration::from_secs(2), 2, -20));
    assert_eq!(v.notify.master.as_deref(), Some("/etc/keepalived/master.sh"));
    assert_eq!(v.garp.delay, Duration::from_secs(1));
    let joined = out.unmapped.join("\n");
    for what in ["label", "smtp_alert", "virtual_server"] {
        assert!(joined.contains(what), "{what} reported: {joined}");
    }
}

#[test]
fn keepalived_sync_groups_become_sync_group_fields() {
    let text = "vrrp_sync_group VG_1 {\n  group {\n    VI_1\n    VI_6\n  }\n  notify_master /bin/true\n}\n\
                vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n  virtual_ipaddress {\n    198.18.2.10/24\n  }\n}\n\
                vrrp_instance VI_6 {\n  interface eth0\n  virtual_router_id 51\n  version 3\n  virtual_ipaddress {\n    fd00::10/64\n  }\n}\n\
                vrrp_instance VI_X {\n  interface eth0\n  virtual_router_id 52\n  virtual_ipaddress {\n    198.18.2.20/24\n  }\n}\n";
    let out = keepalived::import("keepalived.conf", text);
    let c = Config::parse(&out.toml, "imported.toml").unwrap_or_else(|e| panic!("{e}\n{}", out.toml));
    let groups: Vec<Option<&str>> = c.vrrp.iter().map(|v| v.sync_group.as_deref()).collect();
    assert_eq!(groups, vec![Some("VG_1"), Some("VG_1"), None]);
    assert!(out.unmapped.iter().any(|u| u.contains("notify_master")), "{:?}", out.unmapped);
}
