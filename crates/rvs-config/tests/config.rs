//! The configuration as an operator uses it: the documented example parses to what it says,
//! every kind of mistake is reported at its line with its field, and reloads produce the
//! minimal transaction.

use std::net::IpAddr;

use rvs_api::{Command, DestSpec, MethodSpec, NetmaskSpec, PersistenceSpec, Proto, ServiceId, SyncRole};
use rvs_config::{Config, ConfigError, ErrorKind, LogLevel, diff};

/// The first ```toml block of docs/config.md: the documented example.
fn documented_example() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config.md")).unwrap();
    let start = doc.find("```toml\n").unwrap() + "```toml\n".len();
    let len = doc[start..].find("```").unwrap();
    doc[start..start + len].to_string()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn parse(src: &str) -> Result<Config, ConfigError> {
    Config::parse(src, "test.toml")
}

fn err(src: &str) -> ConfigError {
    parse(src).expect_err("the configuration should be refused")
}

const WEB: &str = r#"
[[service]]
vip = "198.18.100.1:80"
scheduler = "wlc"

[[service.real]]
address = "198.18.2.21:80"
weight = 1

[[service.real]]
address = "198.18.2.22:80"
weight = 1
"#;

#[test]
fn the_documented_example_parses_to_what_it_says() {
    let c = parse(&documented_example()).unwrap();
    assert_eq!(c.director.interfaces, vec!["eth0"]);
    assert_eq!(c.director.addresses, vec![ip("198.18.0.2"), ip("fd00::2")]);
    assert_eq!(c.director.source_v4(), Some("198.18.0.2".parse().unwrap()));
    assert_eq!(c.director.source_v6(), Some("fd00::2".parse().unwrap()));
    assert_eq!(c.director.socket.to_str(), Some("/run/rvsd.sock"));
    assert_eq!(c.director.max_connections, 1 << 20);
    assert_eq!(c.director.log_level, LogLevel::Info);
    assert_eq!(c.services.len(), 4);

    let web = &c.services[0];
    assert_eq!(web.spec.id, ServiceId::Addr { protocol: Proto::Tcp, addr: ip("198.18.100.1"), port: 80 });
    assert_eq!(web.spec.scheduler, "wlc");
    assert_eq!(web.spec.persistence, None);
    // The second real server has no port: it defaults to the virtual port (ipvsadm -r).
    assert_eq!(
        web.reals,
        vec![
            DestSpec {
                addr: ip("198.18.2.21"),
                port: 80,
                method: MethodSpec::Route,
                weight: 1,
                u_threshold: 0,
                l_threshold: 0
            },
            DestSpec {
                addr: ip("198.18.2.22"),
                port: 80,
                method: MethodSpec::Route,
                weight: 3,
                u_threshold: 0,
                l_threshold: 0
            },
        ]
    );

    let https = &c.services[1];
    assert_eq!(https.spec.id, ServiceId::Addr { protocol: Proto::Tcp, addr: ip("198.18.100.1"), port: 443 });
    assert_eq!(
        https.spec.persistence,
        Some(PersistenceSpec { timeout: 360, netmask: NetmaskSpec::V4("255.255.255.0".parse().unwrap()) })
    );
    assert_eq!(https.reals[0].port, 8443, "NAT keeps its own port");
    assert_eq!(https.reals[0].method, MethodSpec::Masq);
    assert_eq!((https.reals[1].u_threshold, https.reals[1].l_threshold), (1000, 800));

    let dns = &c.services[2];
    assert_eq!(dns.spec.id, ServiceId::Addr { protocol: Proto::Udp, addr: ip("fd00::100"), port: 53 });
    assert_eq!(dns.spec.sched_flags, vec!["sh-port"]);
    assert!(dns.spec.one_packet);
    assert_eq!(
        dns.reals[0].method,
        MethodSpec::Tunnel { tun_type: "gue".into(), tun_port: 6080, tun_csum: "csum".into() }
    );

    let fwm = &c.services[3];
    assert_eq!(fwm.spec.id, ServiceId::Fwmark { mark: 1, ipv6: false });
    // `persistent = true` is ipvsadm's -p without a value: 360 s, host mask.
    assert_eq!(
        fwm.spec.persistence,
        Some(PersistenceSpec { timeout: 360, netmask: NetmaskSpec::V4("255.255.255.255".parse().unwrap()) })
    );
    assert_eq!(fwm.reals[0].port, 0, "a fwmark real server without port keeps port 0");
    assert_eq!(
        fwm.reals[0].method,
        MethodSpec::Tunnel { tun_type: "ipip".into(), tun_port: 0, tun_csum: "nocsum".into() }
    );

    assert!(c.sysctl.expire_nodest_conn);
    assert_eq!(c.sysctl.conn_reuse_mode, 1);
    assert_eq!(c.sysctl.drop_entry, 1);
    assert_eq!(c.sysctl.amemthresh, 1024, "kernel default");
    assert_eq!((c.timeouts.tcp, c.timeouts.tcpfin, c.timeouts.udp), (900, 60, 300));
    assert_eq!(c.sync_daemons.len(), 1);
    let d = &c.sync_daemons[0];
    assert_eq!((d.role, d.mcast_interface.as_str(), d.syncid), (SyncRole::Master, "eth1", 7));
    // ipvsadm's --start-daemon defaults.
    assert_eq!((d.maxlen, d.group, d.port, d.ttl), (1472, ip("224.0.0.81"), 8848, 1));
}

