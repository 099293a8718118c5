//! Table tests of the YAML stage: Go's scalar resolution, merge keys, tags, node budgets and where syntax errors point.

use super::*;
use serde_json::json;

fn one(text: &str) -> Document {
    let mut docs = parse_file(Path::new("compose.yaml"), text).expect("parses");
    assert_eq!(docs.len(), 1);
    docs.remove(0)
}

#[test]
fn merge_keys_take_the_anchor_and_keep_local_keys_first() {
    let d = one(
        "x-base: &b\n  image: a\n  restart: always\nservices:\n  web:\n    <<: *b\n    image: b\n",
    );
    assert_eq!(
        d.tree["services"]["web"],
        json!({"image": "b", "restart": "always"})
    );
    assert_eq!(d.tree["x-base"]["image"], "a");
}

#[test]
fn a_reset_tag_removes_the_key_and_is_recorded() {
    let d = one("services:\n  web:\n    ports: !reset []\n    image: x\n");
    assert_eq!(d.tree["services"]["web"], json!({"image": "x"}));
    assert_eq!(
        d.markers,
        vec![(KeyPath::parse("services.web.ports"), Marker::Reset)]
    );
}

#[test]
fn an_override_tag_keeps_the_value_and_is_recorded() {
    let d = one("services:\n  web:\n    ports: !override [\"80:80\"]\n");
    assert_eq!(d.tree["services"]["web"]["ports"], json!(["80:80"]));
    assert_eq!(
        d.markers,
        vec![(KeyPath::parse("services.web.ports"), Marker::Override)]
    );
}

#[test]
fn a_syntax_error_names_file_line_and_column() {
    let e = parse_file(
        Path::new("compose.yaml"),
        "services:\n  web:\n    image: [a\n",
    )
    .expect_err("must fail");
    let msg = e.to_string();
    assert!(msg.starts_with("compose.yaml: line "), "{msg}");
    assert!(msg.contains("column"), "{msg}");
}

#[test]
fn a_syntax_error_names_where_the_broken_construct_began() {
    // (text, the line and column named, words of the message)
    let cases: [(&str, (usize, usize), &[&str]); 6] = [
        (
            "services:\n  web:\n    image: x\n    environment:\n      A: [1, 2\n    ports: []\n  db:\n    image: y\n",
            (5, 10),
            &[
                "did not find expected ',' or ']' while parsing a flow sequence that begins here; the parser gave up at line 6, column 10",
            ],
        ),
        (
            "services:\n  web:\n    labels: {a: 1,\n    image: x\n",
            (3, 13),
            &["flow mapping that begins here; the parser gave up at line "],
        ),
        (
            "services:\n  web:\n    image: \"nginx\n    ports: []\n\n",
            (3, 12),
            &["quoted scalar that begins here; the parser gave up at line "],
        ),
        ("[a, b\n", (1, 1), &["flow sequence that begins here"]),
        (
            "services:\n  web:\n    image: x\n   bad: y\n",
            (4, 4),
            &[
                "did not find expected key while parsing a block mapping that begins at line 2, column 3",
            ],
        ),
        // Nothing was left open: the place where the parser gave up.
        (
            "services:\n  web:\n    image: nginx: latest\n",
            (3, 17),
            &["mapping values are not allowed"],
        ),
    ];
    for (text, (line, column), words) in cases {
        let e = parse_file(Path::new("compose.yaml"), text).expect_err("must fail");
        let msg = e.to_string();
        assert!(
            msg.starts_with(&format!("compose.yaml: line {line}, column {column}: ")),
            "{text:?}: {msg}"
        );
        for w in words {
            assert!(msg.contains(w), "{text:?}: {msg}");
        }
        let libyaml_style = msg.match_indices("line ").any(|(i, _)| {
            msg[i + 5..]
                .trim_start_matches(|c: char| c.is_ascii_digit())
                .starts_with(" column")
        });
        assert!(!libyaml_style, "one location style: {msg}");
    }
}

