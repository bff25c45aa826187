//! Service cluster IPs and node ports: bitmaps kept in the store (under upstream's
//! `/registry/ranges/...` keys), changed with compare-and-swap so that two servers, or two
//! requests, never hand out the same value. Rebuilt from the Services at every start, which
//! also repairs anything leaked by a crash between allocating and writing the Service.

use std::net::Ipv4Addr;
use std::sync::Arc;

use base64::Engine;
use bytes::Bytes;
use cox_store::{Error as StoreError, Store};
use rand::Rng;
use serde_json::{Value, json};

/// Why an allocation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    #[error("provided {what} is already allocated")]
    Taken { what: &'static str },
    #[error("provided {what} is not in the valid range. The range of valid {what}s is {range}")]
    OutOfRange { what: &'static str, range: String },
    #[error("range is full")]
    Full,
    #[error("{0}")]
    Store(String),
}

/// One range of small integers (offsets into an IP range, or ports), as a bitmap in the store.
#[derive(Debug, Clone)]
pub struct Allocator {
    store: Arc<dyn Store>,
    key: String,
    /// The first value of the range.
    base: u32,
    size: u32,
    /// Offsets below this are left for explicit requests when others are free (upstream's
    /// static band: well-known addresses such as the DNS service's).
    static_band: u32,
    /// `IP address` or `port`, for messages.
    what: &'static str,
    /// The range as users write it, for messages.
    range: String,
}

const ATTEMPTS: usize = 32;

impl Allocator {
    /// Cluster IPs of `network/prefix`, without the network and broadcast addresses.
    pub fn service_ips(store: Arc<dyn Store>, network: Ipv4Addr, prefix: u8) -> Self {
        let size = 1u32 << (32 - u32::from(prefix.min(30)));
        let usable = size - 2;
        Self {
            store,
            key: "/registry/ranges/serviceips".into(),
            base: u32::from(network) + 1,
            size: usable,
            static_band: (usable / 16).clamp(16, 256).min(usable),
            what: "IP address",
            range: format!("{network}/{prefix}"),
        }
    }

    /// Node ports `low..=high`.
    pub fn node_ports(store: Arc<dyn Store>, low: u16, high: u16) -> Self {
        let size = u32::from(high.saturating_sub(low)) + 1;
        Self {
            store,
            key: "/registry/ranges/servicenodeports".into(),
            base: u32::from(low),
            size,
            static_band: (size / 16).clamp(16, 128).min(size),
            what: "port",
            range: format!("{low}-{high}"),
        }
    }

    fn store_error(err: StoreError) -> AllocError {
        AllocError::Store(err.to_string())
    }

    async fn load(&self) -> Result<(Vec<u8>, Option<i64>), AllocError> {
        let bytes = (self.size as usize).div_ceil(8);
        match self
            .store
            .get(&self.key, None)
            .await
            .map_err(Self::store_error)?
        {
            None => Ok((vec![0; bytes], None)),
            Some(kv) => {
                let value: Value = serde_json::from_slice(&kv.value).unwrap_or_default();
                let mut data = value
                    .get("data")
                    .and_then(Value::as_str)
                    .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
                    .unwrap_or_default();
                data.resize(bytes, 0);
                Ok((data, Some(kv.mod_revision)))
            }
        }
    }

    /// Writes the bitmap if nothing changed it since `revision`; false when something did.
    async fn save(&self, data: &[u8], revision: Option<i64>) -> Result<bool, AllocError> {
        let value = json!({
            "range": self.range,
            "data": base64::engine::general_purpose::STANDARD.encode(data),
        });
        let bytes = Bytes::from(value.to_string());
        let result = match revision {
            None => self.store.create(&self.key, bytes).await.map(|_| ()),
            Some(revision) => self
                .store
                .update(&self.key, bytes, revision)
                .await
                .map(|_| ()),
        };
        match result {
            Ok(()) => Ok(true),
            Err(
                StoreError::Conflict { .. }
                | StoreError::AlreadyExists { .. }
                | StoreError::NotFound { .. },
            ) => Ok(false),
            Err(err) => Err(Self::store_error(err)),
        }
    }

    fn is_set(data: &[u8], offset: u32) -> bool {
        data[(offset / 8) as usize] & (1 << (offset % 8)) != 0
    }

    fn set(data: &mut [u8], offset: u32, on: bool) {
        let (byte, bit) = ((offset / 8) as usize, 1u8 << (offset % 8));
        if on {
            data[byte] |= bit;
        } else {
            data[byte] &= !bit;
        }
    }

    fn offset(&self, value: u32) -> Result<u32, AllocError> {
        value
            .checked_sub(self.base)
            .filter(|&offset| offset < self.size)
            .ok_or_else(|| AllocError::OutOfRange {
                what: self.what,
                range: self.range.clone(),
            })
    }

    /// Takes `value` (an IP as u32, or a port).
    pub async fn allocate(&self, value: u32) -> Result<(), AllocError> {
        let offset = self.offset(value)?;
        for _ in 0..ATTEMPTS {
            let (mut data, revision) = self.load().await?;
            if Self::is_set(&data, offset) {
                return Err(AllocError::Taken { what: self.what });
            }
            Self::set(&mut data, offset, true);
            if self.save(&data, revision).await? {
                return Ok(());
            }
        }
        Err(AllocError::Store(
            "too many concurrent changes to the range".into(),
        ))
    }

    /// Takes a free value: at random above the static band, else anywhere.
    pub async fn allocate_next(&self) -> Result<u32, AllocError> {
        for _ in 0..ATTEMPTS {
            let (mut data, revision) = self.load().await?;
            let dynamic = self.size - self.static_band;
            let start = if dynamic > 0 {
                rand::rng().random_range(0..dynamic)
            } else {
                0
            };
            let candidates = (0..dynamic)
                .map(|i| self.static_band + (start + i) % dynamic)
                .chain(0..self.static_band);
            let Some(offset) = candidates.into_iter().find(|&o| !Self::is_set(&data, o)) else {
                return Err(AllocError::Full);
            };
            Self::set(&mut data, offset, true);
            if self.save(&data, revision).await? {
                return Ok(self.base + offset);
            }
        }
        Err(AllocError::Store(
            "too many concurrent changes to the range".into(),
        ))
    }

    /// Gives `value` back; values outside the range or already free are ignored.
    pub async fn release(&self, value: u32) -> Result<(), AllocError> {
        let Ok(offset) = self.offset(value) else {
            return Ok(());
        };
        for _ in 0..ATTEMPTS {
            let (mut data, revision) = self.load().await?;
            if !Self::is_set(&data, offset) {
                return Ok(());
            }
            Self::set(&mut data, offset, false);
            if self.save(&data, revision).await? {
                return Ok(());
            }
        }
        Err(AllocError::Store(
            "too many concurrent changes to the range".into(),
        ))
    }

    /// Replaces the bitmap with exactly `in_use` (values outside the range are skipped).
    pub async fn rebuild(&self, in_use: &[u32]) -> Result<(), AllocError> {
        for _ in 0..ATTEMPTS {
            let (mut data, revision) = self.load().await?;
            data.iter_mut().for_each(|b| *b = 0);
            for offset in in_use.iter().filter_map(|&v| self.offset(v).ok()) {
                Self::set(&mut data, offset, true);
            }
            if self.save(&data, revision).await? {
                return Ok(());
            }
        }
        Err(AllocError::Store(
            "too many concurrent changes to the range".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cox_store::sqlite::{SqliteOptions, SqliteStore};

    async fn store() -> (Arc<dyn Store>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), SqliteOptions::default())
            .await
            .unwrap();
        (Arc::new(store), dir)
    }

    #[tokio::test]
    async fn ports_are_handed_out_once_and_released() {
        let (store, _dir) = store().await;
        let ports = Allocator::node_ports(store.clone(), 30000, 30099);
        ports.allocate(30080).await.unwrap();
        assert_eq!(
            ports.allocate(30080).await,
            Err(AllocError::Taken { what: "port" })
        );
        assert!(matches!(
            ports.allocate(80).await,
            Err(AllocError::OutOfRange { .. })
        ));
        let mut seen = vec![30080];
        for _ in 0..99 {
            let port = ports.allocate_next().await.unwrap();
            assert!((30000..=30099).contains(&port));
            assert!(!seen.contains(&port), "{port} handed out twice");
            seen.push(port);
        }
        assert_eq!(ports.allocate_next().await, Err(AllocError::Full));
        ports.release(30080).await.unwrap();
        assert_eq!(ports.allocate_next().await.unwrap(), 30080);
        // Another allocator on the same store sees the same state.
        let again = Allocator::node_ports(store, 30000, 30099);
        assert_eq!(again.allocate_next().await, Err(AllocError::Full));
    }

    #[tokio::test]
    async fn dynamic_ips_avoid_the_static_band_and_rebuild_resets() {
        let (store, _dir) = store().await;
        let ips = Allocator::service_ips(store, Ipv4Addr::new(10, 43, 0, 0), 16);
        let ip = Ipv4Addr::from(ips.allocate_next().await.unwrap());
        assert!(
            ip > Ipv4Addr::new(10, 43, 1, 0),
            "{ip} is in the static band"
        );
        ips.allocate(u32::from(Ipv4Addr::new(10, 43, 0, 10)))
            .await
            .unwrap();
        assert!(matches!(
            ips.allocate(u32::from(Ipv4Addr::new(10, 44, 0, 1))).await,
            Err(AllocError::OutOfRange { .. })
        ));
        ips.rebuild(&[u32::from(Ipv4Addr::new(10, 43, 0, 1))])
            .await
            .unwrap();
        ips.allocate(u32::from(ip)).await.unwrap();
        assert!(
            ips.allocate(u32::from(Ipv4Addr::new(10, 43, 0, 1)))
                .await
                .is_err()
        );
    }
}
