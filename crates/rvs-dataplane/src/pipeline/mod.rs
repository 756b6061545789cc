//! The packet pipeline: one rx batch in, frames to transmit out.
//!
//! ```text
//! frame -> parse -> own address? -> ICMP error? -> engine.conn_in -> Forward(method) -> rewrite -> tx
//!                                                  NotOurs -> engine.conn_out -> NAT reply -> tx
//! ```
//!
//! Per frame: [`rvs_packet::parse_frame`]; ARP, unparsable frames and frames to the
//! director's own addresses are left to the kernel; ICMP errors quoting a connection are
//! translated (`icmp_error`); other IP packets go to the engine (`classify` builds its
//! view), and its verdict picks the rewrite (`forward`): direct routing (MACs only), NAT
//! (destination or, for replies, source rewritten), tunnel (outer header prepended), or an
//! ICMP error built in place of the frame (`reply`). Every frame's fate is counted once
//! (`counters`).
//!
//! Firewall marks: a frame's [`Frame::mark`] becomes the engine packet's `fwmark`, so a
//! frame from a backend that sees marks (NFQUEUE) can open a connection of a fwmark
//! service. The same packet is also tapped by AF_PACKET earlier, unmarked: such an unmarked
//! copy of a fwmark service's connection is left alone (counted `unmarked_fwmark`), so each
//! packet is forwarded once, from its marked copy. An unmarked packet that an address
//! service matches is that service's (its steering rule keeps it from ever being marked
//! and queued).
//!
//! The engine is locked once per batch. Forwarded frames are moved into the tx batch by
//! swapping buffers with a free tx frame (no copy, no allocation): after
//! [`Pipeline::process`] the rx batch's contents are unspecified. Replies are built directly
//! in a tx frame. Frames left to the kernel (or dropped) are simply not transmitted.

mod classify;
mod config;
mod counters;
mod forward;
mod icmp_error;
mod reply;

use std::sync::{Arc, Mutex, PoisonError};

use rvs_core::Instant;
use rvs_core::engine::{DropReason, Engine, InVerdict, Packet, ServiceId};
use rvs_core::random::SplitMix64;
use rvs_packet::{Parsed, parse_frame};

pub use config::PipelineConfig;
pub use counters::{
    DropCounters, Fate, ForwardedCounters, ParseErrorCounters, PassedCounters, PipelineCounters, ReplyCounters,
};

use crate::io::{Batch, Frame};
use crate::nexthop::NextHops;
use counters::{Dropped, Outcome, Passed};

/// The director's packet path over one engine.
#[derive(Debug)]
pub struct Pipeline {
    engine: Arc<Mutex<Engine>>,
    config: PipelineConfig,
    counters: PipelineCounters,
    rng: SplitMix64,
    /// Identification of the next outer IPv4 tunnel header.
    ident: u16,
    /// Whether the engine has a firewall-mark service, and at which engine generation that
    /// was found out.
    fwmark_services: Option<(u64, bool)>,
}

impl Pipeline {
    /// A pipeline deciding with `engine` (shared with the control plane, locked once per batch).
    pub fn new(engine: Arc<Mutex<Engine>>, config: PipelineConfig) -> Pipeline {
        let rng = SplitMix64::new(config.seed);
        Pipeline { engine, config, counters: PipelineCounters::default(), rng, ident: 0, fwmark_services: None }
    }

    /// Processes one rx batch. Frames to transmit (rewritten in place or built, e.g. ICMP
    /// replies) are appended to `tx`, each with the `ifindex` to leave by; give `tx` room for
    /// at least `rx.len()` frames (a full tx batch drops and counts `tx_full`). Frames the
    /// kernel should handle are simply not forwarded (counted as passed). `rx`'s frames are
    /// left in an unspecified state.
    pub fn process(&mut self, rx: &mut Batch, tx: &mut Batch, nexthops: &mut dyn NextHops, now: Instant) {
        self.process_batch(rx, tx, nexthops, now, None);
    }

    /// Like [`Pipeline::process`], and also tells what became of each frame: `fates` is
    /// cleared and gets one entry per frame of `rx`, in order (what a backend needs to give
    /// the kernel a verdict per packet).
    pub fn process_with_fates(
        &mut self,
        rx: &mut Batch,
        tx: &mut Batch,
        nexthops: &mut dyn NextHops,
        now: Instant,
        fates: &mut Vec<Fate>,
    ) {
        fates.clear();
        self.process_batch(rx, tx, nexthops, now, Some(fates));
    }

