//! Serving the API: an accept loop over hyper's HTTP/1 with header, request and idle timeouts, a connection cap, body limits, the `Host` check and read auth.
//!
//! Each accepted connection takes a slot (a semaphore permit, held until its socket is closed); at
//! the cap (`--api-max-connections`) a new connection closes the connection that has been quiet
//! longest and is not handling a request, or, when every connection is busy, waits briefly for a
//! slot. A connection still sending its request (head or body) is not busy; a mutation's token is
//! checked from the head, so a request without one is refused before its body is read. So the API
//! holds at most cap + 1 sockets, idle or slow clients can never hold every slot, and `/healthz`
//! from a new connection still answers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::Response;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt;

use super::auth::{self, Need};
use super::guard::{self, HostPolicy, ServeOptions};
use super::{ApiContext, ApiError, error, router};

/// The largest request head (request line and headers); a larger one gets 431.
const MAX_HEAD: usize = 16 * 1024;
/// The largest read buffer a connection keeps.
const MAX_BUF: usize = 32 * 1024;
/// How long a connection accepted at the cap waits for a slot before it is closed.
const ADMIT_WAIT: Duration = Duration::from_secs(2);
/// How long the accept loop pauses after an accept error (such as no file descriptor left).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(200);
/// The shortest gap between two warnings of one kind (refusals can come in floods).
const WARN_EVERY: Duration = Duration::from_secs(10);

/// Binds `addr` and returns the bound address and the server future.
pub async fn bind(
    addr: SocketAddr,
    ctx: ApiContext,
    opts: ServeOptions,
) -> Result<(SocketAddr, impl Future<Output = ()>), ApiError> {
    // The names are checked before binding, so that bad input changes nothing.
    HostPolicy::new(addr, &opts.hosts)?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ApiError::Bind { addr, source })?;
    let bound = listener.local_addr().unwrap_or(addr);
    let hosts = HostPolicy::new(bound, &opts.hosts)?;
    let read_auth = guard::read_auth(opts.read_auth, bound);
    let beyond = !bound.ip().is_loopback();
    match (beyond, read_auth) {
        (true, true) if opts.read_auth.is_none() => tracing::info!(
            %bound,
            "the HTTP API listens beyond loopback, so reads (/status, /evidence, /metrics, /version) need a bearer token (--api-read-auth is on by default here; /healthz and /readyz stay open)"
        ),
        (true, false) => tracing::warn!(
            %bound,
            "the HTTP API listens beyond loopback and reads need no token (--api-read-auth=false): anyone who can reach it can read status, metrics and evidence"
        ),
        (_, true) => tracing::info!(
            "reads (/status, /evidence, /metrics, /version) need a bearer token (--api-read-auth)"
        ),
        (false, false) => {}
    }
    let shared = Arc::new(Shared {
        app: router(ctx.clone()),
        ctx,
        hosts,
        read_auth,
        opts,
        conns: Mutex::new(Conns::default()),
        warned: Mutex::new(HashMap::new()),
    });
    Ok((bound, serve(listener, shared)))
}

/// What every connection of one server shares.
struct Shared {
    ctx: ApiContext,
    app: Router,
    hosts: HostPolicy,
    read_auth: bool,
    opts: ServeOptions,
    conns: Mutex<Conns>,
    warned: Mutex<HashMap<&'static str, Instant>>,
}

/// The open connections.
#[derive(Default)]
struct Conns {
    next: u64,
    live: HashMap<u64, Slot>,
}

struct Slot {
    activity: Arc<Activity>,
    evict: Arc<Notify>,
}

/// When a connection last moved a byte, and how many of its requests are being handled.
struct Activity {
    epoch: Instant,
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            epoch: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.epoch + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    fn busy(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) > 0
    }
}

/// Counts a request as being handled while it lives.
struct Busy(Arc<Activity>);

