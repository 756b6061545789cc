//! The decapsulator end to end in an rvs-lab TUN topology whose director
//! forwards nothing (director_mode External): the test plays the director and
//! sends IPIP packets built with rvs_packet::encap from the director's
//! namespace through a header-included raw socket. The real server's
//! decapsulator hands the inner packet to its kernel, and the answer must
//! reach the client directly (the director cannot forward it), from the VIP:
//! - a UDP datagram client -> VIP:53 gets the echo server's reply (IPv4 in
//!   IPv4, IPv6 in IPv6, IPv6 in IPv4);
//! - a TCP SYN client -> VIP:80 gets a SYN-ACK acknowledging its sequence number;
//! - an inner destination that is no VIP is dropped and counted.
//!
//! Needs root and network namespaces: skipped with a reason otherwise, or
//! failed under CI=true.

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{TCP, UDP, header_included_socket, ip, launcher, namespaces_or_skip, send_packet, tcp_syn, tunnel, udp};
use nix::sys::socket::{AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, recv, socket};
use rvs_lab::{DirectorMode, HttpServerChoice, Lab, LabDescription, Method, TopologySpec};
use rvs_packet::ipv4::Ipv4Packet;
use rvs_packet::tcp::TcpPacket;
use rvs_realserver::state::{DecapStatus, read_json};
use rvs_realserver::{DecapConfig, DecapLaunch, Decapsulator, SetupRequest, setup, teardown};

fn tun_lab() -> Lab {
    let spec = TopologySpec {
        method: Method::Tun,
        directors: 1,
        real_servers: 1,
        director_mode: DirectorMode::External,
        http_server: HttpServerChoice::Builtin,
    };
    Lab::up(&spec).unwrap()
}

/// A UDP socket bound in the client's namespace.
fn client_udp(lab: &LabDescription, addr: IpAddr, port: u16) -> UdpSocket {
    let socket = rvs_lab::netns::run_in(&lab.client.netns, || {
        UdpSocket::bind(SocketAddr::new(addr, port))
            .map_err(|e| rvs_lab::LabError::Io { context: "bind".into(), source: e })
    })
    .unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    socket
}

struct Roles {
    director: IpAddr,
    director6: IpAddr,
    real_server: IpAddr,
    real_server6: IpAddr,
    client: IpAddr,
    client6: IpAddr,
    vip: IpAddr,
    vip6: IpAddr,
}

fn roles(lab: &LabDescription) -> Roles {
    let director = lab.directors[0].addr().unwrap();
    let real_server = lab.real_servers[0].addr().unwrap();
    let client = lab.client.addr().unwrap();
    Roles {
        director: director.v4.into(),
        director6: director.v6.into(),
        real_server: real_server.v4.into(),
        real_server6: real_server.v6.into(),
        client: client.v4.into(),
        client6: client.v6.into(),
        vip: lab.vip.v4.into(),
        vip6: lab.vip.v6.into(),
    }
}

/// Sends a UDP query client:port -> vip:53 through the tunnel and returns the
/// answer the client received, with its source.
fn udp_through_tunnel(
    lab: &LabDescription,
    (client, vip): (IpAddr, IpAddr),
    (outer_src, outer_dst): (IpAddr, IpAddr),
    port: u16,
) -> (String, SocketAddr) {
    let receiver = client_udp(lab, client, port);
    let inner = ip(client, vip, UDP, &udp(client, vip, port, lab.udp_port, b"query"));
    let sender = header_included_socket(&lab.directors[0].netns, outer_dst.is_ipv6());
    send_packet(&sender, &tunnel(&inner, outer_src, outer_dst), outer_dst);
    let mut buf = [0u8; 256];
    let (len, from) = receiver.recv_from(&mut buf).expect("the client gets an answer");
    (String::from_utf8_lossy(&buf[..len]).into_owned(), from)
}

/// A raw socket in the client's namespace that sees every incoming IPv4 TCP segment.
fn client_tcp_tap(lab: &LabDescription) -> OwnedFd {
    rvs_lab::netns::run_in(&lab.client.netns, || {
        socket(AddressFamily::Inet, SockType::Raw, SockFlag::SOCK_NONBLOCK, SockProtocol::Tcp)
            .map_err(|e| rvs_lab::LabError::Io { context: "raw tcp socket".into(), source: e.into() })
    })
    .unwrap()
}

/// Waits up to 5 s for a SYN-ACK from vip:80 to client:port; returns its ack number.
fn wait_syn_ack(tap: &OwnedFd, vip: IpAddr, client: IpAddr, port: u16) -> Option<u32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut buf = [0u8; 2048];
    while Instant::now() < deadline {
        let Ok(len) = recv(tap.as_raw_fd(), &mut buf, MsgFlags::MSG_DONTWAIT) else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let Ok(packet) = Ipv4Packet::new_checked(&buf[..len]) else { continue };
        let Ok(segment) = TcpPacket::new_checked(packet.payload()) else { continue };
        let flags = segment.flags().0;
        if IpAddr::V4(packet.src()) == vip
            && IpAddr::V4(packet.dst()) == client
            && segment.src_port() == 80
            && segment.dst_port() == port
            && flags & 0x12 == 0x12
        {
            return Some(segment.ack());
        }
    }
    None
}

