//! Each probe error class, against local servers on 127.0.0.1: refused, unresolvable, self-signed, slow, wrong status, wrong body.

use std::sync::Arc;
use std::time::Duration;

use spindle::health::{ErrorClass, Probe, ProbeSpec, run};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn http(
    url: String,
    body_contains: Option<&str>,
    insecure_tls: bool,
    timeout_ms: u64,
) -> ProbeSpec {
    ProbeSpec {
        name: "probe".into(),
        kind: Probe::Http {
            url,
            expect_status: 200,
            body_contains: body_contains.map(str::to_string),
            insecure_tls,
            timeout: Duration::from_millis(timeout_ms),
        },
        gates: None,
    }
}

fn tcp(host: &str, port: u16) -> ProbeSpec {
    ProbeSpec {
        name: "probe".into(),
        kind: Probe::Tcp {
            host: host.into(),
            port,
            timeout: Duration::from_secs(3),
        },
        gates: None,
    }
}

async fn refused_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

/// Serves every connection one fixed HTTP response after reading the request head.
async fn http_server(status: &'static str, body: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                read_head(&mut s).await;
                let resp = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
                let _ = s.shutdown().await;
            });
        }
    });
    port
}

async fn read_head<S: AsyncReadExt + Unpin>(s: &mut S) {
    let mut buf = Vec::new();
    let mut b = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut b).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
}

#[tokio::test]
async fn an_http_probe_to_a_refused_port_is_connection_refused() {
    let port = refused_port().await;
    let out = run(&http(
        format!("http://127.0.0.1:{port}/health"),
        None,
        false,
        3000,
    ))
    .await;
    assert!(!out.ok);
    assert_eq!(
        out.class,
        Some(ErrorClass::ConnectionRefused),
        "{}",
        out.detail
    );
}

#[tokio::test]
async fn a_tcp_probe_to_a_refused_port_is_connection_refused() {
    let port = refused_port().await;
    let out = run(&tcp("127.0.0.1", port)).await;
    assert_eq!(
        out.class,
        Some(ErrorClass::ConnectionRefused),
        "{}",
        out.detail
    );
}

#[tokio::test]
async fn an_http_probe_to_an_unresolvable_host_is_dns_failed() {
    let out = run(&http(
        "http://nonexistent.invalid/health".into(),
        None,
        false,
        5000,
    ))
    .await;
    assert_eq!(out.class, Some(ErrorClass::DnsFailed), "{}", out.detail);
}

#[tokio::test]
async fn a_tcp_probe_to_an_unresolvable_host_is_dns_failed() {
    let out = run(&tcp("nonexistent.invalid", 80)).await;
    assert_eq!(out.class, Some(ErrorClass::DnsFailed), "{}", out.detail);
}

async fn self_signed_server() -> u16 {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let key =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = key.cert.der().clone();
    let pkey = rustls::pki_types::PrivateKeyDer::try_from(key.signing_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert], pkey)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(s).await else {
                    return;
                };
                read_head(&mut tls).await;
                let _ = tls
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test]
async fn a_self_signed_tls_server_is_tls_verify_failed() {
    let port = self_signed_server().await;
    let out = run(&http(
        format!("https://localhost:{port}/health"),
        None,
        false,
        5000,
    ))
    .await;
    assert_eq!(
        out.class,
        Some(ErrorClass::TlsVerifyFailed),
        "{}",
        out.detail
    );
}

#[tokio::test]
async fn a_self_signed_tls_server_passes_with_insecure_tls() {
    let port = self_signed_server().await;
    let out = run(&http(
        format!("https://localhost:{port}/health"),
        Some("ok"),
        true,
        5000,
    ))
    .await;
    assert!(out.ok, "{:?}", out);
    assert!(out.detail.contains("insecure tls"), "{}", out.detail);
}

#[tokio::test]
async fn a_server_that_never_answers_is_a_timeout() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            held.push(s);
        }
    });
    let started = std::time::Instant::now();
    let out = run(&http(format!("http://127.0.0.1:{port}/"), None, false, 300)).await;
    assert_eq!(out.class, Some(ErrorClass::Timeout), "{}", out.detail);
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_server_answering_503_is_http_status() {
    let port = http_server("503 Service Unavailable", "down").await;
    let out = run(&http(
        format!("http://127.0.0.1:{port}/health"),
        None,
        false,
        3000,
    ))
    .await;
    assert_eq!(out.class, Some(ErrorClass::HttpStatus), "{}", out.detail);
    assert!(out.detail.contains("503"), "{}", out.detail);
}

#[tokio::test]
async fn a_body_lacking_the_text_is_body_mismatch_and_is_not_shown() {
    let port = http_server("200 OK", "status: degraded-secret-marker").await;
    let out = run(&http(
        format!("http://127.0.0.1:{port}/health"),
        Some("healthy"),
        false,
        3000,
    ))
    .await;
    assert_eq!(out.class, Some(ErrorClass::BodyMismatch), "{}", out.detail);
    assert!(!out.detail.contains("secret-marker"), "{}", out.detail);
}

#[tokio::test]
async fn a_body_holding_the_text_is_ok() {
    let port = http_server("200 OK", "all healthy").await;
    let out = run(&http(
        format!("http://127.0.0.1:{port}/health"),
        Some("healthy"),
        false,
        3000,
    ))
    .await;
    assert!(out.ok, "{:?}", out);
    assert_eq!(out.class, None);
}

#[tokio::test]
async fn url_credentials_never_reach_the_detail() {
    let port = refused_port().await;
    let out = run(&http(
        format!("http://admin:hunter2@127.0.0.1:{port}/health?token=abc"),
        None,
        false,
        3000,
    ))
    .await;
    assert_eq!(
        out.class,
        Some(ErrorClass::ConnectionRefused),
        "{}",
        out.detail
    );
    assert!(
        !out.detail.contains("hunter2")
            && !out.detail.contains("admin")
            && !out.detail.contains("abc"),
        "{}",
        out.detail
    );
}

#[tokio::test]
async fn a_tcp_probe_to_an_open_listener_is_ok() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let out = run(&tcp("127.0.0.1", port)).await;
    assert!(out.ok, "{:?}", out);
}
