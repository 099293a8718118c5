//! No secret leaves spindle (issue 10, deliverable 1): secrets of every shape in every source, every command and sink driven against the real engine, every output searched for every form of every secret.
//!
//! One scenario (`drive`) puts one secret in each source at once, each under its own key:
//! - the interpolation environment (`.env`, read through `${API_TOKEN}`; also the source of a bad port value and
//!   of a relative `working_dir` that the engine refuses and echoes),
//! - a key declared empty in `.env.example` (`BACKUP_SEED`, a name no word list knows: the folder's convention
//!   is that `.env.example` leaves secrets empty),
//! - a service's `env_file:` (`SMTP_PASSWORD`),
//! - a literal `environment:` entry (`DB_PASSWORD: <literal>`),
//! - a glued key (`MYSQLPASSWORD: <literal>`),
//! - URL userinfo (`DATABASE_URL: mysql://u:<percent-encoded>@db/x`),
//! - a `secrets:` file (`/run/secrets/db_root`).
//!
//! Then, each command with `-vvv` and `SPINDLE_LOG=trace`: `plan` (text and JSON), a successful `apply`, a failed
//! `apply` (a pre-recreate hook that prints every secret raw and in base64, a health gate that fails, an engine
//! error echoing a value), `spindle run` with its API (`/healthz`, `/readyz`, `/status`, `/evidence`, `/metrics`,
//! `/version`, with a token) and `spindle status`, a load error (`ports: ["${API_TOKEN}:80"]`), `verify` with a
//! failing HTTP probe whose URL carries secrets, `config`, `inventory` and the `evidence` commands. Everything they
//! print, every file of the state dir and the `io.spindle.*` labels of the containers are searched with the rule
//! of `secrets/forms.rs` (raw, Debug, JSON, percent and base64 forms; short secrets where delimited).
//!
//! Each case runs about fifteen spindle commands against the engine, so the property test runs few cases.

mod common;

#[path = "secrets/forms.rs"]
mod forms;

use std::process::Output;
use std::time::Duration;

use common::{
    COMMAND_DEADLINE, SpindleProcess, TestProject, all_files, assert_exit, assert_no_panic,
    evidence_records, run_with_deadline, wait_for,
};
use proptest::prelude::*;

const PREFIX: &str = "spindle-h-leaks";
const DEADLINE: Duration = Duration::from_secs(90);

/// One secret per source; see the module documentation for where each goes.
#[derive(Clone, Debug)]
struct Secrets {
    /// `.env`'s `API_TOKEN`, interpolated.
    interpolated: String,
    /// `.env`'s `BACKUP_SEED`, declared empty in `.env.example`.
    example: String,
    /// `app.env`'s `SMTP_PASSWORD`, through `env_file:`.
    env_file: String,
    /// `DB_PASSWORD: <literal>` in the compose file.
    literal: String,
    /// `MYSQLPASSWORD: <literal>` in the compose file.
    glued: String,
    /// The password of `DATABASE_URL`, percent-encoded there.
    url: String,
    /// The content of the `db_root` secret file.
    file: String,
}

