//! What happened to every received frame. Each frame ends in exactly one of four ways —
//! forwarded, replaced by a reply, passed to the kernel, or dropped — so
//! `rx == forwarded.total() + replies.total() + passed.total() + drops.total()`.

use rvs_packet::ParseError;

/// Frames transmitted after a rewrite, per forwarding method and direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ForwardedCounters {
    /// Client packets sent to a real server by direct routing (MACs changed).
    pub direct_route: u64,
    /// Client packets sent to a real server by NAT (destination rewritten).
    pub masquerade: u64,
    /// Client packets encapsulated to a real server (IPIP / IPv6-in-IPv6 / across families).
    pub tunnel: u64,
    /// NAT replies sent back to clients (source rewritten to the virtual address).
    pub nat_replies: u64,
    /// ICMP errors about a connection sent on to its real server.
    pub icmp_to_real_server: u64,
    /// ICMP errors from a NAT real server's side sent on to the client.
    pub icmp_to_client: u64,
}

impl ForwardedCounters {
    /// Every forwarded frame.
    pub fn total(&self) -> u64 {
        self.direct_route
            + self.masquerade
            + self.tunnel
            + self.nat_replies
            + self.icmp_to_real_server
            + self.icmp_to_client
    }
}

/// Frames answered by an ICMP error the pipeline built (the frame itself is not forwarded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplyCounters {
    /// No real server available: ICMP (v6) port unreachable to the client.
    pub port_unreachable: u64,
    /// Over the MTU: ICMP fragmentation needed / ICMPv6 packet too big to the sender.
    pub too_big: u64,
    /// TTL / hop limit ran out: ICMP time exceeded to the sender.
    pub time_exceeded: u64,
    /// `nat_icmp_send`: port unreachable to a NAT real server whose packet has no connection.
    pub nat_unreachable: u64,
}

impl ReplyCounters {
    /// Every frame answered.
    pub fn total(&self) -> u64 {
        self.port_unreachable + self.too_big + self.time_exceeded + self.nat_unreachable
    }
}

/// Frames left to the kernel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PassedCounters {
    /// ARP.
    pub arp: u64,
    /// Frames rvs-packet could not parse (reasons in [`ParseErrorCounters`]): other
    /// ethertypes, fragments, malformed headers.
    pub unparsed: u64,
    /// Frames to one of the director's own addresses.
    pub own_address: u64,
    /// IP traffic that is neither for a virtual service nor a NAT reply.
    pub not_ours: u64,
    /// For a virtual service but unable to open a connection (e.g. a TCP segment other than
    /// SYN without a connection): the kernel answers.
    pub no_connection: u64,
    /// Connections whose real server is this host (the Local method).
    pub local: u64,
    /// Packets of a firewall-mark service's connection seen without their mark (AF_PACKET
    /// taps frames before netfilter marks them): the kernel marks them and hands them over
    /// again through NFQUEUE, where they are forwarded.
    pub unmarked_fwmark: u64,
}

impl PassedCounters {
    /// Every frame passed.
    pub fn total(&self) -> u64 {
        self.arp
            + self.unparsed
            + self.own_address
            + self.not_ours
            + self.no_connection
            + self.local
            + self.unmarked_fwmark
    }
}

/// Frames dropped, per reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounters {
    /// No next hop (route or neighbour) for the address the frame had to go to.
    pub no_next_hop: u64,
    /// Engine: the connection's real server was removed (expire_nodest_conn off).
    pub dest_unavailable: u64,
    /// Engine: the connection table is full.
    pub table_full: u64,
    /// Engine: the drop_packet DoS defence.
    pub defense: u64,
    /// No real server available and the port-unreachable reply could not be sent.
    pub unreachable: u64,
    /// Over the MTU with DF set (or IPv6) and no ICMP reply could be sent (the packet is an
    /// ICMP error itself, no next hop back, no source address for it ...).
    pub too_big: u64,
    /// Over the MTU without DF (or a tunnel with pmtu_disc off): IPVS would fragment; rvs
    /// does not.
    pub needs_fragmentation: u64,
    /// TTL / hop limit ran out (and no time-exceeded reply was sent).
    pub ttl_expired: u64,
    /// A GUE or GRE tunnel destination (not implemented yet).
    pub unsupported_tunnel: u64,
    /// A tunnel destination of a family with no `source_v4` / `source_v6` configured.
    pub no_tunnel_source: u64,
    /// The rewrite was refused (e.g. NAT of a protocol other than TCP/UDP, such as SCTP).
    pub rewrite_failed: u64,
    /// Not enough headroom in the frame buffer for the new headers.
    pub no_headroom: u64,
    /// The tx batch was full.
    pub tx_full: u64,
    /// `nat_icmp_send`: a NAT real server's packet with no connection (and no reply sent).
    pub nat_no_connection: u64,
}

