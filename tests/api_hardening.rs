//! The HTTP API under hostile clients (issue 10, point 2): DNS rebinding, slowloris, a thousand idle connections, oversized and slow bodies, read auth, a taken port, a `spindle status` that reaches another spindle, and the systemd unit.
//!
//! Each test runs a real `spindle run` and talks to it over real TCP sockets, mostly with hand-written
//! HTTP/1.1 so that the `Host` header and the pacing are the test's. Tests that do not need the engine
//! point `DOCKER_HOST` at nothing, so they create no containers. Every wait is a generous "eventually".

mod common;

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

// --- timeouts -----------------------------------------------------------------------------------------------------

#[test]
fn a_client_sending_one_header_byte_per_second_is_cut_off_after_the_header_timeout() {
    let p = TestProject::with_prefix(PREFIX, "slowloris", "heal");
    let state = state_dir();
    let mut run = spawn(
        &p,
        state.path(),
        &["--api-header-timeout", "3s"],
        &[NO_ENGINE],
    );
    let port = api_port(&mut run);
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: {}",
        "a".repeat(200)
    );
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(900)))
        .unwrap();
    let started = Instant::now();
    let mut cut = None;
    for byte in request.as_bytes() {
        if s.write_all(&[*byte]).is_err() {
            cut = Some(started.elapsed());
            break;
        }
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Ok(0) => {
                cut = Some(started.elapsed());
                break;
            }
            Ok(_) => {} // an error answer; the close follows
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                cut = Some(started.elapsed());
                break;
            }
        }
        if started.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
    let cut = cut.expect("the connection is still open after 30 s of one byte per second");
    assert!(
        cut >= Duration::from_secs(2),
        "cut after {cut:?}, before the header timeout"
    );
    // The server still serves others.
    assert_eq!(get(port, "/healthz", None).0, 200);
}

