//! Firewall-mark services through the pipeline: a frame's mark selects the service, the
//! unmarked AF_PACKET copy of a fwmark connection's packet is left alone (its marked NFQUEUE
//! copy is the one forwarded), persistence spans every port of the mark, and the fates
//! tell a queue which verdict to give.

mod pipeline_support;

use pipeline_support::*;
use rvs_core::addr::Family;
use rvs_core::service::{Persistence, Protocol, ServiceConfig, ServiceKey};
use rvs_core::{DestConfig, ForwardMethod, SchedulerKind};
use rvs_dataplane::io::Batch;
use rvs_dataplane::pipeline::Fate;

const MARK: u32 = 1;

/// A lab with a fwmark service (IPv4, mark 1, rr) over real servers 1..=3 by direct routing,
/// port 0 (each packet keeps its destination port).
fn fwmark_lab(persistent: bool) -> Lab {
    let lab = Lab::new(config());
    let key = ServiceKey::Fwmark { family: Family::V4, mark: MARK };
    let mut cfg = ServiceConfig::new(key);
    cfg.scheduler = SchedulerKind::Rr;
    if persistent {
        cfg.persistence = Some(Persistence::default_for(Family::V4));
    }
    let mut engine = lab.engine.lock().unwrap();
    engine.add_service(cfg).unwrap();
    for i in 1..=3 {
        let mut d = DestConfig::new(rs4(i).into(), 0);
        d.method = ForwardMethod::DirectRoute;
        engine.add_dest(&key, d).unwrap();
    }
    drop(engine);
    lab
}

/// Runs `frames` (bytes, mark) as one batch arriving from the router; returns what was sent
/// and each frame's fate.
fn run_marked(lab: &mut Lab, frames: &[(Vec<u8>, u32)]) -> (Vec<(u32, Vec<u8>)>, Vec<Fate>) {
    let mut rx = Batch::new(frames.len().max(1));
    for (bytes, mark) in frames {
        let f = rx.push().unwrap();
        f.fill(bytes, IF_CLIENTS);
        f.mark = *mark;
    }
    lab.tx.clear();
    let mut fates = Vec::new();
    lab.pipeline.process_with_fates(&mut rx, &mut lab.tx, &mut lab.nexthops, lab.now, &mut fates);
    let sent = lab.tx.frames().iter().map(|f| (f.ifindex, f.data().to_vec())).collect();
    (sent, fates)
}

fn syn(cport: u16, vport: u16) -> Vec<u8> {
    from_router(&tcp(sa(CLIENT4, cport), sa(VIP4, vport), SYN, b"", IpOpts::default()))
}

fn ack(cport: u16, vport: u16) -> Vec<u8> {
    from_router(&tcp(sa(CLIENT4, cport), sa(VIP4, vport), ACK, b"GET /", IpOpts::default()))
}

fn dst_mac(frame: &[u8]) -> [u8; 6] {
    frame[..6].try_into().unwrap()
}

#[test]
fn the_mark_selects_the_service_and_rr_spreads_across_its_ports() {
    let mut lab = fwmark_lab(false);
    // rr over servers 1, 2, 3 in list order, whatever the port: the service is the mark.
    let (sent, fates) = run_marked(&mut lab, &[(syn(1000, 80), MARK), (syn(1001, 8080), MARK), (syn(1002, 80), MARK)]);
    assert_eq!(fates, vec![Fate::Forwarded; 3]);
    let macs: Vec<[u8; 6]> = sent.iter().map(|(_, f)| dst_mac(f)).collect();
    assert_eq!(macs, vec![mac_rs(1), mac_rs(2), mac_rs(3)]);
    // Direct routing: only the MACs change; port 8080 is kept (real-server port 0).
    assert_eq!(sent[1], (IF_SERVERS, with_macs(&syn(1001, 8080), mac_rs(2), MAC_DIRECTOR_OUT)));
    lab.assert_accounted();
}

