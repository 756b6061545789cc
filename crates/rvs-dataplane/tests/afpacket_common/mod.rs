//! Shared helpers of the namespace tests: uniquely named namespaces removed on drop (also
//! while a failed assertion unwinds), veth pairs, commands inside a namespace, and the
//! skip-or-fail rule (with CI=true a test that cannot build namespaces fails; otherwise it
//! prints why and skips).
#![allow(dead_code)]

use std::time::Duration;

use rvs_lab::{RunId, cmd, netns};

/// Whether namespace tests can run here; panics under CI=true if not.
pub fn namespaces_available(test: &str, tools: &[&'static str]) -> bool {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    let mut problem =
        tools.iter().find(|tool| !cmd::tool_available(tool)).map(|tool| format!("{tool} is not installed"));
    if problem.is_none() {
        let probe = format!("{}-probe", RunId::random().as_str());
        match netns::create(&probe) {
            Ok(()) => {
                netns::delete_all(&[probe]);
            }
            Err(err) => problem = Some(format!("cannot create a network namespace: {err}")),
        }
    }
    match problem {
        None => true,
        Some(why) if ci => panic!("{test}: {why} (CI=true: namespace tests must run)"),
        Some(why) => {
            eprintln!("skipping {test}: {why}");
            false
        }
    }
}

/// Namespaces of one test, deleted on drop.
pub struct TestNet {
    pub run: String,
    names: Vec<String>,
}

impl TestNet {
    pub fn new() -> TestNet {
        TestNet { run: RunId::random().as_str().to_owned(), names: Vec::new() }
    }

    /// Creates namespace `<run>-<role>` and returns its name.
    pub fn netns(&mut self, role: &str) -> String {
        let name = format!("{}-{role}", self.run);
        netns::create(&name).unwrap_or_else(|e| panic!("creating {name}: {e}"));
        self.names.push(name.clone());
        name
    }

    /// Interface name `<run>-<suffix>` (at most 15 bytes).
    pub fn ifname(&self, suffix: &str) -> String {
        let name = format!("{}-{suffix}", self.run);
        assert!(name.len() <= 15, "{name} too long");
        name
    }

    /// A veth pair between two namespaces, both ends up, with fixed MACs.
    pub fn veth(&self, (ns_a, if_a, mac_a): (&str, &str, &str), (ns_b, if_b, mac_b): (&str, &str, &str)) {
        ip(&[
            "link", "add", if_a, "netns", ns_a, "address", mac_a, "type", "veth", "peer", "name", if_b, "netns", ns_b,
            "address", mac_b,
        ]);
        ip(&["-n", ns_a, "link", "set", if_a, "up"]);
        ip(&["-n", ns_b, "link", "set", if_b, "up"]);
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for (name, why) in netns::delete_all(&self.names) {
            eprintln!("could not delete netns {name}: {why}");
        }
    }
}

/// Runs `ip args...` and panics with its stderr on failure.
pub fn ip(args: &[&str]) -> String {
    cmd::run("ip", args).unwrap_or_else(|e| panic!("{e}"))
}

/// Runs a program inside a namespace; returns (success, stdout + stderr).
pub fn exec(ns: &str, program: &str, args: &[&str]) -> (bool, String) {
    let out = netns::exec(ns, program, args, Duration::from_secs(20)).unwrap_or_else(|e| panic!("{e}"));
    (out.status.success(), format!("{}{}", out.stdout, out.stderr))
}

/// Runs `work` on a thread inside namespace `ns` and returns its result.
pub fn in_ns<T: Send>(ns: &str, work: impl FnOnce() -> T + Send) -> T {
    netns::run_in(ns, || Ok(work())).unwrap_or_else(|e| panic!("{e}"))
}

/// Spawns a thread inside `ns` (for work that must overlap with the caller's).
pub fn spawn_in_ns<T: Send + 'static>(
    ns: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> std::thread::JoinHandle<T> {
    let ns = ns.to_owned();
    std::thread::spawn(move || {
        netns::enter(&ns).unwrap_or_else(|e| panic!("{e}"));
        work()
    })
}
