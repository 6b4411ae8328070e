//! `Sensitive<T>` carries personal data and secrets. Its Debug, Display and Serialize print a
//! redaction marker, so a value can only leave through an explicit [`Sensitive::expose`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const REDACTED: &str = "[redacted]";

#[derive(Clone, PartialEq, Eq, Default)]
pub struct Sensitive<T>(T);

impl<T> Sensitive<T> {
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The only way to the value; call it at the point of use (encrypt, sign, send).
    pub fn expose(&self) -> &T {
        &self.0
    }

    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> Serialize for Sensitive<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

/// Input arrives as plain JSON and is wrapped on the way in.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sensitive<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Self)
    }
}

impl<T: utoipa::PartialSchema> utoipa::PartialSchema for Sensitive<T> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        T::schema()
    }
}

impl<T: utoipa::ToSchema> utoipa::ToSchema for Sensitive<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rendering_redacts() {
        let s = Sensitive::new(String::from("canary-4f2a"));
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(format!("{s}"), REDACTED);
        assert_eq!(format!("{:#?}", Some(&s)), format!("Some(\n    {REDACTED},\n)"));
        assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{REDACTED}\""));
        assert_eq!(s.expose(), "canary-4f2a");
    }

    #[test]
    fn deserializes_transparently() {
        let s: Sensitive<serde_json::Value> = serde_json::from_str(r#"{"a":1}"#).unwrap();
        assert_eq!(s.expose()["a"], 1);
    }
}
