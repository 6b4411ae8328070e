//! The `subscribers` and `subscriber_channels` tables: one body for both backends, except the
//! erasure, whose statement order differs on purpose (see `sql.rs`).

use chimatic_audit::{AuditEvent, Stream};
use chimatic_domain::{SubscriberChannelId, SubscriberId, Timestamp, WorkspaceId};

use super::sql;
use crate::db::{Arg, Audited, Columns, Db, args, execute_one, fetch_all, fetch_optional};
use crate::{PostgresBackend, SqliteBackend, StoreError};

#[derive(Clone)]
pub struct SubscriberRow {
    pub id: SubscriberId,
    pub external_key: [u8; 32],
    pub external_id: Vec<u8>,
    pub subscriber_key: Vec<u8>,
    pub attributes: Vec<u8>,
    pub preferences: Option<Vec<u8>>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone)]
pub struct SubscriberChannelRow {
    pub id: SubscriberChannelId,
    pub subscriber_id: SubscriberId,
    pub kind: String,
    pub address: Vec<u8>,
    pub created_at: Timestamp,
    /// An endpoint's own signing secrets, sealed under the subscriber key.
    pub signing_secrets: Option<Vec<u8>>,
    pub disabled_at: Option<Timestamp>,
}

/// What an erasure removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ErasureCounts {
    pub channels: u64,
    pub messages: u64,
    pub attempts: u64,
    pub topics: u64,
}

impl ErasureCounts {
    /// The erasure's audit entry, with these counts as its detail.
    pub(crate) fn audited(&self, mut event: AuditEvent) -> AuditEvent {
        event.detail = serde_json::json!({
            "channels": self.channels,
            "messages": self.messages,
            "attempts": self.attempts,
            "topics": self.topics,
        })
        .to_string();
        event
    }
}

/// A row of `id, external_key, external_id, subscriber_key, attributes, created_at,
/// updated_at, preferences`.
fn subscriber(r: &dyn Columns) -> Result<SubscriberRow, StoreError> {
    Ok(SubscriberRow {
        id: r.parsed(0, "subscriber id")?,
        external_key: r.digest(1, "subscriber external key")?,
        external_id: r.blob(2)?,
        subscriber_key: r.blob(3)?,
        attributes: r.blob(4)?,
        created_at: r.at(5)?,
        updated_at: r.at(6)?,
        preferences: r.opt_blob(7)?,
    })
}

/// A row of `id, subscriber_id, kind, address, created_at, signing_secrets, disabled_at`.
fn channel(r: &dyn Columns) -> Result<SubscriberChannelRow, StoreError> {
    Ok(SubscriberChannelRow {
        id: r.parsed(0, "subscriber channel id")?,
        subscriber_id: r.parsed(1, "subscriber id")?,
        kind: r.text(2)?,
        address: r.blob(3)?,
        created_at: r.at(4)?,
        signing_secrets: r.opt_blob(5)?,
        disabled_at: r.opt_at(6)?,
    })
}

#[async_trait::async_trait]
pub trait SubscriberRows: Db {
    /// `false` when the workspace already has a subscriber with this external key.
    async fn insert_subscriber(&self, ws: WorkspaceId, row: &SubscriberRow) -> Result<bool, StoreError> {
        let args = args![
            ws,
            row.id,
            &row.external_key,
            &row.external_id,
            &row.subscriber_key,
            &row.attributes,
            row.created_at,
            row.updated_at
        ];
        execute_one(self, &sql::INSERT, args, None).await
    }

    async fn subscriber(&self, ws: WorkspaceId, id: SubscriberId) -> Result<Option<SubscriberRow>, StoreError> {
        fetch_optional(self, &sql::BY_ID, args![ws, id], subscriber).await
    }

    /// These subscribers, in no particular order; ids that are not the workspace's are left out.
    async fn subscribers(&self, ws: WorkspaceId, ids: &[SubscriberId]) -> Result<Vec<SubscriberRow>, StoreError> {
        fetch_all(self, &sql::BY_IDS, args![ws, Arg::list(ids)], subscriber).await
    }

    /// The channels of these subscribers, by subscriber, oldest first.
    async fn channels_of_subscribers(
        &self,
        ws: WorkspaceId,
        ids: &[SubscriberId],
    ) -> Result<Vec<SubscriberChannelRow>, StoreError> {
        fetch_all(self, &sql::CHANNELS_OF, args![ws, Arg::list(ids)], channel).await
    }

    async fn subscriber_by_external_key(
        &self,
        ws: WorkspaceId,
        key: &[u8; 32],
    ) -> Result<Option<SubscriberRow>, StoreError> {
        fetch_optional(self, &sql::BY_EXTERNAL_KEY, args![ws, key], subscriber).await
    }

    async fn update_subscriber_attributes(
        &self,
        ws: WorkspaceId,
        id: SubscriberId,
        attributes: &[u8],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        execute_one(self, &sql::SET_ATTRIBUTES, args![ws, id, attributes, now], None).await
    }

