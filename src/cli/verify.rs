//! `spindle verify`: checks repo truth, host input, running containers and app readback, and writes a JSON report.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use spindle::desired::{self, typed::DesiredState};
use spindle::engine::Engine;
use spindle::redact::{self, Redactor};
use spindle::verify::{
    Finding, Kind, Layer, LayerReport, Report, containers, git,
    host::{self, EnvText},
    readback,
    repo::{self, ComposeText},
};
use spindle::{health, observe};

use super::{Global, request};

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// Write the JSON report to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

fn read_optional(path: &Path) -> anyhow::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

pub fn verify_cmd(g: &Global, args: &VerifyArgs) -> anyhow::Result<ExitCode> {
    // A desired state that does not load is an error, not a report.
    let project = desired::load(&request(g)?)?;
    for w in &project.warnings {
        tracing::warn!("{w}");
    }
    let dir = project.working_dir.clone();
    let revision = desired::revision::revision(&dir);
    let desired = DesiredState::from_project(&project, revision.clone())?;

    // Repo truth: every compose file of the folder, inactive profiles' included.
    let mut compose = Vec::new();
    for f in project.files.iter().chain(&project.inactive_files) {
        compose.push(ComposeText {
            name: git::shown(&dir, f),
            text: read_optional(f)?,
        });
    }
    let example = project.env_example.as_deref();
    let repo_layer = repo::repo_truth(example, &compose);

    // Host input: the env files on disk, and the folder's files against git.
    let env_paths: Vec<PathBuf> = if project.env_files.is_empty() {
        vec![dir.join(".env")]
    } else {
        project.env_files.clone()
    };
    let mut env_texts = Vec::new();
    for p in &env_paths {
        env_texts.push(EnvText {
            name: git::shown(&dir, p),
            text: read_optional(p)?,
        });
    }
    let mut tracked: Vec<PathBuf> = project
        .files
        .iter()
        .chain(&project.inactive_files)
        .cloned()
        .collect();
    for extra in [desired::folder::MANIFEST, ".env.example"] {
        let p = dir.join(extra);
        if p.is_file() {
            tracked.push(p);
        }
    }
    let existing_env: Vec<PathBuf> = env_paths.iter().filter(|p| p.is_file()).cloned().collect();
    let git_view = git::view(&dir, &tracked, &existing_env);
    let host_layer = host::host_input(example, &env_texts, &git_view);

    // Running containers and app readback: the engine and the probes, side by side.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (container_layer, observed_secrets, probe_layer) = runtime.block_on(async {
        let engine_side = async {
            let engine = match Engine::connect().await {
                Ok(e) => e,
                Err(e) => return (unreachable_engine(&e.to_string()), Vec::new()),
            };
            match observe::snapshot(&engine, &desired).await {
                Ok(s) => (
                    containers::containers(&desired, &s),
                    containers::observed_secrets(&s),
                ),
                Err(e) => (unreachable_engine(&e.to_string()), Vec::new()),
            }
        };
        let probes = health::run_all(&project.probes);
        let ((layer, secrets), outcomes) = tokio::join!(engine_side, probes);
        (
            layer,
            secrets,
            readback::readback(&project.probes, &outcomes),
        )
    });

    let report = Report::new(
        project.name.clone(),
        dir.display().to_string(),
        revision,
        vec![repo_layer, host_layer, container_layer, probe_layer],
    );
    let passed = report.passed();

    // Every value went through the per-key redaction already; this is the last net.
    redact::register_secrets(observed_secrets.iter().cloned());
    let redactor = Redactor::new(
        project
            .secret_values
            .iter()
            .cloned()
            .chain(observed_secrets),
    );
    let mut json = serde_json::to_value(&report)?;
    redactor.tree(&mut json);
    let text = redact::scrub(&(serde_json::to_string_pretty(&json)? + "\n"));
    match &args.output {
        Some(path) => {
            std::fs::write(path, &text)
                .with_context(|| format!("cannot write the report to {}", path.display()))?;
            eprintln!(
                "verify {}: {} ({} failing, {} warning); report written to {}",
                report.project,
                if passed { "pass" } else { "fail" },
                report.failures,
                report.warnings,
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The containers layer when the engine cannot be read: it fails closed.
fn unreachable_engine(error: &str) -> LayerReport {
    LayerReport::new(
        Layer::Containers,
        0,
        vec![
            Finding::new(
                Layer::Containers,
                Kind::Unreachable,
                "engine",
                format!("{error}: start Docker or point DOCKER_HOST at it, then verify again"),
            )
            .expected("a reachable Docker engine"),
        ],
    )
}
