//! Table and property tests of the redactor: every shape, every form, every place.

use super::*;
use proptest::prelude::*;
use serde_json::json;

#[test]
fn values_under_secret_keys_and_copies_elsewhere_are_redacted() {
    let r = Redactor::new(["hunter2-long".to_string()]);
    let mut t = json!({"environment": {"DB_PASSWORD": "x", "URL": "mysql://u:hunter2-long@db", "COPY": "hunter2-long", "HOST": "db"},
                       "command": ["--pass=hunter2-long"], "Env": ["API_TOKEN=abc", "A=b"]});
    r.tree(&mut t);
    assert_eq!(t["environment"]["DB_PASSWORD"], REDACTED);
    assert_eq!(t["environment"]["URL"], "mysql://u:<redacted>@db");
    assert_eq!(t["environment"]["COPY"], REDACTED);
    assert_eq!(t["environment"]["HOST"], "db");
    assert_eq!(t["command"][0], "--pass=<redacted>");
    assert_eq!(t["Env"], json!(["API_TOKEN=<redacted>", "A=b"]));
}

#[test]
fn a_network_actions_key_field_survives_redaction() {
    let r = Redactor::new(["hunter2-long".to_string()]);
    let mut t = json!({"actions": [
        {"kind": "create_network", "key": "default", "name": "app_default"},
        {"kind": "create_volume", "key": "data", "name": "app_data"}],
        "token_id": "t-1234", "keys": ["a"], "secret": "ordinary-field",
        "labels": {"com.example.api-key": "lbl-value", "com.example.tier": "web"},
        "build": {"args": {"NPM_TOKEN": "npm-value", "NODE_ENV": "production"}}});
    r.tree(&mut t);
    assert_eq!(t["actions"][0]["key"], "default");
    assert_eq!(t["actions"][1]["key"], "data");
    assert_eq!(t["token_id"], "t-1234");
    assert_eq!(t["keys"], json!(["a"]));
    assert_eq!(t["secret"], "ordinary-field");
    assert_eq!(t["labels"]["com.example.api-key"], REDACTED);
    assert_eq!(t["labels"]["com.example.tier"], "web");
    assert_eq!(t["build"]["args"]["NPM_TOKEN"], REDACTED);
    assert_eq!(t["build"]["args"]["NODE_ENV"], "production");
}

#[test]
fn a_short_secret_is_redacted_where_it_stands_delimited() {
    let r = Redactor::new(["abc12".to_string()]);
    for (input, want) in [
        ("abc12", REDACTED),
        ("mysql://u:abc12@db", "mysql://u:<redacted>@db"),
        ("pass=\"abc12\"", "pass=\"<redacted>\""),
        ("xabc12", "xabc12"),
        ("abc123", "abc123"),
        ("abc12 and abc12", "<redacted> and <redacted>"),
    ] {
        assert_eq!(r.text(input), want, "{input}");
    }
    let one = Redactor::new(["7".to_string()]);
    assert_eq!(one.text("port 7, 17, 7x"), "port <redacted>, 17, 7x");
}

#[test]
fn every_form_of_a_secret_is_replaced() {
    let secret = "tok\"val-123 456/é";
    let r = Redactor::new([secret.to_string()]);
    for form in [
        secret.to_string(),
        format!("{secret:?}").trim_matches('"').to_string(),
        json_escape(secret),
        json_escape(&debug_escape(secret)),
        "tok%22val-123%20456%2F%C3%A9".into(),
        "tok%22val-123%20456%2f%c3%a9".into(),
        "tok%22val-123+456%2F%C3%A9".into(),
        "dG9rInZhbC0xMjMgNDU2L8Op".into(),
    ] {
        let out = r.text(&format!("x {form} y"));
        assert_eq!(out, "x <redacted> y", "{form}");
    }
}

#[test]
fn an_error_printed_with_debug_is_redacted() {
    let r = Redactor::new(["tok\"val-123456".to_string()]);
    let msg = format!("invalid port {:?}", "tok\"val-123456");
    assert_eq!(r.text(&msg), "invalid port \"<redacted>\"");
}

#[test]
fn overlapping_secrets_are_replaced_whole() {
    let r = Redactor::new(["abcdefgh".to_string(), "xyzabc".to_string()]);
    assert_eq!(r.text("1 xyzabcdefgh 2"), "1 <redacted> 2");
    let r = Redactor::new(["secret-one".to_string(), "one-more".to_string()]);
    assert_eq!(r.text("secret-one-more!"), "<redacted>!");
}

