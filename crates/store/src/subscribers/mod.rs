//! Subscribers and their channels, encrypted under each subscriber's own key (kept in the
//! vault, so erasing a subscriber makes every earlier copy of their data unreadable), their
//! erasure, and the tokens that let a browser read one subscriber's inbox.

mod audience;
mod endpoints;
mod rows;
pub(crate) mod sql;
mod tokens;

pub use audience::{Audience, Recipient};
pub use rows::{ErasureCounts, SubscriberChannelRow, SubscriberRow, SubscriberRows};
pub use tokens::{SubscriberGrant, subscriber_token_workspace};

use chimatic_audit::{AuditContext, actions};
use chimatic_crypto::{Aad, Dek};
use chimatic_domain::{
    ChannelAddress, Preferences, Sensitive, StoredAddress, SubscriberChannelId, SubscriberId, Timestamp, WorkspaceId,
};

use crate::keys::KeyDomain;
use crate::records::{EndpointSigning, Subscriber, SubscriberChannel};
use crate::{Store, StoreError};

const EXTERNAL_ID_INDEX: &[u8] = b"subscriber-external-id";
const SUBSCRIBER_KEY_KIND: &str = "subscriber_key";

impl Store {
    /// The subscriber's own key. It lives in the vault (the key store), not next to the data it
    /// protects: erasing the subscriber deletes it there, and a copy of the notification store
    /// taken earlier holds nothing that opens that subscriber's data. `NotFound` once erased.
    /// (Rows from before the key moved to the vault carry it wrapped in `subscriber_key`.)
    pub(crate) async fn subscriber_key(&self, ws: WorkspaceId, row: &SubscriberRow) -> Result<Dek, StoreError> {
        let in_vault = if row.subscriber_key.is_empty() {
            self.vault.secret(ws, &row.id.to_string(), SUBSCRIBER_KEY_KIND).await?
        } else {
            None
        };
        self.open_subscriber_key(ws, row, in_vault.as_deref()).await
    }

    /// Unwraps a subscriber's key: `in_vault` is its sealed key as read from the vault.
    async fn open_subscriber_key(
        &self,
        ws: WorkspaceId,
        row: &SubscriberRow,
        in_vault: Option<&[u8]>,
    ) -> Result<Dek, StoreError> {
        let id = row.id.to_string();
        if !row.subscriber_key.is_empty() {
            let aad = Aad { workspace: ws, table: "subscribers", column: "subscriber_key", row: &id };
            let material = self.open(KeyDomain::Data, aad, &row.subscriber_key).await?;
            return Ok(Dek::from_bytes(&material, 1)?);
        }
        let sealed = in_vault.ok_or(StoreError::NotFound)?;
        let aad = Aad { workspace: ws, table: "secrets", column: SUBSCRIBER_KEY_KIND, row: &id };
        let material = Sensitive::new(self.open(KeyDomain::Vault, aad, sealed).await?);
        Ok(Dek::from_bytes(material.expose(), 1)?)
    }

