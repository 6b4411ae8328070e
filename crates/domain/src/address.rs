//! Recipient addresses: email addresses and E.164 phone numbers, validated on the way in and
//! masked on the way out. Both are personal data, so they travel as [`Sensitive`] values and
//! their error messages never contain the input.

use std::fmt;

use crate::Sensitive;

#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum AddressError {
    #[error(
        "not an email address: expected local@domain with a dot-separated domain of letters, digits and hyphens (at most 254 characters)"
    )]
    Email,
    #[error("not an E.164 phone number: expected `+` and 8 to 15 digits, the first not 0")]
    Phone,
}

/// An email address in the common dot-atom form (`local@example.com`). Quoted local parts and
/// IP-literal domains are refused: no provider we deliver through needs them. The domain is
/// kept lowercase.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailAddress(Sensitive<String>);

const LOCAL_SPECIALS: &str = "!#$%&'*+-/=?^_`{|}~.";

impl EmailAddress {
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let (local, domain) = text.rsplit_once('@').ok_or(AddressError::Email)?;
        let local_ok = (1..=64).contains(&local.len())
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local.chars().all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = (3..=253).contains(&domain.len())
            && labels.len() >= 2
            && labels.iter().all(|l| {
                (1..=63).contains(&l.len())
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            && labels.last().is_some_and(|tld| tld.chars().any(|c| c.is_ascii_alphabetic()));
        if !local_ok || !domain_ok || text.len() > 254 {
            return Err(AddressError::Email);
        }
        Ok(Self(Sensitive::new(format!("{local}@{}", domain.to_ascii_lowercase()))))
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The first characters of the local part only, e.g. `ali…@…`.
    pub fn masked(&self) -> String {
        let local = self.expose().split('@').next().unwrap_or_default();
        let shown = if local.chars().count() > 4 { 3 } else { 1 };
        format!("{}…@…", local.chars().take(shown).collect::<String>())
    }
}

impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmailAddress([redacted])")
    }
}

/// A phone number in E.164 form, e.g. `+14155550123`.
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneNumber(Sensitive<String>);

impl PhoneNumber {
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let digits = text.strip_prefix('+').ok_or(AddressError::Phone)?;
        let valid =
            (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if valid { Ok(Self(Sensitive::new(text.to_string()))) } else { Err(AddressError::Phone) }
    }

    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The last four digits only, e.g. `+…0123`.
    pub fn masked(&self) -> String {
        format!("+{}", mask_tail(self.expose(), 4))
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhoneNumber([redacted])")
    }
}

/// `…` and the last `n` characters, e.g. `…4f2a` (tokens, account ids, numbers).
pub fn mask_tail(text: &str, n: usize) -> String {
    let count = text.chars().count();
    if count <= n * 2 {
        return "…".to_string();
    }
    format!("…{}", text.chars().skip(count - n).collect::<String>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses_are_validated_normalised_and_masked() {
        let a = EmailAddress::parse("Alice.Smith+news@Example.COM").unwrap();
        assert_eq!(a.expose(), "Alice.Smith+news@example.com");
        assert_eq!(a.masked(), "Ali…@…");
        assert_eq!(EmailAddress::parse("bo@x.io").unwrap().masked(), "b…@…");
        for bad in [
            "",
            "alice",
            "alice@",
            "@example.com",
            "alice@localhost",
            "alice@example",
            "a..b@example.com",
            ".a@example.com",
            "alice@-example.com",
            "alice@exa mple.com",
            "ali ce@example.com",
            "\"quoted\"@example.com",
            "alice@[127.0.0.1]",
            "alice@1.2.3.4",
            "alice@example.com\n",
        ] {
            assert_eq!(EmailAddress::parse(bad), Err(AddressError::Email), "{bad:?} accepted");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert!(EmailAddress::parse(&long).is_err());
    }

    #[test]
    fn phone_numbers_must_be_e164_and_are_masked() {
        let p = PhoneNumber::parse("+14155550123").unwrap();
        assert_eq!(p.masked(), "+…0123");
        for bad in ["14155550123", "+0155550123", "+1415", "+1415555012345678", "+1 415 555 0123", "+1415555012a"] {
            assert_eq!(PhoneNumber::parse(bad), Err(AddressError::Phone), "{bad:?} accepted");
        }
    }

    #[test]
    fn debug_output_never_shows_the_address() {
        let a = EmailAddress::parse("secret.person@example.com").unwrap();
        let p = PhoneNumber::parse("+14155550123").unwrap();
        let shown = format!("{a:?} {p:?}");
        assert!(!shown.contains("secret") && !shown.contains("5550123"), "{shown}");
    }
}
