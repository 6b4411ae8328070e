//! The API's masked views, rendered: a page takes the JSON a `/v1` handler returns for the
//! member (the same handler, the same masking) and shows chosen fields as a table or a list, so
//! the console cannot show more than the API does.

use serde::Serialize;
use serde_json::Value;

pub struct Table {
    pub columns: Vec<&'static str>,
    pub rows: Vec<TableRow>,
}

pub struct TableRow {
    /// Where the first cell links to, if anywhere.
    pub link: Option<String>,
    pub cells: Vec<String>,
}

/// A field of a view as text: strings as they are, other values as compact JSON.
pub fn cell(value: &Value, pointer: &str) -> String {
    match value.pointer(pointer) {
        None | Some(Value::Null) => "—".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) if a.is_empty() => "—".into(),
        Some(other) => other.to_string(),
    }
}

/// The view as JSON, exactly as the API would answer.
pub fn json(view: impl Serialize) -> Value {
    serde_json::to_value(view).unwrap_or(Value::Null)
}

/// One row per item of `items`, one column per `(title, JSON pointer)`; the first cell links to
/// `link` with the item's `id` appended.
pub fn table(items: &Value, columns: &[(&'static str, &'static str)], link: Option<&str>) -> Table {
    let rows = items
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| TableRow {
                    link: link.and_then(|prefix| item["id"].as_str().map(|id| format!("{prefix}{id}"))),
                    cells: columns.iter().map(|(_, p)| cell(item, p)).collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    Table { columns: columns.iter().map(|(t, _)| *t).collect(), rows }
}

/// Every leaf of a view as `(path, text)`, for a detail page.
pub fn fields(value: &Value) -> Vec<(String, String)> {
    fn walk(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(map) if !map.is_empty() => {
                for (k, v) in map {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(&path, v, out);
                }
            }
            Value::Array(items) if !items.is_empty() && items.iter().any(|i| i.is_object()) => {
                for (i, v) in items.iter().enumerate() {
                    walk(&format!("{prefix}[{i}]"), v, out);
                }
            }
            Value::String(s) => out.push((prefix.to_string(), s.clone())),
            Value::Null => out.push((prefix.to_string(), "—".into())),
            other => out.push((prefix.to_string(), other.to_string())),
        }
    }
    let mut out = Vec::new();
    walk("", value, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn views_become_cells_and_fields() {
        let items = json!([{"id": "sub_1", "name": "a", "n": 2, "tags": [], "nested": {"x": true}}]);
        let t = table(&items, &[("Name", "/name"), ("N", "/n"), ("Tags", "/tags"), ("X", "/nested/x")], Some("/s/"));
        assert_eq!(t.rows[0].cells, ["a", "2", "—", "true"]);
        assert_eq!(t.rows[0].link.as_deref(), Some("/s/sub_1"));
        let f = fields(&json!({"a": {"b": "c"}, "steps": [{"k": 1}], "list": ["x"]}));
        assert!(f.contains(&("a.b".into(), "c".into())));
        assert!(f.contains(&("steps[0].k".into(), "1".into())));
        assert!(f.contains(&("list".into(), "[\"x\"]".into())));
    }
}
