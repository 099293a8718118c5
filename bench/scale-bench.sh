#!/usr/bin/env bash
# scale-bench.sh - how `spindle apply` grows with the size of a stack, against Compose v5 in the same run.
#
# For each size N in SIZES (10 50 150), a generated stack of N busybox services running `sleep`, in
# `depends_on` chains of CHAIN (5) services (each waits for the one before it: `service_healthy`
# when that one has a healthcheck, else `service_started`). A third of the services (every third)
# have a healthcheck (`true`) every HC_INTERVAL (2s), 10 retries: a short interval, so that the
# bench takes minutes, not an hour (with Compose's default 30 s each gate would be 30 s); at 1 s the
# healthcheck execs of 50 containers load this 2-core engine enough to time out. `init: true`,
# 1 s stop grace. Each tool has its own project, created from nothing for each measurement, and
# runs alone (the other tool's project is removed first, so its healthchecks do not load the engine):
#
#   fresh         healthchecked stack: `docker-compose up -d --wait` against `spindle apply`
#                 (target ratio <= 1.1);
#   no-op         on each tool's converged stack, RUNS (5) runs of `docker-compose up -d` and RUNS
#                 runs of `spindle apply`, medians (target ratio <= 0.1 at 150 services);
#   fresh-nohc    the same stack without healthchecks (every condition `service_started`):
#                 `docker-compose up -d` against `spindle apply` (target ratio <= 1.0);
#   RSS           `spindle run` converging the healthchecked stack of the largest size from nothing:
#                 VmHWM (peak over its life) and VmRSS once converged plus QUIET (5) seconds, from
#                 /proc/PID/status (target <= 30 MiB).
#
# It prints each measurement, then how each cost grows with N (the ratio of each size's time to
# the smallest size's, and the cost per service). Every project is removed at the end, also on
# error or Ctrl-C (`docker rm -f`, network and volume removal by the project label).
#
# Usage: bench/scale-bench.sh        (cargo build --release first)
# Environment:
#   SPINDLE_BIN           spindle binary (default target/release/spindle)
#   SPINDLE_COMPOSE_BIN   Compose v5 (default from infra/scripts/env.sh)
#   SIZES                 sizes (default "10 50 150"); CHAIN chain length (5)
#   HC_INTERVAL           healthcheck interval (default 2s); RUNS no-op runs per tool (5)
#   PARALLELISM           passed as `spindle apply --parallelism` when set (default: spindle's own)
#   SKIP_RSS=1            skip the `spindle run` RSS measurement
#   BENCH_PROJECT_PREFIX  project name prefix (default spindle-scale)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_NAME=scale-bench
# shellcheck source=infra/scripts/env.sh
source "$repo/infra/scripts/env.sh"
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
bench_args "${BASH_SOURCE[0]}" "${1:-}"

compose="$SPINDLE_COMPOSE_BIN"
spindle="${SPINDLE_BIN:-$repo/target/release/spindle}"
sizes="${SIZES:-10 50 150}"
chain="${CHAIN:-5}"
hc_interval="${HC_INTERVAL:-2s}"
runs="${RUNS:-5}"
quiet="${QUIET:-5}"
prefix="${BENCH_PROJECT_PREFIX:-spindle-scale}"
image=spindle-test/busybox:1

[[ -x "$compose" ]] || die "no Compose at $compose (run infra/scripts/setup.sh)"
cv="$("$compose" version --short 2>/dev/null || true)"
[[ "$cv" == 5.* ]] || die "$compose is not Docker Compose v5 (it says '${cv:-nothing}')"
require_spindle_run "$spindle"
for n in $sizes; do [[ "$n" =~ ^[1-9][0-9]*$ ]] || die "SIZES must be positive numbers"; done
[[ "$chain" =~ ^[1-9][0-9]*$ ]] || die "CHAIN must be a positive number"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number"
[[ "$prefix" =~ ^[a-z0-9][a-z0-9_-]*$ ]] || die "BENCH_PROJECT_PREFIX must be a valid project name"
engine="$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null)" \
    || die "the Docker engine is not reachable"
docker image inspect "$image" >/dev/null 2>&1 || die "image $image is missing (run infra/scripts/build-test-images.sh)"