#[test]
fn credential_shapes_are_redacted_without_being_registered() {
    let r = Redactor::default();
    assert_eq!(r.text("mysql://u:zz9@db"), "mysql://u:<redacted>@db");
    assert_eq!(r.text("AKIAIOSFODNN7EXAMPLE in log"), "<redacted> in log");
}

#[test]
fn the_registered_redactor_is_built_once_until_a_secret_is_added() {
    register_secrets(["registry-cache-secret-1".to_string()]);
    let a = registered();
    let b = registered();
    assert!(a.shares_automaton_with(&b));
    register_secrets(["registry-cache-secret-1".to_string()]);
    assert!(registered().shares_automaton_with(&a));
    register_secrets(["registry-cache-secret-2".to_string()]);
    let c = registered();
    assert!(!c.shares_automaton_with(&a));
    assert_eq!(scrub("a registry-cache-secret-2 b"), "a <redacted> b");
}

#[test]
fn echoed_input_is_scrubbed_then_truncated() {
    register_secrets(["echo-secret-0123456789".to_string()]);
    let long = format!("{}echo-secret-0123456789", "x".repeat(30));
    let out = echo(&long, 40);
    assert!(!out.contains("echo-secret"), "{out}");
    assert!(out.chars().count() <= 41, "{out}");
}

/// Secrets of every shape: quotes, backslashes, newlines, unicode, percent-encodable chars.
fn secret() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9]{1,64}",
        "[\"\\\\\n\t a-zA-Z0-9%/@:+=&?#'éß日\u{1F600}.-]{1,64}",
        "\\PC{1,64}",
    ]
}

/// What stands next to a secret in output.
fn delimiter() -> impl Strategy<Value = String> {
    "[ \"'=:/@\n,;(){}\\[\\]<>]{0,3}"
}

/// The forms checked in the property tests (the redactor knows more).
fn checked_forms(s: &str) -> Vec<String> {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let pct = |lower: bool| -> String {
        s.bytes()
            .map(|b| match b {
                _ if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => (b as char).to_string(),
                _ if lower => format!("%{b:02x}"),
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    vec![
        s.to_string(),
        debug_escape(s),
        json_escape(s),
        pct(false),
        pct(true),
        STANDARD.encode(s),
        URL_SAFE_NO_PAD.encode(s),
    ]
}

/// True when `form` survives in `out`, beyond what the delimiters alone hold.
fn survives(out: &str, form: &str, pre: &str, post: &str) -> bool {
    let stripped = out.replace(REDACTED, "\u{0}");
    stripped.contains(form) && !format!("{pre}\u{0}{post}").contains(form)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_form_of_a_secret_survives_text_or_tree(s in secret(), pre in delimiter(), post in delimiter(), form_at in 0usize..7) {
        let r = Redactor::new([s.clone()]);
        let form = checked_forms(&s)[form_at].clone();
        prop_assume!(!pre.contains(form.as_str()) && !post.contains(form.as_str()));
        let text = format!("{pre}{form}{post}");
        let out = r.text(&text);
        prop_assert!(!survives(&out, &form, &pre, &post), "{:?} in {:?}", form, out);
        let mut t = json!({"environment": {"X": text.clone(), "DB_PASSWORD": "v"}, "command": [text.clone()]});
        r.tree(&mut t);
        for v in [&t["environment"]["X"], &t["command"][0]] {
            let v = v.as_str().unwrap_or_default();
            prop_assert!(!survives(v, &form, &pre, &post), "{:?} in {:?}", form, v);
        }
    }

    #[test]
    fn redaction_is_idempotent_and_never_panics(
        secrets in proptest::collection::vec(secret(), 0..4),
        pieces in proptest::collection::vec((0usize..6, "\\PC{0,6}"), 0..8),
    ) {
        prop_assume!(secrets.iter().all(|s| !s.contains(REDACTED)));
        let text: String = pieces
            .iter()
            .map(|(i, filler)| secrets.get(*i).cloned().unwrap_or_default() + filler)
            .collect();
        let r = Redactor::new(secrets.clone());
        let once = r.text(&text);
        prop_assert_eq!(r.text(&once), once.clone());
        let mut t = json!({"environment": {"DB_PASSWORD": text.clone()}, "x": [text.clone()]});
        r.tree(&mut t);
        let mut again = t.clone();
        r.tree(&mut again);
        prop_assert_eq!(again, t);
    }

    #[test]
    fn a_long_secret_never_survives_redaction(secret in "[a-zA-Z0-9]{6,20}", pre in ".{0,10}", post in ".{0,10}") {
        let r = Redactor::new([secret.clone()]);
        let out = r.text(&format!("{pre}{secret}{post}"));
        prop_assert!(!out.contains(&secret));
    }
}
