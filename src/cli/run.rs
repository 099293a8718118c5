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
    /// 127.0.0.1:9477, given up with a warning when taken; an address given here must bind.
    #[arg(long, value_name = "ADDR", value_parser = parse_listen)]
    pub listen: Option<Listen>,
}

/// Where the HTTP API listens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    At(SocketAddr),
    Off,
}

fn parse_listen(s: &str) -> Result<Listen, String> {
    if s == "off" {
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
        start_api(listen, ctx).await?;
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

/// Starts the HTTP API: the default address is given up with a warning when taken; an address
/// asked for with --listen must bind.
async fn start_api(listen: Option<Listen>, ctx: spindle::api::ApiContext) -> anyhow::Result<()> {
    let (addr, explicit) = match listen {
        Some(Listen::Off) => {
            tracing::info!("the HTTP API is off (--listen off)");
            return Ok(());
        }
        Some(Listen::At(addr)) => (addr, true),
        None => (
            spindle::api::DEFAULT_LISTEN
                .parse()
                .context("the default API address")?,
            false,
        ),
    };
    match spindle::api::bind(addr, ctx).await {
        Ok((bound, serve)) => {
            tracing::info!(addr = %bound, "HTTP API listening");
            tokio::spawn(serve);
            Ok(())
        }
        Err(e) if !explicit => {
            tracing::warn!(error = %super::render_error(&e.into()), "the HTTP API is off; pass --listen IP:PORT to choose another address");
            Ok(())
        }
        Err(e) => {
            Err(anyhow::Error::new(e).context("pass another --listen address, or --listen off"))
        }
    }
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
