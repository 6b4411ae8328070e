//! [`Store`]: the single storage interface. It encrypts on the way in, decrypts on the way out,
//! and every method that touches tenant data takes the workspace id.

use std::sync::Arc;
use std::time::Duration;

use chimatic_audit::{HeadSigner, Stream};
use chimatic_crypto::SigningSecret;
use chimatic_domain::{ChannelId, Region, Timestamp, WorkspaceId};

use crate::audit::AuditLog;
use crate::cache::TtlCache;
use crate::db::committer::GroupCommit;
use crate::keys::KeyDomain;
use crate::{
    ClaimedJob, CompletedAttempt, DataBackend, InsertOutcome, Keyring, NewNotificationRow, StoreError, VaultBackend,
};

/// An idempotency key returns the original notification for this long.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// How long a decrypted signing secret, and a channel seen active, stay cached on a node; and
/// how many channels each cache holds.
const SIGNING_SECRET_TTL: Duration = Duration::from_secs(5 * 60);
const ACTIVE_CHANNEL_TTL: Duration = Duration::from_secs(60);
const MAX_CACHED_CHANNELS: usize = 16_384;

/// One region's store: its notification data and its credential vault.
pub struct Store {
    pub(crate) region: Region,
    pub(crate) data: Arc<dyn DataBackend>,
    pub(crate) vault: Arc<dyn VaultBackend>,
    pub(crate) keyring: Keyring,
    pub(crate) accepted: GroupCommit<(WorkspaceId, NewNotificationRow), InsertOutcome>,
    pub(crate) attempts: GroupCommit<(ClaimedJob, CompletedAttempt), bool>,
    pub(crate) audit: AuditLog,
    /// Channels' webhook signing secrets, decrypted: the vault is read once per channel and TTL
    /// instead of once per delivery. Whether the channel may still be delivered to is not
    /// cached: every delivery's own read (or its claim) checks it.
    pub(crate) signing_secrets: TtlCache<(WorkspaceId, ChannelId), SigningSecret>,
    /// Channels this node saw active, so accepting a notification needs no read of its channel;
    /// the insert checks the channel again in the same statement.
    pub(crate) active_channels: TtlCache<(WorkspaceId, ChannelId), ()>,
    head_signer: tokio::sync::OnceCell<Arc<HeadSigner>>,
}

impl Store {
    /// Opens `region`'s store over its two backends, refusing databases that belong to another
    /// region. Must be called inside a Tokio runtime: it starts the group-commit tasks.
    pub async fn connect(
        region: Region,
        data: Arc<dyn DataBackend>,
        vault: Arc<dyn VaultBackend>,
        keyring: Keyring,
    ) -> Result<Self, StoreError> {
        data.bind_region(&region).await?;
        vault.bind_region(&region).await?;
        let backend = data.clone();
        let accepted = GroupCommit::start(move |rows: Arc<Vec<_>>| {
            let backend = backend.clone();
            async move { backend.insert_notifications(&rows, IDEMPOTENCY_WINDOW).await }
        });
        let backend = data.clone();
        let attempts = GroupCommit::start(move |done: Arc<Vec<_>>| {
            let backend = backend.clone();
            async move { backend.complete_attempts(&done).await }
        });
        let audit = AuditLog::new(data.clone(), Stream::Data);
        Ok(Self {
            region,
            data,
            vault,
            keyring,
            accepted,
            attempts,
            audit,
            signing_secrets: TtlCache::new(SIGNING_SECRET_TTL, MAX_CACHED_CHANNELS),
            active_channels: TtlCache::new(ACTIVE_CHANNEL_TTL, MAX_CACHED_CHANNELS),
            head_signer: Default::default(),
        })
    }

    /// This region's audit trail.
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// The public half of [`Store::audit_head_signer`], without creating it: `None` if this
    /// region has never signed a head.
    pub async fn audit_head_public_key(&self) -> Result<Option<[u8; 32]>, StoreError> {
        if self.data.data_key(chimatic_audit::system_workspace(), Some(1)).await?.is_none() {
            return Ok(None);
        }
        Ok(Some(self.audit_head_signer(Timestamp(0)).await?.public_key()))
    }

