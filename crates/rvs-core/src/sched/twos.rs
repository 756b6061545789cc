//! Power of two choices (`twos`, the kernel's ip_vs_twos.c). PLACEHOLDER: being written.

use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::DestId;

/// Power of two choices.
#[derive(Debug, Default)]
pub struct PowerOfTwoChoices;

impl Scheduler for PowerOfTwoChoices {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Twos
    }

    fn update_dests(&mut self, _dests: DestList<'_>, _change: DestChange) {}

    fn schedule(&mut self, dests: DestList<'_>, _req: &mut SchedRequest<'_>) -> Option<DestId> {
        dests.iter().find(|(_, _, d)| d.is_schedulable()).map(|(_, id, _)| id)
    }
}
