//! A port-forward stream: for each requested port, a TCP connection to that port on the pod's
//! loopback, made from inside the pod's network namespace, carried on the port's data channel.
//! Over v5 the client may half-close a connection (`[255, data channel]`): the pod reads the
//! end of its input and answers on. The stream closes once the pod has closed every connection
//! (or none could be made), after all the pod wrote.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use cox_cri::streaming::{self, CLOSE};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use crate::runtime::{Runtime, lock};

/// How long a finished stream waits for the client's half of the WebSocket close handshake.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(5);

pub(super) async fn run(
    socket: WebSocketStream<TcpStream>,
    protocol: &str,
    runtime: &Runtime,
    sandbox_id: &str,
    ports: &[u16],
) -> Result<()> {
    let sandbox = runtime.sandbox(sandbox_id)?;
    let record = lock(&sandbox).clone();
    let netns = runtime.pod_paths(&record).net;
    let (mut sink, mut incoming) = socket.split();
    let (out, mut outgoing) = mpsc::channel::<Message>(64);
    let mut writer = tokio::spawn(async move {
        while let Some(message) = outgoing.recv().await {
            if sink.send(message).await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });

    // Each port's data and error channels start with the port number.
    let mut writers = Vec::new();
    let mut readers = Vec::new();
    for (index, port) in ports.iter().enumerate() {
        let data = (index * 2) as u8;
        for channel in [data, data + 1] {
            let preamble = streaming::frame(channel, &streaming::port_preamble(*port));
            let _ = out.send(Message::binary(preamble)).await;
        }
        match connect(netns.clone(), *port).await {
            Ok(stream) => {
                let (mut read, write) = stream.into_split();
                writers.push(Some(write));
                let out = out.clone();
                readers.push(tokio::spawn(async move {
                    let mut buffer = vec![0u8; 32 * 1024];
                    while let Ok(n) = read.read(&mut buffer).await {
                        if n == 0 {
                            break;
                        }
                        let frame = streaming::frame(data, &buffer[..n]);
                        if out.send(Message::binary(frame)).await.is_err() {
                            break;
                        }
                    }
                }));
            }
            Err(e) => {
                writers.push(None);
                let message = format!("error forwarding port {port} to pod {}: {e:#}", record.id);
                let _ = out
                    .send(Message::binary(streaming::frame(
                        data + 1,
                        message.as_bytes(),
                    )))
                    .await;
            }
        }
    }
    // The stream ends when the client closes it, or when every port's connection has been
    // closed by the pod (or never opened), as upstream's kubelet ends it.
    let half_closes = protocol == streaming::V5;
    let pods_done = futures::future::join_all(readers);
    tokio::pin!(pods_done);
    let client_closed = loop {
        let message = tokio::select! {
            message = incoming.next() => message,
            _ = &mut pods_done => break false,
        };
        match message {
            Some(Ok(Message::Binary(bytes))) => match streaming::parse(&bytes) {
                // The client sends no more on this connection: the pod reads its end of
                // input (a FIN) and its answer still comes back.
                Some((CLOSE, [channel])) if half_closes => {
                    if channel % 2 == 0
                        && let Some(slot) = writers.get_mut(usize::from(channel / 2))
                        && let Some(mut to_pod) = slot.take()
                    {
                        let _ = to_pod.shutdown().await;
                    }
                }
                Some((channel, data)) => {
                    let index = usize::from(channel / 2);
                    if channel % 2 == 0
                        && let Some(Some(writer)) = writers.get_mut(index)
                        && writer.write_all(data).await.is_err()
                    {
                        writers[index] = None;
                    }
                }
                None => {}
            },
            Some(Ok(Message::Close(_)) | Err(_)) | None => break true,
            Some(Ok(_)) => {}
        }
    };
    drop(writers);
    drop(out);
    if client_closed {
        let _ = writer.await;
        return Ok(());
    }
    // The writer sends what the pods wrote, then our close. Meanwhile, and until the client's
    // close, whatever the client still sends is read and dropped: input left unread when the
    // socket closes would turn the close into a reset, losing the answer still in flight.
    let drain = async { while let Some(Ok(_)) = incoming.next().await {} };
    tokio::pin!(drain);
    tokio::select! {
        () = &mut drain => {
            let _ = writer.await;
        }
        _ = &mut writer => {
            let _ = tokio::time::timeout(CLOSE_HANDSHAKE, drain).await;
        }
    }
    Ok(())
}

/// Connects to `port` on the pod's loopback: the socket is made inside the pod's network
/// namespace, on a thread of its own that enters it.
async fn connect(netns: Option<PathBuf>, port: u16) -> Result<TcpStream> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Some(netns) = netns else {
        // A pod on the host's network: its loopback is the node's.
        return Ok(TcpStream::connect(address).await?);
    };
    let stream = tokio::task::spawn_blocking(move || -> Result<std::net::TcpStream> {
        let handle = std::thread::spawn(move || -> Result<std::net::TcpStream> {
            let namespace =
                std::fs::File::open(&netns).context("opening the pod's network namespace")?;
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&namespace),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .context("entering the pod's network namespace")?;
            Ok(std::net::TcpStream::connect_timeout(
                &address,
                std::time::Duration::from_secs(5),
            )?)
        });
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("the connecting thread panicked"))?
    })
    .await??;
    stream.set_nonblocking(true)?;
    Ok(TcpStream::from_std(stream)?)
}
