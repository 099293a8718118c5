//! `spindle inventory` against the real engine: desired images, their local image IDs and the running ones, pinned or floating.

mod common;

use common::{TestProject, assert_exit, assert_no_panic, docker, stdout_json};
use serde_json::Value;

const PREFIX: &str = "spindle-h-ops";

/// One service on a pinned test image, one on a floating reference that is not present locally.
const STACK: &str = r#"
services:
  web:
    image: spindle-test/busybox:1
    command: ["/usr/local/bin/idle"]
    init: true
    stop_grace_period: 1s
  tool:
    image: spindle-h-ops-not-present
    command: ["/usr/local/bin/idle"]
    init: true
    stop_grace_period: 1s
    profiles: [tools]
"#;

fn image_id(reference: &str) -> String {
    let out = docker(&["image", "inspect", "--format", "{{.Id}}", reference]);
    assert!(out.status.success(), "docker image inspect {reference}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn row<'a>(doc: &'a Value, service: &str) -> &'a Value {
    doc["images"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["service"] == service))
        .unwrap_or_else(|| panic!("no inventory row for {service} in {doc:#}"))
}

#[test]
fn the_inventory_lists_desired_images_with_nothing_running() {
    let p = TestProject::with_prefix(PREFIX, "inventory-empty", "plain");
    p.write("compose.yaml", STACK);
    let out = p.spindle(&["--profile", "tools", "inventory", "--format", "json"]);
    assert_exit(&out, 0, "spindle inventory --format json");
    let doc = stdout_json(&out, "spindle inventory --format json");
    assert_eq!(doc["project"], p.name());

    let web = row(&doc, "web");
    assert_eq!(web["desired_ref"], "spindle-test/busybox:1");
    assert_eq!(web["pinned"], true);
    assert_eq!(web["floating_reason"], Value::Null);
    assert_eq!(web["local_image_id"], image_id("spindle-test/busybox:1"));
    assert_eq!(web["running_image_id"], Value::Null);
    assert_eq!(web["running_ref"], Value::Null);

    let tool = row(&doc, "tool");
    assert_eq!(tool["pinned"], false);
    assert_eq!(tool["floating_reason"], "no tag, which means latest");
    assert_eq!(
        tool["local_image_id"],
        Value::Null,
        "the image is not present"
    );

    let out = p.spindle(&["--profile", "tools", "inventory"]);
    assert_exit(&out, 0, "spindle inventory");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("SERVICE"), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("web ") && l.contains(" pinned ")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("tool ") && l.contains("floating (no tag")),
        "{text}"
    );
    assert!(p.containers().is_empty(), "inventory only reads");
}

#[test]
fn the_inventory_shows_the_image_each_running_container_uses_and_writes_it_to_a_file() {
    let p = TestProject::with_prefix(PREFIX, "inventory-running", "plain");
    p.write("compose.yaml", STACK);
    let out = p.spindle(&["apply"]);
    assert_exit(&out, 0, "spindle apply");

    let file = p.path("out/inventory.json");
    std::fs::create_dir_all(p.path("out")).unwrap_or_else(|e| panic!("mkdir: {e}"));
    let out = p.spindle(&["inventory", "--output", &file.to_string_lossy()]);
    assert_exit(&out, 0, "spindle inventory --output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("SERVICE"), "stdout keeps the table: {text}");
    assert!(!text.contains("(differs)"), "{text}");

    let written =
        std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    let doc: Value = serde_json::from_str(&written)
        .unwrap_or_else(|e| panic!("the output file is not JSON ({e}):\n{written}"));
    let web = row(&doc, "web");
    let id = image_id("spindle-test/busybox:1");
    assert_eq!(web["local_image_id"], id.as_str());
    assert_eq!(web["running_image_id"], id.as_str());
    assert_eq!(web["running_ref"], "spindle-test/busybox:1");
    assert!(
        doc["images"]
            .as_array()
            .is_some_and(|r| r.iter().all(|r| r["service"] != "tool")),
        "a disabled profile's service is not listed: {doc:#}"
    );
}

#[test]
fn an_unwritable_output_file_is_an_error_naming_it() {
    let p = TestProject::with_prefix(PREFIX, "inventory-badout", "plain");
    p.write("compose.yaml", STACK);
    let target = p.path("no-such-dir/inventory.json");
    let out = p.spindle(&["inventory", "--output", &target.to_string_lossy()]);
    assert_no_panic(&out, "spindle inventory --output <missing dir>");
    assert_exit(&out, 1, "spindle inventory --output <missing dir>");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-dir/inventory.json"), "{err}");
}
