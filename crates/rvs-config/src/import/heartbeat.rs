//! heartbeat v1 -> rvs: `ha.cf` (timing, media, auto_failback, ping nodes), `haresources`
//! (the preferred node, its IP addresses and resource scripts) and `authkeys` (the active key).
//!
//! Mapping: one VRRPv3 instance (VRID 1) on the heartbeat interface. The preferred node of
//! `haresources` gets priority 150, any other node 100. `keepalive` becomes the advert interval
//! and `deadtime / keepalive` the down-timer multiplier; `auto_failback off` (or `nice_failback
//! on`) is `preempt = false`; `ucast` peers become `unicast_peers`; `ping` / `ping_group`
//! nodes become ping trackers of weight 0 (a director that cannot reach them gives the
//! addresses up, as ipfail does); `sha1`/`md5` keys become the rvs HMAC key; resource scripts
//! become notify commands (`script start` on master, `script stop` on backup).

use super::{Import, hex_key, quote, secs};

/// heartbeat's defaults (config.c): keepalive 1 s, deadtime 30 s.
const DEFAULT_KEEPALIVE_MS: u64 = 1000;
const DEFAULT_DEADTIME_MS: u64 = 30_000;

/// `2`, `2s`, `500ms` -> milliseconds.
fn duration_ms(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Some(ms) = t.strip_suffix("ms") {
        return ms.trim().parse().ok();
    }
    let s = t.strip_suffix('s').unwrap_or(t);
    s.trim().parse::<f64>().ok().filter(|v| *v >= 0.0).map(|v| (v * 1000.0).round() as u64)
}

/// One haresources line's pieces.
#[derive(Debug, Default)]
struct Resources {
    node: String,
    addrs: Vec<(String, Option<String>)>,
    scripts: Vec<String>,
}

fn parse_resources(text: &str, file: &str, unmapped: &mut Vec<String>) -> Option<Resources> {
    // Lines end with `\` to continue.
    let joined = text.replace("\\\n", " ");
    let mut out: Option<Resources> = None;
    for (n, line) in joined.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        if out.is_some() {
            unmapped.push(format!("{file}:{}: second resource group: only the first is imported", n + 1));
            continue;
        }
        let mut words = line.split_whitespace();
        let mut r = Resources { node: words.next().unwrap_or_default().to_string(), ..Resources::default() };
        for w in words {
            let (kind, args) = match w.split_once("::") {
                Some((k, a)) => (k, a),
                None => ("", w),
            };
            match kind {
                "" | "IPaddr" | "IPaddr2" if args.parse::<std::net::IpAddr>().is_ok() || args.contains('/') => {
                    // IP[/bits[/iface[/bcast]]]
                    let mut p = args.split('/');
                    let ip = p.next().unwrap_or_default();
                    let bits = p.next();
                    let iface = p.next().map(String::from);
                    let addr = match bits {
                        Some(b) => format!("{ip}/{b}"),
                        None => {
                            unmapped.push(format!(
                                "{file}:{}: {w}: no prefix length (heartbeat took it from the interface's route); /24 assumed",
                                n + 1
                            ));
                            format!("{ip}/24")
                        }
                    };
                    r.addrs.push((addr, iface));
                }
                "ldirectord" => unmapped.push(format!(
                    "{file}:{}: {w}: ldirectord's services and checks are rvs [[service]] tables; convert ldirectord.cf separately",
                    n + 1
                )),
                _ => {
                    let script = w.split("::").collect::<Vec<_>>().join(" ");
                    r.scripts.push(script);
                }
            }
        }
        out = Some(r);
    }
    out
}

