//! What providers report back: verified inbound webhooks (kept 30 days) and the per-workspace
//! suppression list they feed. Addresses are found by a keyed digest and kept only encrypted.

use std::collections::HashSet;

use chimatic_crypto::{Aad, Dek};
use chimatic_domain::{
    ChannelAddress, InboundEventId, IntegrationId, StoredAddress, SubscriberChannelId, SuppressionId, Timestamp,
    WorkspaceId,
};
use serde::{Deserialize, Serialize};

use crate::keys::KeyDomain;
use crate::records::SubscriberChannel;
use crate::{Store, StoreError};

mod rows;
pub(crate) mod sql;

pub use rows::{FeedbackRows, InboundEventRow, SuppressionRow};

const ADDRESS_INDEX: &[u8] = b"suppression-address";
const PROVIDER_EVENT_INDEX: &[u8] = b"inbound-provider-event";

/// An address the workspace no longer sends to.
pub struct Suppression {
    pub id: SuppressionId,
    pub address: ChannelAddress,
    /// `hard_bounce`, `complaint`, `unsubscribed` or `manual`.
    pub reason: String,
    /// The integration whose provider reported it, if one did.
    pub integration_id: Option<IntegrationId>,
    pub created_at: Timestamp,
}

/// What a verified inbound webhook said, as stored (encrypted).
#[derive(Serialize, Deserialize)]
struct InboundDetail {
    pub provider_status: String,
    pub code: Option<String>,
    pub recipients: Vec<StoredAddress>,
}

pub struct InboundEvent {
    pub id: InboundEventId,
    pub integration_id: IntegrationId,
    /// `delivered`, `hard_bounce`, `soft_bounce`, `complaint`, `permanent_failure`, `failure`, `other`.
    pub kind: String,
    /// `suppressed` when it put its recipients on the suppression list, else `recorded`.
    pub outcome: String,
    pub provider_status: String,
    pub code: Option<String>,
    pub recipients: Vec<ChannelAddress>,
    pub received_at: Timestamp,
}

/// An inbound webhook to record.
pub struct NewInbound<'a> {
    pub integration_id: IntegrationId,
    pub provider_event_id: &'a str,
    pub kind: &'static str,
    pub provider_status: &'a str,
    pub code: Option<&'a str>,
    pub recipients: &'a [ChannelAddress],
    /// Suppress the recipients, for this reason.
    pub suppress: Option<&'static str>,
}

/// The digest input for an address: kind and address, case-folded (mailbox providers treat
/// local parts case-insensitively, so a bounce for `Ann@x` must also stop `ann@x`). Only email
/// and SMS addresses can bounce.
fn suppressible(address: &ChannelAddress) -> Option<String> {
    match address {
        ChannelAddress::Email(a) => Some(format!("email:{}", a.expose().to_lowercase())),
        ChannelAddress::Sms(p) => Some(format!("sms:{}", p.expose())),
        _ => None,
    }
}

impl Store {
    fn suppression_row(
        ws: WorkspaceId,
        dek: &Dek,
        index: &Dek,
        address: &ChannelAddress,
        reason: &str,
        integration_id: Option<IntegrationId>,
        now: Timestamp,
    ) -> Result<Option<SuppressionRow>, StoreError> {
        let Some(input) = suppressible(address) else { return Ok(None) };
        let id = SuppressionId::generate();
        let id_text = id.to_string();
        let plain = serde_json::to_vec(&address.to_stored()).map_err(|_| StoreError::Corrupt("address"))?;
        let sealed =
            dek.encrypt(&Aad { workspace: ws, table: "suppressions", column: "address", row: &id_text }, &plain)?;
        Ok(Some(SuppressionRow {
            id,
            kind: address.kind(),
            address_key: index.blind_index(ADDRESS_INDEX, input.as_bytes()),
            address: sealed,
            reason: reason.into(),
            integration_id,
            created_at: now,
        }))
    }

    /// Puts an address on the workspace's suppression list; `Conflict` if it is there already,
    /// `Invalid` for addresses that cannot bounce (Slack, webhooks, in-app).
    pub async fn suppress(
        &self,
        ws: WorkspaceId,
        address: &ChannelAddress,
        reason: &str,
        now: Timestamp,
    ) -> Result<Suppression, StoreError> {
        let dek = self.write_key(KeyDomain::Data, ws).await?;
        let index = self.index_key(ws).await?;
        let row = Self::suppression_row(ws, &dek, &index, address, reason, None, now)?
            .ok_or(StoreError::Invalid("only email and SMS addresses can be suppressed"))?;
        if !self.data.insert_suppression(ws, &row).await? {
            return Err(StoreError::Conflict("this address is already suppressed"));
        }
        Ok(Suppression {
            id: row.id,
            address: address.clone(),
            reason: row.reason,
            integration_id: None,
            created_at: now,
        })
    }