impl Busy {
    fn new(a: &Arc<Activity>) -> Self {
        a.in_flight.fetch_add(1, Ordering::Relaxed);
        Busy(a.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

impl Shared {
    /// A warning at most every [`WARN_EVERY`] per `kind`.
    fn warn_throttled(&self, kind: &'static str, log: impl FnOnce()) {
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if warned
            .get(kind)
            .is_none_or(|at| now.duration_since(*at) >= WARN_EVERY)
        {
            warned.insert(kind, now);
            log();
        }
    }

    /// Tells the connection that has been quiet longest and is not handling a request (idle, or
    /// still sending its request's head or body) to close; false when every connection is busy.
    fn evict_idle(&self) -> bool {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let victim = conns
            .live
            .iter()
            .filter(|(_, s)| !s.activity.busy())
            .min_by_key(|(_, s)| s.activity.last())
            .map(|(id, _)| *id);
        match victim.and_then(|id| conns.live.remove(&id)) {
            Some(slot) => {
                slot.evict.notify_one();
                true
            }
            None => false,
        }
    }

    /// Registers a new connection.
    fn register(&self) -> (u64, Arc<Activity>, Arc<Notify>) {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        let id = conns.next;
        conns.next += 1;
        let activity = Arc::new(Activity::new());
        let evict = Arc::new(Notify::new());
        conns.live.insert(
            id,
            Slot {
                activity: activity.clone(),
                evict: evict.clone(),
            },
        );
        (id, activity, evict)
    }

    fn release(&self, id: u64) {
        let mut conns = self.conns.lock().unwrap_or_else(|e| e.into_inner());
        conns.live.remove(&id);
    }
}

/// Accepts connections, each holding one of `--api-max-connections` permits until its socket is
/// closed. At the cap the accepted connection waits (at most [`ADMIT_WAIT`]) for an idle one to be
/// closed for it, or for any to end; meanwhile further connections wait in the kernel's backlog,
/// which holds no file descriptor of this process.
async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let permits = Arc::new(Semaphore::new(shared.opts.max_connections.max(1)));
    let max = shared.opts.max_connections;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                shared.warn_throttled("accept", || {
                    tracing::warn!(error = %e, "the HTTP API cannot accept a connection; retrying")
                });
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let permit = match permits.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if shared.evict_idle() {
                    shared.warn_throttled("evict", || {
                        tracing::warn!(
                            max,
                            "the HTTP API is at its connection cap (--api-max-connections): closing the longest idle connection for a new one"
                        )
                    });
                } else {
                    shared.warn_throttled("full", || {
                        tracing::warn!(
                            max,
                            "the HTTP API is at its connection cap (--api-max-connections) and every connection is busy: a new connection waits"
                        )
                    });
                }
                match tokio::time::timeout(ADMIT_WAIT, permits.clone().acquire_owned()).await {
                    Ok(Ok(p)) => p,
                    _ => {
                        drop(stream);
                        continue;
                    }
                }
            }
        };
        let (id, activity, evict) = shared.register();
        tokio::spawn(connection(
            shared.clone(),
            stream,
            id,
            activity,
            evict,
            permit,
        ));
    }
}

/// Serves one connection until it ends, is evicted, or idles past `--api-idle-timeout`.
async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    id: u64,
    activity: Arc<Activity>,
    evict: Arc<Notify>,
    permit: OwnedSemaphorePermit,
) {
    let _ = stream.set_nodelay(true);
    let local = stream
        .local_addr()
        .map(|a| a.ip())
        .unwrap_or(IpAddr::from([127, 0, 0, 1]));
    activity.touch();
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let svc = {
        let shared = shared.clone();
        let activity = activity.clone();
        hyper::service::service_fn(move |req| {
            let shared = shared.clone();
            let activity = activity.clone();
            async move { Ok::<_, Infallible>(handle(&shared, local, &activity, req).await) }
        })
    };
    let mut conn = Box::pin(
        hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(shared.opts.header_timeout)
            .max_header_size(MAX_HEAD)
            .max_buf_size(MAX_BUF)
            .serve_connection(io, svc),
    );
    let idle = shared.opts.idle_timeout;
    let tick = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(5));
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "an HTTP API connection ended");
                }
                break;
            }
            () = evict.notified() => break,
            () = tokio::time::sleep(tick) => {
                if !activity.busy() && activity.last().elapsed() >= idle {
                    tracing::debug!("an HTTP API connection idled past --api-idle-timeout");
                    break;
                }
            }
        }
    }
    // The socket closes before the permit is given back.
    drop(conn);
    shared.release(id);
    drop(permit);
}

