//! The listing order of ipvsadm (libipvs `ipvs_cmp_services` / `ipvs_cmp_dests` under
//! glibc's merge-sort `qsort`), including its signed-overflow quirk: the comparators
//! subtract unsigned 32-bit values and read the difference as a signed `int`, so two
//! addresses (or marks) 2^31 or more apart compare the "wrong" way round.
//!
//! Because such a comparator is not a total order, the sort is a hand-written top-down
//! merge sort (the algorithm of glibc's `msort`, the `qsort` of Debian 12) rather than
//! `slice::sort_by`, which may panic on inconsistent comparisons.

use std::cmp::Ordering;
use std::net::IpAddr;

use rvs_api::{DestInfo, Proto, ServiceId, ServiceInfo};

const AF_INET: i32 = 2;
const AF_INET6: i32 = 10;

/// `(int)(a - b)` with unsigned wrap-around, as the C comparators compute it.
fn wrapping_diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// The address as four host-order 32-bit words (IPv4 in the first word).
fn words(addr: &IpAddr) -> [u32; 4] {
    match addr {
        IpAddr::V4(a) => [u32::from(*a), 0, 0, 0],
        IpAddr::V6(a) => {
            let o = a.octets();
            let w = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
            [w(0), w(4), w(8), w(12)]
        }
    }
}

fn af_of(addr: &IpAddr) -> i32 {
    if addr.is_ipv4() { AF_INET } else { AF_INET6 }
}

fn proto_number(p: Proto) -> i32 {
    match p {
        Proto::Tcp => 6,
        Proto::Udp => 17,
        Proto::Sctp => 132,
    }
}

/// The fields ipvsadm compares for a service.
struct ServiceKey {
    fwmark: u32,
    af: i32,
    protocol: i32,
    addr: [u32; 4],
    port: i32,
}

fn service_key(id: &ServiceId) -> ServiceKey {
    match id {
        ServiceId::Addr { protocol, addr, port } => ServiceKey {
            fwmark: 0,
            af: af_of(addr),
            protocol: proto_number(*protocol),
            addr: words(addr),
            port: i32::from(*port),
        },
        // ipvsadm creates fwmark services with protocol TCP and a zero address.
        ServiceId::Fwmark { mark, ipv6 } => {
            ServiceKey { fwmark: *mark, af: if *ipv6 { AF_INET6 } else { AF_INET }, protocol: 6, addr: [0; 4], port: 0 }
        }
    }
}

fn compare_addrs(af_of_first: i32, a: &[u32; 4], b: &[u32; 4]) -> i32 {
    if af_of_first == AF_INET6 {
        a.iter().zip(b).map(|(x, y)| wrapping_diff(*x, *y)).find(|r| *r != 0).unwrap_or(0)
    } else {
        wrapping_diff(a[0], b[0])
    }
}

/// ipvsadm's service comparator (negative: `a` first).
pub fn cmp_services(a: &ServiceId, b: &ServiceId) -> i32 {
    let (ka, kb) = (service_key(a), service_key(b));
    let steps = [
        wrapping_diff(ka.fwmark, kb.fwmark),
        ka.af - kb.af,
        ka.protocol - kb.protocol,
        compare_addrs(ka.af, &ka.addr, &kb.addr),
        ka.port - kb.port,
    ];
    steps.into_iter().find(|r| *r != 0).unwrap_or(0)
}

/// ipvsadm's destination comparator: address (in the first one's family), then port.
pub fn cmp_dests(a: &DestInfo, b: &DestInfo) -> i32 {
    let r = compare_addrs(af_of(&a.spec.addr), &words(&a.spec.addr), &words(&b.spec.addr));
    if r != 0 { r } else { i32::from(a.spec.port) - i32::from(b.spec.port) }
}

