//! The LVS-TUN decapsulator for kernels without ipip/ip6tnl/sit.
//!
//! The director sends each client packet to this real server wrapped in an
//! outer IP header (protocol 4 for an inner IPv4 packet, 41 for an inner IPv6
//! one; outer IPv4 or IPv6). With no tunnel module the kernel has nobody to
//! hand such packets to, but raw IP sockets still receive a copy of every
//! packet of their protocol addressed to the host, before the kernel would
//! answer "protocol unreachable" (verified on this kernel: no ICMP error is
//! sent while a raw socket is open). The decapsulator:
//!
//! 1. reads them from four raw sockets (IPv4/IPv6 outer x protocol 4/41);
//!    IPv4 raw sockets give the outer header, IPv6 ones only the payload, so
//!    for those an outer header is rebuilt from the source address, the
//!    destination (IPV6_PKTINFO) and the traffic class (IPV6_TCLASS);
//! 2. strips the outer header with [`rvs_packet::encap::decapsulate`] (which
//!    also applies the RFC 6040 ECN rules);
//! 3. drops and counts packets whose inner destination is not one of the VIPs
//!    (the tunnel must not become an open relay);
//! 4. writes the inner packet into a TUN device (`rvstun0`...). The kernel
//!    receives it on that device like any other packet: with the VIP on lo it
//!    is delivered locally, and with the reverse-path filter off for the
//!    device (`all` and the device) the client source address is accepted.
//!    Replies leave by the normal route, straight to the client, from the VIP.

mod sys;

use std::fs::File;
use std::io::Write;
use std::net::{IpAddr, Ipv6Addr};
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrIn6, recv, recvmsg, setsockopt, sockopt};
use rvs_packet::ParseError;
use rvs_packet::encap::decapsulate;
use rvs_packet::ip::Family;
use rvs_packet::ipv4::Ipv4Packet;
use rvs_packet::ipv6::{self, Ipv6HeaderFields, Ipv6Packet};

use crate::error::{RealServerError, Result};
use crate::host::Host;
use crate::state::{self, DecapStatus};

/// How the decapsulator works, for `check` and the logs.
pub const MECHANISM: &str = "user-space decapsulator: raw IP sockets for protocol 4 (IPIP) and 41 (IPv6-in-IP) \
     over IPv4 and IPv6 strip the outer header and write the inner packet into a TUN device \
     (this kernel has no ipip/ip6tnl/sit module)";

/// Default TUN device name; the kernel replaces `%d` with the first free number.
pub const DEFAULT_TUN_PATTERN: &str = "rvstun%d";

/// IP protocol number of IPv4-in-IP.
const PROTO_IPIP: u8 = 4;
/// IP protocol number of IPv6-in-IP.
const PROTO_IPV6: u8 = 41;
/// Largest IP packet plus room for a rebuilt IPv6 header.
const BUFFER_LEN: usize = 65_536 + ipv6::HEADER_LEN;
/// Packets read from one socket per wake-up before the others get a turn.
const BURST: usize = 64;
/// How often the loop looks at the stop flag.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// How often the status file is refreshed while counters move.
const STATUS_INTERVAL: Duration = Duration::from_millis(500);

/// What the decapsulator needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecapConfig {
    /// Inner destinations accepted; everything else is dropped.
    pub vips: Vec<IpAddr>,
    /// TUN device name or pattern (`rvstun%d`).
    pub tun_name: String,
    /// Where to publish pid, device and counters (for `check`), if anywhere.
    pub status_file: Option<PathBuf>,
}

impl DecapConfig {
    /// Decapsulates for `vips` into `rvstun<N>`, publishing nothing.
    pub fn new(vips: Vec<IpAddr>) -> DecapConfig {
        DecapConfig { vips, tun_name: DEFAULT_TUN_PATTERN.to_owned(), status_file: None }
    }
}

