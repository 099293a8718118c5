//! `spindle status` against an API port another local user holds (a fake run as `nobody` through `setpriv`): refused before a byte is sent, so `$SPINDLE_API_TOKEN` never reaches it; the real `spindle run` of the state dir is still read, with the token.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{SpindleProcess, TestProject, assert_exit, assert_no_panic, describe, wait_for};
use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(60);
const PREFIX: &str = "spindle-h-status";
const NO_ENGINE: (&str, &str) = ("DOCKER_HOST", "unix:///nonexistent");
/// What the fakes answer carries this, so that the test sees whether any of it was printed.
const MARKER: &str = "FAKE-SPINDLE-ANSWER";
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Skips (with a note) a test that needs root, `setpriv` and a python3 `nobody` can run.
fn can_switch_user() -> bool {
    let ok = is_root()
        && Command::new("setpriv")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        && Path::new(PYTHON).exists();
    if !ok {
        eprintln!("skipped: needs root, setpriv (util-linux) and {PYTHON}");
    }
    ok
}

/// The system's python (a per-user one, under /root, is out of `nobody`'s reach).
const PYTHON: &str = "/usr/bin/python3";

/// A TCP server that logs every connection's request head (raw bytes, `repr`) and answers `doc`.
const FAKE: &str = r#"
import socketserver, sys
doc = sys.argv[1].encode()
class H(socketserver.BaseRequestHandler):
    def handle(self):
        head = b""
        self.request.settimeout(5)
        try:
            while not head.endswith(b"\r\n\r\n"):
                b = self.request.recv(1)
                if not b:
                    break
                head += b
        except OSError:
            pass
        sys.stdout.write("CONNECTION %r\n" % head)
        sys.stdout.flush()
        if head:
            self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(doc), doc))
socketserver.ThreadingTCPServer.allow_reuse_address = True
s = socketserver.ThreadingTCPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// The fake spindle API, run as `nobody:nogroup` with no supplementary groups.
struct NobodyApi {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl NobodyApi {
    fn start(doc: &Value) -> Self {
        let mut child = Command::new("setpriv")
            .args([
                "--reuid=nobody",
                "--regid=nogroup",
                "--clear-groups",
                PYTHON,
                "-c",
                FAKE,
            ])
            .arg(doc.to_string())
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("setpriv python3");
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut first = String::new();
        out.read_line(&mut first).expect("the fake's port");
        let port = first.trim().parse().expect("a port");
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in out.lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        NobodyApi { child, port, log }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the fake has logged `n` connections.
    fn wait_connections(&self, n: usize) -> String {
        wait_for("the fake to log its connections", DEADLINE, || {
            let log = self.log();
            (log.matches("CONNECTION ").count() >= n).then_some(log)
        })
    }
}

impl Drop for NobodyApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `spindle status --api ADDR --state-dir STATE` with `SPINDLE_API_TOKEN=token`.
fn status(p: &TestProject, api: &str, state: &Path, token: &str) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_spindle"));
    c.arg("-p")
        .arg(p.name())
        .arg("--desired-state")
        .arg(p.dir())
        .args(["status", "--api", api, "--state-dir"])
        .arg(state)
        .current_dir(p.dir())
        .env("SPINDLE_API_TOKEN", token)
        .env(NO_ENGINE.0, NO_ENGINE.1)
        .env_remove("SPINDLE_STATE_DIR");
    common::run_with_deadline(c, common::COMMAND_DEADLINE).expect("spindle status")
}

/// What the real spindle serves about itself, copied by the fakes.
fn copied_identity(p: &TestProject, state: &Path) -> Value {
    json!({
        "project": p.name(),
        "state_dir": std::fs::canonicalize(state).unwrap_or_else(|_| state.to_path_buf()),
        "source": "api",
        "pause": {"state": "running"},
        "services": null,
        "warnings": [MARKER],
    })
}

#[track_caller]
fn assert_refused(out: &Output, port: u16, holder: u32, secret: &str, what: &str) {
    assert_no_panic(out, what);
    assert_exit(out, 1, what);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("port {port}"))
            && err.contains(&format!("held by uid {holder}"))
            && err.contains("not spindle's")
            && err.contains("--api"),
        "{what}: {err}"
    );
    assert!(out.stdout.is_empty(), "{what}: {}", describe(out));
    for text in [&err, &String::from_utf8_lossy(&out.stdout)] {
        assert!(
            !text.contains(MARKER),
            "{what}: the fake's answer was printed"
        );
        assert!(!text.contains(secret), "{what}: the token was printed");
    }
}

