//! Locality-based least connections with replication (`lblcr`, the kernel's ip_vs_lblcr.c). PLACEHOLDER: being written.

use super::{DestChange, DestList, SchedRequest, Scheduler, SchedulerKind};
use crate::dest::DestId;

/// Locality-based least connections with replication.
#[derive(Debug, Default)]
pub struct LocalityReplicated;

impl Scheduler for LocalityReplicated {
    fn kind(&self) -> SchedulerKind {
        SchedulerKind::Lblcr
    }

    fn update_dests(&mut self, _dests: DestList<'_>, _change: DestChange) {}

    fn schedule(&mut self, dests: DestList<'_>, _req: &mut SchedRequest<'_>) -> Option<DestId> {
        dests.iter().find(|(_, _, d)| d.is_schedulable()).map(|(_, id, _)| id)
    }
}
