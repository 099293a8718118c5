//! The HTTP API under hostile clients (issue 10, point 2): DNS rebinding, slowloris, a thousand idle connections, oversized and slow bodies, read auth, a taken port, a `spindle status` that reaches another spindle, and the systemd unit.
//!
//! Each test runs a real `spindle run` and talks to it over real TCP sockets, mostly with hand-written
//! HTTP/1.1 so that the `Host` header and the pacing are the test's. Tests that do not need the engine
//! point `DOCKER_HOST` at nothing, so they create no containers. Every wait is a generous "eventually".

mod common;
#[path = "api_hardening/slow_clients.rs"]
mod slow_clients;
#[path = "api_hardening/status.rs"]
mod status;
#[path = "api_hardening/timeouts.rs"]
mod timeouts;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{SpindleProcess, TestProject, assert_exit, evidence_records, state_dir, wait_for};
use serde_json::Value;

const DEADLINE: Duration = Duration::from_secs(60);
const PREFIX: &str = "spindle-h-api";
const NO_ENGINE: (&str, &str) = ("DOCKER_HOST", "unix:///nonexistent");

// --- helpers -----------------------------------------------------------------------------------------------------

/// The port of the API, read from the process's log (`HTTP API listening addr=IP:PORT`).
fn api_port(run: &mut SpindleProcess) -> u16 {
    wait_for("the HTTP API address in the log", DEADLINE, || {
        run.assert_alive();
        let log = run.stderr();
        let at = log.find("HTTP API listening addr=")?;
        let rest = &log[at + "HTTP API listening addr=".len()..];
        let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
        addr.parse::<SocketAddr>().ok().map(|a| a.port())
    })
}

fn spawn(p: &TestProject, state: &Path, extra: &[&str], env: &[(&str, &str)]) -> SpindleProcess {
    let state = state.to_string_lossy().into_owned();
    let mut args = vec!["run", "--state-dir", state.as_str()];
    if !extra.contains(&"--listen") {
        args.extend(["--listen", "127.0.0.1:0"]);
    }
    args.extend_from_slice(extra);
    p.spawn_spindle(&args, env)
}

/// Sends `request` as is on a new connection to `127.0.0.1:port` and reads the answer to its end:
/// `(status, body)`; status 0 when the server closed without answering.
fn raw(port: u16, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the API");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request.as_bytes()).expect("send the request");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    parse_answer(&answer)
}

