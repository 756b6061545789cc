//! keepalived.conf, the LVS part: every `virtual_server IP PORT | fwmark N { ... }` with its
//! `real_server` blocks and checkers (`virtual_server_group` and `include` are reported as
//! dropped). The rest of the file (global_defs, vrrp_* ...) is the VRRP importer's
//! ([`super::keepalived`]), which maps or reports it. Defaults are
//! keepalived's: delay_loop 60 s, lb_algo wlc, lb_kind NAT, connect_timeout 5 s, retry 1
//! (so two failed rounds), a failed server is removed unless `inhibit_on_failure`, back on its
//! first success.

use super::{Ctx, Doc, ImportError, Real, Svc, Table, host_port, num, parse_ip, q, q_list};

/// A statement or a block: its words and, for a block, its children.
#[derive(Debug, Default)]
struct Node {
    line: usize,
    words: Vec<String>,
    children: Option<Vec<Node>>,
}

impl Node {
    fn key(&self) -> &str {
        self.words.first().map_or("", String::as_str)
    }
    fn arg(&self, i: usize) -> Option<&str> {
        self.words.get(i).map(String::as_str)
    }
    fn kids(&self) -> &[Node] {
        self.children.as_deref().unwrap_or(&[])
    }
    fn find(&self, key: &str) -> Option<&Node> {
        self.kids().iter().find(|n| n.key() == key)
    }
}

/// Words of one line: whitespace separated, `"quoted strings"` kept whole, `{` and `}` apart,
/// `!` and `#` start a comment.
fn line_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let flush = |cur: &mut String, out: &mut Vec<String>| {
        if !cur.is_empty() {
            out.push(std::mem::take(cur));
        }
    };
    for c in line.chars() {
        if quoted {
            if c == '"' {
                quoted = false;
                out.push(std::mem::take(&mut cur));
            } else {
                cur.push(c);
            }
            continue;
        }
        match c {
            '"' => {
                flush(&mut cur, &mut out);
                quoted = true;
            }
            '!' | '#' => break,
            '{' | '}' => {
                flush(&mut cur, &mut out);
                out.push(c.to_string());
            }
            c if c.is_whitespace() => flush(&mut cur, &mut out),
            c => cur.push(c),
        }
    }
    if quoted || !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn parse(source: &str, ctx: &Ctx) -> Result<Vec<Node>, ImportError> {
    let mut stack: Vec<Node> = vec![Node { children: Some(Vec::new()), ..Node::default() }];
    for (i, raw) in source.lines().enumerate() {
        let no = i + 1;
        let mut words: Vec<String> = Vec::new();
        for w in line_words(raw) {
            match w.as_str() {
                "{" => {
                    let header = if words.is_empty() {
                        // `{` on its own line: the previous statement is the header.
                        let prev = stack.last_mut().and_then(|n| n.children.as_mut()).and_then(Vec::pop);
                        prev.map(|p| (p.line, p.words)).unwrap_or((no, Vec::new()))
                    } else {
                        (no, std::mem::take(&mut words))
                    };
                    stack.push(Node { line: header.0, words: header.1, children: Some(Vec::new()) });
                }
                "}" => {
                    if !words.is_empty()
                        && let Some(kids) = stack.last_mut().and_then(|n| n.children.as_mut())
                    {
                        kids.push(Node { line: no, words: std::mem::take(&mut words), children: None });
                    }
                    if stack.len() < 2 {
                        return Err(ctx.error(no, "`}' without an open block"));
                    }
                    if let Some(done) = stack.pop()
                        && let Some(kids) = stack.last_mut().and_then(|n| n.children.as_mut())
                    {
                        kids.push(done);
                    }
                }
                _ => words.push(w),
            }
        }
        if !words.is_empty()
            && let Some(kids) = stack.last_mut().and_then(|n| n.children.as_mut())
        {
            kids.push(Node { line: no, words, children: None });
        }
    }
    if stack.len() != 1 {
        return Err(ctx.error(0, "a block is not closed (missing `}')"));
    }
    Ok(stack.pop().and_then(|n| n.children).unwrap_or_default())
}

