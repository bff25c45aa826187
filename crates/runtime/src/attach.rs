//! Attaching to a container's own stdio, which its shim holds.
//!
//! The shim serves a unix socket; each connection is one attached client. Both ways the bytes
//! travel in frames: a kind byte, a 4-byte big-endian length, the payload. The shim sends
//! [`STDOUT`] and [`STDERR`] output (everything on `STDOUT` for a terminal); a client sends
//! [`STDIN`] input, [`RESIZE`] (`{"Width":w,"Height":h}`) and [`CLOSE`] (no more input). With
//! `stdinOnce`, the container's stdin is closed when the first client that attached it leaves.

use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::{Arc, Mutex};

pub const STDIN: u8 = 0;
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;
pub const RESIZE: u8 = 4;
pub const CLOSE: u8 = 255;

/// Largest frame accepted from a client.
const MAX_FRAME: usize = 1 << 20;

/// Writes one frame.
pub fn write_frame(mut to: impl Write, kind: u8, payload: &[u8]) -> io::Result<()> {
    let length = u32::try_from(payload.len()).map_err(|_| io::Error::other("frame too large"))?;
    let mut frame = Vec::with_capacity(payload.len() + 5);
    frame.push(kind);
    frame.extend_from_slice(&length.to_be_bytes());
    frame.extend_from_slice(payload);
    to.write_all(&frame)
}

/// Reads one frame; `None` at the end of the stream.
pub fn read_frame(mut from: impl Read) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    match from.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if length > MAX_FRAME {
        return Err(io::Error::other("attach frame too large"));
    }
    let mut payload = vec![0u8; length];
    from.read_exact(&mut payload)?;
    Ok(Some((head[0], payload)))
}

/// The shim's side: the attached clients, and the container's input.
#[derive(Debug)]
pub struct Hub {
    clients: Mutex<Vec<UnixStream>>,
    input: Mutex<Option<Box<dyn WriteDebug>>>,
    terminal: Option<OwnedFd>,
    stdin_once: bool,
}

/// `Write` that can be printed in debug output.
pub trait WriteDebug: Write + Send + std::fmt::Debug {}
impl<T: Write + Send + std::fmt::Debug> WriteDebug for T {}

impl Hub {
    pub fn new(
        input: Option<Box<dyn WriteDebug>>,
        terminal: Option<OwnedFd>,
        stdin_once: bool,
    ) -> Arc<Self> {
        Arc::new(Hub {
            clients: Mutex::new(Vec::new()),
            input: Mutex::new(input),
            terminal,
            stdin_once,
        })
    }

    /// Sends container output to every attached client, dropping those that went away.
    pub fn broadcast(&self, kind: u8, bytes: &[u8]) {
        let mut clients = crate::runtime::lock(&self.clients);
        clients.retain_mut(|client| write_frame(client, kind, bytes).is_ok());
    }

    /// Serves clients on `listener` until the process ends.
    pub fn serve(self: &Arc<Self>, listener: UnixListener) {
        let hub = self.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(writer) = client.try_clone() else {
                    continue;
                };
                crate::runtime::lock(&hub.clients).push(writer);
                let hub = hub.clone();
                std::thread::spawn(move || hub.read_client(client));
            }
        });
    }

    /// Handles one client's frames until it leaves.
    fn read_client(&self, mut client: UnixStream) {
        let mut wrote_input = false;
        while let Ok(Some((kind, payload))) = read_frame(&mut client) {
            match kind {
                STDIN => {
                    wrote_input = true;
                    let mut input = crate::runtime::lock(&self.input);
                    if let Some(writer) = input.as_mut()
                        && (writer.write_all(&payload).is_err() || writer.flush().is_err())
                    {
                        *input = None;
                    }
                }
                RESIZE => self.resize(&payload),
                CLOSE if self.stdin_once => *crate::runtime::lock(&self.input) = None,
                _ => {}
            }
        }
        if self.stdin_once && wrote_input {
            *crate::runtime::lock(&self.input) = None;
        }
    }

    fn resize(&self, payload: &[u8]) {
        let (Some(terminal), Ok(size)) = (
            self.terminal.as_ref(),
            serde_json::from_slice::<cox_cri::streaming::TerminalSize>(payload),
        ) else {
            return;
        };
        let winsize = rustix::termios::Winsize {
            ws_row: size.height,
            ws_col: size.width,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let _ = rustix::termios::tcsetwinsize(terminal, winsize);
    }

    /// Ends every client's stream (the container has exited).
    pub fn close_all(&self) {
        for client in crate::runtime::lock(&self.clients).drain(..) {
            let _ = client.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A reader that also hands everything it reads to the attached clients.
#[derive(Debug)]
pub struct Tee<R> {
    pub inner: R,
    pub hub: Arc<Hub>,
    pub kind: u8,
}

impl<R: Read> Read for Tee<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n > 0 {
            self.hub.broadcast(self.kind, &buf[..n]);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_end_cleanly() {
        let mut wire = Vec::new();
        write_frame(&mut wire, STDOUT, b"hello").expect("write");
        write_frame(&mut wire, CLOSE, b"").expect("write");
        let mut reader = wire.as_slice();
        assert_eq!(
            read_frame(&mut reader).expect("read"),
            Some((STDOUT, b"hello".to_vec()))
        );
        assert_eq!(
            read_frame(&mut reader).expect("read"),
            Some((CLOSE, Vec::new()))
        );
        assert_eq!(read_frame(&mut reader).expect("read"), None);
        let oversized = [STDIN, 0xff, 0xff, 0xff, 0xff];
        assert!(read_frame(oversized.as_slice()).is_err());
    }
}
