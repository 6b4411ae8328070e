//! A destination's outbound TLS policy: which protocol versions are acceptable and, optionally,
//! which server keys are. Pins add to certificate-chain validation; they never replace it.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// More pins than a key rotation needs (current key, next key, a backup) only widens what is
/// accepted; the bound also keeps the per-handshake check and stored policies small.
pub const MAX_SPKI_PINS: usize = 8;

const PIN_PREFIX: &str = "sha256/";

/// SHA-256 of a certificate's DER-encoded SubjectPublicKeyInfo, written `sha256/<base64>`
/// (standard alphabet, with padding). Pinning the key rather than the certificate survives
/// renewals that keep the key.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpkiPin([u8; 32]);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpkiPinError {
    #[error("a key pin must start with `sha256/`")]
    Prefix,
    #[error("a key pin must be `sha256/` followed by standard base64 with padding")]
    Base64,
    #[error("a key pin must encode 32 bytes (a SHA-256 digest), not {0}")]
    Length(usize),
}

impl SpkiPin {
    pub fn parse(text: &str) -> Result<Self, SpkiPinError> {
        let encoded = text.strip_prefix(PIN_PREFIX).ok_or(SpkiPinError::Prefix)?;
        let bytes = STANDARD.decode(encoded).map_err(|_| SpkiPinError::Base64)?;
        let digest: [u8; 32] = bytes.as_slice().try_into().map_err(|_| SpkiPinError::Length(bytes.len()))?;
        Ok(Self(digest))
    }

    /// A pin from a digest the caller computed over an SPKI.
    pub const fn from_sha256(digest: [u8; 32]) -> Self {
        Self(digest)
    }

    pub const fn sha256(&self) -> &[u8; 32] {
        &self.0
    }
}

impl FromStr for SpkiPin {
    type Err = SpkiPinError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

impl fmt::Display for SpkiPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PIN_PREFIX}{}", STANDARD.encode(self.0))
    }
}

impl fmt::Debug for SpkiPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpkiPin({self})")
    }
}

impl serde::Serialize for SpkiPin {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SpkiPin {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// The default — TLS 1.3 only, no pins — is what every destination gets unless it asks for
/// something else. Fields are private so that a policy always satisfies the limits below.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "OutboundTlsFields")]
pub struct OutboundTls {
    allow_tls12: bool,
    pins: Vec<SpkiPin>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OutboundTlsError {
    #[error("at most {MAX_SPKI_PINS} key pins are allowed, got {0}")]
    TooManyPins(usize),
    #[error("key pin {0} is listed twice")]
    DuplicatePin(SpkiPin),
}

impl OutboundTls {
    pub fn new(allow_tls12: bool, pins: Vec<SpkiPin>) -> Result<Self, OutboundTlsError> {
        if pins.len() > MAX_SPKI_PINS {
            return Err(OutboundTlsError::TooManyPins(pins.len()));
        }
        // Quadratic, but over at most MAX_SPKI_PINS entries.
        if let Some(dup) = pins.iter().enumerate().find_map(|(i, p)| pins[..i].contains(p).then_some(*p)) {
            return Err(OutboundTlsError::DuplicatePin(dup));
        }
        Ok(Self { allow_tls12, pins })
    }

    /// Whether TLS 1.2 is accepted as well as TLS 1.3.
    pub fn allow_tls12(&self) -> bool {
        self.allow_tls12
    }

    /// The accepted server keys; empty means any key with a valid chain.
    pub fn pins(&self) -> &[SpkiPin] {
        &self.pins
    }

    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The wire shape; `OutboundTls::new` checks it. Unknown fields are refused so that a typo
/// (`allow_tls_12`) is an error rather than a silently stricter or looser policy.
#[derive(Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct OutboundTlsFields {
    allow_tls12: bool,
    pins: Vec<SpkiPin>,
}

impl TryFrom<OutboundTlsFields> for OutboundTls {
    type Error = OutboundTlsError;

