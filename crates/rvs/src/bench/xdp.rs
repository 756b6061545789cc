//! The XDP packet generator and sink of the packet-rate benchmark (programs in
//! crates/rvs/bpf/bench_xdp.c, compiled by build.rs).
//!
//! [`Generator`] runs the generator program with `BPF_PROG_RUN` on live frames: the kernel
//! builds each frame from the template in a page-pool page, the program picks a UDP source
//! port and returns XDP_TX, and the frame leaves the named interface (a switch port whose
//! veth peer is the director's LAN interface) without ever becoming a socket buffer on the
//! sending side. One thread, pinned to one CPU, in the switch namespace.
//!
//! [`XdpDrop`] attaches the drop program to an interface (native XDP through a BPF link;
//! closing the link detaches it, so a dying process leaves nothing): with it on the
//! director's interface, the generator's own ceiling is measured.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::bpf_sys;

const GEN_CODE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/xdp_gen.bin"));
const SINK_CODE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/xdp_sink.bin"));

/// Frames per BPF_PROG_RUN call (a fraction of a second at the generator's rate, so a stop
/// request is seen quickly).
const FRAMES_PER_CALL: u32 = 1 << 17;
/// Frames the kernel builds and sends per batch inside one call.
const BATCH: u32 = 64;

fn program(name: &str, code: &[u8]) -> Result<OwnedFd> {
    if code.is_empty() {
        bail!(
            "the XDP programs were not built (clang was missing when rvs was compiled; run scripts/install-deps.sh and rebuild)"
        );
    }
    bpf_sys::load_xdp(name, code).with_context(|| format!("loading the XDP program {name}"))
}

/// Runs `work` on a fresh thread that has entered network namespace `netns`.
pub fn in_netns<T: Send>(netns: &str, work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                rvs_lab::netns::enter(netns).with_context(|| format!("entering {netns}"))?;
                work()
            })
            .join()
            .unwrap_or_else(|_| bail!("thread in {netns} panicked"))
    })
}

fn ifindex(name: &str) -> Result<u32> {
    nix::net::if_::if_nametoindex(name).with_context(|| format!("no interface {name}"))
}

fn pin_current_thread(cpu: usize) -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu).context("cpu number")?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).context("pinning the generator thread")
}

/// What one generator run did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeneratorRun {
    /// Frames handed to the interface.
    pub frames: u64,
    /// Wall time of the run.
    pub elapsed: Duration,
}

/// Placeholder constant of header word `i` in the generator program (bpf/bench_xdp.c).
fn placeholder(i: usize) -> u64 {
    0x5256_5342_3000_0000 + ((i as u64) << 24)
}

/// Number of 64-bit header words the generator writes.
const HEADER_WORDS: usize = 6;

/// Replaces the generator's placeholder constants (each loaded by one 16-byte `ld_imm64`
/// instruction: opcode 0x18, low half in the first slot's immediate, high half in the
/// second's) with the first 48 bytes of `frame` read as little-endian words.
pub fn patch_template(code: &[u8], frame: &[u8]) -> Result<Vec<u8>> {
    let mut patched = code.to_vec();
    for i in 0..HEADER_WORDS {
        let bytes = frame.get(i * 8..i * 8 + 8).context("frame shorter than 48 bytes")?;
        let word = u64::from_le_bytes(bytes.try_into().context("word")?);
        let magic = placeholder(i);
        let (lo, hi) = ((magic as u32).to_le_bytes(), ((magic >> 32) as u32).to_le_bytes());
        let mut found = 0;
        let mut at = 0;
        while at + 16 <= patched.len() {
            let is_ld_imm64 = patched.get(at) == Some(&0x18);
            if is_ld_imm64
                && patched.get(at + 4..at + 8) == Some(&lo[..])
                && patched.get(at + 12..at + 16) == Some(&hi[..])
            {
                if let Some(slot) = patched.get_mut(at + 4..at + 8) {
                    slot.copy_from_slice(&(word as u32).to_le_bytes());
                }
                if let Some(slot) = patched.get_mut(at + 12..at + 16) {
                    slot.copy_from_slice(&((word >> 32) as u32).to_le_bytes());
                }
                found += 1;
                at += 16;
            } else {
                at += 8;
            }
        }
        if found != 1 {
            bail!("generator program: placeholder {i} found {found} times, not once");
        }
    }
    Ok(patched)
}

