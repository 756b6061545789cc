//! keepalived -> rvs: `vrrp_instance` blocks (with the `vrrp_script` blocks they track and the
//! global `vrrp_version` / `vrrp_garp_*` defaults) become `[[vrrp]]` tables. Everything else
//! (`virtual_server`, AH authentication, unknown keywords) is reported as
//! not mapped.

use std::collections::HashMap;

use super::{Import, quote};

/// A token with its line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Token {
    text: String,
    line: usize,
}

/// keepalived's lexical rules: `#` and `!` start comments, `{` `}` are tokens, `"..."` groups.
fn tokens(text: &str) -> Vec<Token> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = n + 1;
        let mut chars = raw.chars().peekable();
        let mut cur = String::new();
        let flush = |cur: &mut String, out: &mut Vec<Token>| {
            if !cur.is_empty() {
                out.push(Token { text: std::mem::take(cur), line });
            }
        };
        while let Some(c) = chars.next() {
            match c {
                '#' | '!' => break,
                '{' | '}' => {
                    flush(&mut cur, &mut out);
                    out.push(Token { text: c.to_string(), line });
                }
                '"' => {
                    flush(&mut cur, &mut out);
                    let s: String = chars.by_ref().take_while(|c| *c != '"').collect();
                    out.push(Token { text: s, line });
                }
                c if c.is_whitespace() => flush(&mut cur, &mut out),
                c => cur.push(c),
            }
        }
        flush(&mut cur, &mut out);
    }
    out
}

/// A keyword with its arguments on the same line and an optional `{ ... }` block.
#[derive(Debug, Clone, Default)]
struct Node {
    key: String,
    args: Vec<String>,
    line: usize,
    children: Vec<Node>,
}

fn parse(tokens: &[Token], pos: &mut usize) -> Vec<Node> {
    let mut out = Vec::new();
    while let Some(t) = tokens.get(*pos) {
        if t.text == "}" {
            *pos += 1;
            return out;
        }
        *pos += 1;
        let mut node = Node { key: t.text.clone(), line: t.line, ..Node::default() };
        while let Some(a) = tokens.get(*pos) {
            if a.text == "{" {
                *pos += 1;
                node.children = parse(tokens, pos);
                break;
            }
            if a.line != node.line || a.text == "}" {
                break;
            }
            node.args.push(a.text.clone());
            *pos += 1;
        }
        out.push(node);
    }
    out
}

/// `vrrp_script` settings.
#[derive(Debug, Clone, Default)]
struct Script {
    command: String,
    interval: Option<String>,
    timeout: Option<String>,
    weight: Option<String>,
    rise: Option<String>,
    fall: Option<String>,
}

fn arg(n: &Node) -> Option<&str> {
    n.args.first().map(String::as_str)
}

