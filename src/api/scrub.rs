//! The API's last net against secret leaks: every response body passes through [`crate::redact::scrub`] before it is sent.
//!
//! Handlers already redact what they build; this layer catches what they miss (an error text, a record written
//! before a secret was known). A JSON body is scrubbed string by string, keys included, so that it stays valid
//! JSON whatever the redactor replaces; any other body is scrubbed as text. A body that is not UTF-8 is sent as it
//! is (the API serves none).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::redact;

/// The largest body the layer reads to scrub (`GET /evidence` returns at most 1000 records).
pub const MAX_SCRUBBED_BODY: usize = 64 * 1024 * 1024;

/// The middleware: `router.layer(axum::middleware::from_fn(scrub::responses))`.
pub async fn responses(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_SCRUBBED_BODY).await {
        Ok(b) => b,
        Err(_) => {
            // Never send what could not be checked.
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "the response could not be checked for secrets",
            )
                .into_response();
        }
    };
    let Some(clean) = scrub_body(&bytes) else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    if let Ok(len) = HeaderValue::from_str(&clean.len().to_string()) {
        parts.headers.insert(header::CONTENT_LENGTH, len);
    }
    Response::from_parts(parts, Body::from(clean))
}

/// The body with every secret replaced, or `None` when there was nothing to replace (or it is not UTF-8).
pub fn scrub_body(bytes: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let Ok(mut tree) = serde_json::from_str::<Value>(text) else {
        let clean = redact::scrub(text);
        return (clean != text).then(|| clean.into_bytes());
    };
    let strings_changed = scrub_tree(&mut tree);
    if !strings_changed && redact::scrub(text) == text {
        return None;
    }
    let mut out = serde_json::to_string(&tree).ok()?;
    if text.ends_with('\n') {
        out.push('\n');
    }
    // A form that only the whole text shows (an escaped copy) is replaced too.
    Some(redact::scrub(&out).into_bytes())
}

/// Scrubs every string of a JSON tree, object keys included; true when anything changed.
fn scrub_tree(v: &mut Value) -> bool {
    match v {
        Value::String(s) => {
            let clean = redact::scrub(s);
            let changed = clean != *s;
            *s = clean;
            changed
        }
        Value::Array(a) => a.iter_mut().fold(false, |c, x| scrub_tree(x) | c),
        Value::Object(m) => {
            let old = std::mem::take(m);
            let mut changed = false;
            for (k, mut x) in old {
                changed |= scrub_tree(&mut x);
                let key = redact::scrub(&k);
                changed |= key != k;
                m.insert(key, x);
            }
            changed
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;

    const SECRET: &str = "scrub-layer-secret-4711";

    /// Serves `router` on a free loopback port and GETs `path`: `(content-length, body)`.
    async fn body_of(router: Router, path: &str) -> (Option<String>, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let addr = listener.local_addr().expect("an address");
        tokio::spawn(async move { axum::serve(listener, router).await });
        let _ = rustls::crypto::ring::default_provider().install_default();
        let resp = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("a client")
            .get(format!("http://{addr}{path}"))
            .send()
            .await
            .expect("a response");
        let len = resp
            .headers()
            .get(header::CONTENT_LENGTH)
            .map(|v| v.to_str().unwrap_or_default().to_string());
        (len, resp.text().await.expect("a body"))
    }

    fn app() -> Router {
        Router::new()
            .route(
                "/json",
                get(|| async {
                    axum::Json(serde_json::json!({
                        "message": format!("engine said: bad value {SECRET}"),
                        SECRET: [SECRET, 1, null],
                    }))
                }),
            )
            .route("/text", get(|| async { format!("# metric {SECRET}\n") }))
            .route("/clean", get(|| async { "{\"ok\": true}" }))
            .layer(axum::middleware::from_fn(responses))
    }

    #[tokio::test]
    async fn a_secret_in_any_response_body_is_replaced_and_json_stays_json() {
        redact::register_secrets([SECRET.to_string()]);
        let (len, json) = body_of(app(), "/json").await;
        assert!(!json.contains(SECRET), "{json}");
        let v: Value = serde_json::from_str(&json).expect("still JSON");
        assert_eq!(v["message"], "engine said: bad value <redacted>");
        assert_eq!(v["<redacted>"][0], "<redacted>");
        assert_eq!(len.as_deref(), Some(json.len().to_string().as_str()));

        let (_, text) = body_of(app(), "/text").await;
        assert_eq!(text, "# metric <redacted>\n");
    }

    #[tokio::test]
    async fn a_body_without_secrets_is_sent_byte_for_byte() {
        redact::register_secrets([SECRET.to_string()]);
        let (_, clean) = body_of(app(), "/clean").await;
        assert_eq!(clean, "{\"ok\": true}");
    }
}
