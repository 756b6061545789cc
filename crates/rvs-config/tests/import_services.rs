//! `rvs import` of services and checks: the seeds' ldirectord and piranha examples (and a
//! keepalived example) convert to rvs TOML that loads, with the values the old tools meant, and
//! every dropped directive is reported with its line.

use std::net::SocketAddr;
use std::time::Duration;

use rvs_api::{MethodSpec, Proto, ServiceId};
use rvs_config::Config;
use rvs_config::import::{Format, Imported, import};
use rvs_health::CheckConfig;
use rvs_health::config::{OnDown, SorryMethod};
use rvs_health::state::StartState;

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/fixtures/import/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// Imports a fixture and loads the result as rvsd would.
fn load(format: Format, name: &str) -> (Imported, Config) {
    let imported = import(format, &fixture(name), name).unwrap();
    let config = Config::parse(&imported.toml, "imported.toml")
        .unwrap_or_else(|e| panic!("{e}\n--- imported:\n{}", imported.toml));
    (imported, config)
}

fn warned(imported: &Imported, part: &str) -> bool {
    imported.warnings.iter().any(|w| w.contains(part))
}

#[test]
fn ldirectord_seed003_with_fallback_and_negotiate() {
    let (imported, config) = load(Format::Ldirectord, "ldirectord-seed003.cf");
    let svc = &config.services[0];
    assert_eq!(svc.spec.id, ServiceId::Addr { protocol: Proto::Tcp, addr: "211.58.250.6".parse().unwrap(), port: 80 });
    assert_eq!(svc.spec.scheduler, "rr");
    assert_eq!(svc.reals.len(), 2);
    assert!(svc.reals.iter().all(|r| r.method == MethodSpec::Route && r.weight == 1 && r.port == 80));
    let health = config.health.service(&svc.spec.id).unwrap();
    // quiescent defaults to yes; the fallback on the loopback is the director itself.
    assert_eq!(health.policy.on_down, OnDown::Quiesce);
    let sorry = health.policy.sorry_server.as_ref().unwrap();
    assert_eq!((sorry.addr.to_string(), sorry.port, sorry.method), ("127.0.0.1".into(), Some(80), SorryMethod::Local));
    let t = health.reals[0].config.timing().unwrap();
    // checkinterval=1, failurecount default 1, back on the first success.
    assert_eq!((t.interval, t.fall, t.rise), (Duration::from_secs(1), 1, 1));
    let CheckConfig::Http(h) = &health.reals[0].config.checks[0] else { panic!("negotiate http is an http check") };
    assert_eq!((h.path.as_str(), h.expect_regex.as_deref()), ("/index.html", Some("Test Page")));
    // `timeout=3` (old name of checktimeout) is also the negotiate timeout when that is unset.
    assert_eq!(h.timeout, Some(3.0));
    assert!(warned(&imported, "ldirectord-seed003.cf:1: `timeout' (old ldirectord) read as checktimeout"));
}

#[test]
fn ldirectord_seed002_web_typo_and_dropped_directives() {
    let (imported, config) = load(Format::Ldirectord, "ldirectord-seed002-web.cf");
    let svc = &config.services[0];
    assert_eq!(svc.reals[0].addr.to_string(), "198.18.0.121");
    assert_eq!(svc.reals[0].weight, 10);
    assert_eq!(svc.spec.persistence.as_ref().unwrap().timeout, 3600);
    let health = config.health.service(&svc.spec.id).unwrap();
    assert_eq!(health.policy.on_down, OnDown::Remove, "quiescent=no");
    let t = health.reals[0].config.timing().unwrap();
    assert_eq!(t.interval, Duration::from_secs(10));
    let CheckConfig::Http(h) = &health.reals[0].config.checks[0] else { panic!("http") };
    assert_eq!(h.path, "/lvsm.hwlee.shop");
    assert_eq!(h.timeout, Some(10.0), "checktimeout=10 also sets the negotiate timeout");
    // Line numbers count the fixture's added first comment line.
    assert!(warned(&imported, ":18: unknown checktype `nogotiate'"), "{:?}", imported.warnings);
    assert!(warned(&imported, ":5: `logfile' dropped"), "{:?}", imported.warnings);
}

#[test]
fn ldirectord_seed002_fwmark_with_checkport() {
    let (_, config) = load(Format::Ldirectord, "ldirectord-seed002-fwm.cf");
    let svc = &config.services[0];
    assert_eq!(svc.spec.id, ServiceId::Fwmark { mark: 1, ipv6: false });
    assert_eq!(svc.reals.iter().map(|r| r.weight).collect::<Vec<_>>(), [1, 3]);
    let health = config.health.service(&svc.spec.id).unwrap();
    let CheckConfig::Http(h) = &health.reals[1].config.checks[0] else { panic!("http") };
    assert_eq!(h.port, Some(80), "checkport");
}

