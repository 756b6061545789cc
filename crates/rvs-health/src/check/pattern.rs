//! Payload text and reply patterns: piranha-style escapes (`\n`, `\r`, ...), hex payloads, and
//! the patterns replies are matched against: text with `*` wildcards or hex with `X` nibbles,
//! both anchored at the start of the reply, or a regex searched anywhere.

use regex::bytes::Regex;

/// Expands escapes: `\n \r \t \0 \\ \' \"` and `\xHH`. Other characters are kept as UTF-8.
pub fn unescape(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        match chars.next() {
            Some('n') => out.push(b'\n'),
            Some('r') => out.push(b'\r'),
            Some('t') => out.push(b'\t'),
            Some('0') => out.push(0),
            Some('\\') => out.push(b'\\'),
            Some('\'') => out.push(b'\''),
            Some('"') => out.push(b'"'),
            Some('x') => {
                let hi = chars.next().and_then(|c| c.to_digit(16));
                let lo = chars.next().and_then(|c| c.to_digit(16));
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push((h * 16 + l) as u8),
                    _ => return Err(format!("bad \\x escape in {text:?}")),
                }
            }
            Some(other) => return Err(format!("unknown escape \\{other} in {text:?}")),
            None => return Err(format!("trailing backslash in {text:?}")),
        }
    }
    Ok(out)
}

/// Parses hex digits (whitespace ignored) into bytes.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let nibbles = hex_nibbles(text, false)?;
    Ok(nibbles.chunks(2).map(|p| p.iter().fold(0u8, |acc, (v, _)| (acc << 4) | v)).collect())
}

/// Nibbles as (value, mask) pairs; `X` (if allowed) has mask 0.
fn hex_nibbles(text: &str, wildcard: bool) -> Result<Vec<(u8, u8)>, String> {
    let mut out = Vec::new();
    for c in text.chars().filter(|c| !c.is_whitespace()) {
        if wildcard && (c == 'X' || c == 'x') {
            out.push((0, 0));
        } else if let Some(d) = c.to_digit(16) {
            out.push((d as u8, 0xF));
        } else {
            return Err(format!("not a hex digit: {c:?} in {text:?}"));
        }
    }
    if out.len() % 2 != 0 {
        return Err(format!("odd number of hex digits in {text:?}"));
    }
    Ok(out)
}

/// A pattern a reply must match.
#[derive(Debug, Clone)]
pub enum ReplyPattern {
    /// Literal pieces separated by `*`, anchored at the start of the reply.
    Glob(Vec<Vec<u8>>),
    /// Bytes with per-byte masks, anchored at the start.
    Hex(Vec<(u8, u8)>),
    /// A regex searched anywhere in the reply.
    Regex(Regex),
}

impl ReplyPattern {
    /// A text pattern (escapes expanded; `*` = anything).
    pub fn glob(text: &str) -> Result<Self, String> {
        let parts = text.split('*').map(unescape).collect::<Result<Vec<_>, _>>()?;
        Ok(ReplyPattern::Glob(parts))
    }

    /// A hex pattern (`X` = any nibble).
    pub fn hex(text: &str) -> Result<Self, String> {
        let nibbles = hex_nibbles(text, true)?;
        let bytes = nibbles
            .chunks(2)
            .map(|p| p.iter().fold((0u8, 0u8), |(v, m), (nv, nm)| ((v << 4) | nv, (m << 4) | nm)))
            .collect();
        Ok(ReplyPattern::Hex(bytes))
    }

    /// A regex.
    pub fn regex(text: &str) -> Result<Self, String> {
        Regex::new(text).map(ReplyPattern::Regex).map_err(|e| e.to_string())
    }

    /// Whether `reply` matches.
    pub fn matches(&self, reply: &[u8]) -> bool {
        match self {
            ReplyPattern::Glob(parts) => glob_prefix(parts, reply),
            ReplyPattern::Hex(bytes) => {
                reply.len() >= bytes.len() && bytes.iter().zip(reply).all(|((v, m), r)| r & m == v & m)
            }
            ReplyPattern::Regex(re) => re.is_match(reply),
        }
    }
}

/// `parts` joined by `*` matches a prefix of `data`: the first part is a prefix, each next part
/// is found (leftmost) after the previous one.
fn glob_prefix(parts: &[Vec<u8>], data: &[u8]) -> bool {
    let Some((first, rest)) = parts.split_first() else { return true };
    let Some(mut tail) = data.strip_prefix(first.as_slice()) else { return false };
    for part in rest {
        if part.is_empty() {
            continue;
        }
        match find(tail, part) {
            Some(at) => tail = tail.get(at + part.len()..).unwrap_or_default(),
            None => return false,
        }
    }
    true
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    find(hay, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(unescape(r"GET / HTTP/1.0\r\n\r\n").unwrap(), b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(unescape(r"a\\b\'c\x41\0").unwrap(), b"a\\b'cA\0");
        assert!(unescape(r"bad\q").is_err());
        assert!(unescape("trailing\\").is_err());
        assert!(unescape(r"\x4").is_err());
    }

    #[test]
    fn hex_payloads() {
        assert_eq!(parse_hex("de ad BE ef").unwrap(), [0xde, 0xad, 0xbe, 0xef]);
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
    }

    #[test]
    fn glob_is_anchored_at_start_with_wildcards() {
        let p = ReplyPattern::glob("HTTP/1.* 200").unwrap();
        assert!(p.matches(b"HTTP/1.1 200 OK\r\n"));
        assert!(!p.matches(b"HTTP/1.1 500 Error"));
        assert!(!p.matches(b"xHTTP/1.1 200"));
        assert!(ReplyPattern::glob("*").unwrap().matches(b""));
        assert!(ReplyPattern::glob(r"+OK*\r\n").unwrap().matches(b"+OK ready\r\n"));
        assert!(!ReplyPattern::glob("+OK").unwrap().matches(b"+O"));
    }

    #[test]
    fn hex_pattern_with_wildcard_nibbles() {
        let p = ReplyPattern::hex("de aX").unwrap();
        assert!(p.matches(&[0xde, 0xa7, 0x00]));
        assert!(!p.matches(&[0xde, 0xb7]));
        assert!(!p.matches(&[0xde]));
    }

    #[test]
    fn regex_searches_anywhere() {
        let p = ReplyPattern::regex("ver(sion)? [0-9]+").unwrap();
        assert!(p.matches(b"server version 12 ready"));
        assert!(ReplyPattern::regex("(").is_err());
    }
}