/// Seconds until the server closes `s` (EOF or reset), reading whatever it sends; `None` after `max`.
fn closed_after(s: &mut TcpStream, max: Duration) -> Option<Duration> {
    let started = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = [0u8; 4096];
    while started.elapsed() < max {
        match s.read(&mut buf) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

#[test]
fn silent_and_kept_alive_connections_are_closed_after_the_idle_and_header_timeouts() {
    let p = TestProject::with_prefix(PREFIX, "idle", "heal");
    let state = state_dir();
    // A connection that never sends a byte: closed by the idle timeout (the shorter one here).
    let mut run = spawn(
        &p,
        state.path(),
        &["--api-header-timeout", "60s", "--api-idle-timeout", "2s"],
        &[NO_ENGINE],
    );
    let port = api_port(&mut run);
    let mut silent = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let after = closed_after(&mut silent, Duration::from_secs(30))
        .expect("a silent connection is still open after 30 s");
    assert!(after >= Duration::from_secs(1), "closed after {after:?}");
    run.terminate(Duration::from_secs(30));
    // A kept-alive connection waiting for its next request: closed by the header timeout.
    let mut run = spawn(
        &p,
        state.path(),
        &["--api-header-timeout", "2s"],
        &[NO_ENGINE],
    );
    let port = api_port(&mut run);
    let mut kept = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    kept.write_all(format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .unwrap();
    let after = closed_after(&mut kept, Duration::from_secs(30))
        .expect("a kept-alive connection is still open after 30 s");
    assert!(after >= Duration::from_secs(1), "closed after {after:?}");
}

#[test]
fn a_body_that_does_not_arrive_within_the_request_timeout_gets_408() {
    let p = TestProject::with_prefix(PREFIX, "slowbody", "heal");
    let state = state_dir();
    let mut run = spawn(
        &p,
        state.path(),
        &["--api-request-timeout", "2s"],
        &[NO_ENGINE],
    );
    let port = api_port(&mut run);
    // With a token: a tokenless mutation is refused from its head, before its body.
    let token = create_token(&p, state.path());
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // Ten bytes promised, five sent, then nothing.
    s.write_all(
        format!(
            "POST /profile HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\nContent-Length: 10\r\n\r\n{{\"pro"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let (code, body) = parse_answer(&answer);
    assert_eq!(code, 408, "{body}");
    assert!(
        json_error(&body).contains("--api-request-timeout"),
        "{body}"
    );
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
    let accepted: Value = serde_json::from_str(&body).expect("JSON");
    let api_seq = evidence_records(state.path())
        .iter()
        .find(|r| r["id"] == accepted["record"])
        .and_then(|r| r["seq"].as_u64())
        .expect("the api record");
    let record = wait_for("a reconcile recorded after the API call", DEADLINE, || {
        run.assert_alive();
        evidence_records(state.path())
            .into_iter()
            .find(|r| r["seq"].as_u64().is_some_and(|s| s > api_seq) && r["outcome"].is_string())
    });
    assert!(
        ["in-sync", "converged"].contains(&record["outcome"].as_str().unwrap_or("")),
        "{record:#}"
    );
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

// --- spindle status ------------------------------------------------------------------------------------------------------

/// A fake spindle API answering every request with `doc` as JSON; returns its address.
fn fake_api(doc: Value) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let body = doc.to_string();
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    addr
}

#[test]
fn spindle_status_refuses_a_spindle_that_serves_another_project_or_state_dir() {
    let p = TestProject::with_prefix(PREFIX, "whoami", "heal");
    let state = state_dir();
    let st = state.path().to_string_lossy().into_owned();
    let canonical = std::fs::canonicalize(state.path()).unwrap();
    let other = state_dir();
    let doc = |project: &str, dir: &Path| {
        serde_json::json!({
            "project": project, "state_dir": dir, "source": "api",
            "pause": {"state": "running"}, "services": null, "warnings": [],
        })
    };
    for (what, answer) in [
        ("another project", doc("someone-else", &canonical)),
        ("another state dir", doc(p.name(), other.path())),
        (
            "no state dir",
            serde_json::json!({"project": p.name(), "services": null}),
        ),
    ] {
        let api = fake_api(answer);
        let out = p.spindle(&["status", "--api", &api, "--state-dir", &st]);
        assert_exit(&out, 1, what);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&api)
                && err.contains("is not this project's")
                && err.contains("--state-dir"),
            "{what}: {err}"
        );
        assert!(
            out.stdout.is_empty(),
            "{what}: nothing of the other spindle is printed"
        );
    }
    // The spindle it expects.
    let api = fake_api(doc(p.name(), &canonical));
    let out = p.spindle(&["status", "--api", &api, "--state-dir", &st]);
    assert_exit(&out, 0, "the expected spindle");
    assert!(String::from_utf8_lossy(&out.stdout).contains("from the spindle API"));
}

#[test]
fn status_and_version_name_the_project_and_the_canonical_state_dir() {
    let p = TestProject::with_prefix(PREFIX, "identity", "heal");
    let state = state_dir();
    let mut run = spawn(&p, state.path(), &[], &[NO_ENGINE]);
    let port = api_port(&mut run);
    let canonical = std::fs::canonicalize(state.path()).unwrap();
    for path in ["/status", "/version"] {
        let (code, body) = get(port, path, None);
        assert_eq!(code, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["project"], p.name(), "{path}: {v}");
        assert_eq!(
            v["state_dir"],
            canonical.to_string_lossy().as_ref(),
            "{path}: {v}"
        );
    }
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

// --- refusals from the request head, slow bodies ------------------------------------------------------------------

/// Sends only the head of a `POST path` promising a `length`-byte body (`token` if any) and reads
/// the answer: `(status, body, how long it took)`, the connection closed by spindle (else status 0).
fn head_only_post(
    port: u16,
    path: &str,
    token: Option<&str>,
    length: usize,
) -> (u16, String, Duration) {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the API");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let started = Instant::now();
    s.write_all(
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
        .as_bytes(),
    )
    .expect("send the head");
    let mut answer = Vec::new();
    // Ends when spindle closes the connection; a read timeout (body awaited) leaves it partial.
    let closed = s.read_to_end(&mut answer).is_ok();
    let (code, body) = parse_answer(&answer);
    (if closed { code } else { 0 }, body, started.elapsed())
}

#[test]
fn a_mutation_without_a_valid_token_is_refused_from_its_head_before_its_body_is_read() {
    let p = TestProject::with_prefix(PREFIX, "headauth", "heal");
    let state = state_dir();
    let mut run = spawn(&p, state.path(), &[], &[NO_ENGINE]);
    let port = api_port(&mut run);
    // No token configured: 403 at once, the 10,000 promised bytes never sent.
    for path in ["/reconcile", "/profile", "/pause", "/resume"] {
        let (code, body, took) = head_only_post(port, path, Some("spd_x"), 10_000);
        assert_eq!(code, 403, "{path}: {body}");
        assert!(
            took < Duration::from_secs(3),
            "{path}: answered after {took:?}"
        );
        assert!(json_error(&body).contains("spindle token create"), "{body}");
    }
    let token = create_token(&p, state.path());
    let before = evidence_records(state.path()).len();
    for (path, presented) in [
        ("/reconcile", None),
        ("/profile", Some("spd_0000wrong")),
        ("/pause", None),
        ("/resume", Some("spd_0000wrong")),
    ] {
        let (code, body, took) = head_only_post(port, path, presented, 10_000);
        assert_eq!(code, 401, "{path}: {body}");
        assert!(
            took < Duration::from_secs(3),
            "{path}: answered after {took:?}"
        );
    }
    // Refusals are logged and not recorded as accepted mutations.
    wait_for("the refusals in the log", DEADLINE, || {
        let log = run.stderr();
        (log.contains("mutation refused: no bearer token")
            && log.contains("mutation refused: the bearer token matches no configured token"))
        .then_some(())
    });
    assert!(
        evidence_records(state.path())
            .iter()
            .skip(before)
            .all(|r| r["kind"] != "api"),
        "a refused mutation is recorded"
    );
    // With the token the body is read as before: a head alone waits for its body.
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.write_all(
        format!(
            "POST /profile HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\nContent-Length: 17\r\n\r\n"
        )
        .as_bytes(),
    )
    .unwrap();
    let mut first = [0u8; 1];
    assert!(
        s.read(&mut first).is_err(),
        "an authorized request was answered before its body arrived"
    );
    s.write_all(br#"{"profile":null}"#).unwrap();
    s.write_all(b" ").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut answer = first.to_vec();
    let mut rest = [0u8; 4096];
    let n = s.read(&mut rest).unwrap_or(0);
    answer.extend_from_slice(&rest[..n]);
    let (code, body) = parse_answer(&answer);
    assert_eq!(code, 404, "no profile switcher in this stack: {body}");
}

/// One attacker: `request_head`, then one body byte a second, reconnecting whenever spindle
/// closes the connection, until `stop`.
fn slow_sender(
    port: u16,
    request_head: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) {
    use std::sync::atomic::Ordering;
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
        if s.write_all(request_head.as_bytes()).is_err() {
            continue;
        }
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_secs(1));
            if s.write_all(b"x").is_err() {
                break;
            }
        }
    }
}

/// `GET /healthz` on a fresh connection: its status, or 0 when no answer came within `bound`.
fn healthz_within(port: u16, bound: Duration) -> (u16, Duration) {
    let started = Instant::now();
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let Ok(mut s) = TcpStream::connect_timeout(&addr, bound) else {
        return (0, started.elapsed());
    };
    let left = bound
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(1));
    s.set_read_timeout(Some(left)).unwrap();
    s.set_write_timeout(Some(left)).unwrap();
    let request =
        format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return (0, started.elapsed());
    }
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let took = started.elapsed();
    let code = if took <= bound {
        parse_answer(&answer).0
    } else {
        0
    };
    (code, took)
}

