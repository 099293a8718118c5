//! Bad input: `spindle config` rejects broken compose projects with one clear message, never a panic.
//!
//! Every test writes a small project into a temporary folder, runs the `spindle` binary there with a cleared
//! environment and checks: exit status 1, nothing on stdout, exactly one error message on stderr (no panic text, no
//! backtrace), and that the message names what is wrong (file, line and column, key path, value or services).

use std::path::Path;
use std::process::{Command, Output};

/// A project in a temporary folder.
struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    fn new() -> Self {
        Project {
            dir: tempfile::tempdir().expect("a temporary folder can be created"),
        }
    }

    /// Writes `text` to `name` inside the project, creating parent folders.
    fn file(self, name: &str, text: &str) -> Self {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("parent folder can be created");
        }
        std::fs::write(&path, text).expect("file can be written");
        self
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs `spindle <args>` in the project folder with only PATH and HOME from the environment.
    fn run(&self, args: &[&str]) -> Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_spindle"));
        command.args(args).current_dir(self.path()).env_clear();
        for key in ["PATH", "HOME"] {
            if let Some(value) = std::env::var_os(key) {
                command.env(key, value);
            }
        }
        command.output().expect("the spindle binary runs")
    }

    /// Runs `spindle config --format json` and returns its single error message after the common checks.
    fn config_error(&self) -> String {
        rejected(&self.run(&["config", "--format", "json"]))
    }
}

/// Checks the shape every rejection shares and returns stderr.
fn rejected(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(
        output.status.code(),
        Some(1),
        "expected exit status 1\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stdout.is_empty(),
        "expected nothing on stdout, got: {stdout}"
    );
    assert!(
        !stderr.trim().is_empty(),
        "expected an error message on stderr"
    );
    let lowered = stderr.to_lowercase();
    for forbidden in ["panicked", "backtrace", "rust_backtrace", "thread 'main'"] {
        assert!(
            !lowered.contains(forbidden),
            "stderr must hold an error message, not panic output ({forbidden:?}): {stderr}"
        );
    }
    let error_lines = stderr
        .lines()
        .filter(|line| line.trim_start().to_lowercase().starts_with("error"))
        .count();
    assert!(
        error_lines <= 1,
        "expected exactly one error message, got {error_lines}: {stderr}"
    );
    stderr
}

fn assert_mentions(stderr: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "the error message should mention {needle:?}: {stderr}"
        );
    }
}

#[test]
fn a_yaml_syntax_error_names_the_file_line_and_column() {
    let project = Project::new().file(
        "compose.yaml",
        "services:\n  web:\n    image: nginx: latest\n",
    );
    let stderr = project.config_error();
    assert_mentions(&stderr, &["compose.yaml", "line 3", "column 17"]);
}

#[test]
fn a_yaml_syntax_error_in_an_override_file_names_that_file() {
    let project = Project::new()
        .file("compose.yaml", "services:\n  web:\n    image: nginx\n")
        .file(
            "override.yaml",
            "services:\n  web:\n    environment:\n      A: [unclosed\n  other:\n    image: busybox\n",
        );
    let stderr = rejected(&project.run(&[
        "-f",
        "compose.yaml",
        "-f",
        "override.yaml",
        "config",
        "--format",
        "json",
    ]));
    assert_mentions(&stderr, &["override.yaml", "line "]);
}

