//! `spindle profile show|pin|unpin`, and the start of the profile switcher for `spindle run`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;
use spindle::controller::Sources;
use spindle::desired::folder::{self, MANIFEST};
use spindle::evidence;
use spindle::profile::{self, ProfileSwitch, Switching};
use spindle::runtime::ProfileControl;

use super::{Format, Global};

#[derive(Args, Debug)]
pub struct ProfileArgs {
    #[command(subcommand)]
    pub command: ProfileSub,
}

#[derive(Subcommand, Debug)]
pub enum ProfileSub {
    /// Print the switching configuration and the pin.
    Show(ShowArgs),
    /// Pin a spindle.yaml profile (or `default`: the base files); automatic switching stops until unpinned.
    Pin(PinArgs),
    /// Remove the pin: automatic switching decides again.
    Unpin(StateDirArg),
}

#[derive(Args, Debug)]
pub struct StateDirArg {
    /// The state directory holding profile.json [default: $SPINDLE_STATE_DIR or /var/lib/spindle].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    pub state: StateDirArg,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug)]
pub struct PinArgs {
    /// A profile declared in spindle.yaml, or `default`.
    pub name: String,
    #[command(flatten)]
    pub state: StateDirArg,
}

impl StateDirArg {
    fn dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(evidence::default_state_dir)
    }
}

/// The desired-state folder the flags name (else the project directory, else the current one).
fn folder_of(g: &Global) -> anyhow::Result<PathBuf> {
    let cwd = super::current_dir()?;
    Ok(
        match g.desired_state.as_ref().or(g.project_directory.as_ref()) {
            Some(d) => spindle::desired::abspath::absolute(&cwd, d),
            None => cwd,
        },
    )
}

/// The checked `switching:` block of the folder's spindle.yaml, if it has one.
pub fn switching_of(folder: &Path) -> anyhow::Result<Option<Switching>> {
    let Some(manifest) = folder::read_manifest_in(folder)? else {
        return Ok(None);
    };
    Ok(folder::switching(&manifest, &folder.join(MANIFEST))?)
}

fn required(folder: &Path) -> anyhow::Result<Switching> {
    switching_of(folder)?.ok_or_else(|| {
        anyhow::anyhow!(
            "{} has no `switching:` block; add one to pin or switch profiles (see docs/profiles.md)",
            folder.join(MANIFEST).display()
        )
    })
}

pub fn run(g: &Global, args: &ProfileArgs) -> anyhow::Result<ExitCode> {
    let folder = folder_of(g)?;
    match &args.command {
        ProfileSub::Show(a) => {
            let cfg = required(&folder)?;
            let state_dir = a.state.dir();
            let pinned = profile::read_pin(&state_dir)?;
            let doc = json!({
                "mode": cfg.mode,
                "profile": cfg.profile,
                "source": cfg.source,
                "pinned": pinned,
                "declared": cfg.declared,
                "enter": {"above_percent": f64::from(cfg.enter_above) / 10.0, "for": humantime::format_duration(cfg.enter_for).to_string()},
                "leave": {"below_percent": f64::from(cfg.leave_below) / 10.0, "for": humantime::format_duration(cfg.leave_for).to_string()},
                "min_dwell": humantime::format_duration(cfg.min_dwell).to_string(),
                "sample_every": humantime::format_duration(cfg.sample_every).to_string(),
                "pin_file": profile::pin_path(&state_dir),
            });
            match a.format {
                Format::Json => println!("{}", serde_json::to_string_pretty(&doc)?),
                Format::Text => {
                    println!(
                        "switching: {} to {} (declared: default, {})",
                        doc["mode"].as_str().unwrap_or_default(),
                        cfg.profile,
                        cfg.declared.join(", ")
                    );
                    println!(
                        "enter above {}% for {}; leave below {}% for {}; min dwell {}; sample every {}",
                        doc["enter"]["above_percent"],
                        doc["enter"]["for"].as_str().unwrap_or_default(),
                        doc["leave"]["below_percent"],
                        doc["leave"]["for"].as_str().unwrap_or_default(),
                        doc["min_dwell"].as_str().unwrap_or_default(),
                        doc["sample_every"].as_str().unwrap_or_default(),
                    );
                    match &pinned {
                        Some(p) => println!("pinned: {p}"),
                        None => println!("pinned: no (automatic)"),
                    }
                }
            }
        }
        ProfileSub::Pin(a) => {
            let cfg = required(&folder)?;
            let pin = profile::parse_pin(Some(&a.name), &cfg.declared)?;
            profile::write_pin(&a.state.dir(), Some(&a.name))?;
            println!(
                "pinned {} ({}); a running spindle applies it within {}",
                a.name,
                match pin {
                    profile::Pin::Default => "the base files only".to_string(),
                    _ => "its files on top of the base".to_string(),
                },
                humantime::format_duration(cfg.sample_every)
            );
        }
        ProfileSub::Unpin(a) => {
            let cfg = required(&folder)?;
            profile::write_pin(&a.dir(), None)?;
            println!(
                "unpinned; {} switching decides again",
                match cfg.mode {
                    profile::Mode::Auto => "automatic",
                    profile::Mode::Manual => "manual (base files unless pinned)",
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The running switcher of `spindle run`: its control, and its sampler task (stopped on drop).
pub struct Running {
    pub control: Arc<dyn ProfileControl>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the switcher when the folder's spindle.yaml has a `switching:` block: it samples the
/// load, follows the pin file, and asks the loop for a reconcile on every switch.
pub fn start_switching(
    folder: &Path,
    state_dir: &Path,
    sources: &Sources,
) -> anyhow::Result<Option<Running>> {
    let Some(cfg) = switching_of(folder)? else {
        return Ok(None);
    };
    let source = profile::source::open(cfg.source).with_context(|| {
        format!(
            "cannot read the CPU load for switching.source {:?}",
            cfg.source
        )
    })?;
    tracing::info!(
        source = source.name(),
        profile = %cfg.profile,
        mode = ?cfg.mode,
        "profile switching on"
    );
    let switch = Arc::new(ProfileSwitch::new(cfg, source.name(), state_dir));
    let handle = sources.handle();
    switch.attach(Box::new(move |t| handle.trigger(t)));
    let token = sources.stop_token();
    let task = tokio::spawn(
        switch
            .clone()
            .sample(source, async move { token.stopping().await }),
    );
    Ok(Some(Running {
        control: switch,
        task,
    }))
}
