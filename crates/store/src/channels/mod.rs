//! Webhook channels: the destination encrypted in the data store, the signing secret only in
//! the vault; deactivation takes queued notifications out of the queue, and a deactivated
//! channel is purged, notifications and all, when its reactivation window ends.

mod rows;
pub(crate) mod sql;

pub(crate) use rows::channel_row;
pub use rows::{ChannelRow, ChannelRows};

use std::sync::Arc;
use std::time::Duration;

use chimatic_audit::{AuditContext, actions};
use chimatic_crypto::{Aad, SigningSecret};
use chimatic_domain::{ChannelId, OutboundTls, Timestamp, WebhookUrl, WorkspaceId};

use crate::keys::KeyDomain;
use crate::records::{Channel, ChannelEntry, ChannelUse, DeactivatedChannel};
use crate::{Store, StoreError};

const SIGNING_SECRET_KIND: &str = "webhook_signing_secret";

/// A channel's destination as encrypted in `channels.destination`.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredDestination {
    url: String,
    tls: OutboundTls,
}

/// Why a notification to a deactivated channel is refused.
pub const CHANNEL_DEACTIVATED: &str = "the channel is deactivated; reactivate it before sending to it";

impl Store {
    /// Creates a webhook channel; its signing secret goes to the vault first, so a channel row
    /// never exists without its secret.
    pub async fn create_channel(
        &self,
        ws: WorkspaceId,
        url: WebhookUrl,
        tls: OutboundTls,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(Channel, SigningSecret), StoreError> {
        let id = ChannelId::generate();
        let id_text = id.to_string();
        let secret = SigningSecret::generate()?;
        let sealed_secret = self
            .seal(
                KeyDomain::Vault,
                Aad { workspace: ws, table: "secrets", column: "secret", row: &id_text },
                secret.as_bytes(),
            )
            .await?;
        self.vault.put_secret(ws, &id_text, SIGNING_SECRET_KIND, &sealed_secret, now).await?;
        let plain = serde_json::to_vec(&StoredDestination { url: url.expose().as_str().into(), tls: tls.clone() })
            .map_err(|_| StoreError::Corrupt("channel destination"))?;
        let sealed = self
            .seal(
                KeyDomain::Data,
                Aad { workspace: ws, table: "channels", column: "destination", row: &id_text },
                &plain,
            )
            .await?;
        let row = ChannelRow {
            id,
            kind: "webhook".into(),
            destination: sealed,
            created_at: now,
            deactivated_at: None,
            purge_at: None,
        };
        let audit = by.event(now, actions::CHANNEL_CREATED, "channel", id).with_detail(serde_json::json!({
            "kind": "webhook",
            "tls12_allowed": tls.allow_tls12(),
            "pins": tls.pins().len(),
        }));
        self.data.insert_channel(ws, &row, &audit).await?;
        Ok((Channel { id, kind: row.kind, url, tls, created_at: now }, secret))
    }

    pub(crate) async fn open_channel(&self, ws: WorkspaceId, row: ChannelRow) -> Result<Channel, StoreError> {
        let id_text = row.id.to_string();
        let aad = Aad { workspace: ws, table: "channels", column: "destination", row: &id_text };
        let plain = self.open(KeyDomain::Data, aad, &row.destination).await?;
        let stored: StoredDestination =
            serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt("channel destination"))?;
        // Stored URLs were validated on the way in; re-parsing cannot widen what is accepted.
        let url = WebhookUrl::parse(&stored.url, true).map_err(|_| StoreError::Corrupt("channel url"))?;
        Ok(Channel { id: row.id, kind: row.kind, url, tls: stored.tls, created_at: row.created_at })
    }

