//! JSON numbers that must be whole: `6` and `6.0` alike (JSON Schema counts both as integers,
//! and so do the generators and clients that read the OpenAPI document), nothing fractional.

use serde::{Deserialize, Deserializer, de::Error};

/// For `#[serde(default, deserialize_with = "whole_number::optional_u32")]`.
pub fn optional_u32<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Number {
        Whole(u64),
        Float(f64),
    }
    let Some(number) = Option::<Number>::deserialize(deserializer)? else { return Ok(None) };
    let whole = match number {
        Number::Whole(n) => Some(n),
        Number::Float(f) if f.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&f) => Some(f as u64),
        Number::Float(_) => None,
    };
    whole.and_then(|n| u32::try_from(n).ok()).map(Some).ok_or_else(|| D::Error::custom("expected a whole number"))
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize)]
    struct T {
        #[serde(default, deserialize_with = "super::optional_u32")]
        n: Option<u32>,
    }

    fn n(json: &str) -> Option<Option<u32>> {
        serde_json::from_str::<T>(json).ok().map(|t| t.n)
    }

    #[test]
    fn whole_numbers_in_either_notation_and_nothing_else() {
        assert_eq!(n(r#"{"n": 6}"#), Some(Some(6)));
        assert_eq!(n(r#"{"n": 6.0}"#), Some(Some(6)));
        assert_eq!(n(r#"{"n": null}"#), Some(None));
        assert_eq!(n("{}"), Some(None));
        for bad in [r#"{"n": 6.5}"#, r#"{"n": -1}"#, r#"{"n": 4294967296}"#, r#"{"n": "6"}"#, r#"{"n": 1e400}"#] {
            assert_eq!(n(bad), None, "{bad}");
        }
    }
}
