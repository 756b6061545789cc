//! Test helpers: a small stand-in for rvsd (a real `rvs_core::Engine` behind the admin
//! API, transactions by replay) and a Unix-socket server thread that answers with it.

#![allow(dead_code)]

use std::io::BufReader;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use rvs_api::client::{read_message, write_message};
use rvs_api::convert::table_of;
use rvs_api::{ApiError, Command, ConnInfo, Request, Response, SyncDaemonSpec, Table, TimeoutsInfo};
use rvs_core::Instant;
use rvs_core::engine::Engine;

/// Banner size the fake reports.
pub const CONN_TAB_SIZE: u32 = 4096;

/// The fake director's state.
pub struct FakeDirector {
    history: Vec<Command>,
    engine: Engine,
    pub timeouts: TimeoutsInfo,
    pub daemons: Vec<SyncDaemonSpec>,
    pub conns: Vec<ConnInfo>,
    /// Every request received, in order.
    pub requests: Vec<Request>,
}

impl Default for FakeDirector {
    fn default() -> Self {
        FakeDirector {
            history: Vec::new(),
            engine: Engine::new(1024, 7),
            timeouts: TimeoutsInfo { tcp: 900, tcpfin: 120, udp: 300 },
            daemons: Vec::new(),
            conns: Vec::new(),
            requests: Vec::new(),
        }
    }
}

fn not_found(kind: &str) -> ApiError {
    ApiError::new(kind, kind)
}

/// Applies one command to an engine (and the side tables).
pub fn apply_one(
    engine: &mut Engine,
    timeouts: &mut TimeoutsInfo,
    daemons: &mut Vec<SyncDaemonSpec>,
    cmd: &Command,
) -> Result<(), ApiError> {
    match cmd {
        Command::AddService(spec) => engine.add_service(spec.to_config()?).map(drop)?,
        Command::EditService(spec) => engine.edit_service(spec.to_config()?).map(drop)?,
        Command::DeleteService { id } => engine.delete_service(&(*id).into())?,
        Command::Clear => engine.clear(),
        Command::AddDest { service, dest } => engine.add_dest(&(*service).into(), dest.to_config()?).map(drop)?,
        Command::EditDest { service, dest } => engine.edit_dest(&(*service).into(), dest.to_config()?).map(drop)?,
        Command::DeleteDest { service, addr, port } => engine.delete_dest(&(*service).into(), *addr, *port)?,
        Command::Zero { service } => {
            let id = match service {
                Some(s) => Some(engine.find_service(&(*s).into()).ok_or_else(|| not_found("no_such_service"))?),
                None => None,
            };
            engine.zero_stats(id, Instant::ZERO);
        }
        Command::SetTimeouts { tcp, tcpfin, udp } => {
            let set = |slot: &mut u32, v: u64| {
                if v != 0 {
                    *slot = v as u32;
                }
            };
            set(&mut timeouts.tcp, *tcp);
            set(&mut timeouts.tcpfin, *tcpfin);
            set(&mut timeouts.udp, *udp);
        }
        Command::StartDaemon(spec) => {
            if daemons.iter().any(|d| d.role == spec.role) {
                return Err(not_found("daemon_running"));
            }
            daemons.push(spec.clone());
        }
        Command::StopDaemon { role } => {
            let before = daemons.len();
            daemons.retain(|d| d.role != *role);
            if daemons.len() == before {
                return Err(not_found("no_daemon"));
            }
        }
    }
    Ok(())
}

impl FakeDirector {
    /// Applies a transaction: all commands or none (replays history on a fresh engine).
    pub fn apply(&mut self, commands: &[Command]) -> Result<(), ApiError> {
        let mut engine = Engine::new(1024, 7);
        let mut timeouts = TimeoutsInfo { tcp: 900, tcpfin: 120, udp: 300 };
        let mut daemons = Vec::new();
        for cmd in &self.history {
            apply_one(&mut engine, &mut timeouts, &mut daemons, cmd)?;
        }
        for (i, cmd) in commands.iter().enumerate() {
            apply_one(&mut engine, &mut timeouts, &mut daemons, cmd).map_err(|mut e| {
                e.command_index = Some(i);
                e
            })?;
        }
        self.history.extend(commands.iter().cloned());
        self.engine = engine;
        self.timeouts = timeouts;
        self.daemons = daemons;
        Ok(())
    }

    /// The table as rvsd would list it.
    pub fn table(&self) -> Table {
        table_of(&self.engine, CONN_TAB_SIZE)
    }

    /// The engine (for counters in tests).
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The answer to one request.
    pub fn answer(&mut self, req: &Request) -> Response {
        self.requests.push(req.clone());
        match req {
            Request::Apply { commands } => match self.apply(commands) {
                Ok(()) => Response::Applied,
                Err(e) => Response::Error(e),
            },
            Request::List => Response::Table(self.table()),
            Request::ListService { id } => {
                let mut t = self.table();
                t.services.retain(|s| s.spec.id == *id);
                if t.services.is_empty() {
                    Response::Error(ApiError::new("no_such_service", "No such service"))
                } else {
                    Response::Table(t)
                }
            }
            Request::ListConns => Response::Conns { conns: self.conns.clone() },
            Request::Timeouts => Response::Timeouts(self.timeouts),
            Request::Daemons => Response::Daemons { daemons: self.daemons.clone() },
            _ => Response::Error(ApiError::new("bad_request", "not supported by the fake")),
        }
    }
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A unique empty directory under the system temp dir.
pub fn temp_dir() -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("rvsadm-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A fake rvsd serving a Unix socket until dropped.
pub struct FakeServer {
    pub dir: PathBuf,
    pub socket: PathBuf,
    pub state: Arc<Mutex<FakeDirector>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeServer {
    /// Starts serving `director`.
    pub fn start(director: FakeDirector) -> FakeServer {
        let dir = temp_dir();
        let socket = dir.join("rvsd.sock");
        let listener = UnixListener::bind(&socket).expect("bind");
        let state = Arc::new(Mutex::new(director));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = conn else { continue };
                let Ok(mut writer) = stream.try_clone() else { continue };
                let mut reader = BufReader::new(stream);
                while let Ok(Some(req)) = read_message::<Request, _>(&mut reader) {
                    let resp = st.lock().expect("lock").answer(&req);
                    if write_message(&mut writer, &resp).is_err() {
                        break;
                    }
                }
            }
        });
        FakeServer { dir, socket, state, stop, thread: Some(thread) }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = std::os::unix::net::UnixStream::connect(&self.socket);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
