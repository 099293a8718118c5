//! Go's `encoding/json.Marshal` of an emitted compose-go value: struct fields in declaration order, map keys sorted, HTML-escaped strings, no spaces.
//!
//! The emitter ([`super::emit_project`]) already decides every value's JSON form and which
//! `omitempty` fields are left out; what `json.Marshal` adds on top is the byte form: Go writes
//! struct fields in the order the struct declares them and the keys of a map sorted, and it
//! escapes `<`, `>`, `&`, U+2028 and U+2029 in every string (the output of the types' own
//! `MarshalJSON` methods included, which the encoder compacts with HTML escaping on).

use std::fmt::Write as _;

use super::schema::{self, F, Ty};
use crate::desired::tree::Tree;

/// `json.Marshal(types.ServiceConfig)` of an emitted service.
pub fn service(value: &Tree) -> String {
    let mut out = String::new();
    write_struct(schema::SERVICE, value, &mut out);
    out
}

/// `json.Marshal(types.NetworkConfig)` of an emitted network.
pub fn network(value: &Tree) -> String {
    let mut out = String::new();
    write_struct(schema::NETWORK, value, &mut out);
    out
}

/// `json.Marshal(types.VolumeConfig)` of an emitted volume.
pub fn volume(value: &Tree) -> String {
    let mut out = String::new();
    write_struct(schema::VOLUME, value, &mut out);
    out
}

fn write_struct(fields: &[F], value: &Tree, out: &mut String) {
    let Tree::Object(m) = value else {
        write_plain(value, out);
        return;
    };
    out.push('{');
    let mut first = true;
    for f in fields {
        let Some(v) = m.get(f.name) else { continue };
        if !first {
            out.push(',');
        }
        first = false;
        write_string(f.name, out);
        out.push(':');
        write_typed(&f.ty, v, out);
    }
    out.push('}');
}

fn write_typed(ty: &Ty, value: &Tree, out: &mut String) {
    match (ty, value) {
        (_, Tree::Null) => out.push_str("null"),
        (Ty::Struct(fields), _) => write_struct(fields, value, out),
        (Ty::Ptr(inner), _) => write_typed(inner, value, out),
        (Ty::List(inner), Tree::Array(items)) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_typed(inner, item, out);
            }
            out.push(']');
        }
        (Ty::Map(inner), Tree::Object(m)) => write_sorted(m, out, |v, out| {
            write_typed(inner, v, out);
        }),
        (
            Ty::Mapping
            | Ty::Labels
            | Ty::Options
            | Ty::StringMap
            | Ty::MultiOptions
            | Ty::MappingWithEquals,
            Tree::Object(m),
        ) => write_sorted(m, out, write_plain),
        _ => write_plain(value, out),
    }
}

/// A Go map: keys sorted bytewise.
fn write_sorted(
    m: &serde_json::Map<String, Tree>,
    out: &mut String,
    each: impl Fn(&Tree, &mut String),
) {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    out.push('{');
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(k, out);
        out.push(':');
        each(&m[k.as_str()], out);
    }
    out.push('}');
}

/// A value whose form the emitter already fixed (scalars, string lists, a ulimit).
fn write_plain(value: &Tree, out: &mut String) {
    match value {
        Tree::Null => out.push_str("null"),
        Tree::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Tree::Number(n) => write_number(n, out),
        Tree::String(s) => write_string(s, out),
        Tree::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_plain(item, out);
            }
            out.push(']');
        }
        Tree::Object(m) => {
            out.push('{');
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_plain(v, out);
            }
            out.push('}');
        }
    }
}

/// Go's float formatting (`strconv.AppendFloat(f, 'f' or 'e', -1, bits)`): the shortest
/// digits, in exponent form below 1e-6 and from 1e21 up, with a two-digit exponent.
fn write_number(n: &serde_json::Number, out: &mut String) {
    if n.is_i64() || n.is_u64() {
        let _ = write!(out, "{n}");
        return;
    }
    let f = n.as_f64().unwrap_or(0.0);
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        // Rust's `{:e}` gives the shortest digits as `1.5e-7` or `2.5e22`; Go writes a
        // signed exponent of at least two digits, then trims `e-07` back to `e-7`.
        let text = format!("{f:e}");
        let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
        match exp.strip_prefix('-') {
            Some(digits) => {
                let _ = write!(out, "{mantissa}e-{digits}");
            }
            None => {
                let _ = write!(out, "{mantissa}e+{exp:0>2}");
            }
        }
    } else {
        let _ = write!(out, "{n}");
    }
}

/// A JSON string as Go's encoder writes it with HTML escaping on.
pub fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_are_escaped_as_go_escapes_them_for_html() {
        let mut out = String::new();
        write_string("a<b>&c\"\\\n\t\u{1}\u{2028}é", &mut out);
        assert_eq!(out, r#""a\u003cb\u003e\u0026c\"\\\n\t\u0001\u2028é""#);
    }

    #[test]
    fn floats_use_go_exponent_form_outside_the_plain_range() {
        for (v, want) in [
            (json!(0.5), "0.5"),
            (json!(1.5e-7), "1.5e-7"),
            (json!(2.5e22), "2.5e+22"),
            (json!(12), "12"),
        ] {
            let mut out = String::new();
            write_plain(&v, &mut out);
            assert_eq!(out, want);
        }
    }

    proptest::proptest! {
        /// Any string reads back as itself, with no raw `<`, `>` or `&` left.
        #[test]
        fn any_string_reads_back_and_is_html_safe(text in "\\PC*|[<>&\u{0}-\u{1f}\u{2028}\u{2029}\"\\\\a-z]*") {
            let mut out = String::new();
            write_string(&text, &mut out);
            let back: String = serde_json::from_str(&out).expect("valid JSON");
            proptest::prop_assert_eq!(back, text);
            let unsafe_chars = ['<', '>', '&', '\u{2028}', '\u{2029}'];
            proptest::prop_assert!(!out.contains(unsafe_chars), "{}", out);
        }

        /// Map keys come out sorted whatever order the model holds them in, and the result is
        /// the same JSON value.
        #[test]
        fn labels_come_out_sorted_and_equal(keys in proptest::collection::vec("[a-z.<&]{1,6}", 0..8)) {
            let labels: serde_json::Map<String, Tree> =
                keys.iter().map(|k| (k.clone(), json!(k.len().to_string()))).collect();
            let v = json!({"name": "n", "ipam": {}, "labels": labels});
            let text = network(&v);
            let back: Tree = serde_json::from_str(&text).expect("valid JSON");
            proptest::prop_assert_eq!(&back, &v);
            let mut sorted: Vec<&String> = labels.keys().collect();
            sorted.sort();
            let positions: Vec<usize> = sorted
                .iter()
                .map(|k| {
                    let mut key = String::new();
                    write_string(k, &mut key);
                    text.find(&format!("{key}:")).unwrap_or(0)
                })
                .collect();
            proptest::prop_assert!(positions.windows(2).all(|w| w[0] < w[1]), "{}", text);
        }
    }

    #[test]
    fn struct_fields_keep_declaration_order_and_map_keys_are_sorted() {
        let v = json!({
            "name": "p_front",
            "labels": {"z": "1", "a": "2"},
            "driver": "bridge",
            "ipam": {}
        });
        assert_eq!(
            network(&v),
            r#"{"name":"p_front","driver":"bridge","ipam":{},"labels":{"a":"2","z":"1"}}"#
        );
    }
}
