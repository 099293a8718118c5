//! `spindle run`: the unattended control loop for one project.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use spindle::controller::{self, ControllerConfig, Sources};
use spindle::desired;
use spindle::engine::Engine;
use spindle::evidence::{self, EvidenceLog};
use spindle::lock;
use spindle::reconcile::{ProjectReconciler, Settings};
use spindle::runtime::{ProfileControl, Runtime};

use super::{Global, profile, request};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Where spindle keeps its evidence (default: $SPINDLE_STATE_DIR or /var/lib/spindle).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The longest time between two reconciles without a trigger (jittered ±10%).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub resync: Duration,
    /// How long a container may stay unhealthy before spindle restarts it.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub unhealthy_grace: Duration,
    /// At most this many restarts of one unhealthy container per --restart-window; then the service is marked degraded.
    #[arg(long, default_value_t = 3)]
    pub restart_budget: u32,
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub restart_window: Duration,
    /// The cap of the retry backoff after failed reconciles (exponential from 1s, with jitter).
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub retry_max: Duration,
    /// How long a changed container may take to become healthy before its change is rolled back.
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// The HTTP API's address (`IP:PORT`, port 0 picks a free one), or `off`. Default
    /// 127.0.0.1:9477. It must bind: a taken port stops `spindle run` (give each spindle its own).
    #[arg(long, value_name = "ADDR", value_parser = parse_listen, env = "SPINDLE_LISTEN")]
    pub listen: Option<Listen>,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// How the HTTP API serves (docs/api.md, "Limits").
#[derive(clap::Args, Debug)]
pub struct ApiArgs {
    /// A further name the API answers to in the `Host` header (`NAME` or `NAME:PORT`; repeat, or
    /// comma-separate in the env). Besides it: the bound address, `localhost` and loopback IPs.
    #[arg(
        long = "api-host",
        value_name = "NAME",
        env = "SPINDLE_API_HOSTS",
        value_delimiter = ','
    )]
    pub hosts: Vec<String>,
    /// Reads (/status, /evidence, /metrics, /version) need the bearer token too. Default: on when
    /// the API is bound beyond loopback, else off; `--api-read-auth=false` turns it off.
    #[arg(
        long = "api-read-auth",
        value_name = "BOOL",
        env = "SPINDLE_API_READ_AUTH",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub read_auth: Option<bool>,
    /// The most API connections open at once; at the cap a new one closes the longest idle one
    /// (or, when all are busy, waits up to 2 s for one to end).
    #[arg(long = "api-max-connections", value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=65536))]
    pub max_connections: u32,
    /// A request's head must arrive within this time; also how long a kept-alive connection idles.
    #[arg(long = "api-header-timeout", value_name = "DURATION", default_value = "10s", value_parser = parse_positive_duration)]
    pub header_timeout: Duration,
    /// Reading a request's body and answering it must end within this time.
    #[arg(long = "api-request-timeout", value_name = "DURATION", default_value = "30s", value_parser = parse_positive_duration)]
    pub request_timeout: Duration,
    /// A connection that moves no byte for this long, while no request of it is handled, is closed.
    #[arg(long = "api-idle-timeout", value_name = "DURATION", default_value = "60s", value_parser = parse_positive_duration)]
    pub idle_timeout: Duration,
}

impl ApiArgs {
    fn options(&self) -> spindle::api::ServeOptions {
        spindle::api::ServeOptions {
            max_connections: self.max_connections as usize,
            header_timeout: self.header_timeout,
            request_timeout: self.request_timeout,
            idle_timeout: self.idle_timeout,
            hosts: self.hosts.clone(),
            read_auth: self.read_auth,
        }
    }
}

/// Where the HTTP API listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    At(SocketAddr),
    Off,
}

fn parse_listen(s: &str) -> Result<Listen, String> {
    if s == "off" || s == "none" {
        return Ok(Listen::Off);
    }
    s.parse().map(Listen::At).map_err(|e| {
        format!("{s:?} is not an address ({e}); write IP:PORT like 127.0.0.1:9477, or off")
    })
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("{s:?} is not a duration ({e}); write it like 30s, 5m or 1h"))
}

fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err("must be longer than zero; write it like 10s".into()),
        d => Ok(d),
    }
}

