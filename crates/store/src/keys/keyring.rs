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
/// How long a node keeps writing with the DEK it knows as current before checking for a newer
/// version (a DEK rotation on another node).
const CURRENT_DEK_TTL: Duration = Duration::from_secs(60);
/// How long a DEK under a workspace's own key stays cached, by default.
pub const BYOK_DEK_CACHE_TTL: Duration = Duration::from_secs(60);

type CacheKey = (KeyDomain, WorkspaceId, u32);

#[derive(Clone)]
struct Cached {
    dek: Arc<Dek>,
    until: Timestamp,
}

/// The KEKs a node holds: the current one, which wraps every new DEK, and earlier ones, kept
/// only to unwrap DEKs not yet re-wrapped under the current one (rotation). Every wrapped DEK
/// records the id of the KEK that wrapped it.
#[derive(Clone)]
pub struct KekSet {
    current: Arc<dyn KekProvider>,
    previous: Vec<Arc<dyn KekProvider>>,
}

impl KekSet {
    pub fn new(current: Arc<dyn KekProvider>, previous: Vec<Arc<dyn KekProvider>>) -> Self {
        Self { current, previous }
    }

    pub fn current(&self) -> &Arc<dyn KekProvider> {
        &self.current
    }

    pub fn ids(&self) -> Vec<String> {
        std::iter::once(&self.current).chain(&self.previous).map(|k| k.kek_id().to_string()).collect()
    }

    fn find(&self, kek_id: &str) -> Option<&Arc<dyn KekProvider>> {
        std::iter::once(&self.current).chain(&self.previous).find(|k| k.kek_id() == kek_id)
    }
}

pub struct Keyring {
    keks: RwLock<KekSet>,
    /// Workspaces that brought their own key (BYOK): it wraps their notification-data DEKs.
    /// `None`: looked up, the workspace has none.
    workspace_keks: RwLock<HashMap<WorkspaceId, Option<Arc<dyn KekProvider>>>>,
    clock: Arc<dyn Clock>,
    ttl: Duration,
    /// How long a DEK under a workspace's own key stays cached: the time a revocation of that
    /// key takes to stop reads.
    byok_ttl: Duration,
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
    /// The node's clock, which also times the store's other caches.
    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn new(kek: Arc<dyn KekProvider>, clock: Arc<dyn Clock>) -> Self {
        Self::with_ttl(kek, clock, DEK_CACHE_TTL)
    }

    pub fn with_ttl(kek: Arc<dyn KekProvider>, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self::with_keks(KekSet::new(kek, Vec::new()), clock, ttl)
    }

    pub fn with_keks(keks: KekSet, clock: Arc<dyn Clock>, ttl: Duration) -> Self {
        Self {
            keks: RwLock::new(keks),
            workspace_keks: RwLock::default(),
            clock,
            ttl,
            byok_ttl: BYOK_DEK_CACHE_TTL.min(ttl),
            by_version: RwLock::default(),
            current: RwLock::default(),
        }
    }

    /// Sets how long DEKs under workspaces' own keys stay cached.
    pub fn with_byok_ttl(mut self, ttl: Duration) -> Self {
        self.byok_ttl = ttl;
        self
    }

