//! The Docker engine connection: address resolution, API version negotiation, bounded and counted API calls.
//!
//! Every call goes through [`Engine`], which bounds it by a timeout, counts it as a read or a write
//! (so "no write on a no-op" can be asserted), and turns bollard's errors into [`EngineError`],
//! whose messages name the operation and its target and never carry environment values.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerSummary, ContainerUpdateBody,
    EndpointSettings, Network, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest, NetworkInspect, Volume, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, EventsOptions, InspectNetworkOptions,
    KillContainerOptions, ListContainersOptions, ListNetworksOptions, ListVolumesOptions,
    RemoveContainerOptions, RenameContainerOptions, RestartContainerOptions, StopContainerOptions,
    WaitContainerOptions,
};
use futures_util::{Stream, StreamExt, TryStreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::redact::{self, Redactor};

pub mod replies;
pub use replies::{Listed, Unreadable};

/// The output of an attached exec, as chunks of bytes.
pub type ExecOutput =
    std::pin::Pin<Box<dyn Stream<Item = Result<Vec<u8>, EngineError>> + Send + 'static>>;

/// The engine address used when `DOCKER_HOST` is unset or empty.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";
/// How long an ordinary API call may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the first contact (ping and version) may take.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an image pull may take.
pub const DEFAULT_PULL_TIMEOUT: Duration = Duration::from_secs(600);
/// The oldest engine API spindle speaks: Docker 20.10.
pub const MIN_API_VERSION: (usize, usize) = (1, 41);

/// Errors of the engine connection and its calls.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "cannot reach the docker engine at {address}: {reason}; is the Docker daemon running? set DOCKER_HOST to its address (unix:///path/docker.sock or tcp://host:port)"
    )]
    Unreachable { address: String, reason: String },
    #[error(
        "unsupported docker engine address {address}: {reason}; use unix:///path/docker.sock or tcp://host:port"
    )]
    UnsupportedHost { address: String, reason: String },
    #[error(
        "the docker engine at {address} speaks API {found}, older than {}.{} (Docker 20.10); upgrade Docker",
        MIN_API_VERSION.0,
        MIN_API_VERSION.1
    )]
    TooOld { address: String, found: String },
    #[error("{op} {target}: timed out after {}", human(*after))]
    Timeout {
        op: &'static str,
        target: String,
        after: Duration,
    },
    #[error("{op} {target}: not found: {message}")]
    NotFound {
        op: &'static str,
        target: String,
        message: String,
    },
    #[error("{op} {target}: conflict: {message}")]
    Conflict {
        op: &'static str,
        target: String,
        message: String,
    },
    #[error("pull {image}: the image does not exist or access is denied: {message}")]
    ImageNotFound { image: String, message: String },
    #[error("pull {image}: {message}; check the registry is reachable, or load the image locally")]
    PullFailed { image: String, message: String },
    #[error(
        "{op} {target}: the engine's reply does not have the shape spindle reads (near column {column}); it was not used"
    )]
    UnreadableReply {
        op: &'static str,
        target: String,
        column: usize,
    },
    #[error("{op} {target}: invalid request body: {message}")]
    InvalidBody {
        op: &'static str,
        target: String,
        message: String,
    },
    #[error("{op} {target}: the engine answered {status}: {message}")]
    Api {
        op: &'static str,
        target: String,
        status: u16,
        message: String,
    },
    /// Any other failure of the engine client. Its `message` is the client's error, scrubbed; the client's error
    /// itself is not kept as a source, so that printing the chain cannot show it unscrubbed.
    #[error("{op} {target}: {message}")]
    Transport {
        op: &'static str,
        target: String,
        message: String,
    },
}

impl EngineError {
    /// The HTTP status the engine answered, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::NotFound { .. } | Self::ImageNotFound { .. } => Some(404),
            Self::Conflict { .. } => Some(409),
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The object does not exist (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// The request conflicts with the object's state or name (409).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// The engine could not be reached at all.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }

    /// The engine answered, but its reply does not have the shape spindle reads.
    pub fn is_unreadable_reply(&self) -> bool {
        matches!(self, Self::UnreadableReply { .. })
    }

    /// The image could not be made present (absent from the registry, or the registry unreachable).
    pub fn is_pull_failure(&self) -> bool {
        matches!(self, Self::ImageNotFound { .. } | Self::PullFailed { .. })
    }
}

/// Turns a not-found error into `None`.
pub fn optional<T>(r: Result<T, EngineError>) -> Result<Option<T>, EngineError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// API requests made through one [`Engine`] (and its clones), split by effect.
///
/// Reads observe (`GET`, and `POST …/wait`, which changes nothing); writes change the engine's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RequestCounts {
    pub reads: u64,
    pub writes: u64,
}

impl RequestCounts {
    pub fn total(&self) -> u64 {
        self.reads + self.writes
    }

    /// The requests made since an earlier reading.
    pub fn since(&self, earlier: RequestCounts) -> RequestCounts {
        RequestCounts {
            reads: self.reads.saturating_sub(earlier.reads),
            writes: self.writes.saturating_sub(earlier.writes),
        }
    }
}

#[derive(Debug, Default)]
struct Counters {
    reads: AtomicU64,
    writes: AtomicU64,
}

#[derive(Clone, Copy)]
enum Kind {
    Read,
    Write,
}

/// How to reach the engine and how long calls may take.
#[derive(Clone, Debug)]
pub struct EngineOptions {
    /// The engine address (`unix://…`, `tcp://…`, `http://…`); `None` reads `DOCKER_HOST`, then [`DEFAULT_HOST`].
    pub host: Option<String>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub pull_timeout: Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            host: None,
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pull_timeout: DEFAULT_PULL_TIMEOUT,
        }
    }
}

/// A container's inspect document: as the engine sent it, and typed.
#[derive(Clone, Debug)]
pub struct InspectedContainer {
    /// The inspect document as JSON. It is bollard's typed model written back, so fields outside
    /// the API schema bollard knows (a few long-deprecated ones) are absent.
    pub raw: Value,
    pub typed: ContainerInspectResponse,
}

