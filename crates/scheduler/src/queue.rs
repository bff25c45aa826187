//! The scheduling queue (upstream's `PriorityQueue`): pods waiting for a node.
//! - *active*: ready to try, highest `spec.priority` first, then the longest waiting;
//! - *backoff*: tried and failed recently; each pod waits 1 s after its first failure,
//!   doubling with every attempt up to 10 s, before it is tried again;
//! - *unschedulable*: no node fit; the pod waits for a change in the cluster that one of
//!   the plugins that rejected it cares about, or 5 minutes at most;
//! - *gated*: has `spec.schedulingGates`; waits for them to be removed;
//! - *in flight*: being scheduled or bound.
//!
//! Time is passed in, so the queue is plain data, tested without a clock.

use std::cmp::Reverse;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::time::Instant;

use crate::cache::pod_key;
use crate::cluster_event::ClusterEvent;
use crate::filter::Plugin;

pub const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// The longest a pod waits as unschedulable before it is tried again anyway.
pub const UNSCHEDULABLE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Active,
    Backoff,
    Unschedulable,
    Gated,
    InFlight,
}

/// Orders active pods: higher priority, then earlier, then first queued.
type ActiveKey = (Reverse<i32>, Instant, u64, String);
/// Orders waiting pods by when they are due.
type DueKey = (Instant, u64, String);

#[derive(Debug)]
struct Entry {
    pod: Arc<Pod>,
    place: Place,
    /// Scheduling attempts so far.
    attempts: u32,
    /// When the pod was queued or last failed.
    timestamp: Instant,
    /// The plugins that rejected it last time; empty means any change may help.
    rejected_by: BTreeSet<Plugin>,
    seq: u64,
    /// The priority the pod was made active with (its key in the active set).
    active_priority: i32,
}

impl Entry {
    fn priority(&self) -> i32 {
        self.pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
    }

    fn active_key(&self, key: String) -> ActiveKey {
        (Reverse(self.active_priority), self.timestamp, self.seq, key)
    }

    fn backoff_expiry(&self) -> Instant {
        self.timestamp + backoff_duration(self.attempts)
    }
}

/// Upstream's backoff: the initial duration doubled for every attempt after the first,
/// capped at the maximum.
pub fn backoff_duration(attempts: u32) -> Duration {
    let mut duration = INITIAL_BACKOFF;
    for _ in 1..attempts {
        if duration >= MAX_BACKOFF {
            break;
        }
        duration = (duration * 2).min(MAX_BACKOFF);
    }
    duration
}

fn is_gated(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.scheduling_gates.as_ref())
        .is_some_and(|gates| !gates.is_empty())
}

/// Whether an update changed anything scheduling looks at (upstream ignores status,
/// resourceVersion and managed fields, so that its own status updates do not requeue).
fn changed_for_scheduling(old: &Pod, new: &Pod) -> bool {
    old.spec != new.spec
        || old.metadata.labels != new.metadata.labels
        || old.metadata.annotations != new.metadata.annotations
}

#[derive(Debug, Default)]
pub struct SchedulingQueue {
    entries: HashMap<String, Entry>,
    active: BTreeSet<ActiveKey>,
    backoff: BTreeSet<DueKey>,
    unschedulable: BTreeSet<DueKey>,
    next_seq: u64,
}

