//! Which values of a loaded project are secret: from every source, minus public identifiers.

use std::collections::BTreeSet;

use super::load::Environment;
use super::tree::Tree;
use crate::redact::{self, MIN_SUBSTRING_LEN};

/// A secret file larger than this is not read for redaction (it would be a data file).
const MAX_SECRET_FILE: u64 = 1 << 20;

/// The secret values of a project, and what the operator should know about them (names only).
#[derive(Debug, Default)]
pub struct Secrets {
    pub values: Vec<String>,
    pub warnings: Vec<String>,
}

/// The values of secret-like keys in the interpolation environment (shell and `.env` files):
/// what is known before the compose files are read.
pub fn from_environment(environment: &Environment, declared: &BTreeSet<String>) -> Vec<String> {
    let mut found = Found::default();
    env_source(environment, declared, &mut found);
    found.entries.into_iter().map(|(_, v)| v).collect()
}

/// Every secret of the project:
/// - the values of secret-like keys ([`redact::is_secret_entry`]) of the interpolation
///   environment, of each service's `environment` (literal entries and `env_file:` files, which the
///   model holds merged), `build.args` and `labels`;
/// - the contents of `secrets:` and `configs:` (`file:`, `content:`, `environment:`);
/// - credentials by their shape anywhere in the environment or the model (URL userinfo
///   passwords, known token formats).
///
/// `declared` names the keys that `.env.example` declares without a default: the folder's
/// convention is that the repo leaves secrets empty there, so the host's values of those keys are
/// secret whatever their names.
///
/// A value that is also a public identifier of the desired state (a path component of an image
/// reference, a service, network or volume name, the project name) written literally in the
/// compose files (`written`, their text before interpolation) is not secret: replacing it
/// would garble the output (`ADMIN_TOKEN=postgres` and `image: postgres:16`). Loading warns,
/// naming the key, for it and for a secret shorter than [`MIN_SUBSTRING_LEN`].
pub fn collect(
    environment: &Environment,
    declared: &BTreeSet<String>,
    model: &Tree,
    project: &str,
    written: &str,
) -> Secrets {
    let mut found = Found::default();
    env_source(environment, declared, &mut found);
    model_sources(environment, model, &mut found);
    let public = public_identifiers(model, project);
    let mut out = Secrets::default();
    let mut warned = BTreeSet::new();
    for (key, value) in found.entries {
        // Public only when the repo writes the name itself: `image: ${DB_PASSWORD}` must not make
        // the host's secret public.
        if public.contains(&value) && written.contains(value.as_str()) {
            if warned.insert(key.clone()) {
                out.warnings.push(format!(
                    "{key}: its value is also a name in the desired state (an image, service, network or volume, or the project); it is public in the repo, so spindle does not redact it: use another value"
                ));
            }
            continue;
        }
        if value.chars().count() < MIN_SUBSTRING_LEN && warned.insert(key.clone()) {
            out.warnings.push(format!(
                "{key}: the secret is shorter than {MIN_SUBSTRING_LEN} characters, which is weak; spindle redacts it only where it stands apart from other letters and digits"
            ));
        }
        if !out.values.contains(&value) {
            out.values.push(value);
        }
    }
    out
}

/// Secret values found, each with the key that names it in warnings.
#[derive(Default)]
struct Found {
    entries: Vec<(String, String)>,
}

impl Found {
    fn add(&mut self, key: String, value: &str) {
        if !value.is_empty() {
            self.entries.push((key, value.to_string()));
            // A file's trailing newline is not part of the secret where it is used.
            let trimmed = value.trim_end_matches(['\n', '\r']);
            if trimmed != value && !trimmed.is_empty() {
                self.entries.push((
                    self.entries[self.entries.len() - 1].0.clone(),
                    trimmed.into(),
                ));
            }
        }
    }

    /// Credentials in `text` by their shape.
    fn shapes(&mut self, key: &str, text: &str) {
        for c in redact::credentials(text) {
            self.add(key.to_string(), &c);
        }
    }
}

fn env_source(environment: &Environment, declared: &BTreeSet<String>, found: &mut Found) {
    for (k, v) in environment {
        if redact::is_secret_entry(k, v) || declared.contains(k) {
            found.add(k.clone(), v);
        } else {
            found.shapes(k, v);
        }
    }
}