fn parse_answer(answer: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// A `GET` with `Host: host` (none when `None`) and `Connection: close`.
fn get_with_host(port: u16, path: &str, host: Option<&str>, token: Option<&str>) -> (u16, String) {
    let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    raw(
        port,
        &format!("GET {path} HTTP/1.1\r\n{host}{auth}Connection: close\r\n\r\n"),
    )
}

fn get(port: u16, path: &str, token: Option<&str>) -> (u16, String) {
    get_with_host(port, path, Some(&format!("127.0.0.1:{port}")), token)
}

fn post(port: u16, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    raw(
        port,
        &format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
}

/// The `error` of a JSON error body.
#[track_caller]
fn json_error(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"));
    v["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error in {v}"))
        .to_string()
}

/// `spindle token create --state-dir <state>`: the token printed on stdout.
fn create_token(p: &TestProject, state: &Path) -> String {
    let state = state.to_string_lossy().into_owned();
    let out = p.spindle(&["token", "create", "--state-dir", &state, "--name", "t"]);
    assert_exit(&out, 0, "spindle token create");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Raises this process's soft limit of open files to at least `want` (within the hard limit).
fn raise_own_fd_limit(want: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("/proc/self/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a Max open files line");
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (soft, hard) = (nums[0], nums[1]);
    assert!(
        hard >= want,
        "this test needs {want} open files; the hard limit is {hard}"
    );
    if soft < want {
        let out = Command::new("prlimit")
            .args([
                "--pid",
                &std::process::id().to_string(),
                &format!("--nofile={want}:{hard}"),
            ])
            .output()
            .expect("prlimit runs");
        assert!(out.status.success(), "prlimit: {out:?}");
    }
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Asserts that the API accepted a `POST /reconcile` (`body` names its `api` record) and that a
/// reconcile was recorded after it, in sync or converged.
fn assert_a_reconcile_is_recorded_after(run: &mut SpindleProcess, state: &Path, body: &str) {
    let accepted: Value = serde_json::from_str(body).expect("JSON");
    let api_seq = evidence_records(state)
        .iter()
        .find(|r| r["id"] == accepted["record"])
        .and_then(|r| r["seq"].as_u64())
        .expect("the api record");
    let record = wait_for("a reconcile recorded after the API call", DEADLINE, || {
        run.assert_alive();
        evidence_records(state)
            .into_iter()
            .find(|r| r["seq"].as_u64().is_some_and(|s| s > api_seq) && r["outcome"].is_string())
    });
    assert!(
        ["in-sync", "converged"].contains(&record["outcome"].as_str().unwrap_or("")),
        "{record:#}"
    );
}

// --- Host ----------------------------------------------------------------------------------------------------------

#[test]
fn a_rebinding_host_header_is_refused_on_every_route() {
    let p = TestProject::with_prefix(PREFIX, "rebind", "heal");
    let state = state_dir();
    let mut run = spawn(
        &p,
        state.path(),
        &["--api-host", "spindle.test"],
        &[NO_ENGINE],
    );
    let port = api_port(&mut run);
    let evil = format!("evil.example:{port}");
    for path in [
        "/healthz",
        "/readyz",
        "/version",
        "/metrics",
        "/status",
        "/evidence",
        "/nope",
    ] {
        let (code, body) = get_with_host(port, path, Some(&evil), None);
        assert_eq!(code, 421, "GET {path} with Host {evil}: {body}");
        assert!(json_error(&body).contains("--api-host"), "{path}: {body}");
        let (code, _) = get_with_host(port, path, Some("evil.example"), None);
        assert_eq!(code, 421, "GET {path} with Host evil.example");
    }
    let (code, body) = raw(
        port,
        &format!(
            "POST /reconcile HTTP/1.1\r\nHost: {evil}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(code, 421, "POST /reconcile: {body}");
    // An absolute URI names the authority the request is for: it is checked as well.
    let (code, body) = raw(
        port,
        &format!(
            "GET http://{evil}/status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(code, 421, "absolute URI: {body}");
    // No Host at all.
    let (code, body) = get_with_host(port, "/healthz", None, None);
    assert_eq!(code, 400, "no Host: {body}");
    assert!(json_error(&body).contains("Host"), "{body}");
    // The names that pass.
    for host in [
        format!("127.0.0.1:{port}"),
        "127.0.0.1".to_string(),
        format!("localhost:{port}"),
        "localhost".to_string(),
        format!("[::1]:{port}"),
        format!("spindle.test:{port}"),
        "SPINDLE.test".to_string(),
        // The port is not compared: a published or proxied port may differ.
        "localhost:8080".to_string(),
    ] {
        let (code, body) = get_with_host(port, "/healthz", Some(&host), None);
        assert_eq!(code, 200, "Host {host}: {body}");
        let (code, body) = get_with_host(port, "/status", Some(&host), None);
        assert_eq!(code, 200, "Host {host}: {body}");
    }
    run.assert_alive();
}

// --- body limits ----------------------------------------------------------------------------------------------------

#[test]
fn oversized_bodies_get_413_and_small_ones_pass_the_limit() {
    let p = TestProject::with_prefix(PREFIX, "bodies", "heal");
    let state = state_dir();
    let mut run = spawn(&p, state.path(), &[], &[NO_ENGINE]);
    let port = api_port(&mut run);
    let host = format!("Host: 127.0.0.1:{port}\r\n");
    // Declared too large: refused before a byte of the body is read.
    for (line, what) in [
        ("POST /reconcile HTTP/1.1", "a 100 kB mutation"),
        ("POST /profile HTTP/1.1", "a 100 kB profile body"),
    ] {
        let (code, body) = raw(
            port,
            &format!("{line}\r\n{host}Content-Length: 100000\r\nConnection: close\r\n\r\n"),
        );
        assert_eq!(code, 413, "{what}: {body}");
        assert!(json_error(&body).contains("16384"), "{body}");
    }
    let (code, body) = raw(
        port,
        &format!("GET /status HTTP/1.1\r\n{host}Content-Length: 2048\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(code, 413, "a read with a 2 kB body: {body}");
    // A request head larger than 32 KiB.
    let (code, body) = raw(
        port,
        &format!(
            "GET /healthz HTTP/1.1\r\n{host}X-Big: {}\r\nConnection: close\r\n\r\n",
            "b".repeat(40 * 1024)
        ),
    );
    assert_eq!(code, 431, "a 40 kB head: {body}");
    // Under the limit, the route answers as usual (no token is configured: 403).
    let (code, body) = post(
        port,
        "/profile",
        Some("spd_x"),
        &format!("{{\"profile\":\"{}\"}}", "a".repeat(15_000)),
    );
    assert_eq!(code, 403, "a 15 kB body: {body}");
    // Chunked, so no length is declared: refused once the limit is passed. With a token, since a
    // mutation without a valid one is refused from its head, before its body.
    let token = create_token(&p, state.path());
    let chunk = "x".repeat(20 * 1024);
    let (code, body) = raw(
        port,
        &format!(
            "POST /profile HTTP/1.1\r\n{host}Authorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
            chunk.len()
        ),
    );
    assert_eq!(code, 413, "a 20 kB chunked body: {body}");
    assert_eq!(get(port, "/healthz", None).0, 200);
}

// --- connections ----------------------------------------------------------------------------------------------------

#[test]
fn a_thousand_idle_connections_neither_starve_healthz_nor_stop_reconciles_from_recording() {
    raise_own_fd_limit(4096);
    let p = TestProject::with_prefix(PREFIX, "idle1000", "heal");
    let state = state_dir();
    let mut run = spawn(&p, state.path(), &[], &[]);
    let port = api_port(&mut run);
    wait_for("GET /readyz to answer 200", DEADLINE, || {
        run.assert_alive();
        (get(port, "/readyz", None).0 == 200).then_some(())
    });
    let token = create_token(&p, state.path());
    // spindle may hold at most 256 files from now on: were each connection kept, it would run out.
    let limit = Command::new("prlimit")
        .args(["--pid", &run.pid().to_string(), "--nofile=256:256"])
        .output()
        .expect("prlimit runs");
    assert!(limit.status.success(), "prlimit: {limit:?}");

    let idle: Vec<TcpStream> = (0..1000)
        .map(|i| {
            TcpStream::connect(("127.0.0.1", port))
                .unwrap_or_else(|e| panic!("connection {i}: {e}"))
        })
        .collect();
    // A fresh connection is still served.
    wait_for(
        "GET /healthz from a fresh connection",
        Duration::from_secs(20),
        || {
            run.assert_alive();
            (get(port, "/healthz", None).0 == 200).then_some(())
        },
    );
    let fds = open_fds(run.pid());
    assert!(
        fds < 200,
        "spindle holds {fds} files with 1000 idle connections open"
    );

    // A reconcile asked for through the API completes and is recorded.
    let (code, body) = wait_for("POST /reconcile accepted", Duration::from_secs(20), || {
        let (code, body) = post(port, "/reconcile", Some(&token), "");
        (code == 202).then_some((code, body))
    });
    assert_eq!(code, 202, "{body}");
    assert_a_reconcile_is_recorded_after(&mut run, state.path(), &body);
    assert_eq!(get(port, "/readyz", None).0, 200);
    assert!(
        !run.stderr().contains("Too many open files"),
        "{}",
        run.stderr_tail(40)
    );
    drop(idle);
}

// --- read auth --------------------------------------------------------------------------------------------------------

#[test]
fn reads_need_the_token_by_default_beyond_loopback_while_health_stays_open() {
    let p = TestProject::with_prefix(PREFIX, "readauth", "heal");
    let state = state_dir();
    let mut run = spawn(&p, state.path(), &["--listen", "0.0.0.0:0"], &[NO_ENGINE]);
    let port = api_port(&mut run);
    assert!(
        run.stderr().contains("--api-read-auth"),
        "{}",
        run.stderr_tail(20)
    );
    // No token configured: reads are refused like mutations, with what to do.
    let (code, body) = get(port, "/status", None);
    assert_eq!(code, 403, "{body}");
    assert!(json_error(&body).contains("spindle token create"), "{body}");
    let token = create_token(&p, state.path());
    for path in ["/status", "/evidence", "/metrics", "/version"] {
        let (code, body) = get(port, path, None);
        assert_eq!(code, 401, "{path} without a token: {body}");
        let (code, _) = get(port, path, Some("spd_0000wrong"));
        assert_eq!(code, 401, "{path} with a wrong token");
        let (code, body) = get(port, path, Some(&token));
        assert_eq!(code, 200, "{path} with the token: {body}");
    }
    for path in ["/healthz", "/readyz"] {
        let (code, body) = get(port, path, None);
        assert!(
            code == 200 || code == 503,
            "{path} stays open: {code} {body}"
        );
    }
}

#[test]
fn read_auth_is_off_on_loopback_unless_asked_for_and_off_beyond_it_only_when_said_so() {
    let p = TestProject::with_prefix(PREFIX, "readauth-flag", "heal");
    let state = state_dir();
    let cases: [(&[&str], u16); 3] = [
        (&["--listen", "127.0.0.1:0"], 200),
        (&["--listen", "127.0.0.1:0", "--api-read-auth"], 403),
        (&["--listen", "0.0.0.0:0", "--api-read-auth=false"], 200),
    ];
    for (args, want) in cases {
        let mut run = spawn(&p, state.path(), args, &[NO_ENGINE]);
        let port = api_port(&mut run);
        let (code, body) = get(port, "/status", None);
        assert_eq!(code, want, "{args:?}: {body}");
        if args.contains(&"0.0.0.0:0") {
            assert!(
                run.stderr().contains("reads need no token"),
                "{}",
                run.stderr_tail(20)
            );
        }
        run.terminate(Duration::from_secs(30));
    }
}

// --- bind ---------------------------------------------------------------------------------------------------------------

#[test]
fn a_taken_api_port_stops_spindle_run_with_a_message_naming_the_address() {
    let p = TestProject::with_prefix(PREFIX, "taken", "heal");
    let state = state_dir();
    let state_arg = state.path().to_string_lossy().into_owned();
    // An explicit address.
    let squatter = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = squatter.local_addr().unwrap().to_string();
    let out = p.spindle(&["run", "--state-dir", &state_arg, "--listen", &addr]);
    assert_exit(&out, 1, "spindle run on a taken port");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&addr) && err.contains("--listen"), "{err}");
    // The default address (held here unless something else holds it already).
    let _default = TcpListener::bind("127.0.0.1:9477");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spindle"));
    cmd.args(["-p", p.name(), "--desired-state"])
        .arg(p.dir())
        .args(["run", "--state-dir", &state_arg])
        .current_dir(p.dir())
        .env_remove("SPINDLE_LISTEN")
        .env_remove("SPINDLE_DESIRED_STATE")
        .env_remove("COMPOSE_PROJECT_NAME")
        .env_remove("COMPOSE_FILE");
    let out = common::run_with_deadline(cmd, Duration::from_secs(60)).expect("spindle run ends");
    assert_exit(&out, 1, "spindle run on the taken default port");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("127.0.0.1:9477") && err.contains("--listen"),
        "{err}"
    );
    // Nothing was started.
    assert!(p.containers().is_empty(), "{:?}", p.containers());
}

// --- systemd ---------------------------------------------------------------------------------------------------------------

#[test]
fn the_systemd_unit_raises_the_open_file_limit_and_keeps_its_sandboxing() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/infra/systemd/spindle.service"
    ))
    .expect("the unit");
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{key}=")))
            .map(str::trim)
    };
    let nofile: u64 = value("LimitNOFILE")
        .and_then(|v| v.parse().ok())
        .expect("LimitNOFILE=<number>");
    assert!(nofile >= 65536, "LimitNOFILE={nofile}");
    for (key, want) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "read-only"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallFilter", "@system-service"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
        ("CapabilityBoundingSet", ""),
        ("UMask", "0077"),
        ("StateDirectoryMode", "0700"),
    ] {
        assert_eq!(value(key), Some(want), "{key}");
    }
}

#[test]
fn the_env_file_does_not_promise_tls_to_the_engine() {
    let env = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/infra/systemd/spindle.env"
    ))
    .expect("the env file");
    // spindle speaks no TLS to the engine (engine.rs refuses https:// and a tcp:// address while
    // DOCKER_TLS_VERIFY is set): the file must not offer TLS settings to fill in.
    assert!(
        !env.contains("DOCKER_TLS_VERIFY=") && !env.contains("DOCKER_CERT_PATH"),
        "{env}"
    );
    assert!(env.contains("no TLS"), "{env}");
}
