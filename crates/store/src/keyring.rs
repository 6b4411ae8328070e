//! Unwrapped DEKs, cached in memory so the hot path never calls the KEK. Bounded; the key bytes
//! live inside aws-lc, which wipes them when the last reference is dropped.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chimatic_crypto::kek::WrapContext;
use chimatic_crypto::{CryptoError, Dek, KekProvider};
use chimatic_domain::WorkspaceId;

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

type CacheKey = (KeyDomain, WorkspaceId, u32);

pub struct Keyring {
    kek: Arc<dyn KekProvider>,
    by_version: RwLock<HashMap<CacheKey, Arc<Dek>>>,
    current: RwLock<HashMap<(KeyDomain, WorkspaceId), Arc<Dek>>>,
}

impl Keyring {
    pub fn new(kek: Arc<dyn KekProvider>) -> Self {
        Self { kek, by_version: RwLock::default(), current: RwLock::default() }
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
        self.current.read().ok()?.get(&(domain, ws)).cloned()
    }

    pub(crate) fn cached_version(&self, domain: KeyDomain, ws: WorkspaceId, version: u32) -> Option<Arc<Dek>> {
        if let Some(d) = self.cached_current(domain, ws).filter(|d| d.version() == version) {
            return Some(d);
        }
        self.by_version.read().ok()?.get(&(domain, ws, version)).cloned()
    }

    pub(crate) fn remember(&self, domain: KeyDomain, ws: WorkspaceId, dek: Arc<Dek>, is_current: bool) {
        if let Ok(mut map) = self.by_version.write() {
            if map.len() >= MAX_CACHED_DEKS {
                map.clear();
            }
            map.insert((domain, ws, dek.version()), dek.clone());
        }
        if is_current && let Ok(mut map) = self.current.write() {
            if map.len() >= MAX_CACHED_DEKS {
                map.clear();
            }
            map.insert((domain, ws), dek);
        }
    }
}
