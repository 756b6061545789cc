//! The minimal transaction between two states: what a reload sends.
//!
//! Services and real servers are matched by identity (service id; real server address and
//! effective port). What exists on both sides and differs is edited in place (`EditService`,
//! `EditDest`), so its connections, counters and scheduler state stay; what exists on one
//! side only is deleted or added. Order inside the transaction: stop changed sync daemons,
//! delete services, then per kept service delete, edit and add real servers, then add new
//! services with their real servers, set timeouts, start sync daemons. Deleting first frees
//! nothing that a later command needs, and every command refers only to things that exist
//! at its point in the sequence.

use rvs_api::{Command, DestSpec};

use crate::{Config, ServiceEntry, TableSpec};

/// The transaction that turns the state of `old` into the state of `new`. Identical
/// configurations give an empty list. Director settings and sysctls are not commands; the
/// daemon applies those itself.
pub fn diff(old: &Config, new: &Config) -> Vec<Command> {
    diff_tables(&old.table(), &new.table())
}

/// The transaction that turns `old` into `new`.
pub fn diff_tables(old: &TableSpec, new: &TableSpec) -> Vec<Command> {
    let mut cmds = Vec::new();
    for d in &old.sync_daemons {
        if !new.sync_daemons.contains(d) {
            cmds.push(Command::StopDaemon { role: d.role });
        }
    }
    for s in &old.services {
        if new.service(&s.spec.id).is_none() {
            cmds.push(Command::DeleteService { id: s.spec.id });
        }
    }
    for s in &new.services {
        match old.service(&s.spec.id) {
            Some(o) => diff_service(o, s, &mut cmds),
            None => {
                cmds.push(Command::AddService(s.spec.clone()));
                for d in &s.reals {
                    cmds.push(Command::AddDest { service: s.spec.id, dest: d.clone() });
                }
            }
        }
    }
    if old.timeouts != new.timeouts {
        let t = new.timeouts;
        cmds.push(Command::SetTimeouts { tcp: t.tcp.into(), tcpfin: t.tcpfin.into(), udp: t.udp.into() });
    }
    for d in &new.sync_daemons {
        if !old.sync_daemons.contains(d) {
            cmds.push(Command::StartDaemon(d.clone()));
        }
    }
    cmds
}

fn same_real(a: &DestSpec, b: &DestSpec) -> bool {
    a.addr == b.addr && a.port == b.port
}

fn diff_service(old: &ServiceEntry, new: &ServiceEntry, cmds: &mut Vec<Command>) {
    let service = new.spec.id;
    if old.spec != new.spec {
        cmds.push(Command::EditService(new.spec.clone()));
    }
    for o in &old.reals {
        if !new.reals.iter().any(|n| same_real(n, o)) {
            cmds.push(Command::DeleteDest { service, addr: o.addr, port: o.port });
        }
    }
    for n in &new.reals {
        match old.reals.iter().find(|o| same_real(o, n)) {
            Some(o) if o == n => {}
            Some(_) => cmds.push(Command::EditDest { service, dest: n.clone() }),
            None => cmds.push(Command::AddDest { service, dest: n.clone() }),
        }
    }
}
