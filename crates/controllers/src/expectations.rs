//! Expectations: the pod creations and deletions a controller has asked for and not yet seen
//! in its cache. While any is outstanding the controller does not compute a new difference
//! from the cache (it would count the pods in flight twice, and create or delete too many);
//! it waits for its watch to catch up. Upstream's `ControllerExpectations` and
//! `UIDTrackingControllerExpectations` (`pkg/controller/controller_utils.go`), with the same
//! five-minute expiry, so that a lost watch event cannot wedge a controller for good.
//!
//! Creations are a count, lowered as pods the owner controls appear in the cache.
//! Deletions are the UIDs of the pods deleted, each done when the cache no longer holds it.
//! Entries are keyed by the owner's UID.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// How long an expectation is trusted before the controller syncs anyway (upstream's
/// `ExpectationsTimeout`).
pub const TIMEOUT: Duration = Duration::from_secs(5 * 60);

#[derive(Debug, Default)]
pub struct Expectations {
    owners: Mutex<HashMap<String, Pending>>,
}

#[derive(Debug)]
struct Pending {
    creations: i64,
    deletions: HashSet<String>,
    since: Instant,
}

/// Whether an owner may act on its cache now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Satisfied,
    /// Still waiting; trusted for this much longer.
    Waiting(Duration),
}

impl Expectations {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Pending>) -> T) -> T {
        let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut owners)
    }

    /// Records that `count` pods are about to be created for `owner` (replacing what was
    /// expected before, which must have been satisfied or expired).
    pub fn expect_creations(&self, owner: &str, count: usize, now: Instant) {
        self.with(|owners| {
            owners.insert(
                owner.to_owned(),
                Pending {
                    creations: i64::try_from(count).unwrap_or(i64::MAX),
                    deletions: HashSet::new(),
                    since: now,
                },
            );
        });
    }

    /// Records that the pods with these UIDs are about to be deleted for `owner`.
    pub fn expect_deletions(
        &self,
        owner: &str,
        uids: impl IntoIterator<Item = String>,
        now: Instant,
    ) {
        self.with(|owners| {
            owners.insert(
                owner.to_owned(),
                Pending {
                    creations: 0,
                    deletions: uids.into_iter().collect(),
                    since: now,
                },
            );
        });
    }

    /// A pod controlled by `owner` appeared (or a creation failed and will not appear).
    pub fn creation_observed(&self, owner: &str) {
        self.with(|owners| {
            if let Some(pending) = owners.get_mut(owner) {
                pending.creations -= 1;
            }
        });
    }

    /// The pod with UID `uid` is gone (or its deletion failed and it will stay).
    pub fn deletion_observed(&self, owner: &str, uid: &str) {
        self.with(|owners| {
            if let Some(pending) = owners.get_mut(owner) {
                pending.deletions.remove(uid);
            }
        });
    }

    /// Whether `owner` may act: nothing outstanding, or the expectation expired. `cached`
    /// says whether a pod UID is still in the cache; deletions it no longer holds are done
    /// (this covers deletions a re-list saw only as absences).
    pub fn status(&self, owner: &str, now: Instant, cached: impl Fn(&str) -> bool) -> Status {
        self.with(|owners| {
            let Some(pending) = owners.get_mut(owner) else {
                return Status::Satisfied;
            };
            pending.deletions.retain(|uid| cached(uid));
            let age = now.saturating_duration_since(pending.since);
            if (pending.creations <= 0 && pending.deletions.is_empty()) || age >= TIMEOUT {
                owners.remove(owner);
                Status::Satisfied
            } else {
                Status::Waiting(TIMEOUT - age)
            }
        })
    }

    /// Drops what is expected for owners that no longer exist.
    pub fn retain_owners(&self, exists: impl Fn(&str) -> bool) {
        self.with(|owners| owners.retain(|uid, _| exists(uid)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creations_are_counted_down_as_pods_appear() {
        let expectations = Expectations::default();
        let now = Instant::now();
        assert_eq!(expectations.status("rs", now, |_| true), Status::Satisfied);
        expectations.expect_creations("rs", 2, now);
        assert!(matches!(
            expectations.status("rs", now, |_| true),
            Status::Waiting(_)
        ));
        expectations.creation_observed("rs");
        assert!(matches!(
            expectations.status("rs", now, |_| true),
            Status::Waiting(_)
        ));
        expectations.creation_observed("rs");
        assert_eq!(expectations.status("rs", now, |_| true), Status::Satisfied);
    }

    #[test]
    fn deletions_are_done_when_the_cache_no_longer_holds_the_pods() {
        let expectations = Expectations::default();
        let now = Instant::now();
        expectations.expect_deletions("rs", ["a".to_owned(), "b".to_owned()], now);
        expectations.deletion_observed("rs", "a");
        assert!(matches!(
            expectations.status("rs", now, |_| true),
            Status::Waiting(_)
        ));
        // "b" vanished in a re-list: no delete event, but the cache no longer has it.
        assert_eq!(
            expectations.status("rs", now, |uid| uid != "b"),
            Status::Satisfied
        );
    }

    #[test]
    fn expectations_expire() {
        let expectations = Expectations::default();
        let now = Instant::now();
        expectations.expect_creations("rs", 1, now);
        assert_eq!(
            expectations.status("rs", now + Duration::from_secs(60), |_| true),
            Status::Waiting(TIMEOUT - Duration::from_secs(60))
        );
        assert_eq!(
            expectations.status("rs", now + TIMEOUT, |_| true),
            Status::Satisfied
        );
    }

    #[test]
    fn forgotten_owners_leave_nothing_behind() {
        let expectations = Expectations::default();
        let now = Instant::now();
        expectations.expect_creations("gone", 3, now);
        expectations.retain_owners(|uid| uid != "gone");
        assert_eq!(
            expectations.status("gone", now, |_| true),
            Status::Satisfied
        );
    }
}
