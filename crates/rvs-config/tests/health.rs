//! Health checking in the configuration as an operator writes it: `[service.health]` defaults
//! reach every real server, a real server's own checks replace them, typos and bad values are
//! refused at their line with their field, and the documented health example loads.

use std::net::SocketAddr;
use std::time::Duration;

use rvs_config::{Config, ConfigError, ErrorKind};
use rvs_health::CheckConfig;
use rvs_health::config::{OnDown, SorryMethod};

fn parse(src: &str) -> Result<Config, ConfigError> {
    Config::parse(src, "test.toml")
}

fn err(src: &str) -> ConfigError {
    parse(src).expect_err("the configuration should be refused")
}

fn assert_error(e: &ConfigError, kind: ErrorKind, line: usize, field: &str, message_part: &str) {
    assert_eq!(e.kind, kind, "{e}");
    assert_eq!(e.line, line, "{e}");
    assert_eq!(e.field, field, "{e}");
    assert!(e.message.contains(message_part), "{e}");
}

const CHECKED: &str = r#"
[health]
autoreload = true
maintenance_dir = "/run/rvs/maintenance"

[[service]]
vip = "198.18.100.1:80"

[service.health]
interval = 0.2
fall = 2
rise = 3
reentry = 5
on_down = "remove"
sorry_server = { addr = "198.18.0.2", port = 8080, method = "masq" }

[[service.health.check]]
type = "http"
path = "/health"
expect_body = "ok"

[[service.real]]
address = "198.18.2.21:80"

[[service.real]]
address = "198.18.2.22:80"

[[service.real.check]]
type = "tcp"

[[service.real.check]]
type = "ping"
"#;

#[test]
fn service_defaults_reach_every_real_server_and_own_checks_replace_them() {
    let c = parse(CHECKED).unwrap();
    assert!(c.health.settings.autoreload);
    assert_eq!(c.health.settings.maintenance_dir.as_deref(), Some(std::path::Path::new("/run/rvs/maintenance")));
    let svc = c.health.service(&c.services[0].spec.id).expect("the service is checked");
    assert_eq!(svc.policy.on_down, OnDown::Remove);
    let sorry = svc.policy.sorry_server.as_ref().unwrap();
    assert_eq!((sorry.port, sorry.method), (Some(8080), SorryMethod::Masq));
    assert_eq!(svc.reals.len(), 2);
    let first = &svc.reals[0];
    assert_eq!(first.real, "198.18.2.21:80".parse::<SocketAddr>().unwrap());
    let t = first.config.timing().unwrap();
    assert_eq!((t.interval, t.fall, t.rise, t.reentry), (Duration::from_millis(200), 2, 3, Duration::from_secs(5)));
    assert!(matches!(&first.config.checks[..], [CheckConfig::Http(h)] if h.path == "/health"));
    let second = &svc.reals[1];
    assert!(matches!(&second.config.checks[..], [CheckConfig::Tcp(_), CheckConfig::Ping(_)]));
    assert_eq!(second.config.timing().unwrap().rise, 3, "timing comes from the service block");
}

#[test]
fn a_service_without_health_is_not_checked_and_a_bare_block_means_tcp_connect() {
    let c = parse("[[service]]\nvip = \"198.18.100.1:80\"\n[[service.real]]\naddress = \"198.18.2.21\"\n").unwrap();
    assert!(c.health.services.is_empty());
    let c = parse(
        "[[service]]\nvip = \"198.18.100.1:80\"\n[service.health]\n[[service.real]]\naddress = \"198.18.2.21\"\n",
    )
    .unwrap();
    let svc = &c.health.services[0];
    // rvs-health's defaults: interval 2 s, fall 2, rise 2; quiesce; one TCP check.
    assert_eq!(svc.policy.on_down, OnDown::Quiesce);
    assert!(matches!(&svc.reals[0].config.checks[..], [CheckConfig::Tcp(_)]));
    assert_eq!(svc.reals[0].config.timing().unwrap().interval, Duration::from_secs(2));
}