impl DropCounters {
    /// Every frame dropped.
    pub fn total(&self) -> u64 {
        self.no_next_hop
            + self.dest_unavailable
            + self.table_full
            + self.defense
            + self.unreachable
            + self.too_big
            + self.needs_fragmentation
            + self.ttl_expired
            + self.unsupported_tunnel
            + self.no_tunnel_source
            + self.rewrite_failed
            + self.no_headroom
            + self.tx_full
            + self.nat_no_connection
    }
}

/// Unparsable frames per [`ParseError`] reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseErrorCounters {
    counts: [u64; ParseError::ALL.len()],
}

impl ParseErrorCounters {
    /// Frames refused for `reason`.
    pub fn get(&self, reason: ParseError) -> u64 {
        Self::index(reason).and_then(|i| self.counts.get(i)).copied().unwrap_or(0)
    }

    /// Every reason with its count (reasons named by [`ParseError::reason`]).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        ParseError::ALL.iter().zip(self.counts.iter()).map(|(e, &n)| (e.reason(), n))
    }

    /// Sum over every reason.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn add(&mut self, reason: ParseError) {
        if let Some(n) = Self::index(reason).and_then(|i| self.counts.get_mut(i)) {
            *n += 1;
        }
    }

    fn index(reason: ParseError) -> Option<usize> {
        ParseError::ALL.iter().position(|&e| e == reason)
    }
}

/// Every counter of a pipeline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PipelineCounters {
    /// Frames received (processed).
    pub rx: u64,
    /// Frames forwarded.
    pub forwarded: ForwardedCounters,
    /// Frames answered with an ICMP error instead.
    pub replies: ReplyCounters,
    /// Frames left to the kernel.
    pub passed: PassedCounters,
    /// Frames dropped.
    pub drops: DropCounters,
    /// Unparsable frames per reason (also counted in `passed.unparsed`).
    pub parse_errors: ParseErrorCounters,
}

impl PipelineCounters {
    /// Every counter as (name, value), names like `forwarded_direct_route` or
    /// `drop_no_next_hop`, for status listings.
    pub fn named(&self) -> Vec<(String, u64)> {
        let f = &self.forwarded;
        let r = &self.replies;
        let p = &self.passed;
        let d = &self.drops;
        let mut out: Vec<(String, u64)> = vec![("rx".into(), self.rx)];
        let groups: [(&str, Vec<(&str, u64)>); 4] = [
            (
                "forwarded",
                vec![
                    ("direct_route", f.direct_route),
                    ("masquerade", f.masquerade),
                    ("tunnel", f.tunnel),
                    ("nat_replies", f.nat_replies),
                    ("icmp_to_real_server", f.icmp_to_real_server),
                    ("icmp_to_client", f.icmp_to_client),
                ],
            ),
            (
                "reply",
                vec![
                    ("port_unreachable", r.port_unreachable),
                    ("too_big", r.too_big),
                    ("time_exceeded", r.time_exceeded),
                    ("nat_unreachable", r.nat_unreachable),
                ],
            ),
            (
                "passed",
                vec![
                    ("arp", p.arp),
                    ("unparsed", p.unparsed),
                    ("own_address", p.own_address),
                    ("not_ours", p.not_ours),
                    ("no_connection", p.no_connection),
                    ("local", p.local),
                    ("unmarked_fwmark", p.unmarked_fwmark),
                ],
            ),
            (
                "drop",
                vec![
                    ("no_next_hop", d.no_next_hop),
                    ("dest_unavailable", d.dest_unavailable),
                    ("table_full", d.table_full),
                    ("defense", d.defense),
                    ("unreachable", d.unreachable),
                    ("too_big", d.too_big),
                    ("needs_fragmentation", d.needs_fragmentation),
                    ("ttl_expired", d.ttl_expired),
                    ("unsupported_tunnel", d.unsupported_tunnel),
                    ("no_tunnel_source", d.no_tunnel_source),
                    ("rewrite_failed", d.rewrite_failed),
                    ("no_headroom", d.no_headroom),
                    ("tx_full", d.tx_full),
                    ("nat_no_connection", d.nat_no_connection),
                ],
            ),
        ];
        for (group, items) in groups {
            out.extend(items.into_iter().map(|(n, v)| (format!("{group}_{n}"), v)));
        }
        out.extend(self.parse_errors.iter().map(|(n, v)| (format!("parse_error_{n}"), v)));
        out
    }
}

/// How one frame ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Forwarded(Forwarded),
    Replied(Reply),
    Passed(Passed),
    Dropped(Dropped),
}

impl Outcome {
    /// The kind of ending, without the reason.
    pub(crate) fn fate(self) -> Fate {
        match self {
            Outcome::Forwarded(_) => Fate::Forwarded,
            Outcome::Replied(_) => Fate::Replied,
            Outcome::Passed(_) => Fate::Passed,
            Outcome::Dropped(_) => Fate::Dropped,
        }
    }
}

