//! Table tests of the `paths` rule: relative paths inside and outside the folder, symbolic links, a folder reached through a link, allowlists, and the relative paths a real load records.

use std::path::{Path, PathBuf};

use super::tests::cfg;
use super::*;
use crate::desired::sources::PathRef;

/// A folder `root/stack` with a file inside, a file beside it, and symbolic links.
pub(super) struct Folder {
    _dir: tempfile::TempDir,
    pub(super) root: PathBuf,
}

pub(super) fn tree() -> Folder {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let base = dir.path().canonicalize().expect("canonical");
    let root = base.join("stack");
    std::fs::create_dir_all(root.join("data")).expect("folders");
    std::fs::create_dir_all(base.join("shared/certs")).expect("folders");
    std::fs::write(root.join("inside.env"), "A=1\n").expect("a file");
    std::fs::write(base.join("outside.env"), "A=1\n").expect("a file");
    std::os::unix::fs::symlink(base.join("outside.env"), root.join(".env")).expect("a link");
    std::os::unix::fs::symlink("inside.env", root.join("ok.env")).expect("a link");
    std::os::unix::fs::symlink("/etc", root.join("etc-link")).expect("a link");
    std::os::unix::fs::symlink(&root, base.join("current")).expect("a link");
    Folder { _dir: dir, root }
}

fn refs(root: &Path, written: &[&str]) -> Vec<PathRef> {
    written
        .iter()
        .enumerate()
        .map(|(i, w)| PathRef {
            key: format!("k[{i}]"),
            written: (*w).to_string(),
            resolved: root.join(w),
        })
        .collect()
}

fn outside_keys(root: &Path, written: &[&str], c: &PolicyConfig) -> Vec<String> {
    let mut out = Vec::new();
    super::paths::check(root, &refs(root, written), c, &mut out, &mut Vec::new());
    assert!(out.iter().all(|v| v.policy == PolicyKind::Paths));
    out.into_iter().map(|v| v.path).collect()
}

#[test]
fn relative_paths_that_leave_the_folder_break_the_paths_rule_also_through_symbolic_links() {
    let t = tree();
    let d = PolicyConfig::default();
    let table: &[(&str, bool)] = &[
        ("./data", false),
        ("data/new/file", false),
        ("inside.env", false),
        ("ok.env", false),
        ("sub/../data", false),
        (".", false),
        ("..", true),
        ("../outside.env", true),
        ("../../etc", true),
        ("data/../../outside.env", true),
        (".env", true),
        ("etc-link", true),
        ("etc-link/passwd", true),
    ];
    for (written, broken) in table {
        let got = outside_keys(&t.root, &[written], &d);
        assert_eq!(!got.is_empty(), *broken, "{written}: {got:?}");
    }
}

#[test]
fn a_folder_reached_through_a_symbolic_link_is_compared_real_with_real() {
    let t = tree();
    let link = t.root.parent().expect("a parent").join("current");
    let d = PolicyConfig::default();
    assert!(outside_keys(&link, &["./data", "inside.env", "ok.env"], &d).is_empty());
    assert_eq!(
        outside_keys(&link, &["../outside.env", ".env"], &d),
        ["k[0]", "k[1]"]
    );
}

#[test]
fn a_paths_violation_names_the_target_and_how_to_allow_it_and_the_allowlist_covers_below_it() {
    let t = tree();
    let mut out = Vec::new();
    super::paths::check(
        &t.root,
        &refs(&t.root, &[".env"]),
        &PolicyConfig::default(),
        &mut out,
        &mut Vec::new(),
    );
    assert_eq!(out[0].mode, Mode::Enforce);
    assert!(
        out[0].message.contains("symbolic link")
            && out[0].message.contains("outside.env")
            && out[0].message.contains("policies.paths.allow_outside"),
        "{}",
        out[0].message
    );
    let allow = cfg(
        "paths:\n  allow_outside:\n    - path: ../shared\n      reason: certificates shared by the stacks of this host\n",
    );
    assert!(outside_keys(&t.root, &["../shared/certs", "../shared"], &allow).is_empty());
    assert_eq!(outside_keys(&t.root, &["../outside.env"], &allow), ["k[0]"]);
    let shared = t.root.parent().expect("a parent").join("shared");
    let abs = cfg(&format!(
        "paths:\n  allow_outside:\n    - path: {}\n      reason: shared\n",
        shared.display()
    ));
    assert!(outside_keys(&t.root, &["../shared/certs"], &abs).is_empty());
    let warn = cfg("paths:\n  mode: warn\n");
    let mut out = Vec::new();
    super::paths::check(
        &t.root,
        &refs(&t.root, &[".."]),
        &warn,
        &mut out,
        &mut Vec::new(),
    );
    assert_eq!(out[0].mode, Mode::Warn);
    let r: Result<PolicyConfig, _> =
        yaml_serde::from_str("paths:\n  allow_outside:\n    - path: ../shared\n");
    assert!(r.is_err());
}

