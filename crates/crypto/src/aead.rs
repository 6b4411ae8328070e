//! AES-256-GCM with associated data that binds every ciphertext to where it lives.
//!
//! Ciphertext layout: `0x01 | dek_version (u32 BE) | nonce (12) | ciphertext ‖ tag (16)`.
//! The header is authenticated too (it is part of the AEAD associated data), so a ciphertext
//! cannot be replayed under another DEK version.

use aws_lc_rs::aead::{AES_256_GCM, Aad as AwsAad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use chimatic_domain::WorkspaceId;
use zeroize::Zeroizing;

pub const DEK_LEN: usize = 32;
const FORMAT_V1: u8 = 1;
const HEADER_LEN: usize = 1 + 4 + NONCE_LEN;
const TAG_LEN: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// The ciphertext was altered, truncated, or moved to another row, column or workspace.
    #[error("integrity check failed: the encrypted value was altered or does not belong here")]
    Integrity,
    #[error("encrypted value uses an unknown format")]
    Format,
    #[error("the operating system random number generator failed")]
    Rng,
    #[error("key material is invalid")]
    InvalidKey,
    #[error("the key encryption key could not unwrap a data key (wrong KEK?)")]
    Unwrap,
    /// Unlike `Unwrap` this may pass: callers pause work for the workspace instead of failing it.
    #[error("the key provider is unavailable or refused the key (KMS key disabled, revoked or unreachable)")]
    KeyUnavailable,
}

/// Where a ciphertext belongs: workspace, table, column and row. Any mismatch fails decryption.
pub struct Aad<'a> {
    pub workspace: WorkspaceId,
    pub table: &'static str,
    pub column: &'static str,
    pub row: &'a str,
}

impl Aad<'_> {
    fn encode(&self, header: &[u8]) -> Vec<u8> {
        let ws = self.workspace.to_string();
        let mut out = Vec::with_capacity(header.len() + ws.len() + self.row.len() + 64);
        out.extend_from_slice(b"chimatic.v1");
        for part in [header, ws.as_bytes(), self.table.as_bytes(), self.column.as_bytes(), self.row.as_bytes()] {
            // Length-prefixed so that no two different tuples encode the same.
            out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }
}

/// A data encryption key. The raw bytes live inside aws-lc, which wipes them on drop.
pub struct Dek {
    key: LessSafeKey,
    /// HMAC key derived from the DEK for blind indexes (lookups by a keyed digest).
    index: hmac::Key,
    version: u32,
}

impl std::fmt::Debug for Dek {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Dek(v{})", self.version)
    }
}

impl Dek {
    pub fn from_bytes(bytes: &[u8], version: u32) -> Result<Self, CryptoError> {
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).map_err(|_| CryptoError::InvalidKey)?;
        let derived = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, bytes), b"chimatic.blind-index.v1");
        let index = hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref());
        Ok(Self { key: LessSafeKey::new(unbound), index, version })
    }

    /// A keyed digest for looking values up without storing them: unlike a plain hash, it
    /// cannot be brute-forced from a copy of the database without the key.
    pub fn blind_index(&self, domain: &[u8], value: &[u8]) -> [u8; 32] {
        let mut ctx = hmac::Context::with_key(&self.index);
        ctx.update(&u32::try_from(domain.len()).unwrap_or(u32::MAX).to_be_bytes());
        ctx.update(domain);
        ctx.update(value);
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        out
    }

    /// Fresh random key material for a new DEK.
    pub fn generate_material() -> Result<Zeroizing<[u8; DEK_LEN]>, CryptoError> {
        let mut k = Zeroizing::new([0u8; DEK_LEN]);
        crate::random::fill(k.as_mut())?;
        Ok(k)
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    pub fn encrypt(&self, aad: &Aad<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce_bytes = crate::random::bytes::<NONCE_LEN>()?;
        let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
        out.push(FORMAT_V1);
        out.extend_from_slice(&self.version.to_be_bytes());
        out.extend_from_slice(&nonce_bytes);
        let aad_bytes = aad.encode(&out);
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce_bytes), AwsAad::from(aad_bytes), &mut body)
            .map_err(|_| CryptoError::InvalidKey)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    pub fn decrypt(&self, aad: &Aad<'_>, ciphertext: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let version = ciphertext_dek_version(ciphertext)?;
        if ciphertext.len() < HEADER_LEN + TAG_LEN {
            return Err(CryptoError::Integrity);
        }
        if version != self.version {
            return Err(CryptoError::Integrity);
        }
        let (header, body) = ciphertext.split_at(HEADER_LEN);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&header[5..]);
        let aad_bytes = aad.encode(header);
        let mut buf = Zeroizing::new(body.to_vec());
        let len = self
            .key
            .open_in_place(Nonce::assume_unique_for_key(nonce), AwsAad::from(aad_bytes), buf.as_mut_slice())
            .map_err(|_| CryptoError::Integrity)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// The DEK version a ciphertext was written with, read from its header.
