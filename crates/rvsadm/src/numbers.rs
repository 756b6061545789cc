//! Number parsing the way ipvsadm's C code does it (`strtol`, `atoi`) and the `largenum`
//! column format of the statistics views.

/// True for the bytes C's `isspace` accepts in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// `strtol(s, &end, 10)` requiring that the whole string is consumed and at least one digit
/// was read: leading white space and one sign are accepted, as in C. `None` on anything
/// else or on overflow of a 64-bit `long`.
pub fn strtol_exact(s: &str) -> Option<i64> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() && is_c_space(bytes[i]) {
        i += 1;
    }
    let mut negative = false;
    if let Some(&b) = bytes.get(i)
        && (b == b'+' || b == b'-')
    {
        negative = b == b'-';
        i += 1;
    }
    let digits = bytes.get(i..)?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let mut value: i64 = 0;
    for &d in digits {
        value = value.checked_mul(10)?.checked_sub(i64::from(d - b'0'))?;
    }
    if negative { Some(value) } else { value.checked_neg() }
}

/// ipvsadm's `string_to_number`: a whole decimal number within `min..=max`.
pub fn string_to_number(s: &str, min: i64, max: i64) -> Option<i64> {
    strtol_exact(s).filter(|n| (min..=max).contains(n))
}

/// C's `atoi`: leading white space, a sign, then as many digits as there are; 0 if none.
/// Saturates instead of overflowing.
pub fn atoi(s: &str) -> i64 {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() && is_c_space(bytes[i]) {
        i += 1;
    }
    let mut negative = false;
    if let Some(&b) = bytes.get(i)
        && (b == b'+' || b == b'-')
    {
        negative = b == b'-';
        i += 1;
    }
    let mut value: i64 = 0;
    while let Some(&d) = bytes.get(i) {
        if !d.is_ascii_digit() {
            break;
        }
        value = value.saturating_mul(10).saturating_add(i64::from(d - b'0'));
        i += 1;
    }
    if negative { -value } else { value }
}

/// A counter as ipvsadm's `print_largenum` writes it: with `exact`, right-aligned in
/// `max(9, digits + 1)` columns; otherwise scaled to K/M/G/T (powers of 1000) so that it
/// fits 9 columns: `< 1e8` as `%9llu`, `< 1e9` as `%8lluK` of n/1e3, `< 1e11` `%8lluM`
/// of n/1e6, `< 1e14` `%8lluG` of n/1e9, else `%8lluT` of n/1e12.
pub fn largenum(n: u64, exact: bool) -> String {
    if exact {
        let digits = n.to_string();
        let width = if digits.len() <= 8 { 9 } else { digits.len() + 1 };
        return format!("{digits:>width$}");
    }
    if n < 100_000_000 {
        format!("{n:>9}")
    } else if n < 1_000_000_000 {
        format!("{:>8}K", n / 1_000)
    } else if n < 100_000_000_000 {
        format!("{:>8}M", n / 1_000_000)
    } else if n < 100_000_000_000_000 {
        format!("{:>8}G", n / 1_000_000_000)
    } else {
        format!("{:>8}T", n / 1_000_000_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtol_accepts_what_c_accepts() {
        assert_eq!(strtol_exact("80"), Some(80));
        assert_eq!(strtol_exact(" +80"), Some(80));
        assert_eq!(strtol_exact("-0"), Some(0));
        assert_eq!(strtol_exact("-5"), Some(-5));
        assert_eq!(strtol_exact(""), None);
        assert_eq!(strtol_exact("+"), None);
        assert_eq!(strtol_exact("80x"), None);
        assert_eq!(strtol_exact("80 "), None);
        assert_eq!(strtol_exact("99999999999999999999"), None);
        assert_eq!(string_to_number("65535", 0, 65535), Some(65535));
        assert_eq!(string_to_number("65536", 0, 65535), None);
    }

    #[test]
    fn atoi_stops_at_the_first_non_digit() {
        assert_eq!(atoi("64abc"), 64);
        assert_eq!(atoi("abc"), 0);
        assert_eq!(atoi("  -3"), -3);
    }

    #[test]
    fn largenum_scales_at_the_documented_thresholds() {
        // "%9llu" below 1e8.
        assert_eq!(largenum(99_999_999, false), " 99999999");
        // "%8lluK" of n/1000 from 1e8.
        assert_eq!(largenum(123_456_789, false), "  123456K");
        // "%8lluM" of n/1e6 from 1e9.
        assert_eq!(largenum(1_000_000_000, false), "    1000M");
        // "%8lluG" of n/1e9 from 1e11.
        assert_eq!(largenum(100_000_000_000, false), "     100G");
        // "%8lluT" of n/1e12 from 1e14.
        assert_eq!(largenum(100_000_000_000_000, false), "     100T");
        // exact: width max(9, len + 1).
        assert_eq!(largenum(5, true), "        5");
        assert_eq!(largenum(123_456_789, true), " 123456789");
    }
}
