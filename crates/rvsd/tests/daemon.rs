//! rvsd in-process: what an operator sees through the admin socket after start, after a
//! refused transaction, after reloads, and when the socket is fed garbage.

mod common;

use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;

use common::{CONFIG, TempDir, call, list};
use rvs_api::{ApiError, Command, DestSpec, MethodSpec, Proto, Request, Response, ServiceId, ServiceSpec};
use rvs_config::{Config, TableSpec};
use rvsd::Rvsd;
use rvsd::server::ServerLimits;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn web() -> ServiceId {
    ServiceId::Addr { protocol: Proto::Tcp, addr: ip("198.18.100.1"), port: 80 }
}

fn start(dir: &TempDir, config: &str) -> Rvsd {
    let path = dir.write_config(config);
    Rvsd::start_at(path, &dir.socket(), ServerLimits::default()).unwrap()
}

/// The running state as the socket lists it, in the form configurations take.
fn running_state(rvsd: &Rvsd) -> TableSpec {
    let table = list(rvsd.socket_path());
    let timeouts = match call(rvsd.socket_path(), &Request::Timeouts) {
        Response::Timeouts(t) => t,
        other => panic!("{other:?}"),
    };
    let daemons = match call(rvsd.socket_path(), &Request::Daemons) {
        Response::Daemons { daemons } => daemons,
        other => panic!("{other:?}"),
    };
    TableSpec::from_listing(&table, timeouts, daemons)
}

fn expect_error(r: Response) -> ApiError {
    match r {
        Response::Error(e) => e,
        other => panic!("expected an error, got {other:?}"),
    }
}

#[test]
fn the_listing_after_start_is_the_configuration() {
    let dir = TempDir::new("list");
    let config = CONFIG.to_string() + "\n[[sync_daemon]]\nrole = \"backup\"\nsyncid = 3\n";
    let rvsd = start(&dir, &config);
    let expected = Config::parse(&config, "x").unwrap().table();
    assert_eq!(running_state(&rvsd), expected);
    // Spot checks in the listing's own terms.
    let table = list(rvsd.socket_path());
    assert_eq!(table.conn_tab_size, 4096);
    assert_eq!(table.services.len(), 2);
    assert_eq!(table.services[0].dests.len(), 2);
    assert_eq!(table.services[1].dests[0].spec.port, 5353);
    match call(rvsd.socket_path(), &Request::Status) {
        Response::Status(s) => {
            assert_eq!(s.protocol_version, rvs_api::PROTOCOL_VERSION);
            assert_eq!(s.connections, 0);
            assert_eq!(s.counters.get("services"), Some(&2));
            assert_eq!(s.counters.get("real_servers"), Some(&3));
        }
        other => panic!("{other:?}"),
    }
    // ListService finds one service and refuses an unknown one.
    match call(rvsd.socket_path(), &Request::ListService { id: web() }) {
        Response::Table(t) => assert_eq!(t.services.len(), 1),
        other => panic!("{other:?}"),
    }
    let unknown = ServiceId::Fwmark { mark: 9, ipv6: false };
    assert_eq!(expect_error(call(rvsd.socket_path(), &Request::ListService { id: unknown })).kind, "no_such_service");
    rvsd.stop();
}

