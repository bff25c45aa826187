//! Container events (CRI `GetContainerEvents`): each pod and container that is created,
//! started, stopped or deleted is announced to every subscriber, as containerd 1.7+ does: the
//! event carries the container's ID (a pod's own events carry the pod's ID), the time, and the
//! pod's status with the statuses of all its containers as they are after the change.
//!
//! Events go through a tokio broadcast channel, so announcing never waits for a subscriber. A
//! subscriber that falls more than [`CAPACITY`] events behind loses its stream with `ABORTED`
//! (see [`stream`]) instead of holding the runtime up or silently missing events; it subscribes
//! again and lists. Events announced while nobody subscribes are dropped: a new subscriber
//! sees what happens from then on (containerd instead keeps them for the next subscriber).
//!
//! A container's exit is noticed with inotify on its bundle directory: the shim renames
//! `exit.json` into it when the container's first process ends, and [`watch_exits`]' thread
//! announces the exit. A stop through the CRI announces the exit as soon as it has seen it. Whoever comes
//! first announces; each container's `STARTED`, `STOPPED` and `DELETED` come once and in that
//! order (every announcement is made under one lock, together with the container's [`Phase`]).

use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

use cox_cri::v1::{self, ContainerEventType};
use futures::Stream;
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::fs::inotify;
use tokio::sync::broadcast;
use tonic::Status;

use crate::runtime::{Runtime, lock, now_nanos};

/// How many events a subscriber may fall behind before it loses its stream (containerd 1.7
/// buffers as many).
pub const CAPACITY: usize = 1000;

/// The runtime's event channel and what it has announced.
#[derive(Debug)]
pub(crate) struct Events {
    sender: broadcast::Sender<v1::ContainerEventResponse>,
    /// Held while an event is built and sent, and while a phase changes.
    phases: Mutex<HashMap<String, Phase>>,
    /// None when inotify is not available: exits are then announced only by CRI stops.
    exits: Option<ExitWatch>,
}

/// Where a container is in the events announced for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `STARTED` was announced.
    Running,
    /// It ended before its `STARTED` was announced (or was never started).
    ExitSeen,
    /// `STOPPED` was announced.
    Stopped,
}

impl Events {
    pub(crate) fn new() -> Self {
        let exits = match ExitWatch::new() {
            Ok(watch) => Some(watch),
            Err(e) => {
                tracing::warn!(error = %e, "no inotify: containers that exit on their own are not announced");
                None
            }
        };
        Events {
            sender: broadcast::channel(CAPACITY).0,
            phases: Mutex::new(HashMap::new()),
            exits,
        }
    }

    /// Watches a container's bundle for its exit record.
    pub(crate) fn watch(&self, id: &str, dir: &Path) {
        if let Some(exits) = &self.exits
            && let Err(e) = exits.watch(id, dir)
        {
            tracing::warn!(container = %id, error = %e, "its exit will not be announced");
        }
    }

    /// Records that a container found running (or ended) when the runtime started had its
    /// `STARTED` (or `STOPPED`) announced before.
    pub(crate) fn recovered(&self, id: &str, exited: bool) {
        let phase = if exited {
            Phase::Stopped
        } else {
            Phase::Running
        };
        lock(&self.phases).insert(id.to_string(), phase);
    }
}

impl Runtime {
    /// A new subscription to the runtime's events.
    pub fn subscribe_events(&self) -> broadcast::Receiver<v1::ContainerEventResponse> {
        self.events.sender.subscribe()
    }

    /// Announces an event of a pod sandbox (`container_id` is the sandbox's ID) or one of its
    /// containers. Callers hold no record's lock.
    pub(crate) fn announce(&self, container_id: &str, sandbox_id: &str, kind: ContainerEventType) {
        let _order = lock(&self.events.phases);
        self.send_event(container_id, sandbox_id, kind);
    }

    /// Announces that a container started; and that it stopped, if its exit was seen first.
    pub(crate) fn announce_started(&self, id: &str, sandbox_id: &str) {
        let mut phases = lock(&self.events.phases);
        self.send_event(id, sandbox_id, ContainerEventType::ContainerStartedEvent);
        if phases.get(id) == Some(&Phase::ExitSeen) {
            self.send_event(id, sandbox_id, ContainerEventType::ContainerStoppedEvent);
            phases.insert(id.to_string(), Phase::Stopped);
        } else {
            phases.insert(id.to_string(), Phase::Running);
        }
    }

    /// A container's first process ended (its exit record is there, or its shim is gone):
    /// announces `STOPPED` unless that was done, or defers it until `STARTED` was announced.
    pub(crate) fn container_exited(&self, id: &str) {
        let Ok(container) = self.container(id) else {
            return;
        };
        let (id, sandbox_id) = {
            let record = lock(&container);
            (record.id.clone(), record.sandbox_id.clone())
        };
        let mut phases = lock(&self.events.phases);
        match phases.get(&id) {
            Some(Phase::Running) => {
                self.send_event(&id, &sandbox_id, ContainerEventType::ContainerStoppedEvent);
                phases.insert(id, Phase::Stopped);
            }
            None => {
                phases.insert(id, Phase::ExitSeen);
            }
            Some(Phase::ExitSeen | Phase::Stopped) => {}
        }
    }

