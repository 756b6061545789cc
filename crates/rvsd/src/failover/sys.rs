//! The system-call layer of failover, and the only place in it with `unsafe`: a link-layer
//! socket address (`sockaddr_ll`) for binding and addressing AF_PACKET sockets, and the
//! `PACKET_IGNORE_OUTGOING` option. Everything else uses socket2's safe API.
//!
//! Constants are those of `<linux/if_packet.h>` and `<linux/if_ether.h>` (stable kernel ABI).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

use socket2::{SockAddr, Socket};

/// `SOL_PACKET` socket option level.
const SOL_PACKET: libc::c_int = 263;
/// `PACKET_IGNORE_OUTGOING`.
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;
/// `ETH_P_ALL`: every protocol.
pub const ETH_P_ALL: u16 = 0x0003;

/// The link-layer address of interface `ifindex` for `protocol` (an ethertype, host order).
pub fn link_addr(ifindex: u32, protocol: u16) -> io::Result<SockAddr> {
    let index = libc::c_int::try_from(ifindex).map_err(io::Error::other)?;
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::sockaddr_ll>()).map_err(io::Error::other)?;
    // SAFETY: `try_init` hands us zeroed storage large enough for any sockaddr (sockaddr_storage);
    // we view it as a sockaddr_ll (a platform sockaddr type, smaller than the storage), fill the
    // fields AF_PACKET reads, and report its length.
    let ((), addr) = unsafe {
        SockAddr::try_init(|storage, out_len| {
            let ll = (*storage).view_as::<libc::sockaddr_ll>();
            ll.sll_family = libc::AF_PACKET as libc::c_ushort;
            ll.sll_protocol = protocol.to_be();
            ll.sll_ifindex = index;
            *out_len = len;
            Ok(())
        })
    }?;
    Ok(addr)
}

/// Asks the kernel not to hand this packet socket the frames that leave the interface.
pub fn set_ignore_outgoing(socket: &Socket) -> io::Result<()> {
    let one: libc::c_int = 1;
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).map_err(io::Error::other)?;
    // SAFETY: `one` is a live c_int of `len` bytes for the duration of the call; the kernel only reads it.
    let ret = unsafe {
        libc::setsockopt(socket.as_raw_fd(), SOL_PACKET, PACKET_IGNORE_OUTGOING, (&raw const one).cast(), len)
    };
    if ret < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}
