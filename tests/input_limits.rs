//! Input limits (issue 10, point 5): every file the loader reads is capped in size, and YAML in nesting depth,
//! before parsing; both limits are set by `SPINDLE_MAX_INPUT_BYTES` and `SPINDLE_MAX_INPUT_DEPTH`.
//!
//! Each test writes a project into a temporary folder and runs `spindle config` there with a cleared environment
//! (no engine is needed): exit 1, one error naming the file (and line), the limit and the variable that raises it.

use std::path::Path;
use std::process::{Command, Output};

const SERVICE: &str = "services:\n  web:\n    image: busybox\n";

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp dir");
    for (name, text) in files {
        let path = dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(path, text).expect("write");
    }
    dir
}

fn config(dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spindle"));
    command
        .args(["--desired-state", "."])
        .args(["config", "--format", "json"])
        .current_dir(dir)
        .env_clear();
    for key in ["PATH", "HOME"] {
        if let Some(value) = std::env::var_os(key) {
            command.env(key, value);
        }
    }
    command.envs(env.iter().copied());
    command.output().expect("the spindle binary runs")
}

/// stderr of a refused load, after checking exit 1, no stdout and no panic.
#[track_caller]
fn refused(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

fn nested(levels: usize) -> String {
    format!(
        "{SERVICE}    command: {}{}\n",
        "[".repeat(levels),
        "]".repeat(levels)
    )
}

#[test]
fn one_hundred_thousand_nested_flow_levels_are_refused_naming_the_file_line_and_limit() {
    let dir = project(&[("compose.yaml", &nested(100_000))]);
    let err = refused(&config(dir.path(), &[]));
    assert!(err.contains("compose.yaml: line 4"), "{err}");
    assert!(err.contains("256 levels"), "{err}");
    assert!(err.contains("SPINDLE_MAX_INPUT_DEPTH"), "{err}");
    assert!(
        err.len() < 1000,
        "the error echoes the input: {} bytes",
        err.len()
    );
}

#[test]
fn an_eleven_mebibyte_compose_file_is_refused_before_parsing() {
    let big = format!("{SERVICE}# {}\n", "x".repeat(11 * 1024 * 1024));
    let dir = project(&[("compose.yaml", &big)]);
    let err = refused(&config(dir.path(), &[]));
    assert!(err.contains("compose.yaml"), "{err}");
    assert!(err.contains("10485760 bytes"), "{err}");
    assert!(err.contains("SPINDLE_MAX_INPUT_BYTES"), "{err}");
}

#[test]
fn the_limits_are_set_by_the_environment_both_ways() {
    let dir = project(&[("compose.yaml", &nested(20))]);
    assert_eq!(config(dir.path(), &[]).status.code(), Some(1)); // a 20-level command is no string
    let err = refused(&config(dir.path(), &[("SPINDLE_MAX_INPUT_DEPTH", "10")]));
    assert!(err.contains("10 levels"), "{err}");
    let err = refused(&config(dir.path(), &[("SPINDLE_MAX_INPUT_BYTES", "50")]));
    assert!(err.contains("50 bytes"), "{err}");
    let ok = project(&[("compose.yaml", SERVICE)]);
    assert_eq!(
        config(ok.path(), &[("SPINDLE_MAX_INPUT_BYTES", "1000")])
            .status
            .code(),
        Some(0)
    );
    let big = project(&[(
        "compose.yaml",
        &format!("{SERVICE}# {}\n", "x".repeat(2000)),
    )]);
    assert_eq!(config(big.path(), &[]).status.code(), Some(0));
    let err = refused(&config(big.path(), &[("SPINDLE_MAX_INPUT_BYTES", "1000")]));
    assert!(err.contains("1000 bytes"), "{err}");
    let err = refused(&config(ok.path(), &[("SPINDLE_MAX_INPUT_DEPTH", "deep")]));
    assert!(
        err.contains("SPINDLE_MAX_INPUT_DEPTH must be a whole number"),
        "{err}"
    );
}

#[test]
fn includes_extends_env_files_and_spindle_yaml_are_capped_too() {
    let limit = [("SPINDLE_MAX_INPUT_BYTES", "500")];
    let pad = format!("# {}\n", "x".repeat(600));
    let cases: Vec<(&str, Vec<(&str, String)>)> = vec![
        (
            "inc.yaml",
            vec![
                ("compose.yaml", format!("include:\n  - inc.yaml\n{SERVICE}")),
                ("inc.yaml", format!("services:\n  x:\n    image: a\n{pad}")),
            ],
        ),
        (
            "base.yaml",
            vec![
                (
                    "compose.yaml",
                    "services:\n  web:\n    extends:\n      file: base.yaml\n      service: b\n"
                        .to_string(),
                ),
                ("base.yaml", format!("services:\n  b:\n    image: a\n{pad}")),
            ],
        ),
        (
            ".env",
            vec![
                ("compose.yaml", SERVICE.to_string()),
                (".env", format!("A=1\n{pad}")),
            ],
        ),
        (
            "web.env",
            vec![
                ("compose.yaml", format!("{SERVICE}    env_file: web.env\n")),
                ("web.env", format!("A=1\n{pad}")),
            ],
        ),
        (
            "spindle.yaml",
            vec![
                ("compose.yaml", SERVICE.to_string()),
                ("spindle.yaml", format!("project: p\n{pad}")),
            ],
        ),
    ];
    for (culprit, files) in cases {
        let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
        let dir = project(&files);
        let err = refused(&config(dir.path(), &limit));
        assert!(err.contains(culprit), "{culprit}: {err}");
        assert!(err.contains("500 bytes"), "{culprit}: {err}");
    }
}

#[test]
fn a_deep_spindle_yaml_and_a_deep_include_are_refused_naming_the_file() {
    let deep = format!("project: {}{}\n", "[".repeat(300), "]".repeat(300));
    let dir = project(&[("compose.yaml", SERVICE), ("spindle.yaml", &deep)]);
    let err = refused(&config(dir.path(), &[]));
    assert!(err.contains("spindle.yaml: line 1"), "{err}");
    let dir = project(&[
        (
            "compose.yaml",
            &format!("include:\n  - inc.yaml\n{SERVICE}"),
        ),
        ("inc.yaml", &nested(300).replace("web", "other")),
    ]);
    let err = refused(&config(dir.path(), &[]));
    assert!(err.contains("inc.yaml: line 4"), "{err}");
}

#[test]
fn an_error_echoes_at_most_an_excerpt_of_the_input() {
    let key = "k".repeat(600); // under the 1024 characters a YAML key may have
    for files in [
        vec![
            ("compose.yaml", SERVICE.to_string()),
            ("spindle.yaml", format!("{key}: 1\n")),
        ],
        vec![("compose.yaml", format!("{SERVICE}    {key}: 1\n"))],
        vec![(
            "compose.yaml",
            format!("services:\n  web:\n    image: a\n    extends: {key}\n"),
        )],
    ] {
        let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
        let dir = project(&files);
        let err = refused(&config(dir.path(), &[]));
        assert!(err.contains(&"k".repeat(80)), "{err}");
        assert!(!err.contains(&"k".repeat(81)), "{err}");
        assert!(err.contains('…'), "{err}");
    }
}
