//! `spindle inventory`: the images each service should run against the images running, and whether each reference is pinned.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use spindle::desired::{self, typed::DesiredState};
use spindle::engine::Engine;
use spindle::observe;
use spindle::policy::{self, InventoryRow};

use super::{Format, Global, request};

#[derive(clap::Args, Debug)]
pub struct InventoryArgs {
    /// Output format on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Also write the inventory as JSON to FILE (replaced if it exists).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// The JSON document of `spindle inventory --format json` and `--output`.
#[derive(Debug, Serialize)]
struct Inventory {
    project: String,
    /// The git revision of the desired-state folder, when it is a git checkout.
    revision: Option<String>,
    images: Vec<InventoryRow>,
}

pub fn inventory_cmd(g: &Global, args: &InventoryArgs) -> anyhow::Result<ExitCode> {
    // Bad input fails here, before the engine is contacted.
    let project = desired::load(&request(g)?)?;
    for w in &project.warnings {
        tracing::warn!("{w}");
    }
    let revision = desired::revision::revision(&project.working_dir);
    let desired = DesiredState::from_project(&project, revision.clone())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let snapshot = rt.block_on(async {
        let engine = Engine::connect().await?;
        anyhow::Ok(observe::snapshot(&engine, &desired).await?)
    })?;
    // One entry per container: the reference it was created from and the image it runs.
    let running: Vec<(String, String, String)> = snapshot
        .containers
        .iter()
        .map(|c| {
            let reference = c
                .inspect
                .pointer("/Config/Image")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_string();
            (c.service.clone(), reference, c.image_id.clone())
        })
        .collect();
    let mut images = policy::inventory(&desired, &running);
    policy::resolve_local(&mut images, &snapshot.images);
    let doc = Inventory {
        project: desired.project.clone(),
        revision,
        images,
    };
    let json = serde_json::to_string_pretty(&doc)? + "\n";
    if let Some(path) = &args.output {
        std::fs::write(path, &json)
            .with_context(|| format!("cannot write the inventory to {}", path.display()))?;
    }
    match args.format {
        Format::Json => print!("{json}"),
        Format::Text => print!("{}", table(&doc)),
    }
    Ok(ExitCode::SUCCESS)
}

/// An image ID as `docker images` shows it: 12 hex digits without `sha256:`.
fn short(id: &Option<String>) -> String {
    match id {
        Some(id) => id.trim_start_matches("sha256:").chars().take(12).collect(),
        None => "-".to_string(),
    }
}

fn table(doc: &Inventory) -> String {
    let mut rows = vec![[
        "SERVICE".to_string(),
        "DESIRED".to_string(),
        "PINNING".to_string(),
        "LOCAL IMAGE".to_string(),
        "RUNNING IMAGE".to_string(),
        "RUNNING REF".to_string(),
    ]];
    for r in &doc.images {
        let pinning = if r.desired_ref.is_empty() {
            "not desired".to_string()
        } else if r.pinned {
            "pinned".to_string()
        } else {
            format!(
                "floating ({})",
                r.floating_reason.as_deref().unwrap_or("floating")
            )
        };
        let running = match (&r.running_image_id, r.stale()) {
            (Some(_), true) => format!("{} (differs)", short(&r.running_image_id)),
            _ => short(&r.running_image_id),
        };
        rows.push([
            r.service.clone(),
            if r.desired_ref.is_empty() {
                "-".to_string()
            } else {
                r.desired_ref.clone()
            },
            pinning,
            short(&r.local_image_id),
            running,
            r.running_ref.clone().unwrap_or_else(|| "-".to_string()),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = format!("project {}\n", doc.project);
    for r in &rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        service: &str,
        desired: &str,
        local: Option<&str>,
        running: Option<&str>,
    ) -> InventoryRow {
        let (pinned, floating_reason) = match policy::classify(desired) {
            policy::Pinning::Pinned => (true, None),
            policy::Pinning::Floating(why) => (false, Some(why.to_string())),
        };
        InventoryRow {
            service: service.into(),
            desired_ref: desired.into(),
            pinned: pinned && !desired.is_empty(),
            floating_reason: floating_reason.filter(|_| !desired.is_empty()),
            local_image_id: local.map(str::to_string),
            running_ref: running.map(|_| desired.to_string()),
            running_image_id: running.map(str::to_string),
        }
    }

    #[test]
    fn the_table_shows_short_ids_pinning_and_images_that_differ() {
        let doc = Inventory {
            project: "erp".into(),
            revision: None,
            images: vec![
                row(
                    "web",
                    "nginx:1.27",
                    Some("sha256:0123456789abcdef"),
                    Some("sha256:0123456789abcdef"),
                ),
                row(
                    "cache",
                    "redis",
                    Some("sha256:aaaaaaaaaaaaaaaa"),
                    Some("sha256:bbbbbbbbbbbbbbbb"),
                ),
                row("job", "busybox:latest", None, None),
                row("old", "", None, Some("sha256:cccccccccccccccc")),
            ],
        };
        let text = table(&doc);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "project erp");
        assert!(lines[1].starts_with("SERVICE  DESIRED"), "{text}");
        let cases = [
            (
                "web ",
                &["nginx:1.27", " pinned ", "0123456789ab  0123456789ab "][..],
            ),
            (
                "cache ",
                &[
                    "floating (no tag, which means latest)",
                    "bbbbbbbbbbbb (differs)",
                ][..],
            ),
            ("job ", &["floating (tag latest)", " -  "][..]),
            ("old ", &["not desired", "cccccccccccc"][..]),
        ];
        for (prefix, wants) in cases {
            let line = lines
                .iter()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no line for {prefix}in\n{text}"));
            for want in wants {
                assert!(line.contains(want), "{want:?} in {line:?}\n{text}");
            }
        }
        // Columns line up: every row has DESIRED at the same offset.
        let at = lines[1].find("DESIRED");
        assert!(
            lines[2..].iter().all(|l| l
                .get(at.unwrap_or(0)..)
                .is_some_and(|r| !r.starts_with(' '))),
            "{text}"
        );
    }
}