/// Packet counters, shared with whoever watches the decapsulator.
#[derive(Debug, Default)]
pub struct Counters {
    /// Packets decapsulated and written to the TUN device.
    pub decapsulated: AtomicU64,
    /// Dropped: the inner destination is not a VIP.
    pub dropped_not_vip: AtomicU64,
    /// Dropped: malformed outer or inner packet (or the ECN rule says drop).
    pub dropped_malformed: AtomicU64,
    /// Dropped: the TUN device refused the write.
    pub dropped_write: AtomicU64,
}

impl Counters {
    fn total(&self) -> u64 {
        [&self.decapsulated, &self.dropped_not_vip, &self.dropped_malformed, &self.dropped_write]
            .iter()
            .map(|counter| counter.load(Ordering::Relaxed))
            .sum()
    }
}

/// Why a tunnelled packet was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The inner destination is not one of the VIPs.
    NotVip(IpAddr),
    /// The packet cannot be decapsulated.
    Malformed(ParseError),
}

/// Decapsulates the tunnel packet in `buf[..len]` (outer IP header first) in
/// place and returns where the inner packet is, if its destination is a VIP.
pub fn classify(buf: &mut [u8], len: usize, vips: &[IpAddr]) -> std::result::Result<Range<usize>, DropReason> {
    let found = decapsulate(buf, 0, len).map_err(DropReason::Malformed)?;
    let range = found.inner_start..found.inner_start.saturating_add(found.inner_len);
    let inner = buf.get(range.clone()).ok_or(DropReason::Malformed(ParseError::Truncated))?;
    let dst = match found.inner_family {
        Family::V4 => IpAddr::V4(Ipv4Packet::new_checked(inner).map_err(DropReason::Malformed)?.dst()),
        Family::V6 => IpAddr::V6(Ipv6Packet::new_checked(inner).map_err(DropReason::Malformed)?.dst()),
    };
    if vips.contains(&dst) { Ok(range) } else { Err(DropReason::NotVip(dst)) }
}

/// One raw socket.
#[derive(Debug)]
struct Endpoint {
    fd: OwnedFd,
    /// Outer family is IPv6 (the socket gives the payload only).
    v6: bool,
    /// IP protocol it receives (4 or 41).
    protocol: u8,
}

/// A running decapsulator: its sockets, its TUN device, its counters.
#[derive(Debug)]
pub struct Decapsulator {
    endpoints: Vec<Endpoint>,
    tun: File,
    tun_name: String,
    vips: Vec<IpAddr>,
    counters: Arc<Counters>,
    status_file: Option<PathBuf>,
    buf: Vec<u8>,
}

