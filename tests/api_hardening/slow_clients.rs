//! Refusals from the request head, and clients that send their request body a byte a second.

use super::*;

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
    assert_a_reconcile_is_recorded_after(&mut run, state.path(), &body);
    for a in attackers {
        let _ = a.join();
    }
    assert!(
        !run.stderr().contains("Too many open files"),
        "{}",
        run.stderr_tail(40)
    );
}