#[test]
fn commands_build_the_configuration_in_order() {
    let c = parse(&documented_example()).unwrap();
    let cmds = c.commands();
    // 4 services + 6 real servers, then timeouts (tcpfin differs from 120), then the daemon.
    assert_eq!(cmds.len(), 4 + 6 + 1 + 1);
    assert_eq!(cmds[0], Command::AddService(c.services[0].spec.clone()));
    assert_eq!(cmds[1], Command::AddDest { service: c.services[0].spec.id, dest: c.services[0].reals[0].clone() });
    assert_eq!(cmds[2], Command::AddDest { service: c.services[0].spec.id, dest: c.services[0].reals[1].clone() });
    assert_eq!(cmds[3], Command::AddService(c.services[1].spec.clone()));
    assert_eq!(cmds[10], Command::SetTimeouts { tcp: 900, tcpfin: 60, udp: 300 });
    assert_eq!(cmds[11], Command::StartDaemon(c.sync_daemons[0].clone()));
}

#[test]
fn an_empty_file_is_an_empty_director_with_defaults() {
    let c = parse("").unwrap();
    assert!(c.services.is_empty());
    assert!(c.commands().is_empty(), "defaults need no command");
    assert_eq!(c.director.socket.to_str(), Some(rvs_api::DEFAULT_SOCKET));
    assert_eq!(c.sysctl.tunables(), rvs_core::engine::Tunables::default());
}

#[test]
fn every_spec_is_accepted_by_the_api_conversions() {
    // What the config produces must be what rvsd accepts: run each through rvs-api.
    let c = parse(&documented_example()).unwrap();
    for s in &c.services {
        let cfg = s.spec.to_config().unwrap();
        assert_eq!(rvs_api::ServiceSpec::from_config(&cfg), s.spec, "specs are canonical");
        for d in &s.reals {
            assert_eq!(DestSpec::from_config(&d.to_config().unwrap()), *d);
        }
    }
}

// ---- errors: kind, line, field ----------------------------------------------------------

fn assert_error(e: &ConfigError, kind: ErrorKind, line: usize, field: &str, message_part: &str) {
    assert_eq!(e.kind, kind, "{e}");
    assert_eq!(e.line, line, "{e}");
    assert_eq!(e.field, field, "{e}");
    assert!(e.message.contains(message_part), "{e}");
    assert_eq!(e.file, "test.toml");
    assert!(e.to_string().starts_with(&format!("test.toml:{line}:")), "{e}");
}

#[test]
fn syntax_errors_carry_their_line() {
    // Line 3 has an unterminated string.
    let e = err("[director]\nlog_level = \"info\"\nsocket = \"/run/x\n");
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert_eq!(e.line, 3);
}

