//! An attach stream: the WebSocket bridged to the container's shim (see [`crate::attach`]).

use anyhow::{Context, Result};
use cox_cri::streaming::{self, CLOSE, ERROR, RESIZE, STDIN};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::attach;
use crate::runtime::{Runtime, lock};

pub(super) async fn run(
    socket: WebSocketStream<TcpStream>,
    protocol: &'static str,
    runtime: &Runtime,
    container_id: &str,
    stdin: bool,
) -> Result<()> {
    let (mut sink, mut incoming) = socket.split();
    let shim = match connect(runtime, container_id).await {
        Ok(shim) => shim,
        Err(e) => {
            if streaming::has_status(protocol) {
                let status = streaming::failure_status(&format!("{e:#}")).to_string();
                let _ = sink
                    .send(Message::binary(streaming::frame(ERROR, status.as_bytes())))
                    .await;
            }
            let _ = sink.close().await;
            return Ok(());
        }
    };
    let (mut from_shim, mut to_shim) = shim.into_split();
    let output = async {
        loop {
            let mut head = [0u8; 5];
            if from_shim.read_exact(&mut head).await.is_err() {
                break;
            }
            let length = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
            let mut payload = vec![0u8; length];
            if from_shim.read_exact(&mut payload).await.is_err() {
                break;
            }
            // The shim's stream numbers are the channel protocol's.
            if sink
                .send(Message::binary(streaming::frame(head[0], &payload)))
                .await
                .is_err()
            {
                break;
            }
        }
        if streaming::has_status(protocol) {
            let status = streaming::exit_status(0).to_string();
            let _ = sink
                .send(Message::binary(streaming::frame(ERROR, status.as_bytes())))
                .await;
        }
        let _ = sink.close().await;
    };
    let input = async {
        while let Some(Ok(message)) = incoming.next().await {
            let Message::Binary(data) = message else {
                if matches!(message, Message::Close(_)) {
                    break;
                }
                continue;
            };
            let frame = match streaming::parse(&data) {
                Some((STDIN, bytes)) if stdin => Some((attach::STDIN, bytes)),
                Some((RESIZE, bytes)) => Some((attach::RESIZE, bytes)),
                Some((CLOSE, [STDIN])) => Some((attach::CLOSE, &[][..])),
                _ => None,
            };
            if let Some((kind, bytes)) = frame {
                let mut encoded = Vec::with_capacity(bytes.len() + 5);
                if attach::write_frame(&mut encoded, kind, bytes).is_err()
                    || to_shim.write_all(&encoded).await.is_err()
                {
                    break;
                }
            }
        }
        let _ = to_shim.shutdown().await;
    };
    // The stream ends when the container's output ends (it exited) or the client leaves.
    tokio::select! {
        () = output => {}
        () = input => {}
    }
    super::await_close(&mut incoming).await;
    Ok(())
}

async fn connect(runtime: &Runtime, container_id: &str) -> Result<tokio::net::UnixStream> {
    let container = runtime.container(container_id)?;
    let id = lock(&container).id.clone();
    let path = runtime.attach_socket(&id);
    tokio::net::UnixStream::connect(&path)
        .await
        .with_context(|| format!("container {id} cannot be attached to (has it exited?)"))
}
