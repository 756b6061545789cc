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
use rvs_core::engine::{DropReason, Engine, InVerdict};
use rvs_core::random::SplitMix64;
use rvs_packet::{Parsed, parse_frame};

pub use config::PipelineConfig;
pub use counters::{
    DropCounters, ForwardedCounters, ParseErrorCounters, PassedCounters, PipelineCounters, ReplyCounters,
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
}

impl Pipeline {
    /// A pipeline deciding with `engine` (shared with the control plane, locked once per batch).
    pub fn new(engine: Arc<Mutex<Engine>>, config: PipelineConfig) -> Pipeline {
        let rng = SplitMix64::new(config.seed);
        Pipeline { engine, config, counters: PipelineCounters::default(), rng, ident: 0 }
    }

    /// Processes one rx batch. Frames to transmit (rewritten in place or built, e.g. ICMP
    /// replies) are appended to `tx`, each with the `ifindex` to leave by; give `tx` room for
    /// at least `rx.len()` frames (a full tx batch drops and counts `tx_full`). Frames the
    /// kernel should handle are simply not forwarded (counted as passed). `rx`'s frames are
    /// left in an unspecified state.
    pub fn process(&mut self, rx: &mut Batch, tx: &mut Batch, nexthops: &mut dyn NextHops, now: Instant) {
        let Pipeline { engine, config, counters, rng, ident } = self;
        let mut engine = engine.lock().unwrap_or_else(PoisonError::into_inner);
        let mut ctx = Ctx { engine: &mut engine, config, rng, ident, nexthops, tx, now };
        for frame in rx.frames_mut() {
            let outcome = ctx.handle(frame);
            counters.record(outcome);
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
        let packet = classify::engine_packet(frame.data(), &summary);
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
}
