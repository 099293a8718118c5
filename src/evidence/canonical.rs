//! The canonical JSON a record's hash is computed over, and the float normalization that keeps it reproducible.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace, strings and numbers as serde_json
/// writes them (see docs/evidence.md for the exact rules).
pub fn canonical_json(v: &Value) -> String {
    // Serializing a tree of in-memory values cannot fail: its keys are strings and it has no non-finite floats.
    serde_json::to_string(&sorted(v)).unwrap_or_default()
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                if let Some(child) = m.get(k) {
                    out.insert(k.clone(), sorted(child));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// A record's hash: lowercase hex SHA-256 of the canonical JSON of the record without its `hash` field.
pub fn record_hash(record: &Map<String, Value>) -> String {
    let mut without = record.clone();
    without.shift_remove("hash");
    hex::encode(Sha256::digest(
        canonical_json(&Value::Object(without)).as_bytes(),
    ))
}

/// Replaces each float by one that reads back bit-exactly from its own JSON text, so that `verify`,
/// which hashes what it parses, sees the value `append` hashed. Floats with no such neighbour become strings.
pub(crate) fn stabilize_floats(v: &mut Value) {
    match v {
        Value::Object(m) => m.values_mut().for_each(stabilize_floats),
        Value::Array(a) => a.iter_mut().for_each(stabilize_floats),
        Value::Number(n) if n.is_f64() => {
            let mut current = v.clone();
            for _ in 0..4 {
                let text = current.to_string();
                match serde_json::from_str::<Value>(&text) {
                    Ok(back) if back == current => {
                        *v = current;
                        return;
                    }
                    Ok(back @ Value::Number(_)) => current = back,
                    _ => break,
                }
            }
            *v = Value::String(current.to_string());
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth_and_has_no_whitespace() {
        let v = json!({"b": 1, "a": {"d": [true, null, {"z": 1, "y": "é\n"}], "c": -0.5}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":-0.5,"d":[true,null,{"y":"é\n","z":1}]},"b":1}"#
        );
    }

    #[test]
    fn the_hash_ignores_the_hash_field_and_key_order() {
        let a = json!({"seq": 1, "x": "y", "hash": "whatever"});
        let b = json!({"x": "y", "seq": 1});
        let (Value::Object(a), Value::Object(b)) = (a, b) else {
            unreachable!()
        };
        assert_eq!(record_hash(&a), record_hash(&b));
        assert_eq!(record_hash(&a).len(), 64);
    }

    #[test]
    fn stabilized_floats_read_back_exactly() {
        for x in [0.1 + 0.2, 1.0 / 3.0, 1e300, -2.5e-310, 123456.789, 1.0] {
            let mut v = json!({ "x": x });
            stabilize_floats(&mut v);
            let back: Value = serde_json::from_str(&v.to_string()).unwrap_or_default();
            assert_eq!(back, v, "{x}");
        }
    }
}
