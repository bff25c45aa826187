//! Serving the runtime as CRI gRPC on its unix socket.

use std::path::Path;
use std::sync::Arc;

use cox_cri::v1::{
    image_service_server::ImageServiceServer, runtime_service_server::RuntimeServiceServer,
};
use tokio_stream::wrappers::UnixListenerStream;

use crate::runtime::Runtime;
use crate::service::CriService;
use crate::streaming::StreamServer;

/// Serves CRI on `socket` until `shutdown` completes, announcing container exits meanwhile. A
/// stale socket file is replaced.
pub async fn serve(
    runtime: Arc<Runtime>,
    socket: &Path,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    if let Some(parent) = socket.parent() {
        std::fs::create_dir_all(parent)?;
    }
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let listener = tokio::net::UnixListener::bind(socket)?;
    let (streams, stream_listener) = StreamServer::bind(runtime.config().stream_address).await?;
    tokio::spawn(streams.clone().serve(stream_listener, runtime.clone()));
    let exits = crate::events::watch_exits(&runtime);
    let (stop_streams, stopping) = tokio::sync::watch::channel(false);
    let service = CriService::new(runtime, streams, stopping)?;
    // Event streams never end on their own; they must before a graceful shutdown can finish.
    let shutdown = async move {
        shutdown.await;
        let _ = stop_streams.send(true);
    };
    let served = tonic::transport::Server::builder()
        .add_service(RuntimeServiceServer::new(service.clone()).max_decoding_message_size(16 << 20))
        .add_service(ImageServiceServer::new(service).max_decoding_message_size(16 << 20))
        .serve_with_incoming_shutdown(UnixListenerStream::new(listener), shutdown)
        .await;
    drop(exits);
    served?;
    Ok(())
}
