//! Available memory for the DoS defences: `MemAvailable` from `/proc/meminfo`, in 4 KiB
//! pages (what the kernel's `amemthresh` is measured in).

/// Page size the defences count in.
const PAGE_BYTES: u64 = 4096;

/// Available pages now, or `None` if `/proc/meminfo` cannot be read or has no
/// `MemAvailable` line.
pub fn available_pages() -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo").ok().as_deref().and_then(parse_available_pages)
}

/// Available pages from the text of `/proc/meminfo` (`MemAvailable:  123456 kB`).
pub fn parse_available_pages(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let mut words = line.split_whitespace().skip(1);
    let value: u64 = words.next()?.parse().ok()?;
    let bytes = match words.next() {
        Some("kB") => value.checked_mul(1024)?,
        None => value,
        Some(_) => return None,
    };
    Some(bytes / PAGE_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_available_in_kib_becomes_4k_pages() {
        let text = "MemTotal:       16318480 kB\nMemFree:         1000000 kB\nMemAvailable:    8000004 kB\n";
        // 8000004 KiB * 1024 / 4096 = 2000001 pages.
        assert_eq!(parse_available_pages(text), Some(2_000_001));
        assert_eq!(parse_available_pages("MemTotal: 1 kB\n"), None);
        assert_eq!(parse_available_pages("MemAvailable: lots\n"), None);
        assert_eq!(parse_available_pages("MemAvailable: 8 MB\n"), None);
    }
}
