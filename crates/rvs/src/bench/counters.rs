//! What the benchmark reads from the kernel: interface counters of a namespace (`ip -s -j
//! link`), per-CPU time from /proc/stat, a process's CPU time from /proc/<pid>/stat (all its
//! threads), and the per-CPU backlog drops of /proc/net/softnet_stat.

use std::collections::BTreeMap;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Receive counters of one interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkCounters {
    /// Frames received.
    pub rx_packets: u64,
    /// Frames dropped on receive.
    pub rx_dropped: u64,
    /// Frames sent.
    pub tx_packets: u64,
    /// Frames dropped on send.
    pub tx_dropped: u64,
}

/// Counters of every interface of namespace `netns`, by name.
pub fn links(netns: &str) -> Result<BTreeMap<String, LinkCounters>> {
    let out = Command::new("ip").args(["-n", netns, "-s", "-j", "link", "show"]).output().context("running ip")?;
    if !out.status.success() {
        bail!("ip -n {netns} -s -j link: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    parse_links(&String::from_utf8_lossy(&out.stdout))
}

/// Parses `ip -s -j link` output.
pub fn parse_links(json: &str) -> Result<BTreeMap<String, LinkCounters>> {
    let value: serde_json::Value = serde_json::from_str(json).context("ip -j output is not JSON")?;
    let mut all = BTreeMap::new();
    for link in value.as_array().context("ip -j output is not a list")? {
        let Some(name) = link.get("ifname").and_then(|n| n.as_str()) else { continue };
        let stat = |dir: &str, key: &str| {
            link.get("stats64").and_then(|s| s.get(dir)).and_then(|d| d.get(key)).and_then(|v| v.as_u64()).unwrap_or(0)
        };
        all.insert(
            name.to_owned(),
            LinkCounters {
                rx_packets: stat("rx", "packets"),
                rx_dropped: stat("rx", "dropped"),
                tx_packets: stat("tx", "packets"),
                tx_dropped: stat("tx", "dropped"),
            },
        );
    }
    Ok(all)
}

/// Clock ticks per second of /proc/stat and /proc/<pid>/stat (USER_HZ, 100 on Linux).
pub const USER_HZ: f64 = 100.0;

/// Time of one CPU by kind, in USER_HZ ticks (the columns of /proc/stat).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// user + nice.
    pub user: u64,
    /// system.
    pub system: u64,
    /// hardware interrupts.
    pub irq: u64,
    /// software interrupts (packet processing in the kernel's receive path).
    pub softirq: u64,
    /// idle + iowait.
    pub idle: u64,
}

impl CpuTimes {
    /// Everything but idle.
    pub fn busy(&self) -> u64 {
        self.user + self.system + self.irq + self.softirq
    }

    /// `self - earlier`, field by field (saturating).
    pub fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
            irq: self.irq.saturating_sub(earlier.irq),
            softirq: self.softirq.saturating_sub(earlier.softirq),
            idle: self.idle.saturating_sub(earlier.idle),
        }
    }
}

/// The times of CPU `cpu` from /proc/stat.
pub fn cpu_times(cpu: usize) -> Result<CpuTimes> {
    let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_cpu_times(&text, cpu).with_context(|| format!("no cpu{cpu} line in /proc/stat"))
}

/// Parses the `cpuN` line of /proc/stat text.
pub fn parse_cpu_times(text: &str, cpu: usize) -> Option<CpuTimes> {
    let label = format!("cpu{cpu}");
    let line = text.lines().find(|l| l.split_whitespace().next() == Some(label.as_str()))?;
    let f: Vec<u64> = line.split_whitespace().skip(1).map(|v| v.parse().unwrap_or(0)).collect();
    let at = |i: usize| f.get(i).copied().unwrap_or(0);
    Some(CpuTimes { user: at(0) + at(1), system: at(2), idle: at(3) + at(4), irq: at(5), softirq: at(6) })
}

/// User and system time of a process and all its threads, in USER_HZ ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessTicks {
    /// utime.
    pub user: u64,
    /// stime.
    pub system: u64,
}

impl ProcessTicks {
    /// user + system.
    pub fn total(&self) -> u64 {
        self.user + self.system
    }
}

/// User and system time of process `pid` and all its threads, in USER_HZ ticks.
pub fn process_ticks(pid: u32) -> Result<ProcessTicks> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("process {pid}"))?;
    parse_process_ticks(&text).with_context(|| format!("unexpected /proc/{pid}/stat"))
}

/// utime and stime (fields 14 and 15) of a /proc/<pid>/stat line; the command name (field
/// 2) may hold spaces and parentheses, so fields are counted after its last `)`.
pub fn parse_process_ticks(text: &str) -> Option<ProcessTicks> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command come field 3 (state) onwards: utime is field 14, index 11 here.
    let user = fields.get(11)?.parse().ok()?;
    let system = fields.get(12)?.parse().ok()?;
    Some(ProcessTicks { user, system })
}

