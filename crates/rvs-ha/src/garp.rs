//! Address announcements after a failover: gratuitous ARP for IPv4 virtual addresses (request
//! form, as keepalived sends, or reply form) and unsolicited neighbour advertisements for IPv6
//! ones (RFC 4861 §7.2.6: to ff02::1, Override set, target link-layer address option). The
//! timing of repeated announcements lives in [`schedule`].

pub mod schedule;

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::checksum::Checksum;
use crate::wire::{ETHERTYPE_ARP, ETHERTYPE_IPV4, ETHERTYPE_IPV6, EthernetHeader, Ipv6Header, MacAddr};

/// Length of a gratuitous ARP frame (Ethernet + ARP, without link padding).
pub const GARP_FRAME_LEN: usize = 42;
/// ICMPv6 type of a neighbour advertisement.
pub const ICMPV6_NEIGHBOUR_ADVERT: u8 = 136;
/// NA flag: sender is a router.
pub const NA_FLAG_ROUTER: u32 = 0x8000_0000;
/// NA flag: solicited (never set in unsolicited adverts).
pub const NA_FLAG_SOLICITED: u32 = 0x4000_0000;
/// NA flag: override existing cache entries.
pub const NA_FLAG_OVERRIDE: u32 = 0x2000_0000;
/// All-nodes multicast group.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Which ARP operation a gratuitous ARP uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpForm {
    /// ARP request "who-has VIP tell VIP", target hardware address ff:ff:ff:ff:ff:ff (keepalived's form).
    Request,
    /// ARP reply "VIP is-at MAC", target hardware address = our MAC.
    Reply,
}

/// A broadcast gratuitous ARP frame announcing that `vip` is at `mac`.
pub fn gratuitous_arp(vip: Ipv4Addr, mac: MacAddr, form: ArpForm) -> Vec<u8> {
    let mut out = Vec::with_capacity(GARP_FRAME_LEN);
    EthernetHeader { dst: MacAddr::BROADCAST, src: mac, ethertype: ETHERTYPE_ARP }.write(&mut out);
    let (op, target_hw) = match form {
        ArpForm::Request => (1u16, MacAddr::BROADCAST),
        ArpForm::Reply => (2u16, mac),
    };
    out.extend_from_slice(&1u16.to_be_bytes()); // hardware type Ethernet
    out.extend_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
    out.extend_from_slice(&[6, 4]);
    out.extend_from_slice(&op.to_be_bytes());
    out.extend_from_slice(&mac.0);
    out.extend_from_slice(&vip.octets());
    out.extend_from_slice(&target_hw.0);
    out.extend_from_slice(&vip.octets());
    out
}

/// An unsolicited neighbour advertisement frame for `vip` at `mac`, from `vip` to ff02::1 with
/// hop limit 255, Override set (plus Router if `router`), and the target link-layer address option.
pub fn unsolicited_na(vip: Ipv6Addr, mac: MacAddr, router: bool) -> Vec<u8> {
    let flags = NA_FLAG_OVERRIDE | if router { NA_FLAG_ROUTER } else { 0 };
    let mut icmp = Vec::with_capacity(32);
    icmp.extend_from_slice(&[ICMPV6_NEIGHBOUR_ADVERT, 0, 0, 0]);
    icmp.extend_from_slice(&flags.to_be_bytes());
    icmp.extend_from_slice(&vip.octets());
    icmp.extend_from_slice(&[2, 1]); // option: target link-layer address, length 1 (8 bytes)
    icmp.extend_from_slice(&mac.0);
    let sum =
        Checksum::new().add_pseudo_header(vip.into(), ALL_NODES.into(), 58, icmp.len() as u32).add(&icmp).finish();
    if let Some(slot) = icmp.get_mut(2..4) {
        slot.copy_from_slice(&sum.to_be_bytes());
    }
    let mut out = Vec::with_capacity(14 + 40 + icmp.len());
    EthernetHeader { dst: MacAddr::ipv6_multicast(ALL_NODES), src: mac, ethertype: ETHERTYPE_IPV6 }.write(&mut out);
    Ipv6Header { traffic_class: 0, flow_label: 0, next_header: 58, hop_limit: 255, src: vip, dst: ALL_NODES }
        .write(icmp.len(), &mut out);
    out.extend_from_slice(&icmp);
    out
}