    /// Announces a container's removal and forgets it.
    pub(crate) fn announce_deleted(&self, id: &str, sandbox_id: &str) {
        let mut phases = lock(&self.events.phases);
        self.send_event(id, sandbox_id, ContainerEventType::ContainerDeletedEvent);
        phases.remove(id);
    }

    /// Builds and sends an event, if anyone listens. The caller holds the phases' lock.
    fn send_event(&self, container_id: &str, sandbox_id: &str, kind: ContainerEventType) {
        if self.events.sender.receiver_count() == 0 {
            return;
        }
        let pod_sandbox_status = self.pod_sandbox_status(sandbox_id).ok();
        let containers_statuses = self
            .containers_of(sandbox_id)
            .iter()
            .filter_map(|id| self.container_status(id).ok())
            .collect();
        // Fails only when every subscriber left meanwhile.
        let _ = self.events.sender.send(v1::ContainerEventResponse {
            container_id: container_id.to_string(),
            container_event_type: kind as i32,
            created_at: now_nanos(),
            pod_sandbox_status,
            containers_statuses,
        });
    }
}

/// A subscription as the CRI stream: events until the subscriber falls behind (`ABORTED`) or
/// `stopping` completes (`UNAVAILABLE`, so that the server's graceful shutdown is not held up by
/// a stream that would never end).
pub fn stream(
    receiver: broadcast::Receiver<v1::ContainerEventResponse>,
    stopping: impl Future<Output = ()> + Send + 'static,
) -> impl Stream<Item = Result<v1::ContainerEventResponse, Status>> + Send {
    let state = Some((receiver, Box::pin(stopping)));
    futures::stream::unfold(state, |state| async move {
        let (mut receiver, mut stopping) = state?;
        tokio::select! {
            biased;
            () = &mut stopping => {
                Some((Err(Status::unavailable("the runtime is shutting down")), None))
            }
            received = receiver.recv() => match received {
                Ok(event) => Some((Ok(event), Some((receiver, stopping)))),
                Err(broadcast::error::RecvError::Lagged(missed)) => Some((
                    Err(Status::aborted(format!(
                        "the subscriber fell behind and {missed} container events were dropped: \
                         subscribe again and list to catch up"
                    ))),
                    None,
                )),
                Err(broadcast::error::RecvError::Closed) => None,
            },
        }
    })
}

/// Announces container exits as their shims record them, on a thread of its own, until the
/// returned guard is dropped (the thread then ends within a second) or the runtime is gone.
pub fn watch_exits(runtime: &Arc<Runtime>) -> ExitWatcher {
    let stop = Arc::new(AtomicBool::new(false));
    let (weak, flag) = (Arc::downgrade(runtime), stop.clone());
    let spawned = std::thread::Builder::new()
        .name("exit-watch".to_string())
        .spawn(move || follow_exits(&weak, &flag));
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "containers that exit on their own will not be announced");
    }
    ExitWatcher { stop }
}

/// Stops [`watch_exits`]' thread when dropped.
#[derive(Debug)]
pub struct ExitWatcher {
    stop: Arc<AtomicBool>,
}

impl Drop for ExitWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn follow_exits(runtime: &Weak<Runtime>, stop: &AtomicBool) {
    // How often the thread looks whether it should stop.
    let tick = Timespec {
        tv_sec: 1,
        tv_nsec: 0,
    };
    while !stop.load(Ordering::Relaxed) {
        let Some(runtime) = runtime.upgrade() else {
            return;
        };
        let Some(exits) = &runtime.events.exits else {
            return;
        };
        let mut ready = [PollFd::new(&exits.inotify, PollFlags::IN)];
        match poll(&mut ready, Some(&tick)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "watching for container exits stopped");
                return;
            }
        }
        let exited = match exits.read() {
            Ok(Some(exited)) => exited,
            // The queue overflowed: look at every container.
            Ok(None) => runtime.exited_containers(),
            Err(e) => {
                tracing::warn!(error = %e, "reading container exits");
                Vec::new()
            }
        };
        for id in exited {
            runtime.container_exited(&id);
        }
    }
}

/// One inotify instance watching every container's bundle for `exit.json` being renamed in.
#[derive(Debug)]
struct ExitWatch {
    inotify: OwnedFd,
    /// Watch descriptor → container ID.
    watches: Mutex<HashMap<i32, String>>,
}

