//! The AF_PACKET backend: [`AfPacketIo`] receives every frame of a set of interfaces
//! through one TPACKET_V3 mmap ring per interface and transmits with `sendmmsg` on one
//! packet socket that bypasses the qdisc layer.
//!
//! Receive: each interface has its own socket bound with `ETH_P_ALL` (an `ETH_P_IP` socket
//! would see nothing once the kernel's own copy is dropped by the steering rules) and
//! `PACKET_IGNORE_OUTGOING` (no echo of what leaves the interface). The kernel packs frames
//! into blocks and hands a block over when it is full or after the retire timeout
//! ([`AfPacketConfig::retire_timeout`], 1 ms by default: the added latency at low rates).
//! `recv` copies frames into the batch and gives each block back once walked; every offset
//! read from the ring is bounds-checked, a malformed block is skipped and counted.
//!
//! Frame fix-ups on receive: the kernel strips an 802.1Q/802.1ad tag into the ring header;
//! it is put back into the frame, so the pipeline sees the bytes that were on the wire.
//! Frames marked "checksum not ready" (sent by a local socket next door over a veth) get
//! their TCP/UDP checksum completed. Truncated frames (larger than a ring block or the
//! frame buffer) are dropped and counted.
//!
//! All `unsafe` lives in the `sys` submodule.

mod csum;
mod sys;

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};
use std::time::Duration;

use crate::io::{Batch, FRAME_CAPACITY, Frame, PacketIo};

pub use sys::SendOutcome;

/// `TP_STATUS_COPY`: the frame was truncated to the snap length.
const TP_STATUS_COPY: u32 = 1 << 1;
/// `TP_STATUS_CSUMNOTREADY`: the L4 checksum is only the pseudo-header sum.
const TP_STATUS_CSUMNOTREADY: u32 = 1 << 3;
/// `TP_STATUS_VLAN_VALID`: `tp_vlan_tci` holds a stripped tag.
const TP_STATUS_VLAN_VALID: u32 = 1 << 4;
/// `TP_STATUS_VLAN_TPID_VALID`: `tp_vlan_tpid` holds the tag's TPID.
const TP_STATUS_VLAN_TPID_VALID: u32 = 1 << 6;
/// Size of `struct tpacket3_hdr`.
const PACKET_HEADER_LEN: usize = 48;
/// Offset of `sll_pkttype` in the `sockaddr_ll` that follows a packet header.
const SLL_PKTTYPE_OFFSET: usize = 10;
/// `sll_pkttype` of a frame addressed to another host.
const PACKET_OTHERHOST: u8 = 3;
/// Size of the block descriptor fields read here (`version` .. `blk_len`).
const BLOCK_HEADER_LEN: usize = 24;

/// Errors opening the backend.
#[derive(Debug, thiserror::Error)]
pub enum AfPacketError {
    /// The interface does not exist (or its name is invalid).
    #[error("interface {name}: {source}")]
    NoSuchInterface {
        /// The name asked for.
        name: String,
        /// Why the lookup failed.
        source: io::Error,
    },
    /// A socket, option or ring call failed.
    #[error("{what} on {name}: {source}")]
    Setup {
        /// Interface (or "tx").
        name: String,
        /// The step that failed.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The configuration is unusable.
    #[error("invalid AF_PACKET configuration: {0}")]
    InvalidConfig(String),
}

/// Ring geometry and transmit options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfPacketConfig {
    /// Bytes per ring block: a power of two, at least one page and at least 16 KiB so a
    /// jumbo frame fits.
    pub block_size: u32,
    /// Blocks per interface ring.
    pub block_count: u32,
    /// How long the kernel may hold a partly filled block (rounded up to whole ms, >= 1).
    pub retire_timeout: Duration,
    /// Send past the qdisc layer (`PACKET_QDISC_BYPASS`).
    pub qdisc_bypass: bool,
}

