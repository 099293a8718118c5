//! `spindle verify` against the real engine, a temporary git repository and loopback probe servers: every kind of finding in every layer, a clean pass, exit codes, no secret in the output.

mod common;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

use common::{COMMAND_DEADLINE, TestProject, assert_exit, assert_no_panic, run_with_deadline};
use serde_json::Value;

const PREFIX: &str = "spindle-h-verify";

/// A secret-looking value that must never leave spindle.
fn secret(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(7);
    format!("S3cr3t-{tag}-{nanos:09}-{}", std::process::id())
}

fn project(test: &str) -> TestProject {
    TestProject::with_prefix(PREFIX, test, "verify")
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "-c",
            "user.name=spindle test",
            "-c",
            "user.email=test@example.invalid",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .env_remove("GIT_INDEX_FILE")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `git init` and one commit of everything but what `.gitignore` keeps out (`.env`).
fn commit_all(p: &TestProject) {
    git(p.dir(), &["init", "-q"]);
    git(p.dir(), &["add", "-A"]);
    git(p.dir(), &["commit", "-q", "-m", "desired state"]);
}

/// Serves every connection one fixed HTTP response; the thread lives as long as the test binary.
fn http_server(status: &'static str, body: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = l.local_addr().expect("local address").port();
    std::thread::spawn(move || {
        for mut s in l.incoming().flatten() {
            let mut buf = Vec::new();
            let mut b = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut b) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&b[..n]),
                }
            }
            let resp = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes());
        }
    });
    port
}

/// A loopback port nothing listens on.
fn refused_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    l.local_addr().expect("local address").port()
}

fn probes_yaml(probes: &[(&str, u16, &str)]) -> String {
    let mut s = String::from("probes:\n");
    for (name, port, expect_body) in probes {
        s.push_str(&format!(
            "  - name: {name}\n    http: {{url: \"http://127.0.0.1:{port}/health\", body_contains: {expect_body}, timeout: 3s}}\n"
        ));
    }
    s
}

/// `(layer, kind, path)` of every finding.
fn findings(report: &Value) -> BTreeSet<(String, String, String)> {
    report["layers"]
        .as_array()
        .expect("layers")
        .iter()
        .flat_map(|l| l["findings"].as_array().cloned().unwrap_or_default())
        .map(|f| {
            (
                f["layer"].as_str().unwrap_or_default().to_string(),
                f["kind"].as_str().unwrap_or_default().to_string(),
                f["path"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

fn layer<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["layers"]
        .as_array()
        .and_then(|ls| ls.iter().find(|l| l["layer"] == name))
        .unwrap_or_else(|| panic!("no layer {name} in {report}"))
}

fn finding<'a>(report: &'a Value, path: &str) -> &'a Value {
    report["layers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|l| l["findings"].as_array().into_iter().flatten())
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("no finding at {path} in {report:#}"))
}

#[track_caller]
fn assert_no_secret(out: &Output, secrets: &[&str], extra: &str) {
    let all = format!(
        "{}{}{extra}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for s in secrets {
        assert!(
            !all.contains(s),
            "a secret value leaked into the output:\n{all}"
        );
    }
}

#[track_caller]
fn verify(p: &TestProject, extra: &[&str]) -> (Output, Value) {
    let mut args = vec!["verify"];
    args.extend_from_slice(extra);
    let out = p.spindle(&args);
    assert_no_panic(&out, "spindle verify");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify printed no JSON report ({e}):\n{}",
            common::describe(&out)
        )
    });
    (out, report)
}

#[track_caller]
fn apply_ok(p: &TestProject) {
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "spindle apply");
}

