//! `spindle status`: the conditions of every service as a table, from the running spindle's API or computed offline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use serde_json::{Value, json};
use spindle::desired::{self, typed::DesiredState};
use spindle::engine::Engine;
use spindle::redact::Redactor;
use spindle::{evidence, observe, pause, plan, status};

use super::{Format, Global, request};

mod peer;

/// The bearer token `spindle status` sends, for a spindle whose reads need one.
const API_TOKEN_ENV: &str = "SPINDLE_API_TOKEN";
/// How long the API may take to answer `GET /status`.
const API_DEADLINE: Duration = Duration::from_secs(3);
/// The largest status document read from the API.
const MAX_STATUS_BYTES: usize = 16 * 1024 * 1024;

#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The API of the running `spindle run` (IP:PORT); without an answer there, the status is computed here.
    #[arg(long, value_name = "ADDR", default_value = spindle::api::DEFAULT_LISTEN)]
    pub api: String,
    /// The state directory (for the pause state when computing offline; default: $SPINDLE_STATE_DIR or /var/lib/spindle).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn status_cmd(g: &Global, args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let project = desired::load(&request(g)?);
    let name = project.as_ref().ok().map(|p| p.name.clone());
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(evidence::default_state_dir);
    // Who holds the address is checked before a byte (and so the token) is sent; a socket of
    // another user is refused, not fallen back from.
    let answer = match peer::connect(&args.api, &peer::Expected::for_state_dir(&state_dir))? {
        peer::Reach::Checked(stream) => rt.block_on(ask_api(stream, &args.api)),
        peer::Reach::Nothing(why) => Err(why),
    };
    let doc = match answer {
        Ok(doc) => {
            check_identity(&doc, &args.api, name.as_deref(), &state_dir)?;
            header_and(doc, format!("from the spindle API at {}", args.api))
        }
        Err(why) => {
            let project = project?;
            let doc = rt.block_on(offline(&project, &state_dir))?;
            header_and(doc, format!("computed offline ({why})"))
        }
    };
    match args.format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&doc)?),
        Format::Text => print!("{}", table(&doc)),
    }
    Ok(ExitCode::SUCCESS)
}

/// `Err` unless the spindle that answered serves `project` (when it loads here) from `state_dir`:
/// the status of another spindle is never printed as this one's.
fn check_identity(
    doc: &Value,
    api: &str,
    project: Option<&str>,
    state_dir: &Path,
) -> anyhow::Result<()> {
    let theirs_project = doc["project"].as_str();
    let theirs_dir = doc["state_dir"].as_str().map(PathBuf::from);
    let ours_dir = std::fs::canonicalize(state_dir)
        .or_else(|_| std::path::absolute(state_dir))
        .unwrap_or_else(|_| state_dir.to_path_buf());
    let same_project = project.is_none() || theirs_project == project;
    let same_dir = theirs_dir.as_deref() == Some(ours_dir.as_path());
    if same_project && same_dir {
        return Ok(());
    }
    let shown = |p: Option<&str>| p.unwrap_or("(not named)").to_string();
    let theirs_dir = theirs_dir.map_or("(not named)".into(), |d| d.display().to_string());
    anyhow::bail!(
        "the spindle API at {api} is not this project's: it serves project {} with state dir {theirs_dir}, this is project {} with state dir {}; pass --api with the address of this project's `spindle run --listen`, and --state-dir with its state dir",
        shown(theirs_project),
        shown(project),
        ours_dir.display()
    )
}

fn header_and(mut doc: Value, source: String) -> Value {
    doc["source_detail"] = source.into();
    doc
}

/// `GET /status` over `stream`, already connected to `addr` and checked to be spindle's, within
/// [`API_DEADLINE`].
async fn ask_api(stream: std::net::TcpStream, addr: &str) -> Result<Value, String> {
    tokio::time::timeout(API_DEADLINE, get_status(stream, addr))
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "the spindle API at {addr} did not answer within {} s",
                API_DEADLINE.as_secs()
            ))
        })
}

async fn get_status(stream: std::net::TcpStream, addr: &str) -> Result<Value, String> {
    use http_body_util::BodyExt;
    let unreachable = |e: &dyn std::fmt::Display| format!("no spindle API answered at {addr}: {e}");
    let stream = stream
        .set_nonblocking(true)
        .and_then(|()| tokio::net::TcpStream::from_std(stream))
        .map_err(|e| unreachable(&e))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(&e))?;
    tokio::spawn(conn);
    let mut req = hyper::Request::get("/status").header(hyper::header::HOST, addr);
    // A spindle with --api-read-auth needs the token for reads too.
    if let Some(token) = std::env::var(API_TOKEN_ENV).ok().filter(|t| !t.is_empty()) {
        req = req.header(
            hyper::header::AUTHORIZATION,
            format!("Bearer {}", token.trim()),
        );
    }
    let req = req
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .map_err(|e| {
            format!("cannot ask the spindle API at {addr}: {e} (check --api and {API_TOKEN_ENV})")
        })?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| unreachable(&e))?;
    match resp.status().as_u16() {
        200..=299 => {}
        401 | 403 => {
            return Err(format!(
                "the spindle API at {addr} answered {}: its reads need a token (--api-read-auth); set {API_TOKEN_ENV}",
                resp.status()
            ));
        }
        _ => {
            return Err(format!(
                "the spindle API at {addr} answered {}",
                resp.status()
            ));
        }
    }
    let body = http_body_util::Limited::new(resp.into_body(), MAX_STATUS_BYTES)
        .collect()
        .await
        .map_err(|e| format!("the answer of {addr} is not a status: {e}"))?
        .to_bytes();
    serde_json::from_slice(&body).map_err(|e| format!("the answer of {addr} is not a status: {e}"))
}