impl Default for AfPacketConfig {
    /// 16 blocks of 256 KiB (4 MiB, about 30 000 small frames) per interface, 1 ms
    /// retire timeout, qdisc bypass on.
    fn default() -> Self {
        AfPacketConfig {
            block_size: 256 * 1024,
            block_count: 16,
            retire_timeout: Duration::from_millis(1),
            qdisc_bypass: true,
        }
    }
}

impl AfPacketConfig {
    fn geometry(&self) -> Result<sys::RingGeometry, AfPacketError> {
        let block_size = self.block_size;
        if !block_size.is_power_of_two() || block_size < 16 * 1024 {
            return Err(AfPacketError::InvalidConfig(format!(
                "block_size {block_size} must be a power of two >= 16384"
            )));
        }
        if self.block_count == 0 || u64::from(block_size) * u64::from(self.block_count) > 1 << 30 {
            return Err(AfPacketError::InvalidConfig(format!(
                "block_count {} must be >= 1 and the ring at most 1 GiB",
                self.block_count
            )));
        }
        let millis = u32::try_from(self.retire_timeout.as_micros().div_ceil(1000)).unwrap_or(u32::MAX).max(1);
        // For V3 the frame size is only checked by the kernel (frames are packed); 2048
        // divides every valid block size.
        Ok(sys::RingGeometry { block_size, block_count: self.block_count, frame_size: 2048, retire_timeout_ms: millis })
    }
}

/// Counters of one backend since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AfPacketStats {
    /// Frames copied into batches.
    pub received: u64,
    /// Frames dropped because the kernel truncated them (larger than a ring block).
    pub truncated: u64,
    /// Frames dropped because they (with their VLAN tag) exceed [`FRAME_CAPACITY`].
    pub oversized: u64,
    /// Ring blocks skipped because their headers pointed outside the block.
    pub malformed_blocks: u64,
    /// Frames for another host's MAC (flooded by a switch), ignored as the kernel does.
    pub other_host: u64,
    /// Frames whose TCP/UDP checksum was completed on receive.
    pub checksums_completed: u64,
    /// Frames dropped by the kernel because a ring was full (read at [`AfPacketIo::stats`]).
    pub ring_drops: u64,
    /// Frames handed to the interfaces.
    pub sent: u64,
    /// Frames the kernel refused (interface gone or down, too large ...).
    pub send_refused: u64,
    /// Frames not sent because a device queue was full.
    pub send_backpressure: u64,
}

/// Where the walk of a user-owned block stands.
#[derive(Debug, Clone, Copy)]
struct BlockCursor {
    remaining: u32,
    offset: usize,
}

/// One interface: its receive socket and ring.
#[derive(Debug)]
struct RxPort {
    name: String,
    ifindex: u32,
    fd: OwnedFd,
    ring: sys::RxRing,
    block: usize,
    cursor: Option<BlockCursor>,
}

/// What became of one ring entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Copied {
    /// Copied into the frame, this many bytes; `checksum_completed` if fixed up.
    Frame {
        len: usize,
        checksum_completed: bool,
    },
    Truncated,
    Oversized,
    /// Addressed to another host's MAC (a switch flooding unknown unicast): not ours.
    OtherHost,
}

/// AF_PACKET receive and transmit over a fixed set of interfaces.
#[derive(Debug)]
pub struct AfPacketIo {
    ports: Vec<RxPort>,
    pollfds: Vec<libc::pollfd>,
    tx: OwnedFd,
    send_buffers: sys::SendBuffers,
    next_port: usize,
    stats: AfPacketStats,
}

impl AfPacketIo {
    /// Opens the interfaces named in `interfaces` with the default configuration.
    pub fn open(interfaces: &[&str]) -> Result<AfPacketIo, AfPacketError> {
        AfPacketIo::open_with(interfaces, &AfPacketConfig::default())
    }