fn number(ctx: &Ctx, n: &Node, what: &str) -> Result<f64, ImportError> {
    n.arg(1)
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .ok_or_else(|| ctx.error(n.line, format!("{what}: a number expected")))
}

pub(crate) fn convert(source: &str, ctx: &mut Ctx) -> Result<Doc, ImportError> {
    let top = parse(source, ctx)?;
    let mut doc = Doc::default();
    for n in &top {
        match n.key() {
            "virtual_server" => doc.services.push(virtual_server(ctx, n)?),
            "include" => ctx.dropped(n.line, "include", "included files are not read: import them one by one"),
            "virtual_server_group" => {
                ctx.dropped(n.line, "virtual_server_group", "not supported: write one service per address")
            }
            // global_defs, vrrp_* and the rest: the VRRP importer maps or reports them.
            _ => {}
        }
    }
    Ok(doc)
}

/// Timing that keepalived sets per checker and rvs per service: the first checker's wins.
#[derive(Debug, Default)]
struct Timing {
    retry: Option<(f64, usize)>,
    delay_before_retry: Option<(f64, usize)>,
}

fn virtual_server(ctx: &mut Ctx, vs: &Node) -> Result<Svc, ImportError> {
    let mut svc = Svc { comments: vec![format!("{} (line {})", vs.words.join(" "), vs.line)], ..Svc::default() };
    let protocol = vs.find("protocol").and_then(|p| p.arg(1)).map_or("tcp".to_string(), str::to_ascii_lowercase);
    let vport: Option<u16> = match vs.arg(1) {
        Some("fwmark") => {
            let mark = vs.arg(2).and_then(|m| m.parse::<u32>().ok()).ok_or_else(|| ctx.error(vs.line, "fwmark N"))?;
            svc.keys.push(("fwmark".into(), mark.to_string()));
            if vs.find("ip_family").and_then(|f| f.arg(1)) == Some("inet6") {
                svc.keys.push(("ipv6".into(), "true".into()));
            }
            None
        }
        Some("group") => return Err(ctx.error(vs.line, "virtual_server group is not supported")),
        Some(addr) => {
            let addr = parse_ip(ctx, vs.line, addr)?;
            let port = match vs.arg(2) {
                Some(p) => p.parse::<u16>().map_err(|_| ctx.error(vs.line, format!("`{p}' is not a port")))?,
                None => 0,
            };
            svc.keys.push(("vip".into(), q(&host_port(addr, Some(port)))));
            svc.keys.push(("protocol".into(), q(&protocol)));
            Some(port)
        }
        None => return Err(ctx.error(vs.line, "virtual_server without address")),
    };
    let scheduler = vs.find("lvs_sched").or_else(|| vs.find("lb_algo")).and_then(|n| n.arg(1)).unwrap_or("wlc");
    svc.keys.push(("scheduler".into(), q(scheduler)));
    if let Some(p) = vs.find("persistence_timeout") {
        let secs = match p.arg(1) {
            Some(_) => number(ctx, p, "persistence_timeout")?,
            None => 360.0,
        };
        svc.keys.push(("persistent".into(), num(secs)));
        if let Some(m) = vs.find("persistence_granularity").and_then(|g| g.arg(1)) {
            let value = m.parse::<u8>().map_or_else(|_| q(m), |n| n.to_string());
            svc.keys.push(("netmask".into(), value));
        }
    }
    let vs_method = vs.find("lvs_method").or_else(|| vs.find("lb_kind")).and_then(|n| n.arg(1)).unwrap_or("NAT");
    let method = match vs_method.to_ascii_uppercase().as_str() {
        "DR" => "dr",
        "TUN" => "tun",
        _ => "nat",
    };
    let interval = match vs.find("delay_loop") {
        Some(n) => number(ctx, n, "delay_loop")?,
        None => 60.0,
    };
    svc.health.push(("interval".into(), num(interval)));
    let inhibit = vs.find("inhibit_on_failure").is_some();
    let mut timing = Timing::default();

    let mut notify_quorum: Vec<(String, String)> = Vec::new();
    for n in vs.kids() {
        match n.key() {
            "protocol"
            | "lvs_sched"
            | "lb_algo"
            | "persistence_timeout"
            | "persistence_granularity"
            | "lvs_method"
            | "lb_kind"
            | "delay_loop"
            | "inhibit_on_failure"
            | "real_server"
            | "ip_family" => {}
            "alpha" => svc.health.push(("start".into(), q("down"))),
            "warmup" => svc.health.push(("warmup".into(), "true".into())),
            "quorum" => svc.health.push(("quorum".into(), num(number(ctx, n, "quorum")?))),
            "hysteresis" => svc.health.push(("hysteresis".into(), num(number(ctx, n, "hysteresis")?))),
            "quorum_up" | "quorum_down" => {
                let argv: Vec<String> =
                    n.words.iter().skip(1).flat_map(|w| w.split_whitespace()).map(String::from).collect();
                notify_quorum.push((n.key().to_string(), q_list(&argv)));
            }
            "sorry_server" => {
                let addr = parse_ip(ctx, n.line, n.arg(1).unwrap_or(""))?;
                let port = n.arg(2).and_then(|p| p.parse::<u16>().ok()).or(vport);
                let m = match vs.find("sorry_server_lvs_method").and_then(|x| x.arg(1)).unwrap_or(vs_method) {
                    m if m.eq_ignore_ascii_case("DR") => "route",
                    m if m.eq_ignore_ascii_case("TUN") => "tunnel",
                    _ => "masq",
                };
                let mut t = format!("{{ addr = {}", q(&addr.to_string()));
                if let Some(p) = port {
                    t += &format!(", port = {p}");
                }
                t += &format!(", method = {} }}", q(m));
                svc.health.push(("sorry_server".into(), t));
            }
            "sorry_server_lvs_method" => {}
            "ops" => svc.keys.push(("one_packet".into(), "true".into())),
            other => ctx.dropped(n.line, other, "no rvs equivalent"),
        }
    }
    if !notify_quorum.is_empty() {
        let fields: Vec<String> = notify_quorum.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        svc.health.push(("notify".into(), format!("{{ {} }}", fields.join(", "))));
    }

    let mut any_inhibit = inhibit;
    for rs in vs.kids().iter().filter(|n| n.key() == "real_server") {
        let addr = parse_ip(ctx, rs.line, rs.arg(1).unwrap_or(""))?;
        let port = rs.arg(2).and_then(|p| p.parse::<u16>().ok());
        let mut r = Real::default();
        r.keys.push(("address".into(), q(&host_port(addr, port))));
        let rmethod = rs.find("lvs_method").or_else(|| rs.find("lb_kind")).and_then(|m| m.arg(1)).map_or(method, |m| {
            match m.to_ascii_uppercase().as_str() {
                "DR" => "dr",
                "TUN" => "tun",
                _ => "nat",
            }
        });
        r.keys.push(("method".into(), q(rmethod)));
        let weight = match rs.find("weight") {
            Some(w) => number(ctx, w, "weight")?,
            None => 1.0,
        };
        r.keys.push(("weight".into(), num(weight)));
        for n in rs.kids() {
            match n.key() {
                "weight" | "lvs_method" | "lb_kind" => {}
                "inhibit_on_failure" => any_inhibit = true,
                "uthreshold" => r.keys.push(("u_threshold".into(), num(number(ctx, n, "uthreshold")?))),
                "lthreshold" => r.keys.push(("l_threshold".into(), num(number(ctx, n, "lthreshold")?))),
                "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" | "DNS_CHECK" | "PING_CHECK" | "UDP_CHECK"
                | "SMTP_CHECK" => checker(ctx, n, &mut r, &mut timing)?,
                "notify_up" | "notify_down" => ctx.dropped(
                    n.line,
                    n.key(),
                    "per-server scripts: use [service.health] notify (mon-style arguments, -u on up)",
                ),
                other => ctx.dropped(n.line, other, "no rvs equivalent"),
            }
        }
        if r.checks.is_empty() {
            // keepalived without a checker: the server is never taken out.
            r.checks.push(vec![("type".into(), q("on"))]);
        }
        svc.reals.push(r);
    }
    if any_inhibit && !inhibit {
        ctx.warn(
            vs.line,
            "inhibit_on_failure on some real servers: the whole service quiesces (rvs sets it per service)",
        );
    }
    svc.health.push(("on_down".into(), q(if any_inhibit { "quiesce" } else { "remove" })));
    let retry = timing.retry.map_or(1.0, |(r, _)| r);
    svc.health.push(("fall".into(), num(retry + 1.0)));
    svc.health.push(("rise".into(), "1".into()));
    if let Some((d, _)) = timing.delay_before_retry {
        svc.health.push(("retry_interval".into(), num(d.max(0.01))));
    }
    Ok(svc)
}

