//! The directory part of a region's [`Store`]: subscribers and their channels, encrypted under
//! each subscriber's own key, and provider integrations, whose credentials go only to the vault.

use chimatic_audit::{AuditContext, actions};
use chimatic_crypto::{Aad, Dek};
use chimatic_domain::{
    ChannelAddress, EventId, FanoutId, NotificationId, Preferences, RenderedMessage, Sensitive, StoredAddress,
    SubscriberChannelId, SubscriberId, Timestamp, TopicId, WorkflowId, WorkspaceId,
};

use super::Store;

use crate::keyring::KeyDomain;
use crate::records::{Notification, PlannedMessage, Subscriber, SubscriberChannel};
use crate::{
    ErasureCounts, FanoutProgress, FanoutRow, MessageRoute, NewEvent, NewNotificationRow, StoreError,
    SubscriberChannelRow, SubscriberRow, Target,
};

const EXTERNAL_ID_INDEX: &[u8] = b"subscriber-external-id";
const SUBSCRIBER_KEY_KIND: &str = "subscriber_key";

impl Store {
    /// The subscriber's own key. It lives in the vault (the key store), not next to the data it
    /// protects: erasing the subscriber deletes it there, and a copy of the notification store
    /// taken earlier holds nothing that opens that subscriber's data. `NotFound` once erased.
    /// (Rows from before the key moved to the vault carry it wrapped in `subscriber_key`.)
    async fn subscriber_key(&self, ws: WorkspaceId, row: &SubscriberRow) -> Result<Dek, StoreError> {
        let id = row.id.to_string();
        if !row.subscriber_key.is_empty() {
            let aad = Aad { workspace: ws, table: "subscribers", column: "subscriber_key", row: &id };
            let material = self.open(KeyDomain::Data, aad, &row.subscriber_key).await?;
            return Ok(Dek::from_bytes(&material, 1)?);
        }
        let sealed = self.vault.secret(ws, &id, SUBSCRIBER_KEY_KIND).await?.ok_or(StoreError::NotFound)?;
        let aad = Aad { workspace: ws, table: "secrets", column: SUBSCRIBER_KEY_KIND, row: &id };
        let material = Sensitive::new(self.open(KeyDomain::Vault, aad, &sealed).await?);
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

    pub async fn subscriber_by_external_id(
        &self,
        ws: WorkspaceId,
        external_id: &Sensitive<String>,
    ) -> Result<Option<Subscriber>, StoreError> {
        let external_key = self.index_key(ws).await?.blind_index(EXTERNAL_ID_INDEX, external_id.expose().as_bytes());
        let Some(row) = self.data.subscriber_by_external_key(ws, &external_key).await? else { return Ok(None) };
        let key = self.subscriber_key(ws, &row).await?;
        Ok(Some(self.open_subscriber(ws, &key, &row)?))
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

    fn open_subscriber_channel(
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
        Ok(SubscriberChannel { id: row.id, subscriber_id: row.subscriber_id, address, created_at: row.created_at })
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
        };
        let audit = by
            .event(now, actions::SUBSCRIBER_CHANNEL_CREATED, "subscriber_channel", id)
            .with_detail(serde_json::json!({ "subscriber_id": subscriber, "kind": row.kind }));
        self.data.insert_subscriber_channel(ws, &row, &audit).await?;
        Ok(SubscriberChannel { id, subscriber_id: subscriber, address, created_at: now })
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

    // ---- events and messages ----------------------------------------------------------------

    pub(crate) async fn subscriber_key_of(&self, ws: WorkspaceId, subscriber: SubscriberId) -> Result<Dek, StoreError> {
        let row = self.data.subscriber(ws, subscriber).await?.ok_or(StoreError::NotFound)?;
        self.subscriber_key(ws, &row).await
    }

    /// A message's rendered content and the address it goes to, both under the subscriber's key.
    pub(crate) async fn open_message(
        &self,
        ws: WorkspaceId,
        id: NotificationId,
        route: &MessageRoute,
        sealed: &[u8],
    ) -> Result<(RenderedMessage, ChannelAddress), StoreError> {
        let key = self.subscriber_key_of(ws, route.subscriber_id).await?;
        let id_text = id.to_string();
        let plain =
            key.decrypt(&Aad { workspace: ws, table: "notifications", column: "payload", row: &id_text }, sealed)?;
        let content: RenderedMessage =
            serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt("message content"))?;
        let channels = self.data.subscriber_channels(ws, route.subscriber_id).await?;
        let row = channels.iter().find(|c| c.id == route.subscriber_channel_id).ok_or(StoreError::NotFound)?;
        let channel = Self::open_subscriber_channel(ws, &key, row)?;
        Ok((content, channel.address))
    }

    /// Encrypts messages, each under its subscriber's key, into rows for one event.
    async fn seal_messages(
        &self,
        ws: WorkspaceId,
        event_id: EventId,
        messages: Vec<PlannedMessage>,
        now: Timestamp,
    ) -> Result<Vec<NewNotificationRow>, StoreError> {
        let mut keys: Vec<(SubscriberId, Dek)> = Vec::new();
        let mut rows = Vec::with_capacity(messages.len());
        for m in messages {
            let at = match keys.iter().position(|(s, _)| *s == m.subscriber_id) {
                Some(at) => at,
                None => {
                    keys.push((m.subscriber_id, self.subscriber_key_of(ws, m.subscriber_id).await?));
                    keys.len() - 1
                }
            };
            let key = &keys[at].1;
            let id = NotificationId::generate();
            let id_text = id.to_string();
            let plain = serde_json::to_vec(&m.content).map_err(|_| StoreError::Corrupt("message content"))?;
            let sealed =
                key.encrypt(&Aad { workspace: ws, table: "notifications", column: "payload", row: &id_text }, &plain)?;
            rows.push(NewNotificationRow {
                id,
                target: Target::Subscriber(MessageRoute {
                    event_id,
                    kind: m.kind,
                    subscriber_id: m.subscriber_id,
                    subscriber_channel_id: m.subscriber_channel_id,
                    integration_id: m.integration_id,
                    failover: m.failover,
                }),
                status: m.status,
                payload: sealed,
                idempotency_digest: None,
                created_at: now,
            });
        }
        Ok(rows)
    }

    /// Queues an event in one transaction: its messages to direct recipients (each encrypted
    /// under its subscriber's key) and a fan-out job per topic (the event's data under the
    /// workspace DEK). With an idempotency key used in the last 24 h, queues nothing and returns
    /// the original event's id.
    pub async fn enqueue_event(
        &self,
        ws: WorkspaceId,
        event_id: EventId,
        idempotency_key: Option<&Sensitive<String>>,
        messages: Vec<PlannedMessage>,
        topics: Vec<(TopicId, WorkflowId, Sensitive<Vec<u8>>)>,
        now: Timestamp,
    ) -> Result<(Option<EventId>, Vec<NotificationId>), StoreError> {
        let dek = self.write_key(KeyDomain::Data, ws).await?;
        let index = self.index_key(ws).await?;
        let digest = idempotency_key.map(|k| index.blind_index(b"event-idempotency", k.expose().as_bytes()));
        let rows = self.seal_messages(ws, event_id, messages, now).await?;
        let mut fanouts = Vec::with_capacity(topics.len());
        for (topic_id, workflow_id, data) in topics {
            let id = FanoutId::generate();
            let id_text = id.to_string();
            let sealed =
                dek.encrypt(&Aad { workspace: ws, table: "fanouts", column: "data", row: &id_text }, data.expose())?;
            fanouts.push(FanoutRow {
                id,
                event_id,
                topic_id,
                workflow_id,
                data: sealed,
                cursor: String::new(),
                lease_token: None,
                created_at: now,
            });
        }
        let ids: Vec<NotificationId> = rows.iter().map(|r| r.id).collect();
        let event = NewEvent { id: event_id, idempotency_digest: digest, rows, fanouts, created_at: now };
        let existing = self.data.insert_event(ws, &event, super::IDEMPOTENCY_WINDOW).await?;
        let ids = if existing.is_some() { Vec::new() } else { ids };
        Ok((existing, ids))
    }

    /// Claims one unfinished fan-out under a lease, with its event data decrypted.
    pub async fn claim_fanout(
        &self,
        now: Timestamp,
        lease: std::time::Duration,
    ) -> Result<Option<(WorkspaceId, FanoutRow, Sensitive<Vec<u8>>)>, StoreError> {
        let Some((ws, row)) = self.data.claim_fanout(now, now.plus(lease)).await? else { return Ok(None) };
        let id_text = row.id.to_string();
        let data = self
            .open(KeyDomain::Data, Aad { workspace: ws, table: "fanouts", column: "data", row: &id_text }, &row.data)
            .await?;
        Ok(Some((ws, row, Sensitive::new(data))))
    }

    /// Queues one batch of a fan-out, moves its cursor and extends its lease (`progress`);
    /// `false` if the lease was lost (another node took the job over).
    pub async fn fanout_batch(
        &self,
        ws: WorkspaceId,
        fanout: &FanoutRow,
        messages: Vec<PlannedMessage>,
        progress: &FanoutProgress,
    ) -> Result<bool, StoreError> {
        let rows = self.seal_messages(ws, fanout.event_id, messages, progress.now).await?;
        self.data.fanout_batch(ws, fanout, &rows, progress).await
    }

    /// A subscriber's in-app messages, newest first, and how many are unread.
    pub async fn inbox(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        before: Option<NotificationId>,
        limit: u32,
        archived: bool,
    ) -> Result<(Vec<Notification>, u64), StoreError> {
        if self.data.subscriber(ws, subscriber).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let rows = self.data.inbox(ws, subscriber, before, limit, archived).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.open_notification(ws, row).await?);
        }
        Ok((out, self.data.inbox_unread(ws, subscriber).await?))
    }

    /// Marks an in-app message read or unread, archived or not (each only if given).
    pub async fn mark_inbox(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        id: NotificationId,
        read: Option<bool>,
        archived: Option<bool>,
        now: Timestamp,
    ) -> Result<Notification, StoreError> {
        let stamp = |flag: Option<bool>| flag.map(|on| on.then_some(now));
        if !self.data.mark_inbox(ws, subscriber, id, stamp(read), stamp(archived)).await? {
            return Err(StoreError::NotFound);
        }
        self.notification(ws, id).await
    }
}
