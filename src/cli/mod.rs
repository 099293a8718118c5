//! Command definitions and their implementations for the `spindle` binary.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};
use spindle::desired::{self, tree::Tree};
use spindle::redact::{self, Redactor};

mod converge;
mod evidence;
mod inventory;
mod logging;
mod profile;
mod run;
mod status;
mod token;
mod verify;

#[derive(Parser, Debug)]
#[command(
    name = "spindle",
    version,
    about = "Keeps a Docker Compose host converged to its desired state"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Flags shared by every command; they may stand before or after the command, like Compose's.
#[derive(Args, Debug, Clone)]
pub struct Global {
    /// The desired-state folder (compose files, optional spindle.yaml, .env.example, .env).
    #[arg(long, global = true, value_name = "DIR", env = "SPINDLE_DESIRED_STATE")]
    pub desired_state: Option<PathBuf>,
    /// A compose file; repeat to merge several, in order.
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// An env file for interpolation; repeat for several, later ones win.
    #[arg(long = "env-file", global = true, value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
    /// The project name.
    #[arg(short = 'p', long = "project-name", global = true, value_name = "NAME")]
    pub project_name: Option<String>,
    /// The project directory (default: the desired-state folder, or the first file's folder).
    #[arg(long, global = true, value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
    /// A profile to activate: a spindle.yaml profile (adds its files) and a Compose profile.
    #[arg(long = "profile", global = true, value_name = "NAME")]
    pub profiles: Vec<String>,
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Print the normalized desired state, as `docker compose config` does.
    Config(ConfigArgs),
    /// Show what apply would change (exit 0: in sync, 2: changes pending, 1: error).
    Plan(converge::PlanArgs),
    /// Converge the host to the desired state (exit 0: converged, 1: not).
    Apply(converge::ApplyArgs),
    /// Keep converging, unattended: on file changes, Docker events, a periodic resync and SIGHUP.
    Run(run::RunArgs),
    /// Verify, list and show the evidence log of reconciles.
    Evidence(evidence::EvidenceCmd),
    /// List the images desired against the images running, and whether each reference is pinned.
    Inventory(inventory::InventoryArgs),
    /// Check repo truth, host input, running containers and app readback; JSON report (exit 0: all pass, 1: not).
    Verify(verify::VerifyArgs),
    /// Show the profile switcher's pin, or pin / unpin a profile (see docs/profiles.md).
    Profile(profile::ProfileArgs),
    /// Show the conditions of every service (from the running spindle's API, else computed here).
    Status(status::StatusArgs),
    /// Manage the API's bearer tokens.
    Token(token::TokenCmd),
}

#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = ConfigFormat::Yaml)]
    pub format: ConfigFormat,
    /// Print secret values instead of `<redacted>` (as `docker compose config` does).
    #[arg(long)]
    pub reveal_secrets: bool,
    /// Print only the service names, one a line.
    #[arg(long)]
    pub services: bool,
    /// Print only the spec hash of each service (`name hash`).
    #[arg(long)]
    pub hash: bool,
    /// Print only Compose's configuration hash of each service (`name hash`), as
    /// `docker compose config --hash '*'` prints it.
    #[arg(long, conflicts_with = "hash")]
    pub compose_hash: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum ConfigFormat {
    Yaml,
    Json,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

pub fn init_tracing(verbose: u8, daemon: bool) {
    use tracing_subscriber::util::SubscriberInitExt;
    let spindle_log = std::env::var("SPINDLE_LOG").ok();
    logging::subscriber(
        verbose,
        daemon,
        spindle_log.as_deref(),
        std::io::stderr,
        std::io::IsTerminal::is_terminal(&std::io::stderr()),
    )
    .init();
}

/// The error and its causes on one line, each cause once, with secret values scrubbed.
pub fn render_error(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    redact::scrub(&parts.join(": "))
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Config(args) => config(&cli.global, &args),
        Command::Plan(args) => converge::plan_cmd(&cli.global, &args),
        Command::Apply(args) => converge::apply_cmd(&cli.global, &args),
        Command::Run(args) => run::run_cmd(&cli.global, &args),
        Command::Evidence(cmd) => evidence::run(&cmd),
        Command::Inventory(args) => inventory::inventory_cmd(&cli.global, &args),
        Command::Verify(args) => verify::verify_cmd(&cli.global, &args),
        Command::Profile(args) => profile::run(&cli.global, &args),
        Command::Status(args) => status::status_cmd(&cli.global, &args),
        Command::Token(cmd) => token::run(&cmd),
    }
}

pub(crate) fn request(g: &Global) -> anyhow::Result<desired::Request> {
    Ok(desired::Request {
        desired_state: g.desired_state.clone(),
        files: g.files.clone(),
        env_files: g.env_files.clone(),
        project_name: g.project_name.clone(),
        project_directory: g.project_directory.clone(),
        profiles: g.profiles.clone(),
        shell_env: std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
        cwd: current_dir()?,
    })
}

/// The current directory as Compose sees it: `$PWD` when it names it (a folder entered through a
/// symbolic link keeps that name, as in Compose's labels), else the physical one.
pub(crate) fn current_dir() -> anyhow::Result<PathBuf> {
    let physical = std::env::current_dir().context("cannot read the current directory")?;
    Ok(desired::abspath::logical_cwd(
        &physical,
        std::env::var_os("PWD").as_deref(),
    ))
}

fn config(g: &Global, args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let project = desired::load(&request(g)?)?;
    for w in &project.warnings {
        tracing::warn!("{w}");
    }
    // Policies are checked at load time too; here they only warn (apply refuses to run when a
    // policy in mode `enforce` is violated).
    if let Ok(typed) = desired::typed::DesiredState::from_project(&project, None) {
        let found = spindle::policy::findings(&typed, &project);
        for v in found.blockers.iter().chain(&found.warnings) {
            tracing::warn!("{v}");
        }
    }
    if args.services {
        if let Some(Tree::Object(s)) = project.model.get("services") {
            for name in s.keys() {
                println!("{name}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.hash {
        for (name, h) in &project.service_hashes {
            println!("{name} {h}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if args.compose_hash {
        if let Some(Tree::Object(services)) = project.model.get("services") {
            let mut names: Vec<&String> = services.keys().collect();
            names.sort();
            for name in names {
                let hash = desired::compose_hash::service_hash(&services[name.as_str()]);
                println!("{name} {hash}");
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    // Like `docker compose config`, a literal `$` prints as `$$` so the output reads back unchanged.
    let mut model = desired::emit::escape_dollars(project.model);
    if !args.reveal_secrets {
        Redactor::new(project.secret_values).tree(&mut model);
    }
    let text = match args.format {
        ConfigFormat::Json => serde_json::to_string_pretty(&model)? + "\n",
        ConfigFormat::Yaml => yaml_serde::to_string(&model)?,
    };
    print!("{text}");
    Ok(ExitCode::SUCCESS)
}
