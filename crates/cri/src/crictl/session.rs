//! The connection to the runtime: endpoints, timeouts, and how gRPC failures read.
//!
//! As crictl (through `k8s.io/cri-client`): connecting and each call are bounded by
//! `--timeout`; `RunPodSandbox` gets twice that; `StopContainer` gets it plus the stop timeout;
//! `ExecSync` gets it plus the exec timeout, or no bound when that is zero; `PullImage` has no
//! bound unless `--pull-timeout` is given.

use std::future::Future;
use std::time::Duration;

use anyhow::Context as _;
use tonic::transport::Channel;

use super::output::Terminal;
use crate::v1::image_service_client::ImageServiceClient;
use crate::v1::runtime_service_client::RuntimeServiceClient;

/// crictl's limit for a response (its `maxMsgSize`), above tonic's default of 4 MiB.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// Endpoints, timeout and debug flag of one `cox crictl` invocation, with its connections once
/// made.
#[derive(Debug)]
pub(crate) struct Session {
    runtime_endpoint: String,
    image_endpoint: String,
    timeout: Duration,
    debug: bool,
    runtime: Option<Channel>,
    image: Option<Channel>,
    terminal: Terminal,
}

impl Session {
    pub(crate) fn new(
        runtime_endpoint: String,
        image_endpoint: Option<String>,
        timeout: Duration,
        debug: bool,
    ) -> Self {
        let image_endpoint = image_endpoint
            .filter(|endpoint| !endpoint.is_empty())
            .unwrap_or_else(|| runtime_endpoint.clone());
        Session {
            runtime_endpoint,
            image_endpoint,
            timeout,
            debug,
            runtime: None,
            image: None,
            terminal: Terminal::Process,
        }
    }

    /// Sends this session's output somewhere else (tests capture it).
    #[cfg(test)]
    pub(crate) fn with_terminal(mut self, terminal: Terminal) -> Self {
        self.terminal = terminal;
        self
    }

    /// Where output goes.
    pub(crate) fn terminal(&self) -> &Terminal {
        &self.terminal
    }

    /// Writes `text` to stdout.
    pub(crate) fn print(&self, text: impl AsRef<[u8]>) -> std::io::Result<()> {
        self.terminal.print(text)
    }

    /// The per-call timeout (`--timeout`).
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Replaces the timeout for this command, as crictl's `--cancel-timeout` does; zero keeps
    /// the global one.
    pub(crate) fn override_timeout(&mut self, timeout: Duration) {
        if !timeout.is_zero() {
            self.timeout = timeout;
        }
    }

    /// A deadline of the per-call timeout.
    pub(crate) fn deadline(&self) -> Deadline {
        Deadline::after(self.timeout)
    }

    pub(crate) fn debug_enabled(&self) -> bool {
        self.debug
    }

    pub(crate) fn debug(&self, message: impl std::fmt::Display) {
        if self.debug {
            super::output::notice("debug", message);
        }
    }

    async fn channel(&self, endpoint: &str, what: &str) -> anyhow::Result<Channel> {
        if endpoint.is_empty() {
            anyhow::bail!("--{what}-endpoint is not set");
        }
        self.debug(format_args!(
            "connecting to {what} endpoint {endpoint} (timeout {:?})",
            self.timeout
        ));
        let connecting = crate::connect(endpoint);
        match tokio::time::timeout(self.timeout, connecting).await {
            Ok(Ok(channel)) => Ok(channel),
            Ok(Err(error)) => Err(anyhow::Error::new(error))
                .with_context(|| format!("connect to the {what} endpoint {endpoint:?}")),
            Err(_) => anyhow::bail!(
                "connect to the {what} endpoint {endpoint:?}: no answer within {:?}",
                self.timeout
            ),
        }
    }

    /// The runtime service, connecting on first use.
    pub(crate) async fn runtime(&mut self) -> anyhow::Result<RuntimeServiceClient<Channel>> {
        let channel = match &self.runtime {
            Some(channel) => channel.clone(),
            None => {
                let channel = self.channel(&self.runtime_endpoint, "runtime").await?;
                self.runtime = Some(channel.clone());
                channel
            }
        };
        Ok(RuntimeServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES))
    }

    /// The image service, connecting on first use (sharing the runtime's connection when the
    /// endpoints are the same).
    pub(crate) async fn images(&mut self) -> anyhow::Result<ImageServiceClient<Channel>> {
        let channel = match (&self.image, &self.runtime) {
            (Some(channel), _) => channel.clone(),
            (None, Some(runtime)) if self.image_endpoint == self.runtime_endpoint => {
                runtime.clone()
            }
            (None, _) => {
                let channel = self.channel(&self.image_endpoint, "image").await?;
                self.image = Some(channel.clone());
                channel
            }
        };
        Ok(ImageServiceClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES))
    }
}

/// How long a call may take; `None` is no bound.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Deadline(Option<Duration>);

impl Deadline {
    pub(crate) fn after(timeout: Duration) -> Self {
        Deadline(Some(timeout))
    }