impl Secrets {
    fn all(&self) -> [(&'static str, &str); 7] {
        [
            ("interpolated API_TOKEN", &self.interpolated),
            (".env.example BACKUP_SEED", &self.example),
            ("env_file SMTP_PASSWORD", &self.env_file),
            ("literal DB_PASSWORD", &self.literal),
            ("glued MYSQLPASSWORD", &self.glued),
            ("DATABASE_URL userinfo", &self.url),
            ("secrets file db_root", &self.file),
        ]
    }
}

// --- writing the sources ------------------------------------------------------------------------------------------

/// A double-quoted dotenv value: `\`, `"` and `$` escaped, a newline as `\n`.
fn dotenv_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A YAML double-quoted scalar holding `s` literally after interpolation (`$` written `$$`).
fn yaml_literal(s: &str) -> String {
    serde_json::to_string(&s.replace('$', "$$")).expect("a string serializes")
}

/// The compose file. `rev` 2 makes `app`'s healthcheck fail and adds `wd`, whose create the engine refuses.
fn compose(s: &Secrets, rev: u32, bad_port: bool) -> String {
    let url = format!("mysql://u:{}@db/x", forms::percent_all(&s.url));
    let ports = if bad_port {
        "    ports: [\"${API_TOKEN}:80\"]\n"
    } else {
        ""
    };
    let wd = if rev > 1 {
        "  wd:\n    image: spindle-test/busybox:1\n    command: [\"/usr/local/bin/idle\"]\n    \
         working_dir: \"rel/${API_TOKEN}\"\n"
    } else {
        ""
    };
    // The hook prints every secret as the container sees it, raw and in base64, one per line.
    let hook = "for v in \"$APP_SETTING\" \"$BACKUP_SEED\" \"$SMTP_PASSWORD\" \"$DB_PASSWORD\" \
                \"$MYSQLPASSWORD\" \"$DATABASE_URL\" \"$(cat /run/secrets/db_root)\"; do \
                echo \"value=$v\"; printf %s \"$v\" | base64 -w0; echo; done";
    format!(
        r#"services:
  app:
    image: spindle-test/busybox:1
    command: ["/usr/local/bin/idle"]
    init: true
    stop_grace_period: 1s
    env_file: [app.env]
    environment:
      REV: "{rev}"
      APP_SETTING: ${{API_TOKEN}}
      BACKUP_SEED: ${{BACKUP_SEED}}
      DB_PASSWORD: {literal}
      MYSQLPASSWORD: {glued}
      DATABASE_URL: {url}
    secrets: [db_root]
    healthcheck:
      test: ["CMD-SHELL", "test \"$$REV\" = 1"]
      interval: 1s
      timeout: 1s
      retries: 2
{ports}    x-spindle:
      pre-recreate:
        exec: {hook}
        timeout: 30s
{wd}
secrets:
  db_root:
    file: ./db_root.txt
"#,
        literal = yaml_literal(&s.literal),
        glued = yaml_literal(&s.glued),
        url = yaml_literal(&url),
        hook = yaml_literal(hook),
    )
}

/// `spindle.yaml`: one verify-only HTTP probe, refused, whose URL carries secrets in its userinfo, path and query.
fn manifest(s: &Secrets, refused_port: u16) -> String {
    let url = format!(
        "http://u:{}@127.0.0.1:{refused_port}/health/{}?token={}",
        forms::percent_all(&s.literal),
        forms::percent_all(&s.interpolated),
        forms::percent_all(&s.glued),
    );
    format!(
        "probes:\n  - name: app-health\n    http: {{url: {}, timeout: 2s}}\n",
        serde_json::to_string(&url).expect("a string serializes")
    )
}

fn write_sources(p: &TestProject, s: &Secrets) {
    p.write(
        ".env",
        &format!(
            "API_TOKEN={}\nBACKUP_SEED={}\n",
            dotenv_quoted(&s.interpolated),
            dotenv_quoted(&s.example)
        ),
    );
    p.write(".env.example", "API_TOKEN=\nBACKUP_SEED=\n");
    p.write(
        "app.env",
        &format!("SMTP_PASSWORD={}\n", dotenv_quoted(&s.env_file)),
    );
    p.write("db_root.txt", &s.file);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    p.write("spindle.yaml", &manifest(s, port));
    p.write("compose.yaml", &compose(s, 1, false));
}

// --- collecting what left the process -----------------------------------------------------------------------------

/// Everything spindle let out, each piece named by where it came from.
#[derive(Default)]
struct Collected(Vec<(String, String)>);

impl Collected {
    fn add(&mut self, what: impl Into<String>, text: impl Into<String>) {
        self.0.push((what.into(), text.into()));
    }

    fn output(&mut self, what: &str, out: &Output) {
        self.add(
            format!("{what}: stdout"),
            String::from_utf8_lossy(&out.stdout),
        );
        self.add(
            format!("{what}: stderr"),
            String::from_utf8_lossy(&out.stderr),
        );
    }

