//! Notify commands (keepalived's `notify_*`, heartbeat's resource scripts): run with `sh -c`
//! on every transition, without waiting (a reaper thread collects each one).

use std::process::{Command, Stdio};

use rvs_config::failover::Notify;
use tracing::warn;

/// The state names passed to commands (keepalived's).
pub fn state_word(state: rvs_ha::vrrp::state::State) -> &'static str {
    use rvs_ha::vrrp::state::State;
    match state {
        State::Initialize => "STOP",
        State::Backup => "BACKUP",
        State::Master => "MASTER",
        State::Fault => "FAULT",
    }
}

/// The commands to run for `state`: the state's own, then `any` with
/// `INSTANCE <name> <STATE> <priority>` as arguments.
pub fn commands(notify: &Notify, name: &str, state: &str, priority: u8) -> Vec<(String, Vec<String>)> {
    let own = match state {
        "MASTER" => &notify.master,
        "BACKUP" => &notify.backup,
        "FAULT" => &notify.fault,
        _ => &notify.stop,
    };
    let mut out = Vec::new();
    if let Some(c) = own {
        out.push((c.clone(), Vec::new()));
    }
    if let Some(c) = &notify.any {
        out.push((c.clone(), vec!["INSTANCE".into(), name.into(), state.into(), priority.to_string()]));
    }
    out
}

/// Starts the commands for a transition. `wait` = true runs them to completion (used when
/// stopping, so `stop` scripts finish before the daemon exits).
pub fn run(notify: &Notify, name: &str, state: &str, priority: u8, wait: bool) {
    for (cmd, args) in commands(notify, name, state, priority) {
        let mut c = Command::new("sh");
        // `sh -c 'CMD "$@"' sh ARGS...` passes the arguments to the command.
        let script = if args.is_empty() { cmd.clone() } else { format!("{cmd} \"$@\"") };
        c.arg("-c").arg(script).arg("sh").args(&args).stdin(Stdio::null());
        match c.spawn() {
            Ok(mut child) if wait => {
                let _ = child.wait();
            }
            Ok(mut child) => {
                let _ = std::thread::Builder::new().name("rvsd-notify".into()).spawn(move || child.wait());
            }
            Err(e) => warn!(command = %cmd, error = %e, "notify command could not start"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_command_then_any_with_keepalived_arguments() {
        let n = Notify { master: Some("m".into()), any: Some("a".into()), ..Notify::default() };
        let c = commands(&n, "VI_1", "MASTER", 150);
        assert_eq!(c[0], ("m".to_string(), vec![]));
        assert_eq!(c[1].1, vec!["INSTANCE", "VI_1", "MASTER", "150"]);
        assert_eq!(commands(&n, "VI_1", "BACKUP", 100).len(), 1, "no backup command: only `any`");
    }
}
