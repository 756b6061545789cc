//! End-to-end: passive health checking. With NAT the director sees a dead real server answer
//! SYNs with RST; the data path reports it, health checking probes that server at once, and it
//! leaves the table long before its next active check would have run.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use rvs::lab::{LabRun, can_run_namespace_tests, real_server_address};
use rvs_api::{Request, Response};
use rvs_lab::Method;

/// Active checks every 30 s: only the passive path can eject a server within seconds.
const INTERVAL_SECS: u32 = 30;

fn weight_of(run: &LabRun, rs: IpAddr) -> Option<u32> {
    let Response::Table(t) = run.call(&Request::List).unwrap() else { panic!("no table") };
    t.services.iter().flat_map(|s| s.dests.iter()).find(|d| d.spec.addr == rs).map(|d| d.spec.weight)
}

#[test]
fn a_real_server_refusing_connections_is_checked_at_once_and_leaves_fast() {
    if !can_run_namespace_tests() {
        return;
    }
    let run = LabRun::start_configured(Method::Nat, |d| {
        let vip = d.vip.v4;
        let mut text = format!(
            "[[service]]\nvip = \"{vip}:80\"\nscheduler = \"rr\"\n\n[service.health]\ninterval = {INTERVAL_SECS}\n\
             timeout = 1\nfall = 1\nrise = 1\nwarmup = false\n\n[[service.health.check]]\ntype = \"tcp\"\n\n"
        );
        for i in 0..3 {
            let addr = real_server_address(d, i, true)?;
            text += &format!("[[service.real]]\naddress = \"{addr}:80\"\nmethod = \"nat\"\n\n");
        }
        Ok(text)
    })
    .unwrap();
    let vip = IpAddr::V4(run.description().vip.v4);
    let rs1: IpAddr = real_server_address(run.description(), 0, true).unwrap().parse().unwrap();
    assert_eq!(run.http(vip, 6).unwrap().len(), 6, "all three serve at first");
    assert_eq!(weight_of(&run, rs1), Some(1));

    // nginx on rs1 stops: its kernel answers SYNs with RST, through the director (NAT).
    run.lab().stop_http(0).unwrap();
    let stopped = Instant::now();
    let mut ejected = None;
    while stopped.elapsed() < Duration::from_secs(8) {
        let _ = run.http(vip, 6);
        if weight_of(&run, rs1) == Some(0) {
            ejected = Some(stopped.elapsed());
            break;
        }
    }
    let ejected = ejected
        .unwrap_or_else(|| panic!("rs1 not ejected within 8 s (active interval {INTERVAL_SECS} s)\n{}", run.log()));
    eprintln!("PASSIVE ejection {} ms after the HTTP server stopped", ejected.as_millis());
    assert!(ejected < Duration::from_secs(5), "passive signal ejects well before the {INTERVAL_SECS} s interval");
    let names = run.http(vip, 9).unwrap();
    assert_eq!(names.len(), 9, "the other two serve every request");
    assert!(!names.contains(&"rs1".to_string()));
}
