//! Helpers shared by the integration tests (hex capture files).
#![allow(dead_code)]

/// The frames of a capture file: every non-empty line not starting with '#', hex-decoded.
pub fn frames(text: &str) -> Vec<Vec<u8>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| (0..l.len()).step_by(2).map(|i| u8::from_str_radix(&l[i..i + 2], 16).expect("hex")).collect())
        .collect()
}