fn status(path: &Path) -> DecapStatus {
    read_json(path).unwrap().expect("status file")
}

#[test]
fn tunnelled_udp_and_tcp_are_answered_directly_from_the_vip() {
    if !namespaces_or_skip("tunnelled_udp_and_tcp_are_answered_directly_from_the_vip") {
        return;
    }
    let lab = tun_lab();
    let desc = lab.description().clone();
    let r = roles(&desc);
    let rs = desc.real_servers[0].clone();
    let state_dir = std::env::temp_dir().join(common::unique("rvs-rs-lab-"));
    let mut request = SetupRequest::new(Method::Tun, vec![r.vip, r.vip6]);
    request.netns = Some(rs.netns.clone());
    request.state_dir = state_dir.clone();
    request.decap = DecapLaunch::Daemon(launcher());
    let record = setup(&request).unwrap();
    let child = record.decap.clone().unwrap();

    let outcome = std::panic::catch_unwind(|| {
        // IPv4 in IPv4: the echo server names itself, and the answer comes from VIP:53.
        let (answer, from) = udp_through_tunnel(&desc, (r.client, r.vip), (r.director, r.real_server), 40001);
        assert_eq!(answer, format!("{}\n", rs.name));
        assert_eq!(from, SocketAddr::new(r.vip, desc.udp_port));
        // IPv6 in IPv6 and IPv6 in IPv4 (outer protocol 41).
        let (answer, from) = udp_through_tunnel(&desc, (r.client6, r.vip6), (r.director6, r.real_server6), 40002);
        assert_eq!(
            (answer.as_str(), from),
            (format!("{}\n", rs.name).as_str(), SocketAddr::new(r.vip6, desc.udp_port))
        );
        let (answer, from) = udp_through_tunnel(&desc, (r.client6, r.vip6), (r.director, r.real_server), 40003);
        assert_eq!(
            (answer.as_str(), from),
            (format!("{}\n", rs.name).as_str(), SocketAddr::new(r.vip6, desc.udp_port))
        );

        // TCP: the SYN's sequence number 1000 is acknowledged as 1001.
        let tap = client_tcp_tap(&desc);
        let syn = ip(r.client, r.vip, TCP, &tcp_syn(r.client, r.vip, 40100, 80, 1000));
        let sender = header_included_socket(&desc.directors[0].netns, false);
        send_packet(&sender, &tunnel(&syn, r.director, r.real_server), r.real_server);
        assert_eq!(wait_syn_ack(&tap, r.vip, r.client, 40100), Some(1001), "SYN-ACK from the VIP at the client");

        // An inner destination that is not a VIP is dropped and counted.
        let other: IpAddr = "198.18.100.99".parse().unwrap();
        let stray = ip(r.client, other, UDP, &udp(r.client, other, 40200, 53, b"query"));
        send_packet(&sender, &tunnel(&stray, r.director, r.real_server), r.real_server);
        let counted = common::wait_for(Duration::from_secs(3), || {
            let now = status(&child.status_file);
            (now.dropped_not_vip >= 1 && now.decapsulated >= 4).then_some(now)
        });
        let now = counted.unwrap_or_else(|| status(&child.status_file));
        assert_eq!((now.decapsulated, now.dropped_not_vip, now.dropped_malformed), (4, 1, 0), "{now:?}");
    });
    let torn_down = teardown(Some(&rs.netns), &state_dir);
    let _ = std::fs::remove_dir_all(&state_dir);
    drop(lab);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
    torn_down.unwrap();
}

#[test]
fn an_in_process_decapsulator_thread_serves_the_lab() {
    if !namespaces_or_skip("an_in_process_decapsulator_thread_serves_the_lab") {
        return;
    }
    let lab = tun_lab();
    let desc = lab.description().clone();
    let r = roles(&desc);
    let rs_netns = desc.real_servers[0].netns.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread_stop = Arc::clone(&stop);
    let vips = vec![r.vip, r.vip6];
    let worker = std::thread::spawn(move || {
        rvs_lab::netns::enter(&rs_netns).unwrap();
        let mut decapsulator = Decapsulator::open(&DecapConfig::new(vips)).unwrap();
        let counters = decapsulator.counters();
        ready_tx.send(decapsulator.tun_name().to_owned()).unwrap();
        decapsulator.run(&thread_stop).unwrap();
        counters
    });
    let tun = ready_rx.recv_timeout(Duration::from_secs(10)).expect("decapsulator ready");
    assert!(tun.starts_with("rvstun"), "{tun}");
    let (answer, from) = udp_through_tunnel(&desc, (r.client, r.vip), (r.director, r.real_server), 40011);
    stop.store(true, Ordering::Relaxed);
    let counters = worker.join().unwrap();
    assert_eq!(answer, format!("{}\n", desc.real_servers[0].name));
    assert_eq!(from, SocketAddr::new(r.vip, desc.udp_port));
    assert_eq!(counters.decapsulated.load(Ordering::Relaxed), 1);
    lab.down().unwrap();
}