    /// Which of these channels are on their workspace's suppression list.
    pub async fn suppressed_channels(
        &self,
        ws: WorkspaceId,
        channels: &[&SubscriberChannel],
    ) -> Result<HashSet<SubscriberChannelId>, StoreError> {
        let mut keyed = Vec::new();
        let mut dek = None;
        for channel in channels {
            let Some(input) = suppressible(&channel.address) else { continue };
            if dek.is_none() {
                dek = Some(self.index_key(ws).await?);
            }
            if let Some(dek) = &dek {
                keyed.push((channel.id, dek.blind_index(ADDRESS_INDEX, input.as_bytes())));
            }
        }
        if keyed.is_empty() {
            return Ok(HashSet::new());
        }
        let keys: Vec<[u8; 32]> = keyed.iter().map(|(_, k)| *k).collect();
        let found: HashSet<[u8; 32]> = self.data.suppressed_keys(ws, &keys).await?.into_iter().collect();
        Ok(keyed.into_iter().filter(|(_, k)| found.contains(k)).map(|(id, _)| id).collect())
    }

    pub async fn list_suppressions(
        &self,
        ws: WorkspaceId,
        after: Option<SuppressionId>,
        limit: u32,
    ) -> Result<Vec<Suppression>, StoreError> {
        let rows = self.data.list_suppressions(ws, after, limit).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id_text = row.id.to_string();
            let aad = Aad { workspace: ws, table: "suppressions", column: "address", row: &id_text };
            let plain = self.open(KeyDomain::Data, aad, &row.address).await?;
            let stored: StoredAddress =
                serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt("suppressed address"))?;
            let address = ChannelAddress::from_stored(&stored).ok_or(StoreError::Corrupt("suppressed address"))?;
            if address.kind() != row.kind {
                return Err(StoreError::Corrupt("suppression kind"));
            }
            out.push(Suppression {
                id: row.id,
                address,
                reason: row.reason,
                integration_id: row.integration_id,
                created_at: row.created_at,
            });
        }
        Ok(out)
    }

    pub async fn delete_suppression(&self, ws: WorkspaceId, id: SuppressionId) -> Result<(), StoreError> {
        if self.data.delete_suppression(ws, id).await? { Ok(()) } else { Err(StoreError::NotFound) }
    }

    /// Records a verified inbound webhook and, if it says so, suppresses its recipients, in one
    /// transaction. `false`: this provider event was recorded before (a redelivery); nothing
    /// changes.
    pub async fn record_inbound(
        &self,
        ws: WorkspaceId,
        inbound: NewInbound<'_>,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let dek = self.write_key(KeyDomain::Data, ws).await?;
        let index = self.index_key(ws).await?;
        let mut suppressions = Vec::new();
        if let Some(reason) = inbound.suppress {
            for address in inbound.recipients {
                let integration = Some(inbound.integration_id);
                if let Some(row) = Self::suppression_row(ws, &dek, &index, address, reason, integration, now)? {
                    suppressions.push(row);
                }
            }
        }
        let id = InboundEventId::generate();
        let id_text = id.to_string();
        let detail = InboundDetail {
            provider_status: inbound.provider_status.into(),
            code: inbound.code.map(str::to_string),
            recipients: inbound.recipients.iter().map(ChannelAddress::to_stored).collect(),
        };
        let plain = serde_json::to_vec(&detail).map_err(|_| StoreError::Corrupt("inbound detail"))?;
        let sealed =
            dek.encrypt(&Aad { workspace: ws, table: "inbound_events", column: "detail", row: &id_text }, &plain)?;
        let event_input = format!("{}\0{}", inbound.integration_id, inbound.provider_event_id);
        let row = InboundEventRow {
            id,
            integration_id: inbound.integration_id,
            provider_event_key: index.blind_index(PROVIDER_EVENT_INDEX, event_input.as_bytes()),
            kind: inbound.kind.into(),
            outcome: if suppressions.is_empty() { "recorded" } else { "suppressed" }.into(),
            detail: sealed,
            received_at: now,
        };
        self.data.record_inbound(ws, &row, &suppressions).await
    }

    /// An integration's inbound webhooks, newest first.
    pub async fn inbound_events(
        &self,
        ws: WorkspaceId,
        integration: IntegrationId,
        before: Option<InboundEventId>,
        limit: u32,
    ) -> Result<Vec<InboundEvent>, StoreError> {
        let rows = self.data.inbound_events(ws, integration, before, limit).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let id_text = row.id.to_string();
            let aad = Aad { workspace: ws, table: "inbound_events", column: "detail", row: &id_text };
            let plain = self.open(KeyDomain::Data, aad, &row.detail).await?;
            let detail: InboundDetail =
                serde_json::from_slice(&plain).map_err(|_| StoreError::Corrupt("inbound detail"))?;
            let recipients = detail
                .recipients
                .iter()
                .map(|a| ChannelAddress::from_stored(a).ok_or(StoreError::Corrupt("inbound recipient")))
                .collect::<Result<_, _>>()?;
            out.push(InboundEvent {
                id: row.id,
                integration_id: row.integration_id,
                kind: row.kind,
                outcome: row.outcome,
                provider_status: detail.provider_status,
                code: detail.code,
                recipients,
                received_at: row.received_at,
            });
        }
        Ok(out)
    }

    /// Deletes inbound webhooks older than `retention`, up to `batch` of them; 0 when another
    /// node is running this job.
    pub async fn purge_inbound_events(
        &self,
        now: Timestamp,
        retention: std::time::Duration,
        batch: u32,
    ) -> Result<u64, StoreError> {
        Ok(self.data.purge_inbound_events(now.minus(retention), batch).await?.unwrap_or(0))
    }
}
