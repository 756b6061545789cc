//! rvsadm end to end against a fake rvsd: a thread serving the admin API on a Unix socket
//! in a temp directory, answering from a real `rvs_core::Engine` (`table_of`).

mod common;

use std::net::IpAddr;

use common::{FakeDirector, FakeServer};
use rvs_api::{ConnInfo, Request, Table};
use rvsadm::app::{Environment, Streams, run};
use rvsadm::names::NumericNames;

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run_with(program: &str, line: &str, socket: Option<&str>, stdin: &str) -> Outcome {
    let mut args = vec![program.to_string()];
    if let Some(s) = socket {
        args.push("--socket".into());
        args.push(s.into());
    }
    args.extend(line.split_whitespace().map(String::from));
    let env = Environment { socket_env: None, names: &NumericNames };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut input = stdin.as_bytes();
    let code = run(&args, &env, &mut Streams { stdin: &mut input, stdout: &mut out, stderr: &mut err });
    Outcome { code, stdout: String::from_utf8(out).unwrap(), stderr: String::from_utf8(err).unwrap() }
}

/// rvsadm with `--socket` pointing at the server. Options after the command here, so
/// `--socket` goes first.
fn rvsadm(server: &FakeServer, line: &str) -> Outcome {
    run_with("rvsadm", line, server.socket.to_str(), "")
}

fn rvsadm_stdin(server: &FakeServer, line: &str, stdin: &str) -> Outcome {
    run_with("rvsadm", line, server.socket.to_str(), stdin)
}

fn ok(o: Outcome) -> String {
    assert_eq!((o.code, o.stderr.as_str()), (0, ""), "stdout: {}", o.stdout);
    o.stdout
}

fn applies(server: &FakeServer) -> usize {
    server.state.lock().unwrap().requests.iter().filter(|r| matches!(r, Request::Apply { .. })).count()
}

#[test]
fn changes_and_listings_through_the_socket() {
    let server = FakeServer::start(FakeDirector::default());
    ok(rvsadm(&server, "-A -t 198.18.0.10:80 -s rr"));
    ok(rvsadm(&server, "-a -t 198.18.0.10:80 -r 198.18.1.3:80 -m -w 2"));
    ok(rvsadm(&server, "-a -t 198.18.0.10:80 -r 198.18.1.2 -g"));
    ok(rvsadm(&server, "-A -f 1 -s wlc"));
    // Expected from the formats: banner, header, "%s %s" service lines, dest lines
    // "  -> %-28s %-7s %-6d %-10u %-10u\n"; size= is what the daemon reports (4096 here).
    let expected = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port Scheduler Flags\n",
        "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        "TCP  198.18.0.10:80 rr\n",
        "  -> 198.18.1.2:80                Route   1      0          0         \n",
        "  -> 198.18.1.3:80                Masq    2      0          0         \n",
        "FWM  1 wlc\n",
    );
    assert_eq!(ok(rvsadm(&server, "-Ln")), expected);
    // One service: no banner.
    let one = ok(rvsadm(&server, "-L -n -t 198.18.0.10:80"));
    assert!(one.starts_with("Prot LocalAddress:Port Scheduler Flags\n"));
    assert_eq!(one.lines().count(), 5);
    // Edit and delete.
    ok(rvsadm(&server, "-e -t 198.18.0.10:80 -r 198.18.1.3:80 -m -w 7"));
    assert!(ok(rvsadm(&server, "-Ln")).contains("  -> 198.18.1.3:80                Masq    7      "));
    ok(rvsadm(&server, "-d -t 198.18.0.10:80 -r 198.18.1.3:80"));
    ok(rvsadm(&server, "-D -f 1"));
    ok(rvsadm(&server, "-Z"));
    assert_eq!(ok(rvsadm(&server, "-Ln")).lines().count(), 5);
    // JSON listing is the rvs-api Table.
    let json = ok(rvsadm(&server, "-Ln --json"));
    let table: Table = serde_json::from_str(&json).expect("json table");
    assert_eq!(table.services.len(), 1);
    assert_eq!(table.services[0].dests.len(), 1);
    ok(rvsadm(&server, "-C"));
    assert_eq!(ok(rvsadm(&server, "-Ln")).lines().count(), 3);
}

