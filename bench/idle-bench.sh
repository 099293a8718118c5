#!/usr/bin/env bash
# idle-bench.sh - the idle cost of `spindle run` on a converged 12-service stack (bench/stacks/twelve),
# release build, default resync (5 m), over WINDOW (60) seconds:
#   CPU     utime + stime of the spindle process (all threads, /proc/<pid>/stat) over the window,
#           divided by the elapsed time: percent of one core (target <= 0.5 %);
#   RSS     VmHWM (peak over the process's whole life, convergence included) and VmRSS at the end,
#           from /proc/<pid>/status, plus the highest VmRSS sampled each second in the window
#           (target <= 40 MiB);
#   exec    `exec_create` events of the project's containers in the window (`docker events --since
#           --until`); Docker's own healthchecks are execs too, so each event's command is compared
#           with the services' healthcheck commands: the rest are spindle's (target 0); and the exec
#           requests spindle sent (POST /containers/{id}/exec, counted at the proxy; target 0);
#   API     Docker API requests spindle made in the window, counted at the HTTP level: spindle talks
#           to the engine through a recording proxy (`socat -r requests.raw -R responses.raw
#           UNIX-LISTEN:<tmp>/docker.sock,fork UNIX-CONNECT:/var/run/docker.sock`,
#           DOCKER_HOST=unix://<tmp>/docker.sock) and every request line (`GET /v1.41/... HTTP/1.1`)
#           in the raw dump of what spindle sent (backlog=128: spindle opens many connections at
#           once, and a full listen queue makes connect(2) fail with EAGAIN) is one request (-r writes each transfer in one
#           write(2), so parallel connections do not interleave, unlike -v's text log). The long-lived
#           `GET /events` stream opened at start-up is one request, before the window. After the
#           window one SIGHUP reconcile is counted too: the periodic resync costs that many
#           requests every 5 minutes, so requests per idle minute amortized = window + that / 5.
# Convergence is "every container up and healthy", then QUIET (15) seconds for the reconciles the
# health transitions triggered. Clean-up on exit: SIGTERM to spindle run and to the proxy,
# `docker rm -f`, network and volume removal by the project label.
#
# Usage: bench/idle-bench.sh         (cargo build --release first; needs socat: apt-get install socat)
# Environment:
#   SPINDLE_BIN    spindle binary (default target/release/spindle)
#   WINDOW         seconds measured (default 60); QUIET seconds waited after convergence (15)
#   STACK          the stack folder (default bench/stacks/twelve)
#   BENCH_PROJECT  project name (default spindle-bench-idle)
#   DOCKER_SOCK    the engine's socket behind the proxy (default /var/run/docker.sock)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_NAME=idle-bench
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
bench_args "${BASH_SOURCE[0]}" "${1:-}"

spindle="${SPINDLE_BIN:-$repo/target/release/spindle}"
window="${WINDOW:-60}"
quiet="${QUIET:-15}"
stack="${STACK:-$repo/bench/stacks/twelve}"
project="${BENCH_PROJECT:-spindle-bench-idle}"
sock="${DOCKER_SOCK:-/var/run/docker.sock}"

require_spindle_run "$spindle"
[[ "$window" =~ ^[1-9][0-9]*$ ]] || die "WINDOW must be a positive number of seconds"
[[ "$quiet" =~ ^[0-9]+$ ]] || die "QUIET must be a number of seconds"
[[ "$project" =~ ^[a-z0-9][a-z0-9_-]*$ ]] || die "BENCH_PROJECT must be a valid project name"
[[ -f "$stack/compose.yaml" ]] || die "no compose.yaml in $stack"
[[ -S "$sock" ]] || die "no Docker socket at $sock (set DOCKER_SOCK)"
command -v docker >/dev/null || die "docker CLI not found"
command -v jq >/dev/null || die "jq not found (apt-get install jq)"
command -v socat >/dev/null || die "socat not found: it counts the API requests (apt-get install socat)"
engine="$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null)" \
    || die "the Docker engine is not reachable"
hz="$(getconf CLK_TCK)"

work="$(mktemp -d)"
sdir="$work/stack"
mkdir -p "$sdir" "$work/state" "$work/lock"
cp -R "$stack/." "$sdir/"
spid=""
xpid=""

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    stop_spindle "$spid"
    [[ -z "$xpid" ]] || kill -TERM "$xpid" 2>/dev/null || true
    log "removing project $project"
    remove_project "$project"
    if ((rc != 0)) && [[ -f "$work/run.log" ]]; then
        log "last lines of spindle run's log:"; tail -n 15 "$work/run.log" >&2
    fi
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