    fn try_from(fields: OutboundTlsFields) -> Result<Self, Self::Error> {
        Self::new(fields.allow_tls12, fields.pins)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // SHA-256 of the empty string: a fixed 32-byte value with a well-known base64 form.
    const EMPTY_SHA256_B64: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

    #[test]
    fn pins_round_trip_through_text() {
        let text = format!("sha256/{EMPTY_SHA256_B64}");
        let pin = SpkiPin::parse(&text).unwrap();
        assert_eq!(pin.sha256()[..4], [0xe3, 0xb0, 0xc4, 0x42]);
        assert_eq!(pin.to_string(), text);
        assert_eq!(text.parse::<SpkiPin>().unwrap(), pin);
        assert_eq!(SpkiPin::from_sha256(*pin.sha256()), pin);
        assert_eq!(format!("{pin:?}"), format!("SpkiPin({text})"));
    }

    #[test]
    fn malformed_pins_are_refused_with_specific_errors() {
        let body = EMPTY_SHA256_B64;
        assert_eq!(SpkiPin::parse(body), Err(SpkiPinError::Prefix));
        assert_eq!(SpkiPin::parse(&format!("sha1/{body}")), Err(SpkiPinError::Prefix));
        assert_eq!(SpkiPin::parse(&format!("SHA256/{body}")), Err(SpkiPinError::Prefix));
        // curl's `--pinnedpubkey` separator is `sha256//`; the second slash is not base64 here.
        assert_eq!(SpkiPin::parse(&format!("sha256//{body}")), Err(SpkiPinError::Base64));
        assert_eq!(SpkiPin::parse("sha256/not base64!"), Err(SpkiPinError::Base64));
        // Missing padding and the URL-safe alphabet are not the standard form.
        assert_eq!(SpkiPin::parse(&format!("sha256/{}", body.trim_end_matches('='))), Err(SpkiPinError::Base64));
        assert_eq!(SpkiPin::parse(&format!("sha256/{}", body.replace('+', "-"))), Err(SpkiPinError::Base64));
        assert_eq!(SpkiPin::parse(&format!("sha256/{}", STANDARD.encode([7u8; 20]))), Err(SpkiPinError::Length(20)));
        assert_eq!(SpkiPin::parse(&format!("sha256/{}", STANDARD.encode([7u8; 48]))), Err(SpkiPinError::Length(48)));
        assert_eq!(SpkiPin::parse("sha256/"), Err(SpkiPinError::Length(0)));
    }

    #[test]
    fn the_default_is_tls13_only_without_pins() {
        let d = OutboundTls::default();
        assert!(!d.allow_tls12());
        assert!(d.pins().is_empty());
        assert!(d.is_default());
        assert_eq!(serde_json::from_str::<OutboundTls>("{}").unwrap(), d);
        assert!(!OutboundTls::new(true, vec![]).unwrap().is_default());
    }

    #[test]
    fn policies_deserialise_and_serialise_with_pin_text() {
        let pin = format!("sha256/{EMPTY_SHA256_B64}");
        let json = format!(r#"{{"allow_tls12":true,"pins":["{pin}"]}}"#);
        let policy: OutboundTls = serde_json::from_str(&json).unwrap();
        assert!(policy.allow_tls12());
        assert_eq!(policy.pins(), [SpkiPin::parse(&pin).unwrap()]);
        assert_eq!(serde_json::to_string(&policy).unwrap(), json);
    }

    #[test]
    fn bad_policies_are_refused() {
        let pin = |n: u8| SpkiPin::from_sha256([n; 32]);
        let nine: Vec<SpkiPin> = (0..9).map(pin).collect();
        assert_eq!(OutboundTls::new(false, nine), Err(OutboundTlsError::TooManyPins(9)));
        assert!(OutboundTls::new(false, (0..8).map(pin).collect()).is_ok());
        assert_eq!(OutboundTls::new(false, vec![pin(1), pin(2), pin(1)]), Err(OutboundTlsError::DuplicatePin(pin(1))));

        for (json, needle) in [
            (r#"{"pins":["sha1/abc="]}"#.to_string(), "sha256/"),
            (r#"{"allow_tls_12":true}"#.to_string(), "unknown field"),
            (r#"{"allow_tls12":"yes"}"#.to_string(), "invalid type"),
            (format!(r#"{{"pins":[{}]}}"#, vec![format!("\"{}\"", pin(0)); 9].join(",")), "at most 8"),
        ] {
            let err = serde_json::from_str::<OutboundTls>(&json).unwrap_err().to_string();
            assert!(err.contains(needle), "{json}: {err}");
        }
    }
}
