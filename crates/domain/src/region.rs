//! Data-residency regions. A workspace's notification data, addresses and credentials live only
//! in its region's store; the name also forms the `CHIMATIC_REGION_<NAME>_…` variables that
//! configure that store, so it is kept to lowercase letters and digits.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region(String);

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid region: expected 1 to 16 lowercase letters and digits, starting with a letter")]
pub struct RegionError;

impl Region {
    /// The region of the primary store (`CHIMATIC_DATABASE_URL` or the embedded files) unless
    /// configured otherwise.
    pub fn primary_default() -> Self {
        Self("default".into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `<NAME>` in `CHIMATIC_REGION_<NAME>_DATABASE_URL`.
    pub fn env_name(&self) -> String {
        self.0.to_ascii_uppercase()
    }
}

impl FromStr for Region {
    type Err = RegionError;
    fn from_str(s: &str) -> Result<Self, RegionError> {
        let valid = (1..=16).contains(&s.len())
            && s.as_bytes()[0].is_ascii_lowercase()
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if valid { Ok(Self(s.to_string())) } else { Err(RegionError) }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for Region {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Region {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[a-z][a-z0-9]{0,15}$"))
            .examples(["eu"])
            .into()
    }
}

impl utoipa::ToSchema for Region {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_short_lowercase_words() {
        for good in ["us", "eu", "eu2", "default", "apsoutheast1"] {
            assert_eq!(good.parse::<Region>().unwrap().as_str(), good);
        }
        for bad in ["", "EU", "eu-west", "1eu", "eu_west", "averyveryverylongregion", "eu "] {
            assert!(bad.parse::<Region>().is_err(), "{bad:?} accepted");
        }
        assert_eq!("eu2".parse::<Region>().unwrap().env_name(), "EU2");
    }
}