/// An engine event about a project's object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EngineEvent {
    /// `container`, `network`, `volume`, …
    pub kind: String,
    /// `start`, `die`, `health_status: healthy`, …
    pub action: String,
    pub id: String,
    pub attributes: BTreeMap<String, String>,
    /// Unix time in nanoseconds.
    pub time_nano: i64,
}

/// A connection to one Docker engine. Cheap to clone; clones share the request counters and
/// the record of containers whose live settings changed.
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
    address: String,
    api_version: (usize, usize),
    timeout: Duration,
    pull_timeout: Duration,
    counters: Arc<Counters>,
    /// IDs of containers whose live settings (`POST /containers/{id}/update`) changed after
    /// their creation, as this process saw it: its own updates and the `update` events of the
    /// event streams it reads. Their labels no longer tell their live settings.
    live_changed: Arc<Mutex<BTreeSet<String>>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("address", &self.address)
            .field("api_version", &self.api_version)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Where to connect: the transport and its address.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Address {
    Unix(String),
    Tcp(String),
}

/// Parses an engine address; the displayed form never carries user information.
fn parse_host(host: &str) -> Result<(Address, String), EngineError> {
    let host = host.trim();
    let shown = display_address(host);
    let unsupported = |reason: &str| EngineError::UnsupportedHost {
        address: shown.clone(),
        reason: reason.to_string(),
    };
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(unsupported("the socket path is empty"));
        }
        return Ok((Address::Unix(path.to_string()), shown));
    }
    for scheme in ["tcp://", "http://"] {
        if let Some(rest) = host.strip_prefix(scheme) {
            let authority = rest
                .rsplit('@')
                .next()
                .unwrap_or(rest)
                .trim_end_matches('/');
            if authority.is_empty() {
                return Err(unsupported("the host is empty"));
            }
            let authority = if authority.contains(':') || authority.starts_with('[') {
                authority.to_string()
            } else {
                format!("{authority}:2375")
            };
            return Ok((Address::Tcp(format!("tcp://{authority}")), shown));
        }
    }
    if host.starts_with("https://") {
        return Err(unsupported("TLS connections are not supported yet"));
    }
    if host.starts_with("ssh://") {
        return Err(unsupported("ssh connections are not supported"));
    }
    if host.starts_with("npipe://") {
        return Err(unsupported("named pipes are not supported"));
    }
    Err(unsupported("unknown scheme"))
}

/// Refuses a TCP address when `DOCKER_TLS_VERIFY` asks for TLS: spindle speaks none to the
/// engine, and talking plain HTTP where the operator asked for verified TLS would be a surprise.
fn refuse_asked_tls(
    address: &Address,
    shown: &str,
    tls_verify: Option<&str>,
) -> Result<(), EngineError> {
    let asked = tls_verify.is_some_and(|v| !v.trim().is_empty() && v.trim() != "0");
    if asked && matches!(address, Address::Tcp(_)) {
        return Err(EngineError::UnsupportedHost {
            address: shown.to_string(),
            reason: "DOCKER_TLS_VERIFY asks for TLS, which spindle does not speak to the engine"
                .into(),
        });
    }
    Ok(())
}

/// The address without user information (`tcp://user:pw@host` → `tcp://host`).
fn display_address(host: &str) -> String {
    match host.split_once("://") {
        Some((scheme, rest)) if scheme != "unix" => {
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            let authority = authority.rsplit('@').next().unwrap_or(authority);
            if path.is_empty() {
                format!("{scheme}://{authority}")
            } else {
                format!("{scheme}://{authority}/{path}")
            }
        }
        _ => host.to_string(),
    }
}

fn human(d: Duration) -> String {
    if d.as_millis() < 1000 {
        format!("{}ms", d.as_millis())
    } else if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// The label filter for a set of `key=value` (or bare `key`) selectors, all of which must match.
fn label_filters(labels: &[&str]) -> Option<HashMap<String, Vec<String>>> {
    if labels.is_empty() {
        return None;
    }
    Some(HashMap::from([(
        "label".to_string(),
        labels.iter().map(|l| l.to_string()).collect(),
    )]))
}

/// The filter of a project's event stream: its label, containers only, and `actions` when any.
fn event_filters(project: &str, actions: &[&str]) -> HashMap<String, Vec<String>> {
    let mut filters = HashMap::from([
        (
            "label".to_string(),
            vec![format!("{}={project}", crate::labels::PROJECT)],
        ),
        ("type".to_string(), vec!["container".to_string()]),
    ]);
    if !actions.is_empty() {
        filters.insert(
            "event".to_string(),
            actions.iter().map(|a| a.to_string()).collect(),
        );
    }
    filters
}

/// Deserializes a request body into bollard's model, refusing fields the model would silently drop.
fn body_from_json<T: DeserializeOwned + Serialize>(
    op: &'static str,
    target: &str,
    body: &Value,
    redactor: &Redactor,
) -> Result<T, EngineError> {
    let invalid = |message: String| EngineError::InvalidBody {
        op,
        target: target.to_string(),
        message: redact::scrub(&redactor.text(&message)),
    };
    let typed: T = serde_json::from_value(body.clone())
        .map_err(|e| invalid(redact::serde_message(&e.to_string())))?;
    let back =
        serde_json::to_value(&typed).map_err(|e| invalid(redact::serde_message(&e.to_string())))?;
    if let Some(path) = dropped_path(body, &back, String::new()) {
        return Err(invalid(format!(
            "field {path} is not supported by the engine client"
        )));
    }
    Ok(typed)
}

/// An error and each of its sources, joined with `: ` (what `{:#}` would print), for scrubbing in one piece.
fn chain_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let next = c.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        cause = c.source();
    }
    text
}

