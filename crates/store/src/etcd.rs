//! The HA backend: real etcd v3.
//!
//! Keys are stored verbatim, so the API server's `/registry/<resource>/<namespace>/<name>`
//! layout is what etcd tooling sees, as with upstream Kubernetes. Compare-and-swap is an etcd
//! transaction on `mod_revision` (create: `create_revision == 0`). Like upstream's API server,
//! we record the revision we compacted to under [`COMPACT_REVISION_KEY`], so every server
//! sharing the etcd knows the oldest revision that can still be read or watched.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, Txn, TxnOp, TxnOpResponse,
    WatchOptions,
};

use crate::{
    Error, Event, EventKind, KeyValue, ListOptions, ListResult, Result, Revision, Store,
    WatchStream,
};

/// Where the compacted revision is recorded (the same key upstream's API server uses).
pub const COMPACT_REVISION_KEY: &str = "compact_rev_key";

/// The HA store, on an etcd cluster.
#[derive(Clone)]
pub struct EtcdStore {
    client: Client,
    endpoints: Vec<String>,
    /// The highest compaction this process knows of; refreshed from etcd when it matters.
    compacted: std::sync::Arc<AtomicI64>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .finish()
    }
}

impl EtcdStore {
    /// Connects to the etcd cluster at `endpoints` (`http://host:port`).
    pub async fn connect(endpoints: &[String]) -> Result<Self> {
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5));
        let client = Client::connect(endpoints, Some(options)).await?;
        let store = Self {
            client,
            endpoints: endpoints.to_vec(),
            compacted: Default::default(),
        };
        // Fail now, not at the first request, if etcd does not answer.
        store.refresh_compacted().await?;
        Ok(store)
    }

    /// Reads the recorded compacted revision.
    async fn refresh_compacted(&self) -> Result<Revision> {
        let resp = self
            .client
            .kv_client()
            .get(COMPACT_REVISION_KEY, None)
            .await?;
        let recorded = resp
            .kvs()
            .first()
            .and_then(|kv| std::str::from_utf8(kv.value()).ok()?.parse().ok())
            .unwrap_or(0);
        Ok(self
            .compacted
            .fetch_max(recorded, Ordering::AcqRel)
            .max(recorded))
    }

    /// Maps etcd's compaction and future-revision errors onto ours.
    async fn read_error(&self, err: etcd_client::Error, requested: Revision) -> Error {
        let message = err.to_string();
        if message.contains("required revision has been compacted") {
            let compacted = self.refresh_compacted().await.unwrap_or(requested + 1);
            Error::Compacted {
                requested,
                compacted,
            }
        } else if message.contains("required revision is a future revision") {
            match self.current_revision().await {
                Ok(current) => Error::FutureRevision { requested, current },
                Err(other) => other,
            }
        } else {
            Error::Etcd(err)
        }
    }

    fn kv_client(&self) -> etcd_client::KvClient {
        self.client
            .kv_client()
            .max_decoding_message_size(i32::MAX as usize)
    }
}

/// The first key of a prefix range; etcd refuses an empty key, and `\0` is the smallest key
/// it accepts.
fn range_start(prefix: &str) -> Vec<u8> {
    if prefix.is_empty() {
        vec![0]
    } else {
        prefix.as_bytes().to_vec()
    }
}

fn convert(kv: &etcd_client::KeyValue) -> KeyValue {
    KeyValue {
        key: String::from_utf8_lossy(kv.key()).into_owned(),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
    }
}

/// Like [`convert`], reusing etcd's buffers instead of copying them.
fn convert_owned(kv: etcd_client::KeyValue) -> KeyValue {
    let (create_revision, mod_revision) = (kv.create_revision(), kv.mod_revision());
    let (key, value) = kv.into_key_value();
    KeyValue {
        key: String::from_utf8(key)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        value: Bytes::from(value),
        create_revision,
        mod_revision,
    }
}

fn txn_revision(resp: &etcd_client::TxnResponse) -> Result<Revision> {
    resp.header()
        .map(|h| h.revision())
        .ok_or_else(|| Error::Internal("etcd answered without a header".into()))
}

