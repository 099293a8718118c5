//! The host input layer: the env files on disk against `.env.example`, and the folder's files against the git revision.

use std::collections::BTreeMap;

use super::repo::env_keys;
use super::{COMPOSE_PREFIX, Finding, Kind, Layer, LayerReport};
use crate::redact;

/// An env file of the host: its name as shown and its text (`None` when it does not exist).
#[derive(Clone, Debug)]
pub struct EnvText {
    pub name: String,
    pub text: Option<String>,
}

/// How a file of the folder stands against the commit checked out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileState {
    /// Exactly as committed.
    Committed,
    /// Committed, but changed since (in the work tree or the index).
    Modified,
    /// Not in the commit (untracked, ignored, only staged, or outside the repository).
    NotCommitted,
}

/// What git says about the folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GitView {
    /// No revision to compare with; the reason says which (no work tree, no commit, no git).
    Unavailable { reason: String },
    At {
        /// The commit checked out (`HEAD`).
        commit: String,
        /// The compose files, `spindle.yaml` and `.env.example`, by shown name.
        files: Vec<(String, FileState)>,
        /// Env files git tracks (in the index or in `HEAD`), by shown name.
        tracked_env: Vec<String>,
    },
}

/// Checks the host's env files against `.env.example` (text, `None` when absent) and the git view.
pub fn host_input(example: Option<&str>, env_files: &[EnvText], git: &GitView) -> LayerReport {
    let layer = Layer::HostInput;
    let mut findings = Vec::new();
    let mut checked = 0;
    let shown = env_files
        .first()
        .map(|e| e.name.clone())
        .unwrap_or_else(|| ".env".to_string());

    // Later env files win, like the loader; a key is set when any file sets it.
    let mut set: BTreeMap<String, (String, bool)> = BTreeMap::new();
    for e in env_files {
        let Some(text) = &e.text else { continue };
        checked += 1;
        match env_keys(text) {
            Ok(keys) => {
                for (k, v) in keys {
                    set.insert(k, (e.name.clone(), !v.is_empty()));
                }
            }
            Err(err) => findings.push(
                Finding::new(
                    layer,
                    Kind::Invalid,
                    &e.name,
                    format!("{} does not parse ({err}): fix it", e.name),
                )
                .expected("an env file that parses"),
            ),
        }
    }

    // Without a readable `.env.example` there is nothing to hold the env files to; the repo
    // truth layer fails for it.
    if let Some(Ok(declared)) = example.map(env_keys) {
        for (key, _) in declared.iter() {
            checked += 1;
            match set.get(key) {
                None => findings.push(
                    Finding::new(
                        layer,
                        Kind::Missing,
                        format!("{shown}:{key}"),
                        format!(
                            "{key} is declared in .env.example but not set in {shown}: set it in {shown}"
                        ),
                    )
                    .expected("set"),
                ),
                Some((file, false)) if redact::is_secret_key(key) => findings.push(
                    Finding::new(
                        layer,
                        Kind::Missing,
                        format!("{file}:{key}"),
                        format!(
                            "{key} looks like a secret and is empty in {file}: give it a value in {file}"
                        ),
                    )
                    .expected("a non-empty value")
                    .actual("empty"),
                ),
                Some(_) => {}
            }
        }
        for (key, (file, _)) in &set {
            if !declared.contains_key(key) && !key.starts_with(COMPOSE_PREFIX) {
                findings.push(
                    Finding::new(
                        layer,
                        Kind::Stale,
                        format!("{file}:{key}"),
                        format!(
                            "{key} is set in {file} but .env.example does not declare it: declare it in .env.example, or remove it from {file}"
                        ),
                    )
                    .actual("set"),
                );
            }
        }
    }

    match git {
        GitView::Unavailable { reason } => findings.push(
            Finding::new(
                layer,
                Kind::Unverifiable,
                "git",
                format!(
                    "{reason}: the host's files cannot be proven to match a revision; keep the desired-state folder a git checkout"
                ),
            )
            .expected("a git work tree with a commit"),
        ),
        GitView::At {
            commit,
            files,
            tracked_env,
        } => {
            let short = commit.get(..12).unwrap_or(commit);
            for (name, state) in files {
                checked += 1;
                let (actual, what) = match state {
                    FileState::Committed => continue,
                    FileState::Modified => (
                        "modified",
                        format!(
                            "{name} differs from commit {short}: commit the change, or restore the file (git checkout -- {name})"
                        ),
                    ),
                    FileState::NotCommitted => (
                        "not committed",
                        format!(
                            "{name} is not in commit {short}: commit it (and keep it out of .gitignore)"
                        ),
                    ),
                };
                findings.push(
                    Finding::new(layer, Kind::Contradicted, name, what)
                        .expected(format!("as in commit {commit}"))
                        .actual(actual),
                );
            }
            for name in tracked_env {
                checked += 1;
                findings.push(
                    Finding::new(
                        layer,
                        Kind::Exposed,
                        name,
                        format!(
                            "{name} is tracked by git, so its secrets are in the repository: git rm --cached {name}, add it to .gitignore, commit, and rotate the secrets it held"
                        ),
                    )
                    .expected("untracked")
                    .actual("tracked"),
                );
            }
        }
    }
    LayerReport::new(layer, checked, findings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Status;

    fn env(text: &str) -> Vec<EnvText> {
        vec![EnvText {
            name: ".env".into(),
            text: Some(text.into()),
        }]
    }

    fn clean() -> GitView {
        GitView::At {
            commit: "0123456789abcdef0123".into(),
            files: vec![
                ("compose.yaml".into(), FileState::Committed),
                (".env.example".into(), FileState::Committed),
            ],
            tracked_env: vec![],
        }
    }

    fn kinds(r: &LayerReport) -> Vec<(Kind, String)> {
        r.findings
            .iter()
            .map(|f| (f.kind, f.path.clone()))
            .collect()
    }

    const EXAMPLE: &str = "HOST=db\nDB_PASSWORD=\nCOMPOSE_PROFILES=\n";

    /// What, the env files, the git view, the findings expected.
    type Row = (
        &'static str,
        Vec<EnvText>,
        GitView,
        Vec<(Kind, &'static str)>,
    );

    #[test]
    fn the_host_input_table() {
        let rows: Vec<Row> = vec![
            (
                "all set and committed",
                env("HOST=db\nDB_PASSWORD=s3cret-value\nCOMPOSE_PROFILES=x\n"),
                clean(),
                vec![],
            ),
            (
                "a key of .env.example not in .env",
                env("DB_PASSWORD=s3cret-value\nCOMPOSE_PROFILES=\n"),
                clean(),
                vec![(Kind::Missing, ".env:HOST")],
            ),
            (
                "a secret left empty",
                env("HOST=db\nDB_PASSWORD=\nCOMPOSE_PROFILES=\n"),
                clean(),
                vec![(Kind::Missing, ".env:DB_PASSWORD")],
            ),
            (
                "a key .env.example does not declare",
                env("HOST=db\nDB_PASSWORD=x\nCOMPOSE_PROFILES=\nEXTRA=1\nCOMPOSE_FILE=a\n"),
                clean(),
                vec![(Kind::Stale, ".env:EXTRA")],
            ),
            (
                "no .env at all",
                vec![EnvText {
                    name: ".env".into(),
                    text: None,
                }],
                clean(),
                vec![
                    (Kind::Missing, ".env:COMPOSE_PROFILES"),
                    (Kind::Missing, ".env:DB_PASSWORD"),
                    (Kind::Missing, ".env:HOST"),
                ],
            ),
            (
                "files differ from the commit and .env is tracked",
                env("HOST=db\nDB_PASSWORD=x\nCOMPOSE_PROFILES=\n"),
                GitView::At {
                    commit: "abc".into(),
                    files: vec![
                        ("compose.yaml".into(), FileState::Modified),
                        ("compose.extra.yaml".into(), FileState::NotCommitted),
                        (".env.example".into(), FileState::Committed),
                    ],
                    tracked_env: vec![".env".into()],
                },
                vec![
                    (Kind::Contradicted, "compose.yaml"),
                    (Kind::Contradicted, "compose.extra.yaml"),
                    (Kind::Exposed, ".env"),
                ],
            ),
            (
                "no git work tree",
                env("HOST=db\nDB_PASSWORD=x\nCOMPOSE_PROFILES=\n"),
                GitView::Unavailable {
                    reason: "/srv/x is not in a git work tree".into(),
                },
                vec![(Kind::Unverifiable, "git")],
            ),
            (
                "an unparsable .env",
                env("BAD KEY=1\n"),
                clean(),
                vec![
                    (Kind::Invalid, ".env"),
                    (Kind::Missing, ".env:COMPOSE_PROFILES"),
                    (Kind::Missing, ".env:DB_PASSWORD"),
                    (Kind::Missing, ".env:HOST"),
                ],
            ),
        ];
        for (what, files, git, want) in rows {
            let r = host_input(Some(EXAMPLE), &files, &git);
            let want: Vec<(Kind, String)> = want.iter().map(|(k, p)| (*k, p.to_string())).collect();
            assert_eq!(kinds(&r), want, "{what}");
            assert_eq!(
                r.status == Status::Fail,
                want.iter().any(|(k, _)| k.fails()),
                "{what}"
            );
        }
    }

    #[test]
    fn a_contradicted_file_names_the_revision() {
        let r = host_input(
            None,
            &env(""),
            &GitView::At {
                commit: "0123456789abcdef".into(),
                files: vec![("compose.yaml".into(), FileState::Modified)],
                tracked_env: vec![],
            },
        );
        assert_eq!(
            r.findings[0].expected.as_deref(),
            Some("as in commit 0123456789abcdef")
        );
        assert!(r.findings[0].message.contains("0123456789ab"));
    }

    #[test]
    fn no_value_of_an_env_file_reaches_a_finding() {
        let r = host_input(
            Some("DB_PASSWORD=\n"),
            &env("DB_PASSWORD=hunter2-long\nOTHER_SECRET=also-secret\n"),
            &clean(),
        );
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("hunter2-long") && !text.contains("also-secret"));
        assert_eq!(kinds(&r), vec![(Kind::Stale, ".env:OTHER_SECRET".into())]);
    }
}