/// A refusal that also closes the connection (its body may still be on the way).
fn closing(status: StatusCode, message: impl Into<String>) -> Response {
    close(error(status, message))
}

/// `r`, closing the connection after it: its request's body is never read.
fn close(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// `Some` answer when the request's `Host` (and absolute URI) is not one this API answers to.
fn refuse_host(shared: &Shared, local: IpAddr, req: &Request<Incoming>) -> Option<Response> {
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let (Some(host), None) = (hosts.next(), hosts.next()) else {
        return Some(closing(
            StatusCode::BAD_REQUEST,
            "a request needs exactly one Host header",
        ));
    };
    let host_ok = host.to_str().is_ok_and(|h| shared.hosts.allows(h, local));
    let uri_ok = req
        .uri()
        .authority()
        .is_none_or(|a| shared.hosts.allows(a.as_str(), local));
    if host_ok && uri_ok {
        return None;
    }
    shared.warn_throttled("host", || {
        tracing::warn!(
            "HTTP API request refused: its Host names neither this API's address nor localhost nor an --api-host name (DNS rebinding?)"
        )
    });
    Some(closing(
        StatusCode::MISDIRECTED_REQUEST,
        "the Host header names neither this API's address nor localhost nor a name given with --api-host; address the API by its IP (e.g. http://127.0.0.1:9477), or add the name with --api-host",
    ))
}

/// Answers one request. Everything decided from the head comes first, before a byte of the body
/// is read: the `Host`, the declared body size, and the bearer token of a mutation (or of a
/// guarded read); each refusal closes the connection without reading the body. The connection
/// counts as busy (not evictable at the cap) only from when the body has arrived until the answer
/// is ready, so a client still sending its request, with or without a token, holds no slot.
async fn handle(
    shared: &Shared,
    local: IpAddr,
    activity: &Arc<Activity>,
    req: Request<Incoming>,
) -> Response {
    let timeout = shared.opts.request_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    if let Some(r) = refuse_host(shared, local, &req) {
        return r;
    }
    let (mut parts, body) = req.into_parts();
    let limit = guard::body_limit(&parts.method);
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large(limit);
    }
    let need = match guard::mutation(&parts.method, parts.uri.path()) {
        Some(action) => Some(Need::Mutation(action)),
        None if shared.read_auth && guard::is_guarded_read(&parts.method, parts.uri.path()) => {
            Some(Need::Read)
        }
        None => None,
    };
    if let Some(need) = need {
        let authorized =
            tokio::time::timeout_at(deadline, auth::authorize(&shared.ctx, &parts.headers, need))
                .await;
        match authorized {
            // The handler takes the caller from here and records the accepted mutation.
            Ok(Ok(caller)) => {
                parts.extensions.insert(axum::Extension(caller));
            }
            Ok(Err(r)) => return close(*r),
            Err(_) => return too_slow(timeout),
        }
    }
    let bytes = match tokio::time::timeout_at(deadline, Limited::new(body, limit).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => return too_large(limit),
        Ok(Err(_)) => return closing(StatusCode::BAD_REQUEST, "the request body is malformed"),
        Err(_) => {
            return closing(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the request body did not arrive within {} (--api-request-timeout)",
                    humantime::format_duration(timeout)
                ),
            );
        }
    };
    let _busy = Busy::new(activity);
    let req = Request::from_parts(parts, axum::body::Body::from(bytes));
    match tokio::time::timeout_at(deadline, shared.app.clone().oneshot(req)).await {
        Ok(Ok(resp)) => resp,
        Ok(Err(never)) => match never {},
        Err(_) => too_slow(timeout),
    }
}

fn too_large(limit: usize) -> Response {
    closing(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the request body is larger than this route takes ({limit} bytes)"),
    )
}

fn too_slow(timeout: Duration) -> Response {
    closing(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "the answer took longer than {} (--api-request-timeout)",
            humantime::format_duration(timeout)
        ),
    )
}

/// A stream that notes when it last moved a byte.
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
