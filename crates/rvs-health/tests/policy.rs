//! The policy: quiesce vs remove, dynamic weights, sorry server, quorum with hysteresis, notify
//! arguments. Expected commands are derived from the rules in `policy.rs`'s module doc.

use std::net::SocketAddr;

use rvs_api::{Command, DestSpec, MethodSpec, Proto, ServiceId};
use rvs_health::config::{NotifyConfig, OnDown, SorryMethod, SorryServerConfig};
use rvs_health::{HealthEvent, HealthEventKind, Policy, PolicyConfig};

fn svc() -> ServiceId {
    ServiceId::Addr { protocol: Proto::Tcp, addr: "198.18.0.1".parse().unwrap(), port: 80 }
}

fn real(n: u8, weight: u32) -> DestSpec {
    DestSpec {
        addr: format!("198.18.1.{n}").parse().unwrap(),
        port: 8080,
        method: MethodSpec::Masq,
        weight,
        u_threshold: 0,
        l_threshold: 0,
    }
}

fn addr(n: u8) -> SocketAddr {
    SocketAddr::new(format!("198.18.1.{n}").parse().unwrap(), 8080)
}

fn ev(n: u8, kind: HealthEventKind) -> HealthEvent {
    HealthEvent { service: svc(), real: addr(n), kind, reason: "tcp: connection refused".into() }
}

fn edit(d: DestSpec) -> Command {
    Command::EditDest { service: svc(), dest: d }
}

fn sorry() -> SorryServerConfig {
    SorryServerConfig { addr: "127.0.0.1".parse().unwrap(), port: None, method: SorryMethod::Local, weight: 1 }
}

fn sorry_dest() -> DestSpec {
    DestSpec {
        addr: "127.0.0.1".parse().unwrap(),
        port: 80,
        method: MethodSpec::Local,
        weight: 1,
        u_threshold: 0,
        l_threshold: 0,
    }
}

#[test]
fn quiesce_sets_weight_zero_and_restores_configured_weight() {
    let mut p = Policy::new(svc(), PolicyConfig::default(), vec![real(1, 3), real(2, 5)], true).unwrap();
    assert!(p.sync().is_empty(), "table already matches");
    assert_eq!(p.apply(&ev(1, HealthEventKind::Down), 0).commands, vec![edit(real(1, 0))]);
    assert!(p.apply(&ev(1, HealthEventKind::Down), 0).commands.is_empty(), "repeat is a no-op");
    assert_eq!(p.apply(&ev(1, HealthEventKind::Up), 0).commands, vec![edit(real(1, 3))]);
}

#[test]
fn remove_deletes_and_re_adds() {
    let cfg = PolicyConfig { on_down: OnDown::Remove, ..PolicyConfig::default() };
    let mut p = Policy::new(svc(), cfg, vec![real(1, 3), real(2, 5)], true).unwrap();
    assert_eq!(
        p.apply(&ev(2, HealthEventKind::Down), 0).commands,
        vec![Command::DeleteDest { service: svc(), addr: addr(2).ip(), port: 8080 }]
    );
    assert_eq!(
        p.apply(&ev(2, HealthEventKind::Up), 0).commands,
        vec![Command::AddDest { service: svc(), dest: real(2, 5) }]
    );
}

#[test]
fn dynamic_weight_overrides_until_down() {
    let mut p = Policy::new(svc(), PolicyConfig::default(), vec![real(1, 3)], true).unwrap();
    assert_eq!(p.apply(&ev(1, HealthEventKind::Weight(9)), 0).commands, vec![edit(real(1, 9))]);
    p.apply(&ev(1, HealthEventKind::Down), 0);
    // Back up without a new dynamic weight: the configured weight.
    assert_eq!(p.apply(&ev(1, HealthEventKind::Up), 0).commands, vec![edit(real(1, 3))]);
}

#[test]
fn sorry_server_only_while_no_real_server_is_healthy() {
    let cfg = PolicyConfig { sorry_server: Some(sorry()), ..PolicyConfig::default() };
    let mut p = Policy::new(svc(), cfg, vec![real(1, 1), real(2, 1)], true).unwrap();
    assert_eq!(p.apply(&ev(1, HealthEventKind::Down), 0).commands, vec![edit(real(1, 0))]);
    // Last one down: the sorry server is added (adds come first), the real one quiesced.
    assert_eq!(
        p.apply(&ev(2, HealthEventKind::Down), 0).commands,
        vec![Command::AddDest { service: svc(), dest: sorry_dest() }, edit(real(2, 0))]
    );
    assert!(!p.has_quorum());
    // One back: real restored, sorry removed.
    assert_eq!(
        p.apply(&ev(2, HealthEventKind::Up), 0).commands,
        vec![edit(real(2, 1)), Command::DeleteDest { service: svc(), addr: "127.0.0.1".parse().unwrap(), port: 80 }]
    );
}

