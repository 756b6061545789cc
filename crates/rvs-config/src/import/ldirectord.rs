//! ldirectord.cf: `key = value` lines; a `virtual=` line opens a virtual service whose
//! directives follow (indented in ldirectord's own syntax; the guides often lose the
//! indentation, so a directive that only exists per virtual belongs to the last virtual even
//! when it is not indented). Global directives that may also be set per virtual
//! (`checkinterval`, `quiescent`, `fallback` ...) are defaults for every virtual.
//! Defaults are ldirectord's: scheduler wrr, checktype negotiate, checkinterval 10 s,
//! checktimeout 5 s, negotiatetimeout 30 s, failurecount 1, quiescent yes.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use super::{Ctx, Doc, ImportError, Real, Svc, Table, host_port, num, parse_ip, parse_ip_port, q, q_list, unquote};

/// Directives that only exist inside a virtual.
const VIRTUAL_ONLY: &[&str] = &[
    "real",
    "real6",
    "service",
    "request",
    "receive",
    "scheduler",
    "persistent",
    "netmask",
    "protocol",
    "checktype",
    "checkport",
    "checkcommand",
    "httpmethod",
    "virtualhost",
    "login",
    "passwd",
    "database",
    "secret",
    "monitorfile",
    "ops",
    "servicename",
    "comment",
];

/// Directives that only exist globally, and what becomes of them.
const GLOBAL_ONLY: &[&str] =
    &["logfile", "autoreload", "callback", "maintenancedir", "supervised", "fork", "execute", "emailalertfrom"];

/// Directives that are global defaults or per-virtual settings.
const BOTH: &[&str] = &[
    "checktimeout",
    "negotiatetimeout",
    "connecttimeout",
    "checkinterval",
    "checkcount",
    "failurecount",
    "fallback",
    "fallback6",
    "fallbackcommand",
    "quiescent",
    "readdquiescent",
    "cleanstop",
    "emailalert",
    "emailalertfreq",
    "emailalertstatus",
    "smtp",
    "timeout",
];

#[derive(Debug, Default)]
struct Virtual {
    line: usize,
    spec: String,
    ipv6: bool,
    settings: HashMap<String, (String, usize)>,
    reals: Vec<(String, usize, bool)>,
}

/// Removes a trailing `# comment` that is outside double quotes.
fn strip_comment(line: &str) -> &str {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return line.get(..i).unwrap_or(line),
            _ => {}
        }
    }
    line
}

/// Splits on whitespace outside double quotes; commas between quoted words are separators.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in text.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            c if (c.is_whitespace() || c == ',') && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn yes(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "yes" | "y" | "1" | "true" | "on")
}

fn seconds(ctx: &Ctx, line: usize, key: &str, v: &str) -> Result<f64, ImportError> {
    v.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .ok_or_else(|| ctx.error(line, format!("{key}: `{v}' is not a number of seconds")))
}

fn default_service(port: u16) -> &'static str {
    match port {
        21 => "ftp",
        25 => "smtp",
        53 => "dns",
        80 => "http",
        110 => "pop",
        119 => "nntp",
        143 => "imap",
        389 => "ldap",
        443 => "https",
        587 => "submission",
        636 => "ldaps",
        993 => "imaps",
        995 => "pops",
        1521 => "oracle",
        1812 => "radius",
        3128 => "http_proxy",
        3306 => "mysql",
        5060 => "sip",
        5432 => "pgsql",
        _ => "none",
    }
}

/// Expands `a.b.c.d->a.b.c.e` (IPv4, at most 256 addresses).
fn expand_range(ctx: &Ctx, line: usize, text: &str) -> Result<Vec<(IpAddr, Option<u16>)>, ImportError> {
    let Some((from, to)) = text.split_once("->") else { return Ok(vec![parse_ip_port(ctx, line, text)?]) };
    let (to_ip, port) = parse_ip_port(ctx, line, to)?;
    let from_ip = parse_ip(ctx, line, from)?;
    let (IpAddr::V4(a), IpAddr::V4(b)) = (from_ip, to_ip) else {
        return Err(ctx.error(line, "address ranges are IPv4 only"));
    };
    let (a, b) = (u32::from(a), u32::from(b));
    if b < a || b - a > 255 {
        return Err(ctx.error(line, format!("range {text}: at most 256 addresses, in increasing order")));
    }
    Ok((a..=b).map(|n| (IpAddr::V4(Ipv4Addr::from(n)), port)).collect())
}