#[test]
fn a_bad_transaction_changes_nothing_and_names_the_failing_command() {
    let dir = TempDir::new("apply");
    let rvsd = start(&dir, CONFIG);
    let before = running_state(&rvsd);
    let new_svc = ServiceSpec {
        id: ServiceId::Addr { protocol: Proto::Tcp, addr: ip("198.18.100.9"), port: 443 },
        scheduler: "rr".into(),
        sched_flags: vec![],
        persistence: None,
        one_packet: false,
        pe: None,
    };
    let dest = |addr: &str, weight| DestSpec {
        addr: ip(addr),
        port: 443,
        method: MethodSpec::Route,
        weight,
        u_threshold: 0,
        l_threshold: 0,
    };
    // Valid, valid, valid (a weight edit), then a real server that does not exist: index 3.
    let commands = vec![
        Command::AddService(new_svc.clone()),
        Command::AddDest { service: new_svc.id, dest: dest("198.18.2.40", 1) },
        Command::EditDest { service: web(), dest: DestSpec { port: 80, ..dest("198.18.2.21", 7) } },
        Command::EditDest { service: web(), dest: DestSpec { port: 80, ..dest("198.18.2.99", 7) } },
    ];
    let e = expect_error(call(rvsd.socket_path(), &Request::Apply { commands }));
    assert_eq!((e.kind.as_str(), e.command_index), ("no_such_dest", Some(3)));
    assert_eq!(running_state(&rvsd), before, "nothing of the refused transaction was applied");

    // Deleting a service, then adding to it in the same transaction: index 1.
    let commands = vec![
        Command::DeleteService { id: web() },
        Command::AddDest { service: web(), dest: DestSpec { port: 80, ..dest("198.18.2.50", 1) } },
    ];
    let e = expect_error(call(rvsd.socket_path(), &Request::Apply { commands }));
    assert_eq!((e.kind.as_str(), e.command_index), ("no_such_service", Some(1)));
    assert_eq!(running_state(&rvsd), before);

    // An invalid spec late in the list (weight above 65535): index 2, message of ipvsadm.
    let commands = vec![
        Command::AddService(new_svc.clone()),
        Command::SetTimeouts { tcp: 10, tcpfin: 0, udp: 0 },
        Command::AddDest { service: new_svc.id, dest: dest("198.18.2.40", 70_000) },
    ];
    let e = expect_error(call(rvsd.socket_path(), &Request::Apply { commands }));
    assert_eq!((e.message.as_str(), e.command_index), ("illegal weight specified", Some(2)));
    assert_eq!(running_state(&rvsd), before, "not even the timeouts changed");

    // Stopping a daemon that does not run.
    let commands = vec![Command::StopDaemon { role: rvs_api::SyncRole::Master }];
    let e = expect_error(call(rvsd.socket_path(), &Request::Apply { commands }));
    assert_eq!((e.kind.as_str(), e.command_index), ("no_daemon", Some(0)));

    // The same transaction without the bad command is applied whole.
    let commands = vec![
        Command::AddService(new_svc.clone()),
        Command::AddDest { service: new_svc.id, dest: dest("198.18.2.40", 1) },
        Command::EditDest { service: web(), dest: DestSpec { port: 80, ..dest("198.18.2.21", 7) } },
    ];
    assert_eq!(call(rvsd.socket_path(), &Request::Apply { commands }), Response::Applied);
    let after = running_state(&rvsd);
    assert_eq!(after.services.len(), 3);
    assert_eq!(after.service(&web()).unwrap().reals[0].weight, 7);
    rvsd.stop();
}

#[test]
fn a_reload_applies_the_difference_and_a_refused_one_keeps_the_old_table() {
    let dir = TempDir::new("reload");
    let rvsd = start(&dir, CONFIG);
    let before = running_state(&rvsd);

    // A broken file (unknown key on line 3): refused, with file and line, nothing changes.
    let broken = CONFIG.replacen("scheduler = \"wlc\"", "schedular = \"rr\"", 1);
    dir.write_config(&broken);
    let e = expect_error(call(rvsd.socket_path(), &Request::Reload));
    assert!(e.message.contains("rvs.toml:4:1: service.schedular"), "{}", e.message);
    assert_eq!(running_state(&rvsd), before);
    assert_eq!(rvsd.running_config(), Config::parse(CONFIG, "x").unwrap());

    // A file that parses but breaks an ipvsadm rule (one_packet on TCP): refused too.
    dir.write_config(&CONFIG.replacen("scheduler = \"wlc\"", "one_packet = true", 1));
    assert!(rvsd.reload().is_err());
    assert_eq!(running_state(&rvsd), before);

    // A good change: weight, a removed real server, a new timeout.
    let changed = CONFIG
        .replacen("address = \"198.18.2.21:80\"\nweight = 1", "address = \"198.18.2.21:80\"\nweight = 4", 1)
        .replacen("\n[[service.real]]\naddress = \"198.18.2.22:80\"\nweight = 1\n", "\n", 1)
        .replacen("udp = 60", "udp = 90", 1);
    dir.write_config(&changed);
    // EditDest, DeleteDest, SetTimeouts.
    assert_eq!(rvsd.reload(), Ok(3));
    assert_eq!(running_state(&rvsd), Config::parse(&changed, "x").unwrap().table());
    // Reloading the same file again changes nothing.
    assert_eq!(rvsd.reload(), Ok(0));

    // Changes made through the API are undone by a reload: the file is the truth.
    let extra = vec![Command::DeleteService { id: web() }];
    assert_eq!(call(rvsd.socket_path(), &Request::Apply { commands: extra }), Response::Applied);
    assert_eq!(call(rvsd.socket_path(), &Request::Reload), Response::Applied);
    assert_eq!(running_state(&rvsd), Config::parse(&changed, "x").unwrap().table());
    rvsd.stop();
}