#[test]
fn quorum_with_hysteresis() {
    // Four servers of weight 1, quorum 2, hysteresis 1: lost when live weight < 1, regained at ≥ 3.
    let cfg = PolicyConfig { sorry_server: Some(sorry()), quorum: 2, hysteresis: 1, ..PolicyConfig::default() };
    let reals: Vec<DestSpec> = (1..=4).map(|n| real(n, 1)).collect();
    let mut p = Policy::new(svc(), cfg, reals, true).unwrap();
    for n in 1..=3 {
        p.apply(&ev(n, HealthEventKind::Down), 0);
        assert!(p.has_quorum(), "live weight {} ≥ 1", 4 - n);
    }
    p.apply(&ev(4, HealthEventKind::Down), 0);
    assert!(!p.has_quorum());
    p.apply(&ev(1, HealthEventKind::Up), 0);
    // Healthy but quorum lost: server 1 stays at weight 0, the sorry server serves.
    assert!(!p.has_quorum());
    assert!(p.desired().contains(&real(1, 0)) && p.desired().contains(&sorry_dest()));
    p.apply(&ev(2, HealthEventKind::Up), 0);
    assert!(!p.has_quorum(), "2 < quorum + hysteresis = 3");
    let out = p.apply(&ev(3, HealthEventKind::Up), 0);
    assert!(p.has_quorum());
    assert_eq!(
        out.commands,
        vec![
            edit(real(1, 1)),
            edit(real(2, 1)),
            edit(real(3, 1)),
            Command::DeleteDest { service: svc(), addr: "127.0.0.1".parse().unwrap(), port: 80 }
        ]
    );
}

#[test]
fn alpha_start_sync_quiesces_everything_and_adds_sorry() {
    let cfg = PolicyConfig { sorry_server: Some(sorry()), ..PolicyConfig::default() };
    let mut p = Policy::new(svc(), cfg, vec![real(1, 2)], false).unwrap();
    assert_eq!(p.sync(), vec![Command::AddDest { service: svc(), dest: sorry_dest() }, edit(real(1, 0))]);
    assert!(p.sync().is_empty());
}

#[test]
fn set_installed_adds_missing_quiesced_servers() {
    // ldirectord readdquiescent: a down server missing from the table is added at weight 0.
    let mut p = Policy::new(svc(), PolicyConfig::default(), vec![real(1, 2)], false).unwrap();
    p.set_installed(Vec::new());
    assert_eq!(p.sync(), vec![Command::AddDest { service: svc(), dest: real(1, 0) }]);
}

#[test]
fn notify_arguments_are_mon_style() {
    let notify = NotifyConfig {
        program: Some("/usr/lib/mon/alert.d/mail.alert".into()),
        args: vec!["ops@example.test".into()],
        group: Some("web".into()),
        quorum_up: Some(vec!["/bin/quorum".into(), "up".into()]),
        quorum_down: Some(vec!["/bin/quorum".into(), "down".into()]),
        timeout: 5.0,
    };
    let cfg = PolicyConfig { notify: Some(notify), ..PolicyConfig::default() };
    let mut p = Policy::new(svc(), cfg, vec![real(1, 1)], true).unwrap();
    let out = p.apply(&ev(1, HealthEventKind::Down), 1000);
    assert_eq!(out.notify.len(), 2, "real down + quorum down");
    let argv: Vec<&str> = out.notify[0].argv.iter().map(String::as_str).collect();
    assert_eq!(
        argv,
        [
            "/usr/lib/mon/alert.d/mail.alert",
            "ops@example.test",
            "-s",
            "tcp:198.18.0.1:80",
            "-g",
            "web",
            "-h",
            "198.18.1.1:8080",
            "-t",
            "1000"
        ]
    );
    assert!(out.notify[0].env.contains(&("RVS_REASON".into(), "tcp: connection refused".into())));
    assert_eq!(out.notify[1].argv[..2], ["/bin/quorum".to_string(), "down".into()]);
    let up = p.apply(&ev(1, HealthEventKind::Up), 1001);
    assert_eq!(up.notify[0].argv.last().map(String::as_str), Some("-u"), "upalert flag");
    assert!(up.notify[1].argv.starts_with(&["/bin/quorum".to_string(), "up".into()]));
    // A weight change notifies nobody.
    assert!(p.apply(&ev(1, HealthEventKind::Weight(4)), 1002).notify.is_empty());
}

#[test]
fn notify_invocation_runs() {
    let dir = std::env::temp_dir().join(format!("rvs-health-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("out");
    let script = format!("echo \"$RVS_EVENT $*\" > {}", out.display());
    let notify = NotifyConfig {
        program: Some("sh".into()),
        args: vec!["-c".into(), script, "alert".into()],
        group: None,
        quorum_up: None,
        quorum_down: None,
        timeout: 5.0,
    };
    let cfg = PolicyConfig { notify: Some(notify), ..PolicyConfig::default() };
    let mut p = Policy::new(svc(), cfg, vec![real(1, 1)], true).unwrap();
    let inv = p.apply(&ev(1, HealthEventKind::Down), 42).notify.remove(0);
    inv.spawn().unwrap().join().unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(text, "down -s tcp:198.18.0.1:80 -g tcp:198.18.0.1:80 -h 198.18.1.1:8080 -t 42\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn events_of_other_services_and_unknown_reals_are_ignored() {
    let mut p = Policy::new(svc(), PolicyConfig::default(), vec![real(1, 1)], true).unwrap();
    let mut other = ev(1, HealthEventKind::Down);
    other.service = ServiceId::Fwmark { mark: 1, ipv6: false };
    assert_eq!(p.apply(&other, 0), Default::default());
    assert_eq!(p.apply(&ev(9, HealthEventKind::Down), 0), Default::default());
}
