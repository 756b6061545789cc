//! Pipeline throughput: nanoseconds per packet for established flows, 32-frame batches, over
//! the in-memory batches (no I/O): direct routing, NAT towards the real server, NAT replies.
//! Each iteration refills the rx batch from 32 template frames (the `refill_only` case
//! measures that copy alone) and processes it. Run: `cargo bench -p rvs-dataplane --bench pipeline`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use rvs_core::engine::Engine;
use rvs_core::service::{Protocol, ServiceConfig, ServiceKey};
use rvs_core::{DestConfig, ForwardMethod, Instant, SchedulerKind};
use rvs_dataplane::io::Batch;
use rvs_dataplane::nexthop::{NextHop, StaticNextHops};
use rvs_dataplane::pipeline::{Pipeline, PipelineConfig};
use rvs_packet::MacAddr;

const BATCH: usize = 32;
const VIP: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 100);

fn rs(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 19, 0, 2 + i)
}

fn client(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, 10 + i as u8)
}

fn sum16(data: &[u8], mut sum: u32) -> u32 {
    for c in data.chunks(2) {
        sum += u32::from(c[0]) << 8 | u32::from(*c.get(1).unwrap_or(&0));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum
}

/// An Ethernet + IPv4 + TCP frame with 10 bytes of payload and valid checksums.
fn frame(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, flags: u8) -> Vec<u8> {
    let mut tcp = Vec::new();
    tcp.extend(sport.to_be_bytes());
    tcp.extend(dport.to_be_bytes());
    tcp.extend([0, 0, 0, 1, 0, 0, 0, 1, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    tcp.extend(b"0123456789");
    let mut pseudo = src.octets().to_vec();
    pseudo.extend(dst.octets());
    pseudo.extend([0, 6, 0, tcp.len() as u8]);
    let c = !(sum16(&tcp, sum16(&pseudo, 0)) as u16);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    let total = 20 + tcp.len();
    let mut ip = vec![0x45, 0, 0, total as u8, 0, 1, 0x40, 0, 64, 6, 0, 0];
    ip.extend(src.octets());
    ip.extend(dst.octets());
    let c = !(sum16(&ip, 0) as u16);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = vec![2, 0, 0, 0, 0, 0xd1, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
    f.extend(ip);
    f.extend(tcp);
    f
}

struct Bench {
    pipeline: Pipeline,
    nexthops: StaticNextHops,
    rx: Batch,
    tx: Batch,
    now: Instant,
}

impl Bench {
    /// A service on VIP:80 with four real servers of `method`, and 32 flows opened.
    fn new(method: ForwardMethod) -> Bench {
        let mut engine = Engine::new(1 << 16, 1);
        let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: VIP.into(), port: 80 };
        let mut svc = ServiceConfig::new(key);
        svc.scheduler = SchedulerKind::Rr;
        engine.add_service(svc).unwrap_or_else(|e| panic!("{e}"));
        let hop = |ifindex, last| NextHop {
            ifindex,
            src_mac: MacAddr([2, 0, 0, 0, 0, 0xd2]),
            dst_mac: MacAddr([2, 0, 0, 0, 1, last]),
            mtu: 1500,
        };
        let mut nexthops = StaticNextHops { default_v4: Some(hop(1, 0xff)), ..StaticNextHops::default() };
        for i in 0..4 {
            let mut d = DestConfig::new(rs(i).into(), 8080);
            d.method = method;
            engine.add_dest(&key, d).unwrap_or_else(|e| panic!("{e}"));
            nexthops.hosts.insert(IpAddr::V4(rs(i)), hop(2, i));
        }
        let pipeline = Pipeline::new(Arc::new(Mutex::new(engine)), PipelineConfig::default());
        let mut b =
            Bench { pipeline, nexthops, rx: Batch::new(BATCH), tx: Batch::new(BATCH), now: Instant::from_secs(1) };
        let syns: Vec<Vec<u8>> = (0..BATCH).map(|i| frame(client(i), 40000, VIP, 80, 0x02)).collect();
        b.run(&syns);
        assert_eq!(b.tx.len(), BATCH, "every flow opened");
        b
    }

    fn refill(&mut self, templates: &[Vec<u8>]) {
        self.rx.clear();
        for t in templates {
            if let Some(f) = self.rx.push() {
                f.fill(t, 1);
            }
        }
    }

    fn run(&mut self, templates: &[Vec<u8>]) {
        self.refill(templates);
        self.tx.clear();
        self.pipeline.process(&mut self.rx, &mut self.tx, &mut self.nexthops, self.now);
    }
}

fn pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(BATCH as u64));

    let acks: Vec<Vec<u8>> = (0..BATCH).map(|i| frame(client(i), 40000, VIP, 80, 0x10)).collect();

    let mut dr = Bench::new(ForwardMethod::DirectRoute);
    g.bench_function("refill_only", |b| {
        b.iter(|| {
            dr.refill(black_box(&acks));
            black_box(dr.rx.len())
        })
    });
    g.bench_function("dr_in", |b| {
        b.iter(|| {
            dr.run(black_box(&acks));
            black_box(dr.tx.len())
        })
    });
    assert_eq!(dr.tx.len(), BATCH);

    let mut nat = Bench::new(ForwardMethod::Masquerade);
    g.bench_function("nat_in", |b| {
        b.iter(|| {
            nat.run(black_box(&acks));
            black_box(nat.tx.len())
        })
    });
    assert_eq!(nat.tx.len(), BATCH);

    // Replies: flow i was scheduled round robin to rs(i % 4).
    let replies: Vec<Vec<u8>> = (0..BATCH).map(|i| frame(rs((i % 4) as u8), 8080, client(i), 40000, 0x10)).collect();
    g.bench_function("nat_out", |b| {
        b.iter(|| {
            nat.run(black_box(&replies));
            black_box(nat.tx.len())
        })
    });
    assert_eq!(nat.tx.len(), BATCH, "every reply matched its connection");
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
