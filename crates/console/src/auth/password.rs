//! Passwords: argon2id with OWASP's minimum parameters (19 MiB, 2 passes, 1 lane), and the
//! complexity standard a new password must meet — at least 12 characters, not one of the 30,000
//! most common passwords, and not containing the email's local part.

use std::collections::HashSet;
use std::sync::OnceLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use chimatic_crypto::digest::{constant_time_eq, sha256};
use chimatic_domain::{EmailAddress, Timestamp, UserId};
use chimatic_store::UserRow;
use zeroize::Zeroizing;

pub const MIN_CHARS: usize = 12;
/// Longer input is refused before hashing, so a request cannot buy a long hash.
pub const MAX_BYTES: usize = 256;
/// OWASP Password Storage Cheat Sheet, argon2id minimum: m = 19 MiB, t = 2, p = 1.
pub const M_COST_KIB: u32 = 19 * 1024;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

const COMMON: &str = include_str!("../../data/common-passwords.txt");

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("the password must be at least {MIN_CHARS} characters")]
    TooShort,
    #[error("the password must be at most {MAX_BYTES} bytes")]
    TooLong,
    #[error("the password is one of the most common passwords")]
    Common,
    #[error("the password must not contain your email address's name")]
    ContainsEmail,
}

#[derive(Debug, thiserror::Error)]
#[error("password hashing failed")]
pub struct HashError;

/// What is kept of an email address: a digest to find the account, a masked form to show,
/// and the length and digest of its (lower-cased) local part for the password check.
pub struct EmailIdentity {
    pub digest: [u8; 32],
    pub masked: String,
    pub local_part_len: u32,
    pub local_part_digest: [u8; 32],
}

impl EmailIdentity {
    pub fn of(email: &EmailAddress) -> Self {
        let normalised = email.expose().to_lowercase();
        let local = normalised.split('@').next().unwrap_or_default();
        Self {
            digest: email_digest(email),
            masked: email.masked(),
            local_part_len: u32::try_from(local.chars().count()).unwrap_or(u32::MAX),
            local_part_digest: sha256("chimatic.email-local-part", local.as_bytes()),
        }
    }
}

impl EmailIdentity {
    /// A new user with this email and password hash.
    pub fn user(self, password_hash: String, now: Timestamp) -> UserRow {
        UserRow {
            id: UserId::generate(),
            email_digest: self.digest,
            email_masked: self.masked,
            local_part_len: self.local_part_len,
            local_part_digest: self.local_part_digest,
            password_hash,
            created_at: now,
            password_changed_at: now,
        }
    }
}

/// The digest an account is found by (case-insensitive).
pub fn email_digest(email: &EmailAddress) -> [u8; 32] {
    sha256("chimatic.email", email.expose().to_lowercase().as_bytes())
}

fn common() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| COMMON.lines().map(str::trim).filter(|l| !l.is_empty()).collect())
}

/// Checks a new password against the standard. The email's local part is known only by its
/// length and digest, so every substring of that length is compared by digest.
pub fn check(password: &str, local_part_len: u32, local_part_digest: &[u8; 32]) -> Result<(), PolicyError> {
    if password.len() > MAX_BYTES {
        return Err(PolicyError::TooLong);
    }
    if password.chars().count() < MIN_CHARS {
        return Err(PolicyError::TooShort);
    }
    let lower = password.to_lowercase();
    if common().contains(lower.as_str()) {
        return Err(PolicyError::Common);
    }
    let chars: Vec<char> = lower.chars().collect();
    let n = local_part_len as usize;
    // A one- or two-letter name would refuse half of all passwords; from three it is a name.
    if n >= 3 && n <= chars.len() {
        for window in chars.windows(n) {
            let s: String = window.iter().collect();
            if constant_time_eq(&sha256("chimatic.email-local-part", s.as_bytes()), local_part_digest) {
                return Err(PolicyError::ContainsEmail);
            }
        }
    }
    Ok(())
}

fn argon2() -> Argon2<'static> {
    // The constants are valid parameters; `Params::DEFAULT` is the same set should that change.
    let params = Params::new(M_COST_KIB, T_COST, P_COST, None).unwrap_or(Params::DEFAULT);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// An argon2id PHC string with a fresh random salt. CPU-heavy: call from a blocking thread.
pub fn hash(password: &str) -> Result<String, HashError> {
    argon2().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(|_| HashError)
}

/// [`hash`] on a blocking thread.
pub async fn hash_blocking(password: Zeroizing<String>) -> Result<String, HashError> {
    tokio::task::spawn_blocking(move || hash(&password)).await.map_err(|_| HashError)?
}

/// Whether `password` matches the PHC string. CPU-heavy: call from a blocking thread.
pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => argon2().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// The same work as [`verify`] for a sign-in to an account that does not exist, so timing does
/// not tell which emails have accounts.
pub fn verify_nothing(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let phc = DUMMY.get_or_init(|| hash("an account that does not exist").unwrap_or_default());
    let _ = verify(password, phc);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann() -> EmailIdentity {
        EmailIdentity::of(&EmailAddress::parse("Annabel@example.com").unwrap())
    }

    fn checked(password: &str) -> Result<(), PolicyError> {
        let id = ann();
        check(password, id.local_part_len, &id.local_part_digest)
    }

    #[test]
    fn the_bundled_list_holds_thirty_thousand_passwords() {
        assert!(common().len() >= 29_000, "{}", common().len());
        assert!(common().contains("password"));
    }

    #[test]
    fn short_common_and_name_bearing_passwords_are_refused() {
        assert_eq!(checked("short-pass1"), Err(PolicyError::TooShort));
        assert_eq!(checked("qwertyuiop123"), Err(PolicyError::Common));
        assert_eq!(checked("1qaz2wsx3edc"), Err(PolicyError::Common));
        assert_eq!(checked("my-ANNABEL-is-long"), Err(PolicyError::ContainsEmail));
        assert_eq!(checked(&"x".repeat(MAX_BYTES + 1)), Err(PolicyError::TooLong));
        assert_eq!(checked("correct horse battery"), Ok(()));
    }

    #[test]
    fn a_hash_verifies_its_password_only_and_names_its_parameters() {
        let phc = hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("correct horse battery!", &phc));
        assert!(!verify("correct horse battery", "not a phc string"));
        assert_ne!(hash("correct horse battery").unwrap(), phc, "a fresh salt each time");
    }

    #[test]
    fn emails_are_found_case_insensitively_and_shown_masked() {
        let a = EmailIdentity::of(&EmailAddress::parse("Annabel@Example.com").unwrap());
        assert_eq!(a.digest, ann().digest);
        assert!(!a.masked.contains("Annabel"));
        assert_eq!(a.local_part_len, 7);
    }
}