    /// Opens the interfaces named in `interfaces` (in the calling thread's network
    /// namespace). Needs CAP_NET_RAW.
    pub fn open_with(interfaces: &[&str], config: &AfPacketConfig) -> Result<AfPacketIo, AfPacketError> {
        let geometry = config.geometry()?;
        let mut ports = Vec::with_capacity(interfaces.len());
        for name in interfaces {
            let ifindex = sys::ifindex(name)
                .map_err(|source| AfPacketError::NoSuchInterface { name: (*name).to_owned(), source })?;
            let setup = |what| move |source| AfPacketError::Setup { name: (*name).to_owned(), what, source };
            let fd = sys::packet_socket().map_err(setup("socket"))?;
            sys::set_tpacket_v3(&fd).map_err(setup("PACKET_VERSION"))?;
            sys::set_ignore_outgoing(&fd).map_err(setup("PACKET_IGNORE_OUTGOING"))?;
            let ring = sys::RxRing::map(&fd, geometry).map_err(setup("PACKET_RX_RING"))?;
            sys::bind(&fd, ifindex, sys::ETH_P_ALL).map_err(setup("bind"))?;
            ports.push(RxPort { name: (*name).to_owned(), ifindex, fd, ring, block: 0, cursor: None });
        }
        let tx_setup = |what| move |source| AfPacketError::Setup { name: "tx".to_owned(), what, source };
        let tx = sys::packet_socket().map_err(tx_setup("socket"))?;
        if config.qdisc_bypass {
            sys::set_qdisc_bypass(&tx).map_err(tx_setup("PACKET_QDISC_BYPASS"))?;
        }
        let pollfds = ports
            .iter()
            .map(|port| libc::pollfd { fd: port.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 })
            .collect();
        Ok(AfPacketIo {
            ports,
            pollfds,
            tx,
            send_buffers: sys::SendBuffers::default(),
            next_port: 0,
            stats: AfPacketStats::default(),
        })
    }

    /// The opened interfaces as (name, ifindex), in the order given.
    pub fn interfaces(&self) -> impl Iterator<Item = (&str, u32)> {
        self.ports.iter().map(|port| (port.name.as_str(), port.ifindex))
    }

    /// The ifindex of an opened interface.
    pub fn ifindex(&self, name: &str) -> Option<u32> {
        self.ports.iter().find(|port| port.name == name).map(|port| port.ifindex)
    }

    /// Also wakes [`PacketIo::recv`] when `fd` becomes readable (another source of packets
    /// the same worker serves, e.g. an NFQUEUE socket): `recv` then returns, with or without
    /// frames. `None` removes it. Remove it before closing that descriptor.
    pub fn set_wake_fd(&mut self, fd: Option<BorrowedFd<'_>>) {
        self.pollfds.truncate(self.ports.len());
        if let Some(fd) = fd {
            self.pollfds.push(libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        }
    }

    /// The counters, after adding the kernel's ring-drop counts (a `getsockopt` per
    /// interface: call it from the control path, not per batch).
    pub fn stats(&mut self) -> AfPacketStats {
        for port in &self.ports {
            if let Ok((_, drops)) = sys::take_statistics(&port.fd) {
                self.stats.ring_drops += u64::from(drops);
            }
        }
        self.stats
    }

    /// Copies ready frames from every ring into `batch`, starting with a different
    /// interface each call so that a busy one cannot starve the others.
    fn drain(&mut self, batch: &mut Batch) {
        let count = self.ports.len();
        for step in 0..count {
            if batch.len() >= batch.capacity() {
                break;
            }
            let index = (self.next_port + step) % count;
            if let Some(port) = self.ports.get_mut(index) {
                drain_port(port, batch, &mut self.stats);
            }
        }
        self.next_port = if count == 0 { 0 } else { (self.next_port + 1) % count };
    }
}

/// Walks `port`'s ring from its current position while the batch has room.
fn drain_port(port: &mut RxPort, batch: &mut Batch, stats: &mut AfPacketStats) {
    // Bounded: each turn either fills a frame, or finishes a block; at most one pass
    // over the ring's blocks.
    for _ in 0..=port.ring.block_count() {
        if batch.len() >= batch.capacity() {
            return;
        }
        let Some(block) = port.ring.block(port.block) else { return };
        let mut cursor = match port.cursor {
            Some(cursor) => cursor,
            None => match block_header(block) {
                Some((remaining, offset)) => BlockCursor { remaining, offset },
                None => {
                    stats.malformed_blocks += 1;
                    BlockCursor { remaining: 0, offset: 0 }
                }
            },
        };
        while cursor.remaining > 0 {
            let Some(frame) = batch.push() else { break };
            let Some((copied, next)) = copy_packet(block, cursor.offset, frame, port.ifindex) else {
                batch.pop();
                stats.malformed_blocks += 1;
                cursor.remaining = 0;
                break;
            };
            match copied {
                Copied::Frame { checksum_completed, .. } => {
                    stats.received += 1;
                    stats.checksums_completed += u64::from(checksum_completed);
                }
                Copied::Truncated => {
                    batch.pop();
                    stats.truncated += 1;
                }
                Copied::Oversized => {
                    batch.pop();
                    stats.oversized += 1;
                }
                Copied::OtherHost => {
                    batch.pop();
                    stats.other_host += 1;
                }
            }
            cursor.remaining -= 1;
            cursor.offset = match next {
                Some(next) => next,
                None if cursor.remaining == 0 => cursor.offset,
                None => {
                    // More packets announced but no link to them: give the block back.
                    stats.malformed_blocks += 1;
                    cursor.remaining = 0;
                    cursor.offset
                }
            };
        }
        if cursor.remaining > 0 {
            // The batch is full mid-block: resume here next time.
            port.cursor = Some(cursor);
            return;
        }
        port.cursor = None;
        port.ring.release(port.block);
        port.block = (port.block + 1) % port.ring.block_count().max(1);
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(word.try_into().ok()?))
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let word = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_ne_bytes(word.try_into().ok()?))
}