    fn process_batch(
        &mut self,
        rx: &mut Batch,
        tx: &mut Batch,
        nexthops: &mut dyn NextHops,
        now: Instant,
        mut fates: Option<&mut Vec<Fate>>,
    ) {
        let Pipeline { engine, config, counters, rng, ident, fwmark_services } = self;
        let mut engine = engine.lock().unwrap_or_else(PoisonError::into_inner);
        let has_fwmark = match *fwmark_services {
            Some((generation, has)) if generation == engine.generation() => has,
            _ => {
                let has = engine.services().any(|(_, s)| s.config.key.is_fwmark());
                *fwmark_services = Some((engine.generation(), has));
                has
            }
        };
        let mut ctx = Ctx { engine: &mut engine, config, rng, ident, nexthops, tx, now, has_fwmark };
        for frame in rx.frames_mut() {
            let outcome = ctx.handle(frame);
            counters.record(outcome);
            if let Some(fates) = fates.as_deref_mut() {
                fates.push(outcome.fate());
            }
        }
    }

    /// Every counter since creation.
    pub fn counters(&self) -> &PipelineCounters {
        &self.counters
    }

    /// The settings.
    pub fn config(&self) -> &PipelineConfig {
        &self.config
    }

    /// The shared engine.
    pub fn engine(&self) -> &Arc<Mutex<Engine>> {
        &self.engine
    }
}

/// What one batch works with: the locked engine and the caller's next hops and tx batch.
struct Ctx<'a> {
    engine: &'a mut Engine,
    config: &'a PipelineConfig,
    rng: &'a mut SplitMix64,
    ident: &'a mut u16,
    nexthops: &'a mut dyn NextHops,
    tx: &'a mut Batch,
    now: Instant,
    /// The engine has a firewall-mark service (unmarked copies of its packets are checked).
    has_fwmark: bool,
}

impl Ctx<'_> {
    /// Decides and performs what happens to one frame.
    fn handle(&mut self, frame: &mut Frame) -> Outcome {
        let summary = match parse_frame(frame.data()) {
            Ok(Parsed::Ip(s)) => s,
            Ok(Parsed::Arp { .. }) => return Outcome::Passed(Passed::Arp),
            Err(e) => return Outcome::Passed(Passed::Unparsed(e)),
        };
        if self.config.is_own(&summary.dst) {
            return Outcome::Passed(Passed::OwnAddress);
        }
        if summary.is_icmp_error() {
            return self.icmp_error(frame, &summary);
        }
        let packet = classify::engine_packet(frame.data(), &summary, frame.mark);
        if packet.fwmark == 0 && self.has_fwmark && self.is_fwmark_connection(&packet) {
            return Outcome::Passed(Passed::UnmarkedFwmark);
        }
        match self.engine.conn_in(&packet, self.now, self.rng) {
            InVerdict::Forward(f) => self.forward_in(frame, &summary, &f),
            InVerdict::NotOurs => self.reply_or_pass(frame, &summary, &packet),
            InVerdict::NoConnection => Outcome::Passed(Passed::NoConnection),
            InVerdict::Unreachable => self.port_unreachable(frame, &summary),
            InVerdict::Drop(DropReason::DestUnavailable) => Outcome::Dropped(Dropped::DestUnavailable),
            InVerdict::Drop(DropReason::TableFull) => Outcome::Dropped(Dropped::TableFull),
            InVerdict::Drop(DropReason::Defense) => Outcome::Dropped(Dropped::Defense),
        }
    }

    /// Does the packet belong (client to virtual side) to a connection of a firewall-mark
    /// service? Read-only: the engine's state and counters do not move.
    fn is_fwmark_connection(&self, p: &Packet) -> bool {
        let conns = self.engine.conns();
        let Some(conn) = conns.find_in(p.protocol, &p.src, p.sport, &p.dst, p.dport).and_then(|id| conns.get(id))
        else {
            return false;
        };
        self.engine
            .dest(conn.dest)
            .and_then(|d| self.engine.service(ServiceId(d.service)))
            .is_some_and(|s| s.config.key.is_fwmark())
    }
}
