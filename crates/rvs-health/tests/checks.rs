//! Every check kind against real servers on loopback, started by the test.

mod common;

use std::time::{Duration, Instant};

use common::*;
use rvs_health::check::external::run_command;
use rvs_health::config::*;
use rvs_health::{Check, CheckConfig, CheckOutcome};

fn check(c: CheckConfig) -> Check {
    Check::from_config(&c).unwrap()
}

fn reason(o: &CheckOutcome) -> &str {
    match o {
        CheckOutcome::Fail { reason } => reason,
        CheckOutcome::Pass { .. } => panic!("expected a failure"),
    }
}

fn http(cfg: HttpCheckConfig) -> Check {
    check(CheckConfig::Http(cfg))
}

// ---------- TCP ----------

#[test]
fn tcp_connect_up_and_refused() {
    let (addr, _rx) = http_server(b"");
    let c = check(CheckConfig::Tcp(TcpCheckConfig::default()));
    assert!(c.run(&target(addr), soon(2.0)).passed());
    let o = c.run(&target(closed_port()), soon(2.0));
    assert!(reason(&o).contains("refused"), "{o:?}");
}

#[test]
fn tcp_check_port_and_bind_address() {
    let (addr, _rx) = http_server(b"");
    // Real server port is closed, check port is the listener: the check port wins.
    let real = closed_port();
    let cfg = TcpCheckConfig { port: Some(addr.port()), bind: Some("127.0.0.1".parse().unwrap()), timeout: None };
    assert!(check(CheckConfig::Tcp(cfg)).run(&target(real), soon(2.0)).passed());
    // A bind address of the other family is refused up front.
    let cfg = TcpCheckConfig { port: None, bind: Some("::1".parse().unwrap()), timeout: None };
    let o = check(CheckConfig::Tcp(cfg)).run(&target(addr), soon(2.0));
    assert!(reason(&o).contains("family"), "{o:?}");
}

// ---------- HTTP ----------

const OK_BODY: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world";

#[test]
fn http_get_status_and_body() {
    let (addr, rx) = http_server(OK_BODY);
    let t = target(addr);
    let ok = HttpCheckConfig { path: "/health".into(), expect_body: Some("world".into()), ..Default::default() };
    assert!(http(ok).run(&t, soon(2.0)).passed());
    let req = rx.recv().unwrap();
    assert!(req.starts_with("GET /health HTTP/1.1\r\n"), "{req}");
    // Default Host header: address and port (not 80).
    assert!(req.contains(&format!("\r\nHost: 127.0.0.1:{}\r\n", addr.port())), "{req}");

    let missing = HttpCheckConfig { expect_body: Some("bye".into()), ..Default::default() };
    let o = http(missing).run(&t, soon(2.0));
    assert!(reason(&o).contains("does not contain"), "{o:?}");

    let regex = HttpCheckConfig { expect_regex: Some("^hel+o w".into()), ..Default::default() };
    assert!(http(regex).run(&t, soon(2.0)).passed());
    let regex_bad = HttpCheckConfig { expect_regex: Some("^world".into()), ..Default::default() };
    assert!(!http(regex_bad).run(&t, soon(2.0)).passed());
}

