//! Probes of the application itself: HTTP(S) through reqwest and plain TCP, each failure given an error class.

mod classify;
mod spec;

use std::time::{Duration, Instant};

use serde::Serialize;

pub use classify::classify_error;
pub use spec::{DEFAULT_TIMEOUT, Probe, ProbeSpec, check_gates, gating};

/// The most of a response body a probe reads when it looks for a substring.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Why a probe failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    ConnectionRefused,
    DnsFailed,
    TlsVerifyFailed,
    Timeout,
    HttpStatus,
    BodyMismatch,
    /// Any other failure (a malformed URL, a reset connection, an unreadable body).
    Other,
}

impl ErrorClass {
    /// The snake_case name used in JSON and docs.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::ConnectionRefused => "connection_refused",
            ErrorClass::DnsFailed => "dns_failed",
            ErrorClass::TlsVerifyFailed => "tls_verify_failed",
            ErrorClass::Timeout => "timeout",
            ErrorClass::HttpStatus => "http_status",
            ErrorClass::BodyMismatch => "body_mismatch",
            ErrorClass::Other => "other",
        }
    }
}

/// The result of one probe. `detail` never holds a response body or URL credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeOutcome {
    pub name: String,
    pub ok: bool,
    pub class: Option<ErrorClass>,
    pub detail: String,
    pub elapsed_ms: u64,
}

/// Errors of the health module (only building the HTTP client can fail outside a probe's own outcome).
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    #[error("cannot build the http client")]
    Client(#[source] reqwest::Error),
}

/// Runs one probe; every failure becomes an outcome with a class, never a panic or an error.
pub async fn run(spec: &ProbeSpec) -> ProbeOutcome {
    let start = Instant::now();
    let limit = spec.kind.timeout();
    let result = match tokio::time::timeout(limit, run_kind(&spec.kind)).await {
        Ok(r) => r,
        Err(_) => Err((
            ErrorClass::Timeout,
            format!("no answer within {}", fmt_duration(limit)),
        )),
    };
    let elapsed_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let target = target(&spec.kind);
    match result {
        Ok(detail) => ProbeOutcome {
            name: spec.name.clone(),
            ok: true,
            class: None,
            detail: format!("{target}: {detail}"),
            elapsed_ms,
        },
        Err((class, detail)) => ProbeOutcome {
            name: spec.name.clone(),
            ok: false,
            class: Some(class),
            detail: format!("{target}: {detail}"),
            elapsed_ms,
        },
    }
}

/// Runs several probes at once, in the order given.
pub async fn run_all(specs: &[ProbeSpec]) -> Vec<ProbeOutcome> {
    futures_util::future::join_all(specs.iter().map(run)).await
}

type Step = Result<String, (ErrorClass, String)>;

async fn run_kind(kind: &Probe) -> Step {
    match kind {
        Probe::Tcp { host, port, .. } => tcp(host, *port).await,
        Probe::Http {
            url,
            expect_status,
            body_contains,
            insecure_tls,
            timeout,
        } => {
            http(
                url,
                *expect_status,
                body_contains.as_deref(),
                *insecure_tls,
                *timeout,
            )
            .await
        }
    }
}

async fn tcp(host: &str, port: u16) -> Step {
    let addrs: Vec<_> = match tokio::net::lookup_host((host, port)).await {
        Ok(a) => a.collect(),
        Err(e) => return Err((ErrorClass::DnsFailed, format!("cannot resolve host: {e}"))),
    };
    if addrs.is_empty() {
        return Err((
            ErrorClass::DnsFailed,
            "the host resolves to no address".to_string(),
        ));
    }
    let mut last = None;
    for addr in addrs {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(_) => return Ok(format!("connected to {addr}")),
            Err(e) => last = Some(e),
        }
    }
    let e = last.unwrap_or_else(|| std::io::Error::other("no address to connect to"));
    let class = classify::classify_io(&e).unwrap_or(ErrorClass::Other);
    Err((class, format!("cannot connect: {e}")))
}

