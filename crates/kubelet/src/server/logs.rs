//! `GET /containerLogs/<namespace>/<pod>/<container>`: a container's CRI log file printed as
//! `kubectl logs` shows it (see [`super::cri_log`]), with `tailLines`, `sinceSeconds`,
//! `sinceTime`, `timestamps`, `limitBytes`, `previous`, and `follow`, which keeps reading the
//! file (through rotations) until the container exits or the client goes away.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use cox_cri::v1;
use http::{Response, StatusCode};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use tokio::io::{AsyncBufReadExt, AsyncSeekExt, BufReader};
use tokio::sync::mpsc;

use super::cri_log::{self, PrintOptions, Printer};
use super::lookup::Lookup;
use super::{HttpError, Query, streamed};

/// How often a followed file is checked for more, and the container for its exit.
const POLL: Duration = Duration::from_millis(100);
const STATE_CHECK: Duration = Duration::from_secs(1);
/// Bytes sent to the client at a time.
const CHUNK: usize = 32 * 1024;

/// The request's options, as the kubelet reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Options {
    follow: bool,
    previous: bool,
    tail_lines: Option<u64>,
    print: PrintOptions,
}

fn bad(message: impl Into<String>) -> HttpError {
    HttpError::new(StatusCode::BAD_REQUEST, message)
}

fn options(query: &Query, now: Timestamp) -> Result<Options, HttpError> {
    let number = |name: &str| -> Result<Option<i64>, HttpError> {
        query
            .get(name)
            .filter(|v| !v.is_empty())
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| bad(format!("invalid {name}: {v:?}")))
            })
            .transpose()
    };
    let since = match (number("sinceSeconds")?, query.get("sinceTime")) {
        (Some(seconds), _) => Some(
            now.checked_sub(jiff::SignedDuration::from_secs(seconds))
                .map_err(|e| bad(format!("invalid sinceSeconds: {e}")))?,
        ),
        (None, Some(time)) if !time.is_empty() => Some(
            time.parse::<Timestamp>()
                .map_err(|e| bad(format!("invalid sinceTime {time:?}: {e}")))?,
        ),
        _ => None,
    };
    Ok(Options {
        follow: query.flag("follow"),
        previous: query.flag("previous"),
        tail_lines: number("tailLines")?.map(|n| n.max(0).unsigned_abs()),
        print: PrintOptions {
            timestamps: query.flag("timestamps"),
            since,
            limit_bytes: number("limitBytes")?
                .filter(|n| *n > 0)
                .map(i64::unsigned_abs),
        },
    })
}

/// The runtime's ID of the container whose logs are wanted, from the pod's status (upstream's
/// `validateContainerLogStatus`), or the reason there are none.
fn log_container_id(
    pod_name: &str,
    status: Option<&ContainerStatus>,
    container: &str,
    previous: bool,
) -> Result<String, String> {
    let Some(status) = status else {
        return Err(format!(
            "container {container:?} in pod {pod_name:?} is not available"
        ));
    };
    let state = status.state.clone().unwrap_or_default();
    let last = status
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.container_id.clone())
        .filter(|id| !id.is_empty());
    let terminated = format!("container {container:?} in pod {pod_name:?} is terminated");
    let id = if previous {
        last.ok_or_else(|| {
            format!("previous terminated container {container:?} in pod {pod_name:?} not found")
        })?
    } else if state.running.is_some() {
        status.container_id.clone().unwrap_or_default()
    } else if let Some(ended) = &state.terminated {
        match ended.container_id.clone().filter(|id| !id.is_empty()) {
            Some(id) => id,
            None => last.ok_or(terminated)?,
        }
    } else if let Some(id) = last {
        id
    } else if let Some(waiting) = &state.waiting {
        let why = match waiting.reason.as_deref().unwrap_or_default() {
            "ErrImagePull" => "image can't be pulled".to_owned(),
            "ImagePullBackOff" => "trying and failing to pull image".to_owned(),
            reason => reason.to_owned(),
        };
        return Err(format!(
            "container {container:?} in pod {pod_name:?} is waiting to start: {why}"
        ));
    } else {
        return Err(format!(
            "container {container:?} in pod {pod_name:?} is waiting to start - no logs yet"
        ));
    };
    // `cox://<id>`, `containerd://<id>`: the runtime's ID follows the scheme.
    Ok(id
        .split_once("://")
        .map_or(id.as_str(), |(_, id)| id)
        .to_owned())
}

