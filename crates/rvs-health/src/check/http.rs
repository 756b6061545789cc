//! HTTP and HTTPS "negotiate" check: send one GET or HEAD request (HTTP/1.0 or 1.1, chosen Host
//! header, `Connection: close`), then require an accepted status and, optionally, a body that
//! contains a text or matches a regex. Chunked bodies are decoded before matching. The reply is
//! read up to `max_response` bytes; reading stops as soon as the answer is decided.

use std::io::{Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use regex::bytes::Regex;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::pattern::contains;
use super::{CheckOutcome, Target, check_addr, net, tls};
use crate::config::{ConfigError, HttpCheckConfig, HttpMethod, HttpVersion, invalid};

/// A compiled HTTP(S) check.
#[derive(Debug)]
pub struct HttpCheck {
    port: Option<u16>,
    bind: Option<IpAddr>,
    method: HttpMethod,
    path: String,
    host: Option<String>,
    version: HttpVersion,
    status: Vec<(u16, u16)>,
    expect_body: Option<Vec<u8>>,
    expect_regex: Option<Regex>,
    max_response: usize,
    tls: Option<TlsSetup>,
}

#[derive(Debug)]
struct TlsSetup {
    config: Arc<ClientConfig>,
    sni: Option<String>,
}

/// Parses "200-299,301" into inclusive ranges.
pub fn parse_status_set(text: &str) -> Result<Vec<(u16, u16)>, String> {
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (lo, hi) = match item.split_once('-') {
            Some((a, b)) => (a.trim(), b.trim()),
            None => (item, item),
        };
        let lo: u16 = lo.parse().map_err(|_| format!("bad status code {lo:?}"))?;
        let hi: u16 = hi.parse().map_err(|_| format!("bad status code {hi:?}"))?;
        if !(100..=999).contains(&lo) || !(100..=999).contains(&hi) || lo > hi {
            return Err(format!("bad status range {item:?}"));
        }
        out.push((lo, hi));
    }
    if out.is_empty() {
        return Err("empty status set".into());
    }
    Ok(out)
}

impl HttpCheck {
    /// From configuration; `tls` selects HTTPS.
    pub fn new(c: &HttpCheckConfig, use_tls: bool) -> Result<Self, ConfigError> {
        if !c.path.starts_with('/') || c.path.chars().any(|ch| ch.is_whitespace() || ch.is_control()) {
            return Err(invalid("path", "must start with / and contain no spaces or control characters"));
        }
        if let Some(h) = &c.host
            && (h.is_empty() || h.chars().any(|ch| ch.is_whitespace() || ch.is_control()))
        {
            return Err(invalid("host", "must be non-empty without spaces or control characters"));
        }
        if !use_tls && (c.sni.is_some() || c.ca_file.is_some()) {
            return Err(invalid("sni", "sni and ca_file are for https checks only"));
        }
        let tls = if use_tls {
            Some(TlsSetup {
                config: tls::client_config(c.ca_file.as_deref()).map_err(|e| invalid("ca_file", e))?,
                sni: c.sni.clone(),
            })
        } else {
            None
        };
        Ok(HttpCheck {
            port: c.port,
            bind: c.bind,
            method: c.method,
            path: c.path.clone(),
            host: c.host.clone(),
            version: c.http_version,
            status: parse_status_set(&c.status).map_err(|e| invalid("status", e))?,
            expect_body: c.expect_body.as_ref().map(|s| s.as_bytes().to_vec()),
            expect_regex: c
                .expect_regex
                .as_deref()
                .map(Regex::new)
                .transpose()
                .map_err(|e| invalid("expect_regex", e.to_string()))?,
            max_response: c.max_response.max(64),
            tls,
        })
    }

    /// Whether this is an HTTPS check.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    fn host_header(&self, dest: SocketAddr) -> String {
        if let Some(h) = &self.host {
            return h.clone();
        }
        let default_port = if self.is_tls() { 443 } else { 80 };
        let ip = match dest.ip() {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        if dest.port() == default_port { ip } else { format!("{ip}:{}", dest.port()) }
    }

    fn request(&self, host: &str) -> Vec<u8> {
        let method = match self.method {
            HttpMethod::Get => "GET",
            HttpMethod::Head => "HEAD",
        };
        let version = match self.version {
            HttpVersion::V10 => "1.0",
            HttpVersion::V11 => "1.1",
        };
        format!(
            "{method} {} HTTP/{version}\r\nHost: {host}\r\nUser-Agent: rvs-health\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            self.path
        )
        .into_bytes()
    }

