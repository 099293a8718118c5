//! Conformance: `spindle config --format json` must print what Docker Compose v5 prints for every fixture.
//!
//! Each folder under `tests/conformance/` is one fixture: compose files, optional `.env` and other env files, an
//! `args` file (one line of CLI args given to both tools before `config`; may be empty), an optional `env` file
//! (`KEY=VALUE` lines put into both tools' otherwise cleared environment) and an optional `expect-error` file (both
//! tools must fail; spindle's stderr must contain its text when it is not empty).
//!
//! Environment knobs:
//! - `SPINDLE_COMPOSE_BIN`: the reference compose binary (default `docker-compose` on PATH); it must be v5.
//! - `SPINDLE_CONFORMANCE_FILTER`: run only fixtures whose folder name contains this substring.
//! - `SPINDLE_CONFORMANCE_SPINDLE_BIN`: the binary under test (default: this crate's `spindle`); pointing it at the
//!   compose binary checks the harness and the fixtures themselves.
//! - `SPINDLE_CONFORMANCE_VERBOSE`: also print a full pretty diff of the two JSON documents for each mismatch.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// How many differing paths are listed per fixture before the listing is cut.
const MAX_LISTED_DIFFERENCES: usize = 40;

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("conformance")
}

fn compose_bin() -> String {
    std::env::var("SPINDLE_COMPOSE_BIN").unwrap_or_else(|_| "docker-compose".to_string())
}

fn spindle_bin() -> String {
    std::env::var("SPINDLE_CONFORMANCE_SPINDLE_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_spindle").to_string())
}

/// Panics with a clear message unless `bin version` reports Compose v5.
fn assert_compose_is_v5(bin: &str) {
    let output = Command::new(bin).arg("version").output();
    let output = match output {
        Ok(output) => output,
        Err(err) => panic!(
            "cannot run the reference compose binary `{bin}` ({err}); set SPINDLE_COMPOSE_BIN to a Docker Compose v5 binary"
        ),
    };
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    // Compose v2+ prints `Docker Compose version v5.6.1`; v1 prints `docker-compose version 1.29.2, …` and also
    // mentions other components' versions, so only the word after `Docker Compose version` counts.
    let is_v5 = text.lines().any(|line| {
        line.split_once("Docker Compose version ")
            .is_some_and(|(_, rest)| rest.trim_start().trim_start_matches('v').starts_with("5."))
    });
    assert!(
        output.status.success() && is_v5,
        "the reference compose binary `{bin}` is not Docker Compose v5 (`{bin} version` said: {:?}); \
         set SPINDLE_COMPOSE_BIN to a v5 binary",
        text.trim()
    );
}

/// One fixture folder, read from disk.
struct Fixture {
    name: String,
    dir: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    expect_error: Option<String>,
}

impl Fixture {
    fn load(dir: PathBuf) -> Result<Self, String> {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let args_text = std::fs::read_to_string(dir.join("args")).map_err(|err| {
            format!("fixture {name}: cannot read `args` ({err}); create it, even empty")
        })?;
        let args = split_args(args_text.trim())
            .map_err(|err| format!("fixture {name}: bad `args`: {err}"))?;
        let env = match std::fs::read_to_string(dir.join("env")) {
            Ok(text) => {
                parse_env_file(&text).map_err(|err| format!("fixture {name}: bad `env`: {err}"))?
            }
            Err(_) => Vec::new(),
        };
        let expect_error = std::fs::read_to_string(dir.join("expect-error"))
            .ok()
            .map(|text| text.trim().to_string());
        Ok(Fixture {
            name,
            dir,
            args,
            env,
            expect_error,
        })
    }

    /// Runs `bin <args> config --format json <extra>` in the fixture folder with a controlled environment.
    fn run(&self, bin: &str, extra: &[&str]) -> Result<Output, String> {
        let mut command = Command::new(bin);
        command
            .args(&self.args)
            .args(["config", "--format", "json"])
            .args(extra)
            .current_dir(&self.dir)
            .env_clear();
        for key in ["PATH", "HOME"] {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
            .output()
            .map_err(|err| format!("cannot run `{bin}`: {err}"))
    }
}

/// Splits the one-line `args` file on whitespace, honouring single and double quotes.
fn split_args(line: &str) -> Result<Vec<String>, String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => current.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    args.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            None => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unterminated quote".to_string());
    }
    if in_word {
        args.push(current);
    }
    Ok(args)
}

/// Reads `KEY=VALUE` lines; blank lines and `#` comments are skipped, the value is taken verbatim.
fn parse_env_file(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut vars = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match line.split_once('=') {
            Some((key, value)) => vars.push((key.trim().to_string(), value.to_string())),
            None => return Err(format!("line {} has no `=`", index + 1)),
        }
    }
    Ok(vars)
}

