//! The Container Runtime Interface (CRI, `runtime.v1`): the contract between a kubelet and a
//! container runtime.
//!
//! - [`v1`]: the CRI messages and the two gRPC services, `RuntimeService` and `ImageService`,
//!   generated from upstream's protobuf definition (by the `k8s-cri` crate). A runtime implements
//!   the generated server traits; Coxswain's own runtime does, and the kubelet calls those traits,
//!   whether the runtime is in the same process or behind a socket.
//! - [`connect`]: a gRPC channel to a CRI runtime on a unix socket (Coxswain's or containerd's).
//! - [`lenient`]: reading CRI messages from crictl-style JSON, where every field is optional.
//! - [`streaming`]: the channel protocol of exec, attach and port-forward streams over
//!   WebSocket (`v5.channel.k8s.io` and its predecessors), as runtimes, kubelets and API
//!   servers speak it.
//! - [`spdy`]: SPDY/3.1 framing, for the same streams: kubectl's fallback, and the protocol
//!   inside port-forward's WebSocket tunnel.
//! - [`crictl`]: `cox crictl`, a CRI client with crictl's commands and output.

pub mod crictl;
pub mod lenient;
pub mod spdy;
pub mod stream_client;
pub mod streaming;

/// The CRI v1 messages, clients and server traits.
pub mod v1 {
    pub use k8s_cri::v1::*;
}

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

/// The CRI version this crate speaks, as `Version` reports it.
pub const API_VERSION: &str = "v1";

/// Where a CRI endpoint such as `unix:///run/containerd/containerd.sock` (or a bare path) lives.
pub fn socket_path(endpoint: &str) -> PathBuf {
    let path = endpoint.strip_prefix("unix://").unwrap_or(endpoint);
    Path::new(path).to_path_buf()
}

/// Opens a gRPC channel to the CRI runtime listening on `endpoint`'s unix socket.
pub async fn connect(endpoint: &str) -> Result<Channel, tonic::transport::Error> {
    let path = socket_path(endpoint);
    // The URI is required by tonic but never used: the connector below always dials the socket.
    Endpoint::from_static("http://cri.local")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
}
