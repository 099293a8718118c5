//! Engine replies spindle cannot read (issue 10, point 5): one unreadable container is skipped and reported, the rest
//! of the project is observed, and nothing is planned for the skipped container's service.
//!
//! The project is converged on the real engine; then `spindle plan` talks to a small proxy on a Unix socket that
//! forwards every (read) request to the real engine and spoils one container's description in the reply: the list
//! entry (`Created` becomes a string) or the inspect document (`State` becomes a string).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{TestProject, assert_exit, run_with_deadline};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

const PREFIX: &str = "spindle-h-small";

/// What the proxy spoils: the list entry, or the inspect document, of the container with this ID.
#[derive(Clone)]
enum Spoil {
    ListEntry(String),
    Inspect(String),
}

fn real_socket() -> PathBuf {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if h.starts_with("unix://") => PathBuf::from(&h["unix://".len()..]),
        _ => PathBuf::from("/var/run/docker.sock"),
    }
}

/// `(status line, body)` of `GET path` on the real engine (HTTP/1.0: no chunking, closed after).
async fn forward(path: &str) -> (String, Vec<u8>) {
    let mut s = UnixStream::connect(real_socket())
        .await
        .expect("the real engine");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).await.expect("read");
    let split = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header end");
    let head = String::from_utf8_lossy(&reply[..split]).to_string();
    let status = head.lines().next().unwrap_or("").to_string();
    (status, reply[split + 4..].to_vec())
}

fn spoil(path: &str, body: Vec<u8>, how: &Spoil) -> Vec<u8> {
    let route = path.split('?').next().unwrap_or("");
    let mut doc: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(_) => return body,
    };
    match how {
        Spoil::ListEntry(id) if route.ends_with("/containers/json") => {
            for c in doc.as_array_mut().into_iter().flatten() {
                if c["Id"] == id.as_str() {
                    c["Created"] = Value::String("not a number".into());
                }
            }
        }
        Spoil::Inspect(id) if route.ends_with(&format!("/containers/{id}/json")) => {
            doc["State"] = Value::String("not an object".into());
        }
        _ => return body,
    }
    serde_json::to_vec(&doc).expect("json")
}

async fn serve(conn: UnixStream, how: Spoil) {
    let mut conn = conn;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let mut words = text.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or("/"));
    assert!(
        method == "GET" || method == "HEAD",
        "spindle plan sent a {method} {path}"
    );
    let (status, body) = forward(path).await;
    let body = spoil(path, body, &how);
    let status = status.replacen("HTTP/1.0", "HTTP/1.1", 1);
    let reply = format!(
        "{status}\r\nContent-Type: application/json\r\nApi-Version: 1.41\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(reply.as_bytes()).await;
    let _ = conn.write_all(&body).await;
    let _ = conn.shutdown().await;
}

/// A proxy of the real engine on a Unix socket in `dir`, serving until the process ends.
fn proxy(dir: &Path, how: Spoil) -> PathBuf {
    let socket = dir.join("engine.sock");
    let listening = socket.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async move {
            let listener = UnixListener::bind(&listening).expect("bind the proxy");
            ready_tx.send(()).expect("ready");
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(conn, how.clone()));
            }
        });
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the proxy listens");
    socket
}

/// `spindle plan --format json` of `p` through the engine at `socket`.
fn plan_through(p: &TestProject, socket: &Path, extra: &[&str]) -> (i32, Value, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spindle"));
    command
        .args(["-p", p.name(), "--desired-state"])
        .arg(p.dir())
        .args(["plan", "--format", "json"])
        .args(extra)
        .current_dir(p.dir())
        .env("SPINDLE_STATE_DIR", p.state_dir())
        .env("DOCKER_HOST", format!("unix://{}", socket.display()));
    for key in ["COMPOSE_PROJECT_NAME", "COMPOSE_FILE", "COMPOSE_PROFILES"] {
        command.env_remove(key);
    }
    let out = run_with_deadline(command, Duration::from_secs(120)).expect("spindle plan runs");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let plan = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), plan, stderr)
}

/// The converged `plain` stack (services a, b, c), and the ID of b's container.
fn converged(test: &str) -> (TestProject, String) {
    let p = TestProject::with_prefix(PREFIX, test, "plain");
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "spindle apply");
    let b = p.id_of("b");
    (p, b)
}

#[track_caller]
fn assert_skipped_and_held(code: i32, plan: &Value, stderr: &str, b: &str) {
    assert_eq!(
        code, 0,
        "in sync apart from the held service: {plan}\n{stderr}"
    );
    let actions = plan["actions"].as_array().expect("actions");
    assert!(actions.is_empty(), "{plan}");
    let warnings = plan["warnings"].to_string();
    assert!(
        warnings.contains(&format!("container {} (service b)", &b[..12])),
        "{warnings}"
    );
    assert!(
        warnings.contains("nothing is planned for service b"),
        "{warnings}"
    );
    assert!(
        stderr.contains(&b[..12]),
        "the log names the item: {stderr}"
    );
    assert!(
        !stderr.contains("not a number") && !stderr.contains("not an object"),
        "{stderr}"
    );
    let in_sync = plan["in_sync"].to_string();
    assert!(
        in_sync.contains("\"a\"") && in_sync.contains("\"c\""),
        "{plan}"
    );
}

#[test]
fn a_container_whose_list_entry_cannot_be_read_is_skipped_reported_and_its_service_held() {
    let (p, b) = converged("unreadable-list");
    let dir = tempfile::tempdir().expect("a temp dir");
    let socket = proxy(dir.path(), Spoil::ListEntry(b.clone()));
    let (code, plan, stderr) = plan_through(&p, &socket, &[]);
    assert_skipped_and_held(code, &plan, &stderr, &b);
}

#[test]
fn a_container_whose_inspect_document_cannot_be_read_is_skipped_reported_and_its_service_held() {
    let (p, b) = converged("unreadable-inspect");
    let dir = tempfile::tempdir().expect("a temp dir");
    let socket = proxy(dir.path(), Spoil::Inspect(b.clone()));
    let (code, plan, stderr) = plan_through(&p, &socket, &["--inspect-all"]);
    assert_skipped_and_held(code, &plan, &stderr, &b);
}
