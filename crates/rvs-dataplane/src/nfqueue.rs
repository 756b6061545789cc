//! The NFQUEUE source: packets the kernel hands over after netfilter has run, with their
//! firewall mark, for firewall-mark services.
//!
//! Why: AF_PACKET taps a frame before netfilter, so a mark the operator sets with nftables
//! (`meta mark set 1` at prerouting/mangle) is not known there. The steering rules
//! ([`crate::steer`]) queue packets carrying a service's mark to an nfnetlink_queue;
//! [`NfQueue`] binds that queue in copy-packet mode and turns each queued packet into a
//! [`Frame`]: a synthetic Ethernet header (zero MACs, EtherType from the IP version; the
//! pipeline writes the real MACs when it forwards), the IP packet, the input interface as
//! `ifindex` and the mark as [`Frame::mark`].
//!
//! Every queued packet needs a verdict: after the pipeline has processed a batch,
//! [`NfQueue::send_verdicts`] answers each packet from its [`Fate`] — `NF_DROP` for what rvs
//! forwarded, answered or dropped (it sent its own copy), `NF_ACCEPT` for what it passed —
//! in one datagram, runs of consecutive ids with the same verdict as one batch verdict.
//! Queued packets that never became frames (no payload, cut short, not IP, malformed but
//! with a readable id) are accepted. Malformed messages are counted, never followed out of
//! bounds.
//!
//! Message layouts live in `msg`; all `unsafe` lives in `sys`.

mod msg;
pub(crate) mod sys;

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

pub use msg::{Message, MessageError, QueuedPacket, next_message};

use crate::io::{Batch, FRAME_CAPACITY, Frame};
use crate::pipeline::Fate;

/// Length of the synthetic Ethernet header put in front of each queued packet.
const ETH_LEN: usize = 14;
/// How long opening waits for the kernel's acknowledgements.
const OPEN_TIMEOUT: Duration = Duration::from_secs(2);
/// Receive buffer: large queued datagrams plus their netlink framing.
const RX_BUFFER: usize = 64 * 1024;

/// Errors opening the queue.
#[derive(Debug, thiserror::Error)]
pub enum NfQueueError {
    /// A socket call failed.
    #[error("{what}: {source}")]
    Socket {
        /// The step that failed.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// The kernel refused a configuration request.
    #[error("binding NFQUEUE {queue}: {what} refused: {source}{hint}")]
    Refused {
        /// Queue number.
        queue: u16,
        /// The request.
        what: &'static str,
        /// The kernel's error.
        source: io::Error,
        /// A hint for well-known causes.
        hint: &'static str,
    },
    /// The kernel did not acknowledge the configuration in time.
    #[error("binding NFQUEUE {0}: no acknowledgement from the kernel")]
    NoAnswer(u16),
}

/// How to open the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NfQueueConfig {
    /// Queue number (the `queue num` of the steering rules).
    pub queue: u16,
    /// Bytes copied of each packet; longer packets are accepted (left to the kernel) and
    /// counted. Default: what fits a frame buffer behind the synthetic Ethernet header.
    pub copy_range: u32,
    /// Most packets waiting in the kernel for a verdict (`None`: the kernel's 1024).
    pub max_len: Option<u32>,
    /// Socket receive buffer in bytes.
    pub receive_buffer: usize,
}

impl NfQueueConfig {
    /// Defaults for queue `queue`: full frames, 4096 waiting packets, 8 MiB buffer.
    pub fn new(queue: u16) -> NfQueueConfig {
        NfQueueConfig {
            queue,
            copy_range: u32::try_from(FRAME_CAPACITY - ETH_LEN).unwrap_or(u32::MAX),
            max_len: Some(4096),
            receive_buffer: 8 << 20,
        }
    }
}

/// Counters since the queue was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NfQueueStats {
    /// Packets turned into frames.
    pub received: u64,
    /// Packets accepted without becoming frames: no payload, cut short by the copy range,
    /// larger than a frame, or neither IPv4 nor IPv6.
    pub not_framed: u64,
    /// Messages (or datagrams) that could not be read; those with a readable packet id were
    /// accepted.
    pub malformed: u64,
    /// Times the kernel reported lost messages (`ENOBUFS`, `NLMSG_OVERRUN`).
    pub overruns: u64,
    /// Errors the kernel returned for verdicts.
    pub kernel_errors: u64,
    /// Verdicts given: packets dropped (rvs handled them).
    pub dropped: u64,
    /// Verdicts given: packets accepted (the kernel's).
    pub accepted: u64,
}

