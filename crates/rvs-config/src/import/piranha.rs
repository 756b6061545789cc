//! piranha's lvs.cf: global `key = value` lines, `virtual NAME { ... }` blocks with nested
//! `server NAME { ... }` blocks, and `failover NAME { ... }` blocks (not LVS: dropped).
//! Defaults are piranha's: port 80, scheduler wlc, timeout 10 s before a dead server is
//! removed, reentry 180 s, removal (not quiesce) unless `quiesce_server = 1`; the forwarding
//! method is the global `network`.
//!
//! nanny checks every `keepalive` seconds (the global; 2 s when absent here) and removes a
//! server `timeout` seconds after it stopped answering, so the import sets the rvs interval to
//! `keepalive` and `fall` to the number of failed rounds that fit in `timeout`.

use super::{Ctx, Doc, ImportError, Real, Svc, Table, host_port, num, parse_ip, q, q_list, unquote};

#[derive(Debug, Default)]
struct Block {
    kind: String,
    name: String,
    line: usize,
    settings: Vec<(String, String, usize)>,
    children: Vec<Block>,
}

impl Block {
    fn get(&self, key: &str) -> Option<(&str, usize)> {
        self.settings.iter().rev().find(|(k, _, _)| k == key).map(|(_, v, l)| (unquote(v), *l))
    }
}

fn parse(source: &str, ctx: &mut Ctx) -> Result<Block, ImportError> {
    let mut stack: Vec<Block> = vec![Block { kind: "global".into(), ..Block::default() }];
    for (i, raw) in source.lines().enumerate() {
        let no = i + 1;
        let text = raw.split('#').next().unwrap_or("").trim();
        if text.is_empty() {
            continue;
        }
        if text == "}" {
            if stack.len() < 2 {
                return Err(ctx.error(no, "`}' without an open block"));
            }
            if let Some(done) = stack.pop()
                && let Some(parent) = stack.last_mut()
            {
                parent.children.push(done);
            }
            continue;
        }
        if let Some(head) = text.strip_suffix('{') {
            let mut words = head.split_whitespace();
            let kind = words.next().unwrap_or("").to_string();
            let name = words.next().unwrap_or("").to_string();
            stack.push(Block { kind, name, line: no, ..Block::default() });
            continue;
        }
        let Some((key, value)) = text.split_once('=') else {
            ctx.dropped(no, text, "not a `key = value' line");
            continue;
        };
        if let Some(top) = stack.last_mut() {
            top.settings.push((key.trim().to_ascii_lowercase(), value.trim().to_string(), no));
        }
    }
    if stack.len() != 1 {
        return Err(ctx.error(0, "a block is not closed (missing `}')"));
    }
    stack.pop().ok_or_else(|| ctx.error(0, "empty"))
}

pub(crate) fn convert(source: &str, ctx: &mut Ctx) -> Result<Doc, ImportError> {
    let global = parse(source, ctx)?;
    let mut doc = Doc::default();
    let method = match global.get("network") {
        Some(("direct", _)) => "dr",
        Some(("nat", _)) => "nat",
        Some(("tunnel", _)) => "tun",
        Some((other, l)) => return Err(ctx.error(l, format!("network: unknown `{other}' (direct, nat or tunnel)"))),
        None => {
            ctx.warn(0, "no `network' given: real servers are imported as direct routing");
            "dr"
        }
    };
    let keepalive = match global.get("keepalive") {
        Some((k, l)) => k.parse::<f64>().ok().filter(|x| *x > 0.0).ok_or_else(|| ctx.error(l, "keepalive: seconds"))?,
        None => 2.0,
    };
    for (key, value, line) in &global.settings {
        let value = unquote(value);
        match key.as_str() {
            "network" | "keepalive" => {}
            "service" if value == "lvs" => {}
            "tcp_timeout" | "tcpfin_timeout" | "udp_timeout" => {
                let name = key.trim_end_matches("_timeout");
                match value.parse::<u32>() {
                    Ok(n) if n > 0 => doc.timeouts.push((name.into(), n.to_string())),
                    _ => ctx.dropped(*line, key, "not a positive number of seconds"),
                }
            }
            "primary"
            | "primary_private"
            | "primary_shared"
            | "backup"
            | "backup_private"
            | "backup_shared"
            | "backup_active"
            | "heartbeat"
            | "heartbeat_port"
            | "deadtime"
            | "reservation_conflict_action"
            | "rsh_command"
            | "monitor_links"
            | "hard_shutdown" => ctx.dropped(
                *line,
                key,
                "director failover (pulse) is not part of the LVS table: configure rvs failover separately",
            ),
            "nat_router" | "nat_nmask" => {
                ctx.dropped(*line, key, "the NAT router address is brought up by failover, not by the table")
            }
            "syncdaemon" | "syncd_iface" | "syncd_id" => {
                ctx.dropped(*line, key, "write a [[sync_daemon]] table (role, interface, syncid)")
            }
            _ => ctx.dropped(*line, key, "no rvs equivalent"),
        }
    }
    for b in &global.children {
        match b.kind.as_str() {
            "virtual" => {
                if let Some(svc) = virtual_service(ctx, b, method, keepalive)? {
                    doc.services.push(svc);
                }
            }
            "failover" => ctx.dropped(b.line, &format!("failover {}", b.name), "fos services are not LVS services"),
            other => ctx.dropped(b.line, other, "unknown block"),
        }
    }
    Ok(doc)
}

