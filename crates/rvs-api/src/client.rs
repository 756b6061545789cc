//! The wire format (one JSON object per line) and a blocking client.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Request, Response};

/// Longest line accepted on the socket (requests and responses), against floods.
pub const MAX_LINE: usize = 64 << 20;

/// Errors talking to the daemon.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// No daemon listens on the socket.
    #[error("cannot connect to rvsd at {path}: {source} (is rvsd running?)")]
    Connect {
        /// Socket path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// I/O failed mid-request.
    #[error("talking to rvsd: {0}")]
    Io(#[from] std::io::Error),
    /// The daemon sent something unreadable.
    #[error("bad answer from rvsd: {0}")]
    Decode(String),
}

/// Writes one message as a JSON line.
pub fn write_message<T: Serialize>(w: &mut impl Write, msg: &T) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

/// Reads one JSON line (at most [`MAX_LINE`] bytes). `Ok(None)` at end of stream.
pub fn read_message<T: DeserializeOwned, R: BufRead>(r: &mut R) -> Result<Option<T>, ClientError> {
    let mut line = Vec::new();
    let n = std::io::Read::take(&mut *r, MAX_LINE as u64 + 1).read_until(b'\n', &mut line)?;
    if n == 0 {
        return Ok(None);
    }
    if line.len() > MAX_LINE {
        return Err(ClientError::Decode("message too long".into()));
    }
    serde_json::from_slice(&line).map(Some).map_err(|e| ClientError::Decode(e.to_string()))
}

/// A connection to rvsd.
pub struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    /// Connects to the socket at `path`.
    pub fn connect(path: impl AsRef<Path>) -> Result<Client, ClientError> {
        let p = path.as_ref();
        let stream =
            UnixStream::connect(p).map_err(|source| ClientError::Connect { path: p.display().to_string(), source })?;
        stream.set_read_timeout(Some(Duration::from_secs(30)))?;
        let writer = stream.try_clone()?;
        Ok(Client { reader: BufReader::new(stream), writer })
    }

    /// Sends a request and waits for its response.
    pub fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        write_message(&mut self.writer, req)?;
        read_message(&mut self.reader)?.ok_or_else(|| ClientError::Decode("connection closed".into()))
    }
}
