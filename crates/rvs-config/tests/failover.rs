//! `[[vrrp]]` and `[conn_sync]`: what a valid file means, and where each mistake is reported.

use std::net::IpAddr;
use std::time::Duration;

use rvs_config::failover::{ProbeKind, VrrpAuth, VrrpVersion};
use rvs_config::{Config, ErrorKind};

const FULL: &str = r#"
[[vrrp]]
name = "web"
interface = "eth0"
vrid = 51
priority = 150
version = 3
advert_interval = 0.02
virtual_addresses = ["198.18.2.10/24", "198.18.3.1/24 dev eth1"]
preempt = false
unicast_peers = ["198.18.2.12"]
auth = { type = "hmac", key_id = 7, key = "hex:00112233445566778899aabbccddeeff" }

[[vrrp.track_interface]]
name = "eth1"
weight = -20

[[vrrp.track_ping]]
target = "198.18.2.1"
interval = 0.2
fall = 3

[[vrrp.track_script]]
command = "test -e /run/ok"
weight = 10

[vrrp.notify]
master = "logger master"

[vrrp.garp]
delay = 0
repeat = 3

[conn_sync]
interface = "eth0"
follow = "web"
"#;

#[test]
fn a_full_instance_means_what_it_says() {
    let c = Config::parse(FULL, "f.toml").unwrap();
    let v = &c.vrrp[0];
    assert_eq!((v.name.as_str(), v.interface.as_str(), v.vrid, v.priority), ("web", "eth0", 51, 150));
    assert_eq!(v.version, VrrpVersion::V3);
    assert_eq!(v.advert_interval_cs, 2, "0.02 s = 2 cs");
    assert!(!v.ipv6 && !v.preempt);
    assert_eq!(v.virtual_addresses[1].dev.as_deref(), Some("eth1"));
    assert_eq!(v.virtual_addresses[0].prefix, 24);
    assert_eq!(v.unicast_peers, vec!["198.18.2.12".parse::<IpAddr>().unwrap()]);
    let VrrpAuth::Hmac(h) = &v.auth else { panic!("hmac expected") };
    assert_eq!((h.key_id, h.key.len(), h.required), (7, 16, true));
    assert_eq!(v.track_interfaces[0].weight, -20);
    assert_eq!(v.track_probes.len(), 2);
    assert_eq!(v.track_probes[0].kind, ProbeKind::Ping("198.18.2.1".parse().unwrap()));
    assert_eq!((v.track_probes[0].interval, v.track_probes[0].fall), (Duration::from_millis(200), 3));
    // The timeout defaults to the interval (keepalived's vrrp_script rule).
    assert_eq!(v.track_probes[0].timeout, Duration::from_millis(200));
    assert_eq!(v.notify.master.as_deref(), Some("logger master"));
    assert_eq!((v.garp.delay, v.garp.repeat, v.garp.lower_prio_repeat), (Duration::ZERO, 3, 3));
    let s = c.conn_sync.unwrap();
    assert_eq!((s.port, s.group.to_string().as_str(), s.maxlen), (8848, "224.0.0.81", 1472));
}

#[test]
fn defaults_are_keepalived_s() {
    let c = Config::parse("[[vrrp]]\ninterface = \"eth0\"\nvrid = 1\nvirtual_addresses = [\"198.18.2.10/24\"]\n", "f")
        .unwrap();
    let v = &c.vrrp[0];
    assert_eq!((v.priority, v.version, v.advert_interval_cs), (100, VrrpVersion::V2, 100));
    assert!(v.preempt && v.answer_lower_priority && !v.higher_prio_send_advert);
    assert_eq!((v.down_timer_adverts, v.name.as_str()), (3, "VI_1"));
    assert_eq!((v.garp.delay, v.garp.repeat), (Duration::from_secs(5), 5));
    assert_eq!(v.auth, VrrpAuth::None);
}

/// (file, line, kind, field fragment)
fn err(text: &str) -> (usize, ErrorKind, String) {
    let e = Config::parse(text, "f.toml").unwrap_err();
    (e.line, e.kind, e.field)
}

