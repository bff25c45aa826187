//! One watch: replay from the file, then follow the live broadcast, going back to the file
//! whenever the broadcast has moved on without us.
//!
//! `seen` is the revision up to which every event under the prefix has been delivered. Events
//! at or below it are skipped, which removes the duplicates between the replay and the
//! broadcast (a batch committed just before the replay's snapshot is in both).

use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

use super::{Batch, Shared, reads};
use crate::{Event, Result, Revision};

/// Events read from the file per query while catching up.
const REPLAY_PAGE: usize = 1024;

pub(crate) async fn run(
    shared: Arc<Shared>,
    prefix: String,
    after: Revision,
    mut live: broadcast::Receiver<Batch>,
    tx: mpsc::Sender<Result<Event>>,
) {
    let mut seen = after;
    if !catch_up(&shared, &prefix, &mut seen, &tx).await {
        return;
    }
    loop {
        match live.recv().await {
            Ok(batch) => {
                for event in batch.iter() {
                    if event.revision() <= seen || !event.kv.key.starts_with(&prefix) {
                        continue;
                    }
                    if tx.send(Ok(event.clone())).await.is_err() {
                        return;
                    }
                }
                if let Some(last) = batch.last() {
                    seen = seen.max(last.revision());
                }
            }
            Err(broadcast::error::RecvError::Lagged(_)) => {
                if !catch_up(&shared, &prefix, &mut seen, &tx).await {
                    return;
                }
            }
            // The store was closed.
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Delivers everything after `seen` that the file holds. Returns false when the watch is over
/// (the consumer left, or an error was delivered).
async fn catch_up(
    shared: &Arc<Shared>,
    prefix: &str,
    seen: &mut Revision,
    tx: &mpsc::Sender<Result<Event>>,
) -> bool {
    loop {
        let (from, owned_prefix) = (*seen, prefix.to_owned());
        let page = shared
            .read(move |conn| reads::events_after(conn, &owned_prefix, from, REPLAY_PAGE))
            .await;
        let (events, snapshot) = match page {
            Ok(page) => page,
            Err(err) => {
                let _ = tx.send(Err(err)).await;
                return false;
            }
        };
        let complete = events.len() < REPLAY_PAGE;
        for event in events {
            *seen = event.revision();
            if tx.send(Ok(event)).await.is_err() {
                return false;
            }
        }
        if complete {
            // Every event under the prefix up to the snapshot has been delivered.
            *seen = (*seen).max(snapshot);
            return true;
        }
    }
}