#[test]
fn unknown_keys_are_refused_with_their_table() {
    // `weigth` (line 8) is a typo for `weight`.
    let src = WEB.replace("address = \"198.18.2.21:80\"\nweight = 1", "address = \"198.18.2.21:80\"\nweigth = 1");
    let e = err(&src);
    assert_error(&e, ErrorKind::UnknownField, 8, "service.real.weigth", "unknown field `weigth`");

    let e = err("[director]\ninterface = [\"eth0\"]\n");
    assert_error(&e, ErrorKind::UnknownField, 2, "director.interface", "unknown field");

    let e = err("[sysctl]\nexpire_nodest = 1\n");
    assert_error(&e, ErrorKind::UnknownField, 2, "sysctl.expire_nodest", "unknown field");

    let e = err("[nonsense]\n");
    assert_eq!((e.kind, e.line), (ErrorKind::UnknownField, 1));
}

#[test]
fn missing_required_fields_are_reported() {
    // The real server table starting at line 4 has no address.
    let e = err("[[service]]\nvip = \"198.18.100.1:80\"\n\n[[service.real]]\nweight = 2\n");
    assert_error(&e, ErrorKind::MissingField, 4, "service.real.address", "missing field `address`");

    // A service with neither vip nor fwmark (starts at line 2).
    let e = err("\n[[service]]\nscheduler = \"rr\"\n");
    assert_error(&e, ErrorKind::MissingField, 2, "service[0]", "needs `vip'");
}

