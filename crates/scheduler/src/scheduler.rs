//! The scheduler's state and decisions, without I/O: it takes the watch events of pods,
//! nodes and namespaces and the outcomes of bindings, keeps the cache and the queue, and
//! says what to do next ([`Action`]). The run loop in `lib.rs` does the talking.

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Namespace, Node, Pod};
use kube::runtime::watcher::Event;
use rand::Rng;
use tokio::time::Instant;

use crate::cache::{Cache, pod_key};
use crate::cluster_event::{self, ClusterEvent};
use crate::filter::NamespaceLabels;
use crate::queue::SchedulingQueue;
use crate::schedule::{self, Rotation};
use crate::selectors;

/// The `spec.schedulerName` this scheduler serves (the API server's default).
pub const SCHEDULER_NAME: &str = "default-scheduler";

/// The `PodScheduled` condition reason when no node fits.
pub const REASON_UNSCHEDULABLE: &str = "Unschedulable";
/// The `PodScheduled` condition reason when scheduling failed otherwise.
pub const REASON_SCHEDULER_ERROR: &str = "SchedulerError";

/// What the scheduler decided about a pod.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Bind the pod to the node.
    Bind { pod: Arc<Pod>, node: String },
    /// No node fits: record it on the pod and as an event.
    ReportUnschedulable { pod: Arc<Pod>, message: String },
}

/// A watched resource's objects as they arrive: applied one by one, or all at once when the
/// watch (re)lists them, which also tells which objects went away meanwhile.
#[derive(Debug)]
struct Listing<K> {
    buffer: Option<Vec<K>>,
    synced: bool,
}

impl<K> Default for Listing<K> {
    fn default() -> Self {
        Self {
            buffer: None,
            synced: false,
        }
    }
}

enum Change<K> {
    Apply(K),
    Delete(K),
    Replace(Vec<K>),
}

impl<K> Listing<K> {
    fn feed(&mut self, event: Event<K>) -> Option<Change<K>> {
        match event {
            Event::Apply(object) => Some(Change::Apply(object)),
            Event::Delete(object) => Some(Change::Delete(object)),
            Event::Init => {
                self.buffer = Some(Vec::new());
                None
            }
            Event::InitApply(object) => {
                self.buffer.get_or_insert_default().push(object);
                None
            }
            Event::InitDone => {
                self.synced = true;
                Some(Change::Replace(self.buffer.take().unwrap_or_default()))
            }
        }
    }
}

fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

/// Whether this scheduler should place the pod: it names this scheduler and is not going away.
fn is_ours(pod: &Pod) -> bool {
    let name = pod.spec.as_ref().and_then(|s| s.scheduler_name.as_deref());
    name.unwrap_or(SCHEDULER_NAME) == SCHEDULER_NAME && pod.metadata.deletion_timestamp.is_none()
}

#[derive(Debug, Default)]
pub struct Scheduler {
    cache: Cache,
    queue: SchedulingQueue,
    namespaces: NamespaceLabels,
    rotation: Rotation,
    pods: Listing<Pod>,
    nodes: Listing<Node>,
    namespace_listing: Listing<Namespace>,
}

impl Scheduler {
    /// Whether every watch has listed its objects once: deciding earlier could overcommit
    /// nodes whose pods are not known yet.
    pub fn is_synced(&self) -> bool {
        self.pods.synced && self.nodes.synced && self.namespace_listing.synced
    }

    /// Whether a pod is ready to be tried now.
    pub fn has_work(&self) -> bool {
        self.is_synced() && self.queue.has_active()
    }

    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn queue(&self) -> &SchedulingQueue {
        &self.queue
    }

    pub fn on_pod_event(&mut self, event: Event<Pod>, now: Instant) {
        match self.pods.feed(event) {
            Some(Change::Apply(pod)) => self.apply_pod(pod, now),
            Some(Change::Delete(pod)) => self.delete_pod(&pod_key(&pod), now),
            Some(Change::Replace(pods)) => {
                let listed: HashSet<String> = pods.iter().map(pod_key).collect();
                let gone: Vec<String> = self
                    .cache
                    .pod_keys()
                    .chain(self.queue.keys())
                    .filter(|key| !listed.contains(*key))
                    .cloned()
                    .collect();
                for key in gone {
                    self.delete_pod(&key, now);
                }
                for pod in pods {
                    self.apply_pod(pod, now);
                }
            }
            None => {}
        }
    }