remove_project "$project"
nservices="$(count_services "$sdir/compose.yaml")"

# --- the counting proxy, then spindle run through it ---
socat -r "$work/requests.raw" -R "$work/responses.raw" \
    UNIX-LISTEN:"$work/docker.sock",fork,mode=600,backlog=128 UNIX-CONNECT:"$sock" 2>"$work/proxy.err" &
xpid=$!
for ((k = 0; k < 50; k++)); do [[ -S "$work/docker.sock" ]] && break; sleep 0.1; done
[[ -S "$work/docker.sock" ]] || die "the socat proxy did not start"

log "stack $stack ($nservices services), engine $engine; spindle run, project $project, via $work/docker.sock"
DOCKER_HOST="unix://$work/docker.sock" SPINDLE_LOCK_DIR="$work/lock" RUST_LOG="${RUST_LOG:-info}" \
    "$spindle" -p "$project" --desired-state "$sdir" run --state-dir "$work/state" >"$work/run.log" 2>&1 &
spid=$!

settle
log "converged; quiet for $quiet s"
sleep "$quiet"

# requests: the proxy log's request lines, one per line: "METHOD /path" (ids and names normalized)
requests() {
    grep -aoE '(GET|POST|PUT|DELETE|HEAD|PATCH) /[^ ]* HTTP/1\.[01]' "$work/requests.raw" \
        | sed -E 's/[?][^ ]*//; s/ HTTP\/1\.[01]$//' \
        | sed -E 's#^([A-Z]+) /v[0-9.]+/#\1 /#; s#^([A-Z]+ /images)/.+/json$#\1/{name}/json#' \
        | sed -E '/^[A-Z]+ \/(containers|networks|volumes)\/(json|create)$/!s#^([A-Z]+ /(containers|networks|volumes|exec))/[^/]+#\1/{id}#' || true
}
cputicks() { awk '{print $14 + $15}' "/proc/$spid/stat"; }
status_kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$spid/status"; }

reconciles0="$(grep -c 'reconcile finished' "$work/run.log" || true)"
req0="$(requests | wc -l)"
requests >"$work/req.before"
since="$(date +%s)"
# exec_create events, followed live: the engine keeps only the last 256 events for --since
docker events --since "$since" --until "$((since + window + 2))" --format '{{json .}}' --filter type=container \
    --filter event=exec_create --filter "label=com.docker.compose.project=$project" >"$work/exec.jsonl" &
epid=$!
bytes0="$(stat -c %s "$work/responses.raw")"
cpu0="$(cputicks)"
t0="$(date +%s%N)"
peak=0
log "measuring for $window s"
for ((s = 0; s < window; s++)); do
    sleep 1
    kill -0 "$spid" 2>/dev/null || die "spindle run exited during the window"
    r="$(status_kib VmRSS)"
    ((r > peak)) && peak=$r
done
cpu1="$(cputicks)"
t1="$(date +%s%N)"
bytes1="$(stat -c %s "$work/responses.raw")"
req1="$(requests | wc -l)"
requests | tail -n +"$((req0 + 1))" >"$work/req.window"
hwm="$(status_kib VmHWM)"
rss="$(status_kib VmRSS)"
reconciles1="$(grep -c 'reconcile finished' "$work/run.log" || true)"

# the exec_create events of the project's containers in the window
wait "$epid" || true
# the events the engine sent spindle on its event stream in the window (all of them, by action)
head -c "$bytes1" "$work/responses.raw" | tail -c +"$((bytes0 + 1))" \
    | { grep -aoE '"Action":"[a-z_]+' || true; } | sed 's/"Action":"//' | sort | uniq -c | sort -rn >"$work/events.window"
ev_total="$(awk '{n += $1} END {print n + 0}' "$work/events.window")"
# each service's healthcheck command as the engine words it in the event ("exec_create: <argv joined>")
for id in $(docker ps -q --filter "label=com.docker.compose.project=$project"); do
    docker inspect --format '{{json .Config.Healthcheck}}' "$id" | jq -r '
        if . == null or (.Test | length) < 2 then empty
        elif .Test[0] == "CMD" then .Test[1:] | join(" ")
        elif .Test[0] == "CMD-SHELL" then "/bin/sh -c " + .Test[1]
        else empty end'