#[test]
fn slow_bodies_without_a_token_neither_starve_healthz_nor_stop_reconciles_from_recording() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    raise_own_fd_limit(4096);
    let p = TestProject::with_prefix(PREFIX, "slowpost", "heal");
    let state = state_dir();
    let mut run = spawn(&p, state.path(), &["--api-max-connections", "16"], &[]);
    let port = api_port(&mut run);
    wait_for("GET /readyz to answer 200", DEADLINE, || {
        run.assert_alive();
        (get(port, "/readyz", None).0 == 200).then_some(())
    });
    let token = create_token(&p, state.path());
    let limit = Command::new("prlimit")
        .args(["--pid", &run.pid().to_string(), "--nofile=256:256"])
        .output()
        .expect("prlimit runs");
    assert!(limit.status.success(), "prlimit: {limit:?}");

    // 80 tokenless POST /reconcile promising 10,000 bytes, and 40 GET /healthz promising 1,000
    // (a read takes a body of up to 1 KiB, so those are read), each sending one byte a second.
    let stop = Arc::new(AtomicBool::new(false));
    let post_head = format!(
        "POST /reconcile HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 10000\r\n\r\n"
    );
    let get_head =
        format!("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 1000\r\n\r\n");
    let attackers: Vec<_> = (0..120)
        .map(|i| {
            let head = if i < 80 {
                post_head.clone()
            } else {
                get_head.clone()
            };
            let stop = stop.clone();
            std::thread::spawn(move || slow_sender(port, head, stop))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(3));

    // Every check over ~27 s: a fresh /healthz answers within 5 s.
    let bound = Duration::from_secs(5);
    let mut late = Vec::new();
    for i in 0..8 {
        run.assert_alive();
        let (code, took) = healthz_within(port, bound);
        if code != 200 {
            late.push((i, code, took));
        }
        std::thread::sleep(Duration::from_secs(3).saturating_sub(took));
    }
    // A token-bearing reconcile gets through while the attack goes on, and is recorded.
    let started = Instant::now();
    let (code, body) = loop {
        let (code, body) = post(port, "/reconcile", Some(&token), "");
        if code == 202 || started.elapsed() > Duration::from_secs(20) {
            break (code, body);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    stop.store(true, Ordering::Relaxed);
    assert!(
        late.is_empty(),
        "/healthz checks without a 200 within {bound:?}: {late:?}"
    );
    assert_eq!(code, 202, "{body}");
    let accepted: Value = serde_json::from_str(&body).expect("JSON");
    let api_seq = evidence_records(state.path())
        .iter()
        .find(|r| r["id"] == accepted["record"])
        .and_then(|r| r["seq"].as_u64())
        .expect("the api record");
    let record = wait_for("a reconcile recorded after the API call", DEADLINE, || {
        run.assert_alive();
        evidence_records(state.path())
            .into_iter()
            .find(|r| r["seq"].as_u64().is_some_and(|s| s > api_seq) && r["outcome"].is_string())
    });
    assert!(
        ["in-sync", "converged"].contains(&record["outcome"].as_str().unwrap_or("")),
        "{record:#}"
    );
    for a in attackers {
        let _ = a.join();
    }
    assert!(
        !run.stderr().contains("Too many open files"),
        "{}",
        run.stderr_tail(40)
    );
}
