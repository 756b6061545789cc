//! Helpers shared by the namespace tests: the root/CI gate, HTTP and UDP
//! requests from the client namespace, and the "nothing left behind" check.

#![allow(dead_code)]

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

use rvs_lab::{Lab, LabDescription, RunId, netns};

/// Whether namespace tests can run. Not root: with CI=true that is a
/// failure (the tests must never pass by skipping there); otherwise the test
/// is skipped with a printed reason.
pub fn namespaces_available(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("{test}: needs root to create network namespaces, and CI=true forbids skipping");
    }
    // Written past libtest's output capture so the reason is always shown.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: not root, cannot create network namespaces");
    false
}

/// GET `http://addr:port/` from the client namespace with curl; the body.
pub fn curl(lab: &Lab, addr: IpAddr, port: u16) -> String {
    let url = match addr {
        IpAddr::V4(a) => format!("http://{a}:{port}/"),
        IpAddr::V6(a) => format!("http://[{a}]:{port}/"),
    };
    let client = &lab.description().client.netns;
    let output =
        lab.exec(client, "curl", &["-sS", "-g", "--max-time", "5", &url], Duration::from_secs(10)).expect("curl runs");
    assert!(output.status.success(), "curl {url} failed: {}", output.stderr);
    output.stdout
}

/// Sends one UDP datagram from the client namespace to `addr:port` and
/// returns the reply text and the address it came from.
pub fn udp_query(lab: &Lab, addr: IpAddr, port: u16) -> (String, SocketAddr) {
    let client = lab.description().client.netns.clone();
    netns::run_in(&client, || {
        let local: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
        let socket = UdpSocket::bind(local).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        let target = SocketAddr::new(addr, port);
        let mut buffer = [0u8; 512];
        // UDP may lose the first datagram; retry a few times (bounded).
        for _ in 0..3 {
            socket.send_to(b"who?", target).unwrap();
            if let Ok((count, from)) = socket.recv_from(&mut buffer) {
                return Ok((String::from_utf8_lossy(&buffer[..count]).into_owned(), from));
            }
        }
        panic!("no UDP answer from {target}");
    })
    .expect("entering the client namespace")
}

/// Namespaces on the machine that belong to `run`.
pub fn namespaces_of(run: &RunId) -> Vec<String> {
    let prefix = format!("{run}-");
    netns::list().unwrap().into_iter().filter(|name| name.starts_with(&prefix)).collect()
}

/// Asserts that nothing of run `run` is left: no namespace, no interface in
/// the host namespace, no state file, no work directory.
pub fn assert_nothing_left(run: &RunId) {
    assert_eq!(namespaces_of(run), Vec::<String>::new(), "namespaces of {run} left behind");
    let links = rvs_lab::cmd::run("ip", &["-o", "link", "show"]).unwrap();
    assert!(!links.contains(run.as_str()), "interfaces of {run} in the host namespace:\n{links}");
    assert!(!Path::new(&format!("/run/rvs-lab/{run}.state")).exists(), "state file of {run} left behind");
    assert!(!Path::new(&format!("/tmp/rvs-lab-{run}")).exists(), "work directory of {run} left behind");
}

/// Checks every real server over HTTP and UDP, IPv4 and IPv6, at its own
/// address: each must answer with its own name.
pub fn assert_real_servers_answer(lab: &Lab) {
    let description: &LabDescription = lab.description();
    for rs in &description.real_servers {
        let expected = format!("{}\n", rs.name);
        let rip = rs.addr().expect("real server has an address");
        for addr in rip.both() {
            assert_eq!(curl(lab, addr, description.http_port), expected, "HTTP to {} at {addr}", rs.name);
            let (reply, from) = udp_query(lab, addr, description.udp_port);
            assert_eq!(reply, expected, "UDP to {} at {addr}", rs.name);
            assert_eq!(from, SocketAddr::new(addr, description.udp_port), "UDP reply source");
        }
    }
}