impl Decapsulator {
    /// Opens the raw sockets and the TUN device in the calling thread's network
    /// namespace, brings the device up and turns its reverse-path filter off.
    /// Needs root (CAP_NET_RAW, CAP_NET_ADMIN).
    pub fn open(config: &DecapConfig) -> Result<Decapsulator> {
        if config.vips.is_empty() {
            return Err(RealServerError::Invalid("the decapsulator needs at least one --vip".into()));
        }
        let mut endpoints = Vec::new();
        for (family, v6) in [(libc::AF_INET, false), (libc::AF_INET6, true)] {
            for protocol in [PROTO_IPIP, PROTO_IPV6] {
                match sys::raw_ip_socket(family, libc::c_int::from(protocol)) {
                    Ok(fd) => endpoints.push(Endpoint { fd, v6, protocol }),
                    // A host without IPv6 still decapsulates IPv4 tunnels.
                    Err(err) if v6 && err.raw_os_error() == Some(libc::EAFNOSUPPORT) => {
                        tracing::warn!("no IPv6: IPv6-outer tunnels are not received");
                    }
                    Err(err) => {
                        let family = if v6 { "IPv6" } else { "IPv4" };
                        return Err(RealServerError::io(
                            format!("opening raw {family} socket for protocol {protocol}"),
                            err,
                        ));
                    }
                }
            }
        }
        for endpoint in endpoints.iter().filter(|endpoint| endpoint.v6) {
            let errno = |e: Errno| RealServerError::io("setting IPV6_RECVPKTINFO/IPV6_RECVTCLASS", e.into());
            setsockopt(&endpoint.fd, sockopt::Ipv6RecvPacketInfo, &true).map_err(errno)?;
            setsockopt(&endpoint.fd, sockopt::Ipv6RecvTClass, &true).map_err(errno)?;
        }
        let (tun, tun_name) = sys::create_tun(&config.tun_name)
            .map_err(|e| RealServerError::io(format!("creating TUN device {}", config.tun_name), e))?;
        let host = Host::new(None);
        host.write_sysctls(&[(format!("net/ipv4/conf/{tun_name}/rp_filter"), "0".to_owned())])?;
        host.ip(&["link", "set", "dev", &tun_name, "up"])?;
        tracing::info!(tun = %tun_name, sockets = endpoints.len(), "decapsulator ready: {MECHANISM}");
        Ok(Decapsulator {
            endpoints,
            tun,
            tun_name,
            vips: config.vips.clone(),
            counters: Arc::new(Counters::default()),
            status_file: config.status_file.clone(),
            buf: vec![0; BUFFER_LEN],
        })
    }

    /// The TUN device's name.
    pub fn tun_name(&self) -> &str {
        &self.tun_name
    }

    /// The counters (live).
    pub fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// The status as published in the status file.
    pub fn status(&self) -> DecapStatus {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        DecapStatus {
            pid: std::process::id(),
            tun: self.tun_name.clone(),
            mechanism: MECHANISM.to_owned(),
            vips: self.vips.clone(),
            decapsulated: load(&self.counters.decapsulated),
            dropped_not_vip: load(&self.counters.dropped_not_vip),
            dropped_malformed: load(&self.counters.dropped_malformed),
            dropped_write: load(&self.counters.dropped_write),
        }
    }

    /// Writes the status file, if there is one.
    pub fn publish(&self) -> Result<()> {
        match &self.status_file {
            Some(path) => state::write_json(path, &self.status()),
            None => Ok(()),
        }
    }