    pub fn on_node_event(&mut self, event: Event<Node>, now: Instant) {
        match self.nodes.feed(event) {
            Some(Change::Apply(node)) => self.apply_node(node, now),
            Some(Change::Delete(node)) => self.delete_node(selectors::node_name(&node), now),
            Some(Change::Replace(nodes)) => {
                let listed: HashSet<&str> = nodes.iter().map(selectors::node_name).collect();
                let gone: Vec<String> = self
                    .cache
                    .node_names()
                    .filter(|name| !listed.contains(name.as_str()))
                    .cloned()
                    .collect();
                for name in gone {
                    self.delete_node(&name, now);
                }
                for node in nodes {
                    self.apply_node(node, now);
                }
            }
            None => {}
        }
    }

    pub fn on_namespace_event(&mut self, event: Event<Namespace>) {
        let name = |ns: &Namespace| ns.metadata.name.clone().unwrap_or_default();
        match self.namespace_listing.feed(event) {
            Some(Change::Apply(ns)) => {
                let labels = selectors::labels(&ns.metadata).clone();
                self.namespaces.insert(name(&ns), labels);
            }
            Some(Change::Delete(ns)) => {
                self.namespaces.remove(&name(&ns));
            }
            Some(Change::Replace(all)) => {
                self.namespaces = all
                    .iter()
                    .map(|ns| (name(ns), selectors::labels(&ns.metadata).clone()))
                    .collect();
            }
            None => {}
        }
    }

    fn apply_pod(&mut self, pod: Pod, now: Instant) {
        let key = pod_key(&pod);
        if is_terminal(&pod) {
            self.delete_pod(&key, now);
            return;
        }
        if let Some(node) = selectors::pod_node_name(&pod) {
            let node = node.to_owned();
            self.queue.remove(&key);
            let event = match self.cache.pod(&key) {
                Some(old) if !self.cache.is_assumed(&key) => {
                    cluster_event::assigned_pod_changed(old, &pod)
                }
                _ => Some(ClusterEvent::AssignedPodAdded),
            };
            self.cache.add_pod(Arc::new(pod), &node);
            if let Some(event) = event {
                self.queue.on_cluster_event(&event, now);
            }
            return;
        }
        if self.cache.is_assumed(&key) {
            // Its binding is under way; this is the pod from before.
            return;
        }
        if is_ours(&pod) {
            self.queue.upsert(Arc::new(pod), now);
        } else {
            self.queue.remove(&key);
        }
    }

    fn delete_pod(&mut self, key: &str, now: Instant) {
        self.queue.remove(key);
        if self.cache.remove_pod(key).is_some() {
            self.queue
                .on_cluster_event(&ClusterEvent::AssignedPodDeleted, now);
        }
    }

    fn apply_node(&mut self, node: Node, now: Instant) {
        let node = Arc::new(node);
        let event = match self.cache.set_node(node.clone()) {
            None => Some(ClusterEvent::NodeAdded),
            Some(old) => cluster_event::node_changed(&old, &node),
        };
        if let Some(event) = event {
            self.queue.on_cluster_event(&event, now);
        }
    }

    fn delete_node(&mut self, name: &str, now: Instant) {
        if self.cache.remove_node(name).is_some() {
            self.queue.on_cluster_event(&ClusterEvent::NodeDeleted, now);
        }
    }