    fn needs_body(&self) -> bool {
        self.method == HttpMethod::Get && (self.expect_body.is_some() || self.expect_regex.is_some())
    }

    /// Runs it.
    pub fn run(&self, target: &Target, deadline: Instant) -> CheckOutcome {
        match self.exchange(target, deadline) {
            Ok(()) => CheckOutcome::PASS,
            Err(reason) => CheckOutcome::fail(reason),
        }
    }

    fn exchange(&self, target: &Target, deadline: Instant) -> Result<(), String> {
        let dest = check_addr(target, self.port);
        let host = self.host_header(dest);
        let request = self.request(&host);
        let stream = net::connect_tcp(dest, self.bind, deadline)?;
        let mut reply = Vec::new();
        let read = match &self.tls {
            None => {
                let mut s = stream;
                net::write_all_by(&mut s, &request, "sending the request")?;
                let r =
                    self.read_reply(&mut s, &mut reply, deadline, |s: &mut TcpStream, t| s.set_read_timeout(Some(t)));
                let _ = s.shutdown(Shutdown::Both);
                r
            }
            Some(setup) => {
                let name = tls_server_name(setup.sni.as_deref(), &host, dest)?;
                let conn =
                    ClientConnection::new(Arc::clone(&setup.config), name).map_err(|e| format!("TLS set-up: {e}"))?;
                let mut s = StreamOwned::new(conn, stream);
                while s.conn.is_handshaking() {
                    s.conn.complete_io(&mut s.sock).map_err(|e| net::describe(&e, "in the TLS handshake"))?;
                }
                s.write_all(&request).and_then(|()| s.flush()).map_err(|e| net::describe(&e, "sending the request"))?;
                let r = self.read_reply(
                    &mut s,
                    &mut reply,
                    deadline,
                    |s: &mut StreamOwned<ClientConnection, TcpStream>, t| s.sock.set_read_timeout(Some(t)),
                );
                s.conn.send_close_notify();
                let _ = s.conn.complete_io(&mut s.sock);
                let _ = s.sock.shutdown(Shutdown::Both);
                r
            }
        };
        self.judge(&reply, read)
    }

    fn read_reply<S: Read>(
        &self,
        stream: &mut S,
        reply: &mut Vec<u8>,
        deadline: Instant,
        set_timeout: impl FnMut(&mut S, Duration) -> std::io::Result<()>,
    ) -> Result<net::ReadEnd, String> {
        let needs_body = self.needs_body();
        let head = self.method == HttpMethod::Head;
        net::read_capped(stream, reply, self.max_response, deadline, set_timeout, |data| match parse_head(data) {
            Some(h) if !needs_body || head => h.status.is_some(),
            Some(h) => body_complete(&h, data.get(h.body_start..).unwrap_or_default()),
            None => false,
        })
    }

    fn judge(&self, reply: &[u8], read: Result<net::ReadEnd, String>) -> Result<(), String> {
        let Some(head) = parse_head(reply) else {
            return Err(match read {
                Err(e) => format!("{e}; no complete response header"),
                Ok(_) => format!("no valid response header in \"{}\"", net::snippet(reply, 60)),
            });
        };
        let Some(status) = head.status else {
            return Err(format!("bad status line \"{}\"", net::snippet(reply, 60)));
        };
        if !self.status.iter().any(|(lo, hi)| (*lo..=*hi).contains(&status)) {
            return Err(format!("status {status} not accepted"));
        }
        if !self.needs_body() || self.method == HttpMethod::Head {
            return Ok(());
        }
        let raw = reply.get(head.body_start..).unwrap_or_default();
        let body = if head.chunked { decode_chunked(raw).0 } else { raw.to_vec() };
        let body = match head.content_length {
            Some(n) => body.get(..n.min(body.len())).unwrap_or_default().to_vec(),
            None => body,
        };
        if let Some(text) = &self.expect_body
            && !contains(&body, text)
        {
            let incomplete = if read.is_err() { " (body incomplete: timed out)" } else { "" };
            return Err(format!("body does not contain \"{}\"{incomplete}", net::snippet(text, 60)));
        }
        if let Some(re) = &self.expect_regex
            && !re.is_match(&body)
        {
            let incomplete = if read.is_err() { " (body incomplete: timed out)" } else { "" };
            return Err(format!("body does not match /{}/{incomplete}", re.as_str()));
        }
        Ok(())
    }
}

