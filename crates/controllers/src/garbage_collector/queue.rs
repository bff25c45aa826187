//! The garbage collector's work queue: UIDs of objects to look at, each queued once however
//! often it is asked for (upstream's work queues deduplicate the same way).

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};

use tokio::sync::Notify;

/// Objects to look at, each once however often it is asked for.
#[derive(Debug, Default)]
pub struct Queue {
    items: Mutex<(VecDeque<String>, HashSet<String>)>,
    ready: Notify,
}

impl Queue {
    pub fn push(&self, uid: String) {
        let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
        if items.1.insert(uid.clone()) {
            items.0.push_back(uid);
            self.ready.notify_one();
        }
    }

    pub async fn pop(&self) -> String {
        loop {
            let notified = self.ready.notified();
            {
                let mut items = self.items.lock().unwrap_or_else(PoisonError::into_inner);
                if let Some(uid) = items.0.pop_front() {
                    items.1.remove(&uid);
                    return uid;
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_uid_is_queued_once_in_order() {
        let queue = Queue::default();
        queue.push("a".into());
        queue.push("b".into());
        queue.push("a".into());
        assert_eq!(queue.pop().await, "a");
        assert_eq!(queue.pop().await, "b");
        queue.push("a".into());
        assert_eq!(queue.pop().await, "a");
    }
}
