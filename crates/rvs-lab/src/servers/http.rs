//! The built-in HTTP/1.1 server: answers every request with the real
//! server's name as a text/plain body, keeps connections alive as HTTP/1.1
//! asks, and closes them on `Connection: close`, on HTTP/1.0 without
//! keep-alive, and on malformed requests (400). One accept thread per real
//! server inside its namespace, one thread per connection.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sys::socket::{setsockopt, sockopt};
use nix::sys::time::{TimeVal, TimeValLike};

use crate::error::{LabError, Result};
use crate::netns;

/// How often blocked threads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);
/// An idle keep-alive connection is closed after this long.
const IDLE_LIMIT: Duration = Duration::from_secs(15);
/// Largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// A request head found at the start of a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// More bytes are needed.
    Incomplete,
    /// Not HTTP/1.x: answer 400 and close.
    Bad,
    /// A complete head of `head_len` bytes followed by a `body_len` byte body.
    Request { head_len: usize, body_len: usize, keep_alive: bool, is_head: bool },
}

/// Parses the request head at the start of `buffer`.
pub(crate) fn parse_request(buffer: &[u8]) -> Parsed {
    let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") else {
        return if buffer.len() > MAX_HEAD { Parsed::Bad } else { Parsed::Incomplete };
    };
    let Some(head) = buffer.get(..end).and_then(|bytes| std::str::from_utf8(bytes).ok()) else {
        return Parsed::Bad;
    };
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(_target), Some(version), None) =
        (request_line.next(), request_line.next(), request_line.next(), request_line.next())
    else {
        return Parsed::Bad;
    };
    let mut keep_alive = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Parsed::Bad,
    };
    let mut body_len = 0;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Parsed::Bad;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse() {
                Ok(length) => body_len = length,
                Err(_) => return Parsed::Bad,
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked bodies are not needed by any lab client.
            return Parsed::Bad;
        } else if name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                keep_alive = false;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                keep_alive = true;
            }
        }
    }
    Parsed::Request { head_len: end + 4, body_len, keep_alive, is_head: method == "HEAD" }
}

/// The response to a request (200 with `body`), or to a bad one (400).
pub(crate) fn response(body: &str, parsed: &Parsed) -> Vec<u8> {
    match parsed {
        Parsed::Request { keep_alive, is_head, .. } => {
            let connection = if *keep_alive { "keep-alive" } else { "close" };
            let mut text = format!(
                "HTTP/1.1 200 OK\r\nServer: rvs-lab\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {connection}\r\n\r\n",
                body.len()
            );
            if !is_head {
                text.push_str(body);
            }
            text.into_bytes()
        }
        Parsed::Bad | Parsed::Incomplete => {
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec()
        }
    }
}

/// Starts the server for `name` in `netns` on `[::]:port` (IPv4 and IPv6).
/// Returns once the socket is listening.
pub(crate) fn start(netns: &str, name: &str, port: u16, stop: Arc<AtomicBool>) -> Result<JoinHandle<()>> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let netns_name = netns.to_owned();
    let body = format!("{name}\n");
    let handle = thread::Builder::new()
        .name(format!("http-{name}"))
        .spawn(move || {
            let listener = netns::enter(&netns_name).and_then(|()| listen(port));
            match listener {
                Ok(listener) => {
                    let _ = ready_tx.send(Ok(()));
                    serve(listener, &body, &stop);
                }
                Err(err) => {
                    let _ = ready_tx.send(Err(err.to_string()));
                }
            }
        })
        .map_err(|e| LabError::io("spawning http server thread", e))?;
    let server_error =
        |reason: String| LabError::ServerStart { server: "builtin http", netns: netns.to_owned(), reason };
    match ready_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(())) => Ok(handle),
        Ok(Err(reason)) => Err(server_error(reason)),
        Err(_) => Err(server_error("no answer from the server thread".to_owned())),
    }
}

fn listen(port: u16) -> Result<TcpListener> {
    let address = SocketAddr::from((Ipv6Addr::UNSPECIFIED, port));
    let listener = TcpListener::bind(address).map_err(|e| LabError::io(format!("binding {address}"), e))?;
    // accept() honours SO_RCVTIMEO, so the loop can look at the stop flag.
    setsockopt(&listener, sockopt::ReceiveTimeout, &TimeVal::milliseconds(100))
        .map_err(|errno| LabError::io("setting SO_RCVTIMEO", errno.into()))?;
    Ok(listener)
}