fn model_sources(environment: &Environment, model: &Tree, found: &mut Found) {
    if let Some(Tree::Object(services)) = model.get("services") {
        for (name, svc) in services {
            for (field, path) in [
                (
                    svc.get("environment"),
                    format!("services.{name}.environment"),
                ),
                (
                    svc.get("build").and_then(|b| b.get("args")),
                    format!("services.{name}.build.args"),
                ),
                (svc.get("labels"), format!("services.{name}.labels")),
            ] {
                if let Some(t) = field {
                    env_like(t, &path, found);
                }
            }
        }
    }
    for kind in ["secrets", "configs"] {
        if let Some(Tree::Object(items)) = model.get(kind) {
            for (name, item) in items {
                let key = format!("{kind}.{name}");
                if let Some(path) = item.get("file").and_then(Tree::as_str) {
                    if let Some(text) = small_file(path) {
                        found.add(key.clone(), &text);
                    }
                } else if let Some(text) = item.get("content").and_then(Tree::as_str) {
                    found.add(key.clone(), text);
                } else if let Some(var) = item.get("environment").and_then(Tree::as_str)
                    && let Some(text) = environment.get(var)
                {
                    found.add(key.clone(), text);
                }
            }
        }
    }
    strings(model, &mut |s| {
        found.shapes("a value in the compose files", s)
    });
}

/// A map (`KEY: value`) or list (`KEY=value`) of variables.
fn env_like(t: &Tree, path: &str, found: &mut Found) {
    let mut one = |k: &str, v: &str| {
        if redact::is_secret_entry(k, v) {
            found.add(format!("{path}.{k}"), v);
        }
    };
    match t {
        Tree::Object(m) => {
            for (k, v) in m {
                if let Some(v) = v.as_str() {
                    one(k, v);
                }
            }
        }
        Tree::Array(a) => {
            for e in a.iter().filter_map(Tree::as_str) {
                if let Some((k, v)) = e.split_once('=') {
                    one(k, v);
                }
            }
        }
        _ => {}
    }
}

fn strings(t: &Tree, f: &mut dyn FnMut(&str)) {
    match t {
        Tree::String(s) => f(s),
        Tree::Array(a) => a.iter().for_each(|v| strings(v, f)),
        Tree::Object(m) => m.values().for_each(|v| strings(v, f)),
        _ => {}
    }
}

fn small_file(path: &str) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    (meta.is_file() && meta.len() <= MAX_SECRET_FILE)
        .then(|| std::fs::read_to_string(path).ok())
        .flatten()
}

/// Names the desired state makes public: image path components, service, network and volume
/// names, the project name.
fn public_identifiers(model: &Tree, project: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::from([project.to_string()]);
    if let Some(Tree::Object(services)) = model.get("services") {
        for (name, svc) in services {
            ids.insert(name.clone());
            if let Some(c) = svc.get("container_name").and_then(Tree::as_str) {
                ids.insert(c.to_string());
            }
            if let Some(image) = svc.get("image").and_then(Tree::as_str) {
                ids.extend(image_components(image));
            }
        }
    }
    for kind in ["networks", "volumes"] {
        if let Some(Tree::Object(items)) = model.get(kind) {
            for (key, item) in items {
                ids.insert(key.clone());
                if let Some(n) = item.get("name").and_then(Tree::as_str) {
                    ids.insert(n.to_string());
                }
            }
        }
    }
    ids
}

