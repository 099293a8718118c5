//! The repo truth layer: every variable the compose files interpolate without a default is declared in `.env.example`, and every key there is used.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use super::{COMPOSE_PREFIX, Finding, Kind, Layer, LayerReport};
use crate::desired::tree::Tree;
use crate::desired::{dotenv, interpolate, yaml};

/// A compose file of the folder: its name as shown (relative to the folder) and its text
/// (`None` when it does not exist).
#[derive(Clone, Debug)]
pub struct ComposeText {
    pub name: String,
    pub text: Option<String>,
}

/// The keys an env file declares, bare `KEY` lines included. The error never holds a value.
pub fn env_keys(text: &str) -> Result<BTreeMap<String, String>, dotenv::DotenvError> {
    Ok(dotenv::parse(text, &|_| Some(String::new()))?
        .into_iter()
        .collect())
}

/// What the compose files read from the environment.
#[derive(Debug, Default)]
struct Uses {
    /// Every variable read, with or without a default.
    used: BTreeSet<String>,
    /// Variables read without a default, with the first place (`file: key path`).
    required: BTreeMap<String, String>,
}

/// Checks `.env.example` (its text, `None` when absent) against the compose files.
pub fn repo_truth(example: Option<&str>, files: &[ComposeText]) -> LayerReport {
    let layer = Layer::RepoTruth;
    let mut findings = Vec::new();
    let mut uses = Uses::default();
    for f in files {
        let Some(text) = &f.text else {
            findings.push(
                Finding::new(
                    layer,
                    Kind::Missing,
                    &f.name,
                    format!(
                        "{} is named by spindle.yaml but does not exist: add it, or remove it from spindle.yaml",
                        f.name
                    ),
                )
                .expected("a compose file"),
            );
            continue;
        };
        if let Err(message) = read_uses(&f.name, text, &mut uses) {
            findings.push(
                Finding::new(
                    layer,
                    Kind::Invalid,
                    &f.name,
                    format!("{message}: fix the file so that it parses"),
                )
                .expected("a compose file that parses"),
            );
        }
    }

    let Some(example) = example else {
        findings.insert(
            0,
            Finding::new(
                layer,
                Kind::Missing,
                ".env.example",
                "missing canonical truth: the folder has no .env.example; add one that declares every variable the compose files use (secrets with an empty value)",
            )
            .expected("a .env.example file"),
        );
        return LayerReport::new(layer, files.len() + uses.used.len(), findings);
    };
    let declared = match env_keys(example) {
        Ok(k) => k,
        Err(e) => {
            findings.insert(
                0,
                Finding::new(
                    layer,
                    Kind::Invalid,
                    ".env.example",
                    format!("missing canonical truth: .env.example does not parse ({e}); fix it"),
                )
                .expected("an env file that parses"),
            );
            return LayerReport::new(layer, files.len() + uses.used.len(), findings);
        }
    };

    for (name, place) in &uses.required {
        if !declared.contains_key(name) {
            findings.push(
                Finding::new(
                    layer,
                    Kind::Missing,
                    format!(".env.example:{name}"),
                    format!(
                        "{name} is interpolated without a default at {place} but .env.example does not declare it: add {name}= to .env.example (with a default value unless it is a secret)"
                    ),
                )
                .expected("declared"),
            );
        }
    }
    for key in declared.keys() {
        if !uses.used.contains(key) && !key.starts_with(COMPOSE_PREFIX) {
            findings.push(
                Finding::new(
                    layer,
                    Kind::Stale,
                    format!(".env.example:{key}"),
                    format!("no compose file uses {key}: remove it from .env.example, or use it"),
                )
                .actual("declared"),
            );
        }
    }
    let names: BTreeSet<&String> = declared.keys().chain(uses.used.iter()).collect();
    LayerReport::new(layer, files.len() + names.len(), findings)
}