    /// Tries the next pod: a node to bind it to (counted on the node at once), or the news
    /// that none fits.
    pub fn schedule_next(&mut self, now: Instant, rng: &mut impl Rng) -> Option<Action> {
        if !self.is_synced() {
            return None;
        }
        let pod = self.queue.pop()?;
        let key = pod_key(&pod);
        match schedule::schedule(&pod, &self.cache, &self.namespaces, &mut self.rotation, rng) {
            Ok(node) => {
                self.cache.assume(&pod, &node);
                Some(Action::Bind { pod, node })
            }
            Err(unschedulable) => {
                self.queue.unschedulable(&key, unschedulable.plugins(), now);
                Some(Action::ReportUnschedulable {
                    pod,
                    message: unschedulable.message(),
                })
            }
        }
    }

    /// The binding of an assumed pod succeeded.
    pub fn bound(&mut self, key: &str) {
        self.queue.done(key);
    }

    /// The binding of an assumed pod failed: give its room back and try it again later.
    pub fn binding_failed(&mut self, key: &str, now: Instant) {
        self.cache.forget(key);
        self.queue.retry_after_error(key, now);
        self.queue
            .on_cluster_event(&ClusterEvent::AssignedPodDeleted, now);
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.next_deadline()
    }

    pub fn flush(&mut self, now: Instant) {
        self.queue.flush(now);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use k8s_openapi::api::core::v1::PodStatus;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::cache::tests::{node_with, pod};

    const ROOMY: &[(&str, &str)] = &[("cpu", "2"), ("memory", "4Gi"), ("pods", "110")];

    fn synced(nodes: Vec<Node>, pods: Vec<Pod>, now: Instant) -> Scheduler {
        let mut scheduler = Scheduler::default();
        for event in [Event::Init, Event::InitDone] {
            scheduler.on_namespace_event(event);
        }
        scheduler.on_node_event(Event::Init, now);
        for node in nodes {
            scheduler.on_node_event(Event::InitApply(node), now);
        }
        scheduler.on_node_event(Event::InitDone, now);
        scheduler.on_pod_event(Event::Init, now);
        for pod in pods {
            scheduler.on_pod_event(Event::InitApply(pod), now);
        }
        scheduler.on_pod_event(Event::InitDone, now);
        scheduler
    }

    fn next(scheduler: &mut Scheduler, now: Instant) -> Option<Action> {
        scheduler.schedule_next(now, &mut StdRng::seed_from_u64(3))
    }

    fn bound_to(pod: &Pod, node: &str) -> Pod {
        let mut bound = pod.clone();
        bound.spec.get_or_insert_default().node_name = Some(node.into());
        bound
    }

    #[test]
    fn nothing_is_decided_before_every_watch_has_listed() {
        let now = Instant::now();
        let mut scheduler = Scheduler::default();
        scheduler.on_pod_event(Event::Apply(pod("p", &[])), now);
        assert!(scheduler.queue().contains("uid-p"));
        assert!(!scheduler.has_work());
        assert_eq!(next(&mut scheduler, now), None);
    }

    #[test]
    fn assumed_pods_take_their_room_until_their_binding_is_seen() {
        let now = Instant::now();
        let p = pod("p", &[("cpu", "2")]);
        let q = pod("q", &[("cpu", "2")]);
        let mut scheduler = synced(vec![node_with("n1", ROOMY)], vec![p.clone(), q], now);
        let Some(Action::Bind { node, .. }) = next(&mut scheduler, now) else {
            panic!("p should fit");
        };
        assert_eq!(node, "n1");
        // q no longer fits: p's room is taken though its binding is not back yet.
        let Some(Action::ReportUnschedulable { message, .. }) = next(&mut scheduler, now) else {
            panic!("q should not fit");
        };
        assert!(
            message.starts_with("0/1 nodes are available: 1 Insufficient cpu."),
            "{message}"
        );
        // The pending version of p arriving late changes nothing.
        scheduler.on_pod_event(Event::Apply(p.clone()), now);
        assert!(!scheduler.has_work());
        scheduler.bound("uid-p");
        assert!(!scheduler.queue().contains("uid-p"));
        scheduler.on_pod_event(Event::Apply(bound_to(&p, "n1")), now);
        assert!(!scheduler.cache().is_assumed("uid-p"));
        assert!(scheduler.cache().has_pod("uid-p"));
    }

    #[test]
    fn a_failed_binding_frees_the_room_and_retries_after_backoff() {
        let now = Instant::now();
        let p = pod("p", &[("cpu", "2")]);
        let q = pod("q", &[("cpu", "2")]);
        let mut scheduler = synced(vec![node_with("n1", ROOMY)], vec![p, q], now);
        assert!(matches!(
            next(&mut scheduler, now),
            Some(Action::Bind { .. })
        ));
        assert!(matches!(
            next(&mut scheduler, now),
            Some(Action::ReportUnschedulable { .. })
        ));
        scheduler.binding_failed("uid-p", now);
        assert!(!scheduler.cache().has_pod("uid-p"));
        assert!(!scheduler.has_work());
        let later = now + Duration::from_secs(1);
        scheduler.flush(later);
        // Both were backing off for a second; either may go first now.
        assert!(matches!(
            next(&mut scheduler, later),
            Some(Action::Bind { .. })
        ));
    }

    #[test]
    fn a_new_node_wakes_pods_that_did_not_fit() {
        let now = Instant::now();
        let mut scheduler = synced(vec![], vec![pod("p", &[("cpu", "1")])], now);
        let Some(Action::ReportUnschedulable { message, .. }) = next(&mut scheduler, now) else {
            panic!("no node yet");
        };
        assert_eq!(message, "no nodes available to schedule pods");
        let later = now + Duration::from_secs(2);
        scheduler.on_node_event(Event::Apply(node_with("n1", ROOMY)), later);
        assert!(scheduler.has_work());
        assert_eq!(
            next(&mut scheduler, later),
            Some(Action::Bind {
                pod: Arc::new(pod("p", &[("cpu", "1")])),
                node: "n1".into()
            })
        );
    }

    #[test]
    fn a_deleted_pod_frees_its_node_for_waiting_pods() {
        let now = Instant::now();
        let placed = bound_to(&pod("placed", &[("cpu", "2")]), "n1");
        let mut scheduler = synced(
            vec![node_with("n1", ROOMY)],
            vec![placed.clone(), pod("p", &[("cpu", "1")])],
            now,
        );
        assert!(matches!(
            next(&mut scheduler, now),
            Some(Action::ReportUnschedulable { .. })
        ));
        let later = now + Duration::from_secs(5);
        scheduler.on_pod_event(Event::Delete(placed), later);
        assert!(matches!(
            next(&mut scheduler, later),
            Some(Action::Bind { .. })
        ));
    }

    #[test]
    fn finished_foreign_and_deleting_pods_are_not_scheduled() {
        let now = Instant::now();
        let mut done = pod("done", &[]);
        done.status = Some(PodStatus {
            phase: Some("Succeeded".into()),
            ..Default::default()
        });
        let mut foreign = pod("foreign", &[]);
        foreign.spec.get_or_insert_default().scheduler_name = Some("other".into());
        let mut leaving = pod("leaving", &[]);
        leaving.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        let scheduler = synced(
            vec![node_with("n1", ROOMY)],
            vec![done, foreign, leaving],
            now,
        );
        assert!(scheduler.queue().is_empty());
        assert!(!scheduler.has_work());
    }

    #[test]
    fn a_relist_forgets_what_went_away_meanwhile() {
        let now = Instant::now();
        let placed = bound_to(&pod("placed", &[("cpu", "1")]), "n1");
        let mut scheduler = synced(
            vec![node_with("n1", ROOMY), node_with("n2", ROOMY)],
            vec![placed, pod("p", &[])],
            now,
        );
        scheduler.on_pod_event(Event::Init, now);
        scheduler.on_pod_event(Event::InitDone, now);
        assert!(!scheduler.cache().has_pod("uid-placed"));
        assert!(scheduler.queue().is_empty());
        scheduler.on_node_event(Event::Init, now);
        scheduler.on_node_event(Event::InitApply(node_with("n2", ROOMY)), now);
        scheduler.on_node_event(Event::InitDone, now);
        assert_eq!(scheduler.cache().node_count(), 1);
    }
}
