//! Container probes (liveness, readiness, startup) as upstream's kubelet runs them: exec through
//! the CRI's ExecSync, httpGet and tcpSocket against the pod's IP, each on its period after its
//! initial delay, with its timeout and success/failure thresholds.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cox_cri::v1;
use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::worker::Cri;

/// Which probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Liveness => "Liveness",
            Kind::Readiness => "Readiness",
        }
    }
}

/// One probe's running tally for one container instance.
#[derive(Debug, Clone)]
struct Tally {
    next: Instant,
    successes: i32,
    failures: i32,
    /// The verdict once a threshold was reached.
    passing: Option<bool>,
}

/// What a sync must do after probing.
#[derive(Debug, Default)]
pub struct Verdict {
    /// The container is ready (its readiness probe passes, or it has none).
    pub ready: bool,
    /// The container must be killed and restarted, with why.
    pub kill: Option<String>,
    /// Probe failures to report as `Unhealthy` events.
    pub unhealthy: Vec<String>,
}

/// The probes of one pod, by container ID (a restarted container starts afresh).
#[derive(Debug, Default)]
pub struct Probes {
    tallies: HashMap<(String, Kind), Tally>,
}

impl Probes {
    /// Forgets the tallies of container instances that are gone.
    pub fn keep_only(&mut self, live: &[String]) {
        self.tallies.retain(|(id, _), _| live.contains(id));
    }

    /// Runs the probes that are due for a running container.
    pub async fn check(
        &mut self,
        cri: &Cri,
        container: &Container,
        container_id: &str,
        started_at: Instant,
        pod_ip: Option<&str>,
    ) -> Verdict {
        let startup_passed = match &container.startup_probe {
            None => true,
            Some(probe) => {
                let tally = self
                    .run(
                        cri,
                        Kind::Startup,
                        probe,
                        container,
                        container_id,
                        started_at,
                        pod_ip,
                    )
                    .await;
                match tally {
                    (Some(false), message) => {
                        return Verdict {
                            ready: false,
                            kill: Some(format!(
                                "Container {} failed startup probe, will be restarted",
                                container.name
                            )),
                            unhealthy: message.into_iter().collect(),
                        };
                    }
                    (passing, message) => {
                        if passing != Some(true) {
                            return Verdict {
                                ready: false,
                                kill: None,
                                unhealthy: message.into_iter().collect(),
                            };
                        }
                        true
                    }
                }
            }
        };
        let mut verdict = Verdict {
            ready: startup_passed,
            ..Default::default()
        };
        if let Some(probe) = &container.liveness_probe {
            let (passing, message) = self
                .run(
                    cri,
                    Kind::Liveness,
                    probe,
                    container,
                    container_id,
                    started_at,
                    pod_ip,
                )
                .await;
            verdict.unhealthy.extend(message);
            if passing == Some(false) {
                verdict.kill = Some(format!(
                    "Container {} failed liveness probe, will be restarted",
                    container.name
                ));
            }
        }
        if let Some(probe) = &container.readiness_probe {
            let (passing, message) = self
                .run(
                    cri,
                    Kind::Readiness,
                    probe,
                    container,
                    container_id,
                    started_at,
                    pod_ip,
                )
                .await;
            verdict.unhealthy.extend(message);
            // Not ready until the probe has passed (upstream starts readiness at false).
            verdict.ready = verdict.ready && passing == Some(true);
        }
        verdict
    }

    /// Runs one probe if due; returns its verdict (None until a threshold is reached) and a
    /// failure message to report.
    #[allow(clippy::too_many_arguments)]
    async fn run(
        &mut self,
        cri: &Cri,
        kind: Kind,
        probe: &Probe,
        container: &Container,
        container_id: &str,
        started_at: Instant,
        pod_ip: Option<&str>,
    ) -> (Option<bool>, Option<String>) {
        let delay = Duration::from_secs(probe.initial_delay_seconds.unwrap_or(0).max(0) as u64);
        let period = Duration::from_secs(probe.period_seconds.unwrap_or(10).max(1) as u64);
        let key = (container_id.to_string(), kind);
        let tally = self.tallies.entry(key).or_insert_with(|| Tally {
            next: started_at + delay,
            successes: 0,
            failures: 0,
            passing: None,
        });
        if Instant::now() < tally.next {
            return (tally.passing, None);
        }
        tally.next = Instant::now() + period;
        let timeout = Duration::from_secs(probe.timeout_seconds.unwrap_or(1).max(1) as u64);
        let outcome = probe_once(cri, probe, container, container_id, pod_ip, timeout).await;
        let success_threshold = probe.success_threshold.unwrap_or(1).max(1);
        let failure_threshold = probe.failure_threshold.unwrap_or(3).max(1);
        match outcome {
            Ok(()) => {
                tally.failures = 0;
                tally.successes += 1;
                if tally.successes >= success_threshold {
                    tally.passing = Some(true);
                }
                (tally.passing, None)
            }
            Err(reason) => {
                tally.successes = 0;
                tally.failures += 1;
                if tally.failures >= failure_threshold {
                    tally.passing = Some(false);
                    if kind != Kind::Readiness {
                        // The container is killed; a new instance starts afresh.
                        tally.failures = 0;
                    }
                }
                (
                    tally.passing,
                    Some(format!("{} probe failed: {reason}", kind.name())),
                )
            }
        }
    }
}