#[test]
fn http_status_set() {
    let (addr, _rx) = http_server(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n");
    let t = target(addr);
    let o = http(HttpCheckConfig::default()).run(&t, soon(2.0));
    assert_eq!(reason(&o), "status 503 not accepted");
    let accept = HttpCheckConfig { status: "200-299, 503".into(), ..Default::default() };
    assert!(http(accept).run(&t, soon(2.0)).passed());
}

#[test]
fn http_head_version_and_host() {
    let (addr, rx) = http_server(b"HTTP/1.0 200 OK\r\n\r\n");
    let cfg = HttpCheckConfig {
        method: HttpMethod::Head,
        http_version: HttpVersion::V10,
        host: Some("www.example.test".into()),
        ..Default::default()
    };
    assert!(http(cfg).run(&target(addr), soon(2.0)).passed());
    let req = rx.recv().unwrap();
    assert!(req.starts_with("HEAD / HTTP/1.0\r\n"), "{req}");
    assert!(req.contains("\r\nHost: www.example.test\r\n"), "{req}");
}

#[test]
fn http_chunked_body_is_decoded_before_matching() {
    // "hello world" split as "hel" + "lo world": the match spans the chunk boundary.
    let (addr, _rx) =
        http_server(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n8\r\nlo world\r\n0\r\n\r\n");
    let cfg = HttpCheckConfig { expect_body: Some("hello".into()), ..Default::default() };
    assert!(http(cfg).run(&target(addr), soon(2.0)).passed());
}

#[test]
fn http_garbage_and_refused() {
    let (addr, _rx) = http_server(b"SSH-2.0-OpenSSH\r\n\r\n");
    assert!(!http(HttpCheckConfig::default()).run(&target(addr), soon(2.0)).passed());
    assert!(!http(HttpCheckConfig::default()).run(&target(closed_port()), soon(2.0)).passed());
}

#[test]
fn http_hanging_server_fails_at_the_deadline() {
    let addr = hanging_server();
    let start = Instant::now();
    let o = http(HttpCheckConfig::default()).run(&target(addr), soon(0.3));
    assert!(reason(&o).contains("timed out"), "{o:?}");
    // Bounded by the deadline, with generous slack for a loaded machine.
    assert!(start.elapsed() < Duration::from_secs(5));
}

#[test]
fn http_response_cap() {
    // A body larger than max_response: the check reads only the cap and still judges the status.
    static BIG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let big = BIG.get_or_init(|| {
        let mut v = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n".to_vec();
        v.extend(std::iter::repeat_n(b'a', 1_000_000));
        v
    });
    let (addr, _rx) = http_server(big);
    let cfg = HttpCheckConfig { max_response: 1024, expect_body: Some("aaaa".into()), ..Default::default() };
    assert!(http(cfg).run(&target(addr), soon(2.0)).passed());
    let cfg = HttpCheckConfig { max_response: 1024, expect_body: Some("b".into()), ..Default::default() };
    assert!(!http(cfg).run(&target(addr), soon(2.0)).passed());
}

// ---------- HTTPS ----------

#[test]
fn https_accepts_any_certificate_by_default_and_sends_sni() {
    let cert = test_cert(&["localhost"]);
    let (addr, rx) = https_server(&cert, OK_BODY);
    let cfg = HttpCheckConfig {
        host: Some("www.example.test".into()),
        expect_body: Some("hello".into()),
        ..Default::default()
    };
    let o = check(CheckConfig::Https(cfg)).run(&target(addr), soon(5.0));
    assert!(o.passed(), "{o:?}");
    let (sni, head) = rx.recv().unwrap();
    // SNI defaults to the Host header's name, although the certificate is for "localhost".
    assert_eq!(sni.as_deref(), Some("www.example.test"));
    assert!(head.contains("Host: www.example.test"));

    // An explicit SNI name overrides; an IP host sends none.
    let cfg = HttpCheckConfig { sni: Some("sni.example.test".into()), ..Default::default() };
    assert!(check(CheckConfig::Https(cfg)).run(&target(addr), soon(5.0)).passed());
    assert_eq!(rx.recv().unwrap().0.as_deref(), Some("sni.example.test"));
    assert!(check(CheckConfig::Https(HttpCheckConfig::default())).run(&target(addr), soon(5.0)).passed());
    assert_eq!(rx.recv().unwrap().0, None);
}

#[test]
fn https_verifies_against_a_ca_file() {
    let cert = test_cert(&["localhost"]);
    let (addr, _rx) = https_server(&cert, OK_BODY);
    let dir = std::env::temp_dir().join(format!("rvs-health-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &cert.pem).unwrap();
    let other = dir.join("other.pem");
    std::fs::write(&other, test_cert(&["localhost"]).pem).unwrap();

    let with = |file: &std::path::Path, sni: &str| {
        let cfg = HttpCheckConfig { ca_file: Some(file.to_path_buf()), sni: Some(sni.into()), ..Default::default() };
        check(CheckConfig::Https(cfg)).run(&target(addr), soon(5.0))
    };
    assert!(with(&ca, "localhost").passed());
    let o = with(&ca, "wrong.example.test");
    assert!(reason(&o).contains("TLS handshake"), "{o:?}");
    assert!(!with(&other, "localhost").passed(), "certificate not signed by the CA");
    std::fs::remove_dir_all(&dir).unwrap();

    let cfg = HttpCheckConfig { ca_file: Some(dir.join("missing.pem")), ..Default::default() };
    assert!(Check::from_config(&CheckConfig::Https(cfg)).is_err());
}

#[test]
fn https_against_plain_http_fails() {
    let (addr, _rx) = http_server(OK_BODY);
    assert!(!check(CheckConfig::Https(HttpCheckConfig::default())).run(&target(addr), soon(2.0)).passed());
}

// ---------- send/expect ----------

fn send_expect(send: &str, expect: Option<&str>, regex: bool) -> Check {
    check(CheckConfig::SendExpect(SendExpectCheckConfig {
        port: None,
        bind: None,
        timeout: None,
        send: send.into(),
        expect: expect.map(String::from),
        regex,
        max_response: 4096,
    }))
}

#[test]
fn send_expect_greeting_and_reply() {
    let addr = line_server(b"+OK POP3 ready\r\n", b"PONG\r\n");
    let t = target(addr);
    assert!(send_expect("", Some("+OK*ready"), false).run(&t, soon(2.0)).passed());
    assert!(send_expect("", Some("*"), false).run(&t, soon(2.0)).passed());
    assert!(send_expect(r"PING\r\n", Some("+OK*PONG"), false).run(&t, soon(2.0)).passed());
    assert!(send_expect(r"PING\r\n", Some("P[O]NG"), true).run(&t, soon(2.0)).passed());
    assert!(send_expect("", None, false).run(&t, soon(2.0)).passed());
    let o = send_expect("", Some("-ERR"), false).run(&t, soon(0.5));
    assert!(reason(&o).contains("does not match"), "{o:?}");
}

#[test]
fn send_expect_silent_server_times_out() {
    let o = send_expect(r"hello\n", Some("x"), false).run(&target(hanging_server()), soon(0.3));
    assert!(reason(&o).contains("timed out"), "{o:?}");
}

// ---------- UDP ----------

fn udp(payload: &str, expect: Option<&str>, format: PayloadFormat) -> Check {
    check(CheckConfig::Udp(UdpCheckConfig {
        port: None,
        bind: None,
        timeout: None,
        payload: payload.into(),
        expect: expect.map(String::from),
        format,
    }))
}

#[test]
fn udp_echo_expect() {
    let (addr, rx) = udp_server(None, false);
    let t = target(addr);
    assert!(udp(r"ping\n", Some("ping*"), PayloadFormat::Text).run(&t, soon(2.0)).passed());
    assert_eq!(rx.recv().unwrap(), b"ping\n");
    let o = udp("ping", Some("pong"), PayloadFormat::Text).run(&t, soon(0.3));
    assert!(reason(&o).contains("does not match"), "{o:?}");
    assert!(udp("dead beef", Some("deXd"), PayloadFormat::Hex).run(&t, soon(2.0)).passed());
    rx.recv().unwrap();
    assert_eq!(rx.recv().unwrap(), [0xde, 0xad, 0xbe, 0xef]);
}

#[test]
fn udp_port_unreachable_fails_and_silence_passes_without_expect() {
    let closed = {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap()
    };
    let o = udp("x", None, PayloadFormat::Text).run(&target(closed), soon(2.0));
    assert!(reason(&o).contains("port unreachable"), "{o:?}");
    let (silent, _rx) = udp_server(None, true);
    assert!(udp("x", None, PayloadFormat::Text).run(&target(silent), soon(0.3)).passed());
    let o = udp("x", Some("y"), PayloadFormat::Text).run(&target(silent), soon(0.3));
    assert!(reason(&o).contains("no reply"), "{o:?}");
}

// ---------- DNS ----------

fn dns(name: &str, qtype: &str, expect_rcode: Option<&str>) -> Check {
    check(CheckConfig::Dns(DnsCheckConfig {
        port: None,
        bind: None,
        timeout: None,
        name: name.into(),
        query_type: qtype.into(),
        expect_rcode: expect_rcode.map(String::from),
        recursion_desired: true,
    }))
}

#[test]
fn dns_noerror_with_answer() {
    let (addr, rx) = dns_server(0, 1);
    assert!(dns("www.example.test", "AAAA", None).run(&target(addr), soon(2.0)).passed());
    let q = rx.recv().unwrap();
    // Question after the 12-byte header: 3www7example4test0, then type 28 (AAAA), class 1.
    assert_eq!(&q[12..], b"\x03www\x07example\x04test\x00\x00\x1c\x00\x01");
}

#[test]
fn dns_rcodes_and_empty_answers() {
    let (nx, _r1) = dns_server(3, 0);
    let o = dns("x.test", "A", None).run(&target(nx), soon(2.0));
    assert!(reason(&o).contains("rcode 3"), "{o:?}");
    assert!(dns("x.test", "A", Some("NXDOMAIN")).run(&target(nx), soon(2.0)).passed());
    let (empty, _r2) = dns_server(0, 0);
    let o = dns(".", "SOA", None).run(&target(empty), soon(2.0));
    assert_eq!(reason(&o), "NOERROR but no answer");
    assert!(dns(".", "SOA", Some("NOERROR")).run(&target(empty), soon(2.0)).passed());
    let (silent, _r3) = udp_server(None, true);
    assert!(!dns(".", "SOA", None).run(&target(silent), soon(0.3)).passed());
}

// ---------- ICMP ----------

#[test]
fn ping_loopback_v4_and_v6() {
    if !can_ping() {
        return;
    }
    let c = check(CheckConfig::Ping(PingCheckConfig::default()));
    let o = c.run(&target("127.0.0.1:0".parse().unwrap()), soon(2.0));
    assert!(o.passed(), "{o:?}");
    if std::net::UdpSocket::bind("[::1]:0").is_ok() {
        let o = c.run(&target("[::1]:0".parse().unwrap()), soon(2.0));
        assert!(o.passed(), "{o:?}");
    } else {
        eprintln!("skipping ICMPv6 echo: no ::1 on this machine");
    }
}

// ---------- external ----------

fn external(args: &[&str], dynamic: bool, timeout: Option<f64>) -> Check {
    check(CheckConfig::External(ExternalCheckConfig {
        program: "sh".into(),
        args: args.iter().map(|s| s.to_string()).collect(),
        port: None,
        timeout,
        dynamic,
        output_cap: 4096,
    }))
}

#[test]
fn external_exit_codes_and_placeholders() {
    let t = target("127.0.0.1:8080".parse().unwrap());
    assert!(external(&["-c", "exit 0"], false, None).run(&t, soon(5.0)).passed());
    let o = external(&["-c", "echo broken >&2; exit 1"], false, None).run(&t, soon(5.0));
    assert_eq!(reason(&o), "sh exited with status 1: broken");
    // ldirectord order: vip vport rip rport.
    let script = r#"test "$1 $2 $3 $4" = "198.18.0.1 80 127.0.0.1 8080""#;
    let o = external(&["-c", script, "sh", "{vip}", "{vport}", "{rip}", "{rport}"], false, None).run(&t, soon(5.0));
    assert!(o.passed(), "{o:?}");
}

#[test]
fn external_dynamic_weights() {
    let t = target("127.0.0.1:8080".parse().unwrap());
    // misc_dynamic: 0 up (no weight), 1 down, 2..=255 up with weight status - 2.
    assert_eq!(external(&["-c", "exit 0"], true, None).run(&t, soon(5.0)), CheckOutcome::PASS);
    assert!(!external(&["-c", "exit 1"], true, None).run(&t, soon(5.0)).passed());
    assert_eq!(external(&["-c", "exit 7"], true, None).run(&t, soon(5.0)), CheckOutcome::Pass { weight: Some(5) });
    assert_eq!(external(&["-c", "exit 255"], true, None).run(&t, soon(5.0)), CheckOutcome::Pass { weight: Some(253) });
    // Without dynamic, 7 is a failure.
    assert!(!external(&["-c", "exit 7"], false, None).run(&t, soon(5.0)).passed());
}

#[test]
fn external_hard_timeout_kills_the_process_group() {
    let t = target("127.0.0.1:8080".parse().unwrap());
    let start = Instant::now();
    // The background sleep is a grandchild holding the pipes: killing the group ends it too.
    let o = external(&["-c", "echo started; sleep 30 & sleep 30"], false, None).run(&t, soon(0.3));
    assert_eq!(reason(&o), "sh timed out and was killed: started");
    assert!(start.elapsed() < Duration::from_secs(10), "did not wait for the 30 s sleeps");
}

#[test]
fn external_output_is_capped_and_drained() {
    // 1 MB of output with a 100-byte cap: the command is not blocked by a full pipe, and only
    // the first 100 bytes are kept.
    let argv: Vec<String> = ["sh", "-c", "head -c 1000000 /dev/zero; echo err >&2"].map(String::from).to_vec();
    let r = run_command(&argv, soon(10.0), 100).unwrap();
    assert!(!r.timed_out);
    assert_eq!(r.status.and_then(|s| s.code()), Some(0));
    assert_eq!(r.stdout, vec![0u8; 100]);
    assert_eq!(r.stderr, b"err\n");
    assert!(run_command(&[], soon(1.0), 10).is_err());
    assert!(run_command(&["/nonexistent/program".into()], soon(1.0), 10).is_err());
}

// ---------- on/off ----------

#[test]
fn on_and_off() {
    let t = target(closed_port());
    assert!(check(CheckConfig::On).run(&t, soon(1.0)).passed());
    assert_eq!(reason(&check(CheckConfig::Off).run(&t, soon(1.0))), "check is off");
}

#[test]
fn bad_configs_are_rejected() {
    let bad = [
        CheckConfig::Http(HttpCheckConfig { path: "no-slash".into(), ..Default::default() }),
        CheckConfig::Http(HttpCheckConfig { status: "600-100".into(), ..Default::default() }),
        CheckConfig::Http(HttpCheckConfig { expect_regex: Some("(".into()), ..Default::default() }),
        CheckConfig::Http(HttpCheckConfig { sni: Some("x".into()), ..Default::default() }),
        CheckConfig::Udp(UdpCheckConfig {
            port: None,
            bind: None,
            timeout: None,
            payload: "xyz".into(),
            expect: None,
            format: PayloadFormat::Hex,
        }),
        CheckConfig::Dns(DnsCheckConfig {
            port: None,
            bind: None,
            timeout: None,
            name: ".".into(),
            query_type: "BOGUS".into(),
            expect_rcode: None,
            recursion_desired: true,
        }),
    ];
    for c in bad {
        assert!(Check::from_config(&c).is_err(), "{c:?}");
    }
}
