//! Lifecycle hooks (upstream's `lifecycle.postStart` and `lifecycle.preStop`): an exec
//! command in the container, an HTTP GET, a TCP connection (deprecated upstream, still run)
//! or a sleep. postStart runs right after the container starts, and a failure kills the
//! container (`FailedPostStartHook`); preStop runs before the stop signal, within the grace
//! period (`FailedPreStopHook` when it fails; the container is stopped all the same).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, LifecycleHandler, Probe};

use super::worker::Cri;

/// Runs `handler` for `container` (`container_id` in the runtime), for at most `limit`.
pub async fn run(
    cri: &Cri,
    handler: &LifecycleHandler,
    container: &Container,
    container_id: &str,
    pod_ip: Option<&str>,
    limit: Duration,
) -> Result<(), String> {
    if let Some(sleep) = &handler.sleep {
        let seconds = u64::try_from(sleep.seconds).unwrap_or(0);
        tokio::time::sleep(Duration::from_secs(seconds).min(limit)).await;
        return Ok(());
    }
    // The other actions are a probe's: run them the probes' way, once.
    let probe = Probe {
        exec: handler.exec.clone(),
        http_get: handler.http_get.clone(),
        tcp_socket: handler.tcp_socket.clone(),
        ..Default::default()
    };
    match tokio::time::timeout(
        limit,
        super::probes::probe_once(cri, &probe, container, container_id, pod_ip, limit),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(format!("timed out after {limit:?}")),
    }
}