    fn open_subscriber(&self, ws: WorkspaceId, key: &Dek, row: &SubscriberRow) -> Result<Subscriber, StoreError> {
        let id = row.id.to_string();
        let external = key
            .decrypt(&Aad { workspace: ws, table: "subscribers", column: "external_id", row: &id }, &row.external_id)?;
        let attributes =
            key.decrypt(&Aad { workspace: ws, table: "subscribers", column: "attributes", row: &id }, &row.attributes)?;
        let preferences = match &row.preferences {
            Some(sealed) => {
                let plain =
                    key.decrypt(&Aad { workspace: ws, table: "subscribers", column: "preferences", row: &id }, sealed)?;
                serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt("subscriber preferences"))?
            }
            None => Preferences::default(),
        };
        Ok(Subscriber {
            id: row.id,
            external_id: Sensitive::new(
                String::from_utf8(external.to_vec()).map_err(|_| StoreError::Corrupt("subscriber external id"))?,
            ),
            attributes: Sensitive::new(attributes.to_vec()),
            preferences,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }

    fn seal_attributes(ws: WorkspaceId, key: &Dek, id: SubscriberId, json: &[u8]) -> Result<Vec<u8>, StoreError> {
        let id = id.to_string();
        Ok(key.encrypt(&Aad { workspace: ws, table: "subscribers", column: "attributes", row: &id }, json)?)
    }

    /// Creates the subscriber the customer knows as `external_id`, or, if it exists, replaces
    /// its attributes when given. Returns the subscriber and whether it was created.
    pub async fn identify_subscriber(
        &self,
        ws: WorkspaceId,
        external_id: &Sensitive<String>,
        attributes: Option<Sensitive<Vec<u8>>>,
        now: Timestamp,
    ) -> Result<(Subscriber, bool), StoreError> {
        let external_key = self.index_key(ws).await?.blind_index(EXTERNAL_ID_INDEX, external_id.expose().as_bytes());
        // Twice at most: a concurrent create of the same subscriber makes our insert a no-op,
        // and the second pass updates the row that won.
        for _ in 0..2 {
            if let Some(row) = self.data.subscriber_by_external_key(ws, &external_key).await? {
                let key = self.subscriber_key(ws, &row).await?;
                if let Some(attributes) = &attributes {
                    let sealed = Self::seal_attributes(ws, &key, row.id, attributes.expose())?;
                    self.data.update_subscriber_attributes(ws, row.id, &sealed, now).await?;
                }
                let row = self.data.subscriber(ws, row.id).await?.ok_or(StoreError::NotFound)?;
                return Ok((self.open_subscriber(ws, &key, &row)?, false));
            }
            let id = SubscriberId::generate();
            let id_text = id.to_string();
            let material = Dek::generate_material()?;
            // The key goes to the vault first, so no subscriber exists without its key.
            let aad = Aad { workspace: ws, table: "secrets", column: SUBSCRIBER_KEY_KIND, row: &id_text };
            let sealed = self.seal(KeyDomain::Vault, aad, material.as_slice()).await?;
            self.vault.put_secret(ws, &id_text, SUBSCRIBER_KEY_KIND, &sealed, now).await?;
            let key = Dek::from_bytes(material.as_slice(), 1)?;
            let external = key.encrypt(
                &Aad { workspace: ws, table: "subscribers", column: "external_id", row: &id_text },
                external_id.expose().as_bytes(),
            )?;
            let json = attributes.as_ref().map(|a| a.expose().as_slice()).unwrap_or(b"{}");
            let row = SubscriberRow {
                id,
                external_key,
                external_id: external,
                subscriber_key: Vec::new(),
                attributes: Self::seal_attributes(ws, &key, id, json)?,
                preferences: None,
                created_at: now,
                updated_at: now,
            };
            if self.data.insert_subscriber(ws, &row).await? {
                return Ok((self.open_subscriber(ws, &key, &row)?, true));
            }
            // A concurrent create won: this id's key is not needed.
            self.vault.delete_secret(ws, &id_text, SUBSCRIBER_KEY_KIND).await?;
        }
        Err(StoreError::Conflict("the subscriber was changed concurrently; retry"))
    }

    /// GDPR erasure: destroys the subscriber's key first (its data is unreadable everywhere from
    /// then on, copies included), then deletes its channels, messages and their attempts, inbox
    /// and topic memberships, in one transaction. Other subscribers are untouched.
    pub async fn erase_subscriber(
        &self,
        ws: WorkspaceId,
        id: SubscriberId,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<ErasureCounts, StoreError> {
        if self.data.subscriber(ws, id).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        self.vault.delete_secret(ws, &id.to_string(), SUBSCRIBER_KEY_KIND).await?;
        self.data.erase_subscriber(ws, id, &by.event(now, actions::SUBSCRIBER_ERASED, "subscriber", id)).await
    }

    pub async fn subscriber(&self, ws: WorkspaceId, id: SubscriberId) -> Result<Subscriber, StoreError> {
        let row = self.data.subscriber(ws, id).await?.ok_or(StoreError::NotFound)?;
        let key = self.subscriber_key(ws, &row).await?;
        self.open_subscriber(ws, &key, &row)
    }

    /// The subscriber the customer knows as `external_id`, found by its keyed digest (nothing
    /// is decrypted).
    pub async fn subscriber_id_by_external_id(
        &self,
        ws: WorkspaceId,
        external_id: &Sensitive<String>,
    ) -> Result<Option<SubscriberId>, StoreError> {
        let external_key = self.index_key(ws).await?.blind_index(EXTERNAL_ID_INDEX, external_id.expose().as_bytes());
        Ok(self.data.subscriber_by_external_key(ws, &external_key).await?.map(|row| row.id))
    }

    /// Replaces a subscriber's opt-outs.
    pub async fn set_subscriber_preferences(
        &self,
        ws: WorkspaceId,
        id: SubscriberId,
        preferences: &Preferences,
        now: Timestamp,
    ) -> Result<Subscriber, StoreError> {
        let row = self.data.subscriber(ws, id).await?.ok_or(StoreError::NotFound)?;
        let key = self.subscriber_key(ws, &row).await?;
        let plain = serde_json::to_vec(preferences).map_err(|_| StoreError::Corrupt("subscriber preferences"))?;
        let id_text = id.to_string();
        let sealed =
            key.encrypt(&Aad { workspace: ws, table: "subscribers", column: "preferences", row: &id_text }, &plain)?;
        if !self.data.update_subscriber_preferences(ws, id, &sealed, now).await? {
            return Err(StoreError::NotFound);
        }
        let row = self.data.subscriber(ws, id).await?.ok_or(StoreError::NotFound)?;
        self.open_subscriber(ws, &key, &row)
    }

    pub async fn list_subscribers(
        &self,
        ws: WorkspaceId,
        after: Option<SubscriberId>,
        limit: u32,
    ) -> Result<Vec<Subscriber>, StoreError> {
        let rows = self.data.list_subscribers(ws, after, limit).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let key = self.subscriber_key(ws, &row).await?;
            out.push(self.open_subscriber(ws, &key, &row)?);
        }
        Ok(out)
    }

    pub async fn update_subscriber_attributes(
        &self,
        ws: WorkspaceId,
        id: SubscriberId,
        attributes: Sensitive<Vec<u8>>,
        now: Timestamp,
    ) -> Result<Subscriber, StoreError> {
        let row = self.data.subscriber(ws, id).await?.ok_or(StoreError::NotFound)?;
        let key = self.subscriber_key(ws, &row).await?;
        let sealed = Self::seal_attributes(ws, &key, id, attributes.expose())?;
        if !self.data.update_subscriber_attributes(ws, id, &sealed, now).await? {
            return Err(StoreError::NotFound);
        }
        let row = self.data.subscriber(ws, id).await?.ok_or(StoreError::NotFound)?;
        self.open_subscriber(ws, &key, &row)
    }

    pub(crate) fn open_subscriber_channel(
        ws: WorkspaceId,
        key: &Dek,
        row: &SubscriberChannelRow,
    ) -> Result<SubscriberChannel, StoreError> {
        let id = row.id.to_string();
        let aad = Aad { workspace: ws, table: "subscriber_channels", column: "address", row: &id };
        let plain = key.decrypt(&aad, &row.address)?;
        let stored: StoredAddress =
            serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt("subscriber channel address"))?;
        let address = ChannelAddress::from_stored(&stored).ok_or(StoreError::Corrupt("subscriber channel address"))?;
        if address.kind().as_str() != row.kind {
            return Err(StoreError::Corrupt("subscriber channel kind"));
        }
        let signing = row.signing_secrets.as_deref().map(|sealed| endpoints::open_signing(ws, key, row.id, sealed));
        Ok(SubscriberChannel {
            id: row.id,
            subscriber_id: row.subscriber_id,
            address,
            created_at: row.created_at,
            signing: signing.transpose()?,
            disabled_at: row.disabled_at,
        })
    }