    /// The workspace's own KEK: `Some(None)` if it has none, `None` if not known yet.
    pub(crate) fn workspace_kek(&self, ws: WorkspaceId) -> Option<Option<Arc<dyn KekProvider>>> {
        self.workspace_keks.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&ws).cloned()
    }

    pub(crate) fn set_workspace_kek(&self, ws: WorkspaceId, kek: Option<Arc<dyn KekProvider>>) {
        let mut map = self.workspace_keks.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() >= MAX_CACHED_DEKS {
            map.clear();
        }
        map.insert(ws, kek);
    }

    /// Drops the workspace's cached DEKs: the next use unwraps them through their KEK again (and
    /// caches them for as long as that KEK allows).
    pub(crate) fn evict(&self, ws: WorkspaceId) {
        if let Ok(mut map) = self.by_version.write() {
            map.retain(|(_, w, _), _| *w != ws);
        }
        if let Ok(mut map) = self.current.write() {
            map.retain(|(_, w), _| *w != ws);
        }
    }

    pub(crate) fn forget_workspace_kek(&self, ws: WorkspaceId) {
        self.workspace_keks.write().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&ws);
    }

    /// `row`'s DEK wrapped by `target`, unwrapped with `from` if that wrapped it (a workspace's
    /// previous own key), else with the KEK it names.
    pub(crate) async fn rewrap_to(
        &self,
        domain: KeyDomain,
        ws: WorkspaceId,
        row: &WrappedKeyRow,
        from: Option<&Arc<dyn KekProvider>>,
        target: &Arc<dyn KekProvider>,
    ) -> Result<WrappedKeyRow, CryptoError> {
        let old = match from.filter(|k| k.kek_id() == row.kek_id) {
            Some(k) => k.clone(),
            None => self.keks().find(&row.kek_id).cloned().ok_or(CryptoError::Unwrap)?,
        };
        let ws_text = ws.to_string();
        let ctx = WrapContext { store: domain.label(), workspace: &ws_text, dek_version: row.version };
        let material = old.unwrap(&row.wrapped, &ctx).await?;
        let wrapped = target.wrap(&material, &ctx).await?;
        Ok(WrappedKeyRow { version: row.version, kek_id: target.kek_id().to_string(), wrapped })
    }

    /// The KEK that wrapped `row`: the workspace's own, or one of the node's.
    fn kek_of(&self, ws: WorkspaceId, row: &WrappedKeyRow) -> Result<Arc<dyn KekProvider>, CryptoError> {
        if let Some(Some(own)) = self.workspace_kek(ws)
            && own.kek_id() == row.kek_id
        {
            return Ok(own);
        }
        self.keks().find(&row.kek_id).cloned().ok_or(CryptoError::Unwrap)
    }

    /// The KEK that wraps new DEKs of this domain and workspace.
    fn wrapping_kek(&self, domain: KeyDomain, ws: WorkspaceId) -> Arc<dyn KekProvider> {
        match (domain, self.workspace_kek(ws)) {
            (KeyDomain::Data, Some(Some(own))) => own,
            _ => self.keks().current,
        }
    }

    fn keks(&self) -> KekSet {
        self.keks.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Makes `keks` the node's KEKs (a rotation was discovered). Cached DEKs stay valid: their
    /// material does not change, only how it is wrapped.
    pub fn set_keks(&self, keks: KekSet) {
        *self.keks.write().unwrap_or_else(std::sync::PoisonError::into_inner) = keks;
    }

    pub fn kek_id(&self) -> String {
        self.keks().current.kek_id().to_string()
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
        let kek = self.wrapping_kek(domain, ws);
        let wrapped = kek.wrap(&material, &ctx).await?;
        let dek = Arc::new(Dek::from_bytes(material.as_ref(), version)?);
        Ok((WrappedKeyRow { version, kek_id: kek.kek_id().to_string(), wrapped }, dek))
    }

    pub(crate) async fn unwrap(
        &self,
        domain: KeyDomain,
        ws: WorkspaceId,
        row: &WrappedKeyRow,
    ) -> Result<Arc<Dek>, CryptoError> {
        let kek = self.kek_of(ws, row)?;
        let ws_text = ws.to_string();
        let ctx = WrapContext { store: domain.label(), workspace: &ws_text, dek_version: row.version };
        let material = kek.unwrap(&row.wrapped, &ctx).await?;
        Ok(Arc::new(Dek::from_bytes(material.as_ref(), row.version)?))
    }

    /// The DEK of `row` wrapped under the current KEK, or `None` if it already is.
    pub(crate) async fn rewrapped(
        &self,
        domain: KeyDomain,
        ws: WorkspaceId,
        row: &WrappedKeyRow,
    ) -> Result<Option<WrappedKeyRow>, CryptoError> {
        let target = self.wrapping_kek(domain, ws);
        if row.kek_id == target.kek_id() {
            return Ok(None);
        }
        let ws_text = ws.to_string();
        let ctx = WrapContext { store: domain.label(), workspace: &ws_text, dek_version: row.version };
        let material = self.kek_of(ws, row)?.unwrap(&row.wrapped, &ctx).await?;
        let wrapped = target.wrap(&material, &ctx).await?;
        Ok(Some(WrappedKeyRow { version: row.version, kek_id: target.kek_id().to_string(), wrapped }))
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
        let own = domain == KeyDomain::Data && matches!(self.workspace_kek(ws), Some(Some(_)));
        let ttl = if own { self.byok_ttl } else { self.ttl };
        let cached = Cached { dek: dek.clone(), until: now.plus(ttl) };
        if let Ok(mut map) = self.by_version.write() {
            insert_bounded(&mut map, (domain, ws, dek.version()), cached.clone(), now);
        }
        if is_current && let Ok(mut map) = self.current.write() {
            let until = now.plus(ttl.min(CURRENT_DEK_TTL));
            insert_bounded(&mut map, (domain, ws), Cached { until, ..cached }, now);
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

    #[tokio::test]
    async fn after_a_rotation_old_deks_unwrap_through_the_previous_kek_and_rewrap_under_the_new() {
        let clock = Arc::new(ManualClock::new(Timestamp(1_000_000)));
        let old: Arc<dyn KekProvider> = Arc::new(LocalKek::from_bytes(&[3u8; 32]).unwrap());
        let new: Arc<dyn KekProvider> = Arc::new(LocalKek::from_bytes(&[4u8; 32]).unwrap());
        let ring = Keyring::with_keks(KekSet::new(old.clone(), Vec::new()), clock, DEK_CACHE_TTL);
        let ws = WorkspaceId::generate();
        let (row, dek) = ring.new_dek(KeyDomain::Data, ws, 1).await.unwrap();
        assert_eq!(row.kek_id, old.kek_id());

        ring.set_keks(KekSet::new(new.clone(), vec![old.clone()]));
        let (fresh, _) = ring.new_dek(KeyDomain::Data, ws, 2).await.unwrap();
        assert_eq!(fresh.kek_id, new.kek_id(), "new DEKs are wrapped by the current KEK");
        let before = ring.unwrap(KeyDomain::Data, ws, &row).await.unwrap();
        let moved = ring.rewrapped(KeyDomain::Data, ws, &row).await.unwrap().unwrap();
        assert_eq!(moved.kek_id, new.kek_id());
        assert!(ring.rewrapped(KeyDomain::Data, ws, &moved).await.unwrap().is_none(), "already current");

        // Without the old KEK, the re-wrapped DEK still opens, to the same key; the old row does not.
        ring.set_keks(KekSet::new(new, Vec::new()));
        let after = ring.unwrap(KeyDomain::Data, ws, &moved).await.unwrap();
        let aad = chimatic_crypto::Aad { workspace: ws, table: "t", column: "c", row: "r" };
        let sealed = before.encrypt(&aad, b"same key").unwrap();
        assert_eq!(&*after.decrypt(&aad, &sealed).unwrap(), b"same key");
        assert!(dek.decrypt(&aad, &sealed).is_ok());
        assert_eq!(ring.unwrap(KeyDomain::Data, ws, &row).await.unwrap_err(), CryptoError::Unwrap);
    }
}
