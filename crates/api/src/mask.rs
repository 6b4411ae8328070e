//! Masked views of stored data: enough to recognise a value, never enough to recover it.

use serde_json::Value;

const MAX_DEPTH: usize = 4;
const MAX_ENTRIES: usize = 32;
const ELLIPSIS: &str = "…";

/// Keeps the shape of a JSON payload: object keys (truncated) and, for longer strings, a
/// three-character prefix; every other scalar is elided.
pub fn mask_json(value: &Value) -> Value {
    mask_at(value, 0)
}

fn mask_at(value: &Value, depth: usize) -> Value {
    match value {
        Value::Object(map) if depth < MAX_DEPTH => {
            Value::Object(map.iter().take(MAX_ENTRIES).map(|(k, v)| (truncate(k, 32), mask_at(v, depth + 1))).collect())
        }
        Value::Array(items) if depth < MAX_DEPTH => {
            Value::Array(items.iter().take(MAX_ENTRIES).map(|v| mask_at(v, depth + 1)).collect())
        }
        Value::String(s) => Value::String(mask_text(s)),
        Value::Bool(_) | Value::Null => value.clone(),
        _ => Value::String(ELLIPSIS.into()),
    }
}

/// `"order-12345"` → `"ord…"`; short strings are elided entirely.
pub fn mask_text(s: &str) -> String {
    if s.chars().count() <= 8 {
        ELLIPSIS.to_string()
    } else {
        format!("{}{ELLIPSIS}", s.chars().take(3).collect::<String>())
    }
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}{ELLIPSIS}", s.chars().take(max).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn masks_every_value_but_keeps_the_shape() {
        let masked = mask_json(&json!({
            "email": "alice@example.com", "amount": 4200, "ok": true, "pin": "1234",
            "items": [{"sku": "canary-sku-9f3a"}]
        }));
        assert_eq!(masked, json!({"email": "ali…", "amount": "…", "ok": true, "pin": "…", "items": [{"sku": "can…"}]}));
        assert!(!masked.to_string().contains("canary-sku"));
    }
}