/// Load + observe + plan, then the pure status computation (no degraded map: that lives in the loop).
async fn offline(project: &desired::Project, state_dir: &std::path::Path) -> anyhow::Result<Value> {
    let revision = desired::revision::revision(&project.working_dir);
    let desired = DesiredState::from_project(project, revision)
        .map_err(|e| anyhow::anyhow!("desired state: {e}"))?;
    let engine = Engine::connect().await?;
    let snapshot = observe::snapshot(&engine, &desired).await?;
    // The recovery rule's memory (read only), so that follows still to come count as pending.
    let last_seen =
        spindle::seen::load_off_runtime(state_dir.to_path_buf(), desired.project.clone()).await;
    let mut plan = plan::plan(
        &desired,
        &snapshot,
        &plan::PlanOptions {
            remove_orphans: false,
            redactor: Redactor::new(project.secret_values.clone()),
            last_seen: last_seen.clone(),
            compare_fields: false,
        },
    );
    plan.warnings
        .extend(spindle::policy::findings(&desired, project, Some(state_dir)).warnings);
    let mut pending: BTreeMap<String, usize> = BTreeMap::new();
    for a in &plan.actions {
        if let Some(s) = a.kind.service() {
            *pending.entry(s.to_string()).or_insert(0) += 1;
        }
    }
    let pause_state = pause::read_state(&state_dir.join(pause::PAUSE_FILE))?;
    let facts = status::facts(
        &desired,
        &snapshot,
        &BTreeMap::new(),
        &pending,
        pause_state.is_paused(),
    );
    let now = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let services = status::compute(&facts, None, &now);
    Ok(json!({
        "project": project.name,
        "source": "offline",
        "pause": pause_state,
        "services": services.services,
        "warnings": plan.warnings,
    }))
}

/// The status document as a terminal table.
pub fn table(doc: &Value) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "project {} — {}\n",
        doc["project"].as_str().unwrap_or("?"),
        doc["source_detail"].as_str().unwrap_or("")
    ));
    if doc["pause"]["state"].as_str() == Some("paused") {
        out.push_str(&format!(
            "PAUSED since {}: observing and planning, applying nothing\n",
            doc["pause"]["since"].as_str().unwrap_or("?")
        ));
    }
    if let Some(last) = doc["last_reconcile"].as_object() {
        out.push_str(&format!(
            "last reconcile {} at {}: {}\n",
            last.get("record").and_then(Value::as_str).unwrap_or("?"),
            last.get("finished").and_then(Value::as_str).unwrap_or("?"),
            last.get("outcome").and_then(Value::as_str).unwrap_or("?"),
        ));
    }
    for w in doc["warnings"].as_array().into_iter().flatten() {
        out.push_str(&format!("warning: {}\n", w.as_str().unwrap_or("?")));
    }
    let Some(services) = doc["services"].as_object() else {
        out.push_str("no status yet: the first reconcile has not observed the host\n");
        return out;
    };
    let mut rows = vec![vec![
        "SERVICE".to_string(),
        "RUNNING".into(),
        "READY".into(),
        "PROGRESSING".into(),
        "DEGRADED".into(),
        "MESSAGE".into(),
    ]];
    for (name, s) in services {
        let cond = |kind: &str| {
            s["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"].as_str() == Some(kind)))
                .cloned()
                .unwrap_or(Value::Null)
        };
        let cell = |c: &Value| {
            format!(
                "{} ({})",
                c["status"].as_str().unwrap_or("?"),
                c["reason"].as_str().unwrap_or("")
            )
        };
        let (ready, progressing, degraded) = (cond("Ready"), cond("Progressing"), cond("Degraded"));
        // The message of the first condition that is not as wished.
        let paused = progressing["reason"].as_str() == Some("Paused");
        let message = [
            (&ready, ready["status"] == "False"),
            (&degraded, degraded["status"] == "True"),
            (&progressing, progressing["status"] == "True" || paused),
        ]
        .iter()
        .find(|(_, bad)| *bad)
        .map(|(c, _)| c["message"].as_str().unwrap_or("").to_string())
        .unwrap_or_default();
        rows.push(vec![
            name.clone(),
            format!("{}/{}", s["running"], s["replicas"]),
            cell(&ready),
            cell(&progressing),
            cell(&degraded),
            message,
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