fn status_of<'a>(pod: &'a Pod, container: &str) -> Option<&'a ContainerStatus> {
    let status = pod.status.as_ref()?;
    [
        &status.container_statuses,
        &status.init_container_statuses,
        &status.ephemeral_container_statuses,
    ]
    .into_iter()
    .flatten()
    .flatten()
    .find(|s| s.name == container)
}

fn has_container(pod: &Pod, container: &str) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.containers.iter().any(|c| c.name == container)
        || spec
            .init_containers
            .iter()
            .flatten()
            .any(|c| c.name == container)
        || spec
            .ephemeral_containers
            .iter()
            .flatten()
            .any(|c| c.name == container)
}

/// Answers a log request: errors before the first byte are the status; the body streams.
pub(super) async fn container_logs(
    lookup: std::sync::Arc<Lookup>,
    namespace: &str,
    pod_name: &str,
    container: &str,
    query: &Query,
) -> Result<Response<super::Body>, HttpError> {
    let options = options(query, Timestamp::now())?;
    let pod = lookup
        .pod(
            namespace,
            pod_name,
            &format!("pod {pod_name:?} does not exist"),
        )
        .await?;
    if !has_container(&pod, container) {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            format!("container {container:?} not found in pod {pod_name:?}"),
        ));
    }
    let id = log_container_id(
        pod_name,
        status_of(&pod, container),
        container,
        options.previous,
    )
    .map_err(bad)?;
    let status = lookup
        .container_status(&id)
        .await
        .map_err(|e| bad(e.message))?;
    if status.log_path.is_empty() {
        return Err(bad(format!(
            "container {container:?} in pod {pod_name:?} has no log file"
        )));
    }
    let path = PathBuf::from(&status.log_path);
    let mut file = std::fs::File::open(&path).map_err(|e| {
        bad(format!(
            "failed to open log file {:?}: {e}",
            status.log_path
        ))
    })?;
    let start = match options.tail_lines {
        Some(lines) => {
            let found = tokio::task::spawn_blocking(move || {
                cri_log::tail_start(&mut file, lines).map(|start| (file, start))
            })
            .await
            .map_err(|e| bad(e.to_string()))?;
            let (opened, start) =
                found.map_err(|e| bad(format!("reading {:?}: {e}", status.log_path)))?;
            file = opened;
            start
        }
        None => 0,
    };
    let running = status.state == v1::ContainerState::ContainerRunning as i32;
    let (sender, body) = streamed();
    tokio::spawn(async move {
        let follow = options.follow && running;
        let reader = FileReader {
            path,
            file: tokio::fs::File::from_std(file),
            start,
            printer: Printer::new(options.print),
            sender,
        };
        if let Err(error) = reader.run(follow, &lookup, &id).await {
            tracing::debug!(container = %id, %error, "a log stream ended early");
        }
    });
    Ok(body)
}

/// Reads a log file into a response body.
struct FileReader {
    path: PathBuf,
    file: tokio::fs::File,
    start: u64,
    printer: Printer,
    sender: mpsc::Sender<Bytes>,
}

/// Why a log stream stopped before its end.
#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error("reading the log file: {0}")]
    Io(#[from] std::io::Error),
    #[error("the client went away")]
    Gone,
}