/// The generator program, loaded with one frame template.
#[derive(Debug)]
pub struct Generator {
    prog: OwnedFd,
}

impl Generator {
    /// Loads the generator program with `frame`'s headers written into it.
    pub fn load(frame: &[u8]) -> Result<Generator> {
        if GEN_CODE.is_empty() {
            program("rvs_bench_gen", GEN_CODE)?;
        }
        Ok(Generator { prog: program("rvs_bench_gen", &patch_template(GEN_CODE, frame)?)? })
    }

    /// Whether the programs were built (clang was there at build time).
    pub fn available() -> Result<()> {
        program("rvs_bench_gen", GEN_CODE).map(drop)
    }

    /// Sends copies of `frame` out of interface `ifname` of namespace `netns` from a thread
    /// pinned to `cpu`, for `duration` or until `stop` is set.
    pub fn run(
        &self,
        netns: &str,
        ifname: &str,
        frame: &[u8],
        cpu: usize,
        duration: Duration,
        stop: &AtomicBool,
    ) -> Result<GeneratorRun> {
        let prog = self.prog.as_raw_fd();
        in_netns(netns, || {
            pin_current_thread(cpu)?;
            let index = ifindex(ifname)?;
            let start = Instant::now();
            let mut frames = 0u64;
            while start.elapsed() < duration && !stop.load(Ordering::Relaxed) {
                bpf_sys::run_live_frames(prog, frame, index, FRAMES_PER_CALL, BATCH)
                    .with_context(|| format!("BPF_PROG_RUN with live frames on {ifname}"))?;
                frames += u64::from(FRAMES_PER_CALL);
            }
            Ok(GeneratorRun { frames, elapsed: start.elapsed() })
        })
    }
}

/// The drop program attached to one interface (for the generator's ceiling); dropping
/// this value detaches it.
#[derive(Debug)]
pub struct XdpDrop {
    _link: OwnedFd,
}

impl XdpDrop {
    /// Attaches the drop program to interface `name` of namespace `netns`.
    pub fn attach(netns: &str, name: &str) -> Result<XdpDrop> {
        let prog = program("rvs_bench_drop", SINK_CODE)?;
        let fd = prog.as_raw_fd();
        let link = in_netns(netns, || {
            bpf_sys::attach_xdp(fd, ifindex(name)?).with_context(|| format!("attaching the XDP drop program to {name}"))
        })?;
        Ok(XdpDrop { _link: link })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ld_imm64(value: u64) -> Vec<u8> {
        let mut insn = vec![0x18, 0x01, 0, 0];
        insn.extend_from_slice(&(value as u32).to_le_bytes());
        insn.extend_from_slice(&[0, 0, 0, 0]);
        insn.extend_from_slice(&((value >> 32) as u32).to_le_bytes());
        insn
    }

    /// A program made of the six placeholder loads, each followed by an 8-byte store, gets
    /// the frame's words in place of the placeholders and nothing else changes.
    #[test]
    fn placeholders_are_replaced_by_the_frame_words() {
        let mut code = Vec::new();
        for i in 0..HEADER_WORDS {
            code.extend(ld_imm64(placeholder(i)));
            code.extend([0x7b, 0x16, 0, 0, 0, 0, 0, 0]);
        }
        let frame: Vec<u8> = (0u8..60).collect();
        let patched = patch_template(&code, &frame).unwrap();
        assert_eq!(patched.len(), code.len());
        for i in 0..HEADER_WORDS {
            let want = u64::from_le_bytes(frame[i * 8..i * 8 + 8].try_into().unwrap());
            assert_eq!(&patched[i * 24..i * 24 + 16], &ld_imm64(want)[..]);
            assert_eq!(&patched[i * 24 + 16..i * 24 + 24], &code[i * 24 + 16..i * 24 + 24]);
        }
    }

    #[test]
    fn a_missing_placeholder_is_an_error() {
        let code = ld_imm64(placeholder(0));
        assert!(patch_template(&code, &[0u8; 60]).is_err());
    }

    /// The compiled program (when clang was there) holds every placeholder exactly once.
    #[test]
    fn the_built_generator_can_be_patched() {
        if !GEN_CODE.is_empty() {
            let patched = patch_template(GEN_CODE, &[7u8; 60]).unwrap();
            assert_ne!(patched, GEN_CODE);
        }
    }
}
