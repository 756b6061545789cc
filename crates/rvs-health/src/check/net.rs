//! Socket helpers shared by the check kinds: deadline arithmetic, TCP connect with an optional
//! source address, and capped reads that stop at the deadline.

use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::same_family;

/// Time left until `deadline`, or an error naming what was being waited for.
pub fn remaining(deadline: Instant, what: &str) -> Result<Duration, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left < Duration::from_millis(1) { Err(format!("timed out {what}")) } else { Ok(left) }
}

/// Describes an I/O error in a reason, turning timeouts into "timed out `what`".
pub fn describe(e: &io::Error, what: &str) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!("timed out {what}"),
        io::ErrorKind::ConnectionRefused => format!("connection refused {what}"),
        io::ErrorKind::ConnectionReset => format!("connection reset {what}"),
        _ => format!("{e} {what}"),
    }
}

fn bind_check(bind: Option<IpAddr>, dest: SocketAddr) -> Result<(), String> {
    match bind {
        Some(b) if !same_family(b, dest.ip()) => Err(format!("bind address {b} is not of the family of {dest}")),
        _ => Ok(()),
    }
}

/// Connects to `dest` by `deadline`, from `bind` if given. The stream's read and write timeouts
/// are set to the time left.
pub fn connect_tcp(dest: SocketAddr, bind: Option<IpAddr>, deadline: Instant) -> Result<TcpStream, String> {
    bind_check(bind, dest)?;
    let left = remaining(deadline, "before connecting")?;
    let socket = Socket::new(Domain::for_address(dest), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| format!("socket: {e}"))?;
    if let Some(b) = bind {
        socket.bind(&SockAddr::from(SocketAddr::new(b, 0))).map_err(|e| format!("bind {b}: {e}"))?;
    }
    socket.connect_timeout(&SockAddr::from(dest), left).map_err(|e| describe(&e, &format!("connecting to {dest}")))?;
    let stream: TcpStream = socket.into();
    let _ = stream.set_nodelay(true);
    set_timeouts(&stream, deadline, "after connecting")?;
    Ok(stream)
}

/// A UDP socket connected to `dest`, bound to `bind` (or the wildcard of the family).
pub fn connect_udp(dest: SocketAddr, bind: Option<IpAddr>) -> Result<UdpSocket, String> {
    bind_check(bind, dest)?;
    let local = match bind {
        Some(b) => SocketAddr::new(b, 0),
        None if dest.is_ipv4() => SocketAddr::from(([0, 0, 0, 0], 0)),
        None => SocketAddr::from(([0u16; 8], 0)),
    };
    let sock = UdpSocket::bind(local).map_err(|e| format!("bind {local}: {e}"))?;
    sock.connect(dest).map_err(|e| format!("connect {dest}: {e}"))?;
    Ok(sock)
}

/// Sets read and write timeouts of a stream to the time left.
pub fn set_timeouts(stream: &TcpStream, deadline: Instant, what: &str) -> Result<(), String> {
    let left = remaining(deadline, what)?;
    stream.set_read_timeout(Some(left)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(left)).map_err(|e| e.to_string())?;
    Ok(())
}

/// Writes all of `data` by `deadline`.
pub fn write_all_by<S: Write>(stream: &mut S, data: &[u8], what: &str) -> Result<(), String> {
    stream.write_all(data).and_then(|()| stream.flush()).map_err(|e| describe(&e, what))
}

/// What [`read_capped`] stopped on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadEnd {
    /// The peer closed.
    Eof,
    /// `cap` bytes were read.
    Cap,
    /// The `done` predicate said the data is complete.
    Done,
}

/// Reads into `buf` until EOF, `cap` bytes, or `done(buf)`; the stream's read timeout bounds each
/// read and `set_timeout` is called before each read to shrink it to the time left.
pub fn read_capped<S: Read>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    cap: usize,
    deadline: Instant,
    mut set_timeout: impl FnMut(&mut S, Duration) -> io::Result<()>,
    mut done: impl FnMut(&[u8]) -> bool,
) -> Result<ReadEnd, String> {
    let mut chunk = [0u8; 4096];
    loop {
        if done(buf) {
            return Ok(ReadEnd::Done);
        }
        if buf.len() >= cap {
            buf.truncate(cap);
            return Ok(ReadEnd::Cap);
        }
        let left = remaining(deadline, "waiting for the reply")?;
        set_timeout(stream, left).map_err(|e| e.to_string())?;
        let want = chunk.len().min(cap - buf.len());
        let Some(slice) = chunk.get_mut(..want) else { return Ok(ReadEnd::Cap) };
        match stream.read(slice) {
            Ok(0) => return Ok(ReadEnd::Eof),
            Ok(n) => buf.extend_from_slice(slice.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(ReadEnd::Eof),
            Err(e) => return Err(describe(&e, "waiting for the reply")),
        }
    }
}

/// First `max` characters of `bytes` as lossy text with control characters escaped, for reasons.
pub fn snippet(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    for c in text.chars().take(max) {
        out.extend(c.escape_debug());
    }
    if text.chars().count() > max {
        out.push('…');
    }
    out
}