    /// The channel; a deactivated one's destination is never decrypted.
    async fn channel_entry(&self, ws: WorkspaceId, row: ChannelRow) -> Result<ChannelEntry, StoreError> {
        match (row.deactivated_at, row.purge_at) {
            (Some(deactivated_at), Some(purge_at)) => Ok(ChannelEntry::Deactivated(DeactivatedChannel {
                id: row.id,
                kind: row.kind,
                created_at: row.created_at,
                deactivated_at,
                purge_at,
            })),
            (None, None) => Ok(ChannelEntry::Active(self.open_channel(ws, row).await?)),
            _ => Err(StoreError::Corrupt("channel state")),
        }
    }

    pub async fn channel(&self, ws: WorkspaceId, id: ChannelId) -> Result<ChannelEntry, StoreError> {
        let row = self.data.channel(ws, id).await?.ok_or(StoreError::NotFound)?;
        self.channel_entry(ws, row).await
    }

    pub async fn list_channels(
        &self,
        ws: WorkspaceId,
        after: Option<ChannelId>,
        limit: u32,
    ) -> Result<Vec<ChannelEntry>, StoreError> {
        let rows = self.data.list_channels(ws, after, limit).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.channel_entry(ws, row).await?);
        }
        Ok(out)
    }

    /// Deactivates a channel: from this commit on nothing is sent to it, its queued
    /// notifications are `cancelled`, and its destination is no longer decrypted for the API. It
    /// can be reactivated until `now + keep_for`; then the purger deletes it with its
    /// notifications. Returns the channel and how many notifications were cancelled.
    pub async fn deactivate_channel(
        &self,
        ws: WorkspaceId,
        id: ChannelId,
        now: Timestamp,
        keep_for: Duration,
        by: &AuditContext,
    ) -> Result<(DeactivatedChannel, u64), StoreError> {
        let purge_at = now.plus(keep_for);
        let audit = by
            .event(now, actions::CHANNEL_DEACTIVATED, "channel", id)
            .with_detail(serde_json::json!({ "purge_at": purge_at.to_rfc3339() }));
        let deactivated = self.data.deactivate_channel(ws, id, now, purge_at, &audit).await?;
        self.active_channels.forget(|key| *key == (ws, id));
        match deactivated {
            Some(cancelled) => match self.channel(ws, id).await? {
                ChannelEntry::Deactivated(channel) => Ok((channel, cancelled)),
                ChannelEntry::Active(_) => Err(StoreError::Conflict("the channel was reactivated meanwhile")),
            },
            None => match self.channel_use(ws, id).await? {
                ChannelUse::Missing => Err(StoreError::NotFound),
                _ => Err(StoreError::Conflict("the channel is already deactivated")),
            },
        }
    }

    /// Puts a deactivated channel back in use, before its `purge_at` (after it, the purger may
    /// already be removing it). Notifications cancelled by the deactivation stay cancelled.
    pub async fn reactivate_channel(
        &self,
        ws: WorkspaceId,
        id: ChannelId,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<Channel, StoreError> {
        let audit = by.event(now, actions::CHANNEL_REACTIVATED, "channel", id);
        if !self.data.reactivate_channel(ws, id, now, &audit).await? {
            return match self.channel_use(ws, id).await? {
                ChannelUse::Missing => Err(StoreError::NotFound),
                ChannelUse::Active => Err(StoreError::Conflict("the channel is active")),
                ChannelUse::Deactivated => {
                    Err(StoreError::Conflict("the channel's reactivation window has ended; it is being purged"))
                }
            };
        }
        match self.channel(ws, id).await? {
            ChannelEntry::Active(channel) => Ok(channel),
            ChannelEntry::Deactivated(_) => Err(StoreError::Conflict("the channel was deactivated meanwhile")),
        }
    }

    /// Purges deactivated channels whose time has come (skipping `frozen` workspaces): the
    /// signing secret, then the notifications and attempts a batch at a time, then the channel
    /// row with its audit entry. Returns how many channels were purged.
    pub async fn purge_deactivated_channels(
        &self,
        now: Timestamp,
        frozen: &std::collections::BTreeSet<WorkspaceId>,
        batch: u32,
    ) -> Result<u64, StoreError> {
        let mut purged = 0;
        for (ws, id) in self.data.channels_to_purge(now, batch).await? {
            // Marked first: a node whose clock is behind can no longer reactivate the channel
            // once its secret may be gone.
            if frozen.contains(&ws) || !self.data.start_channel_purge(ws, id, now).await? {
                continue;
            }
            self.vault.delete_secret(ws, &id.to_string(), SIGNING_SECRET_KIND).await?;
            self.signing_secrets.forget(|key| *key == (ws, id));
            let (mut notifications, mut attempts) = (0, 0);
            while let Some((n, a)) = self.data.purge_channel_batch(ws, id, now, batch).await? {
                notifications += n;
                attempts += a;
                if n < u64::from(batch) {
                    break;
                }
            }
            let audit = AuditContext::system()
                .event(now, actions::CHANNEL_PURGED, "channel", id)
                .with_detail(serde_json::json!({ "notifications": notifications, "attempts": attempts }));
            if self.data.delete_purged_channel(ws, id, now, &audit).await? {
                purged += 1;
            }
        }
        Ok(purged)
    }

    /// Notifications go only to an active channel of the workspace: answered from the node's
    /// cache of channels seen active when it can be. The cache only saves the read: the insert
    /// itself checks the channel again ([`Store::recheck_channel`] answers for a refused insert).
    pub(crate) async fn require_active_channel(&self, ws: WorkspaceId, id: ChannelId) -> Result<(), StoreError> {
        if self.active_channels.get(&(ws, id), self.keyring.now()).is_some() {
            return Ok(());
        }
        match self.channel_use(ws, id).await? {
            ChannelUse::Active => Ok(()),
            ChannelUse::Missing => Err(StoreError::NotFound),
            ChannelUse::Deactivated => Err(StoreError::Conflict(CHANNEL_DEACTIVATED)),
        }
    }

    /// After an insert refused because a channel was deactivated (on another node, or since
    /// the request was checked): the channel's cached state is dropped and read again, so the
    /// error says why (`Ok` if it is active again).
    pub(crate) async fn recheck_channel(&self, ws: WorkspaceId, id: ChannelId) -> Result<(), StoreError> {
        self.active_channels.forget(|key| *key == (ws, id));
        self.require_active_channel(ws, id).await
    }

    /// Whether a channel can take notifications, read now.
    pub async fn channel_use(&self, ws: WorkspaceId, id: ChannelId) -> Result<ChannelUse, StoreError> {
        Ok(match self.data.channel(ws, id).await? {
            None => ChannelUse::Missing,
            Some(row) if row.deactivated_at.is_some() => ChannelUse::Deactivated,
            Some(_) => {
                self.active_channels.insert((ws, id), Arc::new(()), self.keyring.now());
                ChannelUse::Active
            }
        })
    }

    /// A channel's webhook signing secret (cached: a channel's secret never changes; it goes
    /// with the channel's purge or the workspace's erasure, which drop it here too).
    pub async fn signing_secret(&self, ws: WorkspaceId, channel: ChannelId) -> Result<Arc<SigningSecret>, StoreError> {
        let now = self.keyring.now();
        if let Some(secret) = self.signing_secrets.get(&(ws, channel), now) {
            return Ok(secret);
        }
        let id_text = channel.to_string();
        let sealed = self.vault.secret(ws, &id_text, SIGNING_SECRET_KIND).await?.ok_or(StoreError::NotFound)?;
        let plain = self
            .open(KeyDomain::Vault, Aad { workspace: ws, table: "secrets", column: "secret", row: &id_text }, &sealed)
            .await?;
        let secret = Arc::new(SigningSecret::from_bytes(&plain));
        self.signing_secrets.insert((ws, channel), secret.clone(), now);
        Ok(secret)
    }
}
