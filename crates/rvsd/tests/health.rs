//! Health checking in rvsd, in-process with loopback TCP listeners as real servers (the checks
//! connect to the real servers' own addresses): a dead server is quiesced or removed, comes back
//! after rise, the sorry server stands in while none is healthy, reloads do not put a dead or
//! drained server back, drains by API and by maintenance file, autoreload, and a hanging check
//! that does not hold up the others.

mod common;

use std::net::{IpAddr, SocketAddr, TcpListener};

use common::{TempDir, call, list, wait_until};
use rvs_api::{DestInfo, Proto, RealHealthInfo, Request, Response, ServiceId};
use rvsd::Rvsd;
use rvsd::server::ServerLimits;

const VIP: &str = "198.18.100.1";

fn web() -> ServiceId {
    ServiceId::Addr { protocol: Proto::Tcp, addr: VIP.parse().unwrap(), port: 80 }
}

/// A loopback port with a listener that can be closed and opened again.
struct Real {
    port: u16,
    listener: Option<TcpListener>,
}

impl Real {
    fn up() -> Real {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        Real { port: listener.local_addr().unwrap().port(), listener: Some(listener) }
    }
    fn kill(&mut self) {
        self.listener = None;
    }
    fn revive(&mut self) {
        self.listener = Some(TcpListener::bind(("127.0.0.1", self.port)).unwrap());
    }
    fn addr(&self) -> SocketAddr {
        SocketAddr::new(IpAddr::from([127, 0, 0, 1]), self.port)
    }
}

fn config(reals: &[&Real], health: &str, extra_real: &str) -> String {
    let mut text = format!("[[service]]\nvip = \"{VIP}:80\"\nscheduler = \"rr\"\n\n[service.health]\n{health}\n");
    for r in reals {
        text += &format!("[[service.real]]\naddress = \"{}\"\nmethod = \"nat\"\nweight = 2\n{extra_real}\n", r.addr());
    }
    text
}

const FAST: &str = "interval = 0.1\ntimeout = 0.2\nfall = 2\nrise = 2\nwarmup = false\n";

fn start(dir: &TempDir, text: &str) -> Rvsd {
    let path = dir.write_config(text);
    Rvsd::start_at(path, &dir.socket(), ServerLimits::default()).unwrap()
}

/// The web service's destination for `addr`, if listed.
fn dest(rvsd: &Rvsd, addr: SocketAddr) -> Option<DestInfo> {
    let t = list(rvsd.socket_path());
    let svc = t.services.into_iter().find(|s| s.spec.id == web())?;
    svc.dests.into_iter().find(|d| d.spec.addr == addr.ip() && d.spec.port == addr.port())
}

fn weight(rvsd: &Rvsd, addr: SocketAddr) -> Option<u32> {
    dest(rvsd, addr).map(|d| d.spec.weight)
}

fn health(rvsd: &Rvsd) -> Vec<RealHealthInfo> {
    match call(rvsd.socket_path(), &Request::Health) {
        Response::Health { reals } => reals,
        other => panic!("{other:?}"),
    }
}

fn set_drain(rvsd: &Rvsd, addr: SocketAddr, drain: bool) -> Response {
    call(rvsd.socket_path(), &Request::SetDrain { service: None, addr: addr.ip(), port: Some(addr.port()), drain })
}

#[test]
fn a_dead_server_is_quiesced_and_returns_with_its_weight() {
    let dir = TempDir::new("quiesce");
    let (mut a, b) = (Real::up(), Real::up());
    let rvsd = start(&dir, &config(&[&a, &b], FAST, ""));
    assert_eq!(weight(&rvsd, a.addr()), Some(2));
    a.kill();
    wait_until("the dead server quiesced", || weight(&rvsd, a.addr()) == Some(0));
    assert_eq!(weight(&rvsd, b.addr()), Some(2), "the live one keeps its weight");
    let h = health(&rvsd);
    let ha = h.iter().find(|r| r.port == a.port).unwrap();
    assert!(ha.checked && !ha.healthy && !ha.drained);
    assert!(ha.reason.starts_with("tcp:"), "the reason names the failing check: {}", ha.reason);
    a.revive();
    wait_until("the revived server back at weight 2", || weight(&rvsd, a.addr()) == Some(2));
    rvsd.stop();
}

