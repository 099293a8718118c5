#!/usr/bin/env bash
# check-sample.sh - prove the sample stack runs: `up -d --wait` it with Compose v5 under a throw-away
# project name, check the gateway answers on its published port, then `down -v`.
# Run infra/scripts/setup.sh first. Usage: infra/scripts/check-sample.sh [--profile low-cpu]
# (the low-cpu profile only caps CPU and memory, so its services start more slowly).
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=infra/scripts/env.sh
source "$repo/infra/scripts/env.sh"

project="${CHECK_PROJECT:-spindle-infra-check}"
export HTTP_PUBLISH_PORT="${CHECK_PORT:-18080}"
files=(-f compose.yaml)
timeout=120
if [[ "${1:-}" == "--profile" && "${2:-}" == "low-cpu" ]]; then
    files+=(-f compose.low-cpu.yaml)
    timeout=300
fi

cd "$repo/desired-state"
[[ -e .env ]] || { echo "check-sample: desired-state/.env missing (run infra/scripts/setup.sh)" >&2; exit 1; }
compose() { "$SPINDLE_COMPOSE_BIN" -p "$project" "${files[@]}" "$@"; }

trap 'compose down -v --remove-orphans >/dev/null 2>&1 || true' EXIT
compose config -q
compose up -d --wait --wait-timeout "$timeout" >/dev/null 2>&1 || {
    compose ps -a >&2
    echo "check-sample: stack did not become healthy" >&2
    exit 1
}
compose ps -a --format 'table {{.Service}}\t{{.State}}\t{{.Status}}'
body="$(docker exec "$project-gateway-1" wget -q -O- "http://127.0.0.1:8080/health")"
[[ "$body" == ok ]] || { echo "check-sample: gateway health answered '$body'" >&2; exit 1; }
if command -v wget >/dev/null; then
    [[ "$(wget -q -O- "http://127.0.0.1:$HTTP_PUBLISH_PORT/health")" == ok ]] \
        || { echo "check-sample: published port $HTTP_PUBLISH_PORT does not answer" >&2; exit 1; }
fi
echo "check-sample: sample stack healthy; taking it down"
