#!/usr/bin/env bash
# zero-downtime.sh - what a client sees while spindle recreates the service it requests:
# `deploy.update_config.order: start-first` (service web) against stop-first (service legacy).
#
# The stack is tests/fixtures/stacks/updates (two identical busybox httpd services with a 1 s
# healthcheck), copied to a temporary folder and brought up with `spindle apply`. Then ROUNDS
# times: one client container per service on the project network runs client.sh (resolve the
# service name with Docker's embedded DNS, request /health from the addresses in order with a 1 s
# timeout, count a failure when no address answers, loop back to back), both services get a new
# release (an environment change), `spindle apply --format json` recreates both at once, and the
# clients are stopped once the apply returned.
# Per round and service it prints: requests, failures, requests a second address answered,
# the most addresses one lookup returned, the failure window the client saw (first to last failed
# request), and from spindle's write log the overlap (web: start of the new container to the end
# of the old one's stop) or the gap (legacy: start of the old one's stop to the end of the new
# one's start). At the end, a Markdown row per service for docs/benchmarks.md.
#
# Clean-up on exit, also on error or Ctrl-C: the clients and every container, network and volume
# of the project.
#
# Usage: bench/zero-downtime.sh      (cargo build --release first)
# Environment:
#   SPINDLE_BIN    spindle binary (default target/release/spindle)
#   ROUNDS         recreates of each service (default 5)
#   BENCH_PROJECT  project name (default spindle-bench-zd)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_NAME=zero-downtime
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
bench_args "${BASH_SOURCE[0]}" "${1:-}"

spindle="${SPINDLE_BIN:-$repo/target/release/spindle}"
rounds="${ROUNDS:-5}"
project="${BENCH_PROJECT:-spindle-bench-zd}"
[[ -x "$spindle" ]] || die "no spindle binary at $spindle (cargo build --release, or set SPINDLE_BIN)"
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive number"
[[ "$project" =~ ^[a-z0-9][a-z0-9_-]*$ ]] || die "BENCH_PROJECT must be a valid project name"
command -v docker >/dev/null || die "docker CLI not found"
command -v jq >/dev/null || die "jq not found (apt-get install jq)"
docker version >/dev/null 2>&1 || die "the Docker engine is not reachable"
docker image inspect spindle-test/busybox:1 >/dev/null 2>&1 \
    || die "image spindle-test/busybox:1 missing (infra/scripts/build-test-images.sh)"

work="$(mktemp -d)"
cleanup() {
    docker rm -f "$project-client-web" "$project-client-legacy" >/dev/null 2>&1 || true
    remove_project "$project"
    rm -rf "$work"
}
trap cleanup EXIT
cp "$repo/tests/fixtures/stacks/updates/compose.yaml" "$repo/tests/fixtures/stacks/updates/client.sh" "$work/"
mkdir -p "$work/state"

sp() { "$spindle" -p "$project" --desired-state "$work" "$@" --state-dir "$work/state"; }

log "bringing $project up"
sp apply >/dev/null

client_start() { # SERVICE
    docker run -d --name "$project-client-$1" --network "${project}_default" \
        -v "$work/client.sh:/client.sh:ro" spindle-test/busybox:1 sh /client.sh "$1" 8000 >/dev/null
    local k
    for ((k = 0; k < 300; k++)); do
        docker exec "$project-client-$1" test -e /tmp/started 2>/dev/null && return 0
        sleep 0.2
    done
    die "the client of $1 never got an answer"
}

client_stop() { # SERVICE -> the client's line
    docker exec "$project-client-$1" touch /tmp/stop
    docker wait "$project-client-$1" >/dev/null
    docker logs "$project-client-$1"
    docker rm -f "$project-client-$1" >/dev/null
}

field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$2"; }

window() { # LINE -> ms between the first and the last failure
    local a b
    a="$(field first_failure "$1")" b="$(field last_failure "$1")"
    [[ "$a" == none ]] && { echo 0; return; }
    awk -v a="$a" -v b="$b" 'BEGIN { printf "%d", (b - a) * 1000 }'
}

declare -A req fail retried maxaddr span win
for svc in web legacy; do req[$svc]=0 fail[$svc]=0 retried[$svc]=0 maxaddr[$svc]=0 span[$svc]="" win[$svc]=""; done

for ((r = 1; r <= rounds; r++)); do
    client_start web
    client_start legacy
    sed -i -E "s/(WEB_RELEASE|LEGACY_RELEASE): \"[0-9]+\"/\1: \"$((r + 1))\"/" "$work/compose.yaml"
    out="$work/apply-$r.json"
    sp apply --format json >"$out" || die "spindle apply failed in round $r (see $out)"
    web_line="$(client_stop web)"
    legacy_line="$(client_stop legacy)"
    name="$project-web-1"
    overlap="$(jq -r --arg new "$name-next" --arg old "$name" '
        ([.write_log[] | select(.operation == "start container" and .target == $new)][0].started_ms) as $s
        | ([.write_log[] | select(.operation == "stop container" and .target == $old)][0]) as $t
        | ($t.started_ms + $t.elapsed_ms - $s)' "$out")"
    name="$project-legacy-1"
    gap="$(jq -r --arg n "$name" '
        ([.write_log[] | select(.operation == "stop container" and .target == $n)][0].started_ms) as $s
        | ([.write_log[] | select(.operation == "start container" and .target == $n)][0]) as $t
        | ($t.started_ms + $t.elapsed_ms - $s)' "$out")"
    for svc in web legacy; do
        line="$web_line"; [[ $svc == legacy ]] && line="$legacy_line"
        req[$svc]=$((req[$svc] + $(field requests "$line")))
        fail[$svc]=$((fail[$svc] + $(field failures "$line")))
        retried[$svc]=$((retried[$svc] + $(field retried "$line")))
        m="$(field max_addresses "$line")"; ((m > maxaddr[$svc])) && maxaddr[$svc]=$m
        w="$(window "$line")"; win[$svc]+="${win[$svc]:+, }$w"
    done
    span[web]+="${span[web]:+, }$overlap"
    span[legacy]+="${span[legacy]:+, }$gap"
    printf 'round %d  start-first web:  %s  overlap %s ms\n' "$r" "$web_line" "$overlap"
    printf 'round %d  stop-first legacy: %s  gap %s ms\n' "$r" "$legacy_line" "$gap"
done

engine="$(docker version --format '{{.Server.Version}}')"
commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo
echo "| date | commit | order | recreates | requests | failed | answered by a 2nd address | most addresses per lookup | failure window per recreate (ms) | overlap / gap per recreate (ms, write log) | engine |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for svc in web legacy; do
    order=start-first; [[ $svc == legacy ]] && order=stop-first
    printf '| %s | %s | %s | %d | %d | **%d** | %d | %d | %s | %s | %s |\n' "$(date -u +%F)" "$commit" "$order" \
        "$rounds" "${req[$svc]}" "${fail[$svc]}" "${retried[$svc]}" "${maxaddr[$svc]}" "${win[$svc]}" "${span[$svc]}" "$engine"
done