#[test]
fn a_converged_committed_stack_with_passing_probes_verifies_clean() {
    let p = project("clean");
    let password = secret("clean");
    p.write(
        ".env",
        &format!("DB_HOST=db\nDB_PASSWORD={password}\nGREETING=hi\n"),
    );
    let port = http_server("200 OK", "all ok");
    p.write("spindle.yaml", &probes_yaml(&[("app", port, "ok")]));
    commit_all(&p);
    apply_ok(&p);

    let (out, report) = verify(&p, &[]);
    assert_exit(&out, 0, "spindle verify");
    assert_eq!(report["status"], "pass", "{report:#}");
    assert_eq!(report["failures"], 0);
    assert_eq!(report["warnings"], 0);
    assert!(findings(&report).is_empty(), "{report:#}");
    for name in ["repo_truth", "host_input", "containers", "app_readback"] {
        assert_eq!(layer(&report, name)["status"], "pass", "{name}: {report:#}");
    }
    assert!(layer(&report, "containers")["checked"].as_u64() > Some(0));
    assert!(
        report["revision"]
            .as_str()
            .is_some_and(|r| !r.ends_with("-dirty")),
        "{report:#}"
    );
    assert_no_secret(&out, &[&password], "");

    // --output writes the same report to the file and nothing to stdout.
    let file = p.path("report/verify.json");
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    let out = p.spindle(&["verify", "--output", file.to_str().expect("utf-8 path")]);
    assert_exit(&out, 0, "spindle verify --output");
    assert!(out.stdout.is_empty(), "{}", common::describe(&out));
    let written = std::fs::read_to_string(&file).expect("the report file exists");
    let from_file: Value = serde_json::from_str(&written).expect("the file holds JSON");
    assert_eq!(from_file["status"], "pass");
    assert_eq!(findings(&from_file), findings(&report));
    assert_no_secret(&out, &[&password], &written);

    // A stopped container contradicts the desired state.
    let app = p.container_name("app", 1);
    assert_exit(&p.docker(&["kill", &app]), 0, "docker kill");
    let (out, report) = verify(&p, &[]);
    assert_exit(&out, 1, "spindle verify");
    let stopped = finding(&report, "services.app");
    assert_eq!(stopped["kind"], "contradicted");
    assert_eq!(stopped["expected"], "running");
    assert_eq!(findings(&report).len(), 1, "{report:#}");
}

