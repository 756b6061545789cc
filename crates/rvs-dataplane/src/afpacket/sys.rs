//! The system-call layer of the AF_PACKET backend, and the only place in the crate with
//! `unsafe`: packet sockets, their socket options, the mmap'ed TPACKET_V3 receive ring,
//! `poll` and `sendmmsg`. Everything above this module is safe code over byte slices.
//!
//! The constants are those of `<linux/if_packet.h>` (stable kernel ABI).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// `SOL_PACKET` socket option level.
const SOL_PACKET: libc::c_int = 263;
/// `PACKET_RX_RING`.
const PACKET_RX_RING: libc::c_int = 5;
/// `PACKET_STATISTICS`.
const PACKET_STATISTICS: libc::c_int = 6;
/// `PACKET_VERSION`.
const PACKET_VERSION: libc::c_int = 10;
/// `PACKET_QDISC_BYPASS`.
const PACKET_QDISC_BYPASS: libc::c_int = 20;
/// `PACKET_IGNORE_OUTGOING`.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// `TPACKET_V3` (enum tpacket_versions: V1 = 0, V2 = 1, V3 = 2).
const TPACKET_V3: libc::c_int = 2;
/// `ETH_P_ALL`: every protocol.
pub const ETH_P_ALL: u16 = 0x0003;
/// Byte offset of `hdr.bh1.block_status` in `struct tpacket_block_desc`
/// (after `version: u32` and `offset_to_priv: u32`).
const BLOCK_STATUS_OFFSET: usize = 8;
/// `TP_STATUS_KERNEL`: the block belongs to the kernel.
const TP_STATUS_KERNEL: u32 = 0;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// A new `AF_PACKET`/`SOCK_RAW` socket with protocol 0: it receives nothing until bound
/// with a protocol, so no frame of another interface slips in before the bind.
pub fn packet_socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes plain integers; on success it returns a fresh descriptor
    // that nothing else owns, so OwnedFd may take it.
    let fd = check(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` is a valid, open descriptor owned by no one else (see above).
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn set_option<T>(fd: RawFd, name: libc::c_int, value: &T) -> io::Result<()> {
    let len = libc::socklen_t::try_from(std::mem::size_of::<T>()).map_err(io::Error::other)?;
    // SAFETY: `value` points to a live `T` of `len` bytes for the duration of the call;
    // the kernel only reads it.
    check(unsafe { libc::setsockopt(fd, SOL_PACKET, name, (value as *const T).cast(), len) })?;
    Ok(())
}

/// Selects TPACKET_V3 (must precede the ring setup).
pub fn set_tpacket_v3(fd: &OwnedFd) -> io::Result<()> {
    set_option(fd.as_raw_fd(), PACKET_VERSION, &TPACKET_V3)
}

/// Asks the kernel not to hand this socket the frames that leave the interface.
pub fn set_ignore_outgoing(fd: &OwnedFd) -> io::Result<()> {
    set_option(fd.as_raw_fd(), PACKET_IGNORE_OUTGOING, &1 as &libc::c_int)
}

/// Sends frames of this socket straight to the driver, past the qdisc layer.
pub fn set_qdisc_bypass(fd: &OwnedFd) -> io::Result<()> {
    set_option(fd.as_raw_fd(), PACKET_QDISC_BYPASS, &1 as &libc::c_int)
}

/// Binds a packet socket to one interface and protocol (`ETH_P_ALL` for every frame).
pub fn bind(fd: &OwnedFd, ifindex: u32, protocol: u16) -> io::Result<()> {
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    addr.sll_family = libc::AF_PACKET as libc::c_ushort;
    addr.sll_protocol = protocol.to_be();
    addr.sll_ifindex = libc::c_int::try_from(ifindex).map_err(io::Error::other)?;
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_ll>()).map_err(io::Error::other)?;
    // SAFETY: `addr` is a valid sockaddr_ll of `len` bytes that outlives the call.
    check(unsafe { libc::bind(fd.as_raw_fd(), (&raw const addr).cast(), len) })?;
    Ok(())
}

/// The ifindex of an interface name (0 if there is none).
pub fn ifindex(name: &str) -> io::Result<u32> {
    let cname = std::ffi::CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `cname` is a NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 { Err(io::Error::last_os_error()) } else { Ok(index) }
}

/// Kernel counters of a receive socket since the last call: (packets, drops).
pub fn take_statistics(fd: &OwnedFd) -> io::Result<(u32, u32)> {
    // tpacket_stats_v3 = { tp_packets, tp_drops, tp_freeze_q_cnt }, three u32.
    let mut stats = [0u32; 3];
    let mut len = libc::socklen_t::try_from(std::mem::size_of_val(&stats)).map_err(io::Error::other)?;
    // SAFETY: `stats` is a writable buffer of `len` bytes and `len` a live socklen_t;
    // the kernel writes at most `len` bytes.
    check(unsafe {
        libc::getsockopt(fd.as_raw_fd(), SOL_PACKET, PACKET_STATISTICS, stats.as_mut_ptr().cast(), &mut len)
    })?;
    Ok((stats[0], stats[1]))
}

/// Reads and clears the socket's pending error (`SO_ERROR`).
pub fn take_socket_error(fd: &OwnedFd) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).map_err(io::Error::other)?;
    // SAFETY: `value` and `len` are live, writable and of the sizes the kernel expects.
    check(unsafe {
        libc::getsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_ERROR, (&raw mut value).cast(), &mut len)
    })?;
    Ok(value)
}

/// Geometry of a TPACKET_V3 receive ring.
#[derive(Debug, Clone, Copy)]
pub struct RingGeometry {
    /// Bytes per block (a multiple of the page size).
    pub block_size: u32,
    /// Number of blocks.
    pub block_count: u32,
    /// Nominal frame size (only validated by the kernel for V3; frames are packed).
    pub frame_size: u32,
    /// Milliseconds after which the kernel hands over a partly filled block.
    pub retire_timeout_ms: u32,
}

/// The mmap'ed TPACKET_V3 receive ring of one socket. Blocks alternate between kernel and
/// user ownership via their `block_status` word; [`RxRing::block`] exposes a block's bytes
/// only while user space owns it.
pub struct RxRing {
    base: NonNull<u8>,
    map_len: usize,
    block_size: usize,
    block_count: usize,
}

// SAFETY: the ring is plain memory shared with the kernel; the struct holds no thread-bound
// state, and all access goes through &self/&mut self methods that follow the ownership
// protocol, so moving it to another thread is fine.
unsafe impl Send for RxRing {}

impl std::fmt::Debug for RxRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RxRing").field("block_size", &self.block_size).field("block_count", &self.block_count).finish()
    }
}

impl RxRing {
    /// Sets up the ring on `fd` (after [`set_tpacket_v3`]) and maps it.
    pub fn map(fd: &OwnedFd, geometry: RingGeometry) -> io::Result<RxRing> {
        let frames_per_block = geometry.block_size / geometry.frame_size.max(1);
        let req = libc::tpacket_req3 {
            tp_block_size: geometry.block_size,
            tp_block_nr: geometry.block_count,
            tp_frame_size: geometry.frame_size,
            tp_frame_nr: frames_per_block.saturating_mul(geometry.block_count),
            tp_retire_blk_tov: geometry.retire_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        set_option(fd.as_raw_fd(), PACKET_RX_RING, &req)?;
        let block_size = usize::try_from(geometry.block_size).map_err(io::Error::other)?;
        let block_count = usize::try_from(geometry.block_count).map_err(io::Error::other)?;
        let map_len = block_size.checked_mul(block_count).ok_or_else(|| io::Error::other("ring too large"))?;
        // SAFETY: mapping the ring the kernel just allocated for this socket, shared and
        // read/write as the packet(7) ring protocol requires; the result is checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(RxRing { base, map_len, block_size, block_count })
    }

    /// Number of blocks.
    pub fn block_count(&self) -> usize {
        self.block_count
    }

    fn status_word(&self, index: usize) -> Option<&AtomicU32> {
        if index >= self.block_count {
            return None;
        }
        // SAFETY: index < block_count, so the block starts inside the mapping; blocks are
        // page aligned, so offset 8 is 4-byte aligned and inside the block. The kernel
        // updates this word concurrently, hence the atomic view.
        Some(unsafe {
            AtomicU32::from_ptr(self.base.as_ptr().add(index * self.block_size + BLOCK_STATUS_OFFSET).cast())
        })
    }

    /// Whether user space owns block `index` (any `TP_STATUS_USER` bit set), with acquire
    /// ordering so the block's contents are visible after a `true`.
    pub fn user_owns(&self, index: usize) -> bool {
        self.status_word(index).is_some_and(|word| word.load(Ordering::Acquire) != TP_STATUS_KERNEL)
    }

    /// The bytes of block `index`, if user space owns it.
    pub fn block(&self, index: usize) -> Option<&[u8]> {
        if !self.user_owns(index) {
            return None;
        }
        // SAFETY: the block lies inside the mapping (index < block_count checked by
        // user_owns) and belongs to user space until `release`, which takes &mut self,
        // so the kernel does not write it while this shared borrow lives.
        Some(unsafe { std::slice::from_raw_parts(self.base.as_ptr().add(index * self.block_size), self.block_size) })
    }

    /// Hands block `index` back to the kernel (release ordering: our reads happen before).
    pub fn release(&mut self, index: usize) {
        if let Some(word) = self.status_word(index) {
            word.store(TP_STATUS_KERNEL, Ordering::Release);
        }
    }
}

impl Drop for RxRing {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the region mapped in `map`; no borrow of it can outlive
        // self.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.map_len);
        }
    }
}

/// Waits until one of `fds` is readable or `timeout` passes; returns whether any is.
pub fn poll_readable(fds: &mut [libc::pollfd], timeout: Duration) -> io::Result<bool> {
    let millis = if timeout.is_zero() {
        0
    } else {
        // Round up so a sub-millisecond timeout still waits.
        libc::c_int::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX)
    };
    let count = libc::nfds_t::try_from(fds.len()).map_err(io::Error::other)?;
    // SAFETY: `fds` is a valid, writable array of `count` pollfd entries for the call.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), count, millis) };
    if ready < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::Interrupted { Ok(false) } else { Err(err) };
    }
    Ok(ready > 0)
}

/// Reusable buffers for `sendmmsg` on a packet socket.
#[derive(Default)]
pub struct SendBuffers {
    addrs: Vec<libc::sockaddr_ll>,
    iovecs: Vec<libc::iovec>,
    headers: Vec<libc::mmsghdr>,
}

// SAFETY: the raw pointers inside are only scratch space rebuilt (and only dereferenced by
// the kernel) within one `send_frames` call; between calls they are dead values.
unsafe impl Send for SendBuffers {}

impl std::fmt::Debug for SendBuffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendBuffers").field("capacity", &self.headers.capacity()).finish()
    }
}

/// Outcome of one [`send_frames`] call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendOutcome {
    /// Frames the kernel accepted.
    pub sent: usize,
    /// Frames refused one by one (bad ifindex, interface down, too large ...).
    pub refused: usize,
    /// Frames not attempted because the device queue was full (EAGAIN/ENOBUFS).
    pub backpressure: usize,
}

/// Transmits each `(ifindex, bytes)` with `sendmmsg` on `fd`, without blocking. A frame the
/// kernel refuses is skipped and counted; a full queue ends the call.
pub fn send_frames<'a>(
    fd: &OwnedFd,
    frames: impl Iterator<Item = (u32, &'a [u8])>,
    buffers: &mut SendBuffers,
) -> io::Result<SendOutcome> {
    buffers.addrs.clear();
    buffers.iovecs.clear();
    buffers.headers.clear();
    let mut outcome = SendOutcome::default();
    for (ifindex, bytes) in frames {
        // SAFETY: sockaddr_ll is plain old data; all-zero is valid.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as libc::c_ushort;
        // The EtherType (network order, as sll_protocol wants) sets the skb's protocol.
        addr.sll_protocol = match bytes {
            [_, _, _, _, _, _, _, _, _, _, _, _, hi, lo, ..] => u16::from_ne_bytes([*hi, *lo]),
            _ => 0,
        };
        let Ok(index) = libc::c_int::try_from(ifindex) else {
            outcome.refused += 1;
            continue;
        };
        addr.sll_ifindex = index;
        addr.sll_halen = 6;
        buffers.addrs.push(addr);
        buffers.iovecs.push(libc::iovec { iov_base: bytes.as_ptr().cast_mut().cast(), iov_len: bytes.len() });
    }
    let addr_len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_ll>()).map_err(io::Error::other)?;
    for (addr, iov) in buffers.addrs.iter_mut().zip(buffers.iovecs.iter_mut()) {
        // SAFETY: msghdr is plain old data; all-zero is valid (no control data, no flags).
        let mut header: libc::mmsghdr = unsafe { std::mem::zeroed() };
        header.msg_hdr.msg_name = (addr as *mut libc::sockaddr_ll).cast();
        header.msg_hdr.msg_namelen = addr_len;
        header.msg_hdr.msg_iov = iov;
        header.msg_hdr.msg_iovlen = 1;
        buffers.headers.push(header);
    }
    // sendmmsg takes at most UIO_MAXIOV (1024) messages per call.
    const MAX_PER_CALL: usize = 1024;
    let total = buffers.headers.len();
    let mut next = 0;
    while next < total {
        let chunk = (total - next).min(MAX_PER_CALL);
        let Some(rest) = buffers.headers.get_mut(next..) else { break };
        // SAFETY: `rest` holds `chunk` initialised mmsghdr entries whose name and iovec
        // pointers refer to `buffers.addrs`/`buffers.iovecs` (not resized since) and to the
        // caller's frame bytes, all alive for this call; the kernel only reads them (and
        // writes msg_len).
        let ret =
            unsafe { libc::sendmmsg(fd.as_raw_fd(), rest.as_mut_ptr(), chunk as libc::c_uint, libc::MSG_DONTWAIT) };
        if ret > 0 {
            next += usize::try_from(ret).unwrap_or(chunk);
            outcome.sent += usize::try_from(ret).unwrap_or(chunk);
            continue;
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN | libc::ENOBUFS) => {
                outcome.backpressure += total - next;
                break;
            }
            Some(libc::EBADF | libc::ENOTSOCK | libc::EFAULT) => return Err(err),
            // The first message of the chunk was refused on its own merits: skip it.
            _ => {
                outcome.refused += 1;
                next += 1;
            }
        }
    }
    Ok(outcome)
}
