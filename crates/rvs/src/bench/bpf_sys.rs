//! The three bpf(2) commands `rvs bench` needs, as raw system calls: load an XDP program,
//! run it on live frames (`BPF_PROG_TEST_RUN` with `BPF_F_TEST_XDP_LIVE_FRAMES`), and attach
//! it to an interface through a BPF link (detached when the link's descriptor closes).
//!
//! All `unsafe` of the benchmark lives here: each call hands the kernel a pointer to a
//! zero-padded attribute struct that lives across the call, and every buffer it points to
//! outlives the call too.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TEST_RUN: libc::c_long = 10;
const BPF_LINK_CREATE: libc::c_long = 28;
const BPF_PROG_TYPE_XDP: u32 = 6;
/// Attach type of XDP programs (`BPF_XDP`).
const BPF_XDP: u32 = 37;
/// `BPF_F_TEST_XDP_LIVE_FRAMES`: frames really go out (XDP_TX / XDP_REDIRECT).
const BPF_F_TEST_XDP_LIVE_FRAMES: u32 = 1 << 1;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    padding: [u64; 8],
}

#[repr(C)]
#[derive(Default)]
struct TestRunAttr {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    padding: [u32; 5],
}

#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
    padding: [u64; 8],
}

/// `struct xdp_md` as BPF_PROG_TEST_RUN reads it from `ctx_in`.
#[repr(C)]
#[derive(Default)]
struct XdpMd {
    data: u32,
    data_end: u32,
    data_meta: u32,
    ingress_ifindex: u32,
    rx_queue_index: u32,
    egress_ifindex: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    let size = std::mem::size_of::<T>();
    // SAFETY: `attr` is a live, initialised #[repr(C)] struct of `size` bytes whose pointer
    // fields point at buffers the caller keeps alive across this call.
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, size) };
    if rc < 0 { Err(io::Error::last_os_error()) } else { Ok(rc) }
}

fn owned_fd(rc: libc::c_long) -> io::Result<OwnedFd> {
    let fd = RawFd::try_from(rc).map_err(|_| io::Error::other("bpf returned an out-of-range descriptor"))?;
    // SAFETY: the kernel just returned this new descriptor to us; nobody else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Loads an XDP program from raw instructions (8 bytes each). On a verifier refusal the
/// error carries the verifier's log.
pub fn load_xdp(name: &str, code: &[u8]) -> io::Result<OwnedFd> {
    if code.is_empty() || !code.len().is_multiple_of(8) {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "program is not a whole number of instructions"));
    }
    let insn_cnt = u32::try_from(code.len() / 8).map_err(|_| io::Error::other("program too long"))?;
    let license = b"Dual MIT/GPL\0";
    let mut prog_name = [0u8; 16];
    for (slot, byte) in prog_name.iter_mut().zip(name.bytes().take(15)) {
        *slot = byte;
    }
    let mut log = vec![0u8; 64 * 1024];
    let mut attempt = |with_log: bool| {
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_XDP,
            insn_cnt,
            insns: code.as_ptr() as u64,
            license: license.as_ptr() as u64,
            prog_name,
            ..Default::default()
        };
        if with_log {
            attr.log_level = 1;
            attr.log_size = u32::try_from(log.len()).unwrap_or(u32::MAX);
            attr.log_buf = log.as_mut_ptr() as u64;
        }
        bpf(BPF_PROG_LOAD, &mut attr).and_then(owned_fd)
    };
    match attempt(false) {
        Ok(fd) => Ok(fd),
        Err(first) => match attempt(true) {
            Ok(fd) => Ok(fd),
            Err(_) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(log.get(..end).unwrap_or_default());
                Err(io::Error::new(first.kind(), format!("{first}; verifier log:\n{text}")))
            }
        },
    }
}

/// Runs `prog` `repeat` times on live frames built from `frame`, as if received on
/// interface `ifindex` (of the calling thread's network namespace), in batches of `batch`.
/// Returns the kernel's duration in nanoseconds. The frames go wherever the program sends
/// them (XDP_TX: out of `ifindex`).
pub fn run_live_frames(prog: RawFd, frame: &[u8], ifindex: u32, repeat: u32, batch: u32) -> io::Result<u32> {
    let len = u32::try_from(frame.len()).map_err(|_| io::Error::other("frame too long"))?;
    let mut ctx = XdpMd { data_end: len, ingress_ifindex: ifindex, ..Default::default() };
    let mut attr = TestRunAttr {
        prog_fd: u32::try_from(prog).map_err(|_| io::Error::other("bad descriptor"))?,
        data_size_in: len,
        data_in: frame.as_ptr() as u64,
        repeat,
        ctx_size_in: u32::try_from(std::mem::size_of::<XdpMd>()).unwrap_or(24),
        ctx_in: std::ptr::from_mut(&mut ctx) as u64,
        flags: BPF_F_TEST_XDP_LIVE_FRAMES,
        batch_size: batch,
        ..Default::default()
    };
    bpf(BPF_PROG_TEST_RUN, &mut attr)?;
    Ok(attr.duration)
}

/// Attaches `prog` to interface `ifindex` (of the calling thread's network namespace) in
/// native (driver) mode; the program stays attached while the returned link is open.
pub fn attach_xdp(prog: RawFd, ifindex: u32) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr {
        prog_fd: u32::try_from(prog).map_err(|_| io::Error::other("bad descriptor"))?,
        target_ifindex: ifindex,
        attach_type: BPF_XDP,
        ..Default::default()
    };
    bpf(BPF_LINK_CREATE, &mut attr).and_then(owned_fd)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The attribute layouts must match the kernel's union bpf_attr members field for field:
    // offsets from include/uapi/linux/bpf.h (prog_name at 48, batch_size at 72, ...).
    #[test]
    fn attribute_layouts_match_the_kernel_abi() {
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, prog_name), 48);
        assert_eq!(std::mem::offset_of!(ProgLoadAttr, expected_attach_type), 68);
        assert_eq!(std::mem::offset_of!(TestRunAttr, repeat), 32);
        assert_eq!(std::mem::offset_of!(TestRunAttr, ctx_in), 48);
        assert_eq!(std::mem::offset_of!(TestRunAttr, flags), 64);
        assert_eq!(std::mem::offset_of!(TestRunAttr, batch_size), 72);
        assert_eq!(std::mem::offset_of!(LinkCreateAttr, attach_type), 8);
        assert_eq!(std::mem::size_of::<XdpMd>(), 24);
    }
}
