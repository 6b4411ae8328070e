//! Unwrapped DEKs, cached in memory so the hot path never calls the KEK. Bounded in size and in
//! time (an entry is dropped after its TTL, so a revoked KEK stops working for cached keys too);
//! the key bytes live inside aws-lc, which wipes them when the last reference is dropped.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chimatic_crypto::kek::WrapContext;
use chimatic_crypto::{CryptoError, Dek, KekProvider};
use std::time::Duration;

use chimatic_domain::{Clock, Timestamp, WorkspaceId};

use crate::WrappedKeyRow;

/// Which store a DEK belongs to: notification data and the credential vault never share keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyDomain {
    Data,
    Vault,
}

impl KeyDomain {
    fn label(self) -> &'static str {
        match self {
            KeyDomain::Data => "data",
            KeyDomain::Vault => "vault",
        }
    }
}

const MAX_CACHED_DEKS: usize = 8192;
/// How long an unwrapped DEK is kept before the KEK is asked again.
pub const DEK_CACHE_TTL: Duration = Duration::from_secs(15 * 60);

type CacheKey = (KeyDomain, WorkspaceId, u32);

#[derive(Clone)]
struct Cached {
    dek: Arc<Dek>,
    until: Timestamp,
}

pub struct Keyring {
    kek: Arc<dyn KekProvider>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    by_version: RwLock<HashMap<CacheKey, Cached>>,
    current: RwLock<HashMap<(KeyDomain, WorkspaceId), Cached>>,
}

/// Inserts into a bounded map: expired entries go first, and if it is still full, everything.
fn insert_bounded<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Cached>, key: K, value: Cached, now: Timestamp) {
    if map.len() >= MAX_CACHED_DEKS {
        map.retain(|_, c| c.until > now);
        if map.len() >= MAX_CACHED_DEKS {
            map.clear();
        }
    }
    map.insert(key, value);
}

impl Keyring {
    pub fn new(kek: Arc<dyn KekProvider>, clock: Arc<dyn Clock>) -> Self {
        Self::with_ttl(kek, clock, DEK_CACHE_TTL)
    }

    pub fn with_ttl(kek: Arc<dyn KekProvider>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self { kek, clock, ttl, by_version: RwLock::default(), current: RwLock::default() }
    }

    pub fn kek_id(&self) -> &str {
        self.kek.kek_id()
    }

    /// A fresh DEK and its wrapped form, ready to store.
    pub(crate) async fn new_dek(
        &self,
        domain: KeyDomain,
        ws: WorkspaceId,
        version: u32,
    ) -> Result<(WrappedKeyRow, Arc<Dek>), CryptoError> {
        let material = Dek::generate_material()?;
        let ws_text = ws.to_string();
        let ctx = WrapContext { store: domain.label(), workspace: &ws_text, dek_version: version };
        let wrapped = self.kek.wrap(&material, &ctx).await?;
        let dek = Arc::new(Dek::from_bytes(material.as_ref(), version)?);
        Ok((WrappedKeyRow { version, kek_id: self.kek.kek_id().to_string(), wrapped }, dek))
    }

    pub(crate) async fn unwrap(
        &self,
        domain: KeyDomain,
        ws: WorkspaceId,
        row: &WrappedKeyRow,
    ) -> Result<Arc<Dek>, CryptoError> {
        if row.kek_id != self.kek.kek_id() {
            return Err(CryptoError::Unwrap);
        }
        let ws_text = ws.to_string();
        let ctx = WrapContext { store: domain.label(), workspace: &ws_text, dek_version: row.version };
        let material = self.kek.unwrap(&row.wrapped, &ctx).await?;
        Ok(Arc::new(Dek::from_bytes(material.as_ref(), row.version)?))
    }

    pub(crate) fn cached_current(&self, domain: KeyDomain, ws: WorkspaceId) -> Option<Arc<Dek>> {
        let now = self.clock.now();
        self.current.read().ok()?.get(&(domain, ws)).filter(|c| c.until > now).map(|c| c.dek.clone())
    }

    pub(crate) fn cached_version(&self, domain: KeyDomain, ws: WorkspaceId, version: u32) -> Option<Arc<Dek>> {
        if let Some(d) = self.cached_current(domain, ws).filter(|d| d.version() == version) {
            return Some(d);
        }
        let now = self.clock.now();
        self.by_version.read().ok()?.get(&(domain, ws, version)).filter(|c| c.until > now).map(|c| c.dek.clone())
    }

    pub(crate) fn remember(&self, domain: KeyDomain, ws: WorkspaceId, dek: Arc<Dek>, is_current: bool) {
        let now = self.clock.now();
        let cached = Cached { dek: dek.clone(), until: now.plus(self.ttl) };
        if let Ok(mut map) = self.by_version.write() {
            insert_bounded(&mut map, (domain, ws, dek.version()), cached.clone(), now);
        }
        if is_current && let Ok(mut map) = self.current.write() {
            insert_bounded(&mut map, (domain, ws), cached, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chimatic_crypto::LocalKek;
    use chimatic_domain::ManualClock;

    #[tokio::test]
    async fn cached_keys_expire_after_their_ttl() {
        let clock = ManualClock::new(Timestamp(1_000_000));
        let kek = Arc::new(LocalKek::from_bytes(&[3u8; 32]).unwrap());
        let ring = Keyring::with_ttl(kek, Arc::new(clock.clone()), Duration::from_secs(60));
        let ws = WorkspaceId::generate();
        let (row, dek) = ring.new_dek(KeyDomain::Data, ws, 1).await.unwrap();
        ring.remember(KeyDomain::Data, ws, dek, true);
        assert!(ring.cached_current(KeyDomain::Data, ws).is_some());
        assert!(ring.cached_version(KeyDomain::Data, ws, 1).is_some());
        assert!(ring.cached_current(KeyDomain::Vault, ws).is_none(), "domains never share keys");

        clock.advance(Duration::from_secs(61));
        assert!(ring.cached_current(KeyDomain::Data, ws).is_none());
        assert!(ring.cached_version(KeyDomain::Data, ws, 1).is_none());
        // After expiry the key is unwrapped again through the KEK.
        let again = ring.unwrap(KeyDomain::Data, ws, &row).await.unwrap();
        assert_eq!(again.version(), 1);
    }
}
