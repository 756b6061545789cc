//! Steering rules in a client -- director -- real-server chain of namespaces: the
//! director's kernel stops answering VIP service traffic and forwarding NAT replies, while
//! everything else (ARP/ND, ping, other ports, health-check replies) still works; updates
//! apply atomically; the table disappears on drop; stale tables of dead daemons are swept.

mod afpacket_common;

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::sync::mpsc;
use std::time::Duration;

use afpacket_common::{TestNet, exec, in_ns, ip, namespaces_available, spawn_in_ns};
use rvs_core::addr::Family;
use rvs_core::service::Protocol;
use rvs_dataplane::io::Batch;
use rvs_dataplane::nfqueue::NfQueue;
use rvs_dataplane::pipeline::Fate;
use rvs_dataplane::steer::{self, SteeredMark, SteeredRealServer, SteeredService, Steering, SteeringSpec};

const VIP4: &str = "198.18.60.100";
const VIP6: &str = "fd00:60::100";

struct Chain {
    net: TestNet,
    client: String,
    director: String,
    server: String,
    dir_client_if: String,
    dir_server_if: String,
}

fn chain() -> Chain {
    let mut net = TestNet::new();
    let client = net.netns("c");
    let director = net.netns("d");
    let server = net.netns("r");
    let (c, dc, ds, r) = (net.ifname("c"), net.ifname("dc"), net.ifname("ds"), net.ifname("r"));
    net.veth((&client, &c, "02:72:76:60:00:02"), (&director, &dc, "02:72:76:60:00:01"));
    net.veth((&director, &ds, "02:72:76:61:00:01"), (&server, &r, "02:72:76:61:00:02"));
    for (ns, dev, addr) in [
        (&client, &c, "198.18.60.2/24"),
        (&client, &c, "fd00:60::2/64"),
        (&director, &dc, "198.18.60.1/24"),
        (&director, &dc, "fd00:60::1/64"),
        (&director, &dc, "198.18.60.100/32"),
        (&director, &dc, "fd00:60::100/128"),
        (&director, &ds, "198.18.61.1/24"),
        (&director, &ds, "fd00:61::1/64"),
        (&server, &r, "198.18.61.2/24"),
        (&server, &r, "fd00:61::2/64"),
    ] {
        ip(&["-n", ns, "addr", "add", addr, "dev", dev, "nodad"]);
    }
    ip(&["-n", &client, "route", "add", "default", "via", "198.18.60.1"]);
    ip(&["-n", &server, "route", "add", "default", "via", "198.18.61.1"]);
    exec(&director, "sysctl", &["-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"]);
    Chain { net, client, director, server, dir_client_if: dc, dir_server_if: ds }
}

/// How a TCP connection attempt from the client ended.
#[derive(Debug, PartialEq, Eq)]
enum Connect {
    Accepted,
    Refused,
    TimedOut,
}

fn connect(client: &str, addr: &str) -> Connect {
    let addr: SocketAddr = addr.parse().unwrap();
    in_ns(client, move || match TcpStream::connect_timeout(&addr, Duration::from_millis(700)) {
        Ok(_) => Connect::Accepted,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Connect::Refused,
        Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock => Connect::TimedOut,
        Err(e) => panic!("connect {addr}: {e}"),
    })
}

/// Binds a UDP socket at `addr` in `ns`, then returns a handle yielding what it got
/// within 1 s.
fn listen_udp(ns: &str, addr: &str) -> std::thread::JoinHandle<Option<Vec<u8>>> {
    let addr: SocketAddr = addr.parse().unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = spawn_in_ns(ns, move || {
        let socket = UdpSocket::bind(addr).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        ready_tx.send(()).unwrap();
        let mut buf = [0u8; 512];
        socket.recv(&mut buf).ok().map(|n| buf[..n].to_vec())
    });
    ready_rx.recv().unwrap();
    handle
}