    /// The key that signs audit chain heads in this region (and, in the primary region, the
    /// control plane's). Its seed is derived from a DEK of the system workspace, which the KEK
    /// wraps like any other: only a node holding the KEK can sign.
    pub async fn audit_head_signer(&self, now: Timestamp) -> Result<Arc<HeadSigner>, StoreError> {
        self.head_signer
            .get_or_try_init(|| async {
                let system = chimatic_audit::system_workspace();
                if self.data.data_key(system, Some(1)).await?.is_none() {
                    let (row, _) = self.keyring.new_dek(KeyDomain::Data, system, 1).await?;
                    // Another node may have made it first; then its key is the one.
                    let _ = self.data.insert_data_key(system, row, now, None).await;
                }
                let dek = self.index_key(system).await?;
                let seed = zeroize::Zeroizing::new(dek.blind_index(b"chimatic.audit.head-signing-key.v1", b""));
                let signer = HeadSigner::from_seed(&seed).map_err(|_| StoreError::Corrupt("audit signing key"))?;
                Ok(Arc::new(signer))
            })
            .await
            .cloned()
    }

    pub fn region(&self) -> &Region {
        &self.region
    }

    pub async fn ping(&self) -> Result<(), StoreError> {
        self.data.ping().await?;
        self.vault.ping().await
    }

    // ---- background jobs ----------------------------------------------------------------------

    /// Removes idempotency claims past their 24-hour window, in batches of `batch` so no write
    /// lock is held for long. Returns how many were removed; stops early (with what it removed)
    /// if another node is running the job.
    pub async fn purge_expired_idempotency_keys(&self, now: Timestamp, batch: u32) -> Result<u64, StoreError> {
        let before = now.minus(IDEMPOTENCY_WINDOW);
        let mut removed = 0;
        while let Some(n) = self.data.purge_idempotency_keys(before, batch).await? {
            removed += n;
            if n < u64::from(batch) {
                break;
            }
        }
        Ok(removed)
    }

    /// Removes the content of finished notifications older than their workspace's payload
    /// retention (`retentions`: workspace and days), a batch at a time, skipping frozen
    /// workspaces; delivery metadata and attempts stay. Returns how many were emptied.
    pub async fn remove_expired_payloads(
        &self,
        now: Timestamp,
        retentions: &[(WorkspaceId, u32)],
        frozen: &std::collections::BTreeSet<WorkspaceId>,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let mut removed = 0;
        for (ws, days) in retentions {
            if frozen.contains(ws) {
                continue;
            }
            let before = now.minus(Duration::from_secs(u64::from(*days) * 24 * 3600));
            while let Some(n) = self.data.remove_payloads(*ws, before, now, batch).await? {
                removed += n;
                if n < u64::from(batch) {
                    break;
                }
            }
        }
        Ok(removed)
    }

    /// Removes everything of a workspace from this region's vault and data store: vault keys
    /// and credentials, then the data DEKs (dropped from memory too), then every other row,
    /// table by table. Counts per table, keyed `vault.…` and `data.…`.
    pub(crate) async fn erase_workspace(&self, ws: WorkspaceId) -> Result<crate::DeletionReceipt, StoreError> {
        use crate::backend::{DATA_KEY_TABLE, DATA_TABLES, VAULT_TABLES};
        use crate::workspaces::erase_rows;
        let mut receipt = crate::DeletionReceipt::new();
        for (table, key) in VAULT_TABLES {
            receipt.insert(format!("vault.{table}"), erase_rows(&*self.vault, table, key, ws).await?);
        }
        let (table, key) = DATA_KEY_TABLE;
        receipt.insert(format!("data.{table}"), erase_rows(&*self.data, table, key, ws).await?);
        self.keyring.evict(ws);
        self.keyring.forget_workspace_kek(ws);
        self.signing_secrets.forget(|(of, _)| *of == ws);
        self.active_channels.forget(|(of, _)| *of == ws);
        for (table, key) in DATA_TABLES {
            receipt.insert(format!("data.{table}"), erase_rows(&*self.data, table, key, ws).await?);
        }
        Ok(receipt)
    }
}
