//! End-to-end tests of firewall-mark services: the operator marks VIP traffic with nftables
//! in the director's namespace, rvsd defines `fwmark = N` services, and curl from the client
//! namespace gets answers from the nginx real servers. rvsd takes the marked packets from
//! NFQUEUE (AF_PACKET sees them before the mark is set). Root is needed; with CI=true a test
//! that cannot create namespaces fails.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rvs::lab::{LabRun, can_run_namespace_tests, real_server_address, spread};
use rvs_api::{ConnInfo, Request, Response, ServiceId};
use rvs_lab::{LabDescription, Method};

/// A `[[service]]` for `mark` (IPv6 if `v4` is false) with every real server of the lab by its
/// method, on `port` (None: the packet's own port).
fn fwmark_service(
    d: &LabDescription,
    mark: u32,
    v4: bool,
    port: Option<u16>,
    persistent: bool,
) -> anyhow::Result<String> {
    let method = match d.spec.method {
        Method::Dr => "dr",
        Method::Nat => "nat",
        Method::Tun => "tun",
    };
    let mut text = format!("[[service]]\nfwmark = {mark}\nscheduler = \"rr\"\n");
    if !v4 {
        text.push_str("ipv6 = true\n");
    }
    if persistent {
        text.push_str("persistent = 360\n");
    }
    for index in 0..d.real_servers.len() {
        let addr = real_server_address(d, index, v4)?;
        let addr = port.map_or(addr.clone(), |p| format!("{addr}:{p}"));
        let _ = writeln!(text, "\n[[service.real]]\naddress = \"{addr}\"\nmethod = \"{method}\"");
    }
    text.push('\n');
    Ok(text)
}

/// The operator's rules in the director's namespace: TCP to the VIP on ports 80 and 8080
/// gets mark 1 (IPv4) or 2 (IPv6), at prerouting, priority mangle.
fn mark_vip_traffic(run: &LabRun) {
    let d = run.description();
    let script = format!(
        "table inet operator_marks {{\n  chain pre {{\n    type filter hook prerouting priority mangle; policy accept;\n    \
         ip daddr {} tcp dport {{ 80, 8080 }} meta mark set 1\n    \
         ip6 daddr {} tcp dport {{ 80, 8080 }} meta mark set 2\n  }}\n}}\n",
        d.vip.v4, d.vip.v6
    );
    let director = &d.directors[0].netns;
    let mut child = Command::new("ip")
        .args(["netns", "exec", director, "nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running nft in the director namespace");
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "nft: {}", String::from_utf8_lossy(&out.stderr));
}

fn conns(run: &LabRun) -> Vec<ConnInfo> {
    let Response::Conns { conns } = run.call(&Request::ListConns).unwrap() else { panic!("no conns") };
    conns
}

#[test]
fn dr_fwmark_services_spread_by_rr_over_ipv4_and_ipv6() {
    if !can_run_namespace_tests() {
        return;
    }
    let run = LabRun::start_configured(Method::Dr, |d| {
        Ok(format!("{}{}", fwmark_service(d, 1, true, None, false)?, fwmark_service(d, 2, false, None, false)?))
    })
    .unwrap();
    mark_vip_traffic(&run);
    for vip in run.description().vip.both() {
        let names = run.http(vip, 30).unwrap();
        assert_eq!(spread(&names), [10, 10, 10], "fwmark rr {vip}: {names:?}\nrvsd log:\n{}", run.log());
    }
    // The connections belong to the mark's services: 30 per family, to port 80.
    let listed = conns(&run);
    assert!(listed.iter().filter(|c| !c.template && c.vport == 80).count() >= 60, "{listed:?}");
    run.stop().unwrap();
}