#[test]
fn an_unmarked_copy_is_left_alone_and_the_marked_one_forwarded() {
    let mut lab = fwmark_lab(false);
    // Before any connection: the unmarked SYN (AF_PACKET's copy) matches no service.
    let (sent, fates) = run_marked(&mut lab, &[(syn(2000, 80), 0)]);
    assert!(sent.is_empty());
    assert_eq!(fates, vec![Fate::Passed]);
    assert_eq!(lab.pipeline.counters().passed.not_ours, 1);
    // The marked copy opens the connection.
    let (sent, _) = run_marked(&mut lab, &[(syn(2000, 80), MARK)]);
    assert_eq!(dst_mac(&sent[0].1), mac_rs(1));
    // Later packets: the unmarked copy is passed (not forwarded twice), the marked one goes
    // to the connection's server.
    let (sent, fates) = run_marked(&mut lab, &[(ack(2000, 80), 0), (ack(2000, 80), MARK)]);
    assert_eq!(fates, vec![Fate::Passed, Fate::Forwarded]);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1, with_macs(&ack(2000, 80), mac_rs(1), MAC_DIRECTOR_OUT));
    let c = lab.pipeline.counters();
    assert_eq!((c.passed.unmarked_fwmark, c.forwarded.direct_route), (1, 2));
    // The engine counted the connection's packets once each (SYN + ACK), not the copies.
    let engine = lab.engine.lock().unwrap();
    let (_, svc) = engine.services().next().unwrap();
    assert_eq!(svc.stats.counters.in_pkts, 2);
    drop(engine);
    lab.assert_accounted();
}

#[test]
fn an_address_service_keeps_its_unmarked_packets_and_other_marks_are_not_ours() {
    let mut lab = fwmark_lab(false);
    let key = lab.service(Protocol::Tcp, VIP4.into(), 443, SchedulerKind::Rr, false);
    lab.dest(&key, rs4(4).into(), 443, ForwardMethod::DirectRoute);
    let (sent, fates) = run_marked(&mut lab, &[(syn(3000, 443), 0), (ack(3000, 443), 0), (syn(3001, 80), 2)]);
    // VIP:443 is an address service: its unmarked packets are forwarded as always. Mark 2
    // has no service (and port 80 no address service): the kernel's.
    assert_eq!(fates, vec![Fate::Forwarded, Fate::Forwarded, Fate::Passed]);
    assert!(sent.iter().all(|(_, f)| dst_mac(f) == mac_rs(4)));
}

#[test]
fn persistence_keeps_a_client_on_one_server_across_every_port_of_the_mark() {
    let mut lab = fwmark_lab(true);
    let frames: Vec<(Vec<u8>, u32)> =
        [(4000, 80), (4001, 443), (4002, 8080), (4003, 80)].iter().map(|&(c, v)| (syn(c, v), MARK)).collect();
    let (sent, _) = run_marked(&mut lab, &frames);
    assert_eq!(sent.len(), 4);
    assert!(sent.iter().all(|(_, f)| dst_mac(f) == mac_rs(1)), "one template for the mark, every port");
    // The template is keyed on the mark, not on an address and port.
    let engine = lab.engine.lock().unwrap();
    let templates = engine.conns().iter().filter(|(_, c)| c.is_template()).count();
    assert_eq!(templates, 1);
}

#[test]
fn what_rvs_answers_itself_is_not_left_to_the_kernel() {
    let mut lab = Lab::new(config());
    // A fwmark service with no real server: the SYN is answered with port unreachable.
    let key = ServiceKey::Fwmark { family: Family::V4, mark: MARK };
    lab.engine.lock().unwrap().add_service(ServiceConfig::new(key)).unwrap();
    let (sent, fates) = run_marked(&mut lab, &[(syn(5000, 80), MARK)]);
    assert_eq!(fates, vec![Fate::Replied]);
    assert!(!fates[0].kernel_keeps());
    assert_eq!(sent.len(), 1, "the ICMP error");
    assert!(Fate::Passed.kernel_keeps() && !Fate::Dropped.kernel_keeps() && !Fate::Forwarded.kernel_keeps());
}
