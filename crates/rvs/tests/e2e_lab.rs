//! End-to-end tests: rvs directing a real cluster in network namespaces (rvs-lab), with the
//! kernel's TCP stacks on both ends, nginx real servers, curl and std sockets as clients.
//! Root is needed; with CI=true a test that cannot create namespaces fails.

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::time::Duration;

use rvs::lab::{LabRun, can_run_namespace_tests, spread};
use rvs_api::{Command, ConnInfo, MethodSpec, NetmaskSpec, PersistenceSpec, Request, Response};
use rvs_lab::{Method, Segment};

fn real_addr(run: &LabRun, index: usize, v4: bool) -> IpAddr {
    let d = run.description();
    let seg = if d.spec.method == Method::Nat { Segment::Private } else { Segment::Lan };
    let i = d.real_servers[index].interface(seg).expect("real server interface");
    if v4 { IpAddr::V4(i.addr.v4) } else { IpAddr::V6(i.addr.v6) }
}

fn tcp_service(run: &LabRun, v4: bool) -> rvs_api::ServiceSpec {
    let Response::Table(t) = run.call(&Request::List).unwrap() else { panic!("no table") };
    let vip = if v4 { IpAddr::V4(run.description().vip.v4) } else { IpAddr::V6(run.description().vip.v6) };
    t.services
        .into_iter()
        .find(|s| matches!(s.spec.id, rvs_api::ServiceId::Addr { protocol: rvs_api::Proto::Tcp, addr, .. } if addr == vip))
        .expect("TCP service on the VIP")
        .spec
}

fn conns(run: &LabRun) -> Vec<ConnInfo> {
    let Response::Conns { conns } = run.call(&Request::ListConns).unwrap() else { panic!("no conns") };
    conns
}

#[test]
fn every_method_serves_the_vip_over_ipv4_and_ipv6_and_rr_spreads_evenly() {
    if !can_run_namespace_tests() {
        return;
    }
    for method in [Method::Dr, Method::Nat, Method::Tun] {
        let run = LabRun::start(method, "rr").unwrap();
        for vip in run.description().vip.both() {
            let names = run.http(vip, 30).unwrap();
            assert_eq!(spread(&names), [10, 10, 10], "{method:?} {vip}: {names:?}\nrvsd log:\n{}", run.log());
        }
        // The pipeline's counters are in rvsd's status (published every 100 ms).
        std::thread::sleep(Duration::from_millis(300));
        let Response::Status(status) = run.call(&Request::Status).unwrap() else { panic!("no status") };
        let key = match method {
            Method::Dr => "dataplane_forwarded_direct_route",
            Method::Nat => "dataplane_forwarded_masquerade",
            Method::Tun => "dataplane_forwarded_tunnel",
        };
        assert!(status.counters.get(key).copied().unwrap_or(0) >= 60, "{key}: {:?}", status.counters);
        // rvsd installed its steering table in the director; SIGTERM removes it.
        let director = run.description().directors[0].netns.clone();
        let tables = || {
            let out =
                std::process::Command::new("ip").args(["netns", "exec", &director, "nft", "list", "tables"]).output();
            String::from_utf8_lossy(&out.unwrap().stdout).to_string()
        };
        assert!(tables().contains("rvs_"), "{method:?}: steering table installed: {}", tables());
        let mut run = run;
        let status = run.stop_rvsd().unwrap().expect("rvsd was running");
        assert!(status.success(), "rvsd exits 0 on SIGTERM: {status}");
        assert!(!tables().contains("rvs_"), "{method:?}: steering removed on stop: {}", tables());
        run.stop().unwrap();
    }
}

#[test]
fn wrr_follows_weights_and_sh_keeps_a_client_on_one_server() {
    if !can_run_namespace_tests() {
        return;
    }
    let run = LabRun::start(Method::Dr, "wrr").unwrap();
    let svc = tcp_service(&run, true);
    let mut commands = Vec::new();
    for (i, w) in [3u32, 2, 1].into_iter().enumerate() {
        let dest = rvs_api::DestSpec {
            addr: real_addr(&run, i, true),
            port: 80,
            method: MethodSpec::Route,
            weight: w,
            u_threshold: 0,
            l_threshold: 0,
        };
        commands.push(Command::EditDest { service: svc.id, dest });
    }
    run.apply(commands).unwrap();
    let v4 = IpAddr::V4(run.description().vip.v4);
    assert_eq!(spread(&run.http(v4, 30).unwrap()), [15, 10, 5], "wrr 3:2:1");
    run.apply(vec![Command::EditService(rvs_api::ServiceSpec { scheduler: "sh".into(), ..svc })]).unwrap();
    let names = run.http(v4, 20).unwrap();
    assert_eq!(names.len(), 20);
    assert!(names.iter().all(|n| *n == names[0]), "sh: one client, one server: {names:?}");
}

#[test]
fn persistence_keeps_a_client_network_on_one_server() {
    if !can_run_namespace_tests() {
        return;
    }
    let run = LabRun::start(Method::Nat, "rr").unwrap();
    for v4 in [true, false] {
        let svc = tcp_service(&run, v4);
        let netmask = if v4 { NetmaskSpec::V4("255.255.255.0".parse().unwrap()) } else { NetmaskSpec::V6(64) };
        let spec = rvs_api::ServiceSpec { persistence: Some(PersistenceSpec { timeout: 360, netmask }), ..svc };
        run.apply(vec![Command::EditService(spec)]).unwrap();
        let vip = if v4 { IpAddr::V4(run.description().vip.v4) } else { IpAddr::V6(run.description().vip.v6) };
        let names = run.http(vip, 20).unwrap();
        assert_eq!(names.len(), 20);
        assert!(names.iter().all(|n| *n == names[0]), "persistent rr: {names:?}");
        assert!(conns(&run).iter().any(|c| c.template && c.cport == 0), "a persistence template is listed");
    }
}