pub fn ciphertext_dek_version(ciphertext: &[u8]) -> Result<u32, CryptoError> {
    match ciphertext {
        [FORMAT_V1, a, b, c, d, ..] => Ok(u32::from_be_bytes([*a, *b, *c, *d])),
        [] => Err(CryptoError::Integrity),
        _ => Err(CryptoError::Format),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dek() -> Dek {
        Dek::from_bytes(Dek::generate_material().unwrap().as_ref(), 1).unwrap()
    }

    fn aad<'a>(ws: WorkspaceId, column: &'static str, row: &'a str) -> Aad<'a> {
        Aad { workspace: ws, table: "notifications", column, row }
    }

    #[test]
    fn round_trips_and_hides_plaintext() {
        let k = dek();
        let ws = WorkspaceId::generate();
        let ct = k.encrypt(&aad(ws, "payload", "msg_1"), b"canary-plaintext").unwrap();
        assert!(!ct.windows(6).any(|w| w == b"canary"));
        assert_eq!(&*k.decrypt(&aad(ws, "payload", "msg_1"), &ct).unwrap(), b"canary-plaintext");
        let ct2 = k.encrypt(&aad(ws, "payload", "msg_1"), b"canary-plaintext").unwrap();
        assert_ne!(ct, ct2, "nonces must be fresh");
    }

    #[test]
    fn moved_or_flipped_ciphertext_is_rejected() {
        let k = dek();
        let ws = WorkspaceId::generate();
        let ct = k.encrypt(&aad(ws, "payload", "msg_1"), b"hello").unwrap();
        assert_eq!(k.decrypt(&aad(ws, "payload", "msg_2"), &ct).unwrap_err(), CryptoError::Integrity);
        assert_eq!(k.decrypt(&aad(ws, "url", "msg_1"), &ct).unwrap_err(), CryptoError::Integrity);
        let other = WorkspaceId::generate();
        assert_eq!(k.decrypt(&aad(other, "payload", "msg_1"), &ct).unwrap_err(), CryptoError::Integrity);
        let other_table = Aad { workspace: ws, table: "channels", column: "payload", row: "msg_1" };
        assert_eq!(k.decrypt(&other_table, &ct).unwrap_err(), CryptoError::Integrity);
        for i in 0..ct.len() {
            let mut bad = ct.clone();
            bad[i] ^= 0x01;
            assert!(k.decrypt(&aad(ws, "payload", "msg_1"), &bad).is_err(), "flip at byte {i} accepted");
        }
        assert!(k.decrypt(&aad(ws, "payload", "msg_1"), &ct[..ct.len() - 1]).is_err());
        assert!(k.decrypt(&aad(ws, "payload", "msg_1"), &[]).is_err());
    }

    #[test]
    fn blind_indexes_are_stable_per_key_and_differ_across_keys_and_domains() {
        let k = dek();
        assert_eq!(k.blind_index(b"idem", b"order-42"), k.blind_index(b"idem", b"order-42"));
        assert_ne!(k.blind_index(b"idem", b"order-42"), k.blind_index(b"idem", b"order-43"));
        assert_ne!(k.blind_index(b"idem", b"order-42"), k.blind_index(b"other", b"order-42"));
        assert_ne!(k.blind_index(b"idem", b"order-42"), dek().blind_index(b"idem", b"order-42"));
    }

    #[test]
    fn another_dek_cannot_decrypt() {
        let ws = WorkspaceId::generate();
        let ct = dek().encrypt(&aad(ws, "payload", "r"), b"x").unwrap();
        assert_eq!(dek().decrypt(&aad(ws, "payload", "r"), &ct).unwrap_err(), CryptoError::Integrity);
    }
}
