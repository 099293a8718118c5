//! Paths as Compose v5 has them, on the real engine: a stack Compose made is adopted as is (a plan
//! with nothing to do) whether spindle names its folder relatively (`--desired-state DIR` from the
//! parent, `--desired-state .` from inside), names only its file (`-f`), or is started through a
//! symbolic link; and the containers spindle creates carry Compose's labels and bind sources.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{
    COMMAND_DEADLINE, TestProject, assert_exit, compose_bin, evidence_records, plan_actions,
    run_with_deadline, wait_for,
};
use serde_json::Value;

/// A stack with every kind of path Compose makes absolute: a relative bind (short and long form,
/// the long one not clean), a secret file, a config file, and an env file for interpolation.
const STACK: &str = r#"
services:
  web:
    image: spindle-test/busybox:1
    command: ["/usr/local/bin/idle"]
    init: true
    stop_grace_period: 1s
    environment:
      GREETING: ${GREETING:-unset}
    volumes:
      - ./data:/data
      - type: bind
        source: ./conf/../conf/.
        target: /conf
    secrets: [token]
    configs: [app]
secrets:
  token:
    file: ./token.txt
configs:
  app:
    file: ./sub/../app.conf
"#;

fn stack(test: &str) -> TestProject {
    let p = TestProject::new(test, "plain");
    p.write("compose.yaml", STACK);
    p.write("data/.keep", "");
    p.write("conf/app.ini", "x=1\n");
    p.write("sub/.keep", "");
    p.write("token.txt", "not-a-real-token\n");
    p.write("app.conf", "greeting=hello\n");
    p.write("vars.env", "GREETING=hello\n");
    p
}

/// Runs `spindle -p <project> <args>` in `cwd`, with `PWD` set to `cwd` as a shell sets it.
fn spindle_in(p: &TestProject, cwd: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_spindle"));
    command
        .arg("-p")
        .arg(p.name())
        .args(args)
        .current_dir(cwd)
        .env("PWD", cwd)
        .env("SPINDLE_STATE_DIR", p.state_dir());
    for key in [
        "SPINDLE_DESIRED_STATE",
        "COMPOSE_PROJECT_NAME",
        "COMPOSE_FILE",
        "COMPOSE_PROFILES",
        "COMPOSE_ENV_FILES",
    ] {
        command.env_remove(key);
    }
    run_with_deadline(command, COMMAND_DEADLINE).unwrap_or_else(|e| panic!("spindle {args:?}: {e}"))
}

/// Runs `<compose> -p <project> <args>` in `cwd`, with `PWD` set to `cwd` as a shell sets it.
fn compose_in(p: &TestProject, cwd: &Path, args: &[&str]) -> Output {
    let mut command = Command::new(compose_bin());
    command
        .arg("-p")
        .arg(p.name())
        .args(args)
        .current_dir(cwd)
        .env("PWD", cwd);
    for key in [
        "COMPOSE_PROJECT_NAME",
        "COMPOSE_FILE",
        "COMPOSE_PROFILES",
        "COMPOSE_ENV_FILES",
    ] {
        command.env_remove(key);
    }
    run_with_deadline(command, COMMAND_DEADLINE).unwrap_or_else(|e| panic!("compose {args:?}: {e}"))
}

/// `spindle plan --format json` in `cwd` with `args` before it; asserts nothing is planned.
#[track_caller]
fn assert_plans_nothing(p: &TestProject, cwd: &Path, args: &[&str]) {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["plan", "--format", "json"]);
    let out = spindle_in(p, cwd, &all);
    let what = format!("spindle {} (in {})", all.join(" "), cwd.display());
    assert_exit(&out, 0, &what);
    let plan: Value = serde_json::from_slice(&out.stdout).expect("plan is JSON");
    assert!(
        plan_actions(&plan).is_empty(),
        "{what} plans changes to a stack Compose made:\n{}",
        serde_json::to_string_pretty(&plan["actions"]).unwrap_or_default()
    );
}

/// `(key, value)` pairs: labels by name, bind sources by target.
type Pairs = Vec<(String, String)>;