fn read_uses(name: &str, text: &str, uses: &mut Uses) -> Result<(), String> {
    let docs = yaml::parse_file(Path::new(name), text).map_err(|e| e.to_string())?;
    for doc in docs {
        let refs = interpolate::tree_references(&doc.tree).map_err(|e| format!("{name}: {e}"))?;
        for (path, r) in refs {
            if r.required {
                uses.required
                    .entry(r.name.clone())
                    .or_insert_with(|| format!("{path} ({name})"));
            }
            uses.used.insert(r.name);
        }
        // `environment: [NAME]` (or `NAME:` with no value) passes NAME through from the environment.
        if let Some(Tree::Object(services)) = doc.tree.get("services") {
            for svc in services.values() {
                match svc.get("environment") {
                    Some(Tree::Array(items)) => {
                        for item in items.iter().filter_map(Tree::as_str) {
                            if !item.contains('=') {
                                uses.used.insert(item.trim().to_string());
                            }
                        }
                    }
                    Some(Tree::Object(map)) => {
                        for (k, v) in map {
                            if v.is_null() {
                                uses.used.insert(k.clone());
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::Status;

    fn file(name: &str, text: &str) -> ComposeText {
        ComposeText {
            name: name.into(),
            text: Some(text.into()),
        }
    }

    /// `(kind, path)` of every finding.
    fn kinds(r: &LayerReport) -> Vec<(Kind, String)> {
        r.findings
            .iter()
            .map(|f| (f.kind, f.path.clone()))
            .collect()
    }

    const COMPOSE: &str = "services:\n  web:\n    image: app:${TAG:-1}\n    environment:\n      DB_PASSWORD: ${DB_PASSWORD:?set it}\n      HOST: $HOST\n      PASS_THROUGH:\n      LIST_FORM: x\n    command: [\"echo\", \"$$NOT_A_VAR\"]\n";

    /// What, the `.env.example`, the findings expected.
    type Row = (
        &'static str,
        Option<&'static str>,
        &'static [(Kind, &'static str)],
    );

    #[test]
    fn the_repo_truth_table() {
        let rows: &[Row] = &[
            (
                "every variable declared and used",
                Some("TAG=1\nDB_PASSWORD=\nHOST=db\nPASS_THROUGH=\n"),
                &[],
            ),
            (
                "a defaulted variable need not be declared",
                Some("DB_PASSWORD=\nHOST=db\n"),
                &[],
            ),
            (
                "a variable without a default is missing",
                Some("TAG=1\nDB_PASSWORD=\n"),
                &[(Kind::Missing, ".env.example:HOST")],
            ),
            (
                "a required (:?) variable is missing",
                Some("HOST=db\n"),
                &[(Kind::Missing, ".env.example:DB_PASSWORD")],
            ),
            (
                "an unused key is stale, an escaped $$ is no use, COMPOSE_ keys are Compose's",
                Some("DB_PASSWORD=\nHOST=db\nOLD=1\nNOT_A_VAR=x\nCOMPOSE_PROFILES=a\n"),
                &[
                    (Kind::Stale, ".env.example:NOT_A_VAR"),
                    (Kind::Stale, ".env.example:OLD"),
                ],
            ),
            (
                "no .env.example is missing canonical truth",
                None,
                &[(Kind::Missing, ".env.example")],
            ),
            (
                "an unparsable .env.example is invalid",
                Some("BAD KEY=1\n"),
                &[(Kind::Invalid, ".env.example")],
            ),
        ];
        for (what, example, want) in rows {
            let r = repo_truth(*example, &[file("compose.yaml", COMPOSE)]);
            let want: Vec<(Kind, String)> = want.iter().map(|(k, p)| (*k, p.to_string())).collect();
            assert_eq!(kinds(&r), want, "{what}");
            let fails = want.iter().any(|(k, _)| k.fails());
            assert_eq!(r.status == Status::Fail, fails, "{what}");
        }
    }

    #[test]
    fn a_missing_key_names_where_it_is_used() {
        let r = repo_truth(
            Some("TAG=1\nDB_PASSWORD=\n"),
            &[file("compose.yaml", COMPOSE)],
        );
        assert!(
            r.findings[0]
                .message
                .contains("services.web.environment.HOST (compose.yaml)"),
            "{}",
            r.findings[0].message
        );
    }

    #[test]
    fn a_compose_file_that_does_not_parse_or_does_not_exist_fails() {
        let r = repo_truth(
            Some("A=1\n"),
            &[
                file("compose.yaml", "services:\n  web:\n    image: ${A}\n"),
                file("bad.yaml", "services: [\n"),
                file("tmpl.yaml", "services:\n  web:\n    image: ${}\n"),
                ComposeText {
                    name: "gone.yaml".into(),
                    text: None,
                },
            ],
        );
        assert_eq!(
            kinds(&r),
            vec![
                (Kind::Invalid, "bad.yaml".to_string()),
                (Kind::Invalid, "tmpl.yaml".to_string()),
                (Kind::Missing, "gone.yaml".to_string()),
            ]
        );
    }

    #[test]
    fn variables_of_every_file_count_anchors_and_extensions_included() {
        let base =
            "x-env: &env\n  A: ${A}\nservices:\n  web:\n    image: x\n    environment: *env\n";
        let other = "services:\n  web:\n    labels:\n      v: ${B:-2}\n";
        let r = repo_truth(
            Some("A=1\nB=2\n"),
            &[
                file("compose.yaml", base),
                file("compose.other.yaml", other),
            ],
        );
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert_eq!(r.status, Status::Pass);
    }
}