work="$(mktemp -d)"
projects=()
spid=""
cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    stop_spindle "$spid"
    for p in "${projects[@]}"; do remove_project "$p"; done
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# stack DIR N HC: writes DIR/compose.yaml with N services; HC=1 gives every third one a healthcheck.
stack() {
    local dir="$1" n="$2" hc="$3" i dep
    mkdir -p "$dir"
    {
        echo "services:"
        for ((i = 1; i <= n; i++)); do
            printf '  s%03d:\n    image: %s\n    command: ["sleep", "1000000"]\n' "$i" "$image"
            printf '    init: true\n    stop_grace_period: 1s\n'
            if ((hc && i % 3 == 0)); then
                printf '    healthcheck:\n      test: ["CMD", "true"]\n      interval: %s\n      timeout: 10s\n      retries: 10\n' "$hc_interval"
            fi
            if (((i - 1) % chain != 0)); then
                dep=$((i - 1))
                if ((hc && dep % 3 == 0)); then
                    printf '    depends_on:\n      s%03d:\n        condition: service_healthy\n' "$dep"
                else
                    printf '    depends_on:\n      s%03d:\n        condition: service_started\n' "$dep"
                fi
            fi
        done
    } >"$dir/compose.yaml"
}

now_ns() { date +%s%N; }
secs() { awk -v ns="$1" 'BEGIN {printf "%.3f", ns / 1e9}'; }
ratio() { awk -v s="$1" -v c="$2" 'BEGIN {printf "%.2f", s / c}'; }
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

# timed LOG CMD...: runs CMD once, prints its wall time in ns; dies (with the log's tail) on failure.
timed() {
    local logf="$1" t0 t1
    shift
    t0=$(now_ns)
    "$@" >"$logf" 2>&1 || { tail -n 30 "$logf" >&2; die "failed: $*"; }
    t1=$(now_ns)
    echo $((t1 - t0))
}

# up_count PROJECT: running containers of the project.
up_count() { docker ps -q --filter "label=com.docker.compose.project=$1" | grep -c . || true; }

spindle_apply() { # PROJECT DIR
    local extra=()
    [[ -z "${PARALLELISM:-}" ]] || extra=(--parallelism "$PARALLELISM")
    "$spindle" -p "$1" --desired-state "$2" apply --state-dir "$work/state" "${extra[@]}"
}

declare -A T
# note TOOL N WHAT: logs a measurement as soon as it is taken.
note() { log "N=$2 $3 $([[ $1 == c ]] && echo compose || echo spindle): $(secs "${T[$1,$2,$3]}") s"; }
printf '%s: engine %s, compose v%s, spindle %s, sizes %s, chains of %s, healthcheck interval %s\n' \
    "$BENCH_NAME" "$engine" "$cv" "$spindle" "$sizes" "$chain" "$hc_interval" >&2

for n in $sizes; do
    for variant in hc nohc; do
        hc=0
        [[ $variant == hc ]] && hc=1
        pc="$prefix-c$n$variant" ps="$prefix-s$n$variant"
        projects+=("$pc" "$ps")
        remove_project "$pc"
        remove_project "$ps"
        stack "$work/$pc" "$n" "$hc"
        stack "$work/$ps" "$n" "$hc"
        if ((hc)); then
            # One tool at a time: the other's healthchecks would load the engine meanwhile.
            log "N=$n: fresh converge, healthchecks: docker-compose up -d --wait"
            T[c,$n,fresh]=$(timed "$work/$pc.log" "$compose" -p "$pc" -f "$work/$pc/compose.yaml" up -d --wait)
            note c "$n" fresh
            [[ "$(up_count "$pc")" == "$n" ]] || die "N=$n: not every compose container is up"
            log "N=$n: no-op, $runs runs of docker-compose up -d"
            runs_c=()
            for ((k = 0; k < runs; k++)); do
                runs_c+=("$(timed "$work/$pc.noop.log" "$compose" -p "$pc" -f "$work/$pc/compose.yaml" up -d)")
            done
            T[c,$n,noop]=$(printf '%s\n' "${runs_c[@]}" | median)
            note c "$n" noop
            remove_project "$pc"
            log "N=$n: fresh converge, healthchecks: spindle apply"
            T[s,$n,fresh]=$(timed "$work/$ps.log" spindle_apply "$ps" "$work/$ps")
            note s "$n" fresh
            [[ "$(up_count "$ps")" == "$n" ]] || die "N=$n: not every spindle container is up"
            log "N=$n: no-op, $runs runs of spindle apply"
            runs_s=()
            for ((k = 0; k < runs; k++)); do
                runs_s+=("$(timed "$work/$ps.noop.log" spindle_apply "$ps" "$work/$ps")")
            done
            T[s,$n,noop]=$(printf '%s\n' "${runs_s[@]}" | median)
            note s "$n" noop
            grep -q 'in sync, nothing to do' "$work/$ps.noop.log" \
                || { cat "$work/$ps.noop.log" >&2; die "N=$n: the spindle no-op was not a no-op"; }
        else
            log "N=$n: fresh converge, no healthchecks: docker-compose up -d"
            T[c,$n,nohc]=$(timed "$work/$pc.log" "$compose" -p "$pc" -f "$work/$pc/compose.yaml" up -d)
            note c "$n" nohc
            remove_project "$pc"
            log "N=$n: fresh converge, no healthchecks: spindle apply"
            T[s,$n,nohc]=$(timed "$work/$ps.log" spindle_apply "$ps" "$work/$ps")
            note s "$n" nohc
        fi
        remove_project "$pc"
        remove_project "$ps"
    done