impl ExitWatch {
    fn new() -> std::io::Result<Self> {
        let inotify =
            inotify::init(inotify::CreateFlags::CLOEXEC | inotify::CreateFlags::NONBLOCK)?;
        Ok(ExitWatch {
            inotify,
            watches: Mutex::new(HashMap::new()),
        })
    }

    fn watch(&self, id: &str, dir: &Path) -> std::io::Result<()> {
        let wd = inotify::add_watch(
            &self.inotify,
            dir,
            inotify::WatchFlags::MOVED_TO | inotify::WatchFlags::ONLYDIR,
        )?;
        lock(&self.watches).insert(wd, id.to_string());
        Ok(())
    }

    /// The containers whose exit record appeared since the last read, without waiting; `None`
    /// when the kernel's queue overflowed and some may be missing.
    fn read(&self) -> std::io::Result<Option<Vec<String>>> {
        let mut buffer = [MaybeUninit::<u8>::uninit(); 4096];
        let mut reader = inotify::Reader::new(&self.inotify, &mut buffer);
        let mut exited = Vec::new();
        let mut overflowed = false;
        loop {
            let event = match reader.next() {
                Ok(event) => event,
                Err(rustix::io::Errno::AGAIN) => break,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            };
            let flags = event.events();
            if flags.contains(inotify::ReadFlags::QUEUE_OVERFLOW) {
                overflowed = true;
            } else if flags.contains(inotify::ReadFlags::IGNORED) {
                // The directory is gone (the container was removed).
                lock(&self.watches).remove(&event.wd());
            } else if event
                .file_name()
                .is_some_and(|name| name.to_bytes() == crate::shim::EXIT_FILE.as_bytes())
                && let Some(id) = lock(&self.watches).get(&event.wd())
            {
                exited.push(id.clone());
            }
        }
        Ok((!overflowed).then_some(exited))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt as _;

    fn event(id: &str) -> v1::ContainerEventResponse {
        v1::ContainerEventResponse {
            container_id: id.to_string(),
            ..Default::default()
        }
    }

    /// The error a stream ends with: its last item, after which nothing comes.
    async fn final_error<S>(mut events: std::pin::Pin<&mut S>) -> Status
    where
        S: Stream<Item = Result<v1::ContainerEventResponse, Status>>,
    {
        let status = events.next().await.expect("an item").expect_err("an error");
        assert!(events.next().await.is_none(), "the stream ends");
        status
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_loses_its_stream_without_blocking_the_sender() {
        let (sender, receiver) = broadcast::channel(4);
        let mut events = Box::pin(stream(receiver, std::future::pending()));
        for i in 0..10 {
            // Never waits, however far behind the subscriber is.
            sender.send(event(&i.to_string())).expect("a subscriber");
        }
        let status = final_error(events.as_mut()).await;
        assert_eq!(status.code(), tonic::Code::Aborted);
        assert!(
            status.message().contains("6 container events were dropped"),
            "{status:?}"
        );
    }

    #[tokio::test]
    async fn events_arrive_in_order_and_the_stream_ends_at_shutdown() {
        let (sender, receiver) = broadcast::channel(CAPACITY);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let mut events = Box::pin(stream(receiver, async {
            let _ = stopped.await;
        }));
        sender.send(event("a")).expect("a subscriber");
        sender.send(event("b")).expect("a subscriber");
        let ids: Vec<String> = [events.next().await, events.next().await]
            .into_iter()
            .map(|e| e.expect("an item").expect("an event").container_id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
        let _ = stop.send(());
        let status = final_error(events.as_mut()).await;
        assert_eq!(status.code(), tonic::Code::Unavailable);
    }

    #[test]
    fn exit_records_renamed_into_watched_bundles_are_reported_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (one, two) = (dir.path().join("one"), dir.path().join("two"));
        std::fs::create_dir(&one).expect("mkdir");
        std::fs::create_dir(&two).expect("mkdir");
        let watch = ExitWatch::new().expect("inotify");
        watch.watch("c1", &one).expect("watch");
        watch.watch("c2", &two).expect("watch");
        assert_eq!(watch.read().expect("read"), Some(Vec::new()));
        // Other files, and an exit record written in place rather than renamed, do not count.
        std::fs::write(one.join("other.json"), "{}").expect("write");
        std::fs::write(two.join(".exit.json.tmp"), "{}").expect("write");
        assert_eq!(watch.read().expect("read"), Some(Vec::new()));
        std::fs::rename(two.join(".exit.json.tmp"), two.join(crate::shim::EXIT_FILE))
            .expect("rename");
        assert_eq!(watch.read().expect("read"), Some(vec!["c2".to_string()]));
        std::fs::remove_dir_all(&one).expect("rmdir");
        assert_eq!(watch.read().expect("read"), Some(Vec::new()));
        assert_eq!(
            lock(&watch.watches).values().collect::<Vec<_>>(),
            ["c2"],
            "a removed bundle's watch is forgotten"
        );
    }
}