/// Loads `root/stack` (with `spindle.yaml` when given) and returns the paths violations' keys.
fn loaded_outside(compose: &str, manifest: Option<&str>) -> Vec<String> {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let base = dir.path();
    let root = base.join("stack");
    std::fs::create_dir_all(root.join("sub")).expect("folders");
    for (f, text) in [
        ("outside.env", "A=1\n"),
        ("secret.txt", "s\n"),
        ("inc.yaml", "services:\n  inc:\n    image: img:1\n"),
        ("base.yaml", "services:\n  base:\n    image: img:1\n"),
    ] {
        std::fs::write(base.join(f), text).expect("a file");
    }
    std::fs::write(root.join("compose.yaml"), compose).expect("compose");
    std::fs::write(root.join("in.env"), "B=2\n").expect("a file");
    if let Some(m) = manifest {
        std::fs::write(root.join("spindle.yaml"), m).expect("manifest");
    }
    let req = crate::desired::Request {
        desired_state: Some(root.clone()),
        cwd: root.clone(),
        ..Default::default()
    };
    let project = crate::desired::load(&req).expect("the project loads");
    let desired = DesiredState::from_project(&project, None).expect("typed");
    let ctx = Context {
        state_dir: None,
        path_refs: &project.path_refs,
    };
    check_in(&desired, None, &project.policies, &ctx)
        .into_iter()
        .filter(|v| v.policy == PolicyKind::Paths)
        .map(|v| v.path)
        .collect()
}

#[test]
fn a_load_records_every_kind_of_relative_path_and_those_leaving_the_folder_are_refused() {
    let svc = "services:\n  web:\n    image: img:1\n";
    let table: &[(&str, &[&str])] = &[
        ("    volumes: [\"./data:/data\", \"/srv/x:/x\"]\n", &[]),
        (
            "    volumes: [\"../../etc:/host-etc\"]\n",
            &["services.web.volumes[0].source"],
        ),
        (
            "    volumes:\n      - type: bind\n        source: ../\n        target: /x\n",
            &["services.web.volumes[0].source"],
        ),
        ("    env_file: [in.env]\n", &[]),
        (
            "    env_file: [../outside.env]\n",
            &["services.web.env_file[0].path"],
        ),
        ("    build: ..\n", &["services.web.build.context"]),
        (
            "    secrets: [s]\nsecrets:\n  s:\n    file: ../secret.txt\n",
            &["secrets.s.file"],
        ),
        (
            "    configs: [c]\nconfigs:\n  c:\n    file: ./sub/../../secret.txt\n",
            &["configs.c.file"],
        ),
    ];
    for (extra, want) in table {
        let got = loaded_outside(&format!("{svc}{extra}"), None);
        assert_eq!(got, *want, "{extra}");
    }
    assert_eq!(
        loaded_outside(&format!("include: [../inc.yaml]\n{svc}"), None),
        ["include[0].path[0]"]
    );
    assert_eq!(
        loaded_outside(
            "services:\n  web:\n    extends:\n      file: ../base.yaml\n      service: base\n",
            None
        ),
        ["services.web.extends.file"]
    );
    assert_eq!(
        loaded_outside(svc, Some("env_files: [../outside.env]\n")),
        ["spindle.yaml:env_files[0]"]
    );
    // Allowlisted with a reason, it passes.
    assert!(
        loaded_outside(
            &format!("{svc}    env_file: [../outside.env]\n"),
            Some(
                "policies:\n  paths:\n    allow_outside:\n      - path: ../outside.env\n        reason: the host's own settings\n"
            )
        )
        .is_empty()
    );
}

#[test]
fn a_dot_env_that_is_a_symbolic_link_out_of_the_folder_is_refused_and_one_inside_passes() {
    for (target, broken) in [("../outside.env", true), ("in.env", false)] {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let root = dir.path().join("stack");
        std::fs::create_dir_all(&root).expect("folders");
        std::fs::write(dir.path().join("outside.env"), "A=1\n").expect("a file");
        std::fs::write(root.join("in.env"), "A=1\n").expect("a file");
        std::fs::write(
            root.join("compose.yaml"),
            "services:\n  web:\n    image: img:1\n",
        )
        .expect("compose");
        std::os::unix::fs::symlink(target, root.join(".env")).expect("a link");
        let req = crate::desired::Request {
            desired_state: Some(root.clone()),
            cwd: root.clone(),
            ..Default::default()
        };
        let project = crate::desired::load(&req).expect("the project loads");
        let desired = DesiredState::from_project(&project, None).expect("typed");
        let found = findings(&desired, &project, None);
        assert_eq!(
            found
                .blockers
                .iter()
                .any(|b| b.starts_with("policy paths: .env:")),
            broken,
            "{target}: {found:?}"
        );
    }
}
