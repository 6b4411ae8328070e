//! Key encryption keys that never enter Chimatic's memory: a KEK generated inside a PKCS#11
//! token (an HSM, or SoftHSM2 in tests) or held by an AWS KMS-compatible service. Both implement
//! [`chimatic_crypto::kek::KekProvider`], so the envelope-encryption code is unchanged.
//!
//! Errors that mean "the key is not reachable or was refused right now" (token gone, KMS key
//! disabled, access revoked, network down) come back as `CryptoError::KeyUnavailable`, so callers
//! can pause a workspace's work; a wrapped DEK that does not verify is `CryptoError::Unwrap`.

pub mod aws_kms;
pub mod pkcs11;
pub mod sigv4;
#[cfg(feature = "test-support")]
pub mod test_support;

pub use aws_kms::{AwsKmsConfig, AwsKmsConfigError, AwsKmsKek};
pub use pkcs11::{KeyProperties, Pkcs11Config, Pkcs11Error, Pkcs11Kek};
pub use sigv4::{SigV4Signer, SignError};