fn method_word(ctx: &Ctx, line: usize, m: &str) -> Result<&'static str, ImportError> {
    match m {
        "gate" => Ok("dr"),
        "masq" => Ok("nat"),
        "ipip" => Ok("tun"),
        other => Err(ctx.error(line, format!("unknown forwarding method `{other}' (gate, masq or ipip)"))),
    }
}

/// The settings of one virtual (its own, else the global default).
struct Settings<'a> {
    v: &'a Virtual,
    globals: &'a HashMap<String, (String, usize)>,
}

impl Settings<'_> {
    fn get(&self, key: &str) -> Option<(&str, usize)> {
        self.v.settings.get(key).or_else(|| self.globals.get(key)).map(|(v, l)| (unquote(v), *l))
    }
}

struct CheckParams<'a> {
    checktype: String,
    service: String,
    request: Option<&'a str>,
    receive: Option<&'a str>,
    port: Option<u16>,
    udp: bool,
}

fn check_table(
    ctx: &mut Ctx,
    line: usize,
    p: &CheckParams<'_>,
    s: &Settings<'_>,
    timeouts: (f64, f64),
) -> Result<Table, ImportError> {
    let (connect_timeout, negotiate_timeout) = timeouts;
    let mut t: Table = Vec::new();
    let port = |t: &mut Table| {
        if let Some(port) = p.port {
            t.push(("port".into(), port.to_string()));
        }
    };
    let kind = if p.checktype.parse::<u32>().is_ok() {
        ctx.warn(
            line,
            format!("checktype {} (N connects, then one negotiate): a negotiate check every round", p.checktype),
        );
        "negotiate"
    } else {
        p.checktype.as_str()
    };
    match kind {
        "connect" => {
            if p.udp {
                t.push(("type".into(), q("udp")));
            } else {
                t.push(("type".into(), q("tcp")));
            }
            port(&mut t);
            t.push(("timeout".into(), num(connect_timeout)));
        }
        "ping" => {
            t.push(("type".into(), q("ping")));
            t.push(("timeout".into(), num(connect_timeout)));
        }
        "on" | "off" => t.push(("type".into(), q(kind))),
        "external" | "external-perl" => {
            if kind == "external-perl" {
                ctx.warn(line, "checktype external-perl: the command is run as a program (external)");
            }
            let command = s.get("checkcommand").map_or("/bin/true", |(c, _)| c);
            let mut words = command.split_whitespace().map(String::from);
            let program = words.next().unwrap_or_else(|| "/bin/true".into());
            let mut args: Vec<String> = words.collect();
            args.extend(["{vip}", "{vport}", "{rip}", "{rport}"].map(String::from));
            t.push(("type".into(), q("external")));
            t.push(("program".into(), q(&program)));
            t.push(("args".into(), q_list(&args)));
            if let Some(port) = p.port {
                t.push(("port".into(), port.to_string()));
            }
            t.push(("timeout".into(), num(connect_timeout)));
        }
        "negotiate" => negotiate(ctx, line, p, s, negotiate_timeout, &mut t),
        other => {
            ctx.warn(line, format!("unknown checktype `{other}': using negotiate (ldirectord's default)"));
            negotiate(ctx, line, p, s, negotiate_timeout, &mut t);
        }
    }
    Ok(t)
}

