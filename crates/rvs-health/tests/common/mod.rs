//! Loopback test servers started by the tests: HTTP, HTTPS (rustls + rcgen self-signed cert),
//! line-based TCP, UDP echo/silent, a tiny DNS responder, and a server that never answers.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use rvs_api::{Proto, ServiceId};
use rvs_health::Target;

pub const VIP: &str = "198.18.0.1";

pub fn service() -> ServiceId {
    ServiceId::Addr { protocol: Proto::Tcp, addr: VIP.parse().unwrap(), port: 80 }
}

pub fn target(real: SocketAddr) -> Target {
    Target { service: service(), real }
}

pub fn soon(secs: f64) -> Instant {
    Instant::now() + Duration::from_secs_f64(secs)
}

/// A loopback port with nothing listening (bound then released).
pub fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Reads an HTTP request head (up to the blank line) from a stream.
pub fn read_head(s: &mut impl Read) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") && buf.len() < 65536 {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// An HTTP server answering every connection with `response`; requests go to the receiver.
pub fn http_server(response: &'static [u8]) -> (SocketAddr, Receiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let head = read_head(&mut s);
            let _ = tx.send(head);
            let _ = s.write_all(response);
        }
    });
    (addr, rx)
}

/// A server that accepts connections and never reads or answers (kept open for a minute).
pub fn hanging_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        let mut held = Vec::new();
        held.extend(l.incoming().take(64).flatten());
        thread::sleep(Duration::from_secs(60));
    });
    addr
}

/// A TCP server that sends `greeting` on connect, then answers each line with `reply`.
pub fn line_server(greeting: &'static [u8], reply: &'static [u8]) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let _ = s.write_all(greeting);
                let mut byte = [0u8; 1];
                while let Ok(1) = s.read(&mut byte) {
                    if byte[0] == b'\n' {
                        let _ = s.write_all(reply);
                    }
                }
            });
        }
    });
    addr
}

/// A self-signed certificate for `names` and its key.
pub struct TestCert {
    pub pem: String,
    pub config: Arc<rustls::ServerConfig>,
}

pub fn test_cert(names: &[&str]) -> TestCert {
    let ck = rcgen::generate_simple_self_signed(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    TestCert { pem: ck.cert.pem(), config: Arc::new(config) }
}

/// An HTTPS server; each connection reports (SNI, request head).
pub fn https_server(cert: &TestCert, response: &'static [u8]) -> (SocketAddr, Receiver<(Option<String>, String)>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    let config = Arc::clone(&cert.config);
    thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { continue };
            let config = Arc::clone(&config);
            let tx = tx.clone();
            thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                let conn = rustls::ServerConnection::new(config).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, s);
                let head = read_head(&mut tls);
                let sni = tls.conn.server_name().map(String::from);
                let _ = tx.send((sni, head));
                let _ = tls.write_all(response);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            });
        }
    });
    (addr, rx)
}

/// A UDP server: with `reply` Some, answers each datagram with it (None: echo); `silent`: never answers.
pub fn udp_server(reply: Option<&'static [u8]>, silent: bool) -> (SocketAddr, Receiver<Vec<u8>>) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let _ = tx.send(buf[..n].to_vec());
            if silent {
                continue;
            }
            let _ = s.send_to(reply.unwrap_or(&buf[..n]), from);
        }
    });
    (addr, rx)
}

/// A DNS responder answering every query with `rcode` and `answers` A records (127.0.0.1);
/// queries go to the receiver.
pub fn dns_server(rcode: u8, answers: u16) -> (SocketAddr, Receiver<Vec<u8>>) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let q = buf[..n].to_vec();
            let _ = tx.send(q.clone());
            if n < 12 {
                continue;
            }
            // Header: same id, QR + RD + RA, rcode; qdcount 1, ancount `answers`.
            let mut r = vec![q[0], q[1], 0x81, 0x80 | rcode, 0, 1];
            r.extend_from_slice(&answers.to_be_bytes());
            r.extend_from_slice(&[0, 0, 0, 0]);
            r.extend_from_slice(&q[12..]); // the question
            for _ in 0..answers {
                // Name pointer to offset 12, type A, class IN, TTL 60, rdlength 4, 127.0.0.1.
                r.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
            }
            let _ = s.send_to(&r, from);
        }
    });
    (addr, rx)
}

/// Whether ICMP tests can run: as root. Prints why not; fails under CI=true.
pub fn can_ping() -> bool {
    let root = nix_uid_is_root();
    if !root {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("ICMP tests need root and CI=true is set");
        }
        eprintln!("skipping ICMP test: not running as root (raw sockets need CAP_NET_RAW)");
    }
    root
}

fn nix_uid_is_root() -> bool {
    // /proc/self/status "Uid:" line: real, effective, saved, fs.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}
