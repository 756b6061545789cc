//! Smoke test of `rvs bench --quick`: the whole benchmark in its short form, as root, in
//! network namespaces. It checks that the run succeeds and prints the table with every row
//! (each figure for each system, failover and ejection included) and a ratio column; the
//! figures themselves are not judged (timing is not tested). With CI=true, a machine that cannot
//! create namespaces fails the test instead of skipping it.

use std::process::Command;

/// The rvs binary of this build (rvsd must be built next to it: `cargo build -p rvsd`).
fn rvs() -> Command {
    Command::new(env!("CARGO_BIN_EXE_rvs"))
}

#[test]
fn quick_bench_prints_every_row_with_baseline_and_ratio() {
    if !rvs::lab::can_run_namespace_tests() {
        return;
    }
    let out = rvs().args(["bench", "--quick"]).output().expect("running rvs bench --quick");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "rvs bench --quick failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);

    let header = stdout.lines().find(|l| l.starts_with("figure")).expect("a table header");
    for column in ["system", "value", "baseline", "ratio"] {
        assert!(header.contains(column), "header lacks {column}: {header}");
    }
    assert!(stdout.contains("machine: ") && stdout.contains("Linux "), "machine and kernel line:\n{stdout}");

    // Every figure row: (figure label, systems measured for it).
    let packets = ["kernel forwarding", "nftables DNAT", "rvs DR", "rvs NAT", "rvs TUN"];
    let tcp = ["kernel forwarding", "nftables DNAT", "HAProxy (TCP mode)", "rvs NAT", "rvs DR"];
    let figures: [(&str, &[&str]); 10] = [
        ("forwarded Mpps", &packets),
        ("offered Mpps", &packets),
        ("dropped %", &packets),
        ("director CPU ns/pkt", &packets),
        ("new connections/s", &tcp),
        ("new conn p50 ms", &tcp),
        ("new conn p99 ms", &tcp),
        ("keep-alive requests/s", &tcp),
        ("keep-alive p50 ms", &tcp),
        ("keep-alive p99 ms", &tcp),
    ];
    let lines: Vec<&str> = stdout.lines().collect();
    for (figure, systems) in figures {
        let start = lines.iter().position(|l| l.starts_with(figure)).unwrap_or_else(|| panic!("no {figure} row"));
        for (i, system) in systems.iter().enumerate() {
            let line = lines.get(start + i).unwrap_or_else(|| panic!("{figure}: row {i} missing"));
            assert!(line.contains(system), "{figure}: expected {system} in {line:?}");
            // value, baseline and ratio: the last three columns are numbers.
            let numbers =
                line.split_whitespace().rev().take(3).filter(|w| w.trim_end_matches('*').parse::<f64>().is_ok());
            assert_eq!(numbers.count(), 3, "{figure} / {system}: value, baseline and ratio in {line:?}");
        }
        // The baseline row's ratio is 1.
        assert!(lines[start].trim_end().ends_with("1.00"), "{figure}: baseline ratio in {:?}", lines[start]);
    }
    // Failover and ejection: (figure, systems with a number in the quick run, whether the
    // figure is a time with a nonzero baseline, so that its ratio is a number too). The quick
    // run leaves out keepalived with 1 s adverts; counts may be 0 for the baseline (no ratio).
    let failover = ["keepalived, 0.1 s adverts", "rvs, 10 ms adverts"];
    let ejection = ["keepalived (computed)", "rvs active, 200 ms x 2", "rvs passive, NAT"];
    let ha: [(&str, &[&str], bool); 7] = [
        ("failover ms, kill -9", &failover, true),
        ("UDP probes lost, kill -9", &failover, false),
        ("TCP conns failed, kill -9", &failover, false),
        ("failover ms, SIGTERM", &failover, true),
        ("UDP probes lost, SIGTERM", &failover, false),
        ("TCP conns failed, SIGTERM", &failover, false),
        ("real-server ejection ms", &ejection, true),
    ];
    for (figure, systems, timed) in ha {
        let start = lines.iter().position(|l| l.starts_with(figure)).unwrap_or_else(|| panic!("no {figure} row"));
        for (i, system) in systems.iter().enumerate() {
            let line = lines.get(start + i).unwrap_or_else(|| panic!("{figure}: row {i} missing"));
            assert!(line.contains(system), "{figure}: expected {system} in {line:?}");
            let columns: Vec<&str> = line.split_whitespace().rev().take(3).collect();
            let wanted = if timed { 3 } else { 2 };
            let numbers = columns.iter().take(3).filter(|w| w.parse::<f64>().is_ok()).count();
            assert!(numbers >= wanted, "{figure} / {system}: value and baseline (and ratio) in {line:?}");
        }
        if timed {
            assert!(lines[start].trim_end().ends_with("1.00"), "{figure}: baseline ratio in {:?}", lines[start]);
        }
    }
    assert!(!stdout.contains("FAILED"), "a measurement failed:\n{stdout}");
}