fn send_udp(ns: &str, from: &str, to: &str, payload: &[u8]) {
    let (from, to): (SocketAddr, SocketAddr) = (from.parse().unwrap(), to.parse().unwrap());
    let payload = payload.to_vec();
    in_ns(ns, move || {
        let socket = UdpSocket::bind(from).unwrap();
        socket.send_to(&payload, to).unwrap();
    });
}

fn ping(ns: &str, addr: &str) -> bool {
    exec(ns, "ping", &["-c", "1", "-W", "2", addr]).0
}

fn spec(chain: &Chain, vip_port: u16) -> SteeringSpec {
    let ip = |s: &str| s.parse::<IpAddr>().unwrap();
    SteeringSpec {
        interfaces: vec![chain.dir_client_if.clone(), chain.dir_server_if.clone()],
        services: vec![
            SteeredService { protocol: Protocol::Tcp, addr: ip(VIP4), port: vip_port },
            SteeredService { protocol: Protocol::Tcp, addr: ip(VIP6), port: vip_port },
        ],
        nat_real_servers: vec![SteeredRealServer { protocol: Protocol::Udp, addr: ip("198.18.61.2"), port: 5353 }],
        local_addrs: ["198.18.60.1", "198.18.61.1", "fd00:60::1", "fd00:61::1"].map(ip).to_vec(),
        ..SteeringSpec::default()
    }
}

#[test]
fn steer_hides_vip_traffic_and_nat_replies_from_the_director_kernel_only() {
    if !namespaces_available(
        "steer_hides_vip_traffic_and_nat_replies_from_the_director_kernel_only",
        &["ip", "nft", "ping"],
    ) {
        return;
    }
    let c = chain();
    let vip4 = format!("{VIP4}:80");
    let vip6 = format!("[{VIP6}]:80");
    // Baseline: the director's kernel owns the VIP and refuses port 80 with a RST.
    assert_eq!(connect(&c.client, &vip4), Connect::Refused);
    assert_eq!(connect(&c.client, &vip6), Connect::Refused);

    let director = c.director.clone();
    let table = format!("rvs_t{}", &c.net.run[3..]);
    // nft must run inside the director namespace: do all steering calls from a thread there.
    let mut steering = in_ns(&director, || Steering::install_named(&table, spec(&c, 80)).expect("install"));

    // The SYN to the VIP is dropped before the kernel sees it: no RST, the client times out.
    assert_eq!(connect(&c.client, &vip4), Connect::TimedOut);
    assert_eq!(connect(&c.client, &vip6), Connect::TimedOut);
    // Everything else stays with the kernel: another port of the director's own address
    // is refused as usual; ping (after ARP/ND from scratch) answers.
    exec(&c.client, "ip", &["neigh", "flush", "all"]);
    assert_eq!(connect(&c.client, "198.18.60.1:80"), Connect::Refused);
    assert!(ping(&c.client, "198.18.60.1"));
    assert!(ping(&c.client, "fd00:60::1"));
    assert!(ping(&c.client, VIP4), "ICMP to the VIP is not steered");

    // NAT replies (source RIP:5353) are not forwarded to the client ...
    let to_client = listen_udp(&c.client, "198.18.60.2:6000");
    send_udp(&c.server, "198.18.61.2:5353", "198.18.60.2:6000", b"nat reply");
    assert_eq!(to_client.join().unwrap(), None, "the kernel forwarded a NAT reply");
    // ... but reach the director itself (health-check replies) ...
    let to_director = listen_udp(&c.director, "198.18.61.1:6001");
    send_udp(&c.server, "198.18.61.2:5353", "198.18.61.1:6001", b"health");
    assert_eq!(to_director.join().unwrap().as_deref(), Some(&b"health"[..]));
    // ... and other source ports of the real server are forwarded as usual.
    let other = listen_udp(&c.client, "198.18.60.2:6002");
    send_udp(&c.server, "198.18.61.2:5354", "198.18.60.2:6002", b"other");
    assert_eq!(other.join().unwrap().as_deref(), Some(&b"other"[..]));

    // Counters: 2+ SYNs per VIP attempt (retransmits) plus the one NAT reply were dropped.
    let dropped = in_ns(&director, || steering.dropped_packets().expect("list"));
    assert!(dropped >= 3, "dropped {dropped}");

    // Update: only port 81 steered now; port 80 is the kernel's again.
    in_ns(&director, || steering.update(spec(&c, 81)).expect("update"));
    assert_eq!(connect(&c.client, &vip4), Connect::Refused);
    assert_eq!(connect(&c.client, &format!("{VIP4}:81")), Connect::TimedOut);

    // Drop removes the table.
    in_ns(&director, move || drop(steering));
    let (ok, tables) = exec(&director, "nft", &["list", "tables"]);
    assert!(ok, "{tables}");
    assert!(!tables.contains(&table), "{tables}");
    assert_eq!(connect(&c.client, &format!("{VIP4}:81")), Connect::Refused);
}