/// Every difference between two JSON trees, as `path: left vs right` lines.
fn differences(path: &str, left: Option<&Value>, right: Option<&Value>, out: &mut Vec<String>) {
    match (left, right) {
        (Some(Value::Object(l)), Some(Value::Object(r))) => {
            let mut keys: BTreeMap<&str, ()> = BTreeMap::new();
            for key in l.keys().chain(r.keys()) {
                keys.insert(key, ());
            }
            for key in keys.keys() {
                let child = if path.is_empty() {
                    (*key).to_string()
                } else {
                    format!("{path}.{key}")
                };
                differences(&child, l.get(*key), r.get(*key), out);
            }
        }
        (Some(Value::Array(l)), Some(Value::Array(r))) => {
            for index in 0..l.len().max(r.len()) {
                differences(&format!("{path}[{index}]"), l.get(index), r.get(index), out);
            }
        }
        (l, r) if l == r => {}
        (l, r) => {
            let show =
                |v: Option<&Value>| v.map_or_else(|| "<absent>".to_string(), Value::to_string);
            let shown_path = if path.is_empty() { "<root>" } else { path };
            out.push(format!(
                "  {shown_path}: compose {} | spindle {}",
                show(l),
                show(r)
            ));
        }
    }
}

fn describe_output(output: &Output) -> String {
    format!(
        "exit status {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Checks one fixture; `Err` holds a readable report of what went wrong.
fn check(fixture: &Fixture, compose: &str, spindle: &str) -> Result<(), String> {
    let expected = fixture.run(compose, &[])?;
    // spindle redacts secrets by default; compose prints them, so ask spindle to as well.
    let reveal: &[&str] = if spindle.contains("spindle") {
        &["--reveal-secrets"]
    } else {
        &[]
    };
    let actual = fixture.run(spindle, reveal)?;
    if let Some(needle) = &fixture.expect_error {
        let mut report = String::new();
        if expected.status.success() {
            let _ = writeln!(
                report,
                "compose succeeded but the fixture expects an error (fix the fixture):\n{}",
                describe_output(&expected)
            );
        }
        let stderr = String::from_utf8_lossy(&actual.stderr);
        if actual.status.success() {
            let _ = writeln!(
                report,
                "spindle succeeded but an error was expected:\n{}",
                describe_output(&actual)
            );
        } else if !needle.is_empty() && !stderr.contains(needle.as_str()) {
            let _ = writeln!(
                report,
                "spindle failed, but its stderr does not contain {needle:?}:\n{}",
                describe_output(&actual)
            );
        }
        return if report.is_empty() {
            Ok(())
        } else {
            Err(report)
        };
    }
    if !expected.status.success() {
        return Err(format!(
            "compose itself failed on this fixture (fix the fixture):\n{}",
            describe_output(&expected)
        ));
    }
    if !actual.status.success() {
        return Err(format!("spindle failed:\n{}", describe_output(&actual)));
    }
    let expected_json: Value = serde_json::from_slice(&expected.stdout).map_err(|err| {
        format!(
            "compose printed no JSON ({err}):\n{}",
            describe_output(&expected)
        )
    })?;
    let actual_json: Value = serde_json::from_slice(&actual.stdout).map_err(|err| {
        format!(
            "spindle printed no JSON ({err}):\n{}",
            describe_output(&actual)
        )
    })?;
    if expected_json == actual_json {
        return Ok(());
    }
    let mut diffs = Vec::new();
    differences("", Some(&expected_json), Some(&actual_json), &mut diffs);
    let mut report = format!("{} differing path(s):\n", diffs.len());
    for line in diffs.iter().take(MAX_LISTED_DIFFERENCES) {
        let _ = writeln!(report, "{line}");
    }
    if diffs.len() > MAX_LISTED_DIFFERENCES {
        let _ = writeln!(
            report,
            "  … and {} more",
            diffs.len() - MAX_LISTED_DIFFERENCES
        );
    }
    if std::env::var_os("SPINDLE_CONFORMANCE_VERBOSE").is_some() {
        let left = serde_json::to_string_pretty(&expected_json).unwrap_or_default();
        let right = serde_json::to_string_pretty(&actual_json).unwrap_or_default();
        let _ = writeln!(
            report,
            "full diff (< compose, > spindle):\n{}",
            pretty_assertions::StrComparison::new(&left, &right)
        );
    }
    Err(report)
}

#[test]
fn every_fixture_prints_what_docker_compose_prints() {
    let compose = compose_bin();
    assert_compose_is_v5(&compose);
    let spindle = spindle_bin();
    let filter = std::env::var("SPINDLE_CONFORMANCE_FILTER").unwrap_or_default();

    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures_root())
        .expect("tests/conformance exists")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().contains(filter.as_str()))
        })
        .collect();
    dirs.sort();
    assert!(
        !dirs.is_empty(),
        "no fixture matches SPINDLE_CONFORMANCE_FILTER={filter:?}"
    );

    let mut failures = Vec::new();
    for dir in &dirs {
        let outcome = Fixture::load(dir.clone()).and_then(|fixture| {
            check(&fixture, &compose, &spindle)
                .map_err(|report| format!("=== {} ===\n{report}", fixture.name))
        });
        match outcome {
            Ok(()) => eprintln!("ok      {}", dir.display()),
            Err(report) => {
                eprintln!("FAILED  {}", dir.display());
                failures.push(report);
            }
        }
    }
    let total = dirs.len();
    assert!(
        failures.is_empty(),
        "{} of {total} conformance fixture(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{total} conformance fixture(s) match docker compose");
}