#[test]
fn remove_semantics_and_the_sorry_server_while_none_is_healthy() {
    let dir = TempDir::new("remove");
    let (mut a, mut b) = (Real::up(), Real::up());
    let sorry = Real::up();
    let policy = format!(
        "{FAST}on_down = \"remove\"\nsorry_server = {{ addr = \"127.0.0.1\", port = {}, method = \"masq\" }}\n",
        sorry.port
    );
    let rvsd = start(&dir, &config(&[&a, &b], &policy, ""));
    assert_eq!(dest(&rvsd, sorry.addr()).map(|d| d.spec.weight), None, "no sorry server while servers are up");
    a.kill();
    wait_until("the dead server removed", || dest(&rvsd, a.addr()).is_none());
    assert!(dest(&rvsd, sorry.addr()).is_none(), "one healthy server left: no sorry server");
    b.kill();
    wait_until("the sorry server in", || dest(&rvsd, sorry.addr()).is_some());
    assert!(dest(&rvsd, b.addr()).is_none());
    b.revive();
    wait_until("b back", || weight(&rvsd, b.addr()) == Some(2));
    wait_until("the sorry server out", || dest(&rvsd, sorry.addr()).is_none());
    rvsd.stop();
}

#[test]
fn a_reload_keeps_a_dead_or_drained_server_out_and_applies_config_changes() {
    let dir = TempDir::new("reload");
    let (mut a, b, c) = (Real::up(), Real::up(), Real::up());
    let rvsd = start(&dir, &config(&[&a, &b, &c], FAST, ""));
    a.kill();
    wait_until("a quiesced", || weight(&rvsd, a.addr()) == Some(0));
    assert_eq!(set_drain(&rvsd, b.addr(), true), Response::Applied);
    assert_eq!(weight(&rvsd, b.addr()), Some(0), "a drain is applied at once");
    // Same file: nothing changes.
    assert_eq!(rvsd.reload(), Ok(0));
    assert_eq!((weight(&rvsd, a.addr()), weight(&rvsd, b.addr())), (Some(0), Some(0)));
    // New weights in the file: only the healthy, undrained server takes its new weight now.
    let text = config(&[&a, &b, &c], FAST, "").replace("weight = 2", "weight = 5");
    dir.write_config(&text);
    assert_eq!(rvsd.reload(), Ok(1), "one EditDest: c's weight");
    assert_eq!(
        (weight(&rvsd, a.addr()), weight(&rvsd, b.addr()), weight(&rvsd, c.addr())),
        (Some(0), Some(0), Some(5))
    );
    // After the reload the carried state goes on: a returns with the new weight, b on undrain.
    a.revive();
    wait_until("a back with its new weight", || weight(&rvsd, a.addr()) == Some(5));
    assert_eq!(set_drain(&rvsd, b.addr(), false), Response::Applied);
    assert_eq!(weight(&rvsd, b.addr()), Some(5));
    // Draining something that is not configured is an error.
    let r = call(
        rvsd.socket_path(),
        &Request::SetDrain { service: Some(web()), addr: "198.18.9.9".parse().unwrap(), port: None, drain: true },
    );
    assert!(matches!(r, Response::Error(_)), "{r:?}");
    rvsd.stop();
}

#[test]
fn a_maintenance_file_drains_and_autoreload_picks_up_edits() {
    let dir = TempDir::new("maint");
    let maint = dir.path().join("maintenance");
    std::fs::create_dir_all(&maint).unwrap();
    let (a, b) = (Real::up(), Real::up());
    let globals = format!(
        "[health]\nautoreload = true\nautoreload_interval = 0.1\nmaintenance_dir = \"{}\"\nmaintenance_interval = 0.1\n\n",
        maint.display()
    );
    let text = globals.clone() + &config(&[&a, &b], FAST, "");
    let rvsd = start(&dir, &text);
    std::fs::write(maint.join(format!("127.0.0.1:{}", a.port)), "").unwrap();
    wait_until("a drained by its maintenance file", || weight(&rvsd, a.addr()) == Some(0));
    assert!(health(&rvsd).iter().any(|r| r.port == a.port && r.drained && r.healthy));
    std::fs::remove_file(maint.join(format!("127.0.0.1:{}", a.port))).unwrap();
    wait_until("a back", || weight(&rvsd, a.addr()) == Some(2));
    // An `IP` file drains every port of that address.
    std::fs::write(maint.join("127.0.0.1"), "").unwrap();
    wait_until("both drained", || weight(&rvsd, a.addr()) == Some(0) && weight(&rvsd, b.addr()) == Some(0));
    std::fs::remove_file(maint.join("127.0.0.1")).unwrap();
    wait_until("both back", || weight(&rvsd, a.addr()) == Some(2) && weight(&rvsd, b.addr()) == Some(2));
    // Autoreload: the file changes, rvsd applies it without a signal.
    let edited = globals + &config(&[&a, &b], FAST, "").replace("weight = 2", "weight = 7");
    std::fs::write(dir.config(), edited).unwrap();
    wait_until("the edit applied by autoreload", || weight(&rvsd, a.addr()) == Some(7));
    rvsd.stop();
}

