//! The daemon's refusals in ipvsadm's words (libipvs `ipvs_strerror`), chosen by the
//! error kind and by which command was refused.

use rvs_api::{ApiError, Command};

/// ipvsadm's message for a refused command: "Service already exists", "No such service"
/// or "Service not defined" (the latter for real-server commands) ...; the daemon's own
/// message for kinds ipvsadm has no text for.
pub fn refusal_message(cmd: Option<&Command>, err: &ApiError) -> String {
    let dest_command =
        matches!(cmd, Some(Command::AddDest { .. } | Command::EditDest { .. } | Command::DeleteDest { .. }));
    let text = match err.kind.as_str() {
        "service_exists" => "Service already exists",
        "no_scheduler" => "Scheduler or persistence engine not found",
        "no_such_service" if dest_command => "Service not defined",
        "no_such_service" => "No such service",
        "dest_exists" => "Destination already exists",
        "no_such_dest" => "No such destination",
        "daemon_running" => "Daemon has already run",
        "no_daemon" => "No daemon is running",
        _ => return err.message.clone(),
    };
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_api::ServiceId;

    #[test]
    fn service_missing_reads_differently_for_servers() {
        let err = ApiError::new("no_such_service", "whatever");
        let id = ServiceId::Fwmark { mark: 1, ipv6: false };
        assert_eq!(refusal_message(Some(&Command::DeleteService { id }), &err), "No such service");
        let del =
            Command::DeleteDest { service: id, addr: std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), port: 1 };
        assert_eq!(refusal_message(Some(&del), &err), "Service not defined");
        assert_eq!(refusal_message(None, &ApiError::new("internal", "boom")), "boom");
    }
}
