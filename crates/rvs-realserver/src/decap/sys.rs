//! The only `unsafe` of the crate: the two system calls std and nix do not
//! wrap for us. `socket(2)` with an arbitrary IP protocol number (nix's
//! `SockProtocol` has no IPIP/IPv6 entries) and the `TUNSETIFF` ioctl that
//! turns an open /dev/net/tun into a named TUN device. Everything else works
//! on the safe `OwnedFd`/`File` these return.
#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// Opens a non-blocking raw IP socket of `family` (AF_INET/AF_INET6) for IP
/// protocol `protocol`: it receives a copy of every packet of that protocol
/// addressed to this host.
pub fn raw_ip_socket(family: libc::c_int, protocol: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket(2) takes plain integers and returns a new descriptor or -1;
    // no memory is shared with the kernel.
    let fd = unsafe { libc::socket(family, libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just created above, is valid and owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `struct ifreq` as TUNSETIFF uses it: the name, the flags, and padding up to
/// the size of the kernel's union (40 bytes on 64-bit Linux).
#[repr(C)]
struct TunRequest {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Creates a TUN device (IFF_TUN, no packet-information header) from the name
/// pattern (`rvstun%d` lets the kernel pick the first free number) and returns
/// its file and the name the kernel gave it. The device lives as long as the
/// file stays open.
pub fn create_tun(pattern: &str) -> io::Result<(File, String)> {
    let bytes = pattern.as_bytes();
    if bytes.is_empty() || bytes.len() >= libc::IFNAMSIZ || bytes.contains(&0) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("bad TUN device name `{pattern}`")));
    }
    let file = OpenOptions::new().read(true).write(true).open("/dev/net/tun")?;
    let mut request = TunRequest { name: [0; libc::IFNAMSIZ], flags: 0, _pad: [0; 22] };
    for (slot, byte) in request.name.iter_mut().zip(bytes) {
        *slot = *byte;
    }
    // IFF_TUN and IFF_NO_PI are small positive constants that fit a c_short.
    request.flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes one `struct ifreq`; `TunRequest` has its
    // layout and size and lives across the call; the descriptor is open.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut request as *mut TunRequest) };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    let len = request.name.iter().position(|b| *b == 0).unwrap_or(request.name.len());
    let name = String::from_utf8_lossy(request.name.get(..len).unwrap_or(&[])).into_owned();
    Ok((file, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_has_the_size_of_struct_ifreq() {
        assert_eq!(std::mem::size_of::<TunRequest>(), std::mem::size_of::<libc::ifreq>());
    }

    #[test]
    fn bad_names_are_refused_before_any_system_call() {
        assert!(create_tun("").is_err());
        assert!(create_tun("a-name-far-too-long").is_err());
    }
}