/// Imports one keepalived.conf text (`file` names it in messages).
pub fn import(file: &str, text: &str) -> Import {
    let toks = tokens(text);
    let mut pos = 0;
    let mut root = Vec::new();
    while pos < toks.len() {
        root.extend(parse(&toks, &mut pos));
    }
    let mut unmapped = Vec::new();
    let at = |n: &Node| format!("{file}:{}: {}", n.line, n.key);
    let mut version = "2".to_string();
    let mut garp_interval: Option<String> = None;
    let mut scripts: HashMap<String, Script> = HashMap::new();
    let mut groups: HashMap<String, String> = HashMap::new();
    for n in &root {
        match n.key.as_str() {
            "global_defs" => {
                for g in &n.children {
                    match g.key.as_str() {
                        "vrrp_version" => version = arg(g).unwrap_or("2").to_string(),
                        "vrrp_garp_interval" | "vrrp_gna_interval" => garp_interval = arg(g).map(String::from),
                        "router_id" | "script_user" | "enable_script_security" => {}
                        _ => unmapped.push(format!("{}: global setting not mapped", at(g))),
                    }
                }
            }
            "vrrp_script" => {
                let mut s = Script::default();
                for c in &n.children {
                    let v = c.args.join(" ");
                    match c.key.as_str() {
                        "script" => s.command = v,
                        "interval" => s.interval = Some(v),
                        "timeout" => s.timeout = Some(v),
                        "weight" => s.weight = c.args.first().cloned(),
                        "rise" => s.rise = Some(v),
                        "fall" => s.fall = Some(v),
                        _ => unmapped.push(format!("{}: vrrp_script setting not mapped", at(c))),
                    }
                }
                if let Some(name) = arg(n) {
                    scripts.insert(name.to_string(), s);
                }
            }
            "vrrp_instance" => {}
            "virtual_server" | "virtual_server_group" => unmapped.push(format!(
                "{}: LVS services are rvs [[service]] tables (convert them with ipvsadm -S and rvsadm, or by hand)",
                at(n)
            )),
            "vrrp_sync_group" => {
                let group = arg(n).unwrap_or("G");
                for c in &n.children {
                    match c.key.as_str() {
                        "group" => {
                            for m in &c.children {
                                groups.insert(m.key.clone(), group.to_string());
                            }
                        }
                        _ => unmapped.push(format!("{}: sync group setting not mapped", at(c))),
                    }
                }
            }
            _ => unmapped.push(format!("{}: not mapped", at(n))),
        }
    }
    let mut t = format!("# Imported from keepalived ({file}).\n");
    for n in root.iter().filter(|n| n.key == "vrrp_instance") {
        let group = arg(n).and_then(|name| groups.get(name)).map(String::as_str);
        t.push_str(&instance(n, file, &version, garp_interval.as_deref(), &scripts, group, &mut unmapped));
    }
    Import { toml: t, unmapped }
}