/// `docker compose config --hash '*'` and `spindle config --compose-hash` of one fixture: both
/// succeed and print the same `service hash` lines, or both fail.
fn check_compose_hash(fixture: &Fixture, compose: &str, spindle: &str) -> Result<usize, String> {
    let theirs = fixture.run(compose, &["--hash", "*"])?;
    let ours = fixture.run(spindle, &["--compose-hash"])?;
    match (theirs.status.success(), ours.status.success()) {
        (false, false) => return Ok(0),
        (true, true) => {}
        _ => {
            return Err(format!(
                "=== {} ===
compose:\n{}\nspindle:\n{}",
                fixture.name,
                describe_output(&theirs),
                describe_output(&ours)
            ));
        }
    }
    let lines = |o: &Output| -> Vec<String> {
        let mut v: Vec<String> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(str::to_string)
            .collect();
        v.sort();
        v
    };
    let (theirs, ours) = (lines(&theirs), lines(&ours));
    if theirs == ours {
        Ok(theirs.len())
    } else {
        Err(format!(
            "=== {} ===\ncompose: {theirs:#?}\nspindle: {ours:#?}",
            fixture.name
        ))
    }
}

#[test]
fn every_fixture_service_has_the_compose_hash_docker_compose_prints() {
    let compose = compose_bin();
    assert_compose_is_v5(&compose);
    let spindle = spindle_bin();
    let filter = std::env::var("SPINDLE_CONFORMANCE_FILTER").unwrap_or_default();
    // The conformance fixtures, and the cases of tests/compose_hash.rs (which also creates them).
    let hash_cases = fixtures_root().join("../fixtures/compose-hash");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(fixtures_root())
        .expect("tests/conformance exists")
        .chain(std::fs::read_dir(hash_cases).expect("tests/fixtures/compose-hash exists"))
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .filter(|path| {
            path.file_name()
                .is_some_and(|name| name.to_string_lossy().contains(filter.as_str()))
        })
        .collect();
    dirs.sort();
    let mut failures = Vec::new();
    let mut services = 0;
    for dir in &dirs {
        match Fixture::load(dir.clone())
            .and_then(|fixture| check_compose_hash(&fixture, &compose, &spindle))
        {
            Ok(n) => services += n,
            Err(report) => failures.push(report),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixture(s) differ:\n\n{}",
        failures.len(),
        dirs.len(),
        failures.join("\n")
    );
    assert!(
        filter.is_empty() || services > 0,
        "no service hashed for SPINDLE_CONFORMANCE_FILTER={filter:?}"
    );
    eprintln!(
        "{services} services of {} fixtures hash as docker compose hashes them",
        dirs.len()
    );
}

#[test]
fn args_are_split_on_whitespace_and_quotes_group_words() {
    assert_eq!(
        split_args(r#"-f compose.yaml  --profile 'a b' -p "x""#),
        Ok(vec![
            "-f".to_string(),
            "compose.yaml".to_string(),
            "--profile".to_string(),
            "a b".to_string(),
            "-p".to_string(),
            "x".to_string()
        ])
    );
    assert_eq!(split_args(""), Ok(Vec::new()));
    assert!(split_args("'open").is_err());
}

#[test]
fn json_differences_are_listed_by_path() {
    let left = serde_json::json!({"services": {"web": {"ports": [1, 2], "image": "a"}}});
    let right = serde_json::json!({"services": {"web": {"ports": [1], "image": "b", "x": null}}});
    let mut out = Vec::new();
    differences("", Some(&left), Some(&right), &mut out);
    assert_eq!(
        out,
        vec![
            "  services.web.image: compose \"a\" | spindle \"b\"".to_string(),
            "  services.web.ports[1]: compose 2 | spindle <absent>".to_string(),
            "  services.web.x: compose <absent> | spindle null".to_string(),
        ]
    );
}
