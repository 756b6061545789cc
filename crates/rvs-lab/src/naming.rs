//! The run-unique naming scheme. Every namespace and interface a lab creates
//! carries the run id `rvs` + 6 lowercase hex digits, so labs of different runs
//! (and of parallel tests) never collide and leftovers can be recognised:
//! namespaces are `<run>-<role>` (`rvs1a2b3c-client`), interfaces are
//! `<run>-<suffix>` and at most 15 bytes (`rvs1a2b3c-d1l`).

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{LabError, Result};

/// Prefix shared by every run id.
pub const RUN_PREFIX: &str = "rvs";
/// Number of hex digits after the prefix.
pub const RUN_HEX_DIGITS: usize = 6;
/// Linux limit for interface names (IFNAMSIZ - 1).
pub const MAX_IFNAME_LEN: usize = 15;

/// The short id of one lab run, e.g. `rvs1a2b3c`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId(String);

impl RunId {
    /// A fresh, random run id. Uniqueness on the machine is established by the
    /// caller claiming it (see the state module), not by this function.
    pub fn random() -> RunId {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        // RandomState is seeded from the OS per instance: a cheap source of
        // randomness without another dependency. Mix in pid, time and a counter
        // so two ids drawn in the same process differ even if seeds repeat.
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        hasher.write_u128(nanos);
        let value = hasher.finish() & 0x00ff_ffff;
        RunId(format!("{RUN_PREFIX}{value:06x}"))
    }

    /// Parses a run id (`rvs` + exactly 6 lowercase hex digits).
    pub fn parse(text: &str) -> Option<RunId> {
        let digits = text.strip_prefix(RUN_PREFIX)?;
        let valid = digits.len() == RUN_HEX_DIGITS && digits.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| RunId(text.to_owned()))
    }

    /// The run id a lab namespace name belongs to, if the name follows the
    /// scheme `<run id>-<role>` with a non-empty role.
    pub fn of_netns(name: &str) -> Option<RunId> {
        let (run, role) = name.split_at_checked(RUN_PREFIX.len() + RUN_HEX_DIGITS)?;
        let role = role.strip_prefix('-')?;
        if role.is_empty() || !role.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return None;
        }
        RunId::parse(run)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The namespace name for a role (`client`, `router`, `dir1`, `rs2` ...).
    pub fn netns(&self, role: &str) -> String {
        format!("{}-{role}", self.0)
    }

    /// The interface name for a suffix; fails if the result would exceed the
    /// kernel's 15-byte limit.
    pub fn ifname(&self, suffix: &str) -> Result<String> {
        let name = format!("{}-{suffix}", self.0);
        if name.len() > MAX_IFNAME_LEN {
            return Err(LabError::InvalidSpec(format!("interface name {name} is longer than {MAX_IFNAME_LEN} bytes")));
        }
        Ok(name)
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_follow_the_scheme_and_differ() {
        let a = RunId::random();
        let b = RunId::random();
        assert_eq!(RunId::parse(a.as_str()), Some(a.clone()));
        assert_eq!(a.as_str().len(), 9);
        // 24 random bits: two draws colliding has probability 2^-24.
        assert_ne!(a, b);
    }

    #[test]
    fn parse_rejects_other_names() {
        for bad in ["rvs", "rvs12345", "rvs1234567", "rvs12345g", "rvsABCDEF", "xvs123456", ""] {
            assert_eq!(RunId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn netns_names_map_back_to_their_run() {
        let run = RunId::parse("rvs0a1b2c").unwrap();
        assert_eq!(run.netns("client"), "rvs0a1b2c-client");
        assert_eq!(RunId::of_netns("rvs0a1b2c-client"), Some(run.clone()));
        assert_eq!(RunId::of_netns("rvs0a1b2c-"), None);
        assert_eq!(RunId::of_netns("rvs0a1b2cclient"), None);
        assert_eq!(RunId::of_netns("rvs0a1b2c-a b"), None);
        assert_eq!(RunId::of_netns("other-ns"), None);
    }

    #[test]
    fn interface_names_respect_ifnamsiz() {
        let run = RunId::parse("rvsffffff").unwrap();
        // 9 (run) + 1 (dash) + 5 = 15 bytes: the longest allowed.
        assert_eq!(run.ifname("sd1pX").unwrap().len(), 15);
        assert!(run.ifname("abcdef").is_err());
    }
}