/// A block's packet count and the offset of its first packet (`tpacket_hdr_v1`), if the
/// header lies inside the block.
fn block_header(block: &[u8]) -> Option<(u32, usize)> {
    if block.len() < BLOCK_HEADER_LEN {
        return None;
    }
    let packets = read_u32(block, 12)?;
    let first = usize::try_from(read_u32(block, 16)?).ok()?;
    Some((packets, first))
}

/// Copies the packet whose `tpacket3_hdr` starts at `offset` into `frame`, putting back a
/// stripped VLAN tag and completing a pending checksum. Returns what happened and the
/// offset of the next packet (`None` if the header has no next link), or `None` if the
/// header or the frame it describes is not inside the block.
fn copy_packet(block: &[u8], offset: usize, frame: &mut Frame, ifindex: u32) -> Option<(Copied, Option<usize>)> {
    let header = block.get(offset..offset.checked_add(PACKET_HEADER_LEN)?)?;
    let next_offset = usize::try_from(read_u32(header, 0)?).ok()?;
    let snaplen = usize::try_from(read_u32(header, 12)?).ok()?;
    let wire_len = usize::try_from(read_u32(header, 16)?).ok()?;
    let status = read_u32(header, 20)?;
    let mac = usize::from(read_u16(header, 24)?);
    let vlan_tci = read_u32(header, 32)?;
    let vlan_tpid = read_u16(header, 36)?;
    let next = if next_offset == 0 { None } else { Some(offset.checked_add(next_offset)?) };
    // The `sockaddr_ll` follows the header; its `sll_pkttype` says whom the frame was for.
    // A frame for another host's MAC (a switch flooding unknown unicast) is not ours: the
    // kernel drops it, and so must we, or a backup director would forward the master's traffic.
    if block.get(offset.checked_add(PACKET_HEADER_LEN + SLL_PKTTYPE_OFFSET)?) == Some(&PACKET_OTHERHOST) {
        return Some((Copied::OtherHost, next));
    }
    let start = offset.checked_add(mac)?;
    let bytes = block.get(start..start.checked_add(snaplen)?)?;
    if status & TP_STATUS_COPY != 0 || snaplen < wire_len {
        return Some((Copied::Truncated, next));
    }
    let tag = (status & TP_STATUS_VLAN_VALID != 0).then(|| {
        let tpid = if status & TP_STATUS_VLAN_TPID_VALID != 0 && vlan_tpid != 0 { vlan_tpid } else { 0x8100 };
        // Only the low 16 bits of the 32-bit field carry the TCI.
        let tci = (vlan_tci & 0xffff) as u16;
        let mut tag = [0u8; 4];
        tag[..2].copy_from_slice(&tpid.to_be_bytes());
        tag[2..].copy_from_slice(&tci.to_be_bytes());
        tag
    });
    let len = bytes.len() + if tag.is_some() { 4 } else { 0 };
    if len > FRAME_CAPACITY {
        return Some((Copied::Oversized, next));
    }
    let area = frame.receive_area();
    match (tag, bytes.split_at_checked(12)) {
        (Some(tag), Some((macs, rest))) => {
            area.get_mut(..12)?.copy_from_slice(macs);
            area.get_mut(12..16)?.copy_from_slice(&tag);
            area.get_mut(16..len)?.copy_from_slice(rest);
        }
        _ => {
            // A tag on a runt shorter than two MACs cannot be re-inserted; copy as is.
            let len = bytes.len();
            area.get_mut(..len)?.copy_from_slice(bytes);
        }
    }
    let len = if tag.is_some() && bytes.len() >= 12 { len } else { bytes.len() };
    frame.set_received(len, ifindex);
    let checksum_completed = status & TP_STATUS_CSUMNOTREADY != 0 && csum::complete_l4_checksum(frame.data_mut());
    Some((Copied::Frame { len, checksum_completed }, next))
}

