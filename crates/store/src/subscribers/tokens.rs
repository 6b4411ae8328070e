//! Subscriber tokens: short-lived credentials a customer's backend hands to a browser so it can
//! read one subscriber's inbox without the API key. `sbt_<payload>.<mac>`, both base64url; the
//! MAC is an HMAC-SHA256 under a key derived from the workspace DEK, so only the workspace's
//! region can issue or check them, and a token names exactly one subscriber until it expires.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chimatic_domain::{Sensitive, SubscriberId, SubscriberScope, Timestamp, WorkspaceId};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::Store;
use crate::StoreError;

const PREFIX: &str = "sbt_";
const MAC_DOMAIN: &[u8] = b"subscriber-token";

#[derive(Serialize, Deserialize)]
struct Claims {
    w: WorkspaceId,
    s: SubscriberId,
    /// Expiry, milliseconds since the epoch.
    e: i64,
    /// What it opens; absent (tokens issued before scopes): the inbox.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    k: Option<Vec<SubscriberScope>>,
}

/// A verified token: whose it is and what it opens.
pub struct SubscriberGrant {
    pub workspace_id: WorkspaceId,
    pub subscriber_id: SubscriberId,
    pub scopes: Vec<SubscriberScope>,
}

fn split(token: &str) -> Option<(&str, &str, Claims)> {
    let (payload, mac) = token.strip_prefix(PREFIX)?.split_once('.')?;
    let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    Some((payload, mac, claims))
}

/// The workspace a token claims to belong to, unverified: only for finding its region.
pub fn subscriber_token_workspace(token: &str) -> Option<WorkspaceId> {
    split(token).map(|(_, _, c)| c.w)
}

impl Store {
    /// Issues a token for one subscriber that opens `scopes`, valid until `expires_at`.
    pub async fn issue_subscriber_token(
        &self,
        ws: WorkspaceId,
        subscriber: SubscriberId,
        scopes: &[SubscriberScope],
        expires_at: Timestamp,
    ) -> Result<Sensitive<String>, StoreError> {
        if self.data.subscriber(ws, subscriber).await?.is_none() {
            return Err(StoreError::NotFound);
        }
        let claims = Claims { w: ws, s: subscriber, e: expires_at.0, k: Some(scopes.to_vec()) };
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).map_err(|_| StoreError::Corrupt("token claims"))?);
        let mac = URL_SAFE_NO_PAD.encode(self.index_key(ws).await?.blind_index(MAC_DOMAIN, payload.as_bytes()));
        Ok(Sensitive::new(format!("{PREFIX}{payload}.{mac}")))
    }

    /// Whose a valid, unexpired token of this region is and what it opens; `None` for
    /// anything else (malformed, forged, expired, or the subscriber is gone).
    pub async fn verify_subscriber_token(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<Option<SubscriberGrant>, StoreError> {
        let Some((payload, mac, claims)) = split(token) else { return Ok(None) };
        let Ok(mac) = URL_SAFE_NO_PAD.decode(mac) else { return Ok(None) };
        // A workspace this region does not hold has no keys: not a token of ours.
        let dek = match self.index_key(claims.w).await {
            Ok(dek) => dek,
            Err(StoreError::NotFound | StoreError::Crypto(chimatic_crypto::CryptoError::Integrity)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let expected = dek.blind_index(MAC_DOMAIN, payload.as_bytes());
        if !bool::from(expected.as_slice().ct_eq(&mac)) || claims.e <= now.0 {
            return Ok(None);
        }
        if self.data.subscriber(claims.w, claims.s).await?.is_none() {
            return Ok(None);
        }
        let scopes = claims.k.unwrap_or_else(|| vec![SubscriberScope::Inbox]);
        Ok(Some(SubscriberGrant { workspace_id: claims.w, subscriber_id: claims.s, scopes }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_tokens_do_not_parse() {
        for bad in ["", "sbt_", "sbt_abc", "xyz_a.b", "sbt_!!!.abc", "sbt_e30.abc"] {
            assert!(split(bad).is_none(), "{bad:?}");
        }
    }
}
