//! Running a command line: parse it, talk to rvsd, print what ipvsadm would print and
//! return its exit status.

use std::io::{Read, Write};

use rvs_api::client::Client;
use rvs_api::{Request, Response, ServiceInfo, Table};

use crate::help::{usage, version};
use crate::names::Names;
use crate::parse::{Action, Format, ListWhat, parse_command_line};
use crate::refusal::refusal_message;
use crate::render::conns::render_conns;
use crate::render::misc::{render_daemons, render_timeouts};
use crate::render::save::render_save;
use crate::render::table::{render_all, render_one};
use crate::restore::parse_restore;
use crate::sort::sort_services;

/// Exit status of a refused change, an unknown option, or no daemon.
pub const EXIT_REFUSED: i32 = 255;
/// Exit status of a failed listing (e.g. a service that does not exist).
pub const EXIT_LIST_FAILED: i32 = 1;

/// The standard streams of one run.
pub struct Streams<'a> {
    /// Standard input (`-R`).
    pub stdin: &'a mut dyn Read,
    /// Standard output.
    pub stdout: &'a mut dyn Write,
    /// Standard error.
    pub stderr: &'a mut dyn Write,
}

/// Where to find rvsd and how to name things.
pub struct Environment<'a> {
    /// `RVSADM_SOCKET`, if set (`--socket` wins over it).
    pub socket_env: Option<String>,
    /// Name lookups.
    pub names: &'a dyn Names,
}

fn emit(w: &mut dyn Write, text: &str) {
    // A closed pipe must not turn into a panic; the exit status still tells.
    let _ = w.write_all(text.as_bytes());
    let _ = w.flush();
}

/// Runs one command line (`args[0]` is the program name) and returns the exit status.
pub fn run(args: &[String], env: &Environment<'_>, io: &mut Streams<'_>) -> i32 {
    let program = args.first().map_or("rvsadm", String::as_str);
    let inv = match parse_command_line(args, env.names) {
        Ok(inv) => inv,
        Err(e) => {
            emit(io.stderr, &e.render(program));
            return e.exit_code();
        }
    };
    let socket = inv.socket.or_else(|| env.socket_env.clone()).unwrap_or_else(|| rvs_api::DEFAULT_SOCKET.to_string());
    let session = Session { socket: &socket, names: env.names };
    match inv.action {
        Action::Help => {
            emit(io.stdout, &usage(program));
            0
        }
        Action::Version => {
            emit(io.stdout, &version(program));
            0
        }
        Action::Restore => session.restore(program, io),
        Action::Save { numeric } => session.save(numeric, io),
        Action::List { what, format } => session.list(what, &format, io),
        Action::Apply(cmd) => match session.call(&Request::Apply { commands: vec![cmd.clone()] }) {
            Ok(Response::Applied) => 0,
            Ok(Response::Error(err)) => {
                emit(io.stderr, &format!("{}\n", refusal_message(Some(&cmd), &err)));
                EXIT_REFUSED
            }
            Ok(_) => session.unexpected(io),
            Err(msg) => {
                emit(io.stderr, &msg);
                EXIT_REFUSED
            }
        },
    }
}

struct Session<'a> {
    socket: &'a str,
    names: &'a dyn Names,
}