fn tls_server_name(sni: Option<&str>, host: &str, dest: SocketAddr) -> Result<ServerName<'static>, String> {
    let name = match sni {
        Some(s) => s.to_string(),
        None => host_name_part(host),
    };
    // A name that is neither a DNS name nor an address falls back to the address (no SNI sent).
    Ok(ServerName::try_from(name).unwrap_or_else(|_| ServerName::IpAddress(dest.ip().into())))
}

/// The host part of a Host header value: strips a port and IPv6 brackets.
fn host_name_part(host: &str) -> String {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default().to_string();
    }
    match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h.to_string(),
        _ => host.to_string(),
    }
}

/// The parts of a response header the check uses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    status: Option<u16>,
    content_length: Option<usize>,
    chunked: bool,
    body_start: usize,
}

/// Parses the status line and headers once the blank line has arrived.
fn parse_head(data: &[u8]) -> Option<Head> {
    let (head_len, body_start) = match data.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => (p, p + 4),
        None => {
            let p = data.windows(2).position(|w| w == b"\n\n")?;
            (p, p + 2)
        }
    };
    let head = String::from_utf8_lossy(data.get(..head_len)?);
    let mut lines = head.lines();
    let status_line = lines.next()?;
    let mut parts = status_line.split_whitespace();
    let status = match (parts.next(), parts.next()) {
        (Some(v), Some(code)) if v.starts_with("HTTP/") && code.len() == 3 => code.parse().ok(),
        _ => None,
    };
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("content-length") {
            content_length = value.parse().ok();
        } else if name.eq_ignore_ascii_case("transfer-encoding") && value.to_ascii_lowercase().contains("chunked") {
            chunked = true;
        }
    }
    Some(Head { status, content_length, chunked, body_start })
}

fn body_complete(head: &Head, body: &[u8]) -> bool {
    if head.chunked {
        decode_chunked(body).1
    } else if let Some(n) = head.content_length {
        body.len() >= n
    } else {
        false
    }
}

/// Decodes a chunked body; returns the data so far and whether the last chunk was seen.
fn decode_chunked(mut raw: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else { return (out, false) };
        let line = String::from_utf8_lossy(raw.get(..eol).unwrap_or_default()).to_string();
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else { return (out, false) };
        raw = raw.get(eol + 2..).unwrap_or_default();
        if size == 0 {
            return (out, true);
        }
        let take = size.min(raw.len());
        out.extend_from_slice(raw.get(..take).unwrap_or_default());
        if take < size {
            return (out, false);
        }
        raw = raw.get(size..).unwrap_or_default();
        raw = raw.strip_prefix(b"\r\n").unwrap_or(raw);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_sets() {
        assert_eq!(parse_status_set("200-299").unwrap(), vec![(200, 299)]);
        assert_eq!(parse_status_set("200, 301-302").unwrap(), vec![(200, 200), (301, 302)]);
        for bad in ["", "abc", "299-200", "99", "200-1000"] {
            assert!(parse_status_set(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn head_parsing() {
        let msg = b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello";
        let h = parse_head(msg).unwrap();
        // The body is what follows the blank line: the last 5 bytes.
        assert_eq!(h, Head { status: Some(204), content_length: Some(5), chunked: false, body_start: msg.len() - 5 });
        assert!(parse_head(b"HTTP/1.1 200 OK\r\n").is_none(), "header not complete");
        assert_eq!(parse_head(b"garbage\r\n\r\n").unwrap().status, None);
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").unwrap().chunked);
    }

    #[test]
    fn chunked_decoding() {
        assert_eq!(decode_chunked(b"4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n"), (b"Wikipedia".to_vec(), true));
        assert_eq!(decode_chunked(b"4\r\nWi"), (b"Wi".to_vec(), false));
        assert_eq!(decode_chunked(b"zz\r\n"), (vec![], false));
    }

    #[test]
    fn host_part() {
        assert_eq!(host_name_part("example.com:8443"), "example.com");
        assert_eq!(host_name_part("[fd00::1]:443"), "fd00::1");
        assert_eq!(host_name_part("www"), "www");
    }
}