    /// Every leak, one line per secret, form and output (with the count and the first occurrence); empty when
    /// nothing leaked.
    fn leaks(&self, secrets: &Secrets) -> Vec<String> {
        let mut found = Vec::new();
        for (source, secret) in secrets.all() {
            for (what, text) in &self.0 {
                let leaks = forms::find_leaks(text, secret);
                let mut by_form: Vec<(&str, usize, &forms::Leak)> = Vec::new();
                for leak in &leaks {
                    match by_form.iter_mut().find(|(f, _, _)| *f == leak.form) {
                        Some(entry) => entry.1 += 1,
                        None => by_form.push((leak.form, 1, leak)),
                    }
                }
                for (form, count, first) in by_form {
                    found.push(format!(
                        "{source} ({secret:?}) as {form} in {what}, {count}x, first at byte {}: {}",
                        first.at, first.context
                    ));
                }
            }
        }
        found
    }
}

/// Runs `spindle -p <project> --desired-state <dir> -vvv <args>` with `SPINDLE_LOG=trace`, as
/// `TestProject::spindle` does otherwise.
fn spindle(p: &TestProject, args: &[&str]) -> Output {
    let verbose: Vec<&str> = std::iter::once("-vvv")
        .chain(args.iter().copied())
        .collect();
    let mut command = p.spindle_command(&verbose);
    command.env("SPINDLE_LOG", "trace");
    run_with_deadline(command, COMMAND_DEADLINE).unwrap_or_else(|e| panic!("spindle {args:?}: {e}"))
}

/// Runs a spindle command, records its output, and checks its exit status when `code` is given.
fn step(p: &TestProject, c: &mut Collected, args: &[&str], code: Option<i32>) -> Output {
    let out = spindle(p, args);
    let what = format!("spindle {}", args.join(" "));
    assert_no_panic(&out, &what);
    if let Some(code) = code {
        assert_exit(&out, code, &what);
    }
    c.output(&what, &out);
    out
}

/// `(status, body)` of one GET with a bearer token.
fn http_get(url: &str, token: &str) -> (u16, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a client");
        let resp = client
            .get(url)
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap_or_default())
    })
}

/// `http://<addr>` of the API, read from the process's log.
fn api_base(run: &mut SpindleProcess) -> String {
    wait_for("the HTTP API address in the log", DEADLINE, || {
        run.assert_alive();
        let log = run.stderr();
        let at = log.find("HTTP API listening addr=")?;
        let rest = &log[at + "HTTP API listening addr=".len()..];
        let addr: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
        Some(format!("http://{addr}"))
    })
}

/// The `io.spindle.*` labels of every container of the project, as text.
fn spindle_labels(p: &TestProject) -> String {
    let mut out = String::new();
    for (name, id) in p.containers() {
        if let Some(info) = p.try_inspect(&id)
            && let Some(labels) = info["Config"]["Labels"].as_object()
        {
            for (k, v) in labels.iter().filter(|(k, _)| k.starts_with("io.spindle.")) {
                out.push_str(&format!("{name} {k}={v}\n"));
            }
        }
    }
    out
}

/// The whole scenario; returns everything spindle let out.
fn drive(p: &TestProject, s: &Secrets) -> Collected {
    let mut c = Collected::default();
    let state = p.state_dir().to_string_lossy().into_owned();
    write_sources(p, s);

    // Load, plan, a successful apply.
    step(p, &mut c, &["config"], Some(0));
    step(p, &mut c, &["config", "--format", "json"], Some(0));
    step(p, &mut c, &["plan"], Some(2));
    step(p, &mut c, &["plan", "--format", "json"], Some(2));
    step(p, &mut c, &["apply", "--format", "json"], Some(0));

    // A failed apply: the hook prints every secret, the new app never gets healthy (rolled back), and the engine
    // refuses wd's relative working_dir, echoing it.
    p.write("compose.yaml", &compose(s, 2, false));
    step(p, &mut c, &["plan"], Some(2));
    step(p, &mut c, &["apply", "--timeout", "6s"], Some(1));

    // spindle run and its API, while the same failures repeat.
    let token_out = p.spindle(&["token", "create", "--state-dir", &state, "--name", "leaks"]);
    assert_exit(&token_out, 0, "spindle token create");
    let token = String::from_utf8_lossy(&token_out.stdout)
        .trim()
        .to_string();
    {
        let mut run = p.spawn_spindle(
            &[
                "-vvv",
                "run",
                "--state-dir",
                &state,
                "--listen",
                "127.0.0.1:0",
                "--timeout",
                "4s",
            ],
            &[("SPINDLE_LOG", "trace")],
        );
        let base = api_base(&mut run);
        // Wait for the first reconcile of the run to be recorded (it fails like the apply did).
        let before = evidence_records(p.state_dir()).len();
        wait_for("a reconcile record of spindle run", DEADLINE, || {
            run.assert_alive();
            (evidence_records(p.state_dir()).len() > before).then_some(())
        });
        for path in [
            "/healthz",
            "/readyz",
            "/status",
            "/evidence",
            "/metrics",
            "/version",
        ] {
            let (code, body) = http_get(&format!("{base}{path}"), &token);
            c.add(format!("GET {path} ({code})"), body);
        }
        let addr = base.trim_start_matches("http://").to_string();
        step(p, &mut c, &["status", "--api", &addr], None);
        step(
            p,
            &mut c,
            &["status", "--api", &addr, "--format", "json"],
            None,
        );
        run.terminate(DEADLINE);
        c.add("spindle run: stderr", run.stderr());
    }

    // A load error whose message would quote a secret.
    p.write("compose.yaml", &compose(s, 2, true));
    step(p, &mut c, &["plan"], Some(1));
    step(p, &mut c, &["apply"], Some(1));
    step(p, &mut c, &["verify"], Some(1));

    // Back to a state that loads: verify (its probe fails), inventory, and the evidence commands.
    p.write("compose.yaml", &compose(s, 1, false));
    step(p, &mut c, &["verify"], Some(1));
    step(p, &mut c, &["inventory", "--format", "json"], None);
    step(p, &mut c, &["evidence", "list"], Some(0));
    step(p, &mut c, &["evidence", "verify"], Some(0));
    let listed = step(
        p,
        &mut c,
        &["evidence", "list", "--format", "json"],
        Some(0),
    );
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap_or_default();
    let ids: Vec<String> = match &listed {
        serde_json::Value::Array(a) => a.clone(),
        other => other["records"].as_array().cloned().unwrap_or_default(),
    }
    .iter()
    .filter_map(|r| r["id"].as_str().map(str::to_string))
    .collect();
    assert!(
        ids.len() >= 3,
        "the applies and the run left records: {listed}"
    );
    for id in &ids {
        step(p, &mut c, &["evidence", "show", id], Some(0));
    }

    for file in all_files(p.state_dir()) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        c.add(
            format!("state dir file {}", file.display()),
            String::from_utf8_lossy(&bytes),
        );
    }
    c.add("container labels", spindle_labels(p));
    c
}

