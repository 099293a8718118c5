//! Property tests: the env-file and interpolation grammars never panic and leave `$`-free text alone.

use proptest::prelude::*;
use spindle::desired::{dotenv, interpolate};

fn lookup(name: &str) -> Option<String> {
    match name {
        "A" => Some("a".to_string()),
        "E" => Some(String::new()),
        "N" => Some("${A}$$".to_string()),
        _ => None,
    }
}

/// Text made mostly of the characters the grammars care about.
fn grammar_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("$".to_string()),
            Just("{".to_string()),
            Just("}".to_string()),
            Just(":".to_string()),
            Just("-".to_string()),
            Just("+".to_string()),
            Just("?".to_string()),
            Just("A".to_string()),
            Just("E".to_string()),
            Just("N".to_string()),
            Just("_x1".to_string()),
            Just("=".to_string()),
            Just("\"".to_string()),
            Just("'".to_string()),
            Just("\\".to_string()),
            Just("#".to_string()),
            Just(" ".to_string()),
            Just("\n".to_string()),
            Just("\r".to_string()),
            Just("\t".to_string()),
            Just("export ".to_string()),
            Just("\u{FEFF}".to_string()),
            Just("0".to_string()),
            Just("7".to_string()),
            Just("é".to_string()),
            Just("ſ".to_string()),
            any::<char>().prop_map(String::from),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #[test]
    fn interpolation_never_panics_on_grammar_like_text(s in grammar_text()) {
        let _ = interpolate::interpolate_str(&s, &lookup);
    }

    #[test]
    fn interpolation_never_panics_on_arbitrary_text(s in any::<String>()) {
        let _ = interpolate::interpolate_str(&s, &lookup);
    }

    #[test]
    fn text_without_a_dollar_interpolates_to_itself(s in any::<String>()) {
        let s = s.replace('$', "");
        prop_assert_eq!(interpolate::interpolate_str(&s, &lookup).ok(), Some(s));
    }

    #[test]
    fn grammar_like_text_without_a_dollar_interpolates_to_itself(s in grammar_text()) {
        let s = s.replace('$', "");
        prop_assert_eq!(interpolate::interpolate_str(&s, &lookup).ok(), Some(s));
    }

    #[test]
    fn doubled_dollars_always_read_as_single_dollars(s in any::<String>()) {
        let escaped = s.replace('$', "$$");
        prop_assert_eq!(interpolate::interpolate_str(&escaped, &lookup).ok(), Some(s));
    }

    #[test]
    fn env_file_parsing_never_panics_on_grammar_like_text(s in grammar_text()) {
        let _ = dotenv::parse(&s, &lookup);
    }

    #[test]
    fn env_file_parsing_never_panics_on_arbitrary_text(s in any::<String>()) {
        let _ = dotenv::parse(&s, &lookup);
    }

    #[test]
    fn a_simple_assignment_reads_back_its_value(
        key in "[A-Za-z_][A-Za-z0-9_]{0,10}",
        value in "[A-Za-z0-9_./:@-]{0,20}",
    ) {
        let parsed = dotenv::parse(&format!("{key}={value}\n"), &|_: &str| None);
        let got = parsed.ok().and_then(|m| m.get(&key).cloned());
        prop_assert_eq!(got, Some(value));
    }

    #[test]
    fn interpolating_a_tree_never_panics(s in grammar_text(), k in grammar_text()) {
        let mut tree = serde_json::json!({
            "services": {k.clone(): {"ports": [{"target": s.clone()}], "cpus": s.clone(), "image": s}},
        });
        let _ = interpolate::interpolate_tree(&mut tree, &lookup);
    }
}