/// A keep-alive HTTP connection from the client namespace, held open on its own thread.
struct HeldConnection {
    ask: mpsc::Sender<()>,
    answers: mpsc::Receiver<Option<String>>,
}

impl HeldConnection {
    fn open(netns: &str, vip: IpAddr) -> HeldConnection {
        let (ask, asks) = mpsc::channel::<()>();
        let (tell, answers) = mpsc::channel();
        let netns = netns.to_string();
        std::thread::spawn(move || {
            rvs_lab::netns::enter(&netns).unwrap();
            let mut stream = TcpStream::connect_timeout(&SocketAddr::new(vip, 80), Duration::from_secs(3)).unwrap();
            stream.set_read_timeout(Some(Duration::from_millis(1500))).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            while asks.recv().is_ok() {
                let sent = stream.write_all(b"GET / HTTP/1.1\r\nHost: lab\r\nConnection: keep-alive\r\n\r\n");
                let answer = sent.ok().and_then(|_| read_response(&mut reader));
                if tell.send(answer).is_err() {
                    break;
                }
            }
        });
        HeldConnection { ask, answers }
    }

    fn request(&self) -> Option<String> {
        self.ask.send(()).ok()?;
        self.answers.recv_timeout(Duration::from_secs(5)).ok().flatten()
    }
}

/// Reads one HTTP response (Content-Length body) and returns its body, trimmed.
fn read_response(r: &mut impl BufRead) -> Option<String> {
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(String::from_utf8_lossy(&body).trim().to_string())
}

#[test]
fn a_quiesced_server_keeps_its_connections_and_gets_no_new_ones() {
    if !can_run_namespace_tests() {
        return;
    }
    let run = LabRun::start(Method::Dr, "rr").unwrap();
    let vip = IpAddr::V4(run.description().vip.v4);
    let held = HeldConnection::open(&run.description().client.netns, vip);
    let first = held.request().expect("held connection answers");
    let index = first.trim_start_matches("rs").parse::<usize>().unwrap() - 1;
    let svc = tcp_service(&run, true);
    let dest = rvs_api::DestSpec {
        addr: real_addr(&run, index, true),
        port: 80,
        method: MethodSpec::Route,
        weight: 0,
        u_threshold: 0,
        l_threshold: 0,
    };
    run.apply(vec![Command::EditDest { service: svc.id, dest }]).unwrap();
    let names = run.http(vip, 20).unwrap();
    assert_eq!(names.len(), 20);
    assert!(!names.contains(&first), "no new connection to the quiesced {first}: {names:?}");
    assert_eq!(held.request().as_deref(), Some(first.as_str()), "the existing connection still works");
}

#[test]
fn a_removed_server_follows_expire_nodest_conn() {
    if !can_run_namespace_tests() {
        return;
    }
    for expire in [false, true] {
        let extra = format!("[sysctl]\nexpire_nodest_conn = {expire}\n");
        let run = LabRun::start_with(Method::Dr, "rr", &extra).unwrap();
        let vip = IpAddr::V4(run.description().vip.v4);
        let held = HeldConnection::open(&run.description().client.netns, vip);
        let first = held.request().expect("held connection answers");
        let index = first.trim_start_matches("rs").parse::<usize>().unwrap() - 1;
        let addr = real_addr(&run, index, true);
        let svc = tcp_service(&run, true);
        run.apply(vec![Command::DeleteDest { service: svc.id, addr, port: 80 }]).unwrap();
        assert!(conns(&run).iter().any(|c| c.daddr == addr && !c.template), "connection kept after removal");
        assert_eq!(held.request(), None, "packets of a connection to a removed server are not forwarded");
        let still_there = conns(&run).iter().any(|c| c.daddr == addr && !c.template);
        assert_eq!(still_there, !expire, "expire_nodest_conn={expire}: the connection entry goes on the next packet");
        let names = run.http(vip, 10).unwrap();
        assert_eq!(names.len(), 10);
        assert!(!names.contains(&first), "new connections avoid the removed server");
    }
}

#[test]
fn a_udp_service_answers_through_every_method() {
    if !can_run_namespace_tests() {
        return;
    }
    for method in [Method::Dr, Method::Nat, Method::Tun] {
        let run = LabRun::start(method, "rr").unwrap();
        let d = run.description().clone();
        for vip in d.vip.both() {
            let netns = d.client.netns.clone();
            let port = d.udp_port;
            let answers = std::thread::spawn(move || {
                rvs_lab::netns::enter(&netns).unwrap();
                let bind: SocketAddr =
                    if vip.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
                let mut names = Vec::new();
                for _ in 0..6 {
                    // A new socket (source port) per query: each is a new UDP "connection".
                    let s = UdpSocket::bind(bind).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    s.send_to(b"who?", SocketAddr::new(vip, port)).unwrap();
                    let mut buf = [0u8; 512];
                    if let Ok((n, from)) = s.recv_from(&mut buf) {
                        assert_eq!(from, SocketAddr::new(vip, port), "the answer comes from the VIP");
                        names.push(String::from_utf8_lossy(&buf[..n]).trim().to_string());
                    }
                }
                names
            })
            .join()
            .unwrap();
            assert_eq!(answers.len(), 6, "{method:?} {vip}: every query answered: {answers:?}\n{}", run.log());
            assert_eq!(spread(&answers), [2, 2, 2], "{method:?} {vip}: rr over UDP: {answers:?}");
        }
        run.stop().unwrap();
    }
}
