//! The OS CSPRNG, through aws-lc-rs.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::CryptoError;

pub fn fill(buf: &mut [u8]) -> Result<(), CryptoError> {
    SystemRandom::new().fill(buf).map_err(|_| CryptoError::Rng)
}

pub fn bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut b = [0u8; N];
    fill(&mut b)?;
    Ok(b)
}

pub fn u32() -> Result<u32, CryptoError> {
    bytes::<4>().map(u32::from_le_bytes)
}