done | sort -u >"$work/healthchecks"
jq -r '.Action | sub("^exec_create: "; "")' "$work/exec.jsonl" >"$work/exec.cmds"
exec_all="$(grep -c . "$work/exec.cmds" || true)"
exec_other="$(grep -cvxF -f "$work/healthchecks" "$work/exec.cmds" || true)"
exec_req="$(grep -cE '^POST /(containers/\{id\}/exec|exec/)' "$work/req.window" || true)"

# one reconcile as the resync runs it (SIGHUP: the same full pass)
log "counting one SIGHUP reconcile"
reqh0="$(requests | wc -l)"
n0="$(grep -c 'reconcile finished' "$work/run.log" || true)"
kill -HUP "$spid"
for ((k = 0; k < 300; k++)); do
    (($(grep -c 'reconcile finished' "$work/run.log" || true) > n0)) && break
    sleep 0.1
done
(($(grep -c 'reconcile finished' "$work/run.log" || true) > n0)) || die "no reconcile finished within 30 s of SIGHUP"
sleep 0.5
reqh1="$(requests | wc -l)"
: >"$work/req.hup"; ((reqh1 <= reqh0)) || requests | sed -n "$((reqh0 + 1)),${reqh1}p" >"$work/req.hup"

elapsed_s="$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}')"
cpu_pct="$(awk -v d="$((cpu1 - cpu0))" -v hz="$hz" -v e="$elapsed_s" 'BEGIN {printf "%.3f", d / hz / e * 100}')"
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
win_req=$((req1 - req0))
per_min="$(awk -v n="$win_req" -v e="$elapsed_s" 'BEGIN {printf "%.1f", n * 60 / e}')"
hup_req=$((reqh1 - reqh0))
amortized="$(awk -v m="$per_min" -v h="$hup_req" 'BEGIN {printf "%.1f", m + h / 5}')"
v_cpu="$(awk -v c="$cpu_pct" 'BEGIN {print (c <= 0.5) ? "met" : "MISSED"}')"
v_rss="$(awk -v a="$hwm" 'BEGIN {print (a <= 40 * 1024) ? "met" : "MISSED"}')"
v_exec="met"; ((exec_other == 0 && exec_req == 0)) || v_exec="MISSED"
commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
git -C "$repo" diff --quiet HEAD 2>/dev/null || commit="$commit+"

printf '\nidle-bench: stack %s (%s services), engine %s, window %s s, CLK_TCK %s, load %s\n' \
    "$(basename "$stack")" "$nservices" "$engine" "$elapsed_s" "$hz" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '  CPU:  %s %% of one core (%d ticks)   target <= 0.5 %%: %s\n' "$cpu_pct" "$((cpu1 - cpu0))" "$v_cpu"
printf '  RSS:  peak (VmHWM, whole life) %s MiB, end %s MiB, highest in window %s MiB   target <= 40 MiB: %s\n' \
    "$(mib "$hwm")" "$(mib "$rss")" "$(mib "$peak")" "$v_rss"
printf '  exec: %s exec_create events in the project, %s of them not a healthcheck command; %s exec requests by spindle   target 0: %s\n' \
    "$exec_all" "$exec_other" "$exec_req" "$v_exec"
printf '  API:  %s requests in the window (%s per minute); reconciles in the window: %s\n' \
    "$win_req" "$per_min" "$((reconciles1 - reconciles0))"
printf '        one SIGHUP reconcile: %s requests; amortized with the 5 m resync: %s requests per idle minute\n' \
    "$hup_req" "$amortized"
printf '  events delivered to spindle on its stream in the window: %s\n' "$ev_total"
sed 's/^/    /' "$work/events.window"
printf '  requests before the window (start-up and convergence): %s\n' "$req0"
printf '  by endpoint, before the window:\n'; sort "$work/req.before" | uniq -c | sort -rn | sed 's/^/    /'
printf '  by endpoint, in the window:\n'; sort "$work/req.window" | uniq -c | sort -rn | sed 's/^/    /'
printf '  by endpoint, one SIGHUP reconcile:\n'; sort "$work/req.hup" | uniq -c | sort -rn | sed 's/^/    /'
printf '\nMarkdown row for docs/benchmarks.md:\n'
printf '| %s | %s | %s s | **%s %%** | **%s MiB** | %s MiB | **%s / %s** | %s | %s | %s | CPU %s, RSS %s, exec %s |\n' \
    "$(date -u +%F)" "$commit" "$elapsed_s" "$cpu_pct" "$(mib "$hwm")" "$(mib "$rss")" "$exec_other" "$exec_all" \
    "$per_min" "$hup_req" "$amortized" "$v_cpu" "$v_rss" "$v_exec"
