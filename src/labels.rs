//! Label keys spindle reads and writes: Compose's own (so `docker compose ps/logs/exec` work) and spindle's.

/// Compose: the project a resource belongs to.
pub const PROJECT: &str = "com.docker.compose.project";
/// Compose: the service a container runs.
pub const SERVICE: &str = "com.docker.compose.service";
/// Compose: the container's number within its service (1-based).
pub const CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
/// Compose: `True` for `docker compose run` containers.
pub const ONEOFF: &str = "com.docker.compose.oneoff";
/// Compose: the project's compose files, comma-separated.
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
/// Compose: the project directory.
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
/// Compose: `service:condition:restart` entries of `depends_on`, comma-separated.
pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
/// Compose: the image reference's digest or ID at creation.
pub const IMAGE: &str = "com.docker.compose.image";
/// Compose: its own configuration hash, which spindle computes as Compose does
/// (`desired::compose_hash`) and writes on containers, networks and volumes; spindle's own
/// fingerprint of a service is `SPEC_HASH`.
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
/// Compose: the version of the tool that created the container.
pub const VERSION: &str = "com.docker.compose.version";
/// Compose: a network's key in the project.
pub const NETWORK: &str = "com.docker.compose.network";
/// Compose: a volume's key in the project.
pub const VOLUME: &str = "com.docker.compose.volume";

/// spindle: the spec hash of the service definition the container was created from.
pub const SPEC_HASH: &str = "io.spindle.spec-hash";
/// spindle: the desired-state revision (git commit, `-dirty` when the work tree had changes).
pub const REVISION: &str = "io.spindle.revision";
/// spindle: set on a replacement container while a recreate is in flight: the ID it replaces.
pub const REPLACES: &str = "io.spindle.replaces";
/// spindle: marks resources spindle created.
pub const MANAGED_BY: &str = "io.spindle.managed-by";
/// spindle: the normalized service definition the container was created from, as sorted JSON
/// with secret values redacted; the planner diffs it against the desired definition.
pub const SPEC: &str = "io.spindle.spec";
/// spindle: marks a one-off container that runs a service's `pre-recreate` hook; the value is the
/// service. Such containers also carry `com.docker.compose.oneoff=True` and no service label, so
/// observe and plan never take them for service containers.
pub const HOOK: &str = "io.spindle.hook";
