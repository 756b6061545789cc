//! The system-call layer of the NFQUEUE source, and the only `unsafe` in it: a netlink
//! socket of protocol `NETLINK_NETFILTER`, its `sockaddr_nl` bind, buffer size, and
//! non-blocking send, receive and `poll`. Everything above is safe code over byte slices.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(ret) }
}

/// A new netlink socket of `protocol`, bound with a port id the kernel picks.
pub fn netlink_socket(protocol: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes plain integers; on success it returns a fresh descriptor that
    // nothing else owns.
    let raw = check(unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, protocol) })?;
    // SAFETY: `raw` is a valid, open descriptor owned by no one else (see above).
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // SAFETY: sockaddr_nl is plain old data; all-zero is a valid value (port id 0 asks the
    // kernel to choose one, no multicast groups).
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_nl>()).map_err(io::Error::other)?;
    // SAFETY: `addr` is a valid sockaddr_nl of `len` bytes that outlives the call.
    check(unsafe { libc::bind(fd.as_raw_fd(), (&raw const addr).cast(), len) })?;
    Ok(fd)
}

/// Sets the receive buffer to `bytes`: `SO_RCVBUFFORCE` (past `rmem_max`, needs
/// CAP_NET_ADMIN), else `SO_RCVBUF` (capped by `rmem_max`).
pub fn set_receive_buffer(fd: &OwnedFd, bytes: usize) -> io::Result<()> {
    let value = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).map_err(io::Error::other)?;
    for option in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: `value` is a live c_int of `len` bytes; the kernel only reads it.
        let ret = unsafe { libc::setsockopt(fd.as_raw_fd(), libc::SOL_SOCKET, option, (&raw const value).cast(), len) };
        if ret == 0 {
            return Ok(());
        }
    }
    Err(io::Error::last_os_error())
}

/// Sends one datagram to the kernel (port id 0, the default destination of an unconnected
/// netlink socket).
pub fn send(fd: &OwnedFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: `bytes` is a readable buffer of `bytes.len()` bytes for the call.
    let sent = unsafe { libc::send(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len(), 0) };
    usize::try_from(sent).map_err(|_| io::Error::last_os_error())
}

/// Receives one datagram without blocking. Returns its full length, which exceeds
/// `buf.len()` if it was cut short (`MSG_TRUNC`); `WouldBlock` when there is none.
pub fn recv_nonblocking(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is a writable buffer of `buf.len()` bytes for the call; the kernel
    // writes at most that many.
    let got =
        unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_DONTWAIT | libc::MSG_TRUNC) };
    usize::try_from(got).map_err(|_| io::Error::last_os_error())
}

/// Waits until `fd` is readable or `timeout` passes; returns whether it is.
pub fn wait_readable(fd: &OwnedFd, timeout: Duration) -> io::Result<bool> {
    let mut pollfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // Round up so a sub-millisecond timeout still waits.
    let millis = libc::c_int::try_from(timeout.as_micros().div_ceil(1000)).unwrap_or(libc::c_int::MAX);
    // SAFETY: `pollfd` is one valid, writable pollfd for the call.
    let ready = unsafe { libc::poll(&raw mut pollfd, 1, millis) };
    if ready < 0 {
        let err = io::Error::last_os_error();
        return if err.kind() == io::ErrorKind::Interrupted { Ok(false) } else { Err(err) };
    }
    Ok(ready > 0)
}