/// A packet awaiting its verdict: its id, queue, and its frame's index in the last batch
/// (`None`: not framed, accept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    id: u32,
    queue: u16,
    frame: Option<usize>,
}

/// A bound nfnetlink queue.
#[derive(Debug)]
pub struct NfQueue {
    fd: OwnedFd,
    queue: u16,
    seq: u32,
    rx_buf: Vec<u8>,
    /// Unread part of the last datagram (`rx_buf[rx_pos..rx_end]`).
    rx_pos: usize,
    rx_end: usize,
    tx_buf: Vec<u8>,
    pending: Vec<Pending>,
    stats: NfQueueStats,
}

impl NfQueue {
    /// Binds queue `queue` with the default configuration.
    pub fn open(queue: u16) -> Result<NfQueue, NfQueueError> {
        NfQueue::open_with(&NfQueueConfig::new(queue))
    }

    /// Binds the queue (in the calling thread's network namespace; needs CAP_NET_ADMIN).
    /// Fails if another socket holds it.
    pub fn open_with(config: &NfQueueConfig) -> Result<NfQueue, NfQueueError> {
        let socket_error = |what| move |source| NfQueueError::Socket { what, source };
        let fd = sys::netlink_socket(msg::NETLINK_NETFILTER).map_err(socket_error("netlink socket"))?;
        // A small buffer only risks overruns, which are counted: not fatal.
        if let Err(e) = sys::set_receive_buffer(&fd, config.receive_buffer) {
            tracing::warn!(error = %e, "NFQUEUE receive buffer left at its default");
        }
        let mut q = NfQueue {
            fd,
            queue: config.queue,
            seq: 0,
            rx_buf: vec![0; RX_BUFFER],
            rx_pos: 0,
            rx_end: 0,
            tx_buf: Vec::new(),
            pending: Vec::new(),
            stats: NfQueueStats::default(),
        };
        let requests: [(&'static str, u32); 3] = [("PF_BIND inet", 1), ("PF_BIND inet6", 2), ("BIND", 3)];
        msg::pf_bind(&mut q.tx_buf, 1, msg::AF_INET);
        msg::pf_bind(&mut q.tx_buf, 2, msg::AF_INET6);
        msg::bind_queue(&mut q.tx_buf, 3, config.queue, config.copy_range, config.max_len);
        q.seq = 3;
        sys::send(&q.fd, &q.tx_buf).map_err(socket_error("sending the queue configuration"))?;
        q.tx_buf.clear();
        let mut waiting: Vec<(&'static str, u32)> = requests.to_vec();
        let deadline = Instant::now() + OPEN_TIMEOUT;
        while !waiting.is_empty() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(NfQueueError::NoAnswer(config.queue));
            }
            if !sys::wait_readable(&q.fd, left).map_err(socket_error("waiting for the kernel"))? {
                continue;
            }
            let len = match sys::recv_nonblocking(&q.fd, &mut q.rx_buf) {
                Ok(len) => len.min(q.rx_buf.len()),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    q.stats.overruns += 1;
                    continue;
                }
                Err(e) => return Err(NfQueueError::Socket { what: "reading the kernel's answer", source: e }),
            };
            let mut at = 0;
            while let Some((parsed, used)) = q.rx_buf.get(at..len).and_then(next_message) {
                at += used;
                match parsed {
                    Ok(Message::Ack { seq, error }) => {
                        let Some(index) = waiting.iter().position(|(_, s)| *s == seq) else { continue };
                        let (what, _) = waiting.swap_remove(index);
                        if error != 0 {
                            let hint = if error == -libc::EBUSY { " (another program holds this queue)" } else { "" };
                            let source = io::Error::from_raw_os_error(-error);
                            return Err(NfQueueError::Refused { queue: config.queue, what, source, hint });
                        }
                    }
                    // A packet queued before the configuration was acknowledged: the
                    // kernel's (it may lack its payload).
                    Ok(Message::Packet(p)) => {
                        q.stats.not_framed += 1;
                        q.pending.push(Pending { id: p.id, queue: p.queue, frame: None });
                    }
                    Ok(_) => {}
                    Err(e) => q.note_malformed(e),
                }
            }
        }
        Ok(q)
    }

    /// The queue number.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// The socket, to wait on together with other sources (readable when packets wait).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The counters.
    pub fn stats(&self) -> NfQueueStats {
        self.stats
    }

