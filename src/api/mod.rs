//! The HTTP API of `spindle run` (axum): health, readiness, version, metrics, status, evidence, and token-guarded mutations.
//!
//! Mutations (`POST /reconcile`, `/profile`, `/pause`, `/resume`) need `Authorization: Bearer
//! <token>` of a token made by `spindle token create`; with no token configured every mutation is
//! refused (403). Reads need it too with `--api-read-auth` (on by default beyond loopback). Each
//! accepted mutation is appended to the evidence log as a record of kind `api` naming the token's
//! id; refused ones are logged. Serving (timeouts, connection cap, body limits, the `Host` check)
//! lives in `serve`, its pure rules in `guard`. See docs/api.md.

mod auth;
pub mod guard;
pub mod scrub;
mod serve;
pub mod token;

pub use guard::ServeOptions;
pub use serve::bind;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::controller::{Trigger, TriggerHandle};
use crate::engine::Engine;
use crate::pause::Transition;
use crate::reconcile::SharedEvidence;
use crate::redact;
use crate::runtime::Runtime;

/// The address `spindle run` listens on unless told otherwise (loopback only).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9477";
/// How long `/readyz` waits for the engine's ping.
pub const READY_PING_TIMEOUT: Duration = Duration::from_secs(1);
/// The most records `GET /evidence` returns.
pub const MAX_EVIDENCE_LIMIT: usize = 1000;

/// The build's git revision (build.rs; `unknown` without git).
pub const GIT_REVISION: &str = env!("SPINDLE_GIT_REVISION");

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Guard(#[from] guard::GuardError),
}

/// The engine connection as the API sees it: not yet made (with the last error), or made.
#[derive(Debug, Default)]
pub struct EngineLink {
    engine: OnceLock<Engine>,
    last_error: Mutex<Option<String>>,
}

impl EngineLink {
    pub fn connected(&self, engine: Engine) {
        let _ = self.engine.set(engine);
    }

    pub fn failed(&self, reason: String) {
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason);
    }

    pub fn engine(&self) -> Option<&Engine> {
        self.engine.get()
    }

    fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Everything the handlers read or act on.
#[derive(Clone)]
pub struct ApiContext {
    pub runtime: Runtime,
    pub project: String,
    /// The desired-state folder (for its revision).
    pub folder: PathBuf,
    /// The profiles asked for with `--profile`.
    pub requested_profiles: Vec<String>,
    /// The state dir, canonical: `/status` and `/version` show it so that `spindle status` can
    /// tell whether the spindle answering is the one it means.
    pub state_dir: PathBuf,
    pub evidence: SharedEvidence,
    pub trigger: TriggerHandle,
    pub engine: Arc<EngineLink>,
}

/// The routes, for serving or for tests.
pub fn router(ctx: ApiContext) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/evidence", get(evidence))
        .route("/reconcile", post(reconcile))
        .route("/profile", post(profile))
        .route("/pause", post(pause))
        .route("/resume", post(resume))
        .layer(axum::middleware::from_fn(scrub::responses))
        .with_state(ctx)
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

/// [`error`], boxed: what a refused mutation answers.
fn refuse(status: StatusCode, message: impl Into<String>) -> Box<Response> {
    Box::new(error(status, message))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "alive"}))
}

/// `Ok(())` when the engine answers a ping, else why not.
async fn engine_reachable(ctx: &ApiContext) -> Result<(), String> {
    match ctx.engine.engine() {
        None => Err(match ctx.engine.last_error() {
            Some(e) => format!("engine unreachable: {e}"),
            None => "connecting to the engine".into(),
        }),
        Some(engine) => engine
            .ping(READY_PING_TIMEOUT)
            .await
            .map_err(|e| format!("engine unreachable: {}", redact::scrub(&e.to_string()))),
    }
}