#[test]
fn typos_in_health_tables_are_refused_at_their_line() {
    // Line 11 of CHECKED is `fall = 2` (the text starts with an empty line).
    let e = err(&CHECKED.replace("fall = 2", "fal = 2"));
    assert_error(&e, ErrorKind::UnknownField, 11, "service.health.fal", "unknown field `fal`");
    // A check's unknown key: the whole check is refused; the error points into its table.
    let e = err(&CHECKED.replace("expect_body = \"ok\"", "expect_bdy = \"ok\""));
    assert_eq!(e.kind, ErrorKind::UnknownField, "{e}");
    assert!(e.message.contains("expect_bdy"), "{e}");
    assert!((17..=20).contains(&e.line), "{e}");
    // An unknown check kind.
    let e = err(&CHECKED.replace("type = \"ping\"", "type = \"pong\""));
    assert!(e.message.contains("pong"), "{e}");
    assert!((31..=32).contains(&e.line), "{e}");
    let e = err("[health]\nautoreloads = true\n");
    assert_error(&e, ErrorKind::UnknownField, 2, "health.autoreloads", "unknown field");
}

#[test]
fn bad_health_values_are_refused_with_their_field() {
    let e = err(&CHECKED.replace("fall = 2", "fall = 0"));
    assert_error(&e, ErrorKind::InvalidValue, 11, "service[0].health.fall", "at least 1");
    let e = err(&CHECKED.replace("interval = 0.2", "interval = 0.001"));
    assert_error(&e, ErrorKind::InvalidValue, 10, "service[0].health.interval", "0.01");
    let e = err(&CHECKED.replace("path = \"/health\"", "path = \"health\""));
    assert_eq!((e.kind, e.field.as_str()), (ErrorKind::InvalidValue, "service[0].health.check[0].path"), "{e}");
    let e = err(&CHECKED.replace("type = \"tcp\"", "type = \"http\"\nexpect_regex = \"(\""));
    assert_eq!(e.field, "service[0].real[1].check[0].expect_regex", "{e}");
    let e = err(&CHECKED.replace("198.18.0.2\", port = 8080", "fd00::2\", port = 8080"));
    assert_eq!(e.field, "service[0].health.sorry_server", "{e}");
    let e = err(&CHECKED.replace("198.18.0.2\", port = 8080", "198.18.2.21\", port = 80"));
    assert_eq!((e.kind, e.field.as_str()), (ErrorKind::Conflict, "service[0].health.sorry_server"), "{e}");
    let e = err("[health]\nmaintenance_dir = \"relative\"\n");
    assert_error(&e, ErrorKind::InvalidValue, 2, "health.maintenance_dir", "absolute");
}

#[test]
fn fwmark_real_servers_need_a_check_port() {
    let src = "[[service]]\nfwmark = 1\n[service.health]\n[[service.real]]\naddress = \"198.18.2.21\"\n";
    let e = err(src);
    assert_eq!((e.kind, e.line), (ErrorKind::MissingField, 5), "{e}");
    assert_eq!(e.field, "service[0].real[0].port");
    let ok = format!("{src}[[service.real.check]]\ntype = \"http\"\nport = 80\n");
    assert!(parse(&ok).is_ok());
}

#[test]
fn the_documented_health_example_loads() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/config.md")).unwrap();
    let section = &doc[doc.find("## Health checking").unwrap()..];
    let start = section.find("```toml\n").unwrap() + "```toml\n".len();
    let len = section[start..].find("```").unwrap();
    let c = parse(&section[start..start + len]).unwrap();
    let svc = &c.health.services[0];
    assert!(matches!(&svc.reals[0].config.checks[..], [CheckConfig::Http(_)]));
    assert!(
        matches!(&svc.reals[1].config.checks[..], [CheckConfig::Tcp(t), CheckConfig::Ping(_)] if t.port == Some(8081))
    );
    assert!(c.health.settings.autoreload);
}