    /// Packets received and not yet answered.
    pub fn unanswered(&self) -> usize {
        self.pending.len()
    }

    /// Clears `batch` and fills it with queued packets, waiting at most `timeout` for the
    /// first one. Returns the number of frames. Call [`NfQueue::send_verdicts`] after
    /// processing them: packets of an earlier batch still unanswered are accepted first.
    pub fn recv(&mut self, batch: &mut Batch, timeout: Duration) -> io::Result<usize> {
        batch.clear();
        if self.pending.iter().any(|p| p.frame.is_some()) {
            // The previous batch was never answered: let the kernel have those packets.
            for p in &mut self.pending {
                p.frame = None;
            }
            self.send_verdicts(&[])?;
        }
        self.drain(batch)?;
        if batch.is_empty() && !timeout.is_zero() && sys::wait_readable(&self.fd, timeout)? {
            self.drain(batch)?;
        }
        Ok(batch.len())
    }

    /// Reads datagrams while `batch` has room and the socket has any.
    fn drain(&mut self, batch: &mut Batch) -> io::Result<()> {
        // Bounded: each turn consumes a message or a datagram; at most one batch of frames
        // plus a batch's worth of datagrams that yield none.
        for _ in 0..batch.capacity().saturating_mul(4).max(64) {
            if batch.len() >= batch.capacity() {
                return Ok(());
            }
            if self.rx_pos >= self.rx_end {
                match sys::recv_nonblocking(&self.fd, &mut self.rx_buf) {
                    Ok(len) => {
                        if len > self.rx_buf.len() {
                            // Cut short: read what is there; the cut message shows as
                            // malformed (with its id if the header made it).
                            self.stats.malformed += 1;
                        }
                        self.rx_pos = 0;
                        self.rx_end = len.min(self.rx_buf.len());
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                        self.stats.overruns += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            self.take_message(batch);
        }
        Ok(())
    }

    /// Handles the next message of the current datagram.
    fn take_message(&mut self, batch: &mut Batch) {
        let Some((parsed, used)) = self.rx_buf.get(self.rx_pos..self.rx_end).and_then(next_message) else {
            self.rx_pos = self.rx_end;
            return;
        };
        self.rx_pos = self.rx_pos.saturating_add(used.max(1));
        match parsed {
            Ok(Message::Packet(p)) => {
                let framed = take_packet(&p, batch);
                match framed {
                    Some(_) => self.stats.received += 1,
                    None => self.stats.not_framed += 1,
                }
                self.pending.push(Pending { id: p.id, queue: p.queue, frame: framed });
            }
            Ok(Message::Ack { error, .. }) => {
                if error != 0 {
                    self.stats.kernel_errors += 1;
                    tracing::debug!(error = %io::Error::from_raw_os_error(-error), "NFQUEUE request refused");
                }
            }
            Ok(Message::Overrun) => self.stats.overruns += 1,
            Ok(Message::Other) => {}
            Err(e) => self.note_malformed(e),
        }
    }

    fn note_malformed(&mut self, e: MessageError) {
        self.stats.malformed += 1;
        if let MessageError::Body { packet_id: Some(id), queue, .. } = e {
            self.pending.push(Pending { id, queue: queue.unwrap_or(self.queue), frame: None });
        }
    }

    /// Answers every packet received since the last call: a packet whose frame (by index
    /// in the last batch) has a fate the kernel should not keep is dropped, every other one
    /// accepted (also frames beyond `fates`). One datagram; runs of consecutive ids with
    /// the same verdict go as one batch verdict.
    pub fn send_verdicts(&mut self, fates: &[Fate]) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        self.tx_buf.clear();
        let (dropped, accepted) = build_verdicts(&self.pending, fates, &mut self.seq, &mut self.tx_buf);
        self.stats.dropped += dropped;
        self.stats.accepted += accepted;
        self.pending.clear();
        let sent = sys::send(&self.fd, &self.tx_buf);
        self.tx_buf.clear();
        sent.map(|_| ())
    }
}

/// Appends the verdict messages for `pending` (in receive order) to `out`, numbering them
/// from `seq` on; returns how many packets are dropped and accepted.
fn build_verdicts(pending: &[Pending], fates: &[Fate], seq: &mut u32, out: &mut Vec<u8>) -> (u64, u64) {
    let verdict_of = |p: &Pending| match p.frame.and_then(|i| fates.get(i)) {
        Some(fate) if !fate.kernel_keeps() => msg::NF_DROP,
        _ => msg::NF_ACCEPT,
    };
    let (mut dropped, mut accepted) = (0u64, 0u64);
    let mut rest = pending;
    while let Some((first, _)) = rest.split_first() {
        let verdict = verdict_of(first);
        // The run: consecutive ids on the same queue with the same verdict. A batch verdict
        // covers every waiting packet up to its id; the ones before the run were answered
        // earlier in this datagram (the kernel handles its messages in order), and ids
        // never received were never queued (the kernel drops a packet it cannot deliver).
        let run = 1 + rest
            .windows(2)
            .take_while(|pair| match pair {
                [prev, next] => {
                    next.queue == first.queue && next.id == prev.id.wrapping_add(1) && verdict_of(next) == verdict
                }
                _ => false,
            })
            .count();
        let last = rest.get(run - 1).map_or(first.id, |p| p.id);
        *seq = seq.wrapping_add(1);
        if run > 1 {
            msg::verdict_batch(out, *seq, first.queue, last, verdict);
        } else {
            msg::verdict(out, *seq, first.queue, first.id, verdict);
        }
        if verdict == msg::NF_DROP {
            dropped += run as u64;
        } else {
            accepted += run as u64;
        }
        rest = rest.get(run..).unwrap_or_default();
    }
    (dropped, accepted)
}

impl Drop for NfQueue {
    fn drop(&mut self) {
        // Packets still waiting go back to the kernel rather than being dropped with the
        // queue.
        for p in &mut self.pending {
            p.frame = None;
        }
        let _ = self.send_verdicts(&[]);
    }
}

/// Copies a queued packet into the next frame of `batch`; returns the frame's index, or
/// `None` if it cannot be a frame (no payload, cut short, not IP, too large, batch full).
fn take_packet(p: &QueuedPacket<'_>, batch: &mut Batch) -> Option<usize> {
    let payload = p.payload?;
    // NFQA_CAP_LEN is only sent when the copy is shorter than the packet.
    if p.cap_len.is_some_and(|real| usize::try_from(real).map_or(true, |real| real > payload.len())) {
        return None;
    }
    let ethertype = synthetic_frame(payload)?;
    let frame = batch.push()?;
    if fill_frame(frame, ethertype, payload, p) {
        Some(batch.len() - 1)
    } else {
        batch.pop();
        None
    }
}

/// The EtherType for an IP packet, from its version nibble; `None` if neither 4 nor 6 or
/// too large for a frame.
fn synthetic_frame(payload: &[u8]) -> Option<u16> {
    if payload.len() + ETH_LEN > FRAME_CAPACITY {
        return None;
    }
    match payload.first()? >> 4 {
        4 => Some(0x0800),
        6 => Some(0x86dd),
        _ => None,
    }
}

/// Writes the synthetic Ethernet header and the packet into `frame`, with the input
/// interface and the mark.
fn fill_frame(frame: &mut Frame, ethertype: u16, payload: &[u8], p: &QueuedPacket<'_>) -> bool {
    let len = ETH_LEN + payload.len();
    let Some((header, rest)) = frame.receive_area().get_mut(..len).and_then(|b| b.split_at_mut_checked(ETH_LEN)) else {
        return false;
    };
    // Destination and source MAC zero: the pipeline writes real ones when it forwards.
    let (macs, kind) = header.split_at_mut(12);
    macs.fill(0);
    kind.copy_from_slice(&ethertype.to_be_bytes());
    rest.copy_from_slice(payload);
    frame.set_received(len, p.indev);
    frame.mark = p.mark;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(id: u32, payload: Option<&[u8]>, cap_len: Option<u32>) -> QueuedPacket<'_> {
        QueuedPacket { queue: 7, family: 2, id, hw_protocol: 0x0800, hook: 0, mark: 3, indev: 4, payload, cap_len }
    }

    #[test]
    fn a_queued_packet_becomes_a_frame_with_a_synthetic_header_and_its_mark() {
        let mut batch = Batch::new(2);
        let v4 = [0x45u8, 0, 0, 20, 1, 2, 3, 4];
        assert_eq!(take_packet(&queued(1, Some(&v4), None), &mut batch), Some(0));
        let f = &batch.frames()[0];
        // 12 zero MAC bytes, EtherType 0x0800, then the packet as queued.
        let mut expected = vec![0u8; 12];
        expected.extend([0x08, 0x00]);
        expected.extend(v4);
        assert_eq!(f.data(), expected.as_slice());
        assert_eq!((f.ifindex, f.mark), (4, 3));
        let v6 = [0x60u8, 0, 0, 0];
        assert_eq!(take_packet(&queued(2, Some(&v6), None), &mut batch), Some(1));
        assert_eq!(batch.frames()[1].data()[12..14], [0x86, 0xdd]);
        // The batch is full: no frame, and the batch is unchanged.
        assert_eq!(take_packet(&queued(3, Some(&v4), None), &mut batch), None);
        assert_eq!(batch.len(), 2);
    }

    #[test]
    fn packets_that_cannot_be_frames_are_refused() {
        let mut batch = Batch::new(4);
        let v4 = [0x45u8, 0, 0, 20];
        // No payload (metadata only), cut short (real length larger), not IP, empty.
        assert_eq!(take_packet(&queued(1, None, None), &mut batch), None);
        assert_eq!(take_packet(&queued(2, Some(&v4), Some(1500)), &mut batch), None);
        assert_eq!(take_packet(&queued(3, Some(&[0x10, 0]), None), &mut batch), None);
        assert_eq!(take_packet(&queued(4, Some(&[]), None), &mut batch), None);
        let huge = vec![0x45u8; FRAME_CAPACITY];
        assert_eq!(take_packet(&queued(5, Some(&huge), None), &mut batch), None);
        assert!(batch.is_empty());
        // A capture length equal to the payload is not a cut.
        assert_eq!(take_packet(&queued(6, Some(&v4), Some(4)), &mut batch), Some(0));
    }

    fn pending(id: u32, frame: Option<usize>) -> Pending {
        Pending { id, queue: 7, frame }
    }

    /// Splits a datagram of verdict requests into (type, verdict, id) triples.
    fn verdicts(out: &[u8]) -> Vec<(u16, u32, u32)> {
        let mut found = Vec::new();
        let mut rest = out;
        while rest.len() >= 32 {
            let len = u32::from_ne_bytes(rest[..4].try_into().unwrap()) as usize;
            let kind = u16::from_ne_bytes(rest[4..6].try_into().unwrap());
            let verdict = u32::from_be_bytes(rest[24..28].try_into().unwrap());
            let id = u32::from_be_bytes(rest[28..32].try_into().unwrap());
            found.push((kind, verdict, id));
            rest = &rest[len..];
        }
        assert!(rest.is_empty());
        found
    }

    #[test]
    fn verdicts_follow_fates_and_consecutive_runs_are_batched() {
        const SINGLE: u16 = 0x0301;
        const BATCH: u16 = 0x0303;
        let fates = [Fate::Forwarded, Fate::Replied, Fate::Passed, Fate::Dropped, Fate::Forwarded];
        // Ids 10..=12 are frames 0..=2; 13 was not framed (accept); 14, 15 are frames 3, 4;
        // 20 is frame 5, beyond the fates (accept).
        let list = [
            pending(10, Some(0)),
            pending(11, Some(1)),
            pending(12, Some(2)),
            pending(13, None),
            pending(14, Some(3)),
            pending(15, Some(4)),
            pending(20, Some(5)),
        ];
        let mut out = Vec::new();
        let mut seq = 0;
        let (dropped, accepted) = build_verdicts(&list, &fates, &mut seq, &mut out);
        // forwarded + replied: drop 10, 11 as one batch; passed 12 and unframed 13: accept
        // both; dropped + forwarded 14, 15: drop; 20 is not consecutive: on its own.
        assert_eq!(
            verdicts(&out),
            vec![
                (BATCH, msg::NF_DROP, 11),
                (BATCH, msg::NF_ACCEPT, 13),
                (BATCH, msg::NF_DROP, 15),
                (SINGLE, msg::NF_ACCEPT, 20)
            ]
        );
        assert_eq!((dropped, accepted), (4, 3));
        assert_eq!(seq, 4, "one sequence number per message");
    }

    #[test]
    fn a_gap_in_ids_ends_a_run_and_ids_wrap() {
        let fates = [Fate::Forwarded; 3];
        let list = [pending(u32::MAX, Some(0)), pending(0, Some(1)), pending(5, Some(2))];
        let mut out = Vec::new();
        let mut seq = 0;
        build_verdicts(&list, &fates, &mut seq, &mut out);
        assert_eq!(verdicts(&out), vec![(0x0303, msg::NF_DROP, 0), (0x0301, msg::NF_DROP, 5)]);
    }
}