/// Sends one UDP datagram from the client to the real server through the director, where
/// it is marked and queued: returns the frame rvs got and whether the server received the
/// datagram after the verdict given from `fate`.
fn through_the_queue(
    c: &Chain,
    queue: &mut NfQueue,
    v4: bool,
    payload: &[u8],
    fate: Fate,
) -> (Vec<u8>, u32, u32, bool) {
    let (from, to) = if v4 { ("198.18.60.2:0", "198.18.61.2:7000") } else { ("[fd00:60::2]:0", "[fd00:61::2]:7000") };
    let listener = listen_udp(&c.server, to);
    send_udp(&c.client, from, to, payload);
    let mut batch = Batch::new(8);
    let n = queue.recv(&mut batch, Duration::from_secs(2)).expect("recv");
    assert_eq!(n, 1, "one queued packet: {:?}", queue.stats());
    let frame = &batch.frames()[0];
    let seen = (frame.data().to_vec(), frame.mark, frame.ifindex);
    queue.send_verdicts(&[fate]).expect("verdict");
    let delivered = listener.join().unwrap().as_deref() == Some(payload);
    (seen.0, seen.1, seen.2, delivered)
}

#[test]
fn marked_packets_reach_the_queue_with_their_mark_and_follow_the_verdict() {
    if !namespaces_available("marked_packets_reach_the_queue_with_their_mark_and_follow_the_verdict", &["ip", "nft"]) {
        return;
    }
    let c = chain();
    ip(&["-n", &c.client, "-6", "route", "add", "default", "via", "fd00:60::1"]);
    ip(&["-n", &c.server, "-6", "route", "add", "default", "via", "fd00:61::1"]);
    let director = c.director.clone();
    let table = format!("rvs_q{}", &c.net.run[3..]);
    let spec = SteeringSpec {
        marks: vec![SteeredMark { family: Family::V4, mark: 5 }, SteeredMark { family: Family::V6, mark: 6 }],
        queue: 17,
        ..SteeringSpec::default()
    };
    let (mut queue, steering) = in_ns(&director, || {
        let queue = NfQueue::open(17).expect("bind queue 17");
        (queue, Steering::install_named(&table, spec).expect("install"))
    });
    // The operator's marking rules, at mangle (before the queue rules at mangle + 10).
    for command in [
        "add table inet mark_t",
        "add chain inet mark_t pre { type filter hook prerouting priority mangle; }",
        "add rule inet mark_t pre ip daddr 198.18.61.2 udp dport 7000 meta mark set 5",
        "add rule inet mark_t pre ip6 daddr fd00:61::2 udp dport 7000 meta mark set 6",
    ] {
        let (ok, err) = exec(&director, "nft", &[command]);
        assert!(ok, "{command}: {err}");
    }
    let ifindex: u32 =
        exec(&director, "cat", &[&format!("/sys/class/net/{}/ifindex", c.dir_client_if)]).1.trim().parse().unwrap();

    // Dropped by rvs: the kernel does not forward it.
    let (frame, mark, arrived_on, delivered) = through_the_queue(&c, &mut queue, true, b"rvs has it", Fate::Forwarded);
    assert_eq!((mark, arrived_on), (5, ifindex), "the mark and the input interface come with the packet");
    // Synthetic Ethernet header (zero MACs, IPv4), then the IP packet: UDP to port 7000.
    assert_eq!(&frame[..14], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00]);
    assert_eq!((frame[14] >> 4, frame[14 + 9]), (4, 17));
    assert_eq!(&frame[14 + 20 + 2..14 + 20 + 4], &7000u16.to_be_bytes());
    assert!(frame.ends_with(b"rvs has it"));
    assert!(!delivered, "a packet rvs took must not be forwarded by the kernel");
    // Passed: the kernel forwards it as usual.
    let (_, _, _, delivered) = through_the_queue(&c, &mut queue, true, b"kernel has it", Fate::Passed);
    assert!(delivered, "a passed packet goes on");
    // IPv6 with its own mark, once neighbour discovery works end to end (link-local
    // addresses finish duplicate address detection about a second after link-up).
    assert!((0..5).any(|_| ping(&c.client, "fd00:61::2")), "IPv6 path through the director");
    let (frame, mark, _, delivered) = through_the_queue(&c, &mut queue, false, b"v6 passed", Fate::Passed);
    assert_eq!((mark, &frame[12..14]), (6, &[0x86, 0xdd][..]));
    assert!(delivered);
    let (_, _, _, delivered) = through_the_queue(&c, &mut queue, false, b"v6 taken", Fate::Dropped);
    assert!(!delivered);
    let stats = queue.stats();
    assert_eq!((stats.received, stats.dropped, stats.accepted, stats.malformed), (4, 2, 2, 0));

    let listing = in_ns(&director, || steering.list_queue_rules().expect("list"));
    // Each packet queued went through its family's UDP rule once (nft may not print the
    // xtables target itself).
    assert!(listing.contains("priority mangle + 10"), "{listing}");
    assert!(listing.contains("meta mark 0x00000005 meta l4proto udp counter packets 2 "), "{listing}");
    assert!(listing.contains("meta mark 0x00000006 meta l4proto udp counter packets 2 "), "{listing}");
    in_ns(&director, move || drop(steering));
    let (_, tables) = exec(&director, "nft", &["list", "tables"]);
    assert!(!tables.contains(&table), "queue tables removed with the steering: {tables}");
    // With no rule queueing, marked packets go through the kernel untouched.
    let listener = listen_udp(&c.server, "198.18.61.2:7000");
    send_udp(&c.client, "198.18.60.2:0", "198.18.61.2:7000", b"no queue");
    assert_eq!(listener.join().unwrap().as_deref(), Some(&b"no queue"[..]));
}