/// The key's version from the `or_else` branch of a failed compare-and-swap.
fn failed_compare(resp: &etcd_client::TxnResponse) -> Option<KeyValue> {
    resp.op_responses().into_iter().find_map(|op| match op {
        TxnOpResponse::Get(get) => get.kvs().first().map(convert),
        _ => None,
    })
}

#[async_trait]
impl Store for EtcdStore {
    async fn get(&self, key: &str, revision: Option<Revision>) -> Result<Option<KeyValue>> {
        let options = GetOptions::new().with_revision(revision.unwrap_or(0));
        match self.kv_client().get(key, Some(options)).await {
            Ok(mut resp) => Ok(resp.take_kvs().into_iter().next().map(convert_owned)),
            Err(err) => Err(self.read_error(err, revision.unwrap_or(0)).await),
        }
    }

    async fn list(&self, prefix: &str, options: ListOptions) -> Result<ListResult> {
        let end = crate::prefix_end(prefix.as_bytes()).unwrap_or_else(|| vec![0]);
        let start = match &options.start_after {
            Some(after) if after.as_str() >= prefix => {
                let mut start = after.as_bytes().to_vec();
                start.push(0);
                start
            }
            _ => range_start(prefix),
        };
        let revision = options.revision.unwrap_or(0);
        // etcd treats a limit of 0 as none, as we do. Like upstream's API server, a list
        // without a limit is one range, read at one revision.
        let limit = options
            .limit
            .map_or(0, |l| i64::try_from(l).unwrap_or(i64::MAX));
        let get = GetOptions::new()
            .with_range(end)
            .with_limit(limit)
            .with_revision(revision);
        let mut resp = match self.kv_client().get(start, Some(get)).await {
            Ok(resp) => resp,
            Err(err) => return Err(self.read_error(err, revision).await),
        };
        let revision = resp
            .header()
            .map(|h| h.revision())
            .ok_or_else(|| Error::Internal("etcd answered without a header".into()))?;
        let revision = options.revision.unwrap_or(revision);
        let more = resp.more();
        let kvs = resp.take_kvs().into_iter().map(convert_owned).collect();
        Ok(ListResult {
            kvs,
            more,
            revision,
        })
    }