#[test]
fn daemon_refusals_use_ipvsadm_words_and_exit_255() {
    let server = FakeServer::start(FakeDirector::default());
    ok(rvsadm(&server, "-A -t 198.18.0.10:80"));
    let dup = rvsadm(&server, "-A -t 198.18.0.10:80");
    assert_eq!((dup.code, dup.stderr.as_str()), (255, "Service already exists\n"));
    let o = rvsadm(&server, "-a -t 198.18.0.11:80 -r 198.18.1.2");
    assert_eq!((o.code, o.stderr.as_str()), (255, "Service not defined\n"));
    let o = rvsadm(&server, "-D -t 198.18.0.11:80");
    assert_eq!((o.code, o.stderr.as_str()), (255, "No such service\n"));
    let o = rvsadm(&server, "-d -t 198.18.0.10:80 -r 198.18.1.9");
    assert_eq!((o.code, o.stderr.as_str()), (255, "No such destination\n"));
    ok(rvsadm(&server, "-a -t 198.18.0.10:80 -r 198.18.1.2"));
    let o = rvsadm(&server, "-a -t 198.18.0.10:80 -r 198.18.1.2");
    assert_eq!((o.code, o.stderr.as_str()), (255, "Destination already exists\n"));
    let o = rvsadm(&server, "-A -t 198.18.0.12:80 -s nosuch");
    assert_eq!((o.code, o.stderr.as_str()), (255, "Scheduler or persistence engine not found\n"));
    // Listing a missing service: exit 1.
    let o = rvsadm(&server, "-Ln -t 198.18.0.99:80");
    assert_eq!((o.code, o.stderr.as_str(), o.stdout.as_str()), (1, "No such service\n", ""));
    // Usage errors never reach the daemon.
    let before = server.state.lock().unwrap().requests.len();
    let o = rvsadm(&server, "-A -t 198.18.0.10:80 -w 1");
    assert_eq!(o.code, 2);
    assert_eq!(server.state.lock().unwrap().requests.len(), before);
}

#[test]
fn timeouts_daemons_and_connections() {
    let mut director = FakeDirector::default();
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    director.conns.push(ConnInfo {
        protocol: "TCP".into(),
        expires: 61,
        state: "ESTABLISHED".into(),
        caddr: ip("198.18.2.1"),
        cport: 40000,
        vaddr: ip("198.18.0.10"),
        vport: 80,
        daddr: ip("198.18.1.2"),
        dport: 80,
        template: false,
        pe_name: None,
        pe_data: None,
    });
    let server = FakeServer::start(director);
    assert_eq!(ok(rvsadm(&server, "-L --timeout")), "Timeout (tcp tcpfin udp): 900 120 300\n");
    ok(rvsadm(&server, "--set 0 60 0"));
    assert_eq!(ok(rvsadm(&server, "-L --timeout")), "Timeout (tcp tcpfin udp): 900 60 300\n");
    // No daemon: nothing printed.
    assert_eq!(ok(rvsadm(&server, "-L --daemon")), "");
    ok(rvsadm(&server, "--start-daemon master --mcast-interface lo --syncid 3"));
    assert_eq!(
        ok(rvsadm(&server, "-L --daemon")),
        "master sync daemon (mcast=lo, syncid=3, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
    );
    let o = rvsadm(&server, "--start-daemon master");
    assert_eq!((o.code, o.stderr.as_str()), (255, "Daemon has already run\n"));
    ok(rvsadm(&server, "--stop-daemon master"));
    let o = rvsadm(&server, "--stop-daemon master");
    assert_eq!((o.code, o.stderr.as_str()), (255, "No daemon is running\n"));
    // "%-3s %-6s %-11s %-18s %-18s %s\n".
    assert_eq!(
        ok(rvsadm(&server, "-Lnc")),
        concat!(
            "IPVS connection entries\n",
            "pro expire state       source             virtual            destination\n",
            "TCP 01:01  ESTABLISHED 198.18.2.1:40000   198.18.0.10:80     198.18.1.2:80\n",
        )
    );
    let json = ok(rvsadm(&server, "-Lnc --json"));
    let conns: Vec<ConnInfo> = serde_json::from_str(&json).unwrap();
    assert_eq!(conns.len(), 1);
}