fn serve(listener: TcpListener, body: &str, stop: &Arc<AtomicBool>) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let body = body.to_owned();
                let stop = Arc::clone(stop);
                if let Ok(handle) = thread::Builder::new().spawn(move || handle_connection(stream, &body, &stop)) {
                    connections.push(handle);
                }
                connections.retain(|handle| !handle.is_finished());
            }
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(err) => {
                tracing::warn!(%err, "builtin http accept failed");
                thread::sleep(POLL);
            }
        }
    }
    for handle in connections {
        let _ = handle.join();
    }
}

fn handle_connection(mut stream: TcpStream, body: &str, stop: &AtomicBool) {
    if stream.set_read_timeout(Some(POLL)).is_err() || stream.set_nodelay(true).is_err() {
        return;
    }
    let mut buffer: Vec<u8> = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    let mut last_activity = Instant::now();
    while !stop.load(Ordering::Relaxed) && last_activity.elapsed() < IDLE_LIMIT {
        // Answer every complete request already buffered (pipelining).
        loop {
            let parsed = parse_request(&buffer);
            match parsed {
                Parsed::Incomplete => break,
                Parsed::Bad => {
                    let _ = stream.write_all(&response(body, &parsed));
                    return;
                }
                Parsed::Request { head_len, body_len, keep_alive, .. } => {
                    let total = head_len.saturating_add(body_len);
                    if buffer.len() < total {
                        break;
                    }
                    buffer.drain(..total);
                    if stream.write_all(&response(body, &parsed)).is_err() || !keep_alive {
                        return;
                    }
                }
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => return,
            Ok(count) => {
                buffer.extend_from_slice(chunk.get(..count).unwrap_or_default());
                last_activity = Instant::now();
            }
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_get_is_a_keep_alive_request() {
        let request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET";
        assert_eq!(
            parse_request(request),
            Parsed::Request { head_len: 27, body_len: 0, keep_alive: true, is_head: false }
        );
    }

    #[test]
    fn partial_heads_wait_for_more() {
        assert_eq!(parse_request(b"GET / HTTP/1.1\r\nHost:"), Parsed::Incomplete);
        assert_eq!(parse_request(b""), Parsed::Incomplete);
    }

    #[test]
    fn connection_header_and_version_decide_keep_alive() {
        let close = parse_request(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n");
        assert!(matches!(close, Parsed::Request { keep_alive: false, .. }));
        let old = parse_request(b"GET / HTTP/1.0\r\n\r\n");
        assert!(matches!(old, Parsed::Request { keep_alive: false, .. }));
        let old_kept = parse_request(b"GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n");
        assert!(matches!(old_kept, Parsed::Request { keep_alive: true, .. }));
    }

    #[test]
    fn bodies_are_counted_and_garbage_is_rejected() {
        let post = parse_request(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
        assert!(matches!(post, Parsed::Request { body_len: 5, .. }));
        for bad in [
            &b"GET /\r\n\r\n"[..],
            b"GET / HTTP/2\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"\xff\xfe / HTTP/1.1\r\n\r\n",
        ] {
            assert_eq!(parse_request(bad), Parsed::Bad, "{}", String::from_utf8_lossy(bad));
        }
        assert_eq!(parse_request(&vec![b'a'; MAX_HEAD + 1]), Parsed::Bad);
    }

    #[test]
    fn response_carries_the_name_with_its_length() {
        let parsed = Parsed::Request { head_len: 0, body_len: 0, keep_alive: true, is_head: false };
        let text = String::from_utf8(response("rs1\n", &parsed)).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Content-Length: 4\r\n"));
        assert!(text.ends_with("\r\n\r\nrs1\n"));
        let head = Parsed::Request { head_len: 0, body_len: 0, keep_alive: false, is_head: true };
        let text = String::from_utf8(response("rs1\n", &head)).unwrap();
        assert!(text.ends_with("Connection: close\r\n\r\n"));
    }

    #[test]
    fn serves_on_loopback_until_stopped() {
        // Uses the test process's own namespace; port 0 is not possible with
        // `start`, so exercise the accept loop directly on an ephemeral port.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        setsockopt(&listener, sockopt::ReceiveTimeout, &TimeVal::milliseconds(100)).unwrap();
        let address = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let server = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || serve(listener, "rs9\n", &stop))
        };
        let mut client = TcpStream::connect(address).unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        client.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        // Two pipelined requests, two answers, then the server closes.
        assert_eq!(answer.matches("HTTP/1.1 200 OK").count(), 2, "{answer}");
        assert!(answer.ends_with("rs9\n"));
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap();
    }
}