    async fn create(&self, key: &str, value: Bytes) -> Result<Revision> {
        crate::check_size(key, &value)?;
        let txn = Txn::new()
            .when([Compare::create_revision(key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(key, value.to_vec(), None)]);
        let resp = self.kv_client().txn(txn).await?;
        if !resp.succeeded() {
            return Err(Error::AlreadyExists {
                key: key.to_owned(),
            });
        }
        txn_revision(&resp)
    }

    async fn update(&self, key: &str, value: Bytes, expected: Revision) -> Result<Revision> {
        crate::check_size(key, &value)?;
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
            .and_then([TxnOp::put(key, value.to_vec(), None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = self.kv_client().txn(txn).await?;
        if !resp.succeeded() {
            return Err(match failed_compare(&resp) {
                None => Error::NotFound {
                    key: key.to_owned(),
                },
                Some(current) => Error::Conflict {
                    key: key.to_owned(),
                    expected,
                    current: Box::new(current),
                },
            });
        }
        txn_revision(&resp)
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<(KeyValue, Revision)> {
        let delete = TxnOp::delete(key, Some(etcd_client::DeleteOptions::new().with_prev_key()));
        let txn = match expected {
            Some(expected) => Txn::new()
                .when([Compare::mod_revision(key, CompareOp::Equal, expected)])
                .and_then([delete])
                .or_else([TxnOp::get(key, None)]),
            None => Txn::new().and_then([delete]),
        };
        let resp = self.kv_client().txn(txn).await?;
        if !resp.succeeded() {
            return Err(match (failed_compare(&resp), expected) {
                (Some(current), Some(expected)) => Error::Conflict {
                    key: key.to_owned(),
                    expected,
                    current: Box::new(current),
                },
                _ => Error::NotFound {
                    key: key.to_owned(),
                },
            });
        }
        let deleted = resp.op_responses().into_iter().find_map(|op| match op {
            TxnOpResponse::Delete(delete) => delete.prev_kvs().first().map(convert),
            _ => None,
        });
        match deleted {
            Some(kv) => Ok((kv, txn_revision(&resp)?)),
            None => Err(Error::NotFound {
                key: key.to_owned(),
            }),
        }
    }

    async fn current_revision(&self) -> Result<Revision> {
        let options = GetOptions::new().with_count_only();
        let resp = self
            .kv_client()
            .get(COMPACT_REVISION_KEY, Some(options))
            .await?;
        resp.header()
            .map(|h| h.revision())
            .ok_or_else(|| Error::Internal("etcd answered without a header".into()))
    }

    async fn compacted_revision(&self) -> Result<Revision> {
        self.refresh_compacted().await
    }

    async fn watch(&self, prefix: &str, after: Revision) -> Result<WatchStream> {
        let compacted = self.refresh_compacted().await?;
        if after < compacted {
            return Err(Error::Compacted {
                requested: after,
                compacted,
            });
        }
        let mut options = WatchOptions::new()
            .with_start_revision(after + 1)
            .with_prev_key();
        options = match crate::prefix_end(prefix.as_bytes()) {
            Some(end) => options.with_range(end),
            None => options.with_from_key(),
        };
        let stream = self
            .client
            .watch_client()
            .max_decoding_message_size(i32::MAX as usize)
            .watch(range_start(prefix), Some(options))
            .await?;
        Ok(WatchStream::from_stream(events_of(stream, after)))
    }

    async fn compact(&self, revision: Revision) -> Result<()> {
        let current = self.current_revision().await?;
        if revision > current {
            return Err(Error::FutureRevision {
                requested: revision,
                current,
            });
        }
        if revision <= self.refresh_compacted().await? {
            return Ok(());
        }
        // Record first: a reader that sees the record may already find the history gone.
        let mut kv = self.kv_client();
        kv.put(COMPACT_REVISION_KEY, revision.to_string(), None)
            .await?;
        match kv
            .compact(
                revision,
                Some(etcd_client::CompactionOptions::new().with_physical()),
            )
            .await
        {
            Ok(_) => {}
            // Another server compacted at least as far.
            Err(err)
                if err
                    .to_string()
                    .contains("required revision has been compacted") => {}
            Err(err) => return Err(Error::Etcd(err)),
        }
        self.compacted.fetch_max(revision, Ordering::AcqRel);
        Ok(())
    }
}

/// Our events, decoded straight from etcd's watch responses as the consumer asks for them
/// (dropping the stream cancels the etcd watch). After an error the stream ends.
fn events_of(
    stream: etcd_client::WatchStream,
    after: Revision,
) -> impl futures::Stream<Item = Result<Event>> + Send + 'static {
    struct State {
        stream: etcd_client::WatchStream,
        pending: VecDeque<Result<Event>>,
        done: bool,
    }
    let state = State {
        stream,
        pending: VecDeque::new(),
        done: false,
    };
    futures::stream::unfold(state, move |mut state| async move {
        loop {
            if let Some(event) = state.pending.pop_front() {
                return Some((event, state));
            }
            if state.done {
                return None;
            }
            let resp = match state.stream.message().await {
                Ok(Some(resp)) => resp,
                Ok(None) => {
                    state.pending.push_back(Err(Error::Closed));
                    state.done = true;
                    continue;
                }
                Err(err) => {
                    state.pending.push_back(Err(Error::Etcd(err)));
                    state.done = true;
                    continue;
                }
            };
            if resp.compact_revision() > 0 {
                state.pending.push_back(Err(Error::Compacted {
                    requested: after,
                    compacted: resp.compact_revision(),
                }));
                state.done = true;
                continue;
            }
            if resp.canceled() {
                let reason = format!("etcd canceled the watch: {}", resp.cancel_reason());
                state.pending.push_back(Err(Error::Internal(reason)));
                state.done = true;
                continue;
            }
            for event in resp.events() {
                let Some(kv) = event.kv() else { continue };
                let prev = event.prev_kv().map(convert);
                state.pending.push_back(Ok(match event.event_type() {
                    EventType::Put => Event {
                        kind: EventKind::Put,
                        kv: convert(kv),
                        prev,
                    },
                    EventType::Delete => Event {
                        kind: EventKind::Delete,
                        kv: KeyValue::tombstone(convert(kv).key, kv.mod_revision()),
                        prev,
                    },
                }));
            }
        }
    })
}