impl SchedulingQueue {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.entries.keys()
    }

    pub fn has_active(&self) -> bool {
        !self.active.is_empty()
    }

    /// Adds a pod waiting for a node, or takes in a newer version of one already queued:
    /// removing its last gate, or changing its spec or labels while unschedulable, sends it
    /// to be tried again.
    pub fn upsert(&mut self, pod: Arc<Pod>, now: Instant) {
        let key = pod_key(&pod);
        let Some(entry) = self.entries.get_mut(&key) else {
            let seq = self.next_seq;
            self.next_seq += 1;
            let place = if is_gated(&pod) {
                Place::Gated
            } else {
                Place::Active
            };
            let entry = Entry {
                pod,
                place,
                attempts: 0,
                timestamp: now,
                rejected_by: BTreeSet::new(),
                seq,
                active_priority: 0,
            };
            self.entries.insert(key.clone(), entry);
            if place == Place::Active {
                self.place_in(&key, Place::Active);
            }
            return;
        };
        let wake = match entry.place {
            Place::Gated => !is_gated(&pod),
            Place::Unschedulable => changed_for_scheduling(&entry.pod, &pod),
            _ => false,
        };
        entry.pod = pod;
        if wake {
            self.move_to_retry(&key, now);
        }
    }

    pub fn remove(&mut self, key: &str) {
        self.take_out(key);
        self.entries.remove(key);
    }

    /// Takes the next pod to try; it is in flight until [`Self::unschedulable`],
    /// [`Self::retry_after_error`] or [`Self::done`].
    pub fn pop(&mut self) -> Option<Arc<Pod>> {
        let (_, _, _, key) = self.active.pop_first()?;
        let entry = self.entries.get_mut(&key)?;
        entry.place = Place::InFlight;
        entry.attempts += 1;
        Some(entry.pod.clone())
    }

    /// No node fit the pod in flight: it waits for a change `rejected_by` cares about.
    pub fn unschedulable(&mut self, key: &str, rejected_by: BTreeSet<Plugin>, now: Instant) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        if entry.place != Place::InFlight {
            return;
        }
        entry.timestamp = now;
        entry.rejected_by = rejected_by;
        self.place_in(key, Place::Unschedulable);
    }

    /// Scheduling or binding the pod in flight failed for another reason: it backs off.
    pub fn retry_after_error(&mut self, key: &str, now: Instant) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        if entry.place != Place::InFlight {
            return;
        }
        entry.timestamp = now;
        entry.rejected_by.clear();
        self.place_in(key, Place::Backoff);
    }

    /// The pod in flight is bound.
    pub fn done(&mut self, key: &str) {
        if self
            .entries
            .get(key)
            .is_some_and(|e| e.place == Place::InFlight)
        {
            self.entries.remove(key);
        }
    }

    /// Sends the unschedulable pods a change may help back to be tried. Returns how many.
    pub fn on_cluster_event(&mut self, event: &ClusterEvent, now: Instant) -> usize {
        let woken: Vec<String> = self
            .unschedulable
            .iter()
            .map(|(_, _, key)| key)
            .filter(|key| {
                self.entries.get(*key).is_some_and(|entry| {
                    entry.rejected_by.is_empty()
                        || entry.rejected_by.iter().any(|p| p.cares_about(event))
                })
            })
            .cloned()
            .collect();
        for key in &woken {
            self.move_to_retry(key, now);
        }
        woken.len()
    }

    /// Moves pods whose backoff is over to active, and pods unschedulable for too long back
    /// to be tried.
    pub fn flush(&mut self, now: Instant) {
        while let Some((due, _, key)) = self.backoff.first().cloned() {
            if due > now {
                break;
            }
            self.place_in(&key, Place::Active);
        }
        while let Some((since, _, key)) = self.unschedulable.first().cloned() {
            if since + UNSCHEDULABLE_TIMEOUT > now {
                break;
            }
            self.move_to_retry(&key, now);
        }
    }

    /// When [`Self::flush`] next has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let backoff = self.backoff.first().map(|(due, _, _)| *due);
        let timeout = self
            .unschedulable
            .first()
            .map(|(since, _, _)| *since + UNSCHEDULABLE_TIMEOUT);
        backoff.into_iter().chain(timeout).min()
    }

    /// To active if its backoff is over, else to backoff.
    fn move_to_retry(&mut self, key: &str, now: Instant) {
        let Some(entry) = self.entries.get(key) else {
            return;
        };
        let place = if entry.backoff_expiry() > now && entry.attempts > 0 {
            Place::Backoff
        } else {
            Place::Active
        };
        self.place_in(key, place);
    }

    /// Moves a pod to `place`, out of wherever it was.
    fn place_in(&mut self, key: &str, place: Place) {
        self.take_out(key);
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        entry.place = place;
        let owned = key.to_owned();
        match place {
            Place::Active => {
                entry.active_priority = entry.priority();
                self.active.insert(entry.active_key(owned));
            }
            Place::Backoff => {
                self.backoff
                    .insert((entry.backoff_expiry(), entry.seq, owned));
            }
            Place::Unschedulable => {
                self.unschedulable
                    .insert((entry.timestamp, entry.seq, owned));
            }
            Place::Gated | Place::InFlight => {}
        }
    }

    fn take_out(&mut self, key: &str) {
        let Some(entry) = self.entries.get(key) else {
            return;
        };
        let owned = key.to_owned();
        match entry.place {
            Place::Active => {
                self.active.remove(&entry.active_key(owned));
            }
            Place::Backoff => {
                self.backoff
                    .remove(&(entry.backoff_expiry(), entry.seq, owned));
            }
            Place::Unschedulable => {
                self.unschedulable
                    .remove(&(entry.timestamp, entry.seq, owned));
            }
            Place::Gated | Place::InFlight => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::PodSchedulingGate;

    use super::*;
    use crate::cache::tests::pod;
    use crate::cluster_event::NodeChange;

    fn queued(name: &str, priority: i32) -> Arc<Pod> {
        let mut p = pod(name, &[]);
        p.spec.get_or_insert_default().priority = Some(priority);
        Arc::new(p)
    }

    fn names(queue: &mut SchedulingQueue) -> Vec<String> {
        std::iter::from_fn(|| queue.pop())
            .map(|p| p.metadata.name.clone().unwrap_or_default())
            .collect()
    }

    fn fail(queue: &mut SchedulingQueue, plugins: &[Plugin], now: Instant) -> Arc<Pod> {
        let popped = queue.pop().unwrap();
        queue.unschedulable(&pod_key(&popped), plugins.iter().copied().collect(), now);
        popped
    }

    #[test]
    fn backoff_doubles_from_one_second_to_ten() {
        let seconds: Vec<u64> = (1..=6).map(|a| backoff_duration(a).as_secs()).collect();
        assert_eq!(seconds, [1, 2, 4, 8, 10, 10]);
    }

    #[test]
    fn higher_priority_first_then_first_come() {
        let now = Instant::now();
        let mut queue = SchedulingQueue::default();
        queue.upsert(queued("low", 0), now);
        queue.upsert(queued("high", 100), now + Duration::from_millis(1));
        queue.upsert(queued("low2", 0), now);
        assert_eq!(names(&mut queue), ["high", "low", "low2"]);
    }

    #[test]
    fn unschedulable_pods_wait_for_a_change_their_plugins_care_about() {
        let now = Instant::now();
        let mut queue = SchedulingQueue::default();
        queue.upsert(queued("p", 0), now);
        fail(&mut queue, &[Plugin::NodeResourcesFit], now);
        assert!(!queue.has_active());
        let labels = ClusterEvent::NodeChanged(NodeChange {
            labels: true,
            ..Default::default()
        });
        assert_eq!(queue.on_cluster_event(&labels, now), 0);
        // A pod went away: it may fit, but only after its 1 s backoff.
        assert_eq!(
            queue.on_cluster_event(&ClusterEvent::AssignedPodDeleted, now),
            1
        );
        assert!(!queue.has_active());
        assert_eq!(queue.next_deadline(), Some(now + Duration::from_secs(1)));
        queue.flush(now + Duration::from_secs(1));
        assert_eq!(names(&mut queue), ["p"]);
    }

    #[test]
    fn a_change_after_the_backoff_sends_the_pod_straight_to_active() {
        let now = Instant::now();
        let mut queue = SchedulingQueue::default();
        queue.upsert(queued("p", 0), now);
        fail(&mut queue, &[Plugin::NodeAffinity], now);
        queue.on_cluster_event(&ClusterEvent::NodeAdded, now + Duration::from_secs(2));
        assert!(queue.has_active());
    }

    #[test]
    fn unschedulable_pods_are_retried_after_five_minutes_anyway() {
        let now = Instant::now();
        let mut queue = SchedulingQueue::default();
        queue.upsert(queued("p", 0), now);
        fail(&mut queue, &[Plugin::TaintToleration], now);
        assert_eq!(queue.next_deadline(), Some(now + UNSCHEDULABLE_TIMEOUT));
        queue.flush(now + Duration::from_secs(299));
        assert!(!queue.has_active());
        queue.flush(now + UNSCHEDULABLE_TIMEOUT);
        assert!(queue.has_active());
    }

    #[test]
    fn updates_to_the_pod_itself_wake_it_but_status_updates_do_not() {
        let now = Instant::now();
        let mut queue = SchedulingQueue::default();
        queue.upsert(queued("p", 0), now);
        let popped = fail(&mut queue, &[Plugin::TaintToleration], now);
        let mut status_only = (*popped).clone();
        status_only.metadata.resource_version = Some("2".into());
        status_only.status = Some(Default::default());
        queue.upsert(Arc::new(status_only.clone()), now + Duration::from_secs(5));
        assert!(!queue.has_active());
        let mut tolerating = status_only;
        tolerating.spec.get_or_insert_default().tolerations = Some(vec![Default::default()]);
        queue.upsert(Arc::new(tolerating), now + Duration::from_secs(5));
        assert!(queue.has_active());
    }

    #[test]
    fn gated_pods_wait_for_their_gates_to_go() {
        let now = Instant::now();
        let mut queue = SchedulingQueue::default();
        let mut gated = (*queued("p", 0)).clone();
        gated.spec.get_or_insert_default().scheduling_gates = Some(vec![PodSchedulingGate {
            name: "example.com/wait".into(),
        }]);
        queue.upsert(Arc::new(gated.clone()), now);
        assert!(!queue.has_active());
        assert!(queue.contains("uid-p"));
        gated.spec.get_or_insert_default().scheduling_gates = None;
        queue.upsert(Arc::new(gated), now);
        assert!(queue.has_active());
    }

    #[test]
    fn binding_failures_back_off_and_successes_leave() {
        let now = Instant::now();
        let mut queue = SchedulingQueue::default();
        queue.upsert(queued("p", 0), now);
        queue.upsert(queued("q", 0), now);
        let p = queue.pop().unwrap();
        queue.retry_after_error(&pod_key(&p), now);
        assert_eq!(queue.next_deadline(), Some(now + Duration::from_secs(1)));
        let q = queue.pop().unwrap();
        queue.done(&pod_key(&q));
        assert!(!queue.contains("uid-q"));
        queue.flush(now + Duration::from_secs(1));
        assert_eq!(names(&mut queue), ["p"]);
        assert_eq!(queue.len(), 1);
        queue.remove("uid-p");
        assert!(queue.is_empty());
    }
}
