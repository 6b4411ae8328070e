//! Cryptography for Chimatic, built only on audited primitives (aws-lc-rs): AES-256-GCM envelope
//! encryption, SHA-256 API key digests, HMAC-SHA256 webhook signatures.

pub mod aead;
pub mod api_key;
pub mod digest;
pub mod kek;
pub mod random;
pub mod webhook;

pub use aead::{Aad, CryptoError, DEK_LEN, Dek};
pub use api_key::{ApiKeyDigest, GeneratedApiKey};
pub use kek::{KekProvider, KekSource, LocalKek};
pub use webhook::{SigningSecret, WebhookSignature, twilio_signature_valid};
