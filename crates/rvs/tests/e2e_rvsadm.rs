//! End-to-end: the seeds' own ipvsadm command sequences, run with `rvsadm` against a live rvsd
//! directing a lab, and traffic follows every change.

use std::net::IpAddr;
use std::process::{Command, Stdio};

use rvs::lab::{LabRun, can_run_namespace_tests, sibling_binary};
use rvs_lab::{Method, Segment};

/// Runs `rvsadm ARGS` against the lab's rvsd (stdin from `input`); returns (exit code, stdout).
fn rvsadm(run: &LabRun, args: &str, input: Option<&str>) -> (i32, String) {
    let bin = sibling_binary("rvsadm").expect("rvsadm is built (cargo build -p rvsadm)");
    let mut child = Command::new(bin)
        .arg("--socket")
        .arg(run.socket())
        .args(args.split_whitespace())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(text) = input {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let code = out.status.code().unwrap_or(-1);
    assert!(
        code == 0 || args.starts_with("-L"),
        "rvsadm {args} exited {code}: {}{}",
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    (code, stdout)
}

fn rip(run: &LabRun, i: usize, v4: bool) -> String {
    let d = run.description();
    let seg = if d.spec.method == Method::Nat { Segment::Private } else { Segment::Lan };
    let a = d.real_servers[i].interface(seg).unwrap().addr;
    if v4 { a.v4.to_string() } else { format!("[{}]", a.v6) }
}

fn served(names: &[String]) -> std::collections::BTreeSet<String> {
    names.iter().cloned().collect()
}

#[test]
fn the_seeds_command_sequences_drive_real_traffic() {
    if !can_run_namespace_tests() {
        return;
    }
    for (method, flag, word) in
        [(Method::Dr, "-g", "Route"), (Method::Nat, "-m", "Masq"), (Method::Tun, "-i", "Tunnel")]
    {
        let run = LabRun::start(method, "rr").unwrap();
        let vip4 = run.description().vip.v4;
        let vip6 = run.description().vip.v6;
        let v4 = IpAddr::V4(vip4);

        // `ipvsadm -C`: nothing is served any more.
        rvsadm(&run, "-C", None);
        assert!(run.http(v4, 1).unwrap().is_empty(), "{method:?}: after -C nothing answers");

        // Seed 002/003: `-A -t VIP:80 -s wlc` then `-a -t VIP:80 -r RIP <method>`.
        rvsadm(&run, &format!("-A -t {vip4}:80 -s wlc"), None);
        for i in 0..3 {
            let r = rip(&run, i, true);
            let r = if method == Method::Nat { format!("{r}:80") } else { r };
            rvsadm(&run, &format!("-a -t {vip4}:80 -r {r} {flag}"), None);
        }
        let names = run.http(v4, 30).unwrap();
        assert_eq!(names.len(), 30, "{method:?}: every request answered");
        assert_eq!(served(&names).len(), 3, "{method:?}: wlc uses all three servers: {names:?}");

        let (_, list) = rvsadm(&run, "-L -n", None);
        assert!(list.starts_with("IP Virtual Server version 1.2.1 (size="), "{list}");
        assert!(list.contains(&format!("TCP  {vip4}:80 wlc")), "{list}");
        assert_eq!(list.matches(word).count(), 3, "three {word} servers listed:\n{list}");

        // `-L -n --rate` and `-L -n --stats` list the same service.
        let (_, rate) = rvsadm(&run, "-L -n --rate", None);
        assert!(rate.contains("CPS    InPPS   OutPPS    InBPS   OutBPS"), "{rate}");
        let (_, stats) = rvsadm(&run, "-Ln --stats", None);
        let line = stats.lines().find(|l| l.starts_with("TCP")).unwrap();
        let conns: u64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
        assert!(conns >= 30, "--stats counts the connections: {line}");

        // mon's lvs.alert: `-d -t VIP:80 -r RIP` pulls a server; traffic avoids it.
        let gone = rip(&run, 0, true);
        let gone_port = if method == Method::Nat { format!("{gone}:80") } else { gone.clone() };
        rvsadm(&run, &format!("-d -t {vip4}:80 -r {gone_port}"), None);
        let names = run.http(v4, 12).unwrap();
        assert_eq!(names.len(), 12);
        assert!(!names.contains(&"rs1".to_string()), "{method:?}: removed rs1 gets no new connection: {names:?}");

        // Seed 004: a persistent wrr service, `-A -t VIP:80 -s wrr -p 60`.
        rvsadm(&run, &format!("-D -t {vip4}:80"), None);
        rvsadm(&run, &format!("-A -t {vip4}:80 -s wrr -p 60"), None);
        for i in 0..3 {
            let r = rip(&run, i, true);
            let r = if method == Method::Nat { format!("{r}:80") } else { r };
            rvsadm(&run, &format!("-a -t {vip4}:80 -r {r} {flag} -w {}", i + 1), None);
        }
        let names = run.http(v4, 10).unwrap();
        assert_eq!(names.len(), 10);
        assert_eq!(served(&names).len(), 1, "{method:?}: persistence keeps the client on one server: {names:?}");
        let (_, conns) = rvsadm(&run, "-Lnc", None);
        assert!(conns.starts_with("IPVS connection entries\npro expire state"), "{conns}");
        assert!(conns.lines().any(|l| l.contains("NONE") && l.contains(":0 ")), "a template is listed:\n{conns}");

        // IPv6 with the bracket syntax.
        rvsadm(&run, &format!("-A -t [{vip6}]:80 -s rr"), None);
        for i in 0..3 {
            rvsadm(&run, &format!("-a -t [{vip6}]:80 -r {}:80 {flag}", rip(&run, i, false)), None);
        }
        assert_eq!(served(&run.http(IpAddr::V6(vip6), 9).unwrap()).len(), 3, "{method:?}: IPv6 rr");

        // -S, -C, -R: the saved rules come back and traffic follows them.
        let (_, saved) = rvsadm(&run, "-S -n", None);
        rvsadm(&run, "-C", None);
        assert!(run.http(v4, 1).unwrap().is_empty());
        rvsadm(&run, "-R", Some(&saved));
        let (_, again) = rvsadm(&run, "-S -n", None);
        assert_eq!(again, saved, "-R restores exactly what -S saved");
        assert_eq!(run.http(v4, 5).unwrap().len(), 5, "{method:?}: traffic flows after -R");

        // Listing a service that does not exist: ipvsadm's exit status 1.
        let (code, _) = rvsadm(&run, "-L -n -t 198.18.250.250:80", None);
        assert_eq!(code, 1);
        run.stop().unwrap();
    }
}
