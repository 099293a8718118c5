//! The `x-spindle.pre-recreate` hook of a service: its validated shape and the artifact path template (pure, Docker-free).
//!
//! ```yaml
//! x-spindle:
//!   pre-recreate:
//!     exec: pg_dump -U app app > "$$SPINDLE_ARTIFACT"   # or run: …, exactly one of the two
//!     timeout: 2m                                        # default 5m
//!     artifact: /backup/db-{timestamp}.sql               # optional
//! ```
//!
//! `docs/desired-state.md` describes every key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::tree::Tree;

/// The timeout of a hook that names none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// The keys `x-spindle.pre-recreate` accepts.
const KEYS: &[&str] = &[
    "exec", "run", "image", "volumes", "networks", "timeout", "artifact",
];

/// What runs before a service's container is recreated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PreRecreate {
    pub mode: HookMode,
    pub timeout: Duration,
    pub artifact: Option<ArtifactTemplate>,
}

/// Where the hook runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum HookMode {
    /// In the running (old) container, like `docker compose exec`.
    Exec { command: Vec<String> },
    /// In a one-off container, like `docker compose run --rm`.
    Run(RunSpec),
}

impl HookMode {
    pub fn word(&self) -> &'static str {
        match self {
            Self::Exec { .. } => "exec",
            Self::Run(_) => "run",
        }
    }

    pub fn command(&self) -> &[String] {
        match self {
            Self::Exec { command } => command,
            Self::Run(r) => &r.command,
        }
    }
}

/// A one-off container's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunSpec {
    pub command: Vec<String>,
    /// `None`: the image the old container runs.
    pub image: Option<String>,
    /// `None`: the old container's volumes (all its mounts).
    pub volumes: Option<Vec<HookMount>>,
    /// Attach the one-off container to the service's networks (else it has no network).
    pub networks: bool,
}

/// One entry of `volumes:` in Compose's short syntax.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HookMount {
    pub source: MountSource,
    pub target: String,
    pub read_only: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MountSource {
    /// A volume declared in the project's top-level `volumes:`, by key.
    Volume(String),
    /// A host path (absolute; a relative one was resolved against the project folder).
    Bind(PathBuf),
}

/// A path template: text with `{timestamp}`, `{service}` and `{project}` placeholders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "String")]
pub struct ArtifactTemplate(Vec<Part>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Text(String),
    Timestamp,
    Service,
    Project,
}

impl From<ArtifactTemplate> for String {
    fn from(t: ArtifactTemplate) -> String {
        t.0.iter()
            .map(|p| match p {
                Part::Text(s) => s.clone(),
                Part::Timestamp => "{timestamp}".into(),
                Part::Service => "{service}".into(),
                Part::Project => "{project}".into(),
            })
            .collect()
    }
}

/// What a template's placeholders stand for.
pub struct ArtifactVars<'a> {
    /// As [`compact_timestamp`] writes it.
    pub timestamp: &'a str,
    pub service: &'a str,
    pub project: &'a str,
}

impl ArtifactTemplate {
    /// Parses a template; `{` must open a known placeholder.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Err("must not be empty".into());
        }
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = s;
        while let Some(open) = rest.find(['{', '}']) {
            text.push_str(&rest[..open]);
            if rest[open..].starts_with('}') {
                return Err(format!(
                    "unmatched }} at position {}; placeholders are {{timestamp}}, {{service}} and {{project}}",
                    s.len() - rest.len() + open
                ));
            }
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else {
                return Err(
                    "unclosed {; placeholders are {timestamp}, {service} and {project}".into(),
                );
            };
            let part = match &after[..close] {
                "timestamp" => Part::Timestamp,
                "service" => Part::Service,
                "project" => Part::Project,
                other => {
                    return Err(format!(
                        "unknown placeholder {{{other}}}; use {{timestamp}}, {{service}} or {{project}}"
                    ));
                }
            };
            if !text.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut text)));
            }
            parts.push(part);
            rest = &after[close + 1..];
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text));
        }
        Ok(Self(parts))
    }

    /// The path with its placeholders filled in.
    pub fn render(&self, vars: &ArtifactVars<'_>) -> String {
        self.0
            .iter()
            .map(|p| match p {
                Part::Text(s) => s.as_str(),
                Part::Timestamp => vars.timestamp,
                Part::Service => vars.service,
                Part::Project => vars.project,
            })
            .collect()
    }
}

/// A UTC time as `20261130T044700Z`: sortable and safe in file names.
pub fn compact_timestamp(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_seconds(t)
        .to_string()
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect()
}

/// A validation error: the key path below `x-spindle.pre-recreate` and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct HookError {
    /// `pre-recreate.timeout`, `pre-recreate.volumes[1]`, …
    pub path: String,
    pub message: String,
}