#[test]
fn every_kind_of_finding_in_every_layer_is_reported_and_no_secret_is_shown() {
    let p = project("every-kind");
    let old_password = secret("old");
    p.write(
        ".env",
        &format!("DB_HOST=db\nDB_PASSWORD={old_password}\nGREETING=hi\n"),
    );
    let bad_status = http_server("503 Service Unavailable", "down");
    let refused = refused_port();
    p.write(
        "spindle.yaml",
        &(probes_yaml(&[("refused", refused, "ok"), ("status", bad_status, "ok")])
            + "profiles:\n  broken:\n    compose_files: [compose.broken.yaml]\n"),
    );
    p.write("compose.broken.yaml", "services: [\n");
    commit_all(&p);
    apply_ok(&p);

    // Drift after the apply, in every layer.
    let new_password = secret("new");
    p.write(
        ".env",
        &format!("DB_HOST=db2\nDB_PASSWORD={new_password}\nGREETING=hi\nLOCAL_ONLY=1\n"),
    );
    git(p.dir(), &["add", "-f", ".env"]);
    p.edit(
        ".env.example",
        "GREETING=hello\n",
        "GREETING=hello\nOLD_SETTING=1\n",
    );
    p.edit(
        "compose.yaml",
        "      GREETING: ${GREETING:-hello}\n",
        "      GREETING: ${GREETING:-hello}\n      EXTRA: ${EXTRA_VAR}\n",
    );
    p.edit(
        "compose.yaml",
        "      com.example.role: app\n",
        "      com.example.role: worker\n  other:\n    image: spindle-test/busybox:1\n    command: [\"/usr/local/bin/idle\"]\n    init: true\n",
    );
    // A container of the project that no service of the desired state names.
    let ghost = p.container_name("ghost", 1);
    let project_label = format!("com.docker.compose.project={}", p.name());
    let out = p.docker(&[
        "create",
        "--name",
        &ghost,
        "--label",
        &project_label,
        "--label",
        "com.docker.compose.service=ghost",
        "--label",
        "com.docker.compose.container-number=1",
        "spindle-test/busybox:1",
        "/usr/local/bin/idle",
    ]);
    assert_exit(&out, 0, "docker create");
    // Compose's discovery adds the override file; it is not committed.
    p.write(
        "compose.override.yaml",
        "services:\n  app:\n    labels:\n      com.example.extra: \"1\"\n",
    );

    let (out, report) = verify(&p, &[]);
    assert_exit(&out, 1, "spindle verify");
    assert_eq!(report["status"], "fail");
    let got = findings(&report);
    let want: &[(&str, &str, &str)] = &[
        ("repo_truth", "missing", ".env.example:EXTRA_VAR"),
        ("repo_truth", "stale", ".env.example:OLD_SETTING"),
        ("repo_truth", "invalid", "compose.broken.yaml"),
        ("host_input", "missing", ".env:OLD_SETTING"),
        ("host_input", "stale", ".env:LOCAL_ONLY"),
        ("host_input", "contradicted", "compose.yaml"),
        ("host_input", "contradicted", ".env.example"),
        ("host_input", "contradicted", "compose.override.yaml"),
        ("host_input", "exposed", ".env"),
        ("containers", "missing", "services.other"),
        ("containers", "stale", "services.ghost"),
        ("containers", "missing", "services.app.environment.EXTRA"),
        (
            "containers",
            "contradicted",
            "services.app.environment.DB_HOST",
        ),
        (
            "containers",
            "contradicted",
            "services.app.environment.DB_PASSWORD",
        ),
        (
            "containers",
            "contradicted",
            "services.app.environment.DATABASE_URL",
        ),
        (
            "containers",
            "contradicted",
            "services.app.labels.com.example.role",
        ),
        (
            "containers",
            "missing",
            "services.app.labels.com.example.extra",
        ),
        (
            "containers",
            "contradicted",
            "services.app.labels.io.spindle.spec-hash",
        ),
        ("app_readback", "unreachable", "probes.refused"),
        ("app_readback", "contradicted", "probes.status"),
    ];
    for (l, k, path) in want {
        assert!(
            got.contains(&(l.to_string(), k.to_string(), path.to_string())),
            "no {k} finding at {path} in {l}:\n{report:#}"
        );
    }
    for name in ["repo_truth", "host_input", "containers", "app_readback"] {
        assert_eq!(layer(&report, name)["status"], "fail", "{name}");
    }

    // Plain values are shown both ways; secret ones (right or wrong) never.
    let host = finding(&report, "services.app.environment.DB_HOST");
    assert_eq!(
        (host["expected"].as_str(), host["actual"].as_str()),
        (Some("db2"), Some("db"))
    );
    assert_eq!(host["container"], p.container_name("app", 1));
    let pw = finding(&report, "services.app.environment.DB_PASSWORD");
    assert_eq!(pw["expected"], "<redacted>");
    assert_eq!(pw["actual"], "<redacted>");
    // A URL key with userinfo is secret as a whole, right or wrong.
    let url = finding(&report, "services.app.environment.DATABASE_URL");
    assert_eq!(url["expected"], "<redacted>");
    assert_eq!(url["actual"], "<redacted>");
    assert_eq!(
        finding(&report, "probes.refused")["class"],
        "connection_refused"
    );
    assert_eq!(finding(&report, "probes.status")["class"], "http_status");
    assert_eq!(finding(&report, ".env:LOCAL_ONLY")["status"], "warn");
    assert_eq!(finding(&report, "services.ghost")["container"], ghost);
    assert!(
        finding(&report, "compose.yaml")["expected"]
            .as_str()
            .is_some_and(|e| e.starts_with("as in commit ")),
        "{report:#}"
    );
    assert_no_secret(&out, &[&old_password, &new_password], "");
}

