//! nginx as the real servers' HTTP server: one `daemon off`, single-process
//! nginx per real-server namespace, started through `ip netns exec` with its
//! own config, pid, log and temp paths in the run's work directory, answering
//! every request with the server's name.

use std::fs;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cmd;
use crate::error::{LabError, Result};
use crate::netns;

/// A running nginx.
#[derive(Debug)]
pub(crate) struct NginxProcess {
    pub netns: String,
    pub child: Child,
}

/// The nginx configuration for a real server named `name`, with every path
/// below `dir`.
pub(crate) fn config(name: &str, port: u16, dir: &Path) -> String {
    let d = dir.display();
    format!(
        "# rvs-lab real server {name}\n\
         daemon off;\n\
         master_process off;\n\
         worker_processes 1;\n\
         pid {d}/nginx.pid;\n\
         error_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n\
         \x20   access_log off;\n\
         \x20   client_body_temp_path {d}/client_body;\n\
         \x20   proxy_temp_path {d}/proxy;\n\
         \x20   fastcgi_temp_path {d}/fastcgi;\n\
         \x20   uwsgi_temp_path {d}/uwsgi;\n\
         \x20   scgi_temp_path {d}/scgi;\n\
         \x20   keepalive_requests 1000000;\n\
         \x20   server {{\n\
         \x20       listen {port};\n\
         \x20       listen [::]:{port};\n\
         \x20       default_type text/plain;\n\
         \x20       location / {{ return 200 \"{name}\\n\"; }}\n\
         \x20   }}\n\
         }}\n"
    )
}

/// Writes the config to `dir` and starts nginx in `netns`; returns once it
/// accepts connections on `probe` (an address of the real server).
pub(crate) fn start(netns: &str, name: &str, port: u16, dir: &Path, probe: SocketAddr) -> Result<NginxProcess> {
    let start_error = |reason: String| LabError::ServerStart { server: "nginx", netns: netns.to_owned(), reason };
    fs::create_dir_all(dir).map_err(|e| LabError::io(format!("creating {}", dir.display()), e))?;
    let config_path = dir.join("nginx.conf");
    fs::write(&config_path, config(name, port, dir))
        .map_err(|e| LabError::io(format!("writing {}", config_path.display()), e))?;
    let output_path = dir.join("nginx.out");
    let output =
        fs::File::create(&output_path).map_err(|e| LabError::io(format!("creating {}", output_path.display()), e))?;
    let output_err = output.try_clone().map_err(|e| LabError::io("duplicating log handle", e))?;
    let prefix = path_arg(dir);
    let error_log = path_arg(&dir.join("error.log"));
    let config_arg = path_arg(&config_path);
    let mut child = Command::new("ip")
        .args(["netns", "exec", netns, "nginx", "-p", &prefix, "-e", &error_log, "-c", &config_arg])
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(output_err)
        .spawn()
        .map_err(|e| LabError::io("starting nginx", e))?;

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let log = fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            let out = fs::read_to_string(&output_path).unwrap_or_default();
            return Err(start_error(format!("exited with {status}: {}{}", out.trim(), log.trim())));
        }
        let connected =
            netns::run_in(netns, || Ok(TcpStream::connect_timeout(&probe, Duration::from_millis(200)).is_ok()))?;
        if connected {
            return Ok(NginxProcess { netns: netns.to_owned(), child });
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(start_error(format!("not accepting on {probe} after 10 s")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Stops nginx with SIGTERM (fast shutdown), and SIGKILL if it is still there after 3 s.
pub(crate) fn stop(process: &mut NginxProcess) -> Result<()> {
    if let Ok(pid) = i32::try_from(process.child.id()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    match cmd::wait_bounded(&mut process.child, Duration::from_secs(3)) {
        Ok(_) => Ok(()),
        Err(err) => Err(LabError::io(format!("stopping nginx in {}", process.netns), err)),
    }
}

fn path_arg(path: &Path) -> String {
    PathBuf::from(path).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_keeps_everything_in_the_run_directory() {
        let text = config("rs2", 80, Path::new("/tmp/rvs-lab-rvs000001/rs2"));
        assert!(text.contains("daemon off;"));
        assert!(text.contains("pid /tmp/rvs-lab-rvs000001/rs2/nginx.pid;"));
        assert!(text.contains("listen [::]:80;"));
        assert!(text.contains("return 200 \"rs2\\n\";"));
        // Every absolute path in the file lies in the run directory.
        for word in text.split_whitespace().filter(|w| w.starts_with('/') && w.len() > 1) {
            assert!(word.starts_with("/tmp/rvs-lab-rvs000001/rs2/"), "{word}");
        }
    }
}
