//! TOTP second factors (RFC 6238: SHA-1, 6 digits, 30-second steps, one step of clock skew
//! either way) and recovery codes. The caller keeps the last accepted step so a code counts
//! once; recovery codes carry 80 random bits and are kept only as digests.

use chimatic_crypto::digest::sha256;
use chimatic_domain::{Sensitive, Timestamp};
use qrcode::QrCode;
use qrcode::render::svg;
use totp_rs::{Algorithm, Builder, Secret, Totp};

pub const RECOVERY_CODES: usize = 10;
const ISSUER: &str = "Chimatic";
/// 160 bits, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum TwoFactorError {
    #[error("the random number generator failed")]
    Random,
    #[error("the TOTP parameters were refused: {0}")]
    Totp(String),
    #[error("the QR code could not be drawn")]
    Qr,
}

pub fn new_secret() -> Result<Sensitive<Vec<u8>>, TwoFactorError> {
    let bytes = chimatic_crypto::random::bytes::<SECRET_BYTES>().map_err(|_| TwoFactorError::Random)?;
    Ok(Sensitive::new(bytes.to_vec()))
}

/// The generator for a secret, labelled with the account as authenticator apps show it.
pub fn totp(secret: &Sensitive<Vec<u8>>, account: &str) -> Result<Totp, TwoFactorError> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(secret.expose().as_slice())
        // A colon separates issuer and account in the label: it may appear in neither.
        .with_account_name(account.replace(':', " "))
        .with_issuer(Some(ISSUER))
        .build()
        .map_err(|e| TwoFactorError::Totp(e.to_string()))
}

/// The time step a code is right for (now, or one step either side), if any.
pub fn check(totp: &Totp, code: &str, now: Timestamp) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let secs = u64::try_from(now.0 / 1000).ok()?;
    totp.check(&code, secs).and_then(|step| i64::try_from(step).ok())
}

/// The secret as people type it into an app: base32 in groups of four.
pub fn manual_key(secret: &Sensitive<Vec<u8>>) -> String {
    let b32 = Secret::from(secret.expose().as_slice()).to_base32();
    b32.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
}

/// The `otpauth://` URL as an SVG QR code, drawn here (no image leaves the server).
pub fn qr_svg(totp: &Totp) -> Result<String, TwoFactorError> {
    let url = totp.to_url().map_err(|e| TwoFactorError::Totp(e.to_string()))?;
    let code = QrCode::new(url.as_bytes()).map_err(|_| TwoFactorError::Qr)?;
    let drawn = code.render::<svg::Color<'_>>().min_dimensions(200, 200).quiet_zone(true).build();
    // Inline in HTML: the XML declaration has no place there.
    Ok(match drawn.find("<svg") {
        Some(at) => drawn[at..].to_string(),
        None => drawn,
    })
}

/// Fresh recovery codes, as shown once: 16 base32 characters (80 bits) in groups of four.
pub fn new_recovery_codes() -> Result<Vec<String>, TwoFactorError> {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    (0..RECOVERY_CODES)
        .map(|_| {
            let bytes = chimatic_crypto::random::bytes::<10>().map_err(|_| TwoFactorError::Random)?;
            let mut bits: u128 = 0;
            for b in bytes {
                bits = (bits << 8) | u128::from(b);
            }
            let chars: Vec<u8> = (0..16).rev().map(|i| ALPHABET[((bits >> (i * 5)) & 31) as usize]).collect();
            Ok(chars.chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("-"))
        })
        .collect()
}

/// What is kept of a recovery code, however it was typed (case, dashes, spaces).
pub fn recovery_digest(code: &str) -> [u8; 32] {
    let normal: String = code.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_uppercase()).collect();
    sha256("chimatic.recovery-code", normal.as_bytes())
}

/// Whether typed input looks like a recovery code rather than a TOTP code.
pub fn looks_like_recovery_code(code: &str) -> bool {
    code.chars().filter(char::is_ascii_alphanumeric).count() == 16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp(secs * 1000)
    }

    #[test]
    fn a_code_is_right_for_its_step_and_one_either_side_only() {
        // RFC 6238 appendix B: the SHA-1 secret "12345678901234567890" at T = 59 s gives 94287082
        // (8 digits); its last six digits are the 6-digit code.
        let secret = Sensitive::new(b"12345678901234567890".to_vec());
        let t = totp(&secret, "a***@example.com").unwrap();
        assert_eq!(check(&t, "287082", at(59)), Some(1));
        assert_eq!(check(&t, "287 082", at(59 + 30)), Some(1), "one step late is accepted");
        assert_eq!(check(&t, "287082", at(59 + 60)), None, "two steps late is not");
        assert_eq!(check(&t, "28708", at(59)), None);
        assert_eq!(check(&t, "abcdef", at(59)), None);
    }

    #[test]
    fn the_enrolment_shows_the_key_and_a_qr_code_of_the_otpauth_url() {
        let secret = new_secret().unwrap();
        assert_eq!(secret.expose().len(), 20);
        let key = manual_key(&secret);
        assert_eq!(key.replace(' ', "").len(), 32, "{key}");
        let svg = qr_svg(&totp(&secret, "a***@example.com").unwrap()).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("</svg>"));
    }

    #[test]
    fn recovery_codes_are_random_and_found_however_typed() {
        let codes = new_recovery_codes().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert_eq!(codes[0].len(), 19);
        assert!(looks_like_recovery_code(&codes[0]));
        assert!(!looks_like_recovery_code("123456"));
        let mut unique = codes.clone();
        unique.dedup();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let sloppy = codes[0].to_lowercase().replace('-', " ");
        assert_eq!(recovery_digest(&sloppy), recovery_digest(&codes[0]));
        assert_ne!(recovery_digest(&codes[1]), recovery_digest(&codes[0]));
    }
}