#[test]
fn without_env_example_or_git_the_truth_is_missing_and_verify_fails_closed() {
    let p = project("no-truth");
    p.write(".env", "DB_HOST=db\nDB_PASSWORD=x-long-secret\n");
    std::fs::remove_file(p.path(".env.example")).expect("remove .env.example");

    let (out, report) = verify(&p, &[]);
    assert_exit(&out, 1, "spindle verify");
    let missing = finding(&report, ".env.example");
    assert_eq!(missing["kind"], "missing");
    assert!(
        missing["message"]
            .as_str()
            .is_some_and(|m| m.contains("missing canonical truth")),
        "{missing}"
    );
    let git_finding = finding(&report, "git");
    assert_eq!(git_finding["kind"], "unverifiable");
    assert!(
        git_finding["message"]
            .as_str()
            .is_some_and(|m| m.contains("is not in a git work tree")),
        "{git_finding}"
    );
    // No container was ever created: the containers layer says so too.
    assert_eq!(finding(&report, "services.app")["kind"], "missing");
    assert_eq!(layer(&report, "app_readback")["status"], "skipped");
}

#[test]
fn a_repository_without_a_commit_is_unverifiable() {
    let p = project("no-commit");
    p.write(
        ".env",
        "DB_HOST=db\nDB_PASSWORD=x-long-secret\nGREETING=x\n",
    );
    git(p.dir(), &["init", "-q"]);
    let (out, report) = verify(&p, &[]);
    assert_exit(&out, 1, "spindle verify");
    let git_finding = finding(&report, "git");
    assert!(
        git_finding["message"]
            .as_str()
            .is_some_and(|m| m.contains("has no commit yet")),
        "{git_finding}"
    );
}

#[test]
fn an_unreachable_engine_fails_the_containers_layer_closed() {
    let p = project("no-engine");
    p.write(
        ".env",
        "DB_HOST=db\nDB_PASSWORD=x-long-secret\nGREETING=x\n",
    );
    let port = refused_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_spindle"));
    command
        .args(["-p", p.name(), "--desired-state"])
        .arg(p.dir())
        .arg("verify")
        .env("DOCKER_HOST", format!("tcp://127.0.0.1:{port}"))
        .env_remove("SPINDLE_DESIRED_STATE");
    let out = run_with_deadline(command, COMMAND_DEADLINE).expect("spindle verify runs");
    assert_exit(&out, 1, "spindle verify");
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let engine = finding(&report, "engine");
    assert_eq!(engine["layer"], "containers");
    assert_eq!(engine["kind"], "unreachable");
}

#[test]
fn a_desired_state_that_does_not_load_exits_1_with_an_error_and_no_report() {
    let p = project("bad-input");
    p.write(".env", "DB_HOST=db\nDB_PASSWORD=x-long-secret\n");
    p.write(
        "spindle.yaml",
        "probes:\n  - name: gw\n    http: {url: \"http://127.0.0.1:1/\", expect: 200}\n",
    );
    let out = p.spindle(&["verify"]);
    assert_exit(&out, 1, "spindle verify");
    assert_no_panic(&out, "spindle verify");
    assert!(out.stdout.is_empty(), "{}", common::describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("spindle.yaml") && err.contains("probes[0].http") && err.contains("expect"),
        "{err}"
    );

    p.write(
        "spindle.yaml",
        "probes:\n  - name: gw\n    tcp: {host: 127.0.0.1, port: 1}\n  - name: gw\n    tcp: {host: 127.0.0.1, port: 2}\n",
    );
    let out = p.spindle(&["verify"]);
    assert_exit(&out, 1, "spindle verify");
    assert!(out.stdout.is_empty(), "{}", common::describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("probes: the name \"gw\" is used twice"),
        "{err}"
    );

    std::fs::remove_file(p.path("spindle.yaml")).expect("remove spindle.yaml");
    p.write("compose.yaml", "services:\n  app: [\n");
    let out = p.spindle(&["verify"]);
    assert_exit(&out, 1, "spindle verify");
    assert!(out.stdout.is_empty(), "{}", common::describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("compose.yaml"));
}