/// Imports `ha.cf`, `haresources` and `authkeys` (contents and names, for messages) for the
/// director `node` (None: the preferred node of haresources).
pub fn import(
    ha_cf: (&str, &str),
    haresources: (&str, &str),
    authkeys: Option<(&str, &str)>,
    node: Option<&str>,
) -> Import {
    let mut unmapped = Vec::new();
    let (hafile, hatext) = ha_cf;
    let mut keepalive = DEFAULT_KEEPALIVE_MS;
    let mut deadtime = DEFAULT_DEADTIME_MS;
    let mut interface: Option<String> = None;
    let mut peers = Vec::new();
    let mut preempt = true;
    let mut pings = Vec::new();
    for (n, raw) in hatext.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        let mut words = line.split_whitespace();
        let Some(directive) = words.next() else { continue };
        let args: Vec<&str> = words.collect();
        let at = format!("{hafile}:{}: {directive}", n + 1);
        match directive {
            "keepalive" => match args.first().and_then(|a| duration_ms(a)) {
                Some(ms) => keepalive = ms,
                None => unmapped.push(format!("{at}: unreadable duration")),
            },
            "deadtime" => match args.first().and_then(|a| duration_ms(a)) {
                Some(ms) => deadtime = ms,
                None => unmapped.push(format!("{at}: unreadable duration")),
            },
            "bcast" | "mcast" | "ucast" => {
                if let Some(dev) = args.first() {
                    if interface.as_deref().is_some_and(|i| i != *dev) {
                        unmapped.push(format!("{at}: a second interface ({dev}): VRRP runs on the first one only"));
                    } else {
                        interface = Some((*dev).to_string());
                    }
                }
                match directive {
                    "ucast" => peers.extend(args.get(1).map(|p| (*p).to_string())),
                    "mcast" => unmapped.push(format!(
                        "{at}: heartbeat's group and port do not apply; VRRP uses 224.0.0.18 (protocol 112)"
                    )),
                    _ => {}
                }
            }
            "auto_failback" => match args.first().copied() {
                Some("on") => preempt = true,
                Some("off") => preempt = false,
                Some("legacy") => {
                    preempt = true;
                    unmapped.push(format!("{at}: legacy behaves as on here (preempt)"));
                }
                _ => unmapped.push(format!("{at}: expected on, off or legacy")),
            },
            "nice_failback" => preempt = args.first() != Some(&"on"),
            "ping" => pings.extend(args.iter().map(|a| (*a).to_string())),
            "ping_group" => pings.extend(args.iter().skip(1).map(|a| (*a).to_string())),
            "node" | "udpport" | "warntime" | "initdead" | "logfacility" | "logfile" | "debugfile" | "use_logd"
            | "debug" => {
                if matches!(directive, "warntime" | "initdead" | "udpport") {
                    unmapped.push(format!("{at}: no VRRP equivalent (ignored)"));
                }
            }
            "respawn" if args.iter().any(|a| a.ends_with("ipfail")) => {
                // ipfail's job is done by the ping trackers.
            }
            "apiauth" if args.first() == Some(&"ipfail") => {}
            _ => unmapped.push(format!("{at}: not mapped")),
        }
    }
    let (rfile, rtext) = haresources;
    let resources = parse_resources(rtext, rfile, &mut unmapped).unwrap_or_default();
    if resources.addrs.is_empty() {
        unmapped.push(format!("{rfile}: no IP address resource: the instance has no virtual addresses"));
    }
    let interface = interface.or_else(|| resources.addrs.iter().find_map(|(_, i)| i.clone())).unwrap_or_else(|| {
        unmapped.push(format!("{hafile}: no bcast/mcast/ucast interface: eth0 assumed"));
        "eth0".to_string()
    });
    let priority = match node {
        Some(n) if n != resources.node => 100,
        _ => 150,
    };
    // Advert interval: keepalive, in centiseconds (at least 0.01 s, at most 40.95 s).
    let interval_ms = (keepalive.clamp(10, 40_950) / 10) * 10;
    if interval_ms != keepalive {
        unmapped.push(format!("{hafile}: keepalive {keepalive} ms rounded to {interval_ms} ms"));
    }
    let adverts = deadtime.div_ceil(interval_ms.max(1)).clamp(1, 100);

    let mut t = String::new();
    t.push_str(&format!(
        "# Imported from heartbeat ({hafile}, {rfile}). Priority: 150 on the preferred node ({}), 100 elsewhere.\n",
        resources.node
    ));
    t.push_str("[[vrrp]]\nname = \"heartbeat\"\n");
    t.push_str(&format!("interface = {}\nvrid = 1\npriority = {priority}\nversion = 3\n", quote(&interface)));
    t.push_str(&format!("advert_interval = {}\ndown_timer_adverts = {adverts}\n", secs(interval_ms)));
    t.push_str(&format!("preempt = {preempt}\n"));
    let addrs: Vec<String> = resources
        .addrs
        .iter()
        .map(|(a, dev)| match dev {
            Some(d) if *d != interface => quote(&format!("{a} dev {d}")),
            _ => quote(a),
        })
        .collect();
    t.push_str(&format!("virtual_addresses = [{}]\n", addrs.join(", ")));
    if !peers.is_empty() {
        let p: Vec<String> = peers.iter().map(|p| quote(p)).collect();
        t.push_str(&format!("unicast_peers = [{}]\n", p.join(", ")));
    }
    if let Some((kfile, ktext)) = authkeys {
        t.push_str(&auth(kfile, ktext, &mut unmapped));
    }
    if !resources.scripts.is_empty() {
        let start: Vec<String> = resources.scripts.iter().map(|s| format!("{s} start")).collect();
        let stop: Vec<String> = resources.scripts.iter().rev().map(|s| format!("{s} stop")).collect();
        t.push_str(&format!(
            "[vrrp.notify]\nmaster = {}\nbackup = {}\nfault = {}\nstop = {}\n",
            quote(&start.join(" && ")),
            quote(&stop.join("; ")),
            quote(&stop.join("; ")),
            quote(&stop.join("; "))
        ));
    }
    for p in &pings {
        t.push_str(&format!(
            "[[vrrp.track_ping]]\ntarget = {}\ninterval = {}\nfall = 3\nweight = 0\n",
            quote(p),
            secs(keepalive.max(10))
        ));
    }
    Import { toml: t, unmapped }
}

/// `auth N` + `N sha1|md5|crc KEY` -> an `auth = {...}` line.
fn auth(file: &str, text: &str, unmapped: &mut Vec<String>) -> String {
    let mut active = None;
    let mut keys = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let w: Vec<&str> = line.split_whitespace().collect();
        match w.as_slice() {
            ["auth", n] => active = n.parse::<u8>().ok(),
            [n, method, key @ ..] => {
                if let Ok(id) = n.parse::<u8>() {
                    keys.push((id, method.to_ascii_lowercase(), key.join(" ")));
                }
            }
            _ => {}
        }
    }
    let Some((id, method, key)) = keys.iter().find(|(id, _, _)| Some(*id) == active).cloned() else {
        unmapped.push(format!("{file}: no active key (`auth N` with a matching `N method key` line)"));
        return String::new();
    };
    match method.as_str() {
        "sha1" | "md5" if key.len() >= 16 => format!(
            "auth = {{ type = \"hmac\", key_id = {id}, key = {} }}  # heartbeat {method} key, now HMAC-SHA256\n",
            quote(&hex_key(key.as_bytes()))
        ),
        "sha1" | "md5" => {
            unmapped.push(format!(
                "{file}: key {id} has {} bytes; the rvs HMAC needs 16 or more: add auth = {{ type = \"hmac\", key = ... }} by hand",
                key.len()
            ));
            String::new()
        }
        _ => {
            unmapped.push(format!("{file}: {method} is an integrity check, not authentication: adverts are unsigned"));
            String::new()
        }
    }
}