/// One probe attempt (lifecycle hooks run their actions through it too).
pub(crate) async fn probe_once(
    cri: &Cri,
    probe: &Probe,
    container: &Container,
    container_id: &str,
    pod_ip: Option<&str>,
    timeout: Duration,
) -> Result<(), String> {
    if let Some(exec) = &probe.exec {
        let mut runtime = cri.runtime.clone();
        let response = runtime
            .exec_sync(v1::ExecSyncRequest {
                container_id: container_id.to_string(),
                cmd: exec.command.clone().unwrap_or_default(),
                timeout: timeout.as_secs() as i64,
            })
            .await
            .map_err(|s| s.message().to_string())?
            .into_inner();
        if response.exit_code == 0 {
            return Ok(());
        }
        let output = String::from_utf8_lossy(&response.stdout).trim().to_string();
        return Err(if output.is_empty() {
            format!("command exited with status {}", response.exit_code)
        } else {
            output
        });
    }
    let ip = pod_ip.ok_or_else(|| "the pod has no IP yet".to_string())?;
    if let Some(http) = &probe.http_get {
        let port = resolve_port(&http.port, container)?;
        let host = http.host.clone().unwrap_or_else(|| ip.to_string());
        let path = http.path.clone().unwrap_or_else(|| "/".into());
        if http.scheme.as_deref() == Some("HTTPS") {
            // Upstream does not verify the certificate; a TLS handshake is out of reach here
            // yet, so HTTPS probes check that the port accepts connections.
            return tcp(&host, port, timeout).await.map(|_| ());
        }
        let headers: Vec<(String, String)> = http
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        return http_get(&host, port, &path, &headers, timeout).await;
    }
    if let Some(socket) = &probe.tcp_socket {
        let port = resolve_port(&socket.port, container)?;
        let host = socket.host.clone().unwrap_or_else(|| ip.to_string());
        return tcp(&host, port, timeout).await.map(|_| ());
    }
    Err("the probe names no handler".into())
}

/// A port by number or by the name of one of the container's ports.
fn resolve_port(port: &IntOrString, container: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port {n}")),
        IntOrString::String(name) => container
            .ports
            .iter()
            .flatten()
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok())
            .ok_or_else(|| format!("port {name:?} not found in the container's ports")),
    }
}

async fn tcp(host: &str, port: u16, timeout: Duration) -> Result<tokio::net::TcpStream, String> {
    let address = format!("{host}:{port}");
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&address)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(format!("dial tcp {address}: connect: {e}")),
        Err(_) => Err(format!("dial tcp {address}: i/o timeout")),
    }
}

/// An HTTP/1.1 GET; a status from 200 to 399 passes, as upstream.
async fn http_get(
    host: &str,
    port: u16,
    path: &str,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<(), String> {
    let attempt = async {
        let mut stream = tcp(host, port, timeout).await?;
        let mut request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.33\r\nAccept: */*\r\nConnection: close\r\n"
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut head = vec![0u8; 1024];
        let n = stream.read(&mut head).await.map_err(|e| e.to_string())?;
        let text = String::from_utf8_lossy(&head[..n]);
        let code: u16 = text
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| "malformed HTTP response".to_string())?;
        if (200..400).contains(&code) {
            Ok(())
        } else {
            Err(format!("HTTP probe failed with statuscode: {code}"))
        }
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "Get \"http://{host}:{port}{path}\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ContainerPort;

    #[test]
    fn ports_resolve_by_number_and_name() {
        let container = Container {
            ports: Some(vec![ContainerPort {
                name: Some("http".into()),
                container_port: 8080,
                ..Default::default()
            }]),
            ..Default::default()
        };
        assert_eq!(resolve_port(&IntOrString::Int(80), &container), Ok(80));
        assert_eq!(
            resolve_port(&IntOrString::String("http".into()), &container),
            Ok(8080)
        );
        assert!(resolve_port(&IntOrString::String("nope".into()), &container).is_err());
    }

    #[tokio::test]
    async fn http_probes_judge_by_status_code() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("address").port();
        tokio::spawn(async move {
            for status in ["200 OK", "500 Internal Server Error"] {
                let (mut socket, _) = listener.accept().await.expect("accept");
                let mut buffer = [0u8; 1024];
                let _ = socket.read(&mut buffer).await;
                let reply = format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
                let _ = socket.write_all(reply.as_bytes()).await;
            }
        });
        let timeout = Duration::from_secs(2);
        assert_eq!(http_get("127.0.0.1", port, "/", &[], timeout).await, Ok(()));
        let failed = http_get("127.0.0.1", port, "/", &[], timeout).await;
        assert_eq!(failed, Err("HTTP probe failed with statuscode: 500".into()));
    }
}
