//! spindle in a container on the real engine: the image from `infra/scripts/build-spindle-image.sh`, the Docker socket mounted, the desired-state folder mounted at the same absolute path.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{TestProject, assert_exit, describe, docker, random_hex, run_with_deadline};

const PREFIX: &str = "spindle-h-ops";

/// An image built for one test; removed (with the containers this test ran from it) on drop.
struct Image {
    tag: String,
    containers: Vec<String>,
}

impl Drop for Image {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = docker(&["rm", "-f", c]);
        }
        let _ = docker(&["rmi", "-f", &self.tag]);
    }
}

fn build_image() -> Image {
    let tag = format!("{PREFIX}-image-{}:test", random_hex(8));
    let image = Image {
        tag: tag.clone(),
        containers: Vec::new(),
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/scripts/build-spindle-image.sh");
    let mut command = Command::new("bash");
    command
        .arg(&script)
        .arg("--binary")
        .arg(env!("CARGO_BIN_EXE_spindle"))
        .arg("--tag")
        .arg(&tag);
    let out = run_with_deadline(command, Duration::from_secs(180))
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(
        out.status.success(),
        "build-spindle-image.sh\n{}",
        describe(&out)
    );
    image
}

/// Runs `spindle -p <project> --desired-state <dir> <args>` in a container of `image`, with the
/// Docker socket and the folder mounted at the same path, read-only.
fn spindle_in_container(image: &mut Image, p: &TestProject, args: &[&str]) -> std::process::Output {
    let name = format!("{}-ctl-{}", p.name(), random_hex(6));
    image.containers.push(name.clone());
    let dir = p.dir().to_string_lossy().into_owned();
    let mount = format!("{dir}:{dir}:ro");
    let mut command = Command::new("docker");
    command
        .args(["run", "--rm", "--name", &name])
        .args(["-v", "/var/run/docker.sock:/var/run/docker.sock"])
        .args(["-v", &mount])
        .args([&image.tag, "-p", p.name(), "--desired-state", &dir])
        .args(args);
    run_with_deadline(command, Duration::from_secs(180))
        .unwrap_or_else(|e| panic!("docker run spindle {args:?}: {e}"))
}

#[test]
fn spindle_in_a_container_converges_the_host_through_the_mounted_socket_with_path_identical_binds()
{
    let p = TestProject::with_prefix(PREFIX, "container", "plain");
    p.write(
        "compose.yaml",
        "services:\n  web:\n    image: spindle-test/busybox:1\n    command: [\"/usr/local/bin/idle\"]\n    \
         init: true\n    stop_grace_period: 1s\n    volumes:\n      - ./data:/data:ro\n",
    );
    p.write("data/hello.txt", "hello from the host\n");
    let mut image = build_image();

    let out = spindle_in_container(&mut image, &p, &["apply"]);
    assert_exit(&out, 0, "spindle apply in a container");
    let web = p.container_name("web", 1);
    assert!(p.is_running(&web), "web runs:\n{}", describe(&out));

    // The relative bind resolved against the folder's absolute path, which is the same inside the
    // spindle container and on the host, so the daemon mounted the host's folder.
    let info = p.inspect(&web);
    let source = info["Mounts"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["Destination"] == "/data"))
        .and_then(|m| m["Source"].as_str())
        .unwrap_or_default()
        .to_string();
    assert_eq!(Path::new(&source), p.path("data"), "{info:#}");
    let read = docker(&["exec", &web, "cat", "/data/hello.txt"]);
    assert_eq!(
        String::from_utf8_lossy(&read.stdout),
        "hello from the host\n"
    );

    // The host's spindle and the containerized one agree: nothing left to do for either.
    let out = spindle_in_container(&mut image, &p, &["plan"]);
    assert_exit(&out, 0, "spindle plan in a container after its apply");
    let out = p.spindle(&["plan"]);
    assert_exit(
        &out,
        0,
        "spindle plan on the host after the container's apply",
    );
}
