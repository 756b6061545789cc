//! What the data path tells health checking: per real server, the events that show whether it
//! answers (a SYN forwarded, a connection established, a SYN answered with RST, a UDP reply).
//! Off by default; the daemon turns it on when it runs passive health checks, and drains the
//! events after each batch.

use super::Engine;
use crate::dest::DestId;

/// Most events kept between two drains; more are counted as lost.
pub const MAX_PENDING_EVENTS: usize = 8192;

/// Something the data path saw a real server do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestEvent {
    /// A client SYN was forwarded to it (a new TCP connection).
    SynForwarded,
    /// A TCP connection to it reached ESTABLISHED (it answered the SYN).
    Established,
    /// It answered a SYN with a RST (seen with NAT).
    RstToSyn,
    /// It sent a UDP reply (seen with NAT).
    UdpReply,
}

impl Engine {
    /// Turns recording of [`DestEvent`]s on or off.
    pub fn set_observe_dests(&mut self, on: bool) {
        self.observe_dests = on;
        if !on {
            self.dest_events.clear();
        }
    }

    /// Moves the recorded events into `out` (destination, event), oldest first.
    pub fn drain_dest_events(&mut self, out: &mut Vec<(DestId, DestEvent)>) {
        out.append(&mut self.dest_events);
    }

    /// Events dropped because nobody drained them in time.
    pub fn lost_dest_events(&self) -> u64 {
        self.lost_dest_events
    }

    pub(crate) fn record(&mut self, dest: DestId, event: DestEvent) {
        if !self.observe_dests {
            return;
        }
        if self.dest_events.len() >= MAX_PENDING_EVENTS {
            self.lost_dest_events += 1;
            return;
        }
        self.dest_events.push((dest, event));
    }
}
