//! The admin socket: a Unix stream socket (mode 0600) speaking rvs-api's JSON lines. One
//! thread accepts; each client gets a thread that reads one request per line and writes one
//! response per line.
//!
//! Bad input never takes the daemon down: a line that is not a request gets a `bad_request`
//! error response (the connection stays usable); a line longer than the limit gets the same
//! error and the connection is closed (the stream cannot be resynchronised cheaply); idle
//! clients are dropped after a timeout; clients beyond the limit are turned away.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::socket::{Shutdown as SocketShutdown, shutdown};
use nix::sys::stat::{Mode, umask};
use rvs_api::client::write_message;
use rvs_api::{ApiError, Request, Response};
use tracing::{debug, info, warn};

use crate::control::{Control, lock};

/// Limits of the admin socket.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Longest request line, bytes.
    pub max_line: usize,
    /// Most clients served at once.
    pub max_clients: usize,
    /// A client silent this long is disconnected.
    pub idle_timeout: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits { max_line: rvs_api::client::MAX_LINE, max_clients: 64, idle_timeout: Duration::from_secs(300) }
    }
}

/// The bound admin socket, not yet served.
#[derive(Debug)]
pub struct AdminSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl AdminSocket {
    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Serialises our own umask changes (the umask is per process).
static UMASK: Mutex<()> = Mutex::new(());

/// Binds the admin socket at `path` with mode 0600. A socket file nobody listens on (left by
/// a crashed rvsd) is removed first; a live one, or a file that is not a socket, is refused.
pub fn bind(path: &Path) -> anyhow::Result<AdminSocket> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!("{} exists and is not a socket; refusing to replace it", path.display());
        }
        if UnixStream::connect(path).is_ok() {
            bail!("another rvsd is already serving {}", path.display());
        }
        std::fs::remove_file(path).with_context(|| format!("removing stale socket {}", path.display()))?;
        info!(path = %path.display(), "removed stale admin socket");
    }
    let listener = {
        // Created 0600 from the start: no moment where another user could connect.
        let _guard = lock(&UMASK);
        let old = umask(Mode::from_bits_truncate(0o177));
        let bound = UnixListener::bind(path);
        umask(old);
        bound.with_context(|| format!("binding admin socket {}", path.display()))?
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("setting mode 0600 on {}", path.display()))?;
    Ok(AdminSocket { listener, path: path.to_path_buf() })
}

/// Open client connections, so a stop can close them.
#[derive(Debug, Default)]
struct Clients {
    next: AtomicU64,
    open: Mutex<HashMap<u64, UnixStream>>,
}

/// A running admin server.
#[derive(Debug)]
pub struct Server {
    path: PathBuf,
    stopping: Arc<AtomicBool>,
    clients: Arc<Clients>,
    /// A second handle on the listening socket, to wake the blocking accept at stop.
    wake: Option<UnixListener>,
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    /// Serves `socket` with `control` on a new thread.
    pub fn start(socket: AdminSocket, control: Arc<Control>, limits: ServerLimits) -> anyhow::Result<Server> {
        let stopping = Arc::new(AtomicBool::new(false));
        let clients = Arc::new(Clients::default());
        let path = socket.path.clone();
        let wake = socket.listener.try_clone().ok();
        let acceptor = {
            let (stopping, clients) = (stopping.clone(), clients.clone());
            std::thread::Builder::new()
                .name("rvsd-admin".into())
                .spawn(move || accept_loop(socket.listener, control, limits, stopping, clients))
                .context("starting the admin thread")?
        };
        info!(path = %path.display(), "admin socket listening");
        Ok(Server { path, stopping, clients, wake, acceptor: Some(acceptor) })
    }