impl FileReader {
    async fn run(mut self, follow: bool, lookup: &Lookup, id: &str) -> Result<(), StreamError> {
        self.file.seek(std::io::SeekFrom::Start(self.start)).await?;
        let mut reader = BufReader::new(self.file);
        let mut inode = reader.get_ref().metadata().await?.ino();
        let mut line = Vec::new();
        let mut out = Vec::with_capacity(CHUNK);
        let mut last_check = tokio::time::Instant::now();
        let mut exited = false;
        loop {
            let read = reader.read_until(b'\n', &mut line).await?;
            if read > 0 && line.ends_with(b"\n") {
                match cri_log::parse(&line) {
                    Ok(entry) => self.printer.print(&entry, &mut out),
                    Err(error) => tracing::debug!(%error, "skipping a log line"),
                }
                line.clear();
                if self.printer.done() {
                    break;
                }
                if out.len() >= CHUNK {
                    send(&self.sender, &mut out).await?;
                }
                continue;
            }
            // The end of what is written so far (a partial line stays in `line`).
            send(&self.sender, &mut out).await?;
            if !follow || exited {
                break;
            }
            // Rotated: the path is a new file; the old one is complete.
            if let Ok(meta) = tokio::fs::metadata(&self.path).await
                && meta.ino() != inode
                && let Ok(file) = tokio::fs::File::open(&self.path).await
            {
                inode = meta.ino();
                reader = BufReader::new(file);
                line.clear();
                continue;
            }
            if last_check.elapsed() >= STATE_CHECK {
                last_check = tokio::time::Instant::now();
                let running = lookup
                    .container_status(id)
                    .await
                    .is_ok_and(|s| s.state == v1::ContainerState::ContainerRunning as i32);
                // Read once more: what the container wrote before it exited.
                exited = !running;
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                () = self.sender.closed() => return Err(StreamError::Gone),
            }
        }
        send(&self.sender, &mut out).await
    }
}

async fn send(sender: &mpsc::Sender<Bytes>, out: &mut Vec<u8>) -> Result<(), StreamError> {
    if out.is_empty() {
        return Ok(());
    }
    let chunk = Bytes::from(std::mem::take(out));
    sender.send(chunk).await.map_err(|_| StreamError::Gone)
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    };

    use super::*;

    fn status(state: ContainerState, last: Option<&str>) -> ContainerStatus {
        ContainerStatus {
            name: "c".into(),
            container_id: Some("cox://now".into()),
            state: Some(state),
            last_state: last.map(|id| ContainerState {
                terminated: Some(ContainerStateTerminated {
                    container_id: Some(id.into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_container_whose_logs_are_read_follows_upstreams_rules() {
        let running = ContainerState {
            running: Some(ContainerStateRunning::default()),
            ..Default::default()
        };
        let waiting = |reason: &str| ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let id = |s: &ContainerStatus, previous| log_container_id("p", Some(s), "c", previous);
        assert_eq!(id(&status(running.clone(), None), false).unwrap(), "now");
        assert_eq!(
            id(&status(running.clone(), Some("cox://before")), true).unwrap(),
            "before"
        );
        assert_eq!(
            id(&status(running, None), true).unwrap_err(),
            "previous terminated container \"c\" in pod \"p\" not found"
        );
        assert_eq!(
            id(&status(waiting("ContainerCreating"), None), false).unwrap_err(),
            "container \"c\" in pod \"p\" is waiting to start: ContainerCreating"
        );
        assert_eq!(
            id(&status(waiting("ErrImagePull"), None), false).unwrap_err(),
            "container \"c\" in pod \"p\" is waiting to start: image can't be pulled"
        );
        // Crash-looping: waiting, but the last attempt's logs are there.
        assert_eq!(
            id(
                &status(waiting("CrashLoopBackOff"), Some("cox://last")),
                false
            )
            .unwrap(),
            "last"
        );
        assert_eq!(
            log_container_id("p", None, "c", false).unwrap_err(),
            "container \"c\" in pod \"p\" is not available"
        );
    }

    #[test]
    fn options_are_read_from_the_query() {
        let now: Timestamp = "2024-05-01T10:00:00Z".parse().unwrap();
        let query = Query::parse(Some(
            "follow=true&tailLines=5&sinceSeconds=60&timestamps=true&limitBytes=100",
        ));
        let got = options(&query, now).unwrap();
        assert!(got.follow && got.print.timestamps && !got.previous);
        assert_eq!(got.tail_lines, Some(5));
        assert_eq!(got.print.limit_bytes, Some(100));
        assert_eq!(
            got.print.since,
            Some("2024-05-01T09:59:00Z".parse().unwrap())
        );
        let query = Query::parse(Some("sinceTime=2024-05-01T08%3A00%3A00Z"));
        assert_eq!(
            options(&query, now).unwrap().print.since,
            Some("2024-05-01T08:00:00Z".parse().unwrap())
        );
        assert_eq!(
            options(&Query::parse(Some("tailLines=x")), now)
                .unwrap_err()
                .status,
            StatusCode::BAD_REQUEST
        );
    }
}