    /// Decapsulates until `stop` is set (looked at every 100 ms).
    pub fn run(&mut self, stop: &AtomicBool) -> Result<()> {
        self.publish()?;
        let mut published_total = self.counters.total();
        let mut last_publish = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let ready: Vec<bool> = {
                let mut fds: Vec<PollFd<'_>> =
                    self.endpoints.iter().map(|endpoint| PollFd::new(endpoint.fd.as_fd(), PollFlags::POLLIN)).collect();
                let timeout = PollTimeout::try_from(POLL_INTERVAL).unwrap_or(PollTimeout::NONE);
                match poll(&mut fds, timeout) {
                    Ok(_) | Err(Errno::EINTR) => {}
                    Err(errno) => return Err(RealServerError::io("poll", errno.into())),
                }
                fds.iter().map(|fd| fd.revents().is_some_and(|events| events.contains(PollFlags::POLLIN))).collect()
            };
            for (index, is_ready) in ready.into_iter().enumerate() {
                if is_ready {
                    self.drain(index);
                }
            }
            let total = self.counters.total();
            if total != published_total && last_publish.elapsed() >= STATUS_INTERVAL {
                self.publish()?;
                published_total = total;
                last_publish = Instant::now();
            }
        }
        self.publish()
    }

    /// Reads up to [`BURST`] packets from endpoint `index`.
    fn drain(&mut self, index: usize) {
        let Some(endpoint) = self.endpoints.get(index) else { return };
        for _ in 0..BURST {
            let received =
                if endpoint.v6 { receive_v6(endpoint, &mut self.buf) } else { receive_v4(endpoint, &mut self.buf) };
            let len = match received {
                Ok(Some(len)) => len,
                Ok(None) => break,
                // A failing socket must not stop the others: try again on the next wake-up.
                Err(errno) => {
                    tracing::warn!(%errno, "receiving from a raw socket");
                    break;
                }
            };
            match classify(&mut self.buf, len, &self.vips) {
                Ok(range) => {
                    let inner = self.buf.get(range).unwrap_or(&[]);
                    // A TUN write takes one whole packet or fails.
                    match self.tun.write(inner) {
                        Ok(written) if written == inner.len() => {
                            self.counters.decapsulated.fetch_add(1, Ordering::Relaxed)
                        }
                        Ok(written) => {
                            tracing::debug!(written, len = inner.len(), "short TUN write");
                            self.counters.dropped_write.fetch_add(1, Ordering::Relaxed)
                        }
                        Err(err) => {
                            tracing::debug!(%err, "TUN write refused");
                            self.counters.dropped_write.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
                Err(DropReason::NotVip(dst)) => {
                    tracing::debug!(%dst, "dropped: inner destination is not a VIP");
                    self.counters.dropped_not_vip.fetch_add(1, Ordering::Relaxed);
                }
                Err(DropReason::Malformed(why)) => {
                    tracing::debug!(?why, "dropped: malformed tunnel packet");
                    self.counters.dropped_malformed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}

/// One packet from an IPv4 raw socket (outer header included); `None` when
/// nothing is waiting.
fn receive_v4(endpoint: &Endpoint, buf: &mut [u8]) -> std::result::Result<Option<usize>, Errno> {
    match recv(endpoint.fd.as_raw_fd(), buf, MsgFlags::MSG_DONTWAIT) {
        Ok(len) => Ok(Some(len)),
        Err(Errno::EAGAIN | Errno::EINTR) => Ok(None),
        Err(errno) => Err(errno),
    }
}

/// One packet from an IPv6 raw socket, with an outer header rebuilt in front
/// of the payload; `None` when nothing is waiting.
fn receive_v6(endpoint: &Endpoint, buf: &mut [u8]) -> std::result::Result<Option<usize>, Errno> {
    let (head, body) = buf.split_at_mut(ipv6::HEADER_LEN.min(buf.len()));
    let mut iov = [std::io::IoSliceMut::new(body)];
    let mut control = nix::cmsg_space!(libc::in6_pktinfo, libc::c_int);
    let message =
        match recvmsg::<SockaddrIn6>(endpoint.fd.as_raw_fd(), &mut iov, Some(&mut control), MsgFlags::MSG_DONTWAIT) {
            Ok(message) => message,
            Err(Errno::EAGAIN | Errno::EINTR) => return Ok(None),
            Err(errno) => return Err(errno),
        };
    let len = message.bytes;
    let src = message.address.map(|address| address.ip()).unwrap_or(Ipv6Addr::UNSPECIFIED);
    let mut dst = Ipv6Addr::UNSPECIFIED;
    let mut traffic_class = 0u8;
    if let Ok(messages) = message.cmsgs() {
        for cmsg in messages {
            match cmsg {
                ControlMessageOwned::Ipv6PacketInfo(info) => dst = Ipv6Addr::from(info.ipi6_addr.s6_addr),
                ControlMessageOwned::Ipv6TClass(class) => traffic_class = u8::try_from(class).unwrap_or(0),
                _ => {}
            }
        }
    }
    // A payload too long for the 16-bit length field (a jumbogram) is passed
    // on as length 0 and then refused by the parser as malformed.
    let payload_len = u16::try_from(len).unwrap_or(0);
    let fields = Ipv6HeaderFields {
        src,
        dst,
        next_header: endpoint.protocol,
        hop_limit: 64,
        traffic_class,
        flow_label: 0,
        payload_len,
    };
    ipv6::write_header(head, &fields);
    Ok(Some(ipv6::HEADER_LEN + len))
}