#[test]
fn mistakes_are_located() {
    let base = "[[vrrp]]\ninterface = \"eth0\"\nvrid = 1\nvirtual_addresses = [\"198.18.2.10/24\"]\n";
    // v2 cannot do sub-second adverts: line 5.
    let (line, kind, field) = err(&format!("{base}advert_interval = 0.5\n"));
    assert_eq!((line, kind, field.as_str()), (5, ErrorKind::InvalidValue, "vrrp[0].advert_interval"));
    // PASS only exists in v2.
    let (line, kind, _) = err(&format!("{base}version = 3\nauth = {{ type = \"pass\", password = \"x\" }}\n"));
    assert_eq!((line, kind), (6, ErrorKind::Conflict));
    // A PASS password longer than 8.
    let (line, kind, _) = err(&format!("{base}auth = {{ type = \"pass\", password = \"123456789\" }}\n"));
    assert_eq!((line, kind), (5, ErrorKind::InvalidValue));
    // VRID 0.
    let (line, kind, _) = err("[[vrrp]]\ninterface = \"eth0\"\nvrid = 0\nvirtual_addresses = [\"198.18.2.10\"]\n");
    assert_eq!((line, kind), (3, ErrorKind::InvalidValue));
    // A bad virtual address.
    let (line, _, field) = err("[[vrrp]]\ninterface = \"eth0\"\nvrid = 2\nvirtual_addresses = [\"198.18.2.10/33\"]\n");
    assert_eq!((line, field.as_str()), (4, "vrrp[0].virtual_addresses[0]"));
    // IPv6 with v2.
    let (_, kind, _) = err("[[vrrp]]\ninterface = \"eth0\"\nvrid = 2\nvirtual_addresses = [\"fd00::10/64\"]\n");
    assert_eq!(kind, ErrorKind::Conflict);
    // The same VRID twice on one interface: the second one's vrid line (9).
    let (line, kind, _) = err(&format!("{base}\n{base}"));
    assert_eq!((line, kind), (8, ErrorKind::Duplicate));
    // Unknown keys.
    let (line, kind, _) = err(&format!("{base}prio = 3\n"));
    assert_eq!((line, kind), (5, ErrorKind::UnknownField));
    // A weight out of range.
    let (line, _, field) = err(&format!("{base}[[vrrp.track_interface]]\nname = \"eth1\"\nweight = 300\n"));
    assert_eq!((line, field.as_str()), (7, "vrrp[0].track_interface[0].weight"));
    // A short HMAC key.
    let (line, _, _) = err(&format!("{base}version = 3\nauth = {{ type = \"hmac\", key = \"short\" }}\n"));
    assert_eq!(line, 6);
    // conn_sync following an unknown instance.
    let (line, _, field) = err(&format!("{base}[conn_sync]\ninterface = \"eth0\"\nfollow = \"nope\"\n"));
    assert_eq!((line, field.as_str()), (7, "conn_sync.follow"));
}

#[test]
fn instances_naming_one_sync_group_belong_to_it() {
    let text = "[[vrrp]]\nname = \"v4\"\ninterface = \"eth0\"\nvrid = 1\nversion = 3\nvirtual_addresses = [\"198.18.2.10/24\"]\n\
                sync_group = \"web\"\n\n[[vrrp]]\nname = \"v6\"\ninterface = \"eth0\"\nvrid = 1\nversion = 3\n\
                virtual_addresses = [\"fd00::10/64\"]\nsync_group = \"web\"\n\n[[vrrp]]\nname = \"alone\"\n\
                interface = \"eth0\"\nvrid = 2\nvirtual_addresses = [\"198.18.2.20/24\"]\n";
    let c = Config::parse(text, "f").unwrap();
    let groups: Vec<Option<&str>> = c.vrrp.iter().map(|v| v.sync_group.as_deref()).collect();
    assert_eq!(groups, vec![Some("web"), Some("web"), None]);
    // An empty group name is a mistake on its line (5).
    let base = "[[vrrp]]\ninterface = \"eth0\"\nvrid = 1\nvirtual_addresses = [\"198.18.2.10/24\"]\n";
    let (line, kind, field) = err(&format!("{base}sync_group = \" \"\n"));
    assert_eq!((line, kind, field.as_str()), (5, ErrorKind::InvalidValue, "vrrp[0].sync_group"));
}