/// The first key path present (and not null) in `input` but missing from `output`.
fn dropped_path(input: &Value, output: &Value, at: String) -> Option<String> {
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => a.iter().find_map(|(k, v)| {
            let path = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            match b.get(k) {
                None if !v.is_null() && !is_empty_container(v) => Some(path),
                None => None,
                Some(w) => dropped_path(v, w, path),
            }
        }),
        (Value::Array(a), Value::Array(b)) => a
            .iter()
            .zip(b.iter())
            .enumerate()
            .find_map(|(i, (v, w))| dropped_path(v, w, format!("{at}[{i}]"))),
        _ => None,
    }
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.values().all(|x| x.is_null() || is_empty_container(x)),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// A redactor over a create body's environment values (`Env: ["K=V"]`).
fn env_redactor(body: &Value) -> Redactor {
    let values = body
        .get("Env")
        .and_then(Value::as_array)
        .map(|env| {
            env.iter()
                .filter_map(Value::as_str)
                .filter_map(|kv| kv.split_once('=').map(|(_, v)| v.to_string()))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    Redactor::new(values)
}

impl Engine {
    /// Connects to the engine named by `DOCKER_HOST` (else the default Unix socket), negotiates the
    /// API version and pings it.
    pub async fn connect() -> Result<Engine, EngineError> {
        Self::connect_with(EngineOptions::default()).await
    }

    /// [`Engine::connect`] with explicit options.
    pub async fn connect_with(options: EngineOptions) -> Result<Engine, EngineError> {
        let host = options
            .host
            .clone()
            .or_else(|| std::env::var("DOCKER_HOST").ok())
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_HOST.to_string());
        let (address, shown) = parse_host(&host)?;
        refuse_asked_tls(
            &address,
            &shown,
            std::env::var("DOCKER_TLS_VERIFY").ok().as_deref(),
        )?;
        let unreachable = |reason: String| EngineError::Unreachable {
            address: shown.clone(),
            reason,
        };
        // bollard's own timeout counts whole seconds; ours (per call) is the one that matters.
        let transport_timeout = options
            .timeout
            .max(options.pull_timeout)
            .max(options.connect_timeout)
            .as_secs()
            .max(1);
        let docker = match &address {
            Address::Unix(path) => {
                if !std::path::Path::new(path).exists() {
                    return Err(unreachable(format!("no socket at {path}")));
                }
                Docker::connect_with_unix(path, transport_timeout, bollard::API_DEFAULT_VERSION)
            }
            Address::Tcp(url) => {
                Docker::connect_with_http(url, transport_timeout, bollard::API_DEFAULT_VERSION)
            }
        }
        .map_err(|e| unreachable(redact::scrub(&e.to_string())))?;

        let counters = Arc::new(Counters::default());
        let first_contact = async {
            counters.reads.fetch_add(1, Ordering::Relaxed);
            docker.ping().await?;
            counters.reads.fetch_add(1, Ordering::Relaxed);
            docker.negotiate_version().await
        };
        let docker = match tokio::time::timeout(options.connect_timeout, first_contact).await {
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {}",
                    human(options.connect_timeout)
                )));
            }
            Ok(Err(e)) => return Err(unreachable(reason_of(&e))),
            Ok(Ok(d)) => d,
        };
        let v = docker.client_version();
        let api_version = (v.major_version, v.minor_version);
        if api_version < MIN_API_VERSION {
            return Err(EngineError::TooOld {
                address: shown,
                found: format!("{}.{}", api_version.0, api_version.1),
            });
        }
        tracing::debug!(address = %shown, api = %format!("{}.{}", api_version.0, api_version.1), "connected to the docker engine");
        Ok(Engine {
            docker,
            address: shown,
            api_version,
            timeout: options.timeout,
            pull_timeout: options.pull_timeout,
            counters,
            live_changed: Arc::default(),
        })
    }

    /// The engine address, as shown in messages.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The negotiated API version (`(1, 41)` on Docker 20.10).
    pub fn api_version(&self) -> (usize, usize) {
        self.api_version
    }

    /// The bound on each ordinary call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The same connection with another per-call bound (counters stay shared).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same connection with another bound on image pulls.
    pub fn with_pull_timeout(mut self, timeout: Duration) -> Self {
        self.pull_timeout = timeout;
        self
    }

    /// Whether this process saw the container's live settings change after its creation (an
    /// update by spindle, or an `update` event in an event stream read through this engine).
    pub fn live_changed(&self, id: &str) -> bool {
        self.live_changed.lock().is_ok_and(|s| s.contains(id))
    }

    fn note_live_change(&self, id: &str) {
        if let Ok(mut s) = self.live_changed.lock() {
            s.insert(id.to_string());
        }
    }

    /// API requests made so far through this engine and its clones.
    pub fn requests(&self) -> RequestCounts {
        RequestCounts {
            reads: self.counters.reads.load(Ordering::Relaxed),
            writes: self.counters.writes.load(Ordering::Relaxed),
        }
    }

    /// Counts one request, runs it under `limit`, and classifies its error.
    async fn call<T, F>(
        &self,
        kind: Kind,
        op: &'static str,
        target: &str,
        limit: Duration,
        fut: F,
    ) -> Result<T, EngineError>
    where
        F: Future<Output = Result<T, BollardError>>,
    {
        self.call_redacted(kind, op, target, limit, &Redactor::default(), fut)
            .await
    }

    /// [`Engine::call`], with the engine's message scrubbed of the given values as well.
    async fn call_redacted<T, F>(
        &self,
        kind: Kind,
        op: &'static str,
        target: &str,
        limit: Duration,
        redactor: &Redactor,
        fut: F,
    ) -> Result<T, EngineError>
    where
        F: Future<Output = Result<T, BollardError>>,
    {
        self.count(kind);
        match tokio::time::timeout(limit, fut).await {
            Err(_) => Err(EngineError::Timeout {
                op,
                target: target.to_string(),
                after: limit,
            }),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.classify(op, target, e, redactor)),
        }
    }

    fn count(&self, kind: Kind) {
        match kind {
            Kind::Read => self.counters.reads.fetch_add(1, Ordering::Relaxed),
            Kind::Write => self.counters.writes.fetch_add(1, Ordering::Relaxed),
        };
    }

    fn classify(
        &self,
        op: &'static str,
        target: &str,
        e: BollardError,
        redactor: &Redactor,
    ) -> EngineError {
        let clean = |m: &str| redact::scrub(&redactor.text(m.trim()));
        let target = target.to_string();
        match e {
            // Its message quotes the reply, and its contents are the whole reply: neither is kept.
            BollardError::JsonDataError { column, .. } => {
                EngineError::UnreadableReply { op, target, column }
            }
            BollardError::DockerResponseServerError {
                status_code,
                ref message,
            } => {
                let message = clean(message);
                match status_code {
                    404 => EngineError::NotFound {
                        op,
                        target,
                        message,
                    },
                    409 => EngineError::Conflict {
                        op,
                        target,
                        message,
                    },
                    status => EngineError::Api {
                        op,
                        target,
                        status,
                        message,
                    },
                }
            }
            e if is_connection_error(&e) => EngineError::Unreachable {
                address: self.address.clone(),
                reason: format!("{op} {target}: {}", clean(&reason_of(&e))),
            },
            e => EngineError::Transport {
                op,
                target,
                message: clean(&chain_text(&e)),
            },
        }
    }

    // ---- reads ----

    /// `GET /_ping` within `limit` (for readiness checks).
    pub async fn ping(&self, limit: Duration) -> Result<(), EngineError> {
        self.call(Kind::Read, "ping", "the engine", limit, self.docker.ping())
            .await
            .map(|_| ())
    }

    /// Containers (running or not) carrying every given label selector (`key=value` or `key`);
    /// those whose description cannot be read are skipped (and logged, see [`Engine::list_call`]).
    pub async fn list_containers(
        &self,
        labels: &[&str],
    ) -> Result<Vec<ContainerSummary>, EngineError> {
        Ok(self.list_containers_checked(labels).await?.items)
    }

    /// [`Engine::list_containers`], with the containers whose description cannot be read.
    pub async fn list_containers_checked(
        &self,
        labels: &[&str],
    ) -> Result<Listed<ContainerSummary>, EngineError> {
        let options = ListContainersOptions {
            all: true,
            filters: label_filters(labels),
            ..Default::default()
        };
        let target = labels.join(",");
        self.list_call(
            "list containers",
            &target,
            "container",
            None,
            self.docker.list_containers(Some(options)),
        )
        .await
    }

    /// Runs a list call like [`Engine::call`]. When bollard cannot read the reply as a whole, it
    /// is read again item by item (`key`: the member holding the array): the items that read are
    /// kept, the others are returned as [`Unreadable`] and logged by ID, never by value.
    async fn list_call<T, F>(
        &self,
        op: &'static str,
        target: &str,
        kind: &'static str,
        key: Option<&str>,
        fut: F,
    ) -> Result<Listed<T>, EngineError>
    where
        T: DeserializeOwned,
        F: Future<Output = Result<Vec<T>, BollardError>>,
    {
        self.count(Kind::Read);
        match tokio::time::timeout(self.timeout, fut).await {
            Err(_) => Err(EngineError::Timeout {
                op,
                target: target.to_string(),
                after: self.timeout,
            }),
            Ok(Ok(items)) => Ok(Listed {
                items,
                unreadable: Vec::new(),
            }),
            Ok(Err(BollardError::JsonDataError {
                contents, column, ..
            })) => {
                let Some(listed) = replies::per_item::<T>(kind, &contents, key) else {
                    return Err(EngineError::UnreadableReply {
                        op,
                        target: target.to_string(),
                        column,
                    });
                };
                for u in &listed.unreadable {
                    tracing::warn!(
                        item = %u.describe(),
                        "{op}: the engine's description of this {kind} cannot be read; it is skipped"
                    );
                }
                Ok(listed)
            }
            Ok(Err(e)) => Err(self.classify(op, target, e, &Redactor::default())),
        }
    }

    /// A container's inspect document.
    pub async fn inspect_container(&self, id: &str) -> Result<InspectedContainer, EngineError> {
        let typed = self
            .call(
                Kind::Read,
                "inspect container",
                id,
                self.timeout,
                self.docker.inspect_container(id, None),
            )
            .await?;
        let raw = serde_json::to_value(&typed).map_err(|e| EngineError::InvalidBody {
            op: "inspect container",
            target: id.to_string(),
            message: e.to_string(),
        })?;
        Ok(InspectedContainer { raw, typed })
    }

    /// Networks carrying every given label selector, with those whose description cannot be read.
    pub async fn list_networks(&self, labels: &[&str]) -> Result<Listed<Network>, EngineError> {
        let options = ListNetworksOptions {
            filters: label_filters(labels),
        };
        let target = labels.join(",");
        self.list_call(
            "list networks",
            &target,
            "network",
            None,
            self.docker.list_networks(Some(options)),
        )
        .await
    }

    /// A network by name or ID.
    pub async fn inspect_network(&self, name: &str) -> Result<NetworkInspect, EngineError> {
        self.call(
            Kind::Read,
            "inspect network",
            name,
            self.timeout,
            self.docker
                .inspect_network(name, None::<InspectNetworkOptions>),
        )
        .await
    }

    /// Volumes carrying every given label selector, with those whose description cannot be read.
    pub async fn list_volumes(&self, labels: &[&str]) -> Result<Listed<Volume>, EngineError> {
        let options = ListVolumesOptions {
            filters: label_filters(labels),
        };
        let target = labels.join(",");
        let list = self.docker.list_volumes(Some(options));
        self.list_call(
            "list volumes",
            &target,
            "volume",
            Some("Volumes"),
            async move { list.await.map(|l| l.volumes.unwrap_or_default()) },
        )
        .await
    }

    /// A volume by name.
    pub async fn inspect_volume(&self, name: &str) -> Result<Volume, EngineError> {
        self.call(
            Kind::Read,
            "inspect volume",
            name,
            self.timeout,
            self.docker.inspect_volume(name),
        )
        .await
    }

    /// The ID (`sha256:…`) of the local image a reference names, `None` when it is not present.
    pub async fn image_id(&self, reference: &str) -> Result<Option<String>, EngineError> {
        let found = optional(
            self.call(
                Kind::Read,
                "inspect image",
                reference,
                self.timeout,
                self.docker.inspect_image(reference),
            )
            .await,
        )?;
        Ok(found.and_then(|i| i.id))
    }

    /// Waits until the container is not running and returns its exit code, bounded by `limit`.
    pub async fn wait_exit(&self, id: &str, limit: Duration) -> Result<i64, EngineError> {
        let options = WaitContainerOptions {
            condition: "not-running".to_string(),
        };
        let mut stream = self.docker.wait_container(id, Some(options));
        let next = self
            .call(Kind::Read, "wait for container", id, limit, async {
                Ok(stream.next().await)
            })
            .await?;
        match next {
            None => Err(EngineError::Api {
                op: "wait for container",
                target: id.to_string(),
                status: 200,
                message: "the engine closed the wait without an exit code".to_string(),
            }),
            Some(Ok(r)) => Ok(r.status_code),
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(self.classify("wait for container", id, e, &Redactor::default())),
        }
    }

    /// The engine's events about a project's objects (by the project label), as they happen.
    ///
    /// The stream starts at the moment of this call (even though the request leaves on the first
    /// poll), is long-lived and not bounded by the call timeout; it counts as one read.
    pub fn events(
        &self,
        project: &str,
    ) -> impl Stream<Item = Result<EngineEvent, EngineError>> + Send + 'static {
        // The request leaves on the first poll; `since` keeps the events from this call on.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_nanos()).ok());
        self.events_since(project, now, &[])
    }

    /// Like [`Engine::events`], but starting at `since_nano` (Unix time in nanoseconds; the
    /// engine replays the events it still holds from then on), or from now when `None`, and only
    /// the container events whose action is one of `actions` (all of them when empty). The engine
    /// filters them, so a healthcheck's `exec_create`, `exec_start` and `exec_die`, the bulk of an
    /// idle stack's events, never reach spindle; `health_status` also matches
    /// `health_status: healthy` (the engine's own prefix rule for it).
    pub fn events_since(
        &self,
        project: &str,
        since_nano: Option<i64>,
        actions: &[&str],
    ) -> impl Stream<Item = Result<EngineEvent, EngineError>> + Send + 'static {
        self.count(Kind::Read);
        let since = since_nano.map(|n| {
            format!(
                "{}.{:09}",
                n.div_euclid(1_000_000_000),
                n.rem_euclid(1_000_000_000)
            )
        });
        let options = EventsOptions {
            since,
            filters: Some(event_filters(project, actions)),
            ..Default::default()
        };
        let engine = self.clone();
        let target = project.to_string();
        self.docker.events(Some(options)).map(move |r| match r {
            Ok(m) => {
                let actor = m.actor.unwrap_or_default();
                let kind = m.typ.map(|t| t.to_string()).unwrap_or_default();
                let action = m.action.unwrap_or_default();
                if kind == "container"
                    && action == "update"
                    && let Some(id) = &actor.id
                {
                    engine.note_live_change(id);
                }
                Ok(EngineEvent {
                    kind,
                    action,
                    id: actor.id.unwrap_or_default(),
                    attributes: actor.attributes.unwrap_or_default().into_iter().collect(),
                    time_nano: m.time_nano.unwrap_or_default(),
                })
            }
            Err(e) => Err(engine.classify("watch events", &target, e, &Redactor::default())),
        })
    }

    // ---- writes ----

    /// Creates a container from a create body (the JSON of `POST /containers/create`); returns its ID.
    pub async fn create_container(&self, name: &str, body: &Value) -> Result<String, EngineError> {
        const OP: &str = "create container";
        let redactor = env_redactor(body);
        let typed: ContainerCreateBody = body_from_json(OP, name, body, &redactor)?;
        let options = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        // A missing image is a 404 here (`No such image: …`).
        let created = self
            .call_redacted(
                Kind::Write,
                OP,
                name,
                self.timeout,
                &redactor,
                self.docker.create_container(Some(options), typed),
            )
            .await?;
        for w in created.warnings.iter().filter(|w| !w.is_empty()) {
            tracing::warn!(container = name, warning = %redact::scrub(&redactor.text(w)), "engine warning on create");
        }
        Ok(created.id)
    }

    /// Connects a container to a network with an endpoint configuration (JSON of `EndpointSettings`).
    pub async fn connect_network(
        &self,
        network: &str,
        container: &str,
        endpoint: &Value,
    ) -> Result<(), EngineError> {
        const OP: &str = "connect network";
        let target = format!("{network} to {container}");
        let endpoint_config: Option<EndpointSettings> = if endpoint.is_null() {
            None
        } else {
            Some(body_from_json(OP, &target, endpoint, &Redactor::default())?)
        };
        let request = NetworkConnectRequest {
            container: container.to_string(),
            endpoint_config,
        };
        self.call(
            Kind::Write,
            OP,
            &target,
            self.timeout,
            self.docker.connect_network(network, request),
        )
        .await
    }

    pub async fn start(&self, id: &str) -> Result<(), EngineError> {
        self.call(
            Kind::Write,
            "start container",
            id,
            self.timeout,
            self.docker.start_container(id, None),
        )
        .await
    }

    /// Stops a container, giving it `timeout_secs` (the engine's default when `None`) before SIGKILL.
    pub async fn stop(&self, id: &str, timeout_secs: Option<u32>) -> Result<(), EngineError> {
        let options = StopContainerOptions {
            t: timeout_secs.map(|t| i32::try_from(t).unwrap_or(i32::MAX)),
            ..Default::default()
        };
        let limit = self.grace_limit(timeout_secs);
        self.call(
            Kind::Write,
            "stop container",
            id,
            limit,
            self.docker.stop_container(id, Some(options)),
        )
        .await
    }

    /// Restarts a container, giving it `timeout_secs` to stop.
    pub async fn restart(&self, id: &str, timeout_secs: Option<u32>) -> Result<(), EngineError> {
        let options = RestartContainerOptions {
            t: timeout_secs.map(|t| i32::try_from(t).unwrap_or(i32::MAX)),
            ..Default::default()
        };
        let limit = self.grace_limit(timeout_secs);
        self.call(
            Kind::Write,
            "restart container",
            id,
            limit,
            self.docker.restart_container(id, Some(options)),
        )
        .await
    }

    /// Sends a signal (`SIGKILL` when `None`).
    pub async fn kill(&self, id: &str, signal: Option<&str>) -> Result<(), EngineError> {
        let options = KillContainerOptions {
            signal: signal.unwrap_or("SIGKILL").to_string(),
        };
        self.call(
            Kind::Write,
            "kill container",
            id,
            self.timeout,
            self.docker.kill_container(id, Some(options)),
        )
        .await
    }

    /// Removes a container, keeping its anonymous volumes.
    pub async fn remove(&self, id: &str, force: bool) -> Result<(), EngineError> {
        self.remove_container(id, force, false).await
    }

    async fn remove_container(&self, id: &str, force: bool, v: bool) -> Result<(), EngineError> {
        let options = RemoveContainerOptions {
            force,
            v,
            ..Default::default()
        };
        self.call(
            Kind::Write,
            "remove container",
            id,
            self.timeout,
            self.docker.remove_container(id, Some(options)),
        )
        .await
    }

    pub async fn rename(&self, id: &str, new_name: &str) -> Result<(), EngineError> {
        let options = RenameContainerOptions {
            name: new_name.to_string(),
        };
        self.call(
            Kind::Write,
            "rename container",
            id,
            self.timeout,
            self.docker.rename_container(id, options),
        )
        .await
    }

    /// Changes a running container's resources and restart policy (JSON of `POST /containers/{id}/update`).
    pub async fn update(&self, id: &str, body: &Value) -> Result<(), EngineError> {
        const OP: &str = "update container";
        let typed: ContainerUpdateBody = body_from_json(OP, id, body, &Redactor::default())?;
        // Noted before the call: a call that timed out may still have changed the container.
        self.note_live_change(id);
        self.call(
            Kind::Write,
            OP,
            id,
            self.timeout,
            self.docker.update_container(id, typed),
        )
        .await
    }

    /// Creates a network (JSON of `POST /networks/create`, `Name` included); returns its ID.
    pub async fn create_network(&self, body: &Value) -> Result<String, EngineError> {
        const OP: &str = "create network";
        let name = body
            .get("Name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let typed: NetworkCreateRequest = body_from_json(OP, &name, body, &Redactor::default())?;
        let created = self
            .call(
                Kind::Write,
                OP,
                &name,
                self.timeout,
                self.docker.create_network(typed),
            )
            .await?;
        if !created.warning.is_empty() {
            tracing::warn!(network = %name, warning = %redact::scrub(&created.warning), "engine warning on network create");
        }
        Ok(created.id)
    }

    /// Removes a network.
    /// Disconnects a container from a network (forced: it may be stopped).
    pub async fn disconnect_network(
        &self,
        network: &str,
        container: &str,
    ) -> Result<(), EngineError> {
        let target = format!("{container} from {network}");
        let request = NetworkDisconnectRequest {
            container: container.to_string(),
            force: Some(true),
        };
        self.call(
            Kind::Write,
            "disconnect network",
            &target,
            self.timeout,
            self.docker.disconnect_network(network, request),
        )
        .await
    }

    pub async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        self.call(
            Kind::Write,
            "remove network",
            name,
            self.timeout,
            self.docker.remove_network(name),
        )
        .await
    }

    /// Creates a volume (JSON of `POST /volumes/create`); returns its name.
    pub async fn create_volume(&self, body: &Value) -> Result<String, EngineError> {
        const OP: &str = "create volume";
        let name = body
            .get("Name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let typed: VolumeCreateRequest = body_from_json(OP, &name, body, &Redactor::default())?;
        let created = self
            .call(
                Kind::Write,
                OP,
                &name,
                self.timeout,
                self.docker.create_volume(typed),
            )
            .await?;
        Ok(created.name)
    }

    /// Runs a command in a running container, attached: returns the exec's ID and its output
    /// (stdout and stderr interleaved, as chunks). The output stream is not bounded by the call
    /// timeout; the caller bounds it. Creating and starting the exec count as two writes.
    pub async fn exec_attached(
        &self,
        container: &str,
        cmd: &[String],
        env: &[String],
    ) -> Result<(String, ExecOutput), EngineError> {
        let config = bollard::models::ExecConfig {
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            cmd: Some(cmd.to_vec()),
            env: Some(env.to_vec()),
            ..Default::default()
        };
        let redactor = Redactor::new(
            env.iter()
                .filter_map(|kv| kv.split_once('='))
                .map(|(_, v)| v.to_string()),
        );
        let created = self
            .call_redacted(
                Kind::Write,
                "create exec",
                container,
                self.timeout,
                &redactor,
                self.docker.create_exec(container, config),
            )
            .await?;
        let started = self
            .call(
                Kind::Write,
                "start exec",
                container,
                self.timeout,
                self.docker.start_exec(&created.id, None),
            )
            .await?;
        let engine = self.clone();
        let target = container.to_string();
        let output: ExecOutput = match started {
            bollard::exec::StartExecResults::Attached { output, .. } => {
                Box::pin(output.map(move |r| match r {
                    Ok(chunk) => Ok(chunk.into_bytes().to_vec()),
                    Err(e) => {
                        Err(engine.classify("read exec output", &target, e, &Redactor::default()))
                    }
                }))
            }
            bollard::exec::StartExecResults::Detached => Box::pin(futures_util::stream::empty()),
        };
        Ok((created.id, output))
    }

    /// An exec's state: `(running, exit code)`.
    pub async fn inspect_exec(&self, exec_id: &str) -> Result<(bool, Option<i64>), EngineError> {
        let r = self
            .call(
                Kind::Read,
                "inspect exec",
                exec_id,
                self.timeout,
                self.docker.inspect_exec(exec_id),
            )
            .await?;
        Ok((r.running.unwrap_or(false), r.exit_code))
    }

    /// The last `lines` lines of a container's output (stdout and stderr).
    pub async fn logs_tail(&self, id: &str, lines: usize) -> Result<Vec<u8>, EngineError> {
        let options = bollard::query_parameters::LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        };
        let stream = self.docker.logs(id, Some(options));
        self.call(Kind::Read, "read container logs", id, self.timeout, async {
            let chunks: Vec<_> = stream.try_collect().await?;
            Ok(chunks
                .into_iter()
                .flat_map(|c| c.into_bytes().to_vec())
                .collect())
        })
        .await
    }

    /// Removes a container together with its anonymous volumes (`docker rm -v`).
    pub async fn remove_with_volumes(&self, id: &str, force: bool) -> Result<(), EngineError> {
        self.remove_container(id, force, true).await
    }

    /// Pulls an image by reference, bounded by the pull timeout.
    pub async fn pull(&self, reference: &str) -> Result<(), EngineError> {
        let (from_image, tag) = split_reference(reference);
        let options = CreateImageOptions {
            from_image: Some(from_image),
            tag,
            ..Default::default()
        };
        self.count(Kind::Write);
        let stream = self.docker.create_image(Some(options), None, None);
        let outcome = tokio::time::timeout(self.pull_timeout, async {
            futures_util::pin_mut!(stream);
            while let Some(item) = stream.try_next().await? {
                if let Some(detail) = item.error_detail.and_then(|d| d.message) {
                    return Err(BollardError::DockerStreamError { error: detail });
                }
            }
            Ok(())
        })
        .await;
        match outcome {
            Err(_) => Err(EngineError::Timeout {
                op: "pull",
                target: reference.to_string(),
                after: self.pull_timeout,
            }),
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(self.classify_pull(reference, e)),
        }
    }

    fn classify_pull(&self, reference: &str, e: BollardError) -> EngineError {
        let (status, message) = match &e {
            BollardError::DockerResponseServerError {
                status_code,
                message,
            } => (Some(*status_code), message.clone()),
            BollardError::DockerStreamError { error } => (None, error.clone()),
            _ => match self.classify("pull", reference, e, &Redactor::default()) {
                unreachable @ EngineError::Unreachable { .. } => return unreachable,
                other => (None, other.to_string()),
            },
        };
        let message = redact::scrub(message.trim());
        let lower = message.to_ascii_lowercase();
        let absent = status == Some(404)
            || [
                "manifest unknown",
                "not found",
                "pull access denied",
                "repository does not exist",
                "unauthorized",
            ]
            .iter()
            .any(|m| lower.contains(m));
        // A registry that cannot be resolved or dialled is a failed pull, not an absent image.
        let unreachable_registry = [
            "dial tcp",
            "no such host",
            "i/o timeout",
            "connection refused",
            "tls handshake",
        ]
        .iter()
        .any(|m| lower.contains(m));
        if absent && !unreachable_registry {
            EngineError::ImageNotFound {
                image: reference.to_string(),
                message,
            }
        } else {
            EngineError::PullFailed {
                image: reference.to_string(),
                message,
            }
        }
    }

    /// A request bound that leaves room for the container's stop grace period.
    fn grace_limit(&self, timeout_secs: Option<u32>) -> Duration {
        // The engine's default grace period is 10 seconds.
        let grace = Duration::from_secs(u64::from(timeout_secs.unwrap_or(10)));
        self.timeout + grace
    }
}