#[test]
fn invalid_values_are_refused_with_ipvsadm_meaning() {
    // weight above 65535 on line 8.
    let e = err(&WEB.replace("weight = 1\n\n[[service.real]]", "weight = 70000\n\n[[service.real]]"));
    assert_error(&e, ErrorKind::InvalidValue, 8, "service[0].real[0].weight", "illegal weight specified");

    // Port 0 without persistence (line 3).
    let e = err("[[service]]\nprotocol = \"udp\"\nvip = \"198.18.100.1\"\n");
    assert_error(&e, ErrorKind::InvalidValue, 3, "service[0].vip", "Zero port specified for non-persistent service");

    // One-packet scheduling on TCP (line 3).
    let e = err("[[service]]\nvip = \"198.18.100.1:80\"\none_packet = true\n");
    assert_error(&e, ErrorKind::InvalidValue, 3, "service[0].one_packet", "only for UDP");

    // Persistence timeout 0 and beyond 31 days (line 3).
    let e = err("[[service]]\nvip = \"198.18.100.1:80\"\npersistent = 0\n");
    assert_error(&e, ErrorKind::InvalidValue, 3, "service[0].persistent", "invalid timeout value `0' specified");
    let e = err("[[service]]\nvip = \"198.18.100.1:80\"\npersistent = 2678401\n");
    assert_error(&e, ErrorKind::InvalidValue, 3, "service[0].persistent", "`2678401'");

    // Unknown scheduler (line 3) and incompatible flag (line 4).
    let e = err("[[service]]\nvip = \"198.18.100.1:80\"\nscheduler = \"fastest\"\n");
    assert_error(&e, ErrorKind::InvalidValue, 3, "service[0].scheduler", "Scheduler or persistence engine not found");
    let e = err("[[service]]\nvip = \"198.18.100.1:80\"\nscheduler = \"rr\"\nsched_flags = [\"sh-port\"]\n");
    assert_error(&e, ErrorKind::InvalidValue, 4, "service[0].sched_flags", "scheduler flag");

    // An IPv4 mask on an IPv6 service (line 4).
    let e = err("[[service]]\nvip = \"[fd00::1]:80\"\npersistent = 60\nnetmask = \"255.255.255.0\"\n");
    assert_error(&e, ErrorKind::InvalidValue, 4, "service[0].netmask", "illegal virtual server netmask specified");

    // fwmark 0 (line 2).
    let e = err("[[service]]\nfwmark = 0\n");
    assert_error(&e, ErrorKind::InvalidValue, 2, "service[0].fwmark", "illegal virtual server fwmark specified: 0");

    // An unknown protocol (line 3), a negative weight (line 6): serde's type errors, located.
    let e = err("[[service]]\nvip = \"198.18.100.1:80\"\nprotocol = \"icmp\"\n");
    assert_error(&e, ErrorKind::InvalidValue, 3, "service.protocol", "icmp");
    let e = err("[[service]]\nvip = \"198.18.100.1:80\"\n[[service.real]]\naddress = \"198.18.2.1\"\n\nweight = -1\n");
    assert_error(&e, ErrorKind::InvalidValue, 6, "service.real.weight", "");

    // A real server of the other family, not tunnelled (line 4).
    let e = err("[[service]]\nvip = \"198.18.100.1:80\"\n[[service.real]]\naddress = \"[fd00::5]:80\"\n");
    assert_error(&e, ErrorKind::InvalidValue, 4, "service[0].real[0].address", "only for tunneling servers");

    // Thresholds in the wrong order (line 6 holds l_threshold).
    let e = err(
        "[[service]]\nvip = \"198.18.100.1:80\"\n[[service.real]]\naddress = \"198.18.2.1\"\nu_threshold = 10\nl_threshold = 20\n",
    );
    assert_error(&e, ErrorKind::InvalidValue, 6, "service[0].real[0].l_threshold", "lower threshold");

    // GUE without its port (line 5 holds tun_type; the error points at the address, line 4).
    let e = err(
        "[[service]]\nvip = \"198.18.100.1:80\"\n[[service.real]]\naddress = \"198.18.2.1\"\nmethod = \"tun\"\ntun_type = \"gue\"\n",
    );
    assert_error(
        &e,
        ErrorKind::InvalidValue,
        4,
        "service[0].real[0].tun_port",
        "--tun-port is required for gue tunnels",
    );

    // Not an address (line 2), a timeout out of range (line 3), a defence mode 4 (line 2).
    let e = err("[[service]]\nvip = \"www.example:80\"\n");
    assert_error(&e, ErrorKind::InvalidValue, 2, "service[0].vip", "not an address");
    let e = err("[timeouts]\ntcp = 900\nudp = 0\n");
    assert_error(&e, ErrorKind::InvalidValue, 3, "timeouts.udp", "invalid timeout value `0' specified");
    let e = err("[sysctl]\ndrop_packet = 4\n");
    assert_error(&e, ErrorKind::InvalidValue, 2, "sysctl.drop_packet", "must be 0, 1, 2 or 3");
    let e = err("[sysctl]\nsloppy_tcp = 2\n");
    assert_error(&e, ErrorKind::InvalidValue, 2, "sysctl.sloppy_tcp", "true/false or 1/0");
    let e = err("[[sync_daemon]]\nrole = \"master\"\ngroup = \"198.18.0.1\"\n");
    assert_error(&e, ErrorKind::InvalidValue, 3, "sync_daemon[0].group", "not a multicast address");
    let e = err("[director]\nsocket = \"rvsd.sock\"\n");
    assert_error(&e, ErrorKind::InvalidValue, 2, "director.socket", "absolute");
}