/// What became of one received frame, as a backend that must tell the kernel (NFQUEUE
/// verdicts) needs to know it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Rewritten and queued for transmission.
    Forwarded,
    /// Answered with an ICMP error the pipeline built (the frame itself goes nowhere).
    Replied,
    /// The kernel's business: rvs did nothing with it.
    Passed,
    /// Dropped by rvs.
    Dropped,
}

impl Fate {
    /// True if the kernel should go on with the packet (only [`Fate::Passed`]); rvs has dealt
    /// with every other frame and the kernel's copy must be dropped.
    pub fn kernel_keeps(self) -> bool {
        self == Fate::Passed
    }
}

/// Which forwarded counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forwarded {
    DirectRoute,
    Masquerade,
    Tunnel,
    NatReply,
    IcmpToRealServer,
    IcmpToClient,
}

/// Which reply counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reply {
    PortUnreachable,
    TooBig,
    TimeExceeded,
    NatUnreachable,
}

/// Which passed counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Passed {
    Arp,
    Unparsed(ParseError),
    OwnAddress,
    NotOurs,
    NoConnection,
    Local,
    UnmarkedFwmark,
}

/// Which drop counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dropped {
    NoNextHop,
    DestUnavailable,
    TableFull,
    Defense,
    Unreachable,
    TooBig,
    NeedsFragmentation,
    TtlExpired,
    UnsupportedTunnel,
    NoTunnelSource,
    RewriteFailed,
    NoHeadroom,
    TxFull,
    NatNoConnection,
}

impl PipelineCounters {
    /// Counts one frame's outcome.
    pub(crate) fn record(&mut self, outcome: Outcome) {
        self.rx += 1;
        match outcome {
            Outcome::Forwarded(f) => {
                let c = &mut self.forwarded;
                *match f {
                    Forwarded::DirectRoute => &mut c.direct_route,
                    Forwarded::Masquerade => &mut c.masquerade,
                    Forwarded::Tunnel => &mut c.tunnel,
                    Forwarded::NatReply => &mut c.nat_replies,
                    Forwarded::IcmpToRealServer => &mut c.icmp_to_real_server,
                    Forwarded::IcmpToClient => &mut c.icmp_to_client,
                } += 1;
            }
            Outcome::Replied(r) => {
                let c = &mut self.replies;
                *match r {
                    Reply::PortUnreachable => &mut c.port_unreachable,
                    Reply::TooBig => &mut c.too_big,
                    Reply::TimeExceeded => &mut c.time_exceeded,
                    Reply::NatUnreachable => &mut c.nat_unreachable,
                } += 1;
            }
            Outcome::Passed(p) => {
                let c = &mut self.passed;
                *match p {
                    Passed::Arp => &mut c.arp,
                    Passed::Unparsed(e) => {
                        self.parse_errors.add(e);
                        &mut c.unparsed
                    }
                    Passed::OwnAddress => &mut c.own_address,
                    Passed::NotOurs => &mut c.not_ours,
                    Passed::NoConnection => &mut c.no_connection,
                    Passed::Local => &mut c.local,
                    Passed::UnmarkedFwmark => &mut c.unmarked_fwmark,
                } += 1;
            }
            Outcome::Dropped(d) => {
                let c = &mut self.drops;
                *match d {
                    Dropped::NoNextHop => &mut c.no_next_hop,
                    Dropped::DestUnavailable => &mut c.dest_unavailable,
                    Dropped::TableFull => &mut c.table_full,
                    Dropped::Defense => &mut c.defense,
                    Dropped::Unreachable => &mut c.unreachable,
                    Dropped::TooBig => &mut c.too_big,
                    Dropped::NeedsFragmentation => &mut c.needs_fragmentation,
                    Dropped::TtlExpired => &mut c.ttl_expired,
                    Dropped::UnsupportedTunnel => &mut c.unsupported_tunnel,
                    Dropped::NoTunnelSource => &mut c.no_tunnel_source,
                    Dropped::RewriteFailed => &mut c.rewrite_failed,
                    Dropped::NoHeadroom => &mut c.no_headroom,
                    Dropped::TxFull => &mut c.tx_full,
                    Dropped::NatNoConnection => &mut c.nat_no_connection,
                } += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_outcome_lands_in_exactly_one_total() {
        let mut c = PipelineCounters::default();
        c.record(Outcome::Forwarded(Forwarded::Tunnel));
        c.record(Outcome::Replied(Reply::TooBig));
        c.record(Outcome::Passed(Passed::Unparsed(ParseError::Fragment)));
        c.record(Outcome::Passed(Passed::Arp));
        c.record(Outcome::Dropped(Dropped::TxFull));
        assert_eq!(c.rx, 5);
        assert_eq!(c.forwarded.total() + c.replies.total() + c.passed.total() + c.drops.total(), 5);
        assert_eq!(c.parse_errors.get(ParseError::Fragment), 1);
        assert_eq!(c.parse_errors.total(), 1);
        assert_eq!(c.parse_errors.iter().find(|(r, _)| *r == "fragment"), Some(("fragment", 1)));
    }
}
