//! Engine benchmarks: scheduling decisions per scheduler and list size, connection table
//! lookups and inserts at 1 M and 10 M entries, a whole packet through the engine, and the
//! Maglev table build. Run: `cargo bench -p rvs-core --bench engine`.
//! Memory per connection is printed (stderr) by the table benchmarks.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rvs_core::addr::Addr16;
use rvs_core::conn::{Conn, ConnFlags, ConnId, ConnTable, InKey, TcpFlags};
use rvs_core::dest::{DestArena, DestConfig, DestId, Destination};
use rvs_core::engine::{Engine, Packet};
use rvs_core::random::SplitMix64;
use rvs_core::sched::mh::MaglevHashing;
use rvs_core::sched::{DestChange, DestList, SchedFlags, SchedRequest, Scheduler, SchedulerKind};
use rvs_core::service::{Protocol, ServiceConfig, ServiceKey};
use rvs_core::time::Instant;

fn rs_addr(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0xC612_0000u32 + 256 + i as u32)) // 198.18.1.0 + i
}

/// A service's worth of destinations with varied weights, notified to `sched`.
fn dests(n: usize, sched: &mut dyn Scheduler) -> (DestArena, Vec<DestId>) {
    let mut arena = DestArena::default();
    let mut order = Vec::new();
    for i in 0..n {
        let mut c = DestConfig::new(rs_addr(i), 80);
        c.weight = 1 + (i as u32 % 7);
        let mut d = Destination::new(c);
        d.position = i as u32;
        order.push(arena.insert(d));
        sched.update_dests(DestList::new(&order, &arena), DestChange::Added { pos: i });
    }
    (arena, order)
}

fn request<'r>(client: u32, rng: &'r mut SplitMix64) -> SchedRequest<'r> {
    SchedRequest {
        protocol: Protocol::Tcp,
        client: IpAddr::V4(Ipv4Addr::from(0xC613_0000 | (client & 0xFFFF))),
        client_port: (client >> 7) as u16,
        // lblc/lblcr/dh hash the destination address: spread it like cache-cluster traffic over
        // 4096 destinations (the kernel's lblc table holds up to 16 K).
        vaddr: IpAddr::V4(Ipv4Addr::from(0xC612_0000 | ((client >> 16) & 0xFFF))),
        vport: 80,
        flags: SchedFlags::NONE,
        now: Instant::ZERO,
        rng,
    }
}

fn schedulers(c: &mut Criterion) {
    // `schedule`: the decision alone, loads fixed. `schedule_and_account`: what the engine does
    // per new connection: decide, bind the connection (counters + load index update), and
    // close the connection opened 4*n decisions earlier (loads bounded and moving).
    let mut g = c.benchmark_group("schedule");
    g.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    for kind in SchedulerKind::ALL {
        for n in [10usize, 100, 1000] {
            let mut sched = kind.build();
            let (mut arena, order) = dests(n, sched.as_mut());
            // Spread some load so least-load schedulers have something to compare.
            for (i, &id) in order.iter().enumerate() {
                let d = arena.get_mut(id).unwrap();
                d.active_conns = (i as u32 * 7919) % 13;
                d.inactive_conns = (i as u32 * 104_729) % 31;
                sched.load_changed(DestList::new(&order, &arena), i);
            }
            let mut rng = SplitMix64::new(1);
            let mut client = 0u32;
            g.bench_function(BenchmarkId::new(kind.name(), n), |b| {
                b.iter(|| {
                    client = client.wrapping_add(0x9E37_79B9);
                    let mut req = request(client, &mut rng);
                    black_box(sched.schedule(DestList::new(&order, &arena), &mut req))
                })
            });
        }
    }
    g.finish();
    let mut g = c.benchmark_group("schedule_and_account");
    g.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1));
    for kind in SchedulerKind::ALL {
        for n in [10usize, 1000] {
            let mut sched = kind.build();
            let (mut arena, order) = dests(n, sched.as_mut());
            let mut rng = SplitMix64::new(1);
            let mut client = 0u32;
            let mut open: std::collections::VecDeque<DestId> = std::collections::VecDeque::new();
            g.bench_function(BenchmarkId::new(kind.name(), n), |b| {
                b.iter(|| {
                    client = client.wrapping_add(0x9E37_79B9);
                    let mut req = request(client, &mut rng);
                    if let Some(id) = sched.schedule(DestList::new(&order, &arena), &mut req) {
                        let d = arena.get_mut(id).unwrap();
                        d.bind(false, false);
                        let pos = d.position as usize;
                        sched.load_changed(DestList::new(&order, &arena), pos);
                        open.push_back(id);
                        if open.len() > 4 * n
                            && let Some(old) = open.pop_front()
                        {
                            let d = arena.get_mut(old).unwrap();
                            d.unbind(false, false);
                            let pos = d.position as usize;
                            sched.load_changed(DestList::new(&order, &arena), pos);
                        }
                        black_box(id);
                    }
                })
            });
        }
    }
    g.finish();
}

fn conn_key(i: u64) -> (Addr16, u16) {
    // Spread clients over 198.18.0.0/15 and ports.
    let a = 0xC612_0000u32 | ((i >> 16) as u32 & 0x1_FFFF);
    (Addr16::from_ip(IpAddr::V4(Ipv4Addr::from(a))), (i & 0xFFFF) as u16)
}

