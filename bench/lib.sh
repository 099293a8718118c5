# lib.sh - helpers shared by the `spindle run` benchmarks (drift-bench.sh, idle-bench.sh).
# Source it after setting BENCH_NAME; the helpers use the globals the scripts define
# (project, spid, nservices).
# shellcheck shell=bash disable=SC2154 # project, spid, nservices are the sourcing script's globals

die() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; exit 1; }
log() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; }

# Prints the script's header comment for -h/--help; refuses other arguments.
bench_args() { # SCRIPT ARG
    case "${2:-}" in
    -h | --help) sed -n '2,/^set -euo/p' "$1" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    "") ;;
    *) die "unknown argument: $2 (see --help)" ;;
    esac
}

require_spindle_run() { # BINARY
    [[ -x "$1" ]] || die "no spindle binary at $1 (cargo build --release, or set SPINDLE_BIN)"
    "$1" run --help >/dev/null 2>&1 || die "$1 has no 'run' command (rebuild it)"
}

# Removes every container, network and volume of a compose project.
remove_project() { # PROJECT
    local ids
    ids="$(docker ps -aq --filter "label=com.docker.compose.project=$1")"
    # shellcheck disable=SC2086 # a list of IDs
    [[ -z "$ids" ]] || docker rm -f $ids >/dev/null 2>&1 || true
    ids="$(docker network ls -q --filter "label=com.docker.compose.project=$1")"
    # shellcheck disable=SC2086
    [[ -z "$ids" ]] || docker network rm $ids >/dev/null 2>&1 || true
    ids="$(docker volume ls -q --filter "label=com.docker.compose.project=$1")"
    # shellcheck disable=SC2086
    [[ -z "$ids" ]] || docker volume rm -f $ids >/dev/null 2>&1 || true
}

# SIGTERM to spindle run, SIGKILL after 10 s.
stop_spindle() { # PID
    local p
    [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null || return 0
    log "stopping spindle run (SIGTERM to $1)"
    kill -TERM "$1" 2>/dev/null || true
    for ((p = 0; p < 100; p++)); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$1" 2>/dev/null && { log "spindle run still alive after 10 s: SIGKILL"; kill -KILL "$1" 2>/dev/null || true; }
    return 0
}

# The number of services of a compose file (top-level keys under `services:`).
count_services() { # COMPOSE-FILE
    grep -cE '^  [a-z][a-z0-9_-]*:$' <(sed -n '/^services:/,/^[a-z]/p' "$1")
}

# Waits until every container of $project is up (and healthy where it has a healthcheck).
settle() {
    local k states
    for ((k = 0; k < 480; k++)); do
        kill -0 "$spid" 2>/dev/null || die "spindle run exited"
        states="$(docker ps -a --filter "label=com.docker.compose.project=$project" --format '{{.Status}}')"
        if [[ "$(grep -c . <<<"$states")" -ge "$nservices" ]] \
            && ! grep -qv '^Up' <<<"$states" && ! grep -q -e 'starting' -e 'unhealthy' <<<"$states"; then
            return 0
        fi
        sleep 0.25
    done
    docker ps -a --filter "label=com.docker.compose.project=$project" --format '{{.Names}} {{.Status}}' >&2
    die "project $project did not converge (every container up and healthy) within 2 minutes"
}
