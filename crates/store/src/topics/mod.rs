//! Topics: named groups of a workspace's subscribers that an event can fan out to.

mod rows;
pub(crate) mod sql;

pub use rows::{TopicRow, TopicRows};

use chimatic_domain::{SubscriberId, Timestamp, TopicId, WorkspaceId};

use crate::{Store, StoreError};

impl Store {
    pub async fn create_topic(&self, ws: WorkspaceId, key: &str, now: Timestamp) -> Result<TopicRow, StoreError> {
        let row = TopicRow { id: TopicId::generate(), key: key.into(), created_at: now };
        if !self.data.insert_topic(ws, &row).await? {
            return Err(StoreError::Conflict("a topic with this key already exists"));
        }
        Ok(row)
    }

    pub async fn topic(&self, ws: WorkspaceId, id: TopicId) -> Result<TopicRow, StoreError> {
        self.data.topic(ws, id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn topic_by_key(&self, ws: WorkspaceId, key: &str) -> Result<Option<TopicRow>, StoreError> {
        self.data.topic_by_key(ws, key).await
    }

    pub async fn list_topics(&self, ws: WorkspaceId) -> Result<Vec<TopicRow>, StoreError> {
        self.data.list_topics(ws).await
    }

    /// Adds subscribers to a topic; ids that are not this workspace's subscribers are ignored.
    pub async fn add_topic_subscribers(
        &self,
        ws: WorkspaceId,
        topic: TopicId,
        subscribers: &[SubscriberId],
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        self.topic(ws, topic).await?;
        self.data.add_topic_subscribers(ws, topic, subscribers, now).await
    }

    pub async fn remove_topic_subscribers(
        &self,
        ws: WorkspaceId,
        topic: TopicId,
        subscribers: &[SubscriberId],
    ) -> Result<u64, StoreError> {
        self.topic(ws, topic).await?;
        self.data.remove_topic_subscribers(ws, topic, subscribers).await
    }

    /// A page of a topic's members, in id order after `after`.
    pub async fn topic_subscribers(
        &self,
        ws: WorkspaceId,
        topic: TopicId,
        after: Option<SubscriberId>,
        limit: u32,
    ) -> Result<Vec<SubscriberId>, StoreError> {
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        self.data.topic_subscribers(ws, topic, &after, limit).await
    }

    pub async fn topic_size(&self, ws: WorkspaceId, topic: TopicId) -> Result<u64, StoreError> {
        self.data.topic_size(ws, topic).await
    }
}