fn negotiate(ctx: &mut Ctx, line: usize, p: &CheckParams<'_>, s: &Settings<'_>, timeout: f64, t: &mut Table) {
    let port = |t: &mut Table| {
        if let Some(port) = p.port {
            t.push(("port".into(), port.to_string()));
        }
    };
    match p.service.as_str() {
        "http" | "https" | "http_proxy" => {
            if p.service == "http_proxy" {
                ctx.warn(line, "service http_proxy: checked as plain http with the request as the path");
            }
            t.push(("type".into(), q(if p.service == "https" { "https" } else { "http" })));
            port(t);
            let request = p.request.unwrap_or("/");
            let path = if request.starts_with('/') { request.to_string() } else { format!("/{request}") };
            t.push(("path".into(), q(&path)));
            if let Some(r) = p.receive {
                t.push(("expect_regex".into(), q(r)));
            }
            if let Some((m, _)) = s.get("httpmethod") {
                t.push(("method".into(), q(&m.to_ascii_uppercase())));
            }
            if let Some((h, _)) = s.get("virtualhost") {
                t.push(("host".into(), q(h)));
            }
        }
        "dns" => {
            t.push(("type".into(), q("dns")));
            port(t);
            if let Some(r) = p.request {
                t.push(("name".into(), q(r)));
                t.push(("qtype".into(), q("A")));
            }
            if p.receive.is_some() {
                ctx.warn(line, "service dns: `receive' is not matched; an answer with NOERROR and a record passes");
            }
        }
        "simpletcp" => {
            t.push(("type".into(), q("send_expect")));
            port(t);
            t.push(("send".into(), q(p.request.unwrap_or(""))));
            if let Some(r) = p.receive {
                t.push(("expect".into(), q(r)));
                t.push(("regex".into(), "true".into()));
            }
        }
        other => {
            if other != "none" {
                ctx.warn(line, format!("negotiate check of service {other} is not supported: a connect check instead"));
            }
            t.push(("type".into(), q(if p.udp { "udp" } else { "tcp" })));
            port(t);
        }
    }
    t.push(("timeout".into(), num(timeout)));
}