/// What Compose and spindle must agree on: the path labels and the bind sources by target.
fn paths_of(inspect: &Value) -> (Pairs, Pairs) {
    let labels = [
        "com.docker.compose.project.working_dir",
        "com.docker.compose.project.config_files",
        "com.docker.compose.project.environment_file",
    ]
    .iter()
    .map(|k| {
        (
            k.to_string(),
            inspect["Config"]["Labels"][*k]
                .as_str()
                .unwrap_or("<absent>")
                .to_string(),
        )
    })
    .collect();
    let mut binds: Vec<(String, String)> = inspect["Mounts"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter(|m| m["Type"] == "bind")
                .map(|m| {
                    (
                        m["Destination"].as_str().unwrap_or_default().to_string(),
                        m["Source"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    binds.sort();
    (labels, binds)
}

fn name_of(dir: &Path) -> &str {
    dir.file_name()
        .and_then(|n| n.to_str())
        .expect("a folder name")
}

#[test]
fn a_stack_compose_made_is_planned_as_a_no_op_with_a_relative_desired_state_or_with_f_alone() {
    let p = stack("relative-desired-state-no-op");
    let dir = p.dir().to_path_buf();
    let parent = dir.parent().expect("a parent folder").to_path_buf();
    assert_exit(&compose_in(&p, &dir, &["up", "-d"]), 0, "compose up -d");
    let base = name_of(&dir);
    let file = format!("{base}/compose.yaml");
    let up_and_back = format!("../{base}");
    let dotted = format!("./{base}/./");
    let cases: [(&Path, Vec<&str>); 7] = [
        (&parent, vec!["--desired-state", base]),
        (&parent, vec!["--desired-state", &dotted]),
        (&dir, vec!["--desired-state", "."]),
        (&dir, vec!["--desired-state", &up_and_back]),
        (&dir, vec!["-f", "compose.yaml"]),
        (&parent, vec!["-f", &file]),
        (
            Path::new("/"),
            vec!["--desired-state", dir.to_str().expect("utf-8")],
        ),
    ];
    for (cwd, args) in &cases {
        assert_plans_nothing(&p, cwd, args);
    }
}

#[test]
fn a_folder_entered_through_a_symbolic_link_keeps_the_link_in_the_labels_as_in_compose() {
    let p = stack("symlinked-folder-no-op");
    let links = tempfile::tempdir().expect("a temporary folder");
    let link: PathBuf = links.path().join("current");
    std::os::unix::fs::symlink(p.dir(), &link).expect("a symbolic link");
    assert_exit(
        &compose_in(&p, &link, &["up", "-d"]),
        0,
        "compose up -d (through the link)",
    );
    let by_compose = p.inspect(&p.container_name("web", 1));
    let (labels, _) = paths_of(&by_compose);
    assert_eq!(
        labels[0].1,
        link.display().to_string(),
        "Compose keeps the symbolic link in the working dir"
    );
    assert_plans_nothing(&p, &link, &["--desired-state", "."]);
    assert_plans_nothing(&p, links.path(), &["--desired-state", "current"]);
}

#[test]
fn the_containers_spindle_creates_carry_composes_path_labels_and_bind_sources() {
    let p = stack("spindle-paths-equal-composes");
    let dir = p.dir().to_path_buf();
    let parent = dir.parent().expect("a parent folder").to_path_buf();
    // Compose from the parent folder, with a relative file and env file, neither of them clean.
    let env_file = format!("./{0}/../{0}/vars.env", name_of(&dir));
    let file = format!("./{}/./compose.yaml", name_of(&dir));
    assert_exit(
        &compose_in(
            &p,
            &parent,
            &["-f", &file, "--env-file", &env_file, "up", "-d"],
        ),
        0,
        "compose up -d",
    );
    let container = p.container_name("web", 1);
    let by_compose = p.inspect(&container);
    let (labels, binds) = paths_of(&by_compose);
    assert!(
        labels.iter().all(|(_, v)| v.starts_with('/')),
        "Compose writes absolute paths: {labels:?}"
    );
    assert_eq!(
        labels[2].1,
        dir.join("vars.env").display().to_string(),
        "Compose writes the --env-file absolute and clean"
    );
    assert_eq!(
        binds.len(),
        4,
        "data, conf, the secret and the config: {binds:?}"
    );
    let args = ["-f", file.as_str(), "--env-file", env_file.as_str()];
    assert_plans_nothing(&p, &parent, &args);

    // spindle creates the container anew, from the parent folder too.
    assert_exit(&p.docker(&["rm", "-f", &container]), 0, "docker rm -f");
    let mut apply = args.to_vec();
    apply.push("apply");
    assert_exit(&spindle_in(&p, &parent, &apply), 0, "spindle apply");
    let by_spindle = p.inspect(&container);
    assert_ne!(
        by_spindle["Id"], by_compose["Id"],
        "spindle made a new container"
    );
    assert_eq!(paths_of(&by_spindle), (labels, binds));
    assert_eq!(
        by_spindle["Config"]["Labels"]["com.docker.compose.project.working_dir"],
        dir.display().to_string()
    );
}

/// A `spindle run` child, killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn spindle_run_with_a_relative_desired_state_adopts_a_stack_compose_made_without_a_change() {
    let p = stack("run-relative-desired-state");
    let dir = p.dir().to_path_buf();
    let parent = dir.parent().expect("a parent folder").to_path_buf();
    assert_exit(&compose_in(&p, &dir, &["up", "-d"]), 0, "compose up -d");
    let id = p.id_of("web");
    let state = p.state_dir().to_string_lossy().into_owned();
    let mut command = Command::new(env!("CARGO_BIN_EXE_spindle"));
    command
        .args(["-p", p.name(), "--desired-state", name_of(&dir)])
        .args(["run", "--state-dir", &state, "--listen", "off"])
        .current_dir(&parent)
        .env("PWD", &parent)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for key in [
        "SPINDLE_DESIRED_STATE",
        "COMPOSE_PROJECT_NAME",
        "COMPOSE_FILE",
        "COMPOSE_PROFILES",
    ] {
        command.env_remove(key);
    }
    let run = Running(command.spawn().expect("spindle run starts"));
    let first = wait_for(
        "the first reconcile's record",
        Duration::from_secs(120),
        || evidence_records(p.state_dir()).into_iter().next(),
    );
    drop(run);
    assert_eq!(first["outcome"], "in-sync", "{first:#}");
    assert!(
        first["plan"]["actions"]
            .as_array()
            .is_some_and(Vec::is_empty),
        "{first:#}"
    );
    assert_eq!(p.id_of("web"), id, "the container Compose made is kept");
}