#[test]
fn spindle_status_sends_nothing_to_an_api_port_another_user_holds_not_even_the_token() {
    if !can_switch_user() {
        return;
    }
    let p = TestProject::with_prefix(PREFIX, "nobody-holds", "heal");
    // The state dir a root spindle made (root's, 0700), and the fake copying its identity.
    let state = common::state_dir();
    let fake = NobodyApi::start(&copied_identity(&p, state.path()));
    // The fake logs what it receives: a request with a header shows up in its log.
    let mut probe = TcpStream::connect(fake.addr()).expect("connect to the fake");
    probe
        .write_all(b"GET /status HTTP/1.1\r\nX-Probe: seen\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = probe.read_to_string(&mut answer);
    assert!(answer.contains(MARKER), "{answer}");
    assert!(fake.wait_connections(1).contains("X-Probe: seen"));

    let secret = "spd_status_token_that_must_not_leave";
    let out = status(&p, &fake.addr(), state.path(), secret);
    assert_refused(&out, fake.port, NOBODY, secret, "a state dir root owns");
    // Without a state dir here, root or the caller may hold the API; nobody may not.
    let missing = state.path().join("missing");
    let out = status(&p, &fake.addr(), &missing, secret);
    assert_refused(&out, fake.port, NOBODY, secret, "no state dir");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not exist here"),
        "{}",
        describe(&out)
    );
    // Both status runs connected and sent not a byte: no request line, no Authorization.
    let log = fake.wait_connections(3);
    assert_eq!(log.matches("CONNECTION b''").count(), 2, "{log}");
    assert!(!log.contains("Authorization"), "{log}");
    assert!(!log.contains(secret), "{log}");
}

#[test]
fn a_port_root_holds_is_not_spindles_when_another_user_owns_the_state_dir() {
    if !is_root() {
        eprintln!("skipped: needs root to give the state dir to another user");
        return;
    }
    let p = TestProject::with_prefix(PREFIX, "owner-is-spindle", "heal");
    let state = common::state_dir();
    let addr = common::fake_json_api(copied_identity(&p, state.path()));
    // A spindle running as nobody would own its state dir: a root-held port is not that spindle.
    std::os::unix::fs::chown(state.path(), Some(NOBODY), Some(NOBODY)).expect("chown");
    let out = status(&p, &addr.to_string(), state.path(), "spd_x");
    assert_refused(&out, addr.port(), 0, "spd_x", "a state dir nobody owns");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("the owner of state dir"),
        "{}",
        describe(&out)
    );
    // Given back to root, the same port is accepted (and then the identity it claims is compared).
    std::os::unix::fs::chown(state.path(), Some(0), Some(0)).expect("chown back");
    let out = status(&p, &addr.to_string(), state.path(), "spd_x");
    assert_exit(&out, 0, "a state dir root owns");
    assert!(String::from_utf8_lossy(&out.stdout).contains("from the spindle API"));
}

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

#[test]
fn spindle_status_reads_the_real_spindle_run_of_its_state_dir_with_the_token() {
    let p = TestProject::with_prefix(PREFIX, "real-run", "heal");
    let state = common::state_dir();
    let st = state.path().to_string_lossy().into_owned();
    let out = p.spindle(&["token", "create", "--state-dir", &st, "--name", "t"]);
    assert_exit(&out, 0, "spindle token create");
    let token = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let mut run = p.spawn_spindle(
        &[
            "run",
            "--state-dir",
            &st,
            "--listen",
            "127.0.0.1:0",
            "--api-read-auth",
        ],
        &[NO_ENGINE],
    );
    let port = api_port(&mut run);
    let api = format!("127.0.0.1:{port}");
    // Reads need the token here, and offline there is no engine: only the API's answer passes.
    let out = status(&p, &api, state.path(), &token);
    assert_exit(&out, 0, "spindle status with the token");
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("from the spindle API"), "{table}");
    assert!(table.contains(p.name()), "{table}");
    let out = status(&p, &api, state.path(), "");
    assert!(!out.status.success(), "{}", describe(&out));
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("from the spindle API"),
        "{}",
        describe(&out)
    );
    run.terminate(Duration::from_secs(30));
}