#[test]
fn the_socket_is_private_and_a_stale_one_is_replaced() {
    let dir = TempDir::new("socket");
    // A socket file left behind by a dead daemon.
    drop(std::os::unix::net::UnixListener::bind(dir.socket()).unwrap());
    assert!(dir.socket().exists());
    let rvsd = start(&dir, CONFIG);
    let meta = std::fs::metadata(dir.socket()).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // A second daemon on the live socket is refused, and the first keeps serving.
    let second = Rvsd::start_at(dir.config(), &dir.socket(), ServerLimits::default());
    let err = second.expect_err("a second rvsd on a live socket must be refused");
    assert!(err.to_string().contains("another rvsd"), "{err}");
    assert_eq!(list(rvsd.socket_path()).services.len(), 2);

    // A regular file in the way is not removed.
    let other = dir.path().join("not-a-socket");
    std::fs::write(&other, "x").unwrap();
    assert!(Rvsd::start_at(dir.config(), &other, ServerLimits::default()).is_err());
    assert!(other.exists());

    rvsd.stop();
    assert!(!dir.socket().exists(), "a clean stop removes the socket");
}

/// Sends raw bytes and reads one response line (None if the daemon closed the connection).
fn raw_exchange(stream: &mut UnixStream, bytes: &[u8]) -> Option<Response> {
    stream.write_all(bytes).ok()?;
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(0) | Err(_) => return None,
            Ok(_) if byte[0] == b'\n' => break,
            Ok(_) => line.push(byte[0]),
        }
    }
    Some(serde_json::from_slice(&line).unwrap())
}

#[test]
fn garbage_and_oversized_lines_get_errors_never_a_crash() {
    let dir = TempDir::new("garbage");
    let path = dir.write_config(CONFIG);
    let limits = ServerLimits { max_line: 4096, ..ServerLimits::default() };
    let rvsd = Rvsd::start_at(path, &dir.socket(), limits).unwrap();
    let mut s = UnixStream::connect(rvsd.socket_path()).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();

    let garbage: [&[u8]; 6] = [
        b"hello\n",
        b"{\"request\":\"bogus\"}\n",
        b"{\"request\":\"apply\",\"commands\":[{\"cmd\":\"add_service\"}]}\n",
        b"\xff\xfe\x00\x01\n",
        b"{\"request\":\"list\"\n",
        &[b'['; 1000],
    ];
    for g in garbage {
        let mut bytes = g.to_vec();
        if bytes.last() != Some(&b'\n') {
            bytes.push(b'\n');
        }
        let r = raw_exchange(&mut s, &bytes).expect("an error response, connection kept");
        assert_eq!(expect_error(r).kind, "bad_request");
    }
    // Blank lines are skipped; the connection still answers real requests.
    let r = raw_exchange(&mut s, b"\n\n{\"request\":\"status\"}\n").unwrap();
    assert!(matches!(r, Response::Status(_)), "{r:?}");

    // An oversized line: an error, then the connection is closed.
    let mut big = vec![b'x'; 10_000];
    big.push(b'\n');
    let r = raw_exchange(&mut s, &big).expect("an error before closing");
    assert!(expect_error(r).message.contains("longer than 4096"));
    assert!(raw_exchange(&mut s, b"{\"request\":\"status\"}\n").is_none(), "connection closed");

    // The daemon is alive and unchanged.
    assert_eq!(list(rvsd.socket_path()).services.len(), 2);
    match call(rvsd.socket_path(), &Request::Status) {
        Response::Status(st) => assert_eq!(st.counters.get("bad_requests"), Some(&7)),
        other => panic!("{other:?}"),
    }
    // A client that disconnects mid-line does no harm either.
    let mut half = UnixStream::connect(rvsd.socket_path()).unwrap();
    half.write_all(b"{\"request\":").unwrap();
    drop(half);

    assert_eq!(list(rvsd.socket_path()).services.len(), 2);
    rvsd.stop();
}
