//! Entries in a chain and their hash.

use aws_lc_rs::digest;
use chimatic_domain::WorkspaceId;

use crate::{AuditEvent, GENESIS, Hash, Stream};

/// An event placed in its workspace's chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub workspace_id: WorkspaceId,
    pub stream: Stream,
    pub seq: u64,
    pub event: AuditEvent,
    pub prev_hash: Hash,
    pub hash: Hash,
}

/// SHA-256 over the canonical encoding: a version tag, then every field in a fixed order, each
/// as a 4-byte big-endian length followed by its bytes (integers as 8-byte big-endian). Any
/// change to any field, or to the link to the previous entry, changes the hash.
pub fn entry_hash(ws: WorkspaceId, stream: Stream, seq: u64, prev: &Hash, event: &AuditEvent) -> Hash {
    let mut ctx = digest::Context::new(&digest::SHA256);
    let mut field = |bytes: &[u8]| {
        ctx.update(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        ctx.update(bytes);
    };
    field(b"chimatic.audit.entry.v1");
    field(ws.to_string().as_bytes());
    field(stream.as_str().as_bytes());
    field(&seq.to_be_bytes());
    field(prev);
    field(&event.at.as_millis().to_be_bytes());
    field(event.actor.kind.as_str().as_bytes());
    field(event.actor.id.as_bytes());
    field(event.actor.name.as_bytes());
    field(event.origin.ip.as_bytes());
    field(event.origin.user_agent.as_bytes());
    field(event.action.as_bytes());
    field(event.target.kind.as_bytes());
    field(event.target.id.as_bytes());
    field(event.outcome.as_str().as_bytes());
    field(event.detail.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Where a chain stands: the next sequence number and the hash the next entry links to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainTip {
    pub next_seq: u64,
    pub head_hash: Hash,
}

impl Default for ChainTip {
    fn default() -> Self {
        Self { next_seq: 1, head_hash: GENESIS }
    }
}

impl ChainTip {
    /// Places `event` at the end of the chain and moves the tip past it.
    pub fn append(&mut self, ws: WorkspaceId, stream: Stream, event: AuditEvent) -> AuditEntry {
        let seq = self.next_seq;
        let prev_hash = self.head_hash;
        let hash = entry_hash(ws, stream, seq, &prev_hash, &event);
        self.next_seq += 1;
        self.head_hash = hash;
        AuditEntry { workspace_id: ws, stream, seq, event, prev_hash, hash }
    }
}