/// `ghcr.io/org/app:1.2@sha256:…` → `ghcr.io`, `org`, `app`, `ghcr.io/org/app`.
fn image_components(image: &str) -> Vec<String> {
    let no_digest = image.split('@').next().unwrap_or_default();
    let repo = match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    };
    let mut out: Vec<String> = repo
        .split('/')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    out.push(repo.to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(pairs: &[(&str, &str)]) -> Environment {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_secret_equal_to_an_image_name_is_public_and_warned_about() {
        let model = json!({"services": {"db": {"image": "postgres:16"}}});
        let s = collect(
            &env(&[("ADMIN_TOKEN", "postgres")]),
            &BTreeSet::new(),
            &model,
            "app",
            "services:\n  db:\n    image: postgres:16\n",
        );
        assert!(s.values.is_empty());
        assert_eq!(s.warnings.len(), 1);
        assert!(
            s.warnings[0].starts_with("ADMIN_TOKEN:"),
            "{}",
            s.warnings[0]
        );
        assert!(!s.warnings[0].contains("postgres"));
        let r = redact::Redactor::new(s.values);
        assert_eq!(r.text("image: postgres:16"), "image: postgres:16");
    }

    #[test]
    fn a_secret_interpolated_into_a_name_stays_secret() {
        // A repo author cannot make the host's secret public by naming an image after it.
        let model = json!({"services": {"db": {"image": "Zq9xK7-longsecret"}}});
        let s = collect(
            &env(&[("DB_PASSWORD", "Zq9xK7-longsecret")]),
            &BTreeSet::new(),
            &model,
            "app",
            "services:\n  db:\n    image: ${DB_PASSWORD}\n",
        );
        assert_eq!(s.values, vec!["Zq9xK7-longsecret".to_string()]);
        assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    }

    #[test]
    fn secrets_are_collected_from_every_source() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db_pass.txt");
        std::fs::write(&file, "file-secret-value\n").unwrap();
        let model = json!({
            "services": {"web": {
                "image": "ghcr.io/org/web:1",
                "environment": {"MYSQLPASSWORD": "literal-map", "HOST": "db",
                                "DATABASE_URL": "postgres://u:url-pass@db/x", "REDIS_URL": "redis://cache:6379"},
                "build": {"args": ["NPM_TOKEN=build-arg-value"]},
                "command": ["--token", "ghp_abcdefghijklmnopqrstuvwxyz0123"]}},
            "secrets": {"s": {"file": file.to_str().unwrap()}, "e": {"environment": "PLAIN"}},
            "configs": {"c": {"content": "config-content"}}});
        let s = collect(
            &env(&[
                ("DB_PASSWORD", "from-dotenv"),
                ("PLAIN", "env-sourced"),
                ("HOME", "/root"),
                ("BACKUP_SEED", "declared-empty"),
            ]),
            &BTreeSet::from(["BACKUP_SEED".to_string()]),
            &model,
            "app",
            "",
        );
        for want in [
            "declared-empty",
            "from-dotenv",
            "literal-map",
            "postgres://u:url-pass@db/x",
            "url-pass",
            "build-arg-value",
            "file-secret-value\n",
            "file-secret-value",
            "env-sourced",
            "config-content",
            "ghp_abcdefghijklmnopqrstuvwxyz0123",
        ] {
            assert!(
                s.values.contains(&want.to_string()),
                "{want} missing: {:?}",
                s.values
            );
        }
        for not in ["db", "redis://cache:6379", "/root"] {
            assert!(!s.values.contains(&not.to_string()), "{not}");
        }
    }

    #[test]
    fn a_short_secret_is_kept_and_warned_about_by_key() {
        let s = collect(
            &env(&[("DB_PASSWORD", "abc12")]),
            &BTreeSet::new(),
            &json!({}),
            "app",
            "",
        );
        assert_eq!(s.values, vec!["abc12".to_string()]);
        assert!(s.warnings[0].starts_with("DB_PASSWORD:") && !s.warnings[0].contains("abc12"));
    }

    #[test]
    fn loading_collects_every_source_and_leaves_public_names_alone() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join(".env"),
            "ADMIN_TOKEN=postgres\nAPI_KEY=dotenv-secret-1\n",
        )
        .unwrap();
        std::fs::write(d.join("web.env"), "MYSQLPASSWORD=envfile-secret-2\n").unwrap();
        std::fs::write(
            d.join("compose.yaml"),
            "services:\n  db:\n    image: postgres:16\n    env_file: [web.env]\n    environment:\n      - SMTP_PASS=literal-secret-3\n      - PGPASSWORD=abc12\n",
        )
        .unwrap();
        let req = crate::desired::Request {
            desired_state: Some(d.to_path_buf()),
            files: Vec::new(),
            env_files: Vec::new(),
            project_name: Some("app".into()),
            project_directory: None,
            profiles: Vec::new(),
            shell_env: Environment::new(),
            cwd: d.to_path_buf(),
        };
        let p = crate::desired::load(&req).unwrap();
        for want in [
            "dotenv-secret-1",
            "envfile-secret-2",
            "literal-secret-3",
            "abc12",
        ] {
            assert!(
                p.secret_values.contains(&want.to_string()),
                "{want}: {:?}",
                p.secret_values
            );
        }
        assert!(!p.secret_values.contains(&"postgres".to_string()));
        let mut model = p.model.clone();
        redact::Redactor::new(p.secret_values.clone()).tree(&mut model);
        assert_eq!(model["services"]["db"]["image"], "postgres:16");
        assert_eq!(
            model["services"]["db"]["environment"]["SMTP_PASS"],
            redact::REDACTED
        );
        let warnings = p.warnings.join("\n");
        assert!(
            warnings.contains("ADMIN_TOKEN:") && warnings.contains("PGPASSWORD"),
            "{warnings}"
        );
        assert!(
            !warnings.contains("abc12") && !warnings.contains("postgres:"),
            "{warnings}"
        );
        assert_eq!(redact::scrub("x envfile-secret-2 y"), "x <redacted> y");
    }
}