    /// Adds a way to reach a subscriber; the address is encrypted under the subscriber's key.
    pub async fn add_subscriber_channel(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        address: ChannelAddress,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<SubscriberChannel, StoreError> {
        self.insert_subscriber_channel(ws, subscriber, address, None, now, by).await
    }

    /// The one insert of a subscriber channel, with an endpoint's own signing secrets if given.
    async fn insert_subscriber_channel(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        address: ChannelAddress,
        signing: Option<EndpointSigning>,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<SubscriberChannel, StoreError> {
        let sub = self.data.subscriber(ws, subscriber).await?.ok_or(StoreError::NotFound)?;
        let key = self.subscriber_key(ws, &sub).await?;
        let id = SubscriberChannelId::generate();
        let id_text = id.to_string();
        let plain = serde_json::to_vec(&address.to_stored()).map_err(|_| StoreError::Corrupt("channel address"))?;
        let sealed = key
            .encrypt(&Aad { workspace: ws, table: "subscriber_channels", column: "address", row: &id_text }, &plain)?;
        let row = SubscriberChannelRow {
            id,
            subscriber_id: subscriber,
            kind: address.kind().as_str().into(),
            address: sealed,
            created_at: now,
            signing_secrets: signing.as_ref().map(|s| endpoints::seal_signing(ws, &key, id, s)).transpose()?,
            disabled_at: None,
        };
        let audit = by
            .event(now, actions::SUBSCRIBER_CHANNEL_CREATED, "subscriber_channel", id)
            .with_detail(serde_json::json!({ "subscriber_id": subscriber, "kind": row.kind }));
        self.data.insert_subscriber_channel(ws, &row, &audit).await?;
        Ok(SubscriberChannel { id, subscriber_id: subscriber, address, created_at: now, signing, disabled_at: None })
    }

    pub async fn subscriber_channels(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
    ) -> Result<Vec<SubscriberChannel>, StoreError> {
        let sub = self.data.subscriber(ws, subscriber).await?.ok_or(StoreError::NotFound)?;
        let key = self.subscriber_key(ws, &sub).await?;
        let rows = self.data.subscriber_channels(ws, subscriber).await?;
        rows.iter().map(|row| Self::open_subscriber_channel(ws, &key, row)).collect()
    }

    pub async fn remove_subscriber_channel(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        id: SubscriberChannelId,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(), StoreError> {
        let audit = by
            .event(now, actions::SUBSCRIBER_CHANNEL_DELETED, "subscriber_channel", id)
            .with_detail(serde_json::json!({ "subscriber_id": subscriber }));
        if self.data.delete_subscriber_channel(ws, subscriber, id, &audit).await? {
            Ok(())
        } else {
            Err(StoreError::NotFound)
        }
    }
}
