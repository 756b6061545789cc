//! `rvs import` as an operator runs it: TOML on stdout that loads, warnings on stderr, a clear
//! failure for a file it cannot convert.

use std::process::Command;

use rvs::lab::sibling_binary;

fn fixture(name: &str) -> String {
    format!("{}/../rvs-config/tests/fixtures/import/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn import_prints_loadable_toml_and_warns_on_stderr() {
    let rvs = sibling_binary("rvs").unwrap();
    for (format, file) in [
        ("ldirectord", "ldirectord-seed003.cf"),
        ("piranha", "piranha-seed000-lvs.cf"),
        ("keepalived", "keepalived-example.conf"),
    ] {
        let out = Command::new(&rvs).args(["import", format, &fixture(file)]).output().unwrap();
        assert!(out.status.success(), "{format}: {}", String::from_utf8_lossy(&out.stderr));
        let toml = String::from_utf8(out.stdout).unwrap();
        let config = rvs_config::Config::parse(&toml, file).unwrap_or_else(|e| panic!("{e}\n{toml}"));
        assert!(!config.services.is_empty());
        assert!(!config.health.services.is_empty(), "{format}: the checks are carried over");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.lines().all(|l| l.starts_with("warning: ")), "{stderr}");
        assert!(!stderr.is_empty(), "{format}: every fixture has something to drop");
    }
    let bad =
        Command::new(&rvs).args(["import", "ldirectord", &fixture("ldirectord-seed002-web.cf.raw")]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains(":9: `xxx.xxx.xxx.70' is not an IP address"));
    let usage = Command::new(&rvs).args(["import", "nanny"]).output().unwrap();
    assert_eq!(usage.status.code(), Some(2));
}
