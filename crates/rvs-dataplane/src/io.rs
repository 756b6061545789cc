//! Frames, batches and the backend trait.
//!
//! Every frame sits in its own fixed buffer with [`HEADROOM`] free bytes in front, so that
//! the TUN method can prepend outer headers without copying the packet. Backends copy
//! received frames into a [`Batch`]'s buffers and transmit from them; the pipeline rewrites
//! in place.

use std::time::Duration;

/// Free bytes in front of every frame (room for an outer IPv6 header plus a new Ethernet
/// header with a VLAN tag).
pub const HEADROOM: usize = 128;
/// Largest frame a buffer holds (Ethernet + 9000-byte jumbo payload + tags).
pub const FRAME_CAPACITY: usize = 9216;

/// One frame in a buffer with headroom.
#[derive(Clone)]
pub struct Frame {
    buf: Box<[u8]>,
    start: usize,
    len: usize,
    /// Interface the frame arrived on (rx) or leaves by (tx), as an ifindex.
    pub ifindex: u32,
    /// Firewall mark the kernel gave the packet (0 = none). Only a backend that receives
    /// after netfilter (NFQUEUE) can know it; AF_PACKET taps see frames before any mark is
    /// set. [`Frame::fill`] and [`Frame::set_received`] reset it: a backend sets it after.
    pub mark: u32,
}

impl Default for Frame {
    fn default() -> Self {
        Frame::new()
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("ifindex", &self.ifindex)
            .field("mark", &self.mark)
            .field("len", &self.len)
            .finish()
    }
}

impl Frame {
    /// An empty frame with a fresh buffer.
    pub fn new() -> Frame {
        Frame {
            buf: vec![0; HEADROOM + FRAME_CAPACITY].into_boxed_slice(),
            start: HEADROOM,
            len: 0,
            ifindex: 0,
            mark: 0,
        }
    }

    /// The frame's bytes.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.len]
    }

    /// The frame's bytes, mutably.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..self.start + self.len]
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Replaces the contents with `bytes` (truncated to the capacity), headroom restored,
    /// no mark.
    pub fn fill(&mut self, bytes: &[u8], ifindex: u32) {
        let n = bytes.len().min(FRAME_CAPACITY);
        self.start = HEADROOM;
        self.len = n;
        self.buf[HEADROOM..HEADROOM + n].copy_from_slice(&bytes[..n]);
        self.ifindex = ifindex;
        self.mark = 0;
    }

    /// The whole buffer for a backend to receive into: returns the writable area after the
    /// headroom; call [`Frame::set_received`] with the length written.
    pub fn receive_area(&mut self) -> &mut [u8] {
        self.start = HEADROOM;
        &mut self.buf[HEADROOM..]
    }

    /// Marks `len` bytes written by [`Frame::receive_area`], arrived on `ifindex`, with no
    /// firewall mark (a backend that knows one sets [`Frame::mark`] afterwards).
    pub fn set_received(&mut self, len: usize, ifindex: u32) {
        self.start = HEADROOM;
        self.len = len.min(FRAME_CAPACITY);
        self.ifindex = ifindex;
        self.mark = 0;
    }

    /// Grows the frame by `n` bytes at the front (into the headroom); returns false if there
    /// is no room. The new bytes are the first `n` of [`Frame::data_mut`].
    pub fn push_front(&mut self, n: usize) -> bool {
        if n > self.start {
            return false;
        }
        self.start -= n;
        self.len += n;
        true
    }

    /// Drops `n` bytes from the front; returns false if the frame is shorter.
    pub fn pull_front(&mut self, n: usize) -> bool {
        if n > self.len {
            return false;
        }
        self.start += n;
        self.len -= n;
        true
    }

    /// Sets the length (within the buffer) keeping the start.
    pub fn set_len(&mut self, len: usize) {
        self.len = len.min(self.buf.len() - self.start);
    }
}

/// A reusable set of frames: what one rx call fills and one tx call sends.
#[derive(Debug)]
pub struct Batch {
    frames: Vec<Frame>,
    len: usize,
}