fn err(path: &str, message: impl Into<String>) -> HookError {
    HookError {
        path: format!("pre-recreate{path}"),
        message: message.into(),
    }
}

/// What the parser needs to know about the project.
pub struct HookContext<'a> {
    /// Is this a key of the project's top-level `volumes:`?
    pub volume_declared: &'a dyn Fn(&str) -> bool,
    /// Relative bind paths resolve against it.
    pub working_dir: &'a Path,
}

/// Parses and validates `x-spindle.pre-recreate`.
pub fn parse(v: &Tree, cx: &HookContext<'_>) -> Result<PreRecreate, HookError> {
    let Some(m) = v.as_object() else {
        return Err(err(
            "",
            "must be a mapping with exec or run (and optionally timeout, artifact)",
        ));
    };
    if let Some(k) = m.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(err(
            &format!(".{k}"),
            format!("unknown key; allowed are {}", KEYS.join(", ")),
        ));
    }
    let mode = match (m.get("exec"), m.get("run")) {
        (Some(_), Some(_)) => {
            return Err(err(
                "",
                "has both exec and run; use exec to run in the old container, or run for a one-off container",
            ));
        }
        (None, None) => {
            return Err(err(
                "",
                "needs exec (a command in the old container) or run (a command in a one-off container)",
            ));
        }
        (Some(c), None) => {
            for k in ["image", "volumes", "networks"] {
                if m.contains_key(k) {
                    return Err(err(
                        &format!(".{k}"),
                        "is only allowed with run (a one-off container); exec runs in the old container as it is",
                    ));
                }
            }
            HookMode::Exec {
                command: command(c, ".exec")?,
            }
        }
        (None, Some(c)) => HookMode::Run(RunSpec {
            command: command(c, ".run")?,
            image: match m.get("image") {
                None => None,
                Some(Tree::String(s)) if !s.trim().is_empty() => Some(s.clone()),
                Some(_) => return Err(err(".image", "must be an image reference")),
            },
            volumes: match m.get("volumes") {
                None => None,
                Some(Tree::Array(a)) => Some(
                    a.iter()
                        .enumerate()
                        .map(|(i, e)| mount(e, i, cx))
                        .collect::<Result<_, _>>()?,
                ),
                Some(_) => {
                    return Err(err(
                        ".volumes",
                        "must be a list like [\"backup:/backup\", \"./dumps:/dumps:ro\"]",
                    ));
                }
            },
            networks: match m.get("networks") {
                None => false,
                Some(Tree::Bool(b)) => *b,
                Some(_) => {
                    return Err(err(
                        ".networks",
                        "must be true (the service's networks) or false (no network)",
                    ));
                }
            },
        }),
    };
    let timeout = match m.get("timeout") {
        None => DEFAULT_TIMEOUT,
        Some(Tree::String(s)) => {
            let d = crate::spec::units::duration_ns(s)
                .and_then(|ns| u64::try_from(ns).ok())
                .map(Duration::from_nanos)
                .ok_or_else(|| {
                    err(
                        ".timeout",
                        "is not a duration; write it like 30s, 5m or 1m30s",
                    )
                })?;
            if d.is_zero() {
                return Err(err(".timeout", "must be longer than zero"));
            }
            d
        }
        Some(_) => {
            return Err(err(
                ".timeout",
                "must be a duration string like 30s, 5m or 1m30s",
            ));
        }
    };
    let artifact = match m.get("artifact") {
        None => None,
        Some(Tree::String(s)) => Some(ArtifactTemplate::parse(s).map_err(|e| err(".artifact", e))?),
        Some(_) => {
            return Err(err(
                ".artifact",
                "must be a path, like /backup/db-{timestamp}.sql.gz",
            ));
        }
    };
    Ok(PreRecreate {
        mode,
        timeout,
        artifact,
    })
}

/// A string runs with `sh -c`; a list is the command and its arguments.
fn command(v: &Tree, at: &str) -> Result<Vec<String>, HookError> {
    match v {
        Tree::String(s) if !s.trim().is_empty() => Ok(vec!["sh".into(), "-c".into(), s.clone()]),
        Tree::Array(a) if !a.is_empty() => a
            .iter()
            .enumerate()
            .map(|(i, x)| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| err(&format!("{at}[{i}]"), "must be a string"))
            })
            .collect(),
        _ => Err(err(
            at,
            "must be a command: a string (run with sh -c) or a non-empty list of strings",
        )),
    }
}