#[test]
fn a_yaml_syntax_error_names_the_line_where_the_broken_construct_began() {
    // An unclosed `[` on line 5 is only noticed at the end of the file; the error names line 5.
    let project = Project::new().file(
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    environment:\n      A: [1, 2\n    ports:\n      - \"80:80\"\n  db:\n    image: postgres\n",
    );
    let stderr = project.config_error();
    assert_mentions(
        &stderr,
        &[
            "compose.yaml: line 5, column 10: ",
            "flow sequence",
            "the parser gave up at line ",
        ],
    );
    // An unclosed quote on line 3 likewise.
    let project = Project::new().file(
        "compose.yaml",
        "services:\n  web:\n    image: \"nginx\n    ports: []\n\n",
    );
    let stderr = project.config_error();
    assert_mentions(
        &stderr,
        &["compose.yaml: line 3, column 12: ", "quoted scalar"],
    );
}

#[test]
fn a_platform_missing_from_build_platforms_is_refused_as_compose_refuses_it() {
    let project = Project::new().file(
        "compose.yaml",
        "services:\n  web:\n    image: app\n    platform: linux/arm64\n    build:\n      context: .\n      platforms: [linux/amd64]\n",
    );
    let stderr = project.config_error();
    assert_mentions(
        &stderr,
        &[
            "services.web.platform",
            "\"linux/arm64\" is not among services.web.build.platforms (linux/amd64)",
        ],
    );
}

#[test]
fn an_unknown_top_level_key_is_named() {
    let project = Project::new().file("compose.yaml", "servics:\n  web:\n    image: nginx\n");
    let stderr = project.config_error();
    assert_mentions(&stderr, &["servics"]);
}

#[test]
fn an_unknown_service_key_is_named_with_its_path() {
    let project = Project::new().file("compose.yaml", "services:\n  web:\n    imagee: nginx\n");
    let stderr = project.config_error();
    assert_mentions(&stderr, &["services.web.imagee"]);
}

#[test]
fn an_unset_required_variable_shows_its_message() {
    let project = Project::new().file(
        "compose.yaml",
        "services:\n  db:\n    image: postgres\n    environment:\n      PASSWORD: ${DB_PASSWORD:?set DB_PASSWORD in .env}\n",
    );
    let stderr = project.config_error();
    assert_mentions(&stderr, &["DB_PASSWORD", "set DB_PASSWORD in .env"]);
}

#[test]
fn an_empty_required_variable_without_a_message_is_named() {
    let project = Project::new()
        .file("compose.yaml", "services:\n  web:\n    image: ${IMAGE:?}\n")
        .file(".env", "IMAGE=\n");
    let stderr = project.config_error();
    assert_mentions(&stderr, &["IMAGE"]);
}

#[test]
fn an_unknown_service_in_depends_on_names_both_services() {
    let project = Project::new().file(
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    depends_on:\n      - ghost\n",
    );
    let stderr = project.config_error();
    assert_mentions(&stderr, &["web", "ghost"]);
}

#[test]
fn a_dependency_cycle_names_the_services_in_it() {
    let project = Project::new().file(
        "compose.yaml",
        "services:\n  alpha:\n    image: busybox\n    depends_on: [beta]\n  beta:\n    image: busybox\n    depends_on: [gamma]\n  gamma:\n    image: busybox\n    depends_on: [alpha]\n",
    );
    let stderr = project.config_error();
    assert_mentions(&stderr, &["alpha", "beta", "gamma"]);
    assert!(
        stderr.to_lowercase().contains("cycle"),
        "the message should say it is a cycle: {stderr}"
    );
}

#[test]
fn an_invalid_port_names_the_key_path_and_the_expected_form_never_the_value() {
    let project = Project::new().file(
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    ports:\n      - \"8080:http\"\n",
    );
    let stderr = project.config_error();
    assert_mentions(&stderr, &["services.web.ports[0]", "0 to 65535"]);
    assert!(!stderr.contains("http"), "{stderr}");
}

#[test]
fn an_invalid_duration_names_the_key_path_never_the_value() {
    let project = Project::new().file(
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n      interval: 10parsecs\n",
    );
    let stderr = project.config_error();
    assert_mentions(&stderr, &["services.web.healthcheck.interval", "duration"]);
    assert!(!stderr.contains("parsecs"), "{stderr}");
}

#[test]
fn an_invalid_size_names_the_key_path_never_the_value() {
    let project = Project::new().file(
        "compose.yaml",
        "services:\n  web:\n    image: nginx\n    mem_limit: 12bananas\n",
    );
    let stderr = project.config_error();
    assert_mentions(&stderr, &["services.web.mem_limit", "byte size"]);
    assert!(!stderr.contains("bananas"), "{stderr}");
}

#[test]
fn a_missing_compose_file_given_with_f_is_named() {
    let project = Project::new();
    let stderr = rejected(&project.run(&["-f", "nope.yaml", "config", "--format", "json"]));
    assert_mentions(&stderr, &["nope.yaml"]);
}

#[test]
fn a_folder_without_any_compose_file_is_rejected_without_panicking() {
    let project = Project::new().file("README.md", "not a compose project\n");
    let _ = project.config_error();
}

#[test]
fn the_desired_state_flag_points_at_the_project_folder() {
    let project = Project::new().file(
        "stack/compose.yaml",
        "services:\n  web:\n    imagee: nginx\n",
    );
    let stack = project.path().join("stack");
    let stack = stack.to_string_lossy();
    let stderr = rejected(&project.run(&["--desired-state", &stack, "config", "--format", "json"]));
    assert_mentions(&stderr, &["services.web.imagee"]);
}

#[test]
fn a_valid_project_given_with_the_desired_state_flag_prints_json() {
    let project = Project::new().file(
        "stack/compose.yaml",
        "services:\n  web:\n    image: nginx\n",
    );
    let stack = project.path().join("stack");
    let stack = stack.to_string_lossy();
    let output = project.run(&["--desired-state", &stack, "config", "--format", "json"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "spindle failed: {stderr}");
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stdout is a JSON document");
    assert_eq!(
        json.pointer("/services/web/image"),
        Some(&serde_json::json!("nginx"))
    );
}

#[test]
fn a_valid_project_given_with_f_prints_json() {
    let project = Project::new().file("app.yaml", "services:\n  web:\n    image: nginx\n");
    let output = project.run(&["-f", "app.yaml", "config", "--format", "json"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "spindle failed: {stderr}");
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("stdout is a JSON document");
    assert_eq!(
        json.pointer("/services/web/image"),
        Some(&serde_json::json!("nginx"))
    );
}

#[test]
fn a_secret_value_that_breaks_a_field_is_not_quoted_in_the_error() {
    let project = Project::new()
        .file(".env", "DB_PASSWORD=hunter2-very-secret\n")
        .file(
            "compose.yaml",
            "services:\n  web:\n    image: nginx\n    mem_limit: ${DB_PASSWORD}\n",
        );
    let stderr = project.config_error();
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert_mentions(&stderr, &["services.web", "mem_limit", "byte size"]);
}

#[test]
fn a_secret_key_of_env_example_missing_from_env_fails_closed_and_names_the_key() {
    let project = Project::new()
        .file(".env.example", "DB_HOST=db\nDB_PASSWORD=changeme\n")
        .file(".env", "DB_HOST=db\n")
        .file("compose.yaml", "services:\n  web:\n    image: nginx\n");
    let stderr = project.config_error();
    assert_mentions(&stderr, &["DB_PASSWORD", ".env.example"]);
    assert!(!stderr.contains("changeme"), "{stderr}");
}

#[test]
fn a_plain_key_of_env_example_missing_from_env_takes_the_example_value_with_a_warning() {
    let project = Project::new()
        .file(".env.example", "LOG_LEVEL=info\n")
        .file(
            "compose.yaml",
            "services:\n  web:\n    image: nginx\n    environment:\n      LEVEL: ${LOG_LEVEL}\n",
        );
    let out = project.run(&["config", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["services"]["web"]["environment"]["LEVEL"], "info");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("LOG_LEVEL") && stderr.contains(".env.example"),
        "{stderr}"
    );
}

#[test]
fn secret_values_are_redacted_in_config_output_unless_revealed() {
    let project = Project::new()
        .file(".env", "API_TOKEN=tok-1234567890\n")
        .file(
            "compose.yaml",
            "services:\n  web:\n    image: nginx\n    environment:\n      API_TOKEN: ${API_TOKEN}\n      URL: https://x/?t=${API_TOKEN}\n",
        );
    let out = project.run(&["config", "--format", "json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("tok-1234567890"), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
    let out = project.run(&["config", "--format", "json", "--reveal-secrets"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("tok-1234567890"));
}

/// Runs `spindle <command>` and checks that it refuses a start-first service that cannot run two
/// containers, naming the key path, the cause and the way out.
fn assert_start_first_refused(compose: &str, cause: &str) {
    let project = Project::new().file("compose.yaml", compose);
    for command in ["plan", "apply", "run"] {
        let stderr = rejected(&project.run(&[command]));
        assert_mentions(
            &stderr,
            &[
                "services.web.deploy.update_config.order",
                "start-first",
                cause,
                "order: stop-first",
            ],
        );
    }
}

#[test]
fn a_start_first_service_with_a_container_name_is_refused_before_the_engine_is_contacted() {
    assert_start_first_refused(
        "services:\n  web:\n    image: busybox:1\n    container_name: web\n    deploy:\n      update_config:\n        order: start-first\n",
        "container_name \"web\"",
    );
}

#[test]
fn a_start_first_service_with_a_fixed_published_port_is_refused_before_the_engine_is_contacted() {
    assert_start_first_refused(
        "services:\n  web:\n    image: busybox:1\n    ports: [\"8080:80\"]\n    deploy:\n      update_config:\n        order: start-first\n",
        "fixed host port 8080",
    );
}

#[test]
fn an_unknown_failure_action_is_refused_with_its_key_path() {
    let project = Project::new().file(
        "compose.yaml",
        "services:\n  web:\n    image: busybox:1\n    deploy:\n      update_config:\n        failure_action: retry\n",
    );
    let stderr = rejected(&project.run(&["plan"]));
    assert_mentions(
        &stderr,
        &[
            "services.web.deploy.update_config.failure_action",
            "rollback, pause or continue",
        ],
    );
}

#[test]
fn an_invalid_port_holding_a_quoted_secret_names_the_key_path_not_the_value() {
    let project = Project::new()
        .file(".env", "PORT_TOKEN=\"tok\\\"val-123456\"\n")
        .file(
            "compose.yaml",
            "services:\n  web:\n    image: nginx\n    ports:\n      - \"${PORT_TOKEN}\"\n",
        );
    let stderr = project.config_error();
    assert_mentions(&stderr, &["services.web.ports[0]", "invalid port"]);
    for form in ["val-123456", "tok\"val", "tok\\\"val"] {
        assert!(!stderr.contains(form), "{stderr}");
    }
}