done

rss=""
largest="$(tr ' ' '\n' <<<"$sizes" | sort -n | tail -1)"
if [[ -z "${SKIP_RSS:-}" ]]; then
    project="$prefix-run$largest"
    projects+=("$project")
    remove_project "$project"
    stack "$work/$project" "$largest" 1
    mkdir -p "$work/run-state"
    log "RSS: spindle run converging $largest services from nothing"
    "$spindle" -p "$project" --desired-state "$work/$project" run --state-dir "$work/run-state" --listen off \
        >"$work/run.log" 2>&1 &
    spid=$!
    for ((k = 0; k < 1200; k++)); do
        kill -0 "$spid" 2>/dev/null || { tail -n 30 "$work/run.log" >&2; die "spindle run exited"; }
        states="$(docker ps -a --filter "label=com.docker.compose.project=$project" --format '{{.Status}}')"
        if [[ "$(grep -c . <<<"$states")" -ge "$largest" ]] && ! grep -qv '^Up' <<<"$states" \
            && ! grep -q -e 'starting' -e 'unhealthy' <<<"$states"; then
            break
        fi
        sleep 0.25
    done
    sleep "$quiet"
    hwm="$(awk '/^VmHWM/ {print $2}' "/proc/$spid/status")"
    cur="$(awk '/^VmRSS/ {print $2}' "/proc/$spid/status")"
    rss="$(awk -v h="$hwm" -v c="$cur" 'BEGIN {printf "VmHWM %.1f MiB, VmRSS %.1f MiB", h / 1024, c / 1024}')"
    stop_spindle "$spid"
    spid=""
    remove_project "$project"
fi

# --- results ---
commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
git -C "$repo" diff --quiet HEAD 2>/dev/null || commit="$commit+"
printf '\nscale-bench: %s, engine %s, compose v%s, healthcheck interval %s, chains of %s, %s no-op runs (median)\n' \
    "$(date -u +%F)" "$engine" "$cv" "$hc_interval" "$chain" "$runs"
printf '%-12s %6s %12s %12s %7s %8s\n' measurement N compose_s spindle_s ratio target
for what in fresh nohc noop; do
    case $what in
    fresh) target="<= 1.1" ;;
    nohc) target="<= 1.0" ;;
    noop) target="<= 0.1" ;;
    esac
    for n in $sizes; do
        printf '%-12s %6s %12s %12s %7s %8s\n' "$what" "$n" "$(secs "${T[c,$n,$what]}")" \
            "$(secs "${T[s,$n,$what]}")" "$(ratio "${T[s,$n,$what]}" "${T[c,$n,$what]}")" "$target"
    done
done
first="$(tr ' ' '\n' <<<"$sizes" | sort -n | head -1)"
printf '\ngrowth (time at N / time at N=%s; ms per service)\n' "$first"
for what in fresh nohc noop; do
    for tool in c s; do
        name=compose
        [[ $tool == s ]] && name=spindle
        line="$(printf '%-12s %-8s' "$what" "$name")"
        for n in $sizes; do
            line+="$(awk -v t="${T[$tool,$n,$what]}" -v b="${T[$tool,$first,$what]}" -v n="$n" \
                'BEGIN {printf "  N=%d x%.1f (%.1f ms/svc)", n, t / b, t / 1e6 / n}')"
        done
        echo "$line"
    done
done
[[ -z "$rss" ]] || printf '\nspindle run at %s services: %s (target <= 30 MiB)\n' "$largest" "$rss"
printf '\nMarkdown rows for docs/benchmarks.md:\n'
for what in fresh nohc noop; do
    for n in $sizes; do
        printf '| %s | %s | %s | %s | %s s | %s s | %s |\n' "$(date -u +%F)" "$commit" "$what" "$n" \
            "$(secs "${T[c,$n,$what]}")" "$(secs "${T[s,$n,$what]}")" "$(ratio "${T[s,$n,$what]}" "${T[c,$n,$what]}")"
    done
done