fn mount(v: &Tree, i: usize, cx: &HookContext<'_>) -> Result<HookMount, HookError> {
    let at = format!(".volumes[{i}]");
    let Some(s) = v.as_str() else {
        return Err(err(
            &at,
            "must be a string in Compose's short syntax, SOURCE:TARGET[:ro|rw]",
        ));
    };
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target, read_only) = match parts.as_slice() {
        [src, dst] => (*src, *dst, false),
        [src, dst, "ro"] => (*src, *dst, true),
        [src, dst, "rw"] => (*src, *dst, false),
        [_, _, _] => {
            return Err(err(&at, "has an unknown mode; use ro or rw"));
        }
        _ => {
            return Err(err(
                &at,
                "must be SOURCE:TARGET[:ro|rw], e.g. backup:/backup or ./dumps:/dumps",
            ));
        }
    };
    if source.is_empty() {
        return Err(err(&at, "has an empty source"));
    }
    if !target.starts_with('/') {
        return Err(err(
            &at,
            "the target must be an absolute path in the container",
        ));
    }
    let source = if source.starts_with('/') {
        MountSource::Bind(PathBuf::from(source))
    } else if source.starts_with('.') {
        MountSource::Bind(cx.working_dir.join(source))
    } else if source.starts_with('~') {
        return Err(err(
            &at,
            "~ is not expanded here; write the absolute host path",
        ));
    } else if (cx.volume_declared)(source) {
        MountSource::Volume(source.to_string())
    } else {
        return Err(err(
            &at,
            format!(
                "volume {} is not declared in the top-level volumes; declare it, or write a host path (./dir or /dir)",
                crate::redact::echo(source, 40)
            ),
        ));
    };
    Ok(HookMount {
        source,
        target: target.to_string(),
        read_only,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cx_parse(v: Tree) -> Result<PreRecreate, HookError> {
        let declared = |k: &str| k == "backup";
        parse(
            &v,
            &HookContext {
                volume_declared: &declared,
                working_dir: Path::new("/srv/app"),
            },
        )
    }

    #[test]
    fn valid_hooks_parse_into_their_mode_timeout_and_artifact() {
        let cases: Vec<(Tree, PreRecreate)> = vec![
            (
                json!({"exec": "pg_dump > /backup/x.sql"}),
                PreRecreate {
                    mode: HookMode::Exec {
                        command: vec!["sh".into(), "-c".into(), "pg_dump > /backup/x.sql".into()],
                    },
                    timeout: DEFAULT_TIMEOUT,
                    artifact: None,
                },
            ),
            (
                json!({"exec": ["tar", "czf", "/b.tgz", "/data"], "timeout": "1m30s",
                       "artifact": "/b.tgz"}),
                PreRecreate {
                    mode: HookMode::Exec {
                        command: vec!["tar".into(), "czf".into(), "/b.tgz".into(), "/data".into()],
                    },
                    timeout: Duration::from_secs(90),
                    artifact: ArtifactTemplate::parse("/b.tgz").ok(),
                },
            ),
            (
                json!({"run": ["true"], "image": "alpine:3", "networks": true, "timeout": "500ms",
                       "volumes": ["backup:/backup", "./dumps:/dumps:ro", "/var/b:/b:rw"]}),
                PreRecreate {
                    mode: HookMode::Run(RunSpec {
                        command: vec!["true".into()],
                        image: Some("alpine:3".into()),
                        volumes: Some(vec![
                            HookMount {
                                source: MountSource::Volume("backup".into()),
                                target: "/backup".into(),
                                read_only: false,
                            },
                            HookMount {
                                source: MountSource::Bind(PathBuf::from("/srv/app/./dumps")),
                                target: "/dumps".into(),
                                read_only: true,
                            },
                            HookMount {
                                source: MountSource::Bind(PathBuf::from("/var/b")),
                                target: "/b".into(),
                                read_only: false,
                            },
                        ]),
                        networks: true,
                    }),
                    timeout: Duration::from_millis(500),
                    artifact: None,
                },
            ),
            (
                json!({"run": "echo hi"}),
                PreRecreate {
                    mode: HookMode::Run(RunSpec {
                        command: vec!["sh".into(), "-c".into(), "echo hi".into()],
                        image: None,
                        volumes: None,
                        networks: false,
                    }),
                    timeout: DEFAULT_TIMEOUT,
                    artifact: None,
                },
            ),
        ];
        for (input, want) in cases {
            assert_eq!(cx_parse(input.clone()), Ok(want), "{input}");
        }
    }

    #[test]
    fn invalid_hooks_are_refused_with_the_key_path() {
        let cases: Vec<(Tree, &str, &str)> = vec![
            (json!("echo"), "pre-recreate", "must be a mapping"),
            (json!({}), "pre-recreate", "needs exec"),
            (
                json!({"exec": "a", "run": "b"}),
                "pre-recreate",
                "both exec and run",
            ),
            (
                json!({"exec": "a", "timout": "1s"}),
                "pre-recreate.timout",
                "unknown key",
            ),
            (
                json!({"exec": "a", "timeout": "soon"}),
                "pre-recreate.timeout",
                "not a duration",
            ),
            (
                json!({"exec": "a", "timeout": 5}),
                "pre-recreate.timeout",
                "duration string",
            ),
            (
                json!({"exec": "a", "timeout": "0s"}),
                "pre-recreate.timeout",
                "longer than zero",
            ),
            (
                json!({"exec": ""}),
                "pre-recreate.exec",
                "must be a command",
            ),
            (
                json!({"exec": []}),
                "pre-recreate.exec",
                "must be a command",
            ),
            (
                json!({"exec": ["a", 1]}),
                "pre-recreate.exec[1]",
                "must be a string",
            ),
            (
                json!({"exec": "a", "image": "x"}),
                "pre-recreate.image",
                "only allowed with run",
            ),
            (
                json!({"run": "a", "image": ""}),
                "pre-recreate.image",
                "image reference",
            ),
            (
                json!({"run": "a", "networks": "yes"}),
                "pre-recreate.networks",
                "must be true",
            ),
            (
                json!({"run": "a", "volumes": "backup:/b"}),
                "pre-recreate.volumes",
                "must be a list",
            ),
            (
                json!({"run": "a", "volumes": ["nope:/b"]}),
                "pre-recreate.volumes[0]",
                "not declared",
            ),
            (
                json!({"run": "a", "volumes": ["backup:/b", "backup:rel"]}),
                "pre-recreate.volumes[1]",
                "absolute path",
            ),
            (
                json!({"run": "a", "volumes": ["backup:/b:rx"]}),
                "pre-recreate.volumes[0]",
                "unknown mode",
            ),
            (
                json!({"run": "a", "volumes": ["backup"]}),
                "pre-recreate.volumes[0]",
                "SOURCE:TARGET",
            ),
            (
                json!({"exec": "a", "artifact": "/b/{date}.sql"}),
                "pre-recreate.artifact",
                "unknown placeholder {date}",
            ),
            (
                json!({"exec": "a", "artifact": 3}),
                "pre-recreate.artifact",
                "must be a path",
            ),
        ];
        for (input, path, words) in cases {
            let e = cx_parse(input.clone()).expect_err(&input.to_string());
            assert_eq!(e.path, path, "{input}");
            assert!(e.message.contains(words), "{input}: {}", e.message);
        }
    }

    #[test]
    fn artifact_templates_fill_in_their_placeholders() {
        let vars = ArtifactVars {
            timestamp: "20261130T044700Z",
            service: "db",
            project: "shop",
        };
        let cases = [
            ("/backup/db.sql", "/backup/db.sql"),
            (
                "/backup/{service}-{timestamp}.sql.gz",
                "/backup/db-20261130T044700Z.sql.gz",
            ),
            ("{project}/{service}", "shop/db"),
            ("{timestamp}", "20261130T044700Z"),
        ];
        for (template, want) in cases {
            let t = ArtifactTemplate::parse(template).expect(template);
            assert_eq!(t.render(&vars), want, "{template}");
            assert_eq!(String::from(t), template, "round trip of {template}");
        }
    }

    #[test]
    fn malformed_artifact_templates_are_refused() {
        for (template, words) in [
            ("", "empty"),
            ("/b/{timestamp", "unclosed"),
            ("/b/}x", "unmatched"),
            ("/b/{}", "unknown placeholder"),
            ("/b/{Timestamp}", "unknown placeholder"),
        ] {
            let e = ArtifactTemplate::parse(template).expect_err(template);
            assert!(e.contains(words), "{template}: {e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_template_of_text_and_placeholders_round_trips_and_renders_piecewise(
            pieces in proptest::collection::vec(
                proptest::prop_oneof![
                    "[a-z0-9/._-]{0,8}",
                    proptest::strategy::Just("{timestamp}".to_string()),
                    proptest::strategy::Just("{service}".to_string()),
                    proptest::strategy::Just("{project}".to_string()),
                ],
                1..8,
            )
        ) {
            let text: String = pieces.concat();
            proptest::prop_assume!(!text.trim().is_empty());
            let t = ArtifactTemplate::parse(&text).map_err(proptest::test_runner::TestCaseError::fail)?;
            proptest::prop_assert_eq!(String::from(t.clone()), text.clone());
            let vars = ArtifactVars { timestamp: "T", service: "S", project: "P" };
            let want: String = pieces
                .iter()
                .map(|p| match p.as_str() {
                    "{timestamp}" => "T",
                    "{service}" => "S",
                    "{project}" => "P",
                    other => other,
                })
                .collect();
            proptest::prop_assert_eq!(t.render(&vars), want);
        }
    }

    #[test]
    fn the_compact_timestamp_is_utc_and_file_name_safe() {
        let t = std::time::UNIX_EPOCH + Duration::from_secs(1_796_013_620);
        assert_eq!(compact_timestamp(t), "20261130T044020Z");
    }
}
