//! The JSON form of entries, anchors and signed heads: the body of `GET /v1/audit` and each
//! line of a JSON Lines export, which `chimatic audit verify --file` reads back.

use chimatic_domain::{Timestamp, WorkspaceId};
use serde::{Deserialize, Serialize};

use crate::{Actor, AuditEntry, AuditEvent, Origin, Outcome, SignedHead, Stream, Target};

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportedEntry {
    pub workspace_id: WorkspaceId,
    pub stream: Stream,
    pub seq: u64,
    /// Milliseconds since the Unix epoch (hashed as such).
    pub at_ms: i64,
    /// The same instant, RFC 3339.
    pub at: String,
    pub actor: Actor,
    pub ip: String,
    pub user_agent: String,
    pub action: String,
    pub target: Target,
    pub outcome: Outcome,
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
    /// Hex SHA-256 of the previous entry.
    pub prev_hash: String,
    /// Hex SHA-256 of this entry's canonical encoding.
    pub hash: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportedAnchor {
    pub workspace_id: WorkspaceId,
    pub stream: Stream,
    pub seq: u64,
    pub hash: String,
    /// The next sequence number the store would use.
    pub next_seq: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportedHead {
    pub workspace_id: WorkspaceId,
    pub stream: Stream,
    pub anchor_seq: u64,
    pub anchor_hash: String,
    pub seq: u64,
    pub hash: String,
    pub signed_at_ms: i64,
    /// Hex Ed25519 public key.
    pub public_key: String,
    /// Hex Ed25519 signature.
    pub signature: String,
}

/// One line of a JSON Lines export.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ExportLine {
    Anchor(ExportedAnchor),
    Head(ExportedHead),
    Entry(ExportedEntry),
}

impl From<&AuditEntry> for ExportedEntry {
    fn from(e: &AuditEntry) -> Self {
        let ev = &e.event;
        Self {
            workspace_id: e.workspace_id,
            stream: e.stream,
            seq: e.seq,
            at_ms: ev.at.as_millis(),
            at: ev.at.to_rfc3339(),
            actor: ev.actor.clone(),
            ip: ev.origin.ip.clone(),
            user_agent: ev.origin.user_agent.clone(),
            action: ev.action.clone(),
            target: ev.target.clone(),
            outcome: ev.outcome,
            detail: serde_json::from_str(&ev.detail).unwrap_or(serde_json::Value::String(ev.detail.clone())),
            prev_hash: to_hex(&e.prev_hash),
            hash: to_hex(&e.hash),
        }
    }
}

impl ExportedEntry {
    /// Back to an entry. The detail is re-serialised compactly, which reproduces the stored text
    /// (it was written the same way), so the hash can be recomputed.
    pub fn to_entry(&self) -> Option<AuditEntry> {
        let detail = match &self.detail {
            serde_json::Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        Some(AuditEntry {
            workspace_id: self.workspace_id,
            stream: self.stream,
            seq: self.seq,
            event: AuditEvent {
                at: Timestamp(self.at_ms),
                actor: self.actor.clone(),
                origin: Origin { ip: self.ip.clone(), user_agent: self.user_agent.clone() },
                action: self.action.clone(),
                target: self.target.clone(),
                outcome: self.outcome,
                detail,
            },
            prev_hash: from_hex(&self.prev_hash)?,
            hash: from_hex(&self.hash)?,
        })
    }
}

impl From<&SignedHead> for ExportedHead {
    fn from(h: &SignedHead) -> Self {
        Self {
            workspace_id: h.workspace_id,
            stream: h.stream,
            anchor_seq: h.anchor_seq,
            anchor_hash: to_hex(&h.anchor_hash),
            seq: h.seq,
            hash: to_hex(&h.hash),
            signed_at_ms: h.signed_at.as_millis(),
            public_key: to_hex(&h.public_key),
            signature: to_hex(&h.signature),
        }
    }
}

impl ExportedHead {
    pub fn to_head(&self) -> Option<SignedHead> {
        Some(SignedHead {
            workspace_id: self.workspace_id,
            stream: self.stream,
            anchor_seq: self.anchor_seq,
            anchor_hash: from_hex(&self.anchor_hash)?,
            seq: self.seq,
            hash: from_hex(&self.hash)?,
            signed_at: Timestamp(self.signed_at_ms),
            public_key: from_hex(&self.public_key)?,
            signature: from_hex_vec(&self.signature)?,
        })
    }
}

pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn from_hex_vec(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|p| u8::from_str_radix(p, 16).ok())).collect()
}

/// Parses fixed-length hex (hashes and keys).
pub fn from_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    from_hex_vec(s)?.try_into().ok()
}