    pub(crate) fn none() -> Self {
        Deadline(None)
    }

    /// Wraps `message` in a request that tells the runtime the deadline (`grpc-timeout`).
    pub(crate) fn request<T>(self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        if let Some(timeout) = self.0 {
            request.set_timeout(timeout);
        }
        request
    }

    /// Awaits a call, giving up at the deadline as a gRPC client does. The runtime learns the
    /// deadline too and may give up first (tonic answers `Cancelled`); either way the call
    /// failed for its deadline and says so as Go's client does.
    pub(crate) async fn call<T>(
        self,
        call: impl Future<Output = Result<tonic::Response<T>, tonic::Status>>,
    ) -> Result<T, RpcError> {
        let exceeded = || tonic::Status::deadline_exceeded("context deadline exceeded");
        let outcome = match self.0 {
            Some(timeout) => {
                let started = tokio::time::Instant::now();
                match tokio::time::timeout(timeout, call).await {
                    Err(_) => Err(exceeded()),
                    Ok(Err(status))
                        if matches!(
                            status.code(),
                            tonic::Code::Cancelled | tonic::Code::DeadlineExceeded
                        ) && started.elapsed() >= timeout =>
                    {
                        Err(exceeded())
                    }
                    Ok(outcome) => outcome,
                }
            }
            None => call.await,
        };
        outcome.map(tonic::Response::into_inner).map_err(RpcError)
    }
}

/// A failed call, worded as Go's gRPC client words it:
/// `rpc error: code = NotFound desc = container "x" not found`.
#[derive(Debug, thiserror::Error)]
#[error("rpc error: code = {} desc = {}", code_name(.0.code()), .0.message())]
pub(crate) struct RpcError(pub(crate) tonic::Status);

impl RpcError {
    pub(crate) fn code(&self) -> tonic::Code {
        self.0.code()
    }
}

/// gRPC status codes by their Go names.
fn code_name(code: tonic::Code) -> &'static str {
    match code {
        tonic::Code::Ok => "OK",
        tonic::Code::Cancelled => "Canceled",
        tonic::Code::Unknown => "Unknown",
        tonic::Code::InvalidArgument => "InvalidArgument",
        tonic::Code::DeadlineExceeded => "DeadlineExceeded",
        tonic::Code::NotFound => "NotFound",
        tonic::Code::AlreadyExists => "AlreadyExists",
        tonic::Code::PermissionDenied => "PermissionDenied",
        tonic::Code::ResourceExhausted => "ResourceExhausted",
        tonic::Code::FailedPrecondition => "FailedPrecondition",
        tonic::Code::Aborted => "Aborted",
        tonic::Code::OutOfRange => "OutOfRange",
        tonic::Code::Unimplemented => "Unimplemented",
        tonic::Code::Internal => "Internal",
        tonic::Code::Unavailable => "Unavailable",
        tonic::Code::DataLoss => "DataLoss",
        tonic::Code::Unauthenticated => "Unauthenticated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpc_errors_read_like_go() {
        let error = RpcError(tonic::Status::not_found("container \"x\" not found"));
        assert_eq!(
            error.to_string(),
            "rpc error: code = NotFound desc = container \"x\" not found"
        );
        let error = RpcError(tonic::Status::cancelled("gone"));
        assert_eq!(error.to_string(), "rpc error: code = Canceled desc = gone");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn calls_give_up_at_the_deadline() {
        let never = std::future::pending::<Result<tonic::Response<()>, tonic::Status>>();
        let error = Deadline::after(Duration::from_millis(10))
            .call(never)
            .await
            .expect_err("times out");
        assert_eq!(error.code(), tonic::Code::DeadlineExceeded);
        assert_eq!(
            error.to_string(),
            "rpc error: code = DeadlineExceeded desc = context deadline exceeded"
        );
    }

    #[test]
    fn image_endpoint_defaults_to_the_runtime_endpoint() {
        let session = Session::new("unix:///a.sock".into(), None, Duration::from_secs(2), false);
        assert_eq!(session.image_endpoint, "unix:///a.sock");
        let session = Session::new(
            "unix:///a.sock".into(),
            Some("unix:///b.sock".into()),
            Duration::from_secs(2),
            false,
        );
        assert_eq!(session.image_endpoint, "unix:///b.sock");
        let requested = Deadline::after(Duration::from_secs(3)).request(());
        assert!(requested.metadata().get("grpc-timeout").is_some());
    }

    #[tokio::test]
    async fn connecting_to_a_missing_socket_fails_with_the_endpoint_in_the_message() {
        let mut session = Session::new(
            "unix:///nonexistent/cox-crictl-test.sock".into(),
            None,
            Duration::from_secs(2),
            false,
        );
        let error = session.runtime().await.expect_err("no socket");
        let message = format!("{error:#}");
        assert!(
            message.starts_with(
                "connect to the runtime endpoint \"unix:///nonexistent/cox-crictl-test.sock\""
            ),
            "{message}"
        );
        assert!(message.contains("No such file or directory"), "{message}");
    }
}