#[test]
fn duplicates_are_refused_at_the_second_occurrence() {
    // The second service (line 6) repeats the first's VIP (line 2).
    let src = "[[service]]\nvip = \"198.18.100.1:80\"\n\n[[service]]\nscheduler = \"rr\"\nvip = \"198.18.100.1:80\"\n";
    let e = err(src);
    assert_error(&e, ErrorKind::Duplicate, 6, "service[1].vip", "already defined at line 1");

    // Same address and port but another protocol is another service.
    let ok = "[[service]]\nvip = \"198.18.100.1:53\"\n[[service]]\nvip = \"198.18.100.1:53\"\nprotocol = \"udp\"\n";
    assert_eq!(parse(ok).unwrap().services.len(), 2);

    // The second real server (line 11) repeats the first.
    let e = err(&WEB.replace("198.18.2.22:80", "198.18.2.21:80"));
    assert_error(&e, ErrorKind::Duplicate, 11, "service[0].real[1].address", "duplicate real server 198.18.2.21:80");

    // DR servers take the virtual port whatever is written, so these two are the same server.
    let e = err(&WEB.replace("198.18.2.22:80", "198.18.2.21:8080"));
    assert_eq!((e.kind, e.line), (ErrorKind::Duplicate, 11));
    // With NAT the ports are kept, so they are two servers.
    let nat = "[[service]]\nvip = \"198.18.100.1:80\"\n[[service.real]]\naddress = \"198.18.2.21:80\"\nmethod = \"nat\"\n[[service.real]]\naddress = \"198.18.2.21:8080\"\nmethod = \"nat\"\n";
    assert_eq!(parse(nat).unwrap().services[0].reals.len(), 2);

    // Two fwmark services with one mark (line 4), but IPv4 and IPv6 marks are distinct.
    let e = err("[[service]]\nfwmark = 5\n[[service]]\nfwmark = 5\n");
    assert_error(&e, ErrorKind::Duplicate, 4, "service[1].fwmark", "FWM 5");
    assert!(parse("[[service]]\nfwmark = 5\n[[service]]\nfwmark = 5\nipv6 = true\n").is_ok());

    let e = err("[director]\ninterfaces = [\"eth0\", \"eth0\"]\n");
    assert_eq!((e.kind, e.line, e.field.as_str()), (ErrorKind::Duplicate, 2, "director.interfaces[1]"));
    let e = err("[[sync_daemon]]\nrole = \"backup\"\n[[sync_daemon]]\nrole = \"backup\"\n");
    assert_error(&e, ErrorKind::Duplicate, 4, "sync_daemon[1].role", "backup");
}

#[test]
fn conflicting_settings_are_refused() {
    let e = err("[[service]]\nvip = \"198.18.100.1:80\"\nfwmark = 3\n");
    assert_error(&e, ErrorKind::Conflict, 3, "service[0].fwmark", "exclude each other");
    let e = err("[[service]]\nfwmark = 3\nprotocol = \"udp\"\n");
    assert_error(&e, ErrorKind::Conflict, 3, "service[0].protocol", "not allowed with `fwmark'");
    let e = err("[[service]]\nvip = \"198.18.100.1:80\"\nipv6 = true\n");
    assert_error(&e, ErrorKind::Conflict, 3, "service[0].ipv6", "only for fwmark");
    let e = err("[[service]]\nvip = \"198.18.100.1:80\"\nnetmask = \"255.255.0.0\"\n");
    assert_error(&e, ErrorKind::Conflict, 3, "service[0].netmask", "needs `persistent'");
    // Tunnel options on a DR server (line 5): ipvsadm's message.
    let e =
        err("[[service]]\nvip = \"198.18.100.1:80\"\n[[service.real]]\naddress = \"198.18.2.1\"\ntun_type = \"gre\"\n");
    assert_error(
        &e,
        ErrorKind::Conflict,
        5,
        "service[0].real[0].tun_type",
        "Tunnel options conflict with forward method",
    );
    let e = err(
        "[[service]]\nvip = \"198.18.100.1:80\"\n[[service.real]]\naddress = \"198.18.2.1\"\nmethod = \"tun\"\ntun_port = 6080\n",
    );
    assert_error(&e, ErrorKind::Conflict, 6, "service[0].real[0].tun_port", "only for gue");
}

#[test]
fn an_unreadable_file_is_an_io_error() {
    let e = Config::load("/nonexistent/rvs.toml").unwrap_err();
    assert_eq!((e.kind, e.line), (ErrorKind::Io, 0));
    assert!(e.to_string().starts_with("/nonexistent/rvs.toml: cannot read"), "{e}");
}

// ---- diff ---------------------------------------------------------------------------------

fn web() -> Config {
    parse(WEB).unwrap()
}

fn vip() -> ServiceId {
    ServiceId::Addr { protocol: Proto::Tcp, addr: ip("198.18.100.1"), port: 80 }
}

#[test]
fn identical_configurations_give_an_empty_transaction() {
    assert!(diff(&web(), &web()).is_empty());
    let doc = parse(&documented_example()).unwrap();
    assert!(diff(&doc, &doc).is_empty());
}