pub fn run_cmd(g: &Global, args: &RunArgs) -> anyhow::Result<ExitCode> {
    let req = request(g)?;
    // The first load names the project and the folder to watch; bad input stops here, before
    // anything on the host is touched.
    let project = desired::load(&req)?;
    desired::typed::DesiredState::from_project(&project, None)?;
    let name = project.name.clone();
    let folder = req
        .desired_state
        .as_ref()
        .map(|d| desired::abspath::absolute(&req.cwd, d))
        .unwrap_or_else(|| project.working_dir.clone());
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(evidence::default_state_dir);
    spindle::statedir::StateDir::open(&state_dir)?;
    let log = EvidenceLog::open(&evidence::evidence_dir(&state_dir))?;
    // Canonical, as `/status` shows it and `spindle status` compares it.
    let state_dir = std::fs::canonicalize(&state_dir).unwrap_or(state_dir);
    let _lock = lock::acquire(&lock::dir_for(Some(&state_dir))?, &name)?;
    let log = Arc::new(std::sync::Mutex::new(log));
    let runtime = Runtime {
        pause: Arc::new(spindle::pause::Pause::load(&state_dir)?),
        ..Runtime::default()
    };
    if runtime.pause.is_paused() {
        tracing::warn!(
            "spindle is paused (from an earlier run): it observes and plans but applies nothing until POST /resume"
        );
    }
    let requested_profiles = req.profiles.clone();
    let settings = Settings {
        apply_timeout: args.timeout,
        parallelism: 0,
        unhealthy_grace: args.unhealthy_grace,
        restart_budget: args.restart_budget,
        restart_window: args.restart_window,
    };
    let defaults = ControllerConfig::default();
    let config = ControllerConfig {
        resync: args.resync,
        retry: controller::RetryPolicy {
            max: args.retry_max.max(defaults.retry.min),
            ..defaults.retry.clone()
        },
        ..defaults
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let listen = args.listen;
    let api_options = args.api.options();
    rt.block_on(async move {
        let mut sources = Sources::new();
        sources.add(controller::watch_folder(&folder, config.debounce)?);
        sources.add(controller::sighup()?);
        let switch = profile::start_switching(&folder, &state_dir, &sources)?;
        let runtime = Runtime {
            profile: switch.as_ref().map(|s| s.control.clone() as Arc<dyn ProfileControl>),
            ..runtime
        };
        let link = Arc::new(spindle::api::EngineLink::default());
        let ctx = spindle::api::ApiContext {
            runtime: runtime.clone(),
            project: name.clone(),
            folder: folder.clone(),
            requested_profiles,
            state_dir: state_dir.clone(),
            evidence: log.clone(),
            trigger: sources.handle(),
            engine: link.clone(),
        };
        start_api(listen, ctx, api_options).await?;
        let shutdown = controller::shutdown_signal();
        tokio::pin!(shutdown);
        // The API answers (and /readyz says why not ready) while the engine cannot be reached.
        let engine = tokio::select! {
            e = connect_engine(&link) => e?,
            () = &mut shutdown => {
                tracing::info!("spindle run stopped before the engine could be reached");
                return anyhow::Ok(());
            }
        };
        tracing::info!(project = %name, folder = %folder.display(), state_dir = %state_dir.display(), engine = %engine.address(), "spindle run starting");
        sources.add(controller::docker_events(engine.clone(), &name));
        let token = sources.stop_token();
        let stop = spindle::apply::StopSignal::new(move || token.is_stopping());
        let reconciler = ProjectReconciler::new_shared(req, engine, log, settings, stop)
            .with_runtime(runtime)
            .with_state_dir(&state_dir);
        controller::run(config, reconciler, sources, shutdown).await?;
        drop(switch);
        tracing::info!("spindle run stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Starts the HTTP API. Its address, the default one too, must bind: a spindle without its API
/// would leave `spindle status` and health checks asking whoever holds the port.
async fn start_api(
    listen: Option<Listen>,
    ctx: spindle::api::ApiContext,
    options: spindle::api::ServeOptions,
) -> anyhow::Result<()> {
    let addr = match listen {
        Some(Listen::Off) => {
            tracing::info!("the HTTP API is off (--listen off)");
            return Ok(());
        }
        Some(Listen::At(addr)) => addr,
        None => spindle::api::DEFAULT_LISTEN
            .parse()
            .context("the default API address")?,
    };
    let (bound, serve) = match spindle::api::bind(addr, ctx, options).await {
        Ok(b) => b,
        Err(spindle::api::ApiError::Bind { addr, source }) => anyhow::bail!(
            "the HTTP API cannot listen on {addr} ({source}); choose another address with --listen IP:PORT (each spindle on a host needs its own port), or --listen off"
        ),
        Err(e) => return Err(e.into()),
    };
    tracing::info!(addr = %bound, "HTTP API listening");
    tokio::spawn(serve);
    Ok(())
}

/// Connects to the engine, retrying (1 s doubling to 30 s) while it is unreachable.
async fn connect_engine(link: &spindle::api::EngineLink) -> anyhow::Result<Engine> {
    let mut delay = Duration::from_secs(1);
    loop {
        match Engine::connect().await {
            Ok(engine) => {
                link.connected(engine.clone());
                return Ok(engine);
            }
            Err(e) if e.is_unreachable() => {
                let reason = spindle::redact::scrub(&e.to_string());
                tracing::warn!(error = %reason, retry_in = ?delay, "the docker engine cannot be reached; retrying");
                link.failed(reason);
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(e.into()),
        }
    }
}
