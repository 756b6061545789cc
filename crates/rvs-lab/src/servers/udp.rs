//! The UDP echo server of a real server (the "DNS-like" service): every
//! datagram is answered with the server's name (`rs1\n`) from the address it
//! was sent to. One socket per local address rather than one wildcard socket,
//! because a wildcard UDP socket would answer from the routing-chosen source
//! instead of the VIP a DR client asked.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::error::{LabError, Result};
use crate::netns;

const POLL: Duration = Duration::from_millis(100);

/// Starts one echo thread per address in `netns`; returns once all are bound.
pub(crate) fn start(
    netns: &str,
    name: &str,
    addrs: &[IpAddr],
    port: u16,
    stop: &Arc<AtomicBool>,
) -> Result<Vec<JoinHandle<()>>> {
    let mut handles = Vec::new();
    for addr in addrs {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let netns_name = netns.to_owned();
        let reply = format!("{name}\n");
        let thread_stop = Arc::clone(stop);
        let address = SocketAddr::new(*addr, port);
        let handle = thread::Builder::new()
            .name(format!("udp-{name}"))
            .spawn(move || {
                let socket = netns::enter(&netns_name).and_then(|()| bind(address));
                match socket {
                    Ok(socket) => {
                        let _ = ready_tx.send(Ok(()));
                        echo(&socket, reply.as_bytes(), &thread_stop);
                    }
                    Err(err) => {
                        let _ = ready_tx.send(Err(err.to_string()));
                    }
                }
            })
            .map_err(|e| LabError::io("spawning udp echo thread", e))?;
        handles.push(handle);
        let failure = match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(())) => None,
            Ok(Err(reason)) => Some(reason),
            Err(_) => Some("no answer from the echo thread".to_owned()),
        };
        if let Some(reason) = failure {
            stop.store(true, Ordering::Relaxed);
            for handle in handles {
                let _ = handle.join();
            }
            return Err(LabError::ServerStart { server: "udp echo", netns: netns.to_owned(), reason });
        }
    }
    Ok(handles)
}

fn bind(address: SocketAddr) -> Result<UdpSocket> {
    let socket = UdpSocket::bind(address).map_err(|e| LabError::io(format!("binding udp {address}"), e))?;
    socket.set_read_timeout(Some(POLL)).map_err(|e| LabError::io("setting udp read timeout", e))?;
    Ok(socket)
}

fn echo(socket: &UdpSocket, reply: &[u8], stop: &AtomicBool) {
    let mut buffer = [0u8; 2048];
    while !stop.load(Ordering::Relaxed) {
        match socket.recv_from(&mut buffer) {
            Ok((_, peer)) => {
                let _ = socket.send_to(reply, peer);
            }
            Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
            Err(err) => {
                // ICMP errors from earlier replies surface here; keep serving.
                tracing::debug!(%err, "udp echo receive error");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_with_the_name_until_stopped() {
        let socket = bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let server = {
            let stop = Arc::clone(&stop);
            thread::spawn(move || echo(&socket, b"rs2\n", &stop))
        };
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        client.send_to(b"query", address).unwrap();
        let mut buffer = [0u8; 64];
        let (count, from) = client.recv_from(&mut buffer).unwrap();
        assert_eq!(&buffer[..count], b"rs2\n");
        assert_eq!(from, address, "reply comes from the address asked");
        stop.store(true, Ordering::Relaxed);
        server.join().unwrap();
    }
}