async fn readyz(State(ctx): State<ApiContext>) -> Response {
    let engine = engine_reachable(&ctx).await;
    let first = ctx.runtime.board.first_reconcile_done();
    let paused = ctx.runtime.pause.is_paused();
    let mut reasons = Vec::new();
    if let Err(e) = &engine {
        reasons.push(e.clone());
    }
    if !first {
        reasons.push("the first reconcile has not finished".to_string());
    }
    let body = json!({
        "ready": reasons.is_empty(),
        "engine": if engine.is_ok() { "reachable" } else { "unreachable" },
        "first_reconcile_done": first,
        "paused": paused,
        "reason": if reasons.is_empty() { Value::Null } else { reasons.join("; ").into() },
    });
    let code = if reasons.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

/// The switcher's state and active profile, or the requested profiles.
fn profile_view(ctx: &ApiContext) -> Value {
    match &ctx.runtime.profile {
        Some(p) => json!({
            "switcher": true,
            "active": p.active(),
            "requested": ctx.requested_profiles,
            "state": p.state(),
        }),
        None => json!({
            "switcher": false,
            "active": Value::Null,
            "requested": ctx.requested_profiles,
        }),
    }
}

async fn version(State(ctx): State<ApiContext>) -> Json<Value> {
    let revision = ctx.runtime.board.revision();
    Json(json!({
        "spindle": env!("CARGO_PKG_VERSION"),
        "git_revision": GIT_REVISION,
        "desired_revision": revision,
        "project": ctx.project,
        "state_dir": ctx.state_dir,
        "profile": profile_view(&ctx),
    }))
}

async fn metrics(State(ctx): State<ApiContext>, headers: HeaderMap) -> Response {
    let m = &ctx.runtime.metrics;
    let switches = ctx
        .runtime
        .profile
        .as_ref()
        .and_then(|p| p.state().get("switches").and_then(Value::as_u64))
        .unwrap_or(0);
    m.refresh(
        ctx.engine.engine().map(Engine::requests),
        switches,
        ctx.runtime.pause.is_paused(),
    );
    // Prometheus asks for OpenMetrics first; everyone else gets the classic text format.
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                crate::metrics::OPENMETRICS_CONTENT_TYPE,
            )],
            m.encode(),
        )
            .into_response()
    } else {
        (
            [(header::CONTENT_TYPE, crate::metrics::TEXT_CONTENT_TYPE)],
            m.encode_text(),
        )
            .into_response()
    }
}

/// The `/status` document (also what `spindle status` prints from).
pub fn status_document(ctx: &ApiContext) -> Value {
    let board = ctx.runtime.board.snapshot();
    json!({
        "project": ctx.project,
        "state_dir": ctx.state_dir,
        "source": "api",
        "pause": ctx.runtime.pause.current(),
        "reconciles": board.reconciles,
        "last_reconcile": board.last,
        "services": board.services.map(|s| serde_json::to_value(s.services).unwrap_or(Value::Null)),
        "warnings": board.warnings,
        "profile": profile_view(ctx),
    })
}

async fn status(State(ctx): State<ApiContext>) -> Json<Value> {
    Json(status_document(&ctx))
}

#[derive(Deserialize)]
struct EvidenceQuery {
    /// Parsed here rather than by axum, so that a bad value gets a JSON error like the others.
    limit: Option<String>,
}