#[test]
fn a_hanging_check_does_not_hold_up_the_others() {
    let dir = TempDir::new("hang");
    let (mut a, b) = (Real::up(), Real::up());
    let mut text = format!("[[service]]\nvip = \"{VIP}:80\"\n\n[service.health]\n{FAST}\n");
    // b's check never answers within its timeout (an external command that sleeps).
    text += &format!("[[service.real]]\naddress = \"{}\"\nmethod = \"nat\"\nweight = 2\n\n", a.addr());
    text += &format!(
        "[[service.real]]\naddress = \"{}\"\nmethod = \"nat\"\nweight = 2\n[[service.real.check]]\ntype = \"external\"\nprogram = \"sleep\"\nargs = [\"30\"]\n",
        b.addr()
    );
    let rvsd = start(&dir, &text);
    a.kill();
    wait_until("a quiesced while b's check hangs", || weight(&rvsd, a.addr()) == Some(0));
    wait_until("b down on its timeout", || weight(&rvsd, b.addr()) == Some(0));
    let h = health(&rvsd);
    let hb = h.iter().find(|r| r.port == b.port).unwrap();
    assert!(!hb.healthy, "{hb:?}");
    a.revive();
    wait_until("a back", || weight(&rvsd, a.addr()) == Some(2));
    rvsd.stop();
}

#[test]
fn imported_configurations_load_in_rvsd() {
    use rvs_config::import::{Format, import};
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/../rvs-config/tests/fixtures/import/");
    for (format, file) in [
        (Format::Ldirectord, "ldirectord-seed003.cf"),
        (Format::Ldirectord, "ldirectord-seed002-web.cf"),
        (Format::Ldirectord, "ldirectord-seed002-fwm.cf"),
        (Format::Piranha, "piranha-seed000-lvs.cf"),
        (Format::Keepalived, "keepalived-example.conf"),
    ] {
        let source = std::fs::read_to_string(format!("{fixtures}{file}")).unwrap();
        let imported = import(format, &source, file).unwrap();
        let dir = TempDir::new("import");
        let rvsd = start(&dir, &imported.toml);
        let expected = rvs_config::Config::parse(&imported.toml, file).unwrap();
        assert_eq!(list(rvsd.socket_path()).services.len(), expected.services.len(), "{file}");
        let checked: usize = expected.health.services.iter().map(|s| s.reals.len()).sum();
        assert_eq!(health(&rvsd).iter().filter(|r| r.checked).count(), checked, "{file}: every real server checked");
        rvsd.stop();
    }
}

#[test]
fn passive_failures_make_a_dead_server_leave_before_its_next_round() {
    use rvs_health::Observation;
    let dir = TempDir::new("passive");
    let (mut a, b) = (Real::up(), Real::up());
    // A round every 60 s: without the passive hook a death goes unnoticed for up to a minute.
    let slow = "interval = 60\ntimeout = 0.2\nfall = 1\nrise = 1\nwarmup = false\n";
    // Without warm-up the first rounds are spread evenly over the first interval: b (first)
    // at once, a (second) 30 s after the start. So only the passive hook can take a out now.
    let rvsd = start(&dir, &config(&[&b, &a], slow, ""));
    assert_eq!(weight(&rvsd, a.addr()), Some(2));
    a.kill();
    let plane = rvsd.health().expect("health checking runs");
    // What the data path would report: SYNs answered by RST (nothing listens any more).
    for _ in 0..3 {
        plane.observe(web(), a.addr(), Observation::SynForwarded);
        plane.observe(web(), a.addr(), Observation::RstToSyn);
    }
    wait_until("a quiesced on the passive suspicion", || weight(&rvsd, a.addr()) == Some(0));
    assert_eq!(weight(&rvsd, b.addr()), Some(2));
    rvsd.stop();
}
