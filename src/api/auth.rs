//! Bearer-token checks of the API: every mutation, and the guarded reads when `--api-read-auth` is on.

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;

use super::{ApiContext, refuse, token};
use crate::redact;

/// The token that authorized a request. The serving layer checks a mutation's token from the
/// request head and hands the caller on to the handler as a request extension.
#[derive(Clone, Debug)]
pub(super) struct Caller {
    pub id: String,
    pub name: String,
}

/// What a request asks for, in log lines and refusals.
#[derive(Clone, Copy, Debug)]
pub(super) enum Need {
    /// A mutation (`action` names it).
    Mutation(&'static str),
    /// A guarded read (`--api-read-auth`).
    Read,
}

impl Need {
    fn what(self) -> &'static str {
        match self {
            Need::Mutation(_) => "mutation",
            Need::Read => "read",
        }
    }

    fn action(self) -> &'static str {
        match self {
            Need::Mutation(a) => a,
            Need::Read => "read",
        }
    }
}

/// The caller the serving layer authorized from the request head, else (a router not behind
/// `serve`) the result of [`authorize`]: a mutation handler never runs unauthenticated.
pub(super) async fn caller(
    ctx: &ApiContext,
    given: Option<axum::Extension<Caller>>,
    headers: &HeaderMap,
    need: Need,
) -> Result<Caller, Box<Response>> {
    match given {
        Some(axum::Extension(c)) => Ok(c),
        None => authorize(ctx, headers, need).await,
    }
}

/// Checks the bearer token of a request; logs (never the token) and answers a refusal.
pub(super) async fn authorize(
    ctx: &ApiContext,
    headers: &HeaderMap,
    need: Need,
) -> Result<Caller, Box<Response>> {
    let (what, action) = (need.what(), need.action());
    let dir = ctx.state_dir.clone();
    let loaded = tokio::task::spawn_blocking(move || token::load(&dir)).await;
    let tokens = match loaded {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            let msg = redact::scrub(&e.to_string());
            tracing::error!(action, error = %msg, "{what} refused: the token list cannot be read");
            return Err(refuse(StatusCode::INTERNAL_SERVER_ERROR, msg));
        }
        Err(e) => return Err(refuse(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    };
    if tokens.is_empty() {
        tracing::warn!(action, "{what} refused: no API token is configured");
        let every = match need {
            Need::Mutation(_) => "every mutation is refused",
            Need::Read => "every guarded read (--api-read-auth) is refused",
        };
        return Err(refuse(
            StatusCode::FORBIDDEN,
            format!(
                "no API token is configured, so {every}; run `spindle token create --state-dir {}` and send the token as `Authorization: Bearer <token>`",
                ctx.state_dir.display()
            ),
        ));
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(presented) = presented else {
        tracing::warn!(action, "{what} refused: no bearer token");
        let msg = match need {
            Need::Mutation(_) => {
                "this needs `Authorization: Bearer <token>` (a token made by `spindle token create`)"
            }
            Need::Read => {
                "reads need `Authorization: Bearer <token>` here (--api-read-auth; a token made by `spindle token create`)"
            }
        };
        return Err(refuse(StatusCode::UNAUTHORIZED, msg));
    };
    match token::verify(&tokens, presented) {
        Some(t) => Ok(Caller {
            id: t.id.clone(),
            name: t.name.clone(),
        }),
        None => {
            tracing::warn!(
                action,
                "{what} refused: the bearer token matches no configured token"
            );
            Err(refuse(
                StatusCode::UNAUTHORIZED,
                "the bearer token matches no configured token",
            ))
        }
    }
}
