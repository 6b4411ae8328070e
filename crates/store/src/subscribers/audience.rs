//! The subscribers an event goes to, opened together: one read each for their rows, their keys
//! (in the vault) and their channels, however many there are. Their keys stay in the
//! [`Audience`], so their messages are sealed without reading the keys again.

use std::collections::HashMap;

use chimatic_crypto::Dek;
use chimatic_domain::{SubscriberId, WorkspaceId};

use super::{SUBSCRIBER_KEY_KIND, SubscriberChannelRow};
use crate::records::{Subscriber, SubscriberChannel};
use crate::{Store, StoreError};

/// A subscriber an event is planned for, with its channels.
pub struct Recipient {
    /// Position in the request's `to` (or the fan-out's page), for reporting skips.
    pub index: usize,
    pub subscriber: Subscriber,
    pub channels: Vec<SubscriberChannel>,
}

/// Opened recipients and the keys their messages are sealed with.
#[derive(Default)]
pub struct Audience {
    pub recipients: Vec<Recipient>,
    keys: HashMap<SubscriberId, Dek>,
}

impl Audience {
    /// The key of a recipient; `NotFound` for a subscriber not in this audience.
    pub(crate) fn key(&self, subscriber: SubscriberId) -> Result<&Dek, StoreError> {
        self.keys.get(&subscriber).ok_or(StoreError::NotFound)
    }
}

impl Store {
    /// Opens these subscribers (each with its position) and their channels. A subscriber that
    /// is not there any more (erased since it was named or joined a topic) is left out.
    pub async fn audience(&self, ws: WorkspaceId, members: &[(usize, SubscriberId)]) -> Result<Audience, StoreError> {
        let mut audience = Audience::default();
        if members.is_empty() {
            return Ok(audience);
        }
        let ids: Vec<SubscriberId> = members.iter().map(|(_, id)| *id).collect();
        let rows: HashMap<SubscriberId, _> =
            self.data.subscribers(ws, &ids).await?.into_iter().map(|row| (row.id, row)).collect();
        let in_vault: Vec<String> =
            rows.values().filter(|row| row.subscriber_key.is_empty()).map(|row| row.id.to_string()).collect();
        let sealed: HashMap<String, Vec<u8>> =
            self.vault.secrets(ws, in_vault, SUBSCRIBER_KEY_KIND).await?.into_iter().collect();
        let mut channels: HashMap<SubscriberId, Vec<SubscriberChannelRow>> = HashMap::new();
        for row in self.data.channels_of_subscribers(ws, &ids).await? {
            channels.entry(row.subscriber_id).or_default().push(row);
        }
        for (index, id) in members {
            let Some(row) = rows.get(id) else { continue };
            let key = match self.open_subscriber_key(ws, row, sealed.get(&id.to_string()).map(Vec::as_slice)).await {
                Ok(key) => key,
                Err(StoreError::NotFound) => continue,
                Err(e) => return Err(e),
            };
            let opened = channels
                .get(id)
                .into_iter()
                .flatten()
                .map(|c| Self::open_subscriber_channel(ws, &key, c))
                .collect::<Result<Vec<_>, _>>()?;
            audience.recipients.push(Recipient {
                index: *index,
                subscriber: self.open_subscriber(ws, &key, row)?,
                channels: opened,
            });
            audience.keys.insert(*id, key);
        }
        Ok(audience)
    }
}