/// One CPU's row of /proc/net/softnet_stat.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SoftnetCounters {
    /// Packets the CPU took from its receive backlog (first column).
    pub processed: u64,
    /// Packets it dropped because the backlog was full (second column).
    pub dropped: u64,
}

/// /proc/net/softnet_stat, one entry per CPU.
pub fn softnet() -> Result<Vec<SoftnetCounters>> {
    let text = std::fs::read_to_string("/proc/net/softnet_stat").context("reading /proc/net/softnet_stat")?;
    Ok(parse_softnet(&text))
}

/// Parses /proc/net/softnet_stat text (hexadecimal columns, one row per CPU).
pub fn parse_softnet(text: &str) -> Vec<SoftnetCounters> {
    let hex = |v: Option<&str>| v.and_then(|v| u64::from_str_radix(v, 16).ok()).unwrap_or(0);
    text.lines()
        .map(|l| {
            let mut f = l.split_whitespace();
            SoftnetCounters { processed: hex(f.next()), dropped: hex(f.next()) }
        })
        .collect()
}

/// Sum of the packet counts of every `counter` in `nft -j list ...` output.
pub fn parse_nft_counters(json: &str) -> Result<u64> {
    let value: serde_json::Value = serde_json::from_str(json).context("nft -j output is not JSON")?;
    let mut total = 0;
    let items = value.get("nftables").and_then(|v| v.as_array()).context("no nftables list")?;
    for item in items {
        let Some(exprs) = item.get("rule").and_then(|r| r.get("expr")).and_then(|e| e.as_array()) else { continue };
        for expr in exprs {
            total += expr.get("counter").and_then(|c| c.get("packets")).and_then(|p| p.as_u64()).unwrap_or(0);
        }
    }
    Ok(total)
}

/// Pids of running processes whose command line contains every one of `needles`.
pub fn find_processes(needles: &[&str]) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut pids = Vec::new();
    for entry in dir.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let line = String::from_utf8_lossy(&raw).replace('\0', " ");
        if needles.iter().all(|n| line.contains(n)) {
            pids.push(pid);
        }
    }
    pids
}

/// Pins every thread of process `pid` to CPU `cpu`.
pub fn pin_process(pid: u32, cpu: usize) -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu).context("cpu number")?;
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).with_context(|| format!("threads of {pid}"))?;
    for task in tasks.flatten() {
        if let Some(tid) = task.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) {
            nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(tid), &set)
                .with_context(|| format!("pinning thread {tid} of {pid}"))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_counters_come_from_stats64() {
        let json = r#"[{"ifname":"lo","stats64":{"rx":{"packets":5,"dropped":1},"tx":{"packets":7,"dropped":2}}},
                       {"ifname":"x"}]"#;
        let links = parse_links(json).unwrap();
        assert_eq!(links["lo"], LinkCounters { rx_packets: 5, rx_dropped: 1, tx_packets: 7, tx_dropped: 2 });
        assert_eq!(links["x"], LinkCounters::default());
    }

    #[test]
    fn cpu_line_columns_map_to_kinds() {
        // Columns: user nice system idle iowait irq softirq steal ...
        let text = "cpu  9 9 9 9 9 9 9 0\ncpu0 1 2 3 4 5 6 7 8\ncpu1 10 20 30 40 50 60 70 80 0 0\n";
        let t = parse_cpu_times(text, 1).unwrap();
        assert_eq!(t, CpuTimes { user: 30, system: 30, idle: 90, irq: 60, softirq: 70 });
        assert_eq!(t.busy(), 190);
        assert!(parse_cpu_times(text, 2).is_none());
    }

    #[test]
    fn process_ticks_skip_a_command_with_spaces_and_parentheses() {
        // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 10 0 0 0 123 45 0 0 20 0";
        assert_eq!(parse_process_ticks(line), Some(ProcessTicks { user: 123, system: 45 }));
    }

    #[test]
    fn softnet_rows_are_hex_processed_then_dropped() {
        let text = "0000a000 00000010 00000000\n0000b000 000000ff 00000001\n";
        assert_eq!(
            parse_softnet(text),
            vec![
                SoftnetCounters { processed: 0xa000, dropped: 16 },
                SoftnetCounters { processed: 0xb000, dropped: 255 }
            ]
        );
    }

    #[test]
    fn nft_counters_of_all_rules_are_summed() {
        let json = r#"{"nftables": [{"metainfo": {}}, {"table": {"name": "t"}},
            {"rule": {"expr": [{"match": {}}, {"counter": {"packets": 7, "bytes": 420}}, {"drop": null}]}},
            {"rule": {"expr": [{"counter": {"packets": 5, "bytes": 300}}]}}, {"rule": {"expr": []}}]}"#;
        assert_eq!(parse_nft_counters(json).unwrap(), 12);
    }
}
