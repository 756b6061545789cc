//! The command line: every command, the legality matrix, ipvsadm's error messages and exit
//! codes (2 usage, 255 unknown option / first option not a command), and the commands built.

use std::net::{IpAddr, Ipv4Addr};

use rvs_api::{
    Command, DestSpec, MethodSpec, NetmaskSpec, PersistenceSpec, Proto, ServiceId, ServiceSpec, SyncDaemonSpec,
    SyncRole,
};
use rvsadm::names::Names;
use rvsadm::parse::{Action, Format, Invocation, ListWhat, parse_command_line};

/// A few fixed names: host `www` = 192.0.2.80, service `http` = 80 (tcp) / `domain` = 53 (udp).
struct FixedNames;

impl Names for FixedNames {
    fn host_v4(&self, name: &str) -> Option<Ipv4Addr> {
        (name == "www").then(|| Ipv4Addr::new(192, 0, 2, 80))
    }
    fn port_by_name(&self, name: &str, proto: Proto) -> Option<u16> {
        match (name, proto) {
            ("http", Proto::Tcp) => Some(80),
            ("domain", Proto::Udp) => Some(53),
            _ => None,
        }
    }
    fn host_by_addr(&self, _: IpAddr) -> Option<String> {
        None
    }
    fn service_by_port(&self, _: u16, _: Proto) -> Option<String> {
        None
    }
}

fn argv(line: &str) -> Vec<String> {
    std::iter::once("ipvsadm").chain(line.split_whitespace()).map(String::from).collect()
}

fn parse(line: &str) -> Invocation {
    parse_command_line(&argv(line), &FixedNames).unwrap_or_else(|e| panic!("{line}: {e}"))
}

/// The stderr text and the exit status of a refused command line.
fn refused(line: &str) -> (String, i32) {
    match parse_command_line(&argv(line), &FixedNames) {
        Ok(inv) => panic!("{line}: accepted as {inv:?}"),
        Err(e) => (e.render("ipvsadm"), e.exit_code()),
    }
}

fn usage(line: &str, msg: &str) {
    assert_eq!(refused(line), (format!("{msg}\n"), 2), "{line}");
}

const TRY: &str = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n";

