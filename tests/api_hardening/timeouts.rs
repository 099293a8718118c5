//! Clients that send their request head slowly, say nothing, or never send the body they promised.

use super::*;

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
