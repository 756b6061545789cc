//! `--timeout` and `--daemon`.

use rvs_api::{SyncDaemonSpec, SyncRole, TimeoutsInfo};

use crate::names::ntop;

/// `"Timeout (tcp tcpfin udp): %d %d %d\n"`.
pub fn render_timeouts(t: &TimeoutsInfo) -> String {
    format!("Timeout (tcp tcpfin udp): {} {} {}\n", t.tcp, t.tcpfin, t.udp)
}

/// One line per running daemon, master first: `"%s sync daemon (mcast=%s, syncid=%d"`, then
/// `", maxlen=%u"`, `", group=%s"`, `", port=%u"`, `", ttl=%u"` for the values that are set,
/// then `")"`. Nothing at all when no daemon runs.
pub fn render_daemons(daemons: &[SyncDaemonSpec]) -> String {
    let mut out = String::new();
    for role in [SyncRole::Master, SyncRole::Backup] {
        for d in daemons.iter().filter(|d| d.role == role) {
            let name = if role == SyncRole::Master { "master" } else { "backup" };
            out.push_str(&format!("{name} sync daemon (mcast={}, syncid={}", d.mcast_interface, d.syncid));
            if d.maxlen != 0 {
                out.push_str(&format!(", maxlen={}", d.maxlen));
            }
            out.push_str(&format!(", group={}", ntop(&d.group)));
            if d.port != 0 {
                out.push_str(&format!(", port={}", d.port));
            }
            if d.ttl != 0 {
                out.push_str(&format!(", ttl={}", d.ttl));
            }
            out.push_str(")\n");
        }
    }
    out
}
