//! Tracked objects (interfaces, ping targets, scripts, files) and their effect on an instance:
//! a failing tracker with weight 0 forces FAULT; otherwise a positive weight is added to the
//! priority while the tracker is up and a negative weight is added while it is down (keepalived
//! semantics), `reverse` inverting up/down. The sum is clamped to 1..=254; an address owner
//! (base priority 255) is never adjusted.

/// What a tracker watches (informational; the daemon maps its probes onto [`TrackSet::set`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// Link state of an interface.
    Interface,
    /// Reachability of a ping target.
    Ping,
    /// Exit status of a script.
    Script,
    /// Contents of a file.
    File,
}

/// One tracked object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    /// Name for logs.
    pub name: String,
    /// What it watches.
    pub kind: TrackKind,
    /// -253..=253; 0 means "fault on failure".
    pub weight: i16,
    /// Treat up as down and down as up.
    pub reverse: bool,
}

/// Largest tracker weight magnitude.
pub const MAX_WEIGHT: i16 = 253;

/// Index of a tracker in its [`TrackSet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrackerId(pub usize);

/// A weight outside -253..=253.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("tracker weight {0} outside -253..=253")]
pub struct BadWeight(pub i16);

/// An instance's trackers and their last reported status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackSet {
    entries: Vec<(Tracker, bool)>,
}

impl TrackSet {
    /// Adds a tracker whose probe currently reports `up`.
    pub fn add(&mut self, tracker: Tracker, up: bool) -> Result<TrackerId, BadWeight> {
        if !(-MAX_WEIGHT..=MAX_WEIGHT).contains(&tracker.weight) {
            return Err(BadWeight(tracker.weight));
        }
        self.entries.push((tracker, up));
        Ok(TrackerId(self.entries.len() - 1))
    }

    /// Records a probe result; returns whether it changed. Unknown ids are ignored.
    pub fn set(&mut self, id: TrackerId, up: bool) -> bool {
        match self.entries.get_mut(id.0) {
            Some((_, current)) if *current != up => {
                *current = up;
                true
            }
            _ => false,
        }
    }

    fn effective_up(tracker: &Tracker, up: bool) -> bool {
        up != tracker.reverse
    }

    /// Whether a weight-0 tracker is down.
    pub fn faulted(&self) -> bool {
        self.entries.iter().any(|(t, up)| t.weight == 0 && !Self::effective_up(t, *up))
    }

    /// The priority after weights, clamped to 1..=254; 255 stays 255.
    pub fn effective_priority(&self, base: u8) -> u8 {
        if base == 255 {
            return 255;
        }
        let mut p = i32::from(base);
        for (t, up) in &self.entries {
            let up = Self::effective_up(t, *up);
            if (t.weight > 0 && up) || (t.weight < 0 && !up) {
                p += i32::from(t.weight);
            }
        }
        p.clamp(1, 254) as u8
    }

    /// The trackers.
    pub fn trackers(&self) -> impl Iterator<Item = (&Tracker, bool)> {
        self.entries.iter().map(|(t, up)| (t, *up))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(weight: i16, reverse: bool) -> Tracker {
        Tracker { name: "x".into(), kind: TrackKind::Script, weight, reverse }
    }

    #[test]
    fn weights_follow_keepalived_rules() {
        let mut s = TrackSet::default();
        let plus = s.add(t(20, false), true).expect("ok");
        let minus = s.add(t(-30, false), true).expect("ok");
        assert_eq!(s.effective_priority(100), 120); // +20 while up, -30 only when down
        s.set(minus, false);
        assert_eq!(s.effective_priority(100), 90);
        s.set(plus, false);
        assert_eq!(s.effective_priority(100), 70);
        assert_eq!(s.effective_priority(20), 1); // clamped at 1
        assert_eq!(s.effective_priority(255), 255); // owner untouched
        assert!(!s.faulted());
    }

    #[test]
    fn reverse_and_fault_and_clamp() {
        let mut s = TrackSet::default();
        let f = s.add(t(0, true), false).expect("ok"); // reversed: reported down = effectively up
        assert!(!s.faulted());
        s.set(f, true);
        assert!(s.faulted());
        let mut hi = TrackSet::default();
        hi.add(t(200, false), true).expect("ok");
        assert_eq!(hi.effective_priority(100), 254);
        assert_eq!(TrackSet::default().add(t(254, false), true), Err(BadWeight(254)));
        assert!(!hi.set(TrackerId(9), false));
    }
}