/// glibc's `msort`: split in halves (the first one `n / 2` long), sort each, merge taking
/// from the first half while `cmp(first, second) <= 0`. Well defined for any comparator.
pub fn merge_sort<T: Clone>(items: &mut [T], cmp: &dyn Fn(&T, &T) -> i32) {
    let n = items.len();
    if n <= 1 {
        return;
    }
    let (left, right) = items.split_at_mut(n / 2);
    merge_sort(left, cmp);
    merge_sort(right, cmp);
    let mut merged = Vec::with_capacity(n);
    let (mut i, mut j) = (0, 0);
    while i < left.len() && j < right.len() {
        if cmp(&left[i], &right[j]) <= 0 {
            merged.push(left[i].clone());
            i += 1;
        } else {
            merged.push(right[j].clone());
            j += 1;
        }
    }
    merged.extend_from_slice(left.get(i..).unwrap_or(&[]));
    merged.extend_from_slice(right.get(j..).unwrap_or(&[]));
    items.clone_from_slice(&merged);
}

/// Services (and each one's destinations) in ipvsadm's listing order.
pub fn sort_services(services: &mut [ServiceInfo]) {
    merge_sort(services, &|a: &ServiceInfo, b: &ServiceInfo| cmp_services(&a.spec.id, &b.spec.id));
    for s in services.iter_mut() {
        sort_dests(&mut s.dests);
    }
}

/// Destinations in ipvsadm's listing order.
pub fn sort_dests(dests: &mut [DestInfo]) {
    merge_sort(dests, &|a: &DestInfo, b: &DestInfo| cmp_dests(a, b));
}

/// An [`Ordering`] view of a C comparator result (for tests and callers that want one).
pub fn ordering(r: i32) -> Ordering {
    r.cmp(&0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(addr: &str, port: u16) -> ServiceId {
        ServiceId::Addr { protocol: Proto::Tcp, addr: addr.parse().unwrap(), port }
    }

    #[test]
    fn overflow_quirk_puts_high_addresses_first() {
        // 192.168.0.1 - 10.0.0.1 = 0xb6a80000 as int is negative, so 192.168.0.1 sorts first.
        assert_eq!(ordering(cmp_services(&tcp("192.168.0.1", 80), &tcp("10.0.0.1", 80))), Ordering::Less);
        // 10.0.0.1 vs 10.0.0.2: plain order.
        assert_eq!(ordering(cmp_services(&tcp("10.0.0.1", 80), &tcp("10.0.0.2", 80))), Ordering::Less);
    }

    #[test]
    fn fwmark_services_after_address_services_and_v4_before_v6() {
        let fw = ServiceId::Fwmark { mark: 1, ipv6: false };
        assert_eq!(ordering(cmp_services(&tcp("10.0.0.1", 80), &fw)), Ordering::Less);
        assert_eq!(ordering(cmp_services(&tcp("10.0.0.1", 80), &tcp("2001:db8::1", 80))), Ordering::Less);
        let udp = ServiceId::Addr { protocol: Proto::Udp, addr: "10.0.0.1".parse().unwrap(), port: 1 };
        assert_eq!(ordering(cmp_services(&tcp("10.0.0.9", 99), &udp)), Ordering::Less);
    }

    #[test]
    fn merge_sort_is_stable_and_total_on_any_comparator() {
        let mut v: Vec<(i32, char)> = vec![(2, 'a'), (1, 'b'), (2, 'c'), (0, 'd'), (1, 'e')];
        merge_sort(&mut v, &|a: &(i32, char), b: &(i32, char)| a.0 - b.0);
        assert_eq!(v, vec![(0, 'd'), (1, 'b'), (1, 'e'), (2, 'a'), (2, 'c')]);
        // A comparator that is not an order must not panic.
        let mut w: Vec<u32> = (0..50u32).map(|i| i.wrapping_mul(0x1234_5679)).collect();
        merge_sort(&mut w, &|a: &u32, b: &u32| wrapping_diff(*a, *b));
        assert_eq!(w.len(), 50);
    }
}