fn checker(ctx: &mut Ctx, c: &Node, r: &mut Real, timing: &mut Timing) -> Result<(), ImportError> {
    let mut common: Table = Vec::new();
    let mut extra_warned = false;
    for n in c.kids() {
        match n.key() {
            "connect_port" => common.push(("port".into(), num(number(ctx, n, "connect_port")?))),
            "connect_timeout" | "misc_timeout" => common.push(("timeout".into(), num(number(ctx, n, n.key())?))),
            "retry" | "nb_get_retry" => {
                let v = number(ctx, n, "retry")?;
                match timing.retry {
                    None => timing.retry = Some((v, n.line)),
                    Some((old, _)) if (old - v).abs() > f64::EPSILON => ctx.warn(
                        n.line,
                        format!("retry {v} differs from an earlier checker's {old}: rvs uses one per service"),
                    ),
                    _ => {}
                }
            }
            "delay_before_retry" => {
                let v = number(ctx, n, "delay_before_retry")?;
                if timing.delay_before_retry.is_none() {
                    timing.delay_before_retry = Some((v, n.line));
                }
            }
            "bindto" => common.push(("bind".into(), q(n.arg(1).unwrap_or("")))),
            _ => {}
        }
    }
    if timing.retry.is_none() {
        // keepalived's per-checker default retry: MISC 0, DNS 3, the others 1.
        let default = match c.key() {
            "MISC_CHECK" => 0.0,
            "DNS_CHECK" => 3.0,
            _ => 1.0,
        };
        timing.retry = Some((default, c.line));
    }
    let mut out: Vec<Table> = Vec::new();
    match c.key() {
        "TCP_CHECK" => out.push(vec![("type".into(), q("tcp"))]),
        "SMTP_CHECK" => {
            ctx.warn(c.line, "SMTP_CHECK: checked as a TCP connect (no HELO dialogue)");
            out.push(vec![("type".into(), q("tcp"))]);
        }
        "PING_CHECK" => {
            out.push(vec![("type".into(), q("ping"))]);
            common.retain(|(k, _)| k != "port");
        }
        "HTTP_GET" | "SSL_GET" => {
            let kind = if c.key() == "SSL_GET" { "https" } else { "http" };
            let vhost = c.find("virtualhost").and_then(|v| v.arg(1));
            for url in c.kids().iter().filter(|n| n.key() == "url") {
                let mut t: Table = vec![("type".into(), q(kind))];
                t.push(("path".into(), q(url.find("path").and_then(|p| p.arg(1)).unwrap_or("/"))));
                if let Some(s) = url.find("status_code") {
                    let codes: Vec<&str> = s.words.iter().skip(1).map(String::as_str).collect();
                    t.push(("status".into(), q(&codes.join(","))));
                }
                if let Some(re) = url.find("regex").and_then(|x| x.arg(1)) {
                    t.push(("expect_regex".into(), q(re)));
                }
                if let Some(h) = url.find("virtualhost").and_then(|x| x.arg(1)).or(vhost) {
                    t.push(("host".into(), q(h)));
                }
                for k in url.kids() {
                    if !["path", "status_code", "regex", "virtualhost"].contains(&k.key()) {
                        ctx.dropped(k.line, k.key(), "not supported by rvs HTTP checks");
                    }
                }
                out.push(t);
            }
            if out.is_empty() {
                out.push(vec![("type".into(), q(kind)), ("path".into(), q("/"))]);
            }
            if let Some(v) = c.find("http_protocol").and_then(|x| x.arg(1)) {
                let version = if v.starts_with("1.1") { "1.1" } else { "1.0" };
                for t in &mut out {
                    t.push(("http_version".into(), q(version)));
                }
            }
            for k in c.kids() {
                if ["enable_sni", "fast_recovery", "tls_compliant", "sni_name"].contains(&k.key()) && !extra_warned {
                    ctx.dropped(k.line, k.key(), "not supported by rvs HTTPS checks (SNI is the host name)");
                    extra_warned = true;
                }
            }
        }
        "MISC_CHECK" => {
            let path = c
                .find("misc_path")
                .and_then(|p| p.arg(1))
                .ok_or_else(|| ctx.error(c.line, "MISC_CHECK without misc_path"))?;
            let mut words = path.split_whitespace().map(String::from);
            let program = words.next().unwrap_or_default();
            let args: Vec<String> = words.collect();
            let mut t: Table =
                vec![("type".into(), q("external")), ("program".into(), q(&program)), ("args".into(), q_list(&args))];
            if c.find("misc_dynamic").is_some() {
                t.push(("dynamic".into(), "true".into()));
            }
            if c.find("user").is_some() {
                ctx.warn(c.line, "MISC_CHECK user: the command runs as rvsd's user");
            }
            common.retain(|(k, _)| k != "port" && k != "bind");
            out.push(t);
        }
        "DNS_CHECK" => {
            let mut t: Table = vec![("type".into(), q("dns"))];
            t.push(("qtype".into(), q(c.find("type").and_then(|x| x.arg(1)).unwrap_or("SOA"))));
            t.push(("name".into(), q(c.find("name").and_then(|x| x.arg(1)).unwrap_or("."))));
            out.push(t);
        }
        "UDP_CHECK" => {
            let mut t: Table = vec![("type".into(), q("udp")), ("format".into(), q("hex"))];
            t.push(("payload".into(), q(c.find("payload").and_then(|x| x.arg(1)).unwrap_or(""))));
            if let Some(reply) = c.find("require_reply").and_then(|x| x.arg(1)) {
                t.push(("expect".into(), q(reply)));
            }
            out.push(t);
        }
        _ => {}
    }
    for n in c.kids() {
        let known = [
            "connect_port",
            "connect_timeout",
            "misc_timeout",
            "retry",
            "nb_get_retry",
            "delay_before_retry",
            "bindto",
            "url",
            "virtualhost",
            "http_protocol",
            "misc_path",
            "misc_dynamic",
            "user",
            "type",
            "name",
            "payload",
            "require_reply",
            "enable_sni",
            "fast_recovery",
            "tls_compliant",
            "sni_name",
        ];
        if !known.contains(&n.key()) {
            ctx.dropped(n.line, n.key(), "checker option not supported");
        }
    }
    for mut t in out {
        t.extend(common.iter().cloned());
        r.checks.push(t);
    }
    Ok(())
}