/// Drives the scenario with `secrets` in a fresh project and fails listing every leak.
fn assert_no_leak(test: &str, secrets: &Secrets) {
    let p = TestProject::with_prefix(PREFIX, test, "plain");
    let collected = drive(&p, secrets);
    let leaks = collected.leaks(secrets);
    assert!(
        leaks.is_empty(),
        "{} leak(s) of secrets:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

// --- the cases ----------------------------------------------------------------------------------------------------

#[test]
fn no_form_of_the_reported_secrets_leaks_from_any_source_into_any_output() {
    // The shapes of issue 10's findings, each in its own source.
    let secrets = Secrets {
        // `invalid port "tok\"val-123456"`: a quote that `{:?}` escapes.
        interpolated: "tok\"val-123456".into(),
        // A backslash and a newline, which only a quoted dotenv value can hold.
        example: "back\\slash\nnext-line".into(),
        // Unicode, from an env_file.
        env_file: "pässwörd-京-🦀".into(),
        // Percent-encodable characters and a `$`, literal in the compose file.
        literal: "p@ss:w/rd?#%41$HOME".into(),
        // A key that the word list misses when it splits on `_`.
        glued: "glued'Secret=42".into(),
        // `mysql://u:abc12@db`: shorter than 6 characters.
        url: "abc12".into(),
        // Spaces, quotes and an ampersand in a secrets file.
        file: "file secret & \"quoted\" 'too'".into(),
    };
    assert_no_leak("fixed", &secrets);
}

/// A pre-recreate `exec` hook runs in the old container, whose environment still holds the secrets of its time. After
/// a rotation the desired state knows only the new ones; the old ones, printed by the hook, must not reach the
/// evidence either. The hook prints them raw (their other forms are the redactor's concern, tested above); searched
/// in every form: the apply's output and the state dir (without `-vvv`: the engine client's own debug logs are the
/// redact layer's concern too).
#[test]
fn a_hook_in_the_old_container_cannot_leak_the_secrets_rotated_out_since() {
    let p = TestProject::with_prefix(PREFIX, "rotated", "plain");
    let old_token = format!("old-token-{}", common::random_hex(12));
    let old_password = format!("old-pass-{}", common::random_hex(12));
    let env = |token: &str, password: &str| format!("API_TOKEN={token}\nDB_PASSWORD={password}\n");
    p.write(".env", &env(&old_token, &old_password));
    let hook = "for v in \"$APP_SETTING\" \"$DB_PASSWORD\"; do echo \"was=$v\"; done";
    p.write(
        "compose.yaml",
        &format!(
            r#"services:
  app:
    image: spindle-test/busybox:1
    command: ["/usr/local/bin/idle"]
    init: true
    stop_grace_period: 1s
    environment:
      APP_SETTING: ${{API_TOKEN}}
      DB_PASSWORD: ${{DB_PASSWORD}}
    x-spindle:
      pre-recreate:
        exec: {}
        timeout: 30s
"#,
            yaml_literal(hook)
        ),
    );
    assert_exit(&p.spindle(&["apply"]), 0, "the first apply");
    p.write(
        ".env",
        &env(
            &format!("new-token-{}", common::random_hex(12)),
            &format!("new-pass-{}", common::random_hex(12)),
        ),
    );
    let out = p.spindle(&["apply", "--format", "json"]);
    assert_exit(&out, 0, "the apply that rotates the secrets");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("was=<redacted>"), "the hook ran: {report}");
    let mut c = Collected::default();
    c.output("spindle apply", &out);
    for file in all_files(p.state_dir()) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        c.add(
            format!("state dir file {}", file.display()),
            String::from_utf8_lossy(&bytes),
        );
    }
    for (what, secret) in [
        ("old API_TOKEN", &old_token),
        ("old DB_PASSWORD", &old_password),
    ] {
        let leaks: Vec<String> =
            c.0.iter()
                .flat_map(|(where_, text)| {
                    forms::find_leaks(text, secret)
                        .into_iter()
                        .map(move |l| format!("{what} as {} in {where_}: {}", l.form, l.context))
                })
                .collect();
        assert!(leaks.is_empty(), "{}", leaks.join("\n"));
    }
}

