//! Maglev hashing (`mh`, the kernel's ip_vs_mh.c). PLACEHOLDER: being written.

use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::DestId;

/// Maglev hashing.
#[derive(Debug, Default)]
pub struct MaglevHashing;

impl Scheduler for MaglevHashing {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Mh
    }

    fn update_dests(&mut self, _dests: DestList<'_>, _change: DestChange) {}

    fn schedule(&mut self, dests: DestList<'_>, _req: &mut SchedRequest<'_>) -> Option<DestId> {
        dests.iter().find(|(_, _, d)| d.is_schedulable()).map(|(_, id, _)| id)
    }
}