fn virtual_service(ctx: &mut Ctx, b: &Block, method: &str, keepalive: f64) -> Result<Option<Svc>, ImportError> {
    if b.get("active").is_some_and(|(a, _)| a == "0") {
        ctx.warn(b.line, format!("virtual {} is not active: not imported", b.name));
        return Ok(None);
    }
    let mut svc = Svc { comments: vec![format!("virtual {} (line {})", b.name, b.line)], ..Svc::default() };
    let port = match b.get("port") {
        Some((p, l)) => p.parse::<u16>().map_err(|_| ctx.error(l, format!("port: `{p}' is not a port")))?,
        None => 80,
    };
    let udp = b.get("protocol").is_some_and(|(p, _)| p.eq_ignore_ascii_case("udp"));
    if let Some((mark, l)) = b.get("fwmark") {
        let mark = mark.parse::<u32>().map_err(|_| ctx.error(l, "fwmark: a number"))?;
        svc.keys.push(("fwmark".into(), mark.to_string()));
    } else {
        let (addr_text, l) = b.get("address").ok_or_else(|| ctx.error(b.line, "virtual without `address'"))?;
        let mut words = addr_text.split_whitespace();
        let addr = parse_ip(ctx, l, words.next().unwrap_or(""))?;
        if let Some(dev) = words.next() {
            ctx.warn(l, format!("address device `{dev}' dropped: the VIP is brought up by failover, not by the table"));
        }
        svc.keys.push(("vip".into(), q(&host_port(addr, Some(port)))));
        svc.keys.push(("protocol".into(), q(if udp { "udp" } else { "tcp" })));
    }
    let scheduler = b.get("scheduler").map_or("wlc", |(s, _)| s);
    svc.keys.push(("scheduler".into(), q(scheduler)));
    if let Some((p, l)) = b.get("persistent") {
        let secs = p.parse::<u32>().map_err(|_| ctx.error(l, "persistent: seconds"))?;
        if secs > 0 {
            svc.keys.push(("persistent".into(), secs.to_string()));
            if let Some((m, _)) = b.get("pmask") {
                svc.keys.push(("netmask".into(), q(m)));
            }
        }
    }

    let timeout = match b.get("timeout") {
        Some((t, l)) => t.parse::<f64>().ok().filter(|x| *x >= 0.0).ok_or_else(|| ctx.error(l, "timeout: seconds"))?,
        None => 10.0,
    };
    let reentry = match b.get("reentry") {
        Some((t, l)) => t.parse::<f64>().ok().filter(|x| *x >= 0.0).ok_or_else(|| ctx.error(l, "reentry: seconds"))?,
        None => 180.0,
    };
    // Rounds that fit in `timeout`: the server leaves after failing for that long.
    let fall = (timeout / keepalive).ceil().max(1.0);
    svc.health.push(("interval".into(), num(keepalive)));
    svc.health.push(("timeout".into(), num(keepalive.min(timeout.max(0.1)))));
    svc.health.push(("fall".into(), num(fall)));
    svc.health.push(("rise".into(), "1".into()));
    svc.health.push(("reentry".into(), num(reentry)));
    let quiesce = b.get("quiesce_server").is_some_and(|(x, _)| x == "1");
    svc.health.push(("on_down".into(), q(if quiesce { "quiesce" } else { "remove" })));
    if let Some((s, l)) = b.get("sorry_server") {
        let addr = parse_ip(ctx, l, s.split_whitespace().next().unwrap_or(""))?;
        let m = match method {
            "nat" => "masq",
            "tun" => "tunnel",
            _ => "route",
        };
        svc.health.push(("sorry_server".into(), format!("{{ addr = {}, method = {} }}", q(&addr.to_string()), q(m))));
    }

    let mut check: Table = Vec::new();
    if let Some((program, l)) = b.get("send_program") {
        let mut words = program.split_whitespace().map(|w| w.replace("%h", "{rip}").replace("%p", "{rport}"));
        let prog = words.next().ok_or_else(|| ctx.error(l, "send_program: empty"))?;
        let args: Vec<String> = words.collect();
        check.push(("type".into(), q("external")));
        check.push(("program".into(), q(&prog)));
        check.push(("args".into(), q_list(&args)));
        if b.get("expect").is_some() {
            ctx.warn(l, "send_program: its output is not matched against `expect'; its exit status decides");
        }
    } else if let Some((send, _)) = b.get("send") {
        check.push(("type".into(), q(if udp { "udp" } else { "send_expect" })));
        check.push((if udp { "payload" } else { "send" }.into(), q(send)));
        if let Some((expect, _)) = b.get("expect") {
            check.push(("expect".into(), q(expect)));
            if !udp && b.get("use_regex").is_some_and(|(x, _)| x == "1") {
                check.push(("regex".into(), "true".into()));
            }
        }
    } else {
        check.push(("type".into(), q(if udp { "udp" } else { "tcp" })));
    }
    if b.get("fwmark").is_some() && !check.iter().any(|(k, v)| k == "type" && v == &q("external")) {
        check.push(("port".into(), port.to_string()));
    }
    svc.checks.push(check);

    for (key, _, line) in &b.settings {
        match key.as_str() {
            "address" | "active" | "port" | "protocol" | "fwmark" | "scheduler" | "persistent" | "pmask"
            | "timeout" | "reentry" | "quiesce_server" | "sorry_server" | "send_program" | "send" | "expect"
            | "use_regex" => {}
            "load_monitor" => {
                if b.get("load_monitor").is_some_and(|(x, _)| x != "none") {
                    ctx.dropped(*line, key, "weights are not adjusted from the real servers' load average");
                }
            }
            "vip_nmask" => ctx.dropped(*line, key, "the VIP is brought up by failover, not by the table"),
            "client_monitor" | "active_cmd" | "inactive_cmd" => {
                ctx.dropped(*line, key, "no such hook: use [service.health] notify")
            }
            _ => ctx.dropped(*line, key, "unknown virtual directive"),
        }
    }
    for s in &b.children {
        if s.kind != "server" {
            ctx.dropped(s.line, &s.kind, "unknown block inside a virtual");
            continue;
        }
        if s.get("active").is_some_and(|(a, _)| a == "0") {
            ctx.warn(s.line, format!("server {} is not active: not imported", s.name));
            continue;
        }
        let (a, l) = s.get("address").ok_or_else(|| ctx.error(s.line, "server without `address'"))?;
        let addr = parse_ip(ctx, l, a)?;
        let weight = match s.get("weight") {
            Some((w, l)) => w.parse::<u32>().map_err(|_| ctx.error(l, "weight: a number"))?,
            None => 1,
        };
        let mut r = Real::default();
        let real_port = if b.get("fwmark").is_some() { None } else { Some(port) };
        r.keys.push(("address".into(), q(&host_port(addr, real_port))));
        r.keys.push(("method".into(), q(method)));
        r.keys.push(("weight".into(), weight.to_string()));
        for (key, _, line) in &s.settings {
            if !["address", "active", "weight"].contains(&key.as_str()) {
                ctx.dropped(*line, key, "unknown server directive");
            }
        }
        svc.reals.push(r);
    }
    Ok(Some(svc))
}