    /// Stops accepting, closes client connections and removes the socket file.
    pub fn stop(&mut self) {
        let Some(acceptor) = self.acceptor.take() else { return };
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept: shutting a listening socket down makes accept fail at
        // once (Linux); connecting is the fallback.
        let woken = self.wake.take().is_some_and(|l| shutdown(l.as_raw_fd(), SocketShutdown::Both).is_ok());
        if !woken {
            let _ = UnixStream::connect(&self.path);
        }
        let _ = acceptor.join();
        for (_, s) in lock(&self.clients.open).drain() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        match std::fs::remove_file(&self.path) {
            Ok(()) => info!(path = %self.path.display(), "admin socket removed"),
            Err(e) => warn!(path = %self.path.display(), error = %e, "could not remove the admin socket"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn accept_loop(
    listener: UnixListener,
    control: Arc<Control>,
    limits: ServerLimits,
    stopping: Arc<AtomicBool>,
    clients: Arc<Clients>,
) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "accept failed");
                // Out of descriptors and the like: do not spin.
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let id = clients.next.fetch_add(1, Ordering::Relaxed);
        {
            let mut open = lock(&clients.open);
            if open.len() >= limits.max_clients {
                drop(open);
                warn!(limit = limits.max_clients, "too many admin clients; connection refused");
                let busy = Response::Error(ApiError::new("busy", "too many clients, try again"));
                let _ = write_message(&mut stream, &busy);
                continue;
            }
            match stream.try_clone() {
                Ok(s) => {
                    open.insert(id, s);
                }
                Err(e) => {
                    warn!(error = %e, "cannot register admin client");
                    continue;
                }
            }
        }
        let (control, clients2) = (control.clone(), clients.clone());
        let spawned = std::thread::Builder::new().name("rvsd-client".into()).spawn(move || {
            serve_client(stream, &control, limits);
            lock(&clients2.open).remove(&id);
        });
        if let Err(e) = spawned {
            warn!(error = %e, "cannot start a client thread");
            lock(&clients.open).remove(&id);
        }
    }
    debug!("admin accept loop ended");
}

/// One line from a client.
enum Line {
    Data(Vec<u8>),
    TooLong,
    End,
}

fn read_line(reader: &mut impl BufRead, max: usize) -> std::io::Result<Line> {
    let mut buf = Vec::new();
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let n = reader.by_ref().take(limit).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(Line::End);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    }
    if buf.len() > max {
        return Ok(Line::TooLong);
    }
    Ok(Line::Data(buf))
}

fn serve_client(stream: UnixStream, control: &Control, limits: ServerLimits) {
    if stream.set_read_timeout(Some(limits.idle_timeout)).is_err() {
        return;
    }
    let Ok(read_half) = stream.try_clone() else { return };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        let line = match read_line(&mut reader, limits.max_line) {
            Ok(l) => l,
            Err(e) => {
                debug!(error = %e, "admin client gone");
                return;
            }
        };
        let response = match line {
            Line::End => return,
            Line::TooLong => {
                control.count_bad_request();
                warn!(limit = limits.max_line, "admin request too long; connection closed");
                let e = ApiError::new("bad_request", format!("request longer than {} bytes", limits.max_line));
                let _ = write_message(&mut writer, &Response::Error(e));
                return;
            }
            Line::Data(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => continue,
            Line::Data(bytes) => match serde_json::from_slice::<Request>(&bytes) {
                Ok(request) => control.handle(request),
                Err(e) => {
                    control.count_bad_request();
                    debug!(error = %e, "unreadable admin request");
                    Response::Error(ApiError::new("bad_request", format!("cannot read request: {e}")))
                }
            },
        };
        if write_message(&mut writer, &response).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_and_limited() {
        let mut r = BufReader::new(&b"abc\n\nxyzw\nlast"[..]);
        assert!(matches!(read_line(&mut r, 4).unwrap(), Line::Data(d) if d == b"abc"));
        assert!(matches!(read_line(&mut r, 4).unwrap(), Line::Data(d) if d.is_empty()));
        // Exactly the limit is fine; the newline does not count.
        assert!(matches!(read_line(&mut r, 4).unwrap(), Line::Data(d) if d == b"xyzw"));
        assert!(matches!(read_line(&mut r, 4).unwrap(), Line::Data(d) if d == b"last"));
        assert!(matches!(read_line(&mut r, 4).unwrap(), Line::End));
        let mut long = BufReader::new(&b"12345\n"[..]);
        assert!(matches!(read_line(&mut long, 4).unwrap(), Line::TooLong));
    }
}