/// Splits `name[:tag][@digest]` into the `fromImage` and `tag` parameters of a pull.
fn split_reference(reference: &str) -> (String, Option<String>) {
    if reference.contains('@') {
        return (reference.to_string(), None);
    }
    // A tag follows the last `:` that comes after the last `/` (a registry port does not count).
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            (
                reference[..at].to_string(),
                Some(reference[at + 1..].to_string()),
            )
        }
        None => (reference.to_string(), Some("latest".to_string())),
    }
}

/// True when the error means the engine could not be reached (refused, reset, missing socket).
fn is_connection_error(e: &BollardError) -> bool {
    match e {
        BollardError::HyperLegacyError { err } => err.is_connect(),
        BollardError::SocketNotFoundError(_) => true,
        BollardError::IOError { err } => matches!(
            err.kind(),
            std::io::ErrorKind::ConnectionRefused
                | std::io::ErrorKind::NotFound
                | std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::PermissionDenied
        ),
        _ => false,
    }
}

/// The innermost cause of a bollard error, in words ("connection refused", "permission denied").
fn reason_of(e: &BollardError) -> String {
    if let BollardError::JsonDataError { column, .. } = e {
        // Its message quotes the reply.
        return format!(
            "the engine's reply does not have the shape spindle reads (near column {column})"
        );
    }
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    let text = text.trim();
    let lower = text.to_ascii_lowercase();
    let text = if lower.starts_with("connection refused") {
        "connection refused"
    } else if lower.starts_with("permission denied") {
        "permission denied (is this user in the docker group?)"
    } else {
        text
    };
    redact::scrub(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_unreadable_reply_is_described_without_quoting_it() {
        let e = BollardError::JsonDataError {
            message: "invalid type: string \"s3cret-value\", expected i64".into(),
            contents: "[{\"Created\": \"s3cret-value\"}]".into(),
            column: 14,
        };
        let reason = reason_of(&e);
        assert!(!reason.contains("s3cret"), "{reason}");
        assert!(reason.contains("column 14"), "{reason}");
    }

    #[test]
    fn unix_and_tcp_addresses_are_understood() {
        assert_eq!(
            parse_host("unix:///var/run/docker.sock").ok().map(|a| a.0),
            Some(Address::Unix("/var/run/docker.sock".into()))
        );
        assert_eq!(
            parse_host("tcp://127.0.0.1:2375").ok().map(|a| a.0),
            Some(Address::Tcp("tcp://127.0.0.1:2375".into()))
        );
        assert_eq!(
            parse_host("http://docker.internal").ok().map(|a| a.0),
            Some(Address::Tcp("tcp://docker.internal:2375".into()))
        );
    }

    #[test]
    fn an_unsupported_scheme_is_refused_with_what_to_use() {
        for host in [
            "https://h:2376",
            "ssh://me@h",
            "/var/run/docker.sock",
            "unix://",
        ] {
            let err = parse_host(host)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("use unix://"), "{host}: {err}");
        }
    }

    #[test]
    fn a_tcp_address_is_refused_when_docker_tls_verify_asks_for_tls() {
        let (tcp, shown) = parse_host("tcp://h:2376").unwrap();
        let err = refuse_asked_tls(&tcp, &shown, Some("1")).unwrap_err();
        assert!(err.to_string().contains("DOCKER_TLS_VERIFY"), "{err}");
        assert!(err.to_string().contains("use unix://"), "{err}");
        assert!(refuse_asked_tls(&tcp, &shown, Some("0")).is_ok());
        assert!(refuse_asked_tls(&tcp, &shown, Some("")).is_ok());
        assert!(refuse_asked_tls(&tcp, &shown, None).is_ok());
        let (unix, shown) = parse_host("unix:///var/run/docker.sock").unwrap();
        assert!(refuse_asked_tls(&unix, &shown, Some("1")).is_ok());
    }

    #[test]
    fn user_information_never_appears_in_the_shown_address() {
        let shown = display_address("tcp://user:hunter2@host:2375");
        assert_eq!(shown, "tcp://host:2375");
    }

    #[test]
    fn references_split_into_image_and_tag() {
        assert_eq!(
            split_reference("spindle-test/busybox:1"),
            ("spindle-test/busybox".into(), Some("1".into()))
        );
        assert_eq!(
            split_reference("registry:5000/app"),
            ("registry:5000/app".into(), Some("latest".into()))
        );
        assert_eq!(
            split_reference("registry:5000/app:2"),
            ("registry:5000/app".into(), Some("2".into()))
        );
        assert_eq!(
            split_reference("app@sha256:abc"),
            ("app@sha256:abc".into(), None)
        );
    }

    #[test]
    fn a_create_body_deserializes_into_the_engine_model() {
        let body = json!({"Image": "busybox", "Env": ["A=b"], "Labels": {"x": "y"},
            "ExposedPorts": {"80/tcp": {}},
            "HostConfig": {"NanoCpus": 500000000, "RestartPolicy": {"Name": "always"}}});
        let typed: Result<ContainerCreateBody, _> =
            body_from_json("create container", "c", &body, &Redactor::default());
        assert!(typed.is_ok(), "{typed:?}");
    }

    #[test]
    fn a_field_the_engine_model_would_drop_is_refused_by_its_path() {
        let body = json!({"Image": "busybox", "HostConfig": {"NoSuchField": 1}});
        let err = body_from_json::<ContainerCreateBody>(
            "create container",
            "c",
            &body,
            &Redactor::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("HostConfig.NoSuchField"), "{err}");
    }

    #[test]
    fn environment_values_never_appear_in_a_body_error() {
        let body = json!({"Image": "busybox", "Env": ["DB_HOST=very-secret-host"], "Cmd": "very-secret-host"});
        let r = env_redactor(&body);
        let err = body_from_json::<ContainerCreateBody>("create container", "c", &body, &r)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(!err.is_empty());
        assert!(!err.contains("very-secret-host"), "{err}");
    }

    #[test]
    fn a_body_error_quotes_no_value_even_escaped() {
        // `{:?}` would escape the quote: `string "tok\"val-123456"`, which no raw-text redaction finds.
        let body = json!({"Image": "busybox", "StopTimeout": "tok\"val-123456"});
        let err = body_from_json::<ContainerCreateBody>(
            "create container",
            "c",
            &body,
            &Redactor::default(),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("invalid type: a string, expected"), "{err}");
        assert!(!err.contains("tok"), "{err}");
    }

    #[test]
    fn a_transport_error_keeps_no_unscrubbed_source() {
        let secret = "transport-secret-91c2e7";
        crate::redact::register_secrets([secret.to_string()]);
        let docker =
            Docker::connect_with_http("http://127.0.0.1:1", 1, bollard::API_DEFAULT_VERSION)
                .expect("a lazy client");
        let engine = Engine {
            docker,
            address: "tcp://127.0.0.1:1".into(),
            api_version: (1, 41),
            timeout: Duration::from_secs(1),
            pull_timeout: Duration::from_secs(1),
            counters: Arc::default(),
            live_changed: Arc::default(),
        };
        let cause = BollardError::IOError {
            err: std::io::Error::other(format!("the engine sent {secret} back")),
        };
        let e = engine.classify("inspect container", "c", cause, &Redactor::default());
        assert!(matches!(e, EngineError::Transport { .. }), "{e:?}");
        let mut shown = vec![e.to_string()];
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            shown.push(c.to_string());
            cause = c.source();
        }
        assert!(!format!("{shown:?} {e:?}").contains(secret), "{shown:?}");
        assert!(shown[0].contains("<redacted>"), "{shown:?}");
    }

    #[test]
    fn counts_since_an_earlier_reading_subtract() {
        let a = RequestCounts {
            reads: 3,
            writes: 1,
        };
        let b = RequestCounts {
            reads: 7,
            writes: 1,
        };
        assert_eq!(
            b.since(a),
            RequestCounts {
                reads: 4,
                writes: 0
            }
        );
        assert_eq!(b.total(), 8);
    }
}
