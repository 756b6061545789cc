//! Locality-based least connections (`lblc`, the kernel's ip_vs_lblc.c). PLACEHOLDER: being written.

use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::DestId;

/// Locality-based least connections.
#[derive(Debug, Default)]
pub struct LocalityLeastConnection;

impl Scheduler for LocalityLeastConnection {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Lblc
    }

    fn update_dests(&mut self, _dests: DestList<'_>, _change: DestChange) {}

    fn schedule(&mut self, dests: DestList<'_>, _req: &mut SchedRequest<'_>) -> Option<DestId> {
        dests.iter().find(|(_, _, d)| d.is_schedulable()).map(|(_, id, _)| id)
    }
}