pub(crate) fn convert(source: &str, ctx: &mut Ctx) -> Result<Doc, ImportError> {
    let mut globals: HashMap<String, (String, usize)> = HashMap::new();
    let mut virtuals: Vec<Virtual> = Vec::new();
    for (i, raw) in source.lines().enumerate() {
        let no = i + 1;
        let text = strip_comment(raw);
        if text.trim().is_empty() {
            continue;
        }
        let indented = text.starts_with([' ', '\t']);
        let Some((key, value)) = text.split_once('=') else {
            ctx.dropped(no, text.trim(), "not a `key = value' line");
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim().to_string();
        if key == "virtual" || key == "virtual6" {
            virtuals.push(Virtual {
                line: no,
                spec: unquote(&value).to_string(),
                ipv6: key == "virtual6",
                ..Virtual::default()
            });
            continue;
        }
        let in_virtual = !virtuals.is_empty();
        if VIRTUAL_ONLY.contains(&key.as_str()) {
            let Some(v) = virtuals.last_mut() else {
                ctx.dropped(no, &key, "outside any virtual");
                continue;
            };
            if key == "real" || key == "real6" {
                v.reals.push((value, no, key == "real6"));
            } else {
                v.settings.insert(key, (value, no));
            }
        } else if BOTH.contains(&key.as_str()) {
            match virtuals.last_mut() {
                Some(v) if indented && in_virtual => {
                    v.settings.insert(key, (value, no));
                }
                _ => {
                    globals.insert(key, (value, no));
                }
            }
        } else if GLOBAL_ONLY.contains(&key.as_str()) {
            globals.insert(key, (value, no));
        } else {
            ctx.dropped(no, &key, "unknown ldirectord directive");
        }
    }

    let mut doc = Doc::default();
    global_directives(ctx, &globals, &mut doc)?;
    for v in &virtuals {
        doc.services.push(virtual_service(ctx, v, &globals)?);
    }
    Ok(doc)
}

fn global_directives(
    ctx: &mut Ctx,
    globals: &HashMap<String, (String, usize)>,
    doc: &mut Doc,
) -> Result<(), ImportError> {
    let mut keys: Vec<(&String, &(String, usize))> = globals.iter().collect();
    keys.sort_by_key(|(_, (_, l))| *l);
    for (key, (value, line)) in keys {
        let value = unquote(value);
        match key.as_str() {
            "autoreload" if yes(value) => doc.health.push(("autoreload".into(), "true".into())),
            "autoreload" => {}
            "maintenancedir" => {
                doc.health.push(("maintenance_dir".into(), q(value)));
            }
            "logfile" => ctx.dropped(*line, key, "rvsd logs to stderr / the journal"),
            "callback" => ctx.dropped(*line, key, "no callback on reload"),
            "supervised" | "fork" => ctx.dropped(*line, key, "rvsd runs checks in its own worker pool"),
            "execute" => ctx.dropped(*line, key, "one rvsd reads one configuration"),
            "emailalert" | "emailalertfrom" | "emailalertfreq" | "emailalertstatus" | "smtp" => {
                ctx.dropped(*line, key, "no e-mail alerts: use [service.health] notify with a mail script")
            }
            "cleanstop" => ctx.dropped(*line, key, "rvsd owns the table; it is gone when rvsd stops"),
            "readdquiescent" => ctx.dropped(*line, key, "rvsd keeps the table in line with the health state"),
            "checkcount" => ctx.dropped(*line, key, "deprecated; use failurecount"),
            "fallbackcommand" => ctx.dropped(*line, key, "no fallback command: use notify quorum_up/quorum_down"),
            _ => {} // per-virtual defaults, used below
        }
    }
    Ok(())
}

fn virtual_service(ctx: &mut Ctx, v: &Virtual, globals: &HashMap<String, (String, usize)>) -> Result<Svc, ImportError> {
    let s = Settings { v, globals };
    let mut svc = Svc { comments: vec![format!("virtual={} (line {})", v.spec, v.line)], ..Svc::default() };
    let protocol = s.get("protocol").map(|(p, _)| p.to_ascii_lowercase());
    let (vport, fwmark) = if let Ok(mark) = v.spec.parse::<u32>() {
        svc.keys.push(("fwmark".into(), mark.to_string()));
        if v.ipv6 {
            svc.keys.push(("ipv6".into(), "true".into()));
        }
        (None, true)
    } else {
        let (addr, port) = parse_ip_port(ctx, v.line, &v.spec)?;
        let port = port.ok_or_else(|| ctx.error(v.line, "a virtual address needs a port"))?;
        svc.keys.push(("vip".into(), q(&host_port(addr, Some(port)))));
        let proto = match protocol.as_deref() {
            Some("udp") => "udp",
            Some("tcp") => "tcp",
            Some("fwm") => return Err(ctx.error(v.line, "protocol fwm needs a virtual given as a mark number")),
            Some(other) => return Err(ctx.error(v.line, format!("unknown protocol `{other}'"))),
            None if port == 53 => "udp",
            None => "tcp",
        };
        svc.keys.push(("protocol".into(), q(proto)));
        (Some(port), false)
    };
    let udp = svc.keys.iter().any(|(k, val)| k == "protocol" && val == &q("udp"));
    let scheduler = s.get("scheduler").map_or("wrr", |(x, _)| x).to_string();
    svc.keys.push(("scheduler".into(), q(&scheduler)));
    if let Some((p, line)) = s.get("persistent") {
        let secs = p.parse::<u32>().map_err(|_| ctx.error(line, format!("persistent: `{p}' is not a number")))?;
        svc.keys.push(("persistent".into(), secs.to_string()));
        if let Some((m, _)) = s.get("netmask") {
            let value = m.parse::<u8>().map_or_else(|_| q(m), |n| n.to_string());
            svc.keys.push(("netmask".into(), value));
        }
    }

    // Timing and policy.
    let interval = match s.get("checkinterval") {
        Some((x, l)) => seconds(ctx, l, "checkinterval", x)?,
        None => 10.0,
    };
    let checktimeout = s.get("checktimeout").or_else(|| s.get("connecttimeout")).or_else(|| s.get("timeout"));
    if let Some((_, l)) = s.get("timeout")
        && s.get("checktimeout").is_none()
    {
        ctx.warn(l, "`timeout' (old ldirectord) read as checktimeout");
    }
    let negotiatetimeout = s.get("negotiatetimeout");
    let connect_timeout = match (checktimeout, negotiatetimeout) {
        (Some((x, l)), _) | (None, Some((x, l))) => seconds(ctx, l, "checktimeout", x)?,
        (None, None) => 5.0,
    };
    let negotiate_timeout = match (negotiatetimeout, checktimeout) {
        (Some((x, l)), _) | (None, Some((x, l))) => seconds(ctx, l, "negotiatetimeout", x)?,
        (None, None) => 30.0,
    };
    let fall = match s.get("failurecount") {
        Some((x, l)) => {
            x.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| ctx.error(l, "failurecount: a positive number"))?
        }
        None => 1,
    };
    svc.health.push(("interval".into(), num(interval)));
    svc.health.push(("fall".into(), fall.to_string()));
    svc.health.push(("rise".into(), "1".into()));
    let quiescent = s.get("quiescent").is_none_or(|(x, _)| yes(x));
    svc.health.push(("on_down".into(), q(if quiescent { "quiesce" } else { "remove" })));
    if let Some((fb, line)) = s.get(if v.ipv6 { "fallback6" } else { "fallback" }) {
        let words: Vec<&str> = fb.split_whitespace().collect();
        let (addr, port) = parse_ip_port(ctx, line, words.first().copied().unwrap_or(""))?;
        let method = match words.get(1) {
            Some(m) => match method_word(ctx, line, m)? {
                "dr" => "route",
                "nat" => "masq",
                _ => "tunnel",
            },
            None if addr.is_loopback() => "local",
            None => "route",
        };
        let mut t = format!("{{ addr = {}", q(&addr.to_string()));
        if let Some(p) = port.or(vport) {
            t += &format!(", port = {p}");
        }
        t += &format!(", method = {} }}", q(method));
        svc.health.push(("sorry_server".into(), t));
    }
    for key in ["login", "passwd", "database", "secret", "monitorfile", "ops", "servicename", "comment"] {
        if let Some((_, l)) = s.get(key) {
            let why = match key {
                "ops" => "one-packet scheduling is `one_packet = true` on the service; not carried over",
                "monitorfile" => "check results are in the rvsd log and `Health` listing",
                _ => "not used by rvs checks",
            };
            ctx.dropped(l, key, why);
        }
    }

    let checktype = s.get("checktype").map_or("negotiate", |(x, _)| x).to_ascii_lowercase();
    let checkport = match s.get("checkport") {
        Some((p, l)) => Some(p.parse::<u16>().map_err(|_| ctx.error(l, format!("checkport: `{p}' is not a port")))?),
        None => None,
    };
    let service = s
        .get("service")
        .map(|(x, _)| x.to_ascii_lowercase())
        .unwrap_or_else(|| default_service(checkport.or(vport).unwrap_or(0)).to_string());
    let base = CheckParams {
        checktype,
        service,
        request: s.get("request").map(|(x, _)| x),
        receive: s.get("receive").map(|(x, _)| x),
        port: checkport,
        udp,
    };
    let check_line = s.get("checktype").map_or(v.line, |(_, l)| l);
    svc.checks.push(check_table(ctx, check_line, &base, &s, (connect_timeout, negotiate_timeout))?);

    for (text, line, _v6) in &v.reals {
        let words = tokens(text);
        let Some(first) = words.first() else { return Err(ctx.error(*line, "real: no address")) };
        let addrs = expand_range(ctx, *line, first)?;
        let mut method = "dr";
        let mut weight: Option<u32> = None;
        let mut quoted: Vec<String> = Vec::new();
        for w in words.iter().skip(1) {
            if w.starts_with('"') {
                quoted.push(unquote(w).to_string());
            } else if let Ok(n) = w.parse::<u32>() {
                weight = Some(n);
            } else if ["gate", "masq", "ipip"].contains(&w.as_str()) {
                method = method_word(ctx, *line, w)?;
            } else {
                ctx.dropped(*line, w, "unknown part of a real server line");
            }
        }
        for (addr, port) in addrs {
            let mut r = Real::default();
            let port = if fwmark { port } else { port.or(vport) };
            r.keys.push(("address".into(), q(&host_port(addr, port))));
            r.keys.push(("method".into(), q(method)));
            r.keys.push(("weight".into(), weight.unwrap_or(1).to_string()));
            if !quoted.is_empty() {
                // Per-real request/receive: the service's check with these instead.
                let p = CheckParams {
                    request: quoted.first().map(String::as_str),
                    receive: quoted.get(1).map(String::as_str),
                    checktype: base.checktype.clone(),
                    service: base.service.clone(),
                    ..base
                };
                r.checks.push(check_table(ctx, *line, &p, &s, (connect_timeout, negotiate_timeout))?);
            }
            if fwmark && port.is_none() && checkport.is_none() && needs_port(&base.checktype) {
                ctx.warn(*line, "fwmark real server without port: add `checkport' (the check needs a port)");
            }
            svc.reals.push(r);
        }
    }
    Ok(svc)
}

fn needs_port(checktype: &str) -> bool {
    !matches!(checktype, "ping" | "on" | "off" | "external" | "external-perl")
}
