//! A SPDY/3.1 connection, server side, over an upgraded connection or inside a WebSocket (the
//! port-forward tunnel): a reader task decodes frames (answering PINGs itself) and a writer
//! task encodes them, each with its direction's header compression context. Handlers see
//! frames in and send frames out; the connection closes once every sender is gone.

use bytes::Bytes;
use cox_cri::spdy::{Frame, FrameReader, FrameWriter};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// Frames queued each way.
const QUEUE: usize = 64;

/// One SPDY connection.
#[derive(Debug)]
pub(super) struct Session {
    /// Frames from the client, in order; `None` once it closed or sent garbage.
    pub incoming: mpsc::Receiver<Frame>,
    /// Frames to the client.
    pub outgoing: mpsc::Sender<Frame>,
    reader: JoinHandle<()>,
}

impl Drop for Session {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Decodes `bytes` and delivers the frames; false once the session should end.
async fn deliver(
    reader: &mut FrameReader,
    bytes: &[u8],
    incoming: &mpsc::Sender<Frame>,
    outgoing: &mpsc::WeakSender<Frame>,
) -> bool {
    reader.push(bytes);
    loop {
        match reader.next_frame() {
            Ok(None) => return true,
            Ok(Some(Frame::Ping { id })) => {
                if let Some(out) = outgoing.upgrade() {
                    let _ = out.send(Frame::Ping { id }).await;
                }
            }
            Ok(Some(frame)) => {
                if incoming.send(frame).await.is_err() {
                    return false;
                }
            }
            Err(error) => {
                tracing::debug!(%error, "a bad SPDY frame; closing the connection");
                return false;
            }
        }
    }
}

/// Encodes one frame; `None` (and a log line) if it cannot be.
fn encode(writer: &mut FrameWriter, frame: &Frame) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    match writer.encode(frame, &mut bytes) {
        Ok(()) => Some(bytes),
        Err(error) => {
            tracing::debug!(%error, "encoding a SPDY frame");
            None
        }
    }
}

/// SPDY directly on a connection (`Upgrade: SPDY/3.1`).
pub(super) fn over_io<T>(io: T) -> Session
where
    T: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut read, mut write) = tokio::io::split(io);
    let (incoming_tx, incoming) = mpsc::channel(QUEUE);
    let (outgoing, mut outgoing_rx) = mpsc::channel::<Frame>(QUEUE);
    let weak = outgoing.downgrade();
    let reader = tokio::spawn(async move {
        let mut frames = FrameReader::default();
        let mut buffer = vec![0u8; 32 * 1024];
        loop {
            match read.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !deliver(&mut frames, &buffer[..n], &incoming_tx, &weak).await {
                        break;
                    }
                }
            }
        }
    });
    tokio::spawn(async move {
        let mut frames = FrameWriter::default();
        while let Some(frame) = outgoing_rx.recv().await {
            let Some(bytes) = encode(&mut frames, &frame) else {
                break;
            };
            if write.write_all(&bytes).await.is_err() {
                return;
            }
            if outgoing_rx.is_empty() && write.flush().await.is_err() {
                return;
            }
        }
        let _ = write.shutdown().await;
    });
    Session {
        incoming,
        outgoing,
        reader,
    }
}

/// SPDY carried in a WebSocket's binary messages (`SPDY/3.1+portforward.k8s.io`).
pub(super) fn over_websocket<S>(socket: WebSocketStream<S>) -> Session
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sink, mut stream) = socket.split();
    let (incoming_tx, incoming) = mpsc::channel(QUEUE);
    let (outgoing, mut outgoing_rx) = mpsc::channel::<Frame>(QUEUE);
    let weak = outgoing.downgrade();
    let reader = tokio::spawn(async move {
        let mut frames = FrameReader::default();
        while let Some(Ok(message)) = stream.next().await {
            let go_on = match message {
                Message::Binary(bytes) => deliver(&mut frames, &bytes, &incoming_tx, &weak).await,
                Message::Close(_) => false,
                _ => true,
            };
            if !go_on {
                break;
            }
        }
    });
    tokio::spawn(async move {
        let mut frames = FrameWriter::default();
        while let Some(frame) = outgoing_rx.recv().await {
            let Some(bytes) = encode(&mut frames, &frame) else {
                break;
            };
            if sink
                .feed(Message::Binary(Bytes::from(bytes)))
                .await
                .is_err()
            {
                return;
            }
            if outgoing_rx.is_empty() && sink.flush().await.is_err() {
                return;
            }
        }
        let _ = sink.close().await;
    });
    Session {
        incoming,
        outgoing,
        reader,
    }
}