/// Characters a secret is made of: letters and digits, quotes, backslashes, `$`, percent-encodable characters,
/// other punctuation, unicode (2, 3 and 4 bytes in UTF-8) and newlines.
fn secret_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => prop::char::range('a', 'z'),
        2 => prop::char::range('A', 'Z'),
        2 => prop::char::range('0', '9'),
        3 => prop::sample::select(vec![
            '"', '\'', '\\', '$', '@', ':', '/', '?', '#', '%', '&', '=', '+', ' ', '!', '*', ';', ',', '.',
            '~', '-', '_', '{', '}', '[', ']', '(', ')', '<', '>', '|', '^', '`',
        ]),
        2 => prop::sample::select(vec!['é', 'ß', 'ж', 'Ω', '京', '✓', '€', '🦀', '𝄞']),
        1 => Just('\n'),
    ]
}

/// A secret of 1 to 64 characters. One shorter than [`forms::SHORT`] holds a non-ASCII character (see
/// `secrets/forms.rs`); none starts or ends with whitespace (a value that does is not a credential).
fn secret() -> impl Strategy<Value = String> {
    prop_oneof![1 => 1usize..forms::SHORT, 3 => forms::SHORT..=64]
        .prop_flat_map(|len| prop::collection::vec(secret_char(), len))
        .prop_map(|mut chars| {
            if chars.len() < forms::SHORT && chars.iter().all(char::is_ascii) {
                chars[0] = 'ж';
            }
            for at in [0, chars.len() - 1] {
                if chars[at].is_whitespace() {
                    chars[at] = 'q';
                }
            }
            chars.into_iter().collect()
        })
}

fn secrets() -> impl Strategy<Value = Secrets> {
    (
        secret(),
        secret(),
        secret(),
        secret(),
        secret(),
        secret(),
        secret(),
    )
        .prop_map(
            |(interpolated, example, env_file, literal, glued, url, file)| Secrets {
                interpolated,
                example,
                env_file,
                literal,
                glued,
                url,
                file,
            },
        )
        .prop_filter("seven distinct secrets, none inside another", |s| {
            let all = s.all();
            all.iter().enumerate().all(|(i, (_, a))| {
                all.iter()
                    .enumerate()
                    .all(|(j, (_, b))| i == j || !b.contains(a))
            })
        })
}

proptest! {
    // Each case runs the whole scenario against the engine (tens of seconds): few cases, no shrinking (a shrink
    // step is another whole scenario), and the failure message lists every leak of the case.
    #![proptest_config(ProptestConfig {
        cases: 6,
        max_shrink_iters: 0,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn no_form_of_any_generated_secret_leaks_from_any_source_into_any_output(s in secrets()) {
        assert_no_leak("prop", &s);
    }
}