impl Batch {
    /// A batch of `capacity` frames (allocated once).
    pub fn new(capacity: usize) -> Batch {
        Batch { frames: (0..capacity).map(|_| Frame::new()).collect(), len: 0 }
    }

    /// How many frames it can hold.
    pub fn capacity(&self) -> usize {
        self.frames.len()
    }

    /// Frames in use.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if none are in use.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Empties the batch (buffers are kept).
    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// The next free frame, now counted in use; `None` if full.
    pub fn push(&mut self) -> Option<&mut Frame> {
        let f = self.frames.get_mut(self.len)?;
        self.len += 1;
        Some(f)
    }

    /// Gives back the last frame taken with [`Batch::push`].
    pub fn pop(&mut self) {
        self.len = self.len.saturating_sub(1);
    }

    /// Frames in use.
    pub fn frames(&self) -> &[Frame] {
        &self.frames[..self.len]
    }

    /// Frames in use, mutably.
    pub fn frames_mut(&mut self) -> &mut [Frame] {
        &mut self.frames[..self.len]
    }
}

/// A packet backend: receives frames from interfaces and transmits frames out of them.
pub trait PacketIo {
    /// Clears `batch` and fills it with received frames, waiting at most `timeout` for the
    /// first one. Returns the number received (0 on timeout).
    fn recv(&mut self, batch: &mut Batch, timeout: Duration) -> std::io::Result<usize>;

    /// Transmits every frame of `frames`, each out of its `ifindex`. Returns how many were
    /// handed to the interfaces.
    fn send(&mut self, frames: &[Frame]) -> std::io::Result<usize>;
}

/// In-memory backend for tests: frames are pushed into an rx queue and collected from a tx
/// list.
#[derive(Debug, Default)]
pub struct MemoryIo {
    /// Frames waiting to be received, as (ifindex, bytes).
    pub rx: std::collections::VecDeque<(u32, Vec<u8>)>,
    /// Frames transmitted, as (ifindex, bytes).
    pub tx: Vec<(u32, Vec<u8>)>,
}

impl PacketIo for MemoryIo {
    fn recv(&mut self, batch: &mut Batch, _timeout: Duration) -> std::io::Result<usize> {
        batch.clear();
        while batch.len() < batch.capacity() {
            let Some((ifindex, bytes)) = self.rx.pop_front() else { break };
            if let Some(f) = batch.push() {
                f.fill(&bytes, ifindex);
            }
        }
        Ok(batch.len())
    }

    fn send(&mut self, frames: &[Frame]) -> std::io::Result<usize> {
        self.tx.extend(frames.iter().map(|f| (f.ifindex, f.data().to_vec())));
        Ok(frames.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headroom_allows_prepending_and_memory_io_round_trips() {
        let mut io = MemoryIo::default();
        io.rx.push_back((3, vec![1, 2, 3]));
        let mut b = Batch::new(4);
        assert_eq!(io.recv(&mut b, Duration::ZERO).unwrap(), 1);
        let f = &mut b.frames_mut()[0];
        assert!(f.push_front(2));
        f.data_mut()[..2].copy_from_slice(&[9, 9]);
        assert_eq!(f.data(), &[9, 9, 1, 2, 3]);
        assert!(f.pull_front(2));
        assert!(!f.push_front(HEADROOM + 1));
        io.send(b.frames()).unwrap();
        assert_eq!(io.tx, vec![(3, vec![1, 2, 3])]);
    }

    #[test]
    fn a_reused_buffer_does_not_keep_an_old_mark() {
        let mut f = Frame::new();
        f.fill(&[0x45], 1);
        f.mark = 7;
        f.fill(&[0x45], 2);
        assert_eq!(f.mark, 0, "fill starts a new frame without a mark");
        f.mark = 7;
        f.receive_area()[0] = 0x60;
        f.set_received(1, 3);
        assert_eq!((f.mark, f.ifindex, f.data()), (0, 3, &[0x60][..]));
    }
}