#[test]
fn the_location_of_an_error_is_read_from_libyamls_message() {
    let cases = [
        (
            "did not find expected ',' or ']' at line 7 column 1, while parsing a flow sequence at line 5 column 10",
            "",
            (7, 1),
            (
                5,
                10,
                "did not find expected ',' or ']' while parsing a flow sequence that begins here; the parser gave up at line 7, column 1",
            ),
        ),
        (
            "found unexpected end of stream at line 3 column 1, while scanning a quoted scalar",
            "context_mark: Mark { line: 3, column: 1 }",
            (3, 1),
            (
                3,
                1,
                "found unexpected end of stream while scanning a quoted scalar",
            ),
        ),
        (
            "did not find expected ',' or ']' at line 2 column 1, while parsing a flow sequence",
            "context: \"while parsing a flow sequence\"",
            (2, 1),
            (
                1,
                1,
                "did not find expected ',' or ']' while parsing a flow sequence that begins here; the parser gave up at line 2, column 1",
            ),
        ),
        (
            "mapping values are not allowed in this context at line 3 column 17",
            "",
            (3, 17),
            (3, 17, "mapping values are not allowed in this context"),
        ),
        (
            "invalid type: sequence, expected a string at line 2 column 3",
            "",
            (2, 3),
            (2, 3, "invalid type: sequence, expected a string"),
        ),
    ];
    for (text, debug, gave_up, (line, column, message)) in cases {
        assert_eq!(
            locate(text, debug, gave_up),
            (line, column, message.to_string()),
            "{text}"
        );
    }
}

#[test]
fn a_non_string_key_is_refused_with_its_path() {
    let e = parse_file(
        Path::new("c.yaml"),
        "services:\n  web:\n    labels:\n      1: x\n",
    )
    .expect_err("must fail");
    assert!(e.to_string().contains("services.web.labels"), "{e}");
}

#[test]
fn an_unknown_tag_is_refused() {
    assert!(parse_file(Path::new("c.yaml"), "services: !foo {}\n").is_err());
}

#[test]
fn empty_documents_are_skipped_and_several_documents_are_kept() {
    let docs = parse_file(
        Path::new("c.yaml"),
        "---\n---\nservices: {}\n---\nname: x\n",
    )
    .unwrap();
    assert_eq!(docs.len(), 2);
}

#[test]
fn anchors_built_from_anchors_merge_fully() {
    let d = one(
        "x-a: &a\n  image: a\nx-b: &b\n  <<: *a\n  restart: always\nservices:\n  s:\n    <<: *b\n",
    );
    assert_eq!(
        d.tree["services"]["s"],
        json!({"image": "a", "restart": "always"})
    );
}

#[test]
fn plain_scalars_resolve_like_go_yaml_and_quoted_ones_stay_strings() {
    let d = one(
        "a: 0755\nb: '0755'\nc: 1_000\nd: 0b101\ne: 2024-01-01\nf: \"2024-01-01\"\ng: 2024-01-01T10:20:30Z\nh: 08\ni: 1.5\nj: -012\n",
    );
    assert_eq!(d.tree["a"], json!(493));
    assert_eq!(d.tree["b"], json!("0755"));
    assert_eq!(d.tree["c"], json!(1000));
    assert_eq!(d.tree["d"], json!(5));
    assert_eq!(d.tree["e"], json!("2024-01-01 00:00:00 +0000 UTC"));
    assert_eq!(d.tree["f"], json!("2024-01-01"));
    assert_eq!(d.tree["g"], json!("2024-01-01 10:20:30 +0000 UTC"));
    assert_eq!(d.tree["h"], json!(8.0));
    assert_eq!(d.tree["i"], json!(1.5));
    assert_eq!(d.tree["j"], json!(-10));
}

#[test]
fn the_top_level_name_is_read_from_the_last_document_that_sets_it() {
    assert_eq!(
        top_level_name("name: a\n---\nname: b\nservices: {}\n").as_deref(),
        Some("b")
    );
    assert_eq!(top_level_name("services:\n  name: {}\n"), None);
    assert_eq!(top_level_name("name: [\n"), None);
}

#[test]
fn a_scalar_document_is_refused() {
    assert!(parse_file(Path::new("c.yaml"), "just a string\n").is_err());
}
