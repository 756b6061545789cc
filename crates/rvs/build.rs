//! Build script of the `rvs` crate: compiles the XDP programs of `rvs bench` (bpf/bench_xdp.c)
//! with clang and copies each program's instructions out of the ELF object into OUT_DIR
//! (`xdp_gen.bin`, `xdp_sink.bin`), which src/bench/xdp.rs includes.
//!
//! Without clang the build still succeeds: the files are left empty and `rvs bench` says at
//! run time that the packet generator was not built (scripts/install-deps.sh installs clang).

use std::path::{Path, PathBuf};
use std::process::Command;

const SOURCE: &str = "bpf/bench_xdp.c";
const SECTIONS: [&str; 2] = ["xdp_gen", "xdp_sink"];

fn main() {
    println!("cargo:rerun-if-changed={SOURCE}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RVS_CLANG");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    let result = compile(&out).and_then(|object| {
        for name in SECTIONS {
            let code = elf_section(&object, name)?;
            if code.is_empty() || !code.len().is_multiple_of(8) {
                return Err(format!("section {name} has {} bytes, not a whole number of instructions", code.len()));
            }
            std::fs::write(out.join(format!("{name}.bin")), code).map_err(|e| e.to_string())?;
        }
        Ok(())
    });
    if let Err(why) = result {
        println!("cargo:warning=rvs bench: XDP programs not built ({why}); install clang (scripts/install-deps.sh)");
        for name in SECTIONS {
            let _ = std::fs::write(out.join(format!("{name}.bin")), []);
        }
    }
}

fn compile(out: &Path) -> Result<Vec<u8>, String> {
    let clang = std::env::var("RVS_CLANG").unwrap_or_else(|_| "clang".into());
    let object = out.join("bench_xdp.o");
    let status = Command::new(&clang)
        .args(["-O2", "-g0", "-target", "bpf", "-Wall", "-Werror", "-c", SOURCE, "-o"])
        .arg(&object)
        .status()
        .map_err(|e| format!("running {clang}: {e}"))?;
    if !status.success() {
        return Err(format!("{clang} failed on {SOURCE} ({status})"));
    }
    std::fs::read(&object).map_err(|e| format!("reading {}: {e}", object.display()))
}

fn u16_at(b: &[u8], at: usize) -> Result<usize, String> {
    b.get(at..at + 2).map(|s| usize::from(u16::from_le_bytes([s[0], s[1]]))).ok_or("ELF truncated".into())
}

fn u32_at(b: &[u8], at: usize) -> Result<usize, String> {
    let s = b.get(at..at + 4).ok_or("ELF truncated")?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
}

fn u64_at(b: &[u8], at: usize) -> Result<usize, String> {
    let s = b.get(at..at + 8).ok_or("ELF truncated")?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    usize::try_from(u64::from_le_bytes(a)).map_err(|e| e.to_string())
}

/// The bytes of section `name` of a little-endian ELF64 object. Fails if a relocation
/// section refers to it: the loader does no relocation.
fn elf_section(elf: &[u8], name: &str) -> Result<Vec<u8>, String> {
    if elf.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        return Err("not a little-endian ELF64 object".into());
    }
    let shoff = u64_at(elf, 0x28)?;
    let shentsize = u16_at(elf, 0x3a)?;
    let shnum = u16_at(elf, 0x3c)?;
    let shstrndx = u16_at(elf, 0x3e)?;
    let header = |i: usize| shoff + i * shentsize;
    let strtab = u64_at(elf, header(shstrndx) + 0x18)?;
    let name_of = |i: usize| -> Result<String, String> {
        let start = strtab + u32_at(elf, header(i))?;
        let rest = elf.get(start..).ok_or("ELF truncated")?;
        let end = rest.iter().position(|&c| c == 0).ok_or("unterminated section name")?;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    };
    let mut found = None;
    for i in 0..shnum {
        let n = name_of(i)?;
        if n == format!(".rel{name}") || n == format!(".rela{name}") {
            return Err(format!("section {name} needs relocations ({n})"));
        }
        if n == name {
            let offset = u64_at(elf, header(i) + 0x18)?;
            let size = u64_at(elf, header(i) + 0x20)?;
            found = Some(elf.get(offset..offset + size).ok_or("ELF truncated")?.to_vec());
        }
    }
    found.ok_or(format!("no section {name}"))
}
