//! `spindle run`: the unattended control loop for one project.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use spindle::controller::{self, ControllerConfig, Sources};
use spindle::desired;
use spindle::engine::Engine;
use spindle::evidence::{self, EvidenceLog};
use spindle::lock;
use spindle::reconcile::{ProjectReconciler, Settings};

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
        .map(|d| {
            if d.is_absolute() {
                d.clone()
            } else {
                req.cwd.join(d)
            }
        })
        .unwrap_or_else(|| project.working_dir.clone());
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(evidence::default_state_dir);
    let log = EvidenceLog::open(&evidence::evidence_dir(&state_dir))?;
    let _lock = lock::acquire(&lock::default_dir(), &name)?;
    let settings = Settings {
        apply_timeout: args.timeout,
        parallelism: 4,
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
    rt.block_on(async move {
        let engine = Engine::connect().await?;
        tracing::info!(project = %name, folder = %folder.display(), state_dir = %state_dir.display(), engine = %engine.address(), "spindle run starting");
        let mut sources = Sources::new();
        sources.add(controller::watch_folder(&folder, config.debounce)?);
        sources.add(controller::docker_events(engine.clone(), &name));
        sources.add(controller::sighup()?);
        let token = sources.stop_token();
        let stop = spindle::apply::StopSignal::new(move || token.is_stopping());
        let switch = profile::start_switching(&folder, &state_dir, &sources)?;
        let reconciler = ProjectReconciler::new(req, engine, log, settings, stop)
            .with_profile(switch.as_ref().map(|s| s.control.clone()));
        controller::run(config, reconciler, sources, controller::shutdown_signal()).await?;
        drop(switch);
        tracing::info!("spindle run stopped");
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}