async fn http(
    url: &str,
    expect: u16,
    body_contains: Option<&str>,
    insecure: bool,
    timeout: Duration,
) -> Step {
    let client = match client(insecure, timeout) {
        Ok(c) => c,
        Err(e) => return Err((ErrorClass::Other, classify::chain(&e))),
    };
    let mut response = match client.get(url).send().await {
        Ok(r) => r,
        Err(e) => {
            let class = classify_error(&e);
            return Err((class, classify::chain(&e.without_url())));
        }
    };
    let status = response.status().as_u16();
    if status != expect {
        return Err((
            ErrorClass::HttpStatus,
            format!("status {status}, expected {expect}"),
        ));
    }
    let Some(needle) = body_contains else {
        return Ok(format!("status {status}"));
    };
    let mut body: Vec<u8> = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_BODY_BYTES.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if body.len() >= MAX_BODY_BYTES {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                let class = classify_error(&e);
                return Err((
                    class,
                    format!(
                        "cannot read the body: {}",
                        classify::chain(&e.without_url())
                    ),
                ));
            }
        }
    }
    if String::from_utf8_lossy(&body).contains(needle) {
        Ok(format!("status {status}, body holds the expected text"))
    } else {
        Err((
            ErrorClass::BodyMismatch,
            format!(
                "status {status}, but the body ({} bytes read) lacks the expected text",
                body.len()
            ),
        ))
    }
}

fn client(insecure: bool, timeout: Duration) -> Result<reqwest::Client, HealthError> {
    // rustls with the `ring` provider (quick to build; no C toolchain beyond cc, no OpenSSL).
    // Installing it twice is harmless: the first one stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .tls_danger_accept_invalid_certs(insecure)
        .build()
        .map_err(HealthError::Client)
}

fn target(kind: &Probe) -> String {
    match kind {
        Probe::Http {
            url, insecure_tls, ..
        } => {
            let url = redact_url(url);
            if *insecure_tls {
                format!("GET {url} (insecure tls)")
            } else {
                format!("GET {url}")
            }
        }
        Probe::Tcp { host, port, .. } => format!("tcp {host}:{port}"),
    }
}

/// The URL without userinfo, query or fragment, fit to show; a path segment that holds a known secret (also
/// percent-encoded) is shown as `<redacted>`.
pub fn redact_url(raw: &str) -> String {
    match reqwest::Url::parse(raw) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            let shown = u.to_string();
            // Without query and fragment, the path ends the URL.
            let (origin, path) = shown.split_at(shown.len() - u.path().len());
            let path: Vec<String> = path
                .split('/')
                .map(|segment| {
                    let decoded = percent_decode(segment);
                    if crate::redact::scrub(&decoded) == decoded
                        && crate::redact::scrub(segment) == segment
                    {
                        segment.to_string()
                    } else {
                        crate::redact::REDACTED.to_string()
                    }
                })
                .collect();
            format!("{origin}{}", path.join("/"))
        }
        Err(_) => "<unparsable url>".to_string(),
    }
}

/// `%XX` sequences decoded (invalid UTF-8 replaced); anything else is kept as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn fmt_duration(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_loses_its_credentials_and_query_when_shown() {
        assert_eq!(
            redact_url("https://user:s3cret@example.com:8443/health?token=x#f"),
            "https://example.com:8443/health"
        );
        assert_eq!(redact_url("not a url"), "<unparsable url>");
    }

    #[test]
    fn a_path_segment_holding_a_known_secret_is_shown_redacted_even_percent_encoded() {
        crate::redact::register_secrets(["probe-secret-\u{f6}\u{fc}/x".to_string()]);
        assert_eq!(
            redact_url("http://127.0.0.1:1/health/probe-secret-%C3%B6%C3%BC%2Fx/ok?t=1"),
            "http://127.0.0.1:1/health/<redacted>/ok"
        );
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%41%zz"), "A%zz");
    }

    #[test]
    fn error_classes_serialize_in_snake_case() {
        for c in [
            ErrorClass::ConnectionRefused,
            ErrorClass::DnsFailed,
            ErrorClass::TlsVerifyFailed,
            ErrorClass::Timeout,
            ErrorClass::HttpStatus,
            ErrorClass::BodyMismatch,
            ErrorClass::Other,
        ] {
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                serde_json::Value::String(c.as_str().into())
            );
        }
    }
}
