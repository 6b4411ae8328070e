//! The `topics` and `topic_subscribers` tables: one body for both backends; the member lists
//! bind as arrays (see `sql.rs`).

use chimatic_domain::{SubscriberId, Timestamp, TopicId, WorkspaceId};

use super::sql;
use crate::db::{Arg, Columns, Db, args, execute_one, fetch_all, fetch_optional};
use crate::{PostgresBackend, SqliteBackend, StoreError};

#[derive(Clone)]
pub struct TopicRow {
    pub id: TopicId,
    pub key: String,
    pub created_at: Timestamp,
}

/// A row of `id, key, created_at`.
fn topic(r: &dyn Columns) -> Result<TopicRow, StoreError> {
    Ok(TopicRow { id: r.parsed(0, "topic id")?, key: r.text(1)?, created_at: r.at(2)? })
}

#[async_trait::async_trait]
pub trait TopicRows: Db {
    /// `false` if the workspace has a topic with that key already.
    async fn insert_topic(&self, ws: WorkspaceId, row: &TopicRow) -> Result<bool, StoreError> {
        execute_one(self, &sql::INSERT, args![ws, row.id, &row.key, row.created_at], None).await
    }

    async fn topic(&self, ws: WorkspaceId, id: TopicId) -> Result<Option<TopicRow>, StoreError> {
        fetch_optional(self, &sql::BY_ID, args![ws, id], topic).await
    }

    async fn topic_by_key(&self, ws: WorkspaceId, key: &str) -> Result<Option<TopicRow>, StoreError> {
        fetch_optional(self, &sql::BY_KEY, args![ws, key], topic).await
    }

    async fn list_topics(&self, ws: WorkspaceId) -> Result<Vec<TopicRow>, StoreError> {
        fetch_all(self, &sql::LIST, args![ws], topic).await
    }

    /// How many joined; ids that are not this workspace's subscribers are ignored.
    async fn add_topic_subscribers(
        &self,
        ws: WorkspaceId,
        topic: TopicId,
        subscribers: &[SubscriberId],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.execute(&sql::ADD_MEMBERS, args![ws, topic, Arg::list(subscribers), now], None).await
    }

    async fn remove_topic_subscribers(
        &self,
        ws: WorkspaceId,
        topic: TopicId,
        subscribers: &[SubscriberId],
    ) -> Result<u64, StoreError> {
        self.execute(&sql::REMOVE_MEMBERS, args![ws, topic, Arg::list(subscribers)], None).await
    }

    /// A page of members in id order after `after` ('' for the first).
    async fn topic_subscribers(
        &self,
        ws: WorkspaceId,
        topic: TopicId,
        after: &str,
        limit: u32,
    ) -> Result<Vec<SubscriberId>, StoreError> {
        fetch_all(self, &sql::MEMBERS, args![ws, topic, after, limit], |r| r.parsed(0, "subscriber id")).await
    }

    async fn topic_size(&self, ws: WorkspaceId, topic: TopicId) -> Result<u64, StoreError> {
        let n = fetch_optional(self, &sql::SIZE, args![ws, topic], |r| r.count(0)).await?;
        Ok(n.unwrap_or(0))
    }
}

impl TopicRows for SqliteBackend {}
impl TopicRows for PostgresBackend {}