    async fn update_subscriber_preferences(
        &self,
        ws: WorkspaceId,
        id: SubscriberId,
        preferences: &[u8],
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        execute_one(self, &sql::SET_PREFERENCES, args![ws, id, preferences, now], None).await
    }

    async fn list_subscribers(
        &self,
        ws: WorkspaceId,
        after: Option<SubscriberId>,
        limit: u32,
    ) -> Result<Vec<SubscriberRow>, StoreError> {
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        fetch_all(self, &sql::LIST, args![ws, after, limit], subscriber).await
    }

    /// Deletes a subscriber with its channels, messages (queue entries and attempts too) and
    /// topic memberships, in one transaction, and appends `audit` with the counts as its detail.
    async fn erase_subscriber(
        &self,
        ws: WorkspaceId,
        id: SubscriberId,
        audit: &AuditEvent,
    ) -> Result<ErasureCounts, StoreError>;

    async fn insert_subscriber_channel(
        &self,
        ws: WorkspaceId,
        row: &SubscriberChannelRow,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let args = args![
            ws,
            row.id,
            row.subscriber_id,
            &row.kind,
            &row.address,
            row.created_at,
            row.signing_secrets.as_deref()
        ];
        self.transaction(vec![crate::db::Step::new(&sql::INSERT_CHANNEL, args)], Audited::data(ws, audit)).await?;
        Ok(())
    }

    async fn subscriber_channels(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
    ) -> Result<Vec<SubscriberChannelRow>, StoreError> {
        fetch_all(self, &sql::CHANNELS, args![ws, subscriber], channel).await
    }

    /// Replaces an endpoint's signing secrets if they are still `expected`; `false` otherwise.
    async fn replace_signing_secrets(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        id: SubscriberChannelId,
        sealed: &[u8],
        expected: &[u8],
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let args = args![ws, subscriber, id, sealed, expected];
        execute_one(self, &sql::SET_SIGNING, args, Audited::data(ws, audit)).await
    }

    /// Disables (`Some`) or enables (`None`) a webhook endpoint; `false`: no such endpoint.
    async fn set_endpoint_disabled(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        id: SubscriberChannelId,
        disabled_at: Option<Timestamp>,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        execute_one(self, &sql::SET_DISABLED, args![ws, subscriber, id, disabled_at], Audited::data(ws, audit)).await
    }

    async fn delete_subscriber_channel(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        id: SubscriberChannelId,
        audit: &AuditEvent,
    ) -> Result<bool, StoreError> {
        execute_one(self, &sql::DELETE_CHANNEL, args![ws, subscriber, id], Audited::data(ws, audit)).await
    }
}

#[async_trait::async_trait]
impl SubscriberRows for SqliteBackend {
    async fn erase_subscriber(
        &self,
        ws: WorkspaceId,
        id: SubscriberId,
        audit: &AuditEvent,
    ) -> Result<ErasureCounts, StoreError> {
        let audit = audit.clone();
        self.write(move |tx| {
            let of = args![ws, id];
            let delete = |statement| crate::db::sqlite::run(tx, statement, &of);
            let attempts = delete(&sql::ERASE_ATTEMPTS)?;
            delete(&sql::ERASE_QUEUE)?;
            let messages = delete(&sql::ERASE_MESSAGES)?;
            let channels = delete(&sql::ERASE_CHANNELS)?;
            let topics = delete(&sql::ERASE_MEMBERSHIPS)?;
            delete(&sql::DELETE)?;
            let counts = ErasureCounts { channels, messages, attempts, topics };
            crate::audit::sqlite::append_one(tx, Stream::Data, ws, &counts.audited(audit))?;
            Ok(counts)
        })
        .await
    }
}

#[async_trait::async_trait]
impl SubscriberRows for PostgresBackend {
    async fn erase_subscriber(
        &self,
        ws: WorkspaceId,
        id: SubscriberId,
        audit: &AuditEvent,
    ) -> Result<ErasureCounts, StoreError> {
        let (w, s) = (ws.to_string(), id.to_string());
        let mut tx = self.pool.begin().await?;
        let delete = async |statement: &'static crate::db::Sql, tx: &mut sqlx::PgConnection| {
            sqlx::query(statement.postgres()).bind(&w).bind(&s).execute(tx).await.map(|r| r.rows_affected())
        };
        delete(&sql::ERASE_QUEUE, &mut tx).await?;
        let erased: Vec<String> =
            sqlx::query_scalar(sql::ERASE_MESSAGES.postgres()).bind(&w).bind(&s).fetch_all(&mut *tx).await?;
        let attempts = sqlx::query(sql::ERASE_ATTEMPTS_OF.postgres())
            .bind(&w)
            .bind(&erased)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let channels = delete(&sql::ERASE_CHANNELS, &mut tx).await?;
        let topics = delete(&sql::ERASE_MEMBERSHIPS, &mut tx).await?;
        delete(&sql::DELETE, &mut tx).await?;
        let counts = ErasureCounts { channels, messages: erased.len() as u64, attempts, topics };
        crate::audit::postgres::append_one(&mut tx, Stream::Data, ws, &counts.audited(audit.clone())).await?;
        tx.commit().await?;
        Ok(counts)
    }
}