fn filled_table(n: usize) -> ConnTable {
    let mut t = ConnTable::new(n, 42);
    t.reserve(n);
    let started = std::time::Instant::now();
    let vip = Addr16::from_ip(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 10)));
    let rs = Addr16::from_ip(rs_addr(1));
    for i in 0..n as u64 {
        let (c, p) = conn_key(i);
        t.insert(Conn::new(6, c, p, vip, 80, rs, 80, DestId(0), ConnFlags::default()), 0, 900_000).unwrap();
    }
    eprintln!(
        "conn table: {n} entries filled at {:.0} ns/insert (one pass), {} bytes/entry struct, \
         {:.1} bytes/entry with index and timers",
        started.elapsed().as_nanos() as f64 / n as f64,
        std::mem::size_of::<Conn>(),
        t.heap_bytes() as f64 / n as f64
    );
    t
}

fn conn_table(c: &mut Criterion) {
    let mut g = c.benchmark_group("conn");
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3)).sample_size(30);
    let vip = Addr16::from_ip(IpAddr::V4(Ipv4Addr::new(198, 18, 0, 10)));
    let rs = Addr16::from_ip(rs_addr(1));
    for n in [1_000_000usize, 10_000_000] {
        let mut t = filled_table(n);
        let mut rng = SplitMix64::new(5);
        g.bench_function(BenchmarkId::new("lookup_hit_random", n), |b| {
            b.iter(|| {
                let i = rng.next_u64() % n as u64;
                let (c, p) = conn_key(i);
                black_box(t.find_in(6, &c, p, &vip, 80))
            })
        });
        // The pipeline looks up a whole rx batch at once: 32 random hits, time per lookup.
        // Keys drawn in advance, so the timing is the lookups alone; 4 Mi keys (far more
        // entries than the caches hold, read sequentially) so lookups stay cold.
        const POOL: usize = 1 << 22;
        let pool: Vec<InKey> = (0..POOL)
            .map(|_| {
                let (c, p) = conn_key(rng.next_u64() % n as u64);
                InKey { protocol: 6, caddr: c, cport: p, vaddr: vip, vport: 80 }
            })
            .collect();
        let mut out = [None::<ConnId>; 32];
        let mut at = 0usize;
        g.throughput(criterion::Throughput::Elements(32));
        g.bench_function(BenchmarkId::new("lookup_hit_random_batch32", n), |b| {
            b.iter(|| {
                at = (at + 32) & (POOL - 1);
                t.find_in_batch(&pool[at..at + 32], &mut out);
                black_box(&out);
            })
        });
        let mut at1 = 0usize;
        g.throughput(criterion::Throughput::Elements(1));
        g.bench_function(BenchmarkId::new("lookup_hit_random_pregenerated", n), |b| {
            b.iter(|| {
                at1 = (at1 + 1) & (POOL - 1);
                let k = &pool[at1];
                black_box(t.find_in(6, &k.caddr, k.cport, &k.vaddr, 80))
            })
        });
        g.throughput(criterion::Throughput::Elements(1));
        g.bench_function(BenchmarkId::new("lookup_miss_random", n), |b| {
            b.iter(|| {
                let i = n as u64 + rng.next_u64() % (n as u64);
                let (c, p) = conn_key(i);
                black_box(t.find_in(6, &c, p, &vip, 80))
            })
        });
        // Churn at a steady size n: remove one random entry and insert a new one (an upper
        // bound for an insert at that size; the one-pass fill rate is printed above).
        let mut next = n as u64;
        g.bench_function(BenchmarkId::new("remove_and_insert", n), |b| {
            b.iter(|| {
                // The oldest entry: always present, at a random slab position.
                let (c, p) = conn_key(next - n as u64);
                if let Some(id) = t.find_in(6, &c, p, &vip, 80) {
                    t.remove(id);
                }
                let (c, p) = conn_key(next);
                next += 1;
                black_box(t.insert(Conn::new(6, c, p, vip, 80, rs, 80, DestId(0), ConnFlags::default()), 0, 900_000))
            })
        });
    }
    g.finish();
}

fn engine_packets(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    let key = ServiceKey::Addr { protocol: Protocol::Tcp, addr: "198.18.0.10".parse().unwrap(), port: 80 };
    let mut e = Engine::new(4_000_000, 3);
    e.add_service(ServiceConfig::new(key)).unwrap();
    for i in 0..10 {
        e.add_dest(&key, DestConfig::new(rs_addr(i), 80)).unwrap();
    }
    let mut rng = SplitMix64::new(1);
    let vip: IpAddr = "198.18.0.10".parse().unwrap();
    let mut i = 0u32;
    g.bench_function("new_connection_syn", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let p = Packet::new(Protocol::Tcp, IpAddr::V4(Ipv4Addr::from(0xC613_0000 | (i >> 16))), i as u16, vip, 80)
                .with_tcp(TcpFlags::SYN);
            black_box(e.conn_in(&p, Instant::ZERO, &mut rng))
        })
    });
    let p = Packet::new(Protocol::Tcp, IpAddr::V4(Ipv4Addr::from(0xC613_0000)), 1, vip, 80).with_tcp(TcpFlags::ACK);
    g.bench_function("established_packet", |b| b.iter(|| black_box(e.conn_in(&p, Instant::ZERO, &mut rng))));
    g.finish();
}

fn maglev_build(c: &mut Criterion) {
    let mut g = c.benchmark_group("maglev_build");
    g.warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3)).sample_size(30);
    let mut mh = MaglevHashing::with_table_size(65521).unwrap();
    let (arena, order) = dests(1000, &mut mh);
    g.bench_function("65521_slots_1000_dests", |b| {
        b.iter(|| mh.update_dests(DestList::new(&order, &arena), DestChange::Reset))
    });
    g.finish();
}

criterion_group!(benches, schedulers, conn_table, engine_packets, maglev_build);
criterion_main!(benches);