#[test]
fn a_weight_change_is_one_edit_dest() {
    let new =
        parse(&WEB.replace("address = \"198.18.2.22:80\"\nweight = 1", "address = \"198.18.2.22:80\"\nweight = 5"))
            .unwrap();
    let cmds = diff(&web(), &new);
    assert_eq!(
        cmds,
        vec![Command::EditDest {
            service: vip(),
            dest: DestSpec {
                addr: ip("198.18.2.22"),
                port: 80,
                method: MethodSpec::Route,
                weight: 5,
                u_threshold: 0,
                l_threshold: 0
            }
        }]
    );
}

#[test]
fn a_removed_real_server_is_one_delete_dest() {
    let src = WEB.replace("\n[[service.real]]\naddress = \"198.18.2.22:80\"\nweight = 1\n", "\n");
    let new = parse(&src).unwrap();
    assert_eq!(new.services[0].reals.len(), 1);
    assert_eq!(diff(&web(), &new), vec![Command::DeleteDest { service: vip(), addr: ip("198.18.2.22"), port: 80 }]);
    // And back: one AddDest.
    assert_eq!(diff(&new, &web()), vec![Command::AddDest { service: vip(), dest: web().services[0].reals[1].clone() }]);
}

#[test]
fn a_scheduler_change_is_one_edit_service() {
    let new = parse(&WEB.replace("scheduler = \"wlc\"", "scheduler = \"rr\"")).unwrap();
    let cmds = diff(&web(), &new);
    assert_eq!(cmds, vec![Command::EditService(new.services[0].spec.clone())]);
    assert!(matches!(&cmds[0], Command::EditService(s) if s.scheduler == "rr"));
}

#[test]
fn services_added_and_removed_and_everything_else() {
    let old = web();
    let new = parse(
        r#"
[[service]]
vip = "198.18.100.2:80"
[[service.real]]
address = "198.18.2.30"

[timeouts]
udp = 30

[[sync_daemon]]
role = "backup"
"#,
    )
    .unwrap();
    let cmds = diff(&old, &new);
    let new_vip = new.services[0].spec.id;
    assert_eq!(
        cmds,
        vec![
            Command::DeleteService { id: vip() },
            Command::AddService(new.services[0].spec.clone()),
            Command::AddDest { service: new_vip, dest: new.services[0].reals[0].clone() },
            // Unset timeouts are the defaults, so a reload restores them.
            Command::SetTimeouts { tcp: 900, tcpfin: 120, udp: 30 },
            Command::StartDaemon(new.sync_daemons[0].clone()),
        ]
    );
    // A changed daemon is stopped and started again; a removed one stopped.
    let changed = parse("[[sync_daemon]]\nrole = \"backup\"\nsyncid = 9\n").unwrap();
    assert_eq!(
        diff(&new, &changed),
        vec![
            Command::StopDaemon { role: SyncRole::Backup },
            Command::DeleteService { id: new_vip },
            Command::SetTimeouts { tcp: 900, tcpfin: 120, udp: 300 },
            Command::StartDaemon(changed.sync_daemons[0].clone()),
        ]
    );
}

#[test]
fn a_method_change_that_moves_the_port_is_delete_and_add() {
    // NAT to 8080 -> DR: the effective port becomes 80, so it is another real server.
    let nat =
        "[[service]]\nvip = \"198.18.100.1:80\"\n[[service.real]]\naddress = \"198.18.2.21:8080\"\nmethod = \"nat\"\n";
    let dr =
        "[[service]]\nvip = \"198.18.100.1:80\"\n[[service.real]]\naddress = \"198.18.2.21:8080\"\nmethod = \"dr\"\n";
    let cmds = diff(&parse(nat).unwrap(), &parse(dr).unwrap());
    assert_eq!(cmds.len(), 2);
    assert_eq!(cmds[0], Command::DeleteDest { service: vip(), addr: ip("198.18.2.21"), port: 8080 });
    assert!(matches!(&cmds[1], Command::AddDest { dest, .. } if dest.port == 80 && dest.method == MethodSpec::Route));
    // DR -> TUN keeps the port: an edit.
    let tun = dr.replace("\"dr\"", "\"tun\"");
    let cmds = diff(&parse(dr).unwrap(), &parse(&tun).unwrap());
    assert!(matches!(cmds.as_slice(), [Command::EditDest { .. }]), "{cmds:?}");
}