#[test]
fn steer_remove_stale_deletes_tables_of_dead_daemons_only() {
    if !namespaces_available("steer_remove_stale_deletes_tables_of_dead_daemons_only", &["ip", "nft"]) {
        return;
    }
    let mut net = TestNet::new();
    let ns = net.netns("s");
    // A pid that no process has: pid_max is at most 2^22, so 2^22 + 1 never exists.
    let dead = format!("{}{}", steer::TABLE_PREFIX, (1u32 << 22) + 1);
    let (removed, listing) = in_ns(&ns, || {
        // The stale daemon had a firewall-mark service: its ip queue table goes too.
        let with_mark = SteeringSpec {
            marks: vec![SteeredMark { family: Family::V4, mark: 9 }],
            queue: 9,
            ..SteeringSpec::default()
        };
        let stale = Steering::install_named(&dead, with_mark).expect("install stale");
        std::mem::forget(stale);
        let alive = Steering::install(SteeringSpec::default()).expect("install own");
        let removed = steer::remove_stale().expect("remove_stale");
        let listing = std::process::Command::new("nft").args(["list", "tables"]).output().unwrap();
        drop(alive);
        (removed, String::from_utf8_lossy(&listing.stdout).into_owned())
    });
    assert_eq!(removed, vec![dead.clone()]);
    assert!(!listing.contains(&dead), "{listing}");
    assert!(listing.contains(&Steering::default_table_name()), "own table kept: {listing}");
}
