//! Signed chain heads: an Ed25519 signature over where a chain starts (its anchor, moved forward
//! by retention pruning) and where it ended when signed. Removing entries from either end, or
//! moving the anchor, no longer matches the newest signed head.

use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair};
use chimatic_domain::{Timestamp, WorkspaceId};

use crate::{Hash, Stream};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHead {
    pub workspace_id: WorkspaceId,
    pub stream: Stream,
    pub anchor_seq: u64,
    pub anchor_hash: Hash,
    pub seq: u64,
    pub hash: Hash,
    pub signed_at: Timestamp,
    pub public_key: [u8; 32],
    pub signature: Vec<u8>,
}

impl SignedHead {
    pub fn signature_valid(&self) -> bool {
        let message = head_message(
            self.workspace_id,
            self.stream,
            self.anchor_seq,
            &self.anchor_hash,
            self.seq,
            &self.hash,
            self.signed_at,
        );
        signature::UnparsedPublicKey::new(&signature::ED25519, &self.public_key)
            .verify(&message, &self.signature)
            .is_ok()
    }
}

/// The signed bytes, in the same length-prefixed encoding as entries.
pub fn head_message(
    ws: WorkspaceId,
    stream: Stream,
    anchor_seq: u64,
    anchor_hash: &Hash,
    seq: u64,
    hash: &Hash,
    signed_at: Timestamp,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(192);
    let mut field = |bytes: &[u8]| {
        out.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(bytes);
    };
    field(b"chimatic.audit.head.v1");
    field(ws.to_string().as_bytes());
    field(stream.as_str().as_bytes());
    field(&anchor_seq.to_be_bytes());
    field(anchor_hash);
    field(&seq.to_be_bytes());
    field(hash);
    field(&signed_at.as_millis().to_be_bytes());
    out
}

/// A region's head-signing key. Its seed is derived from a key wrapped by the KEK, so only a
/// node holding the KEK can sign, and anyone with the public key can verify.
pub struct HeadSigner {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for HeadSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeadSigner({})", crate::to_hex(&self.public_key()))
    }
}

impl HeadSigner {
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, aws_lc_rs::error::KeyRejected> {
        Ed25519KeyPair::from_seed_unchecked(seed).map(|pair| Self { pair })
    }

    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.pair.public_key().as_ref());
        out
    }

    #[allow(clippy::too_many_arguments)]
    pub fn sign(
        &self,
        ws: WorkspaceId,
        stream: Stream,
        anchor_seq: u64,
        anchor_hash: Hash,
        seq: u64,
        hash: Hash,
        signed_at: Timestamp,
    ) -> SignedHead {
        let message = head_message(ws, stream, anchor_seq, &anchor_hash, seq, &hash, signed_at);
        let signature = self.pair.sign(&message).as_ref().to_vec();
        SignedHead {
            workspace_id: ws,
            stream,
            anchor_seq,
            anchor_hash,
            seq,
            hash,
            signed_at,
            public_key: self.public_key(),
            signature,
        }
    }
}