impl PacketIo for AfPacketIo {
    /// Waits for the interfaces (and the wake descriptor, see [`AfPacketIo::set_wake_fd`]).
    fn recv(&mut self, batch: &mut Batch, timeout: Duration) -> io::Result<usize> {
        batch.clear();
        self.drain(batch);
        if batch.is_empty() && !timeout.is_zero() && !self.pollfds.is_empty() {
            for pollfd in &mut self.pollfds {
                pollfd.revents = 0;
            }
            if sys::poll_readable(&mut self.pollfds, timeout)? {
                for (pollfd, port) in self.pollfds.iter().zip(&self.ports) {
                    if pollfd.revents & libc::POLLERR != 0 {
                        // An interface went down (ENETDOWN): clear the error so the
                        // next poll waits again instead of returning at once.
                        let _ = sys::take_socket_error(&port.fd);
                    }
                }
                self.drain(batch);
            }
        }
        Ok(batch.len())
    }

    fn send(&mut self, frames: &[Frame]) -> io::Result<usize> {
        let outcome = sys::send_frames(&self.tx, frames.iter().map(|f| (f.ifindex, f.data())), &mut self.send_buffers)?;
        self.stats.sent += outcome.sent as u64;
        self.stats.send_refused += outcome.refused as u64;
        self.stats.send_backpressure += outcome.backpressure as u64;
        Ok(outcome.sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a tpacket3_hdr at `offset` of `block` and the frame bytes `mac` bytes later.
    fn put_packet(block: &mut [u8], offset: usize, next: u32, status: u32, tci: u32, bytes: &[u8]) {
        let mac = 64usize;
        let len = u32::try_from(bytes.len()).unwrap();
        block[offset..offset + 4].copy_from_slice(&next.to_ne_bytes());
        block[offset + 12..offset + 16].copy_from_slice(&len.to_ne_bytes());
        block[offset + 16..offset + 20].copy_from_slice(&len.to_ne_bytes());
        block[offset + 20..offset + 24].copy_from_slice(&status.to_ne_bytes());
        block[offset + 24..offset + 26].copy_from_slice(&u16::try_from(mac).unwrap().to_ne_bytes());
        block[offset + 32..offset + 36].copy_from_slice(&tci.to_ne_bytes());
        block[offset + mac..offset + mac + bytes.len()].copy_from_slice(bytes);
    }

    fn frame_bytes() -> Vec<u8> {
        let mut f = vec![0xaa; 6];
        f.extend_from_slice(&[0xbb; 6]);
        f.extend_from_slice(&[0x88, 0xb5, 1, 2, 3, 4]);
        f
    }

    #[test]
    fn plain_frame_is_copied_and_links_to_the_next() {
        let mut block = vec![0u8; 4096];
        put_packet(&mut block, 48, 200, 1, 0, &frame_bytes());
        let mut frame = Frame::new();
        let (copied, next) = copy_packet(&block, 48, &mut frame, 7).unwrap();
        assert_eq!(copied, Copied::Frame { len: 18, checksum_completed: false });
        assert_eq!(next, Some(248));
        assert_eq!(frame.data(), frame_bytes().as_slice());
        assert_eq!(frame.ifindex, 7);
    }

    #[test]
    fn frames_for_another_hosts_mac_are_ignored_broadcasts_are_not() {
        let mut block = vec![0u8; 4096];
        put_packet(&mut block, 0, 0, 1, 0, &frame_bytes());
        let mut frame = Frame::new();
        block[PACKET_HEADER_LEN + SLL_PKTTYPE_OFFSET] = PACKET_OTHERHOST;
        assert_eq!(copy_packet(&block, 0, &mut frame, 1).unwrap().0, Copied::OtherHost);
        block[PACKET_HEADER_LEN + SLL_PKTTYPE_OFFSET] = 1; // PACKET_BROADCAST
        assert_eq!(
            copy_packet(&block, 0, &mut frame, 1).unwrap().0,
            Copied::Frame { len: 18, checksum_completed: false }
        );
    }

    #[test]
    fn stripped_vlan_tag_is_put_back_after_the_macs() {
        let mut block = vec![0u8; 4096];
        put_packet(&mut block, 0, 0, 1 | TP_STATUS_VLAN_VALID, 0x2005, &frame_bytes());
        let mut frame = Frame::new();
        let (copied, next) = copy_packet(&block, 0, &mut frame, 1).unwrap();
        assert_eq!(copied, Copied::Frame { len: 22, checksum_completed: false });
        assert_eq!(next, None);
        // 802.1Q TPID 0x8100 (no TPID given), then the TCI, then the original EtherType.
        let mut expected = frame_bytes();
        expected.splice(12..12, [0x81, 0x00, 0x20, 0x05]);
        assert_eq!(frame.data(), expected.as_slice());
    }

    #[test]
    fn offsets_outside_the_block_are_refused_not_followed() {
        let mut block = vec![0u8; 256];
        put_packet(&mut block, 0, 0, 1, 0, &frame_bytes());
        let mut frame = Frame::new();
        // Header past the end.
        assert!(copy_packet(&block, 240, &mut frame, 1).is_none());
        // snaplen pointing past the end.
        block[12..16].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(copy_packet(&block, 0, &mut frame, 1).is_none());
        // A huge next offset overflows nothing and is refused.
        block[12..16].copy_from_slice(&18u32.to_ne_bytes());
        block[0..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(copy_packet(&block, usize::MAX - 10, &mut frame, 1).is_none());
        assert!(block_header(&block[..10]).is_none());
    }

    #[test]
    fn truncated_frames_are_reported() {
        let mut block = vec![0u8; 4096];
        put_packet(&mut block, 0, 0, 1 | TP_STATUS_COPY, 0, &frame_bytes());
        let mut frame = Frame::new();
        assert_eq!(copy_packet(&block, 0, &mut frame, 1).unwrap().0, Copied::Truncated);
    }

    #[test]
    fn config_is_validated() {
        let mut config = AfPacketConfig { block_size: 3000, ..AfPacketConfig::default() };
        assert!(config.geometry().is_err());
        config.block_size = 1 << 16;
        config.block_count = 0;
        assert!(config.geometry().is_err());
        config.block_count = 4;
        config.retire_timeout = Duration::from_micros(10);
        assert_eq!(config.geometry().unwrap().retire_timeout_ms, 1);
    }
}