#[test]
fn nat_fwmark_service_answers_on_every_marked_port() {
    if !can_run_namespace_tests() {
        return;
    }
    // Real servers on port 80: NAT rewrites both virtual ports to nginx's.
    let run = LabRun::start_configured(Method::Nat, |d| fwmark_service(d, 1, true, Some(80), false)).unwrap();
    mark_vip_traffic(&run);
    let vip = IpAddr::V4(run.description().vip.v4);
    let mut names = run.http_to(vip, 80, 6).unwrap();
    names.extend(run.http_to(vip, 8080, 6).unwrap());
    assert_eq!(spread(&names), [4, 4, 4], "rr over both ports: {names:?}\nrvsd log:\n{}", run.log());
    // Connections keep their virtual port; the real port is nginx's.
    let listed = conns(&run);
    assert!(listed.iter().any(|c| c.vport == 8080 && c.dport == 80), "{listed:?}");
    run.stop().unwrap();
}

/// A minimal HTTP server on port 8080 (both families) in each real server's namespace,
/// answering the server's name like the lab's nginx does on port 80.
struct ExtraPort {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ExtraPort {
    fn start(d: &LabDescription) -> ExtraPort {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for rs in &d.real_servers {
            let (netns, name, stop) = (rs.netns.clone(), rs.name.clone(), stop.clone());
            let (ready, is_ready) = std::sync::mpsc::channel();
            threads.push(std::thread::spawn(move || {
                rvs_lab::netns::enter(&netns).unwrap();
                let listener = TcpListener::bind("[::]:8080").unwrap();
                listener.set_nonblocking(true).unwrap();
                ready.send(()).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((mut stream, _)) => {
                            stream.set_nonblocking(false).unwrap();
                            stream.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                            let mut head = Vec::new();
                            let mut buf = [0u8; 1024];
                            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                                match stream.read(&mut buf) {
                                    Ok(0) | Err(_) => break,
                                    Ok(n) => head.extend_from_slice(&buf[..n]),
                                }
                            }
                            let body = format!("{name}\n");
                            let answer = format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                body.len()
                            );
                            let _ = stream.write_all(answer.as_bytes());
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
            }));
            is_ready.recv_timeout(Duration::from_secs(5)).expect("extra listener ready");
        }
        ExtraPort { stop, threads }
    }
}

impl Drop for ExtraPort {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[test]
fn dr_fwmark_persistence_keeps_a_client_on_one_server_across_ports() {
    if !can_run_namespace_tests() {
        return;
    }
    // Real-server port 0: each packet keeps its port (80 to nginx, 8080 to the extra server).
    let run = LabRun::start_configured(Method::Dr, |d| fwmark_service(d, 1, true, None, true)).unwrap();
    let extra = ExtraPort::start(run.description());
    mark_vip_traffic(&run);
    let vip = IpAddr::V4(run.description().vip.v4);
    let mut names = Vec::new();
    for port in [80, 8080, 80, 8080] {
        names.extend(run.http_to(vip, port, 3).unwrap());
    }
    assert_eq!(names.len(), 12, "every request answered: {names:?}\nrvsd log:\n{}", run.log());
    assert!(names.iter().all(|n| *n == names[0]), "persistent fwmark: one server for both ports: {names:?}");
    // One template for the mark (client port 0), however many ports were used.
    let templates: Vec<ConnInfo> = conns(&run).into_iter().filter(|c| c.template).collect();
    assert_eq!(templates.len(), 1, "{templates:?}");
    assert_eq!(templates[0].cport, 0);

    // Without persistence, rr spreads new connections on either port.
    let Response::Table(t) = run.call(&Request::List).unwrap() else { panic!("no table") };
    let svc = t.services.into_iter().find(|s| matches!(s.spec.id, ServiceId::Fwmark { mark: 1, .. })).unwrap().spec;
    run.apply(vec![rvs_api::Command::EditService(rvs_api::ServiceSpec { persistence: None, ..svc })]).unwrap();
    let mut names = run.http_to(vip, 80, 3).unwrap();
    names.extend(run.http_to(vip, 8080, 3).unwrap());
    assert_eq!(spread(&names), [2, 2, 2], "rr over both ports: {names:?}");
    drop(extra);
    run.stop().unwrap();
}
