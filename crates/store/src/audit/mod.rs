//! [`AuditLog`]: one store's audit trail (the control store's or a region's data store's).
//! Audited actions append inside their own transactions through the store methods that
//! perform them; this is reading, standalone entries, head signing and retention.

use std::sync::Arc;

use chimatic_audit::{AuditEntry, AuditEvent, ChainRecord, HeadSigner, SignedHead, Stream};
use chimatic_domain::{Timestamp, WorkspaceId};

pub(crate) mod postgres;
mod rows;
pub(crate) mod sql;
pub(crate) mod sqlite;

pub use rows::{AuditBackend, AuditFilter, ChainRow};

use crate::StoreError;

/// Rows read or removed per round trip.
const PAGE: u32 = 1000;

pub struct AuditLog {
    backend: Arc<dyn AuditBackend>,
    stream: Stream,
}

impl AuditLog {
    pub(crate) fn new(backend: Arc<dyn AuditBackend>, stream: Stream) -> Self {
        Self { backend, stream }
    }

    pub fn stream(&self) -> Stream {
        self.stream
    }

    /// Records an action that writes nothing else.
    pub async fn record(&self, ws: WorkspaceId, event: AuditEvent) -> Result<(), StoreError> {
        self.backend.append_audit(self.stream, &[(ws, event)]).await
    }

    /// Newest first.
    pub async fn page(&self, ws: WorkspaceId, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        self.backend.audit_page(ws, self.stream, filter).await
    }

    /// Up to 1000 entries after `after_seq`, oldest first.
    pub async fn entries_after(&self, ws: WorkspaceId, after_seq: u64) -> Result<Vec<AuditEntry>, StoreError> {
        self.backend.audit_entries(ws, self.stream, after_seq, PAGE).await
    }

    pub async fn chain(&self, ws: WorkspaceId) -> Result<Option<ChainRow>, StoreError> {
        self.backend.audit_chain(ws, self.stream).await
    }

    pub async fn heads(&self, ws: WorkspaceId) -> Result<Vec<SignedHead>, StoreError> {
        self.backend.audit_heads(ws, self.stream).await
    }

    /// Every workspace with a chain here.
    pub async fn workspaces(&self) -> Result<Vec<WorkspaceId>, StoreError> {
        self.backend.audit_chains(self.stream).await
    }

    /// All of a chain, for verification. The chain state is read first, so entries appended
    /// while reading are beyond it and not mistaken for tampering.
    pub async fn chain_record(&self, ws: WorkspaceId) -> Result<ChainRecord, StoreError> {
        let chain = self.chain(ws).await?;
        let heads = self.heads(ws).await?;
        let mut entries = Vec::new();
        let mut after = chain.map_or(0, |c| c.anchor_seq);
        let end = chain.map_or(0, |c| c.next_seq.saturating_sub(1));
        while after < end {
            let page = self.entries_after(ws, after).await?;
            let Some(last) = page.last() else { break };
            after = last.seq;
            entries.extend(page.into_iter().filter(|e| e.seq <= end));
        }
        Ok(ChainRecord {
            workspace_id: ws,
            stream: self.stream,
            anchor_seq: chain.map_or(0, |c| c.anchor_seq),
            anchor_hash: chain.map_or(chimatic_audit::GENESIS, |c| c.anchor_hash),
            next_seq: chain.map(|c| c.next_seq),
            entries,
            heads,
        })
    }

    /// Signs the head of every chain that grew since it was last signed; returns how many.
    pub async fn sign_heads(&self, signer: &Arc<HeadSigner>, now: Timestamp) -> Result<u64, StoreError> {
        let mut signed = 0;
        loop {
            let n = self.backend.sign_audit_heads(self.stream, signer.clone(), now, 100).await?;
            signed += n;
            if n < 100 {
                return Ok(signed);
            }
        }
    }

    /// Removes the chain's entries older than `before` from the old end, in batches, keeping the
    /// anchor and re-signing the head so the rest still verifies. Stops early if another node
    /// is pruning.
    pub async fn prune(
        &self,
        ws: WorkspaceId,
        before: Timestamp,
        signer: &Arc<HeadSigner>,
        now: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut removed = 0;
        while let Some(n) = self.backend.prune_audit(ws, self.stream, before, PAGE, signer.clone(), now).await? {
            removed += n;
            if n < u64::from(PAGE) {
                break;
            }
        }
        Ok(removed)
    }
}