impl Session<'_> {
    /// One request on a fresh connection; `Err` is the text to print (no daemon ...).
    fn call(&self, req: &Request) -> Result<Response, String> {
        let mut client = Client::connect(self.socket).map_err(|e| format!("{e}\n"))?;
        client.call(req).map_err(|e| format!("{e}\n"))
    }

    fn unexpected(&self, io: &mut Streams<'_>) -> i32 {
        emit(io.stderr, "unexpected answer from rvsd\n");
        EXIT_REFUSED
    }

    fn table(&self, req: &Request, io: &mut Streams<'_>) -> Result<Table, i32> {
        match self.call(req) {
            Ok(Response::Table(t)) => Ok(t),
            Ok(Response::Error(err)) => {
                emit(io.stderr, &format!("{}\n", refusal_message(None, &err)));
                Err(EXIT_LIST_FAILED)
            }
            Ok(_) => Err(self.unexpected(io)),
            Err(msg) => {
                emit(io.stderr, &msg);
                Err(EXIT_REFUSED)
            }
        }
    }

    fn save(&self, numeric: bool, io: &mut Streams<'_>) -> i32 {
        match self.table(&Request::List, io) {
            Ok(t) => {
                emit(io.stdout, &render_save(&t, numeric, self.names));
                0
            }
            Err(code) => code,
        }
    }

    fn list(&self, what: ListWhat, f: &Format, io: &mut Streams<'_>) -> i32 {
        match what {
            ListWhat::All => match self.table(&Request::List, io) {
                Ok(mut t) => {
                    if f.json {
                        if !f.nosort {
                            sort_services(&mut t.services);
                        }
                        emit(io.stdout, &json(&t));
                    } else {
                        emit(io.stdout, &render_all(&t, f, self.names));
                    }
                    0
                }
                Err(code) => code,
            },
            ListWhat::Service(id) => match self.table(&Request::ListService { id }, io) {
                Ok(t) => match t.services.into_iter().find(|s| s.spec.id == id) {
                    Some(mut s) => {
                        if f.json {
                            if !f.nosort {
                                crate::sort::sort_dests(&mut s.dests);
                            }
                            emit(io.stdout, &json::<ServiceInfo>(&s));
                        } else {
                            emit(io.stdout, &render_one(&s, f, self.names));
                        }
                        0
                    }
                    None => {
                        emit(io.stderr, "No such service\n");
                        EXIT_LIST_FAILED
                    }
                },
                Err(code) => code,
            },
            ListWhat::Conns => self.simple(&Request::ListConns, io, |r| match r {
                Response::Conns { conns } => {
                    Some(if f.json { json(&conns) } else { render_conns(&conns, f, self.names) })
                }
                _ => None,
            }),
            ListWhat::Timeouts => self.simple(&Request::Timeouts, io, |r| match r {
                Response::Timeouts(t) => Some(if f.json { json(&t) } else { render_timeouts(&t) }),
                _ => None,
            }),
            ListWhat::Daemons => self.simple(&Request::Daemons, io, |r| match r {
                Response::Daemons { daemons } => Some(if f.json { json(&daemons) } else { render_daemons(&daemons) }),
                _ => None,
            }),
        }
    }

    fn simple(&self, req: &Request, io: &mut Streams<'_>, show: impl FnOnce(Response) -> Option<String>) -> i32 {
        match self.call(req) {
            Ok(Response::Error(err)) => {
                emit(io.stderr, &format!("{}\n", refusal_message(None, &err)));
                EXIT_LIST_FAILED
            }
            Ok(resp) => match show(resp) {
                Some(text) => {
                    emit(io.stdout, &text);
                    0
                }
                None => self.unexpected(io),
            },
            Err(msg) => {
                emit(io.stderr, &msg);
                EXIT_REFUSED
            }
        }
    }

    fn restore(&self, program: &str, io: &mut Streams<'_>) -> i32 {
        let mut text = String::new();
        if let Err(e) = io.stdin.read_to_string(&mut text) {
            emit(io.stderr, &format!("reading standard input: {e}\n"));
            return EXIT_REFUSED;
        }
        let lines = match parse_restore(&text, self.names) {
            Ok(lines) => lines,
            Err(e) => {
                emit(io.stderr, &e.render(program));
                return e.error.exit_code();
            }
        };
        if lines.is_empty() {
            return 0;
        }
        let commands: Vec<_> = lines.iter().map(|(_, c)| c.clone()).collect();
        match self.call(&Request::Apply { commands }) {
            Ok(Response::Applied) => 0,
            Ok(Response::Error(err)) => {
                let failed = err.command_index.and_then(|i| lines.get(i));
                let msg = refusal_message(failed.map(|(_, c)| c), &err);
                match failed {
                    Some((line, _)) => emit(io.stderr, &format!("line {line}: {msg}\n")),
                    None => emit(io.stderr, &format!("{msg}\n")),
                }
                EXIT_REFUSED
            }
            Ok(_) => self.unexpected(io),
            Err(msg) => {
                emit(io.stderr, &msg);
                EXIT_REFUSED
            }
        }
    }
}

/// The `--json` form of a listing: pretty-printed rvs-api types, one trailing newline.
pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    match serde_json::to_string_pretty(value) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        Err(e) => format!("{{\"error\": \"{e}\"}}\n"),
    }
}