#[test]
fn save_clear_restore_through_the_daemon() {
    let server = FakeServer::start(FakeDirector::default());
    for line in [
        "-A -t 198.18.0.10:80 -s wlc -p 300 -M 255.255.255.0",
        "-a -t 198.18.0.10:80 -r 198.18.1.2 -g -w 4",
        "-A -u 198.18.0.10:53 -s sh -b sh-port -o",
        "-a -u 198.18.0.10:53 -r 198.18.1.4 -i",
    ] {
        ok(rvsadm(&server, line));
    }
    let saved = ok(rvsadm(&server, "-S -n"));
    let listing = ok(rvsadm(&server, "-Ln"));
    ok(rvsadm(&server, "-C"));
    let applies_before = applies(&server);
    ok(rvsadm_stdin(&server, "-R", &saved));
    // One transaction for the whole input.
    assert_eq!(applies(&server), applies_before + 1);
    assert_eq!(ok(rvsadm(&server, "-Ln")), listing);
}

#[test]
fn restore_is_all_or_nothing() {
    let server = FakeServer::start(FakeDirector::default());
    // A parse error on line 3: nothing is sent.
    let o = rvsadm_stdin(&server, "-R", "-A -t 198.18.0.10:80\n-a -t 198.18.0.10:80 -r 198.18.1.2\n-a -t x\n");
    assert_eq!((o.code, o.stderr.as_str()), (2, "line 3: illegal virtual server address[:port] specified\n"));
    assert_eq!(applies(&server), 0);
    // A refusal by the daemon on line 2: the transaction (and line 1) is not applied.
    let o = rvsadm_stdin(&server, "-R", "-A -t 198.18.0.10:80\n-A -t 198.18.0.10:80\n");
    assert_eq!((o.code, o.stderr.as_str()), (255, "line 2: Service already exists\n"));
    assert_eq!(ok(rvsadm(&server, "-Ln")).lines().count(), 3);
    // Empty input: nothing to do.
    ok(rvsadm_stdin(&server, "-R", "\n# nothing\n"));
}

#[test]
fn no_daemon_means_exit_255_with_a_clear_message() {
    let dir = common::temp_dir();
    let missing = dir.join("absent.sock");
    let o = run_with("rvsadm", "-Ln", missing.to_str(), "");
    assert_eq!(o.code, 255);
    assert!(o.stderr.starts_with("cannot connect to rvsd at "), "{}", o.stderr);
    assert!(o.stderr.contains("is rvsd running?"));
    let o = run_with("rvsadm", "-A -t 198.18.0.10:80", missing.to_str(), "");
    assert_eq!(o.code, 255);
    // Help, version and usage errors need no daemon.
    assert_eq!(run_with("rvsadm", "-h", missing.to_str(), "").code, 0);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn socket_from_environment_and_ipvsadm_name() {
    let server = FakeServer::start(FakeDirector::default());
    let env = Environment { socket_env: server.socket.to_str().map(String::from), names: &NumericNames };
    let args: Vec<String> = ["ipvsadm", "-A", "-t", "198.18.0.10:80"].iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&args, &env, &mut Streams { stdin: &mut &b""[..], stdout: &mut out, stderr: &mut err });
    assert_eq!(code, 0);
    let v = run_with("/usr/sbin/ipvsadm", "-v", None, "");
    assert!(v.stdout.starts_with("ipvsadm v1.31 "), "{}", v.stdout);
    let bad = run_with("ipvsadm", "--bogus", None, "");
    assert_eq!((bad.code, bad.stderr.as_str()), (255, "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n"));
}
