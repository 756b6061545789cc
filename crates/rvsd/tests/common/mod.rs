//! Shared helpers of the rvsd integration tests: private temporary directories, the test
//! configuration, admin-socket calls, bounded waiting.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rvs_api::client::Client;
use rvs_api::{Request, Response, Table};

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rvsd-test-{}-{n}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn config(&self) -> PathBuf {
        self.0.join("rvs.toml")
    }

    pub fn socket(&self) -> PathBuf {
        self.0.join("rvsd.sock")
    }

    pub fn write_config(&self, text: &str) -> PathBuf {
        let p = self.config();
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Two services: a DR web service with two real servers, a NAT UDP service with one.
pub const CONFIG: &str = r#"
[[service]]
vip = "198.18.100.1:80"
scheduler = "wlc"

[[service.real]]
address = "198.18.2.21:80"
weight = 1

[[service.real]]
address = "198.18.2.22:80"
weight = 1

[[service]]
vip = "198.18.100.2:53"
protocol = "udp"
scheduler = "rr"

[[service.real]]
address = "198.18.2.31:5353"
method = "nat"

[timeouts]
udp = 60
"#;

pub fn call(socket: &Path, request: &Request) -> Response {
    Client::connect(socket).unwrap().call(request).unwrap()
}

pub fn list(socket: &Path) -> Table {
    match call(socket, &Request::List) {
        Response::Table(t) => t,
        other => panic!("expected a table, got {other:?}"),
    }
}

/// Polls `f` every 20 ms for at most 10 s.
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..500 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting for {what}");
}
