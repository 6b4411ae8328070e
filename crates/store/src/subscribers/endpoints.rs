//! Webhook endpoints a subscriber manages through the portal: subscriber channels of type
//! `webhook` with their own signing secrets (under the subscriber's key, so erasure shreds them
//! with the rest), rotated with an overlap, and disabled or enabled.

use std::time::Duration;

use chimatic_audit::{AuditContext, actions};
use chimatic_crypto::{Aad, Dek, SigningSecret};
use chimatic_domain::{
    ChannelAddress, Sensitive, SubscriberChannelId, SubscriberId, Timestamp, WebhookUrl, WorkspaceId,
};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::records::{EndpointSigning, SubscriberChannel};
use crate::{Store, StoreError};

/// The sealed form: secrets in their `whsec_…` text, times in milliseconds.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
struct SealedSigning {
    current: String,
    rotated_at: Option<i64>,
    previous: Option<String>,
    previous_until: Option<i64>,
}

fn aad<'a>(ws: WorkspaceId, row: &'a str) -> Aad<'a> {
    Aad { workspace: ws, table: "subscriber_channels", column: "signing_secrets", row }
}

pub(super) fn seal_signing(
    ws: WorkspaceId,
    key: &Dek,
    id: SubscriberChannelId,
    signing: &EndpointSigning,
) -> Result<Vec<u8>, StoreError> {
    let sealed = SealedSigning {
        current: signing.current.to_text().into_inner(),
        rotated_at: signing.rotated_at.map(|t| t.0),
        previous: signing.previous.as_ref().map(|(s, _)| s.to_text().into_inner()),
        previous_until: signing.previous.as_ref().map(|(_, until)| until.0),
    };
    let plain = Zeroizing::new(serde_json::to_vec(&sealed).map_err(|_| StoreError::Corrupt("endpoint secrets"))?);
    Ok(key.encrypt(&aad(ws, &id.to_string()), &plain)?)
}

pub(super) fn open_signing(
    ws: WorkspaceId,
    key: &Dek,
    id: SubscriberChannelId,
    sealed: &[u8],
) -> Result<EndpointSigning, StoreError> {
    let plain = key.decrypt(&aad(ws, &id.to_string()), sealed)?;
    let corrupt = || StoreError::Corrupt("endpoint secrets");
    let s: SealedSigning = serde_json::from_slice(&plain).map_err(|_| corrupt())?;
    let previous = match (&s.previous, s.previous_until) {
        (Some(text), Some(until)) => Some((SigningSecret::parse(text).map_err(|_| corrupt())?, Timestamp(until))),
        (None, None) => None,
        _ => return Err(corrupt()),
    };
    Ok(EndpointSigning {
        current: SigningSecret::parse(&s.current).map_err(|_| corrupt())?,
        rotated_at: s.rotated_at.map(Timestamp),
        previous,
    })
}

impl Store {
    /// The subscriber's webhook endpoints (its `webhook` channels), oldest first.
    pub async fn subscriber_endpoints(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
    ) -> Result<Vec<SubscriberChannel>, StoreError> {
        let mut channels = self.subscriber_channels(ws, subscriber).await?;
        channels.retain(|c| matches!(c.address, ChannelAddress::Webhook(_)));
        Ok(channels)
    }

    /// One of the subscriber's webhook endpoints; `NotFound` for any other channel.
    pub async fn subscriber_endpoint(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        id: SubscriberChannelId,
    ) -> Result<SubscriberChannel, StoreError> {
        self.subscriber_endpoints(ws, subscriber).await?.into_iter().find(|c| c.id == id).ok_or(StoreError::NotFound)
    }

    /// Adds a webhook endpoint with its own signing secret, returned here once.
    pub async fn add_subscriber_endpoint(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        url: WebhookUrl,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(SubscriberChannel, Sensitive<String>), StoreError> {
        let secret = SigningSecret::generate()?;
        let text = secret.to_text();
        let signing = Some(EndpointSigning::new(secret));
        let channel =
            self.insert_subscriber_channel(ws, subscriber, ChannelAddress::Webhook(url), signing, now, by).await?;
        Ok((channel, text))
    }

    /// Gives an endpoint a new signing secret (returned here once). The one it replaces keeps
    /// signing, as a second signature, for `overlap`. An endpoint signed with the workspace's
    /// secret has none of its own to rotate: `Conflict`.
    pub async fn rotate_endpoint_secret(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        id: SubscriberChannelId,
        overlap: Duration,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<(SubscriberChannel, Sensitive<String>), StoreError> {
        let sub = self.data.subscriber(ws, subscriber).await?.ok_or(StoreError::NotFound)?;
        let key = self.subscriber_key(ws, &sub).await?;
        let rows = self.data.subscriber_channels(ws, subscriber).await?;
        let row = rows.iter().find(|r| r.id == id && r.kind == "webhook").ok_or(StoreError::NotFound)?;
        let expected = row.signing_secrets.as_deref().ok_or(StoreError::Conflict(
            "this endpoint is signed with the workspace's webhook secret; it has no secret of its own to rotate",
        ))?;
        let old = open_signing(ws, &key, id, expected)?;
        let secret = SigningSecret::generate()?;
        let text = secret.to_text();
        let until = now.plus(overlap);
        let signing = EndpointSigning {
            current: secret,
            rotated_at: Some(now),
            previous: (until > now).then_some((old.current, until)),
        };
        let sealed = seal_signing(ws, &key, id, &signing)?;
        let audit = by
            .event(now, actions::SUBSCRIBER_CHANNEL_SECRET_ROTATED, "subscriber_channel", id)
            .with_detail(serde_json::json!({ "subscriber_id": subscriber, "overlap_seconds": overlap.as_secs() }));
        if !self.data.replace_signing_secrets(ws, subscriber, id, &sealed, expected, &audit).await? {
            return Err(StoreError::Conflict("the endpoint's secret was rotated concurrently; retry"));
        }
        let mut channel = Self::open_subscriber_channel(ws, &key, row)?;
        channel.signing = Some(signing);
        Ok((channel, text))
    }

    /// Disables (nothing more is sent to it; deliveries still queued fail at their turn as
    /// `endpoint_disabled`, without a request) or enables an endpoint. Audited.
    pub async fn set_endpoint_enabled(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        id: SubscriberChannelId,
        enabled: bool,
        now: Timestamp,
        by: &AuditContext,
    ) -> Result<SubscriberChannel, StoreError> {
        let mut channel = self.subscriber_endpoint(ws, subscriber, id).await?;
        let (action, disabled_at) = match enabled {
            true => (actions::SUBSCRIBER_CHANNEL_ENABLED, None),
            false => (actions::SUBSCRIBER_CHANNEL_DISABLED, Some(channel.disabled_at.unwrap_or(now))),
        };
        let audit = by
            .event(now, action, "subscriber_channel", id)
            .with_detail(serde_json::json!({ "subscriber_id": subscriber }));
        if !self.data.set_endpoint_disabled(ws, subscriber, id, disabled_at, &audit).await? {
            return Err(StoreError::NotFound);
        }
        channel.disabled_at = disabled_at;
        Ok(channel)
    }
}