#[test]
fn placeholders_are_refused_with_their_line() {
    let e = import(Format::Ldirectord, &fixture("ldirectord-seed002-web.cf.raw"), "web.cf").unwrap_err();
    assert_eq!(e.line, 9, "{e}");
    assert!(e.to_string().contains("xxx.xxx.xxx.70"), "{e}");
}

#[test]
fn piranha_seed000_send_expect_timeout_and_reentry() {
    let (imported, config) = load(Format::Piranha, "piranha-seed000-lvs.cf");
    let svc = &config.services[0];
    assert_eq!(svc.spec.id, ServiceId::Addr { protocol: Proto::Tcp, addr: "192.168.2.235".parse().unwrap(), port: 80 });
    assert_eq!(svc.spec.scheduler, "wlc");
    assert_eq!(svc.spec.persistence.as_ref().unwrap().timeout, 60);
    let addrs: Vec<SocketAddr> = svc.reals.iter().map(|r| SocketAddr::new(r.addr, r.port)).collect();
    assert_eq!(addrs, ["192.168.2.221:80".parse().unwrap(), "192.168.2.222:80".parse().unwrap()]);
    assert!(svc.reals.iter().all(|r| r.method == MethodSpec::Route), "network = direct");
    let health = config.health.service(&svc.spec.id).unwrap();
    assert_eq!(health.policy.on_down, OnDown::Remove, "piranha removes unless quiesce_server = 1");
    let t = health.reals[0].config.timing().unwrap();
    // keepalive 2 s between checks; timeout 5 s before removal -> ceil(5 / 2) = 3 failed rounds.
    assert_eq!((t.interval, t.fall, t.reentry), (Duration::from_secs(2), 3, Duration::from_secs(10)));
    let CheckConfig::SendExpect(c) = &health.reals[0].config.checks[0] else { panic!("send/expect") };
    assert_eq!((c.send.as_str(), c.expect.as_deref()), ("GET / HTTP/1.0\\r\\n\\r\\n", Some("HTTP")));
    for dropped in ["`primary' dropped", "`heartbeat_port' dropped", "`debug_level' dropped", "`vip_nmask' dropped"] {
        assert!(warned(&imported, dropped), "{dropped}: {:?}", imported.warnings);
    }
    assert!(warned(&imported, "address device `eth0:0' dropped"));
}

#[test]
fn keepalived_virtual_servers_checkers_quorum_and_dropped_vrrp() {
    let (imported, config) = load(Format::Keepalived, "keepalived-example.conf");
    assert_eq!(config.services.len(), 2);
    let web = &config.services[0];
    assert_eq!(web.spec.scheduler, "wrr");
    assert_eq!(web.reals.iter().map(|r| r.weight).collect::<Vec<_>>(), [3, 1]);
    let h = config.health.service(&web.spec.id).unwrap();
    assert_eq!(h.policy.on_down, OnDown::Quiesce, "inhibit_on_failure");
    assert_eq!((h.policy.quorum, h.policy.hysteresis), (2, 1));
    assert_eq!(h.policy.sorry_server.as_ref().map(|s| s.method), Some(SorryMethod::Route));
    let quorum_down = h.policy.notify.as_ref().and_then(|n| n.quorum_down.clone()).unwrap();
    assert_eq!(quorum_down, ["/usr/local/bin/page-oncall", "down"]);
    let t = h.reals[0].config.timing().unwrap();
    // delay_loop 6; retry 3 -> down on the 4th failed round; delay_before_retry 2.
    assert_eq!((t.interval, t.fall, t.rise, t.retry_interval), (Duration::from_secs(6), 4, 1, Duration::from_secs(2)));
    assert_eq!(h.reals[0].config.checks.len(), 2, "one http check per url");
    assert!(
        matches!(&h.reals[1].config.checks[..], [CheckConfig::Tcp(c)] if c.port == Some(80) && c.timeout == Some(2.0))
    );
    let fw = &config.services[1];
    assert_eq!(fw.spec.id, ServiceId::Fwmark { mark: 7, ipv6: false });
    let h = config.health.service(&fw.spec.id).unwrap();
    let CheckConfig::External(e) = &h.reals[0].config.checks[0] else { panic!("MISC_CHECK is external") };
    assert!(e.dynamic && e.args == ["198.18.2.31"] && e.timeout == Some(4.0));
    assert_eq!(h.reals[0].config.timing().unwrap().fall, 1, "MISC_CHECK retries 0 times by default");
    assert_eq!(h.reals[0].config.start, StartState::Up);
    // The VRRP part of the same file becomes a [[vrrp]] table (the failover importer's job).
    assert_eq!(config.vrrp.len(), 1, "{}", imported.toml);
    assert_eq!((config.vrrp[0].vrid, config.vrrp[0].priority), (51, 100));
    assert!(!warned(&imported, "virtual_server:"), "the LVS part is converted: {:?}", imported.warnings);
    assert!(warned(&imported, "`digest' dropped"));
    assert!(warned(&imported, "`notify_down' dropped"));
}