async fn evidence(State(ctx): State<ApiContext>, Query(q): Query<EvidenceQuery>) -> Response {
    let limit = match q.limit.as_deref().map(str::parse::<usize>) {
        None => 20,
        Some(Ok(n)) => n.clamp(1, MAX_EVIDENCE_LIMIT),
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("limit must be a whole number from 1 to {MAX_EVIDENCE_LIMIT}"),
            );
        }
    };
    let dir = crate::evidence::evidence_dir(&ctx.state_dir);
    let read = tokio::task::spawn_blocking(move || crate::evidence::list(&dir, limit)).await;
    match read {
        Ok(Ok(records)) => {
            let records: Vec<Value> = records
                .into_iter()
                .map(|r| Value::Object(r.fields))
                .collect();
            Json(json!({"records": records})).into_response()
        }
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            redact::scrub(&e.to_string()),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// Appends the evidence record of an accepted mutation; returns its id.
fn record_mutation(
    ctx: &ApiContext,
    caller: &auth::Caller,
    action: &str,
    extra: Map<String, Value>,
) -> Result<String, Box<Response>> {
    let mut log = crate::evidence::lock_shared(&ctx.evidence);
    append_mutation(ctx, &mut log, caller, action, extra)
}

/// [`record_mutation`] into a log the caller has locked already.
fn append_mutation(
    ctx: &ApiContext,
    log: &mut crate::evidence::EvidenceLog,
    caller: &auth::Caller,
    action: &str,
    extra: Map<String, Value>,
) -> Result<String, Box<Response>> {
    let mut body = Map::new();
    body.insert("kind".into(), "api".into());
    body.insert("action".into(), action.into());
    body.insert("at".into(), now_rfc3339().into());
    // `actor`, not `token_id`: keys naming a token are redacted as secret-like.
    body.insert("actor".into(), caller.id.clone().into());
    body.insert("actor_name".into(), caller.name.clone().into());
    body.extend(extra);
    let appended = log.append(body, &redact::registered());
    match appended {
        Ok(a) => {
            ctx.runtime.metrics.evidence_appended("api");
            tracing::info!(action, token = %caller.id, record = %a.id, "API mutation accepted");
            Ok(a.id)
        }
        Err(e) => {
            let msg = redact::scrub(&e.to_string());
            tracing::error!(action, error = %msg, "API mutation not recorded");
            Err(refuse(StatusCode::INTERNAL_SERVER_ERROR, msg))
        }
    }
}

async fn reconcile(
    State(ctx): State<ApiContext>,
    given: Option<axum::Extension<auth::Caller>>,
    headers: HeaderMap,
) -> Response {
    let caller = match auth::caller(&ctx, given, &headers, auth::Need::Mutation("reconcile")).await
    {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let record = match record_mutation(&ctx, &caller, "reconcile", Map::new()) {
        Ok(id) => id,
        Err(r) => return *r,
    };
    ctx.trigger.trigger(Trigger::Api);
    (
        StatusCode::ACCEPTED,
        Json(json!({"accepted": "reconcile", "record": record})),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileBody {
    /// `null` unpins. The key is required (no serde default for this `Option`), and no other
    /// key is allowed, so `{}` or a misspelt key is refused instead of unpinning.
    #[serde(deserialize_with = "name_or_null")]
    profile: Option<String>,
}

fn name_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Option::<String>::deserialize(d)
}

/// The profile a `POST /profile` body asks for (`None`: unpin), or why the body is refused.
fn parse_profile_body(body: &[u8]) -> Result<Option<String>, String> {
    let why = |e: String| {
        format!("the body must be {{\"profile\": \"<name>\"}} or {{\"profile\": null}}: {e}")
    };
    let value: Value = serde_json::from_slice(body).map_err(|e| why(e.to_string()))?;
    if !value.is_object() {
        return Err(why(format!("got {value}")));
    }
    ProfileBody::deserialize(value)
        .map(|b| b.profile)
        .map_err(|e| why(e.to_string()))
}

async fn profile(
    State(ctx): State<ApiContext>,
    given: Option<axum::Extension<auth::Caller>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let caller = match auth::caller(&ctx, given, &headers, auth::Need::Mutation("profile")).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let wanted = match parse_profile_body(&body) {
        Ok(w) => w,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let Some(switcher) = &ctx.runtime.profile else {
        return error(
            StatusCode::NOT_FOUND,
            "there is no profile switcher: spindle.yaml declares no switchable profiles",
        );
    };
    // A switch asks for its reconcile from inside `pin`; the evidence log stays locked from the
    // pin to this record, so the record always precedes the reconcile the pin causes.
    let mut log = crate::evidence::lock_shared(&ctx.evidence);
    match switcher.pin(wanted.clone()) {
        Ok(()) => {}
        Err(e @ crate::runtime::PinError::Unknown(_)) => {
            return error(StatusCode::CONFLICT, redact::scrub(&e.to_string()));
        }
        Err(e @ crate::runtime::PinError::Persist(_)) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                redact::scrub(&e.to_string()),
            );
        }
    }
    let mut extra = Map::new();
    extra.insert("profile".into(), json!(wanted));
    let record = append_mutation(&ctx, &mut log, &caller, "profile", extra);
    drop(log);
    let record = match record {
        Ok(id) => id,
        Err(r) => return *r,
    };
    ctx.trigger.trigger(Trigger::Api);
    Json(json!({"pinned": wanted, "record": record})).into_response()
}

async fn pause(
    State(ctx): State<ApiContext>,
    given: Option<axum::Extension<auth::Caller>>,
    headers: HeaderMap,
) -> Response {
    let caller = match auth::caller(&ctx, given, &headers, auth::Need::Mutation("pause")).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    match ctx
        .runtime
        .pause
        .pause(now_rfc3339(), Some(caller.id.clone()))
    {
        Ok(Transition::Unchanged) => {
            Json(json!({"pause": ctx.runtime.pause.current(), "changed": false})).into_response()
        }
        Ok(Transition::Changed) => match record_mutation(&ctx, &caller, "pause", Map::new()) {
            Ok(record) => Json(
                json!({"pause": ctx.runtime.pause.current(), "changed": true, "record": record}),
            )
            .into_response(),
            Err(r) => {
                // No mutation without its record: undo the pause.
                let _ = ctx.runtime.pause.resume();
                *r
            }
        },
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            redact::scrub(&e.to_string()),
        ),
    }
}

async fn resume(
    State(ctx): State<ApiContext>,
    given: Option<axum::Extension<auth::Caller>>,
    headers: HeaderMap,
) -> Response {
    let caller = match auth::caller(&ctx, given, &headers, auth::Need::Mutation("resume")).await {
        Ok(c) => c,
        Err(r) => return *r,
    };
    match ctx.runtime.pause.resume() {
        Ok(Transition::Unchanged) => {
            Json(json!({"pause": ctx.runtime.pause.current(), "changed": false})).into_response()
        }
        Ok(Transition::Changed) => {
            let record = match record_mutation(&ctx, &caller, "resume", Map::new()) {
                Ok(id) => id,
                Err(r) => {
                    // No mutation without its record: stay paused.
                    let _ = ctx
                        .runtime
                        .pause
                        .pause(now_rfc3339(), Some(caller.id.clone()));
                    return *r;
                }
            };
            // Resuming reconciles at once: whatever was planned while paused is applied now.
            ctx.trigger.trigger(Trigger::Api);
            Json(json!({"pause": ctx.runtime.pause.current(), "changed": true, "record": record}))
                .into_response()
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            redact::scrub(&e.to_string()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_body_names_a_profile_or_null_and_nothing_else() {
        let cases: &[(&str, Result<Option<&str>, &str>)] = &[
            (r#"{"profile":"low-cpu"}"#, Ok(Some("low-cpu"))),
            (r#"{"profile":null}"#, Ok(None)),
            (r#"{"profile":"default"}"#, Ok(Some("default"))),
            ("", Err("EOF")),
            ("{}", Err("missing field `profile`")),
            (r#"{"profil":"low-cpu"}"#, Err("unknown field `profil`")),
            (r#"{"profile":null,"x":1}"#, Err("unknown field `x`")),
            (r#"{"profile":3}"#, Err("invalid type")),
            (r#"["low-cpu"]"#, Err(r#"got ["low-cpu"]"#)),
        ];
        for (body, want) in cases {
            let got = parse_profile_body(body.as_bytes());
            match (want, &got) {
                (Ok(w), Ok(g)) => assert_eq!(g.as_deref(), *w, "{body}"),
                (Err(needle), Err(msg)) => {
                    assert!(msg.contains(needle), "{body}: {msg}");
                    assert!(msg.contains(r#"{"profile": null}"#), "{body}: {msg}");
                }
                _ => panic!("{body}: {got:?}, want {want:?}"),
            }
        }
    }
}
