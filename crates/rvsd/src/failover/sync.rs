//! Connection sync between directors (filled in by the sync step).

/// Connection sync counters.
#[derive(Debug, Default)]
pub struct SyncStats {}

impl SyncStats {
    /// `(name, value)` pairs for `Status`.
    pub fn counters(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
}