fn instance(
    n: &Node,
    file: &str,
    default_version: &str,
    garp_interval: Option<&str>,
    scripts: &HashMap<String, Script>,
    group: Option<&str>,
    unmapped: &mut Vec<String>,
) -> String {
    let at = |c: &Node| format!("{file}:{}: {}", c.line, c.key);
    let name = arg(n).unwrap_or("VI");
    let mut main = vec![format!("name = {}", quote(name))];
    if let Some(g) = group {
        main.push(format!("sync_group = {}", quote(g)));
    }
    let mut version = default_version.to_string();
    let mut tables = String::new();
    let mut notify = Vec::new();
    let mut garp = Vec::new();
    let mut vips = Vec::new();
    let mut peers = Vec::new();
    let mut nopreempt = false;
    let mut auth = None;
    if let Some(g) = garp_interval {
        garp.push(format!("interval = {g}"));
    }
    for c in &n.children {
        let a = arg(c).unwrap_or("");
        match c.key.as_str() {
            "state" => {}
            "interface" => main.push(format!("interface = {}", quote(a))),
            "virtual_router_id" => main.push(format!("vrid = {a}")),
            "priority" => main.push(format!("priority = {a}")),
            "advert_int" => main.push(format!("advert_interval = {a}")),
            "version" => version = a.to_string(),
            "nopreempt" => nopreempt = true,
            "preempt" => {}
            "preempt_delay" => main.push(format!("preempt_delay = {a}")),
            "unicast_src_ip" | "mcast_src_ip" => main.push(format!("primary_address = {}", quote(a))),
            "unicast_peer" => peers.extend(c.children.iter().map(|p| quote(&p.key))),
            "lower_prio_no_advert" => main.push("answer_lower_priority = false".into()),
            "higher_prio_send_advert" => main.push("higher_prio_send_advert = true".into()),
            "down_timer_adverts" => main.push(format!("down_timer_adverts = {a}")),
            "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                for v in &c.children {
                    let mut addr = v.key.clone();
                    let mut words = v.args.iter();
                    while let Some(w) = words.next() {
                        match w.as_str() {
                            "dev" => {
                                if let Some(d) = words.next() {
                                    addr = format!("{addr} dev {d}");
                                }
                            }
                            other => unmapped
                                .push(format!("{file}:{}: {}: address option `{other}' not mapped", v.line, v.key)),
                        }
                    }
                    vips.push(quote(&addr));
                }
            }
            "authentication" => {
                let mut kind = String::new();
                let mut pass = String::new();
                for x in &c.children {
                    match x.key.as_str() {
                        "auth_type" => kind = arg(x).unwrap_or("").to_ascii_uppercase(),
                        "auth_pass" => pass = x.args.join(" "),
                        _ => {}
                    }
                }
                if kind == "PASS" {
                    auth = Some(format!("auth = {{ type = \"pass\", password = {} }}", quote(&pass)));
                } else {
                    unmapped.push(format!("{}: auth_type {kind} not supported (use PASS, or the rvs HMAC)", at(c)));
                }
            }
            "track_interface" => {
                for x in &c.children {
                    let weight = x.args.iter().position(|w| w == "weight").and_then(|i| x.args.get(i + 1));
                    tables.push_str(&format!("[[vrrp.track_interface]]\nname = {}\n", quote(&x.key)));
                    if let Some(w) = weight {
                        tables.push_str(&format!("weight = {w}\n"));
                    }
                    if x.args.iter().any(|w| w == "reverse") {
                        tables.push_str("reverse = true\n");
                    }
                }
            }
            "track_script" => {
                for x in &c.children {
                    let Some(s) = scripts.get(&x.key) else {
                        unmapped
                            .push(format!("{file}:{}: track_script {}: no vrrp_script of that name", x.line, x.key));
                        continue;
                    };
                    let weight = x.args.iter().position(|w| w == "weight").and_then(|i| x.args.get(i + 1));
                    tables.push_str(&format!("[[vrrp.track_script]]\ncommand = {}\n", quote(&s.command)));
                    for (k, v) in
                        [("interval", &s.interval), ("timeout", &s.timeout), ("rise", &s.rise), ("fall", &s.fall)]
                    {
                        if let Some(v) = v {
                            tables.push_str(&format!("{k} = {v}\n"));
                        }
                    }
                    if let Some(w) = weight.or(s.weight.as_ref()) {
                        tables.push_str(&format!("weight = {w}\n"));
                    }
                }
            }
            "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify" => {
                let key = c.key.strip_prefix("notify_").unwrap_or("any");
                notify.push(format!("{key} = {}", quote(&c.args.join(" "))));
            }
            "garp_master_delay" => garp.push(format!("delay = {a}")),
            "garp_master_repeat" => garp.push(format!("repeat = {a}")),
            "garp_lower_prio_delay" => garp.push(format!("lower_prio_delay = {a}")),
            "garp_lower_prio_repeat" => garp.push(format!("lower_prio_repeat = {a}")),
            "garp_master_refresh" => garp.push(format!("refresh = {a}")),
            "garp_master_refresh_repeat" => garp.push(format!("refresh_repeat = {a}")),
            _ => unmapped.push(format!("{}: not mapped", at(c))),
        }
    }
    main.push(format!("version = {version}"));
    if nopreempt {
        main.push("preempt = false".into());
    }
    main.push(format!("virtual_addresses = [{}]", vips.join(", ")));
    if !peers.is_empty() {
        main.push(format!("unicast_peers = [{}]", peers.join(", ")));
    }
    if let Some(a) = auth {
        main.push(a);
    }
    let mut out = format!("\n[[vrrp]]\n{}\n", main.join("\n"));
    out.push_str(&tables);
    if !notify.is_empty() {
        out.push_str(&format!("[vrrp.notify]\n{}\n", notify.join("\n")));
    }
    if !garp.is_empty() {
        out.push_str(&format!("[vrrp.garp]\n{}\n", garp.join("\n")));
    }
    out
}
