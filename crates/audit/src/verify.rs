//! Offline verification of one chain: links, hashes, sequence, and signed heads.

use std::collections::HashMap;

use chimatic_domain::WorkspaceId;

use crate::{AuditEntry, GENESIS, Hash, SignedHead, Stream, entry_hash, to_hex};

/// Everything stored for one chain, entries in ascending sequence order as read.
#[derive(Clone, Debug)]
pub struct ChainRecord {
    pub workspace_id: WorkspaceId,
    pub stream: Stream,
    /// The last entry removed by retention (0 and [`GENESIS`] if none was).
    pub anchor_seq: u64,
    pub anchor_hash: Hash,
    /// The next sequence number the store would use, when known (a tail cut without touching
    /// it shows as a gap).
    pub next_seq: Option<u64>,
    pub entries: Vec<AuditEntry>,
    pub heads: Vec<SignedHead>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified {
    pub entries: u64,
    pub first_seq: Option<u64>,
    pub last_seq: u64,
    /// The newest signed head's sequence number: entries up to it are covered by a signature.
    pub signed_through: Option<u64>,
}

/// The first problem found, and the entry it was found at.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", match .seq { Some(s) => format!("entry {s}: {}", .reason), None => .reason.clone() })]
pub struct Broken {
    pub seq: Option<u64>,
    pub reason: String,
}

fn broken(seq: impl Into<Option<u64>>, reason: impl Into<String>) -> Broken {
    Broken { seq: seq.into(), reason: reason.into() }
}

/// Checks the chain. `trusted` are the public keys heads may be signed with; `None` accepts the
/// key each head names (for an export checked without a pinned key — the caller says so).
pub fn verify_chain(chain: &ChainRecord, trusted: Option<&[[u8; 32]]>) -> Result<Verified, Broken> {
    if chain.anchor_seq == 0 && chain.anchor_hash != GENESIS {
        return Err(broken(None, "the chain's anchor was altered"));
    }
    let mut expected = chain.anchor_seq + 1;
    let mut prev = chain.anchor_hash;
    let mut hashes: HashMap<u64, Hash> = HashMap::with_capacity(chain.entries.len());
    for e in &chain.entries {
        if e.workspace_id != chain.workspace_id || e.stream != chain.stream {
            return Err(broken(e.seq, "belongs to another chain"));
        }
        if e.seq > expected {
            return Err(broken(expected, "is missing (removed)"));
        }
        if e.seq < expected {
            return Err(broken(e.seq, "is out of order or duplicated"));
        }
        if e.prev_hash != prev {
            return Err(broken(
                e.seq,
                format!("does not link to entry {} (removed, inserted or reordered)", e.seq - 1),
            ));
        }
        if entry_hash(e.workspace_id, e.stream, e.seq, &e.prev_hash, &e.event) != e.hash {
            return Err(broken(e.seq, "was altered (its hash does not match its content)"));
        }
        hashes.insert(e.seq, e.hash);
        prev = e.hash;
        expected += 1;
    }
    let last_seq = expected - 1;
    if let Some(next) = chain.next_seq
        && next > expected
    {
        return Err(broken(
            expected,
            format!("is missing: entries {expected} to {} were removed from the end", next - 1),
        ));
    }

    let mut newest: Option<&SignedHead> = None;
    for h in &chain.heads {
        if h.workspace_id != chain.workspace_id || h.stream != chain.stream {
            return Err(broken(None, format!("the head signed at entry {} belongs to another chain", h.seq)));
        }
        if !h.signature_valid() {
            return Err(broken(h.seq, "the signature of the head at this entry is invalid"));
        }
        if let Some(keys) = trusted
            && !keys.contains(&h.public_key)
        {
            return Err(broken(
                h.seq,
                format!("the head at this entry is signed by an unknown key {}", to_hex(&h.public_key)),
            ));
        }
        if h.seq > chain.anchor_seq {
            if h.seq > last_seq {
                return Err(broken(
                    last_seq + 1,
                    format!("is missing: a signed head covers entry {}, the chain ends at {last_seq}", h.seq),
                ));
            }
            if hashes.get(&h.seq) != Some(&h.hash) {
                return Err(broken(h.seq, "does not match the signed head"));
            }
        }
        if newest.is_none_or(|n| (h.seq, h.signed_at) > (n.seq, n.signed_at)) {
            newest = Some(h);
        }
    }
    if let Some(n) = newest
        && (n.anchor_seq, n.anchor_hash) != (chain.anchor_seq, chain.anchor_hash)
    {
        return Err(broken(
            chain.anchor_seq + 1,
            format!(
                "the chain's start (after entry {}) differs from the newest signed head's (after entry {}): entries were removed from the start",
                chain.anchor_seq, n.anchor_seq
            ),
        ));
    }
    Ok(Verified {
        entries: chain.entries.len() as u64,
        first_seq: chain.entries.first().map(|e| e.seq),
        last_seq,
        signed_through: newest.map(|h| h.seq),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Actor, AuditEvent, ChainTip, HeadSigner, Origin};
    use chimatic_domain::Timestamp;

    fn chain(n: u64) -> (ChainRecord, HeadSigner) {
        let ws = WorkspaceId::generate();
        let mut tip = ChainTip::default();
        let entries = (0..n)
            .map(|i| {
                let ev = AuditEvent::new(
                    Timestamp(1_000 + i as i64),
                    Actor::system(),
                    Origin::default(),
                    "test.event",
                    "thing",
                    i,
                );
                tip.append(ws, Stream::Data, ev)
            })
            .collect::<Vec<_>>();
        let signer = HeadSigner::from_seed(&[7; 32]).unwrap();
        let last = entries.last().unwrap();
        let head = signer.sign(ws, Stream::Data, 0, GENESIS, last.seq, last.hash, Timestamp(5_000));
        let record = ChainRecord {
            workspace_id: ws,
            stream: Stream::Data,
            anchor_seq: 0,
            anchor_hash: GENESIS,
            next_seq: Some(tip.next_seq),
            entries,
            heads: vec![head],
        };
        (record, signer)
    }

    #[test]
    fn an_intact_chain_verifies_and_each_kind_of_tampering_is_caught_where_it_happened() {
        let (c, signer) = chain(6);
        let keys = [signer.public_key()];
        let ok = verify_chain(&c, Some(&keys)).unwrap();
        assert_eq!((ok.entries, ok.last_seq, ok.signed_through), (6, 6, Some(6)));

        let mut edited = c.clone();
        edited.entries[2].event.target.id = "other".into();
        assert_eq!(verify_chain(&edited, Some(&keys)).unwrap_err().seq, Some(3));

        let mut removed = c.clone();
        removed.entries.remove(3);
        assert_eq!(verify_chain(&removed, Some(&keys)).unwrap_err().seq, Some(4));

        let mut reordered = c.clone();
        reordered.entries.swap(1, 2);
        assert!(verify_chain(&reordered, Some(&keys)).is_err());

        let mut cut = c.clone();
        cut.entries.truncate(4);
        cut.next_seq = Some(5);
        let e = verify_chain(&cut, Some(&keys)).unwrap_err();
        assert_eq!(e.seq, Some(5), "{e}");

        let mut stranger = c.clone();
        let other = HeadSigner::from_seed(&[8; 32]).unwrap();
        let last = &c.entries[5];
        stranger.heads = vec![other.sign(c.workspace_id, Stream::Data, 0, GENESIS, 6, last.hash, Timestamp(9))];
        assert!(verify_chain(&stranger, Some(&keys)).unwrap_err().reason.contains("unknown key"));

        let mut forged = c.clone();
        forged.heads[0].seq = 5;
        assert!(verify_chain(&forged, Some(&keys)).unwrap_err().reason.contains("signature"));
    }

    #[test]
    fn pruning_with_a_signed_anchor_verifies_but_moving_the_anchor_without_a_signature_does_not() {
        let (c, signer) = chain(6);
        let keys = [signer.public_key()];
        let mut pruned = c.clone();
        pruned.anchor_seq = 2;
        pruned.anchor_hash = c.entries[1].hash;
        pruned.entries.drain(..2);
        assert!(verify_chain(&pruned, Some(&keys)).is_err(), "anchor moved without a new signature");
        let last = &c.entries[5];
        pruned.heads.push(signer.sign(
            c.workspace_id,
            Stream::Data,
            2,
            c.entries[1].hash,
            6,
            last.hash,
            Timestamp(6_000),
        ));
        let ok = verify_chain(&pruned, Some(&keys)).unwrap();
        assert_eq!((ok.entries, ok.first_seq), (4, Some(3)));
    }
}