fn command(line: &str) -> Command {
    match parse(line).action {
        Action::Apply(c) => c,
        other => panic!("{line}: {other:?}"),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp(addr: &str, port: u16) -> ServiceId {
    ServiceId::Addr { protocol: Proto::Tcp, addr: ip(addr), port }
}

#[test]
fn first_option_must_be_a_command() {
    assert_eq!(refused("--bogus"), (TRY.to_string(), 255));
    assert_eq!(refused("-Q"), (TRY.to_string(), 255));
    assert_eq!(refused("-n -L"), (TRY.to_string(), 255));
    assert_eq!(refused("foo"), (TRY.to_string(), 255));
    assert_eq!(refused("--start-daemon"), (TRY.to_string(), 255));
}

#[test]
fn popt_errors_after_the_command_exit_255() {
    assert_eq!(refused("-L --bogus"), ("--bogus: unknown option\n".into(), 255));
    assert_eq!(refused("-Lq"), ("-Lq: unknown option\n".into(), 255));
    assert_eq!(refused("-A -t"), ("-t: missing argument\n".into(), 255));
    assert_eq!(refused("-L --numeric=yes"), ("--numeric=yes: option does not take an argument\n".into(), 255));
}

#[test]
fn a_second_command_is_an_invalid_option() {
    usage("-A -D", "invalid option `-D'");
    usage("-L -L", "invalid option `-L'");
    usage("-L -h", "invalid option `-h'");
    // popt reports the last word it consumed: the daemon role here.
    usage("-L --start-daemon master", "invalid option `master'");
}

#[test]
fn legality_matrix_messages() {
    usage("-A -t 1.2.3.4:80 -t 1.2.3.4:81", "multiple 'service-address' options specified");
    usage("-a -t 1.2.3.4:80 -r 10.0.0.2 -g -m", "multiple 'forwarding-method' options specified");
    usage("-A -t 1.2.3.4:80 -w 3", "Illegal 'weight' option with the 'add-service' command");
    usage("-A -t 1.2.3.4:80 -x 3", "Illegal 'u-threshold' option with the 'add-service' command");
    usage("-D -t 1.2.3.4:80 -s rr", "Illegal 'scheduler' option with the 'delete-service' command");
    usage("-C -n", "Illegal 'numeric' option with the 'flush' command");
    usage("-A", "You need to supply the 'service-address' option for the 'add-service' command");
    usage("-a -t 1.2.3.4:80", "You need to supply the 'real-server' option for the 'add-server' command");
    usage("-d -t 1.2.3.4:80 -r 10.0.0.2 -w 2", "Illegal 'weight' option with the 'delete-server' command");
    usage("-e -t 1.2.3.4:80 -r 10.0.0.2 --tun-info", "Illegal 'tun-info' option with the 'edit-server' command");
    usage("-L -c --timeout", "The option 'timeout' conflicts with the 'connection' option in the 'list' command");
    usage(
        "-L -t 1.2.3.4:80 -c",
        "The option 'service-address' conflicts with the 'connection' option in the 'list' command",
    );
    usage("-L --timeout --daemon", "The option 'daemon' conflicts with the 'timeout' option in the 'list' command");
    usage("-L -c --stats", "options conflicts in the list command");
    usage("-L --daemon --persistent-conn", "options conflicts in the list command");
    usage("-L -s rr", "Illegal 'scheduler' option with the 'list' command");
    usage("-S --stats", "Illegal 'stats' option with the 'save' command");
    usage("-R -n", "Illegal 'numeric' option with the 'restore' command");
    usage("-Z -n", "Illegal 'numeric' option with the 'zero' command");
    usage("--set 1 2 3 -n", "Illegal 'numeric' option with the 'set' command");
    usage("--start-daemon master -n", "Illegal 'numeric' option with the 'start-daemon' command");
    usage(
        "--stop-daemon master --mcast-interface eth0",
        "Illegal 'mcast-interface' option with the 'stop-daemon' command",
    );
    usage("-A -t 1.2.3.4:80 --json", "Illegal 'json' option with the 'add-service' command");
}

#[test]
fn value_errors() {
    usage("-A -t 1.2.3.4", "Zero port specified for non-persistent service");
    usage("-A -t 1.2.3.4:80 -o", "One-Packet Scheduling is only for UDP virtual services");
    usage("-a -t 1.2.3.4:80 -r [2001:db8::5]:80 -m", "Different address family is allowed only for tunneling servers");
    usage("-a -t 1.2.3.4:80 -r 10.0.0.2 -g --tun-type gue", "Tunnel options conflict with forward method");
    usage(
        "-a -t 1.2.3.4:80 -r 10.0.0.2 -i --tun-type gue",
        "You need to supply the 'tun-port' option for the 'gue' tunnel type",
    );
    usage("-a -t 1.2.3.4:80 -r 10.0.0.2 -i --tun-port 5", "Illegal 'tun-port' option with the 'ipip' tunnel type");
    usage(
        "-a -t 1.2.3.4:80 -r 10.0.0.2 -i --tun-type gre --tun-csum --tun-nocsum",
        "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gre' tunnel type",
    );
    usage("-a -t 1.2.3.4:80 -r 10.0.0.2 -i --tun-type vxlan", "illegal tunnel type specified");
    usage("-a -t 1.2.3.4:80 -r 10.0.0.2 -i --tun-type gue --tun-port 0", "illegal tunnel port specified");
    usage("--set 1 2", "--set option requires 3 timeout values");
    usage("--set 1 2 3 4", "unexpected argument 4");
    usage("--set 1 2 x", "invalid timeout value `x' specified");
    usage("--set 1 2 2678401", "invalid timeout value `2678401' specified");
    usage("-C extra", "unexpected argument extra");
    usage("-a -t 1.2.3.4:80 -r 10.0.0.2 -w 70000", "illegal weight specified");
    usage("-a -t 1.2.3.4:80 -r 10.0.0.2 -w -1", "illegal weight specified");
    usage("-a -t 1.2.3.4:80 -r 10.0.0.2 -x 2147483648", "illegal u_threshold specified");
    usage("-a -t 1.2.3.4:80 -r 10.0.0.2 -y x", "illegal l_threshold specified");
    assert_eq!(refused("-A -t 1.2.3.4:80 -6"), ("-6 used before -f\n\n".into(), 2));
    usage("-A -f 0", "invalid fwmark value `0' specified");
    usage("-A -f 4294967296", "invalid fwmark value `4294967296' specified");
    usage("-A -t 1.2.3.4:80 -p 0", "invalid timeout value `0' specified");
    usage("-A -t 1.2.3.4:80 -M 300.1.1.1", "illegal virtual server persistent mask specified");
    usage("-A -t [2001:db8::1]:80 -M 129", "illegal ipv6 netmask specified");
    usage("-A -t 1.2.3.4:80 -s sh -b sh-port,mh-port", "incompatible scheduler flag `mh-port'");
    usage("-A -t 1.2.3.4:80 -b sh-port", "incompatible scheduler flag `sh-port'");
    usage("-A -t 1.2.3.4:80 -b bogus", "invalid scheduler flag `bogus'");
    usage("--start-daemon foo", "illegal start-daemon parameter specified");
    usage("--stop-daemon foo", "illegal start_daemon specified");
    usage("--start-daemon master --mcast-group 10.0.0.1", "invalid IPv4 mcast-group `10.0.0.1'");
    usage("--start-daemon master --mcast-group 2001:db8::1", "invalid IPv6 mcast-group `2001:db8::1'");
    usage("--start-daemon master --syncid 256", "illegal syncid specified");
    usage("--start-daemon master --mcast-port 0", "illegal mcast-port specified");
    usage("--start-daemon master --mcast-ttl 256", "illegal mcast-ttl specified");
    usage("--start-daemon master --sync-maxlen 65508", "illegal sync-maxlen specified");
    usage("-L -t 80", "illegal virtual server address[:port] specified");
    usage("-L -t 1.2.3.4:", "illegal virtual server address[:port] specified");
    usage("-L -t nosuchhost:80", "illegal virtual server address[:port] specified");
    usage("-L -u 1.2.3.4:http", "illegal virtual server address[:port] specified");
    usage("-a -t 1.2.3.4:80 -r [2001:db8::5]", "illegal real server address[:port] specified");
}

#[test]
fn help_version_and_default_listing() {
    assert_eq!(parse("-h").action, Action::Help);
    assert_eq!(parse("--help").action, Action::Help);
    assert_eq!(parse("-v").action, Action::Version);
    let all = Action::List { what: ListWhat::All, format: Format::default() };
    assert_eq!(parse("").action, all);
    assert_eq!(parse("-L").action, all);
    assert_eq!(parse("-l").action, all);
    assert_eq!(parse("--list --sort").action, all);
}

#[test]
fn listing_variants() {
    let n = Format { numeric: true, ..Format::default() };
    assert_eq!(parse("-Ln").action, Action::List { what: ListWhat::All, format: n });
    assert_eq!(parse("-Lnc").action, Action::List { what: ListWhat::Conns, format: n });
    assert_eq!(
        parse("-L -n -c --persistent-conn").action,
        Action::List { what: ListWhat::Conns, format: Format { persistent_conn: true, ..n } }
    );
    assert_eq!(parse("-L --timeout").action, Action::List { what: ListWhat::Timeouts, format: Format::default() });
    assert_eq!(parse("-L --daemon").action, Action::List { what: ListWhat::Daemons, format: Format::default() });
    assert_eq!(
        parse("-Ln -t 10.0.0.1:http --stats --rate -X --nosort --tun-info --thresholds").action,
        Action::List {
            what: ListWhat::Service(tcp("10.0.0.1", 80)),
            format: Format {
                numeric: true,
                stats: true,
                rate: true,
                exact: true,
                nosort: true,
                tun_info: true,
                thresholds: true,
                ..Format::default()
            }
        }
    );
    assert_eq!(
        parse("-L -f 3 -6").action,
        Action::List { what: ListWhat::Service(ServiceId::Fwmark { mark: 3, ipv6: true }), format: Format::default() }
    );
    assert_eq!(parse("-S -n").action, Action::Save { numeric: true });
    assert_eq!(parse("-S").action, Action::Save { numeric: false });
    assert_eq!(parse("-R").action, Action::Restore);
}

#[test]
fn rvsadm_extensions() {
    let inv = parse("--socket /tmp/x.sock --json");
    assert_eq!(inv.socket.as_deref(), Some("/tmp/x.sock"));
    assert_eq!(inv.action, Action::List { what: ListWhat::All, format: Format { json: true, ..Format::default() } });
    let inv = parse("-Ln --json --socket=/s");
    assert_eq!(inv.socket.as_deref(), Some("/s"));
    assert!(matches!(inv.action, Action::List { format: Format { json: true, numeric: true, .. }, .. }));
}

fn service(id: ServiceId, sched: &str) -> ServiceSpec {
    ServiceSpec { id, scheduler: sched.into(), sched_flags: vec![], persistence: None, one_packet: false, pe: None }
}

#[test]
fn service_commands() {
    let mut expected = service(tcp("192.168.1.100", 80), "wlc");
    expected.persistence =
        Some(PersistenceSpec { timeout: 300, netmask: NetmaskSpec::V4(Ipv4Addr::new(255, 255, 255, 0)) });
    assert_eq!(command("-A -t 192.168.1.100:80 -s wlc -p 300 -M 255.255.255.0"), Command::AddService(expected.clone()));
    // Optional -p argument: absent, or followed by an option, means 360.
    let mut p = service(tcp("1.2.3.4", 80), "rr");
    p.persistence = Some(PersistenceSpec { timeout: 360, netmask: NetmaskSpec::V4(Ipv4Addr::BROADCAST) });
    assert_eq!(command("-A -t 1.2.3.4:80 -p -s rr"), Command::AddService(p.clone()));
    assert_eq!(command("-A -t 1.2.3.4:80 -s rr -p"), Command::AddService(p.clone()));
    assert_eq!(command("-E --tcp-service=1.2.3.4:80 --scheduler rr --persistent"), Command::EditService(p));
    // Port 0 is fine when persistent; a host name resolves; netmask 255.0.255.0 is accepted.
    let mut any = service(tcp("192.0.2.80", 0), "wlc");
    any.persistence = Some(PersistenceSpec { timeout: 60, netmask: NetmaskSpec::V4(Ipv4Addr::new(255, 0, 255, 0)) });
    assert_eq!(command("-A -t www -p 60 -M 255.0.255.0"), Command::AddService(any));
    // sh flags under their sh names; flag-1 is sh-fallback for sh; -o on UDP; --pe kept.
    let mut sh = service(ServiceId::Addr { protocol: Proto::Udp, addr: ip("10.0.0.1"), port: 53 }, "sh");
    sh.sched_flags = vec!["sh-fallback".into(), "sh-port".into()];
    sh.one_packet = true;
    sh.pe = Some("sip".into());
    assert_eq!(command("-A -u 10.0.0.1:domain -s sh -b flag-1,sh-port -o --pe sip"), Command::AddService(sh));
    // fwmark IPv6 with a prefix mask.
    let mut fw = service(ServiceId::Fwmark { mark: 5, ipv6: true }, "wlc");
    fw.persistence = Some(PersistenceSpec { timeout: 360, netmask: NetmaskSpec::V6(64) });
    assert_eq!(command("-A -f 5 -6 -M 64 -p"), Command::AddService(fw));
    let mut v6 = service(tcp("2001:db8::1", 443), "wlc");
    v6.persistence = Some(PersistenceSpec { timeout: 10, netmask: NetmaskSpec::V6(128) });
    assert_eq!(command("-A -t [2001:db8::1]:443 -p 10"), Command::AddService(v6));
    assert_eq!(
        command("-A --sctp-service 10.0.0.1:9 -s=rr"),
        Command::AddService(service(ServiceId::Addr { protocol: Proto::Sctp, addr: ip("10.0.0.1"), port: 9 }, "rr"))
    );
    assert_eq!(command("-D -t 1.2.3.4:80"), Command::DeleteService { id: tcp("1.2.3.4", 80) });
    assert_eq!(command("-C"), Command::Clear);
    assert_eq!(command("-Z"), Command::Zero { service: None });
    assert_eq!(command("-Z -f 9"), Command::Zero { service: Some(ServiceId::Fwmark { mark: 9, ipv6: false }) });
}

fn dest(addr: &str, port: u16, method: MethodSpec, weight: u32) -> DestSpec {
    DestSpec { addr: ip(addr), port, method, weight, u_threshold: 0, l_threshold: 0 }
}

#[test]
fn server_commands() {
    let svc = tcp("1.2.3.4", 80);
    // Default: direct routing, weight 1, port copied from the service.
    assert_eq!(
        command("-a -t 1.2.3.4:80 -r 10.0.0.2"),
        Command::AddDest { service: svc, dest: dest("10.0.0.2", 80, MethodSpec::Route, 1) }
    );
    // DR forces the service port (81 becomes 80 silently), NAT keeps it.
    assert_eq!(
        command("-a -t 1.2.3.4:80 -r 10.0.0.2:81 -g"),
        Command::AddDest { service: svc, dest: dest("10.0.0.2", 80, MethodSpec::Route, 1) }
    );
    assert_eq!(
        command("-a -t 1.2.3.4:80 -r 10.0.0.2:81 -m -w 0"),
        Command::AddDest { service: svc, dest: dest("10.0.0.2", 81, MethodSpec::Masq, 0) }
    );
    // Thresholds up to INT_MAX (more than the man page's 65535).
    let mut t = dest("10.0.0.2", 8080, MethodSpec::Masq, 3);
    t.u_threshold = 70000;
    t.l_threshold = 10;
    assert_eq!(
        command("-e -t 1.2.3.4:80 -r 10.0.0.2:8080 -m -w 3 -x 70000 -y 10"),
        Command::EditDest { service: svc, dest: t }
    );
    // Tunnels; an IPv6 server under an IPv4 service is fine for tunnels; bare IPv6 accepted.
    let gue = MethodSpec::Tunnel { tun_type: "gue".into(), tun_port: 6080, tun_csum: "csum".into() };
    assert_eq!(
        command("-a -t 1.2.3.4:80 -r 2001:db8::5 -i --tun-type gue --tun-port 6080 --tun-csum"),
        Command::AddDest { service: svc, dest: dest("2001:db8::5", 80, gue, 1) }
    );
    let ipip = MethodSpec::Tunnel { tun_type: "ipip".into(), tun_port: 0, tun_csum: "nocsum".into() };
    assert_eq!(
        command("-a -t 1.2.3.4:80 -r 10.0.0.3 -i"),
        Command::AddDest { service: svc, dest: dest("10.0.0.3", 80, ipip, 1) }
    );
    usage(
        "-a -t 1.2.3.4:80 -r 10.0.0.3 -i --tun-type gre --tun-remcsum",
        "Illegal 'tun-remcsum' option with the 'gre' tunnel type",
    );
    let gue_r = MethodSpec::Tunnel { tun_type: "gue".into(), tun_port: 1, tun_csum: "remcsum".into() };
    assert_eq!(
        command("-a -t 1.2.3.4:80 -r 10.0.0.3 -i --tun-type gue --tun-port 1 --tun-remcsum"),
        Command::AddDest { service: svc, dest: dest("10.0.0.3", 80, gue_r, 1) }
    );
    // fwmark services keep the given (or zero) port even for DR.
    let fw = ServiceId::Fwmark { mark: 1, ipv6: false };
    assert_eq!(
        command("-a -f 1 -r 10.0.0.5"),
        Command::AddDest { service: fw, dest: dest("10.0.0.5", 0, MethodSpec::Route, 1) }
    );
    assert_eq!(
        command("-a -f 1 -r 10.0.0.5:8080 -g"),
        Command::AddDest { service: fw, dest: dest("10.0.0.5", 8080, MethodSpec::Route, 1) }
    );
    assert_eq!(
        command("-d -t 1.2.3.4:80 -r 10.0.0.2"),
        Command::DeleteDest { service: svc, addr: ip("10.0.0.2"), port: 80 }
    );
}

#[test]
fn timeouts_and_daemons() {
    assert_eq!(command("--set 900 120 300"), Command::SetTimeouts { tcp: 900, tcpfin: 120, udp: 300 });
    assert_eq!(command("--set 0 0 0"), Command::SetTimeouts { tcp: 0, tcpfin: 0, udp: 0 });
    assert_eq!(
        command("--start-daemon master"),
        Command::StartDaemon(SyncDaemonSpec {
            role: SyncRole::Master,
            mcast_interface: "eth0".into(),
            syncid: 0,
            maxlen: 1472,
            group: ip("224.0.0.81"),
            port: 8848,
            ttl: 1,
        })
    );
    assert_eq!(
        command(
            "--start-daemon backup --mcast-interface eth1 --syncid 7 --sync-maxlen 1400 --mcast-group ff02::81 --mcast-port 9000 --mcast-ttl 3"
        ),
        Command::StartDaemon(SyncDaemonSpec {
            role: SyncRole::Backup,
            mcast_interface: "eth1".into(),
            syncid: 7,
            maxlen: 1400,
            group: ip("ff02::81"),
            port: 9000,
            ttl: 3,
        })
    );
    assert_eq!(command("--stop-daemon backup --syncid 7"), Command::StopDaemon { role: SyncRole::Backup });
}
