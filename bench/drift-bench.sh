#!/usr/bin/env bash
# drift-bench.sh - drift-repair latency of `spindle run`: how long after a container of its project
# is removed out of band (`docker rm -f`) its replacement is running, next to the container's own
# start time and to Docker's own restart policy, all measured in the same run on the same engine.
#
# The stack (bench/stacks/twelve by default) is brought up by `spindle run` itself and left to
# converge; then TRIALS times, one after the other:
#   start     `docker create` + `docker start` of a fresh container of the service's image and
#             command (same --init, on a network of its own): the wall time of `docker start`
#             (the container's own start time) and of create + start;
#   restart   Docker's own restart policy, no spindle: a container of the same image with
#             `--restart always` whose main process is killed from the host (`kill -9` of its
#             State.Pid, as a crash; Docker treats `docker kill` as a manual stop and does not
#             restart then); the time from its `die` event to its next `start` event. Docker
#             delays a restart 100 ms, doubling while the container ran less than 10 s, so each
#             trial waits until it has run GAP (11 s) first;
#   repair    `docker rm -f` of the service's container (a service without a healthcheck, so
#             ready = running); the time from its `destroy` event (the removal is complete) to the
#             `start` event of the replacement spindle creates.
# Times come from `docker events` (timeNano); the script also polls `docker ps` at 20 Hz to know
# when to go on. It prints median and p95 of each, and repair minus start (target: median repair
# <= 1.5 s + the container's own start time), and a Markdown row for docs/benchmarks.md.
#
# Clean-up on exit, also on error or Ctrl-C: SIGTERM to `spindle run`, then `docker rm -f` of every
# container labelled with the project (and <project>-ref for the reference containers), network
# and volume removal by the same labels.
#
# Usage: bench/drift-bench.sh        (cargo build --release first)
# Environment:
#   SPINDLE_BIN    spindle binary (default target/release/spindle)
#   TRIALS         trials (default 20)
#   GAP            seconds between the restart-policy container's start and its next kill (11)
#   STACK          the stack folder (default bench/stacks/twelve)
#   SERVICE        the service removed in each trial (default mailer; it must have no healthcheck)
#   BENCH_PROJECT  project name (default spindle-bench-drift)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_NAME=drift-bench
# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"
bench_args "${BASH_SOURCE[0]}" "${1:-}"

spindle="${SPINDLE_BIN:-$repo/target/release/spindle}"
trials="${TRIALS:-20}"
gap="${GAP:-11}"
stack="${STACK:-$repo/bench/stacks/twelve}"
service="${SERVICE:-mailer}"
project="${BENCH_PROJECT:-spindle-bench-drift}"
ref="$project-ref"

require_spindle_run "$spindle"
[[ "$trials" =~ ^[1-9][0-9]*$ ]] || die "TRIALS must be a positive number"
[[ "$gap" =~ ^[0-9]+$ ]] || die "GAP must be a number of seconds"
[[ "$project" =~ ^[a-z0-9][a-z0-9_-]*$ ]] || die "BENCH_PROJECT must be a valid project name"
[[ -f "$stack/compose.yaml" ]] || die "no compose.yaml in $stack"
command -v docker >/dev/null || die "docker CLI not found"
command -v jq >/dev/null || die "jq not found (apt-get install jq)"
engine="$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null)" \
    || die "the Docker engine is not reachable"

work="$(mktemp -d)"
sdir="$work/stack"
mkdir -p "$sdir" "$work/state" "$work/lock"
cp -R "$stack/." "$sdir/"
spid=""
evpids=()

cleanup() {
    local rc=$? p
    trap - EXIT INT TERM
    stop_spindle "$spid"
    for p in "${evpids[@]}"; do kill "$p" 2>/dev/null || true; done
    log "removing projects $project and $ref"
    remove_project "$project"
    remove_project "$ref"
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
remove_project "$ref"

grep -q "^  $service:" "$sdir/compose.yaml" || die "no service $service in $stack/compose.yaml"
nservices="$(count_services "$sdir/compose.yaml")"

# --- spindle run ---
log "stack $stack ($nservices services), engine $engine; spindle run, project $project"
SPINDLE_LOCK_DIR="$work/lock" RUST_LOG="${RUST_LOG:-info}" \
    "$spindle" -p "$project" --desired-state "$sdir" run --state-dir "$work/state" >"$work/run.log" 2>&1 &
spid=$!

settle
log "converged"

svc_filter=(--filter "label=com.docker.compose.project=$project" --filter "label=com.docker.compose.service=$service")
cid="$(docker ps -q "${svc_filter[@]}")"
[[ -n "$cid" ]] || die "no running container of $service"
hc="$(docker inspect --format '{{if .Config.Healthcheck}}{{len .Config.Healthcheck.Test}}{{else}}0{{end}}' "$cid")"
[[ "$hc" == 0 ]] || die "service $service has a healthcheck; choose one without (SERVICE=...)"
image="$(docker inspect --format '{{.Config.Image}}' "$cid")"
mapfile -t cmd < <(docker inspect --format '{{range .Config.Cmd}}{{println .}}{{end}}' "$cid" | sed '/^$/d')

# --- the reference containers: their own project label, their own network ---
docker network create --label "com.docker.compose.project=$ref" "$ref-net" >/dev/null
docker run -d --init --restart always --name "$ref-restart" --network "$ref-net" \
    --label "com.docker.compose.project=$ref" --label "com.docker.compose.service=restart" \
    "$image" "${cmd[@]}" >/dev/null

since="$(date +%s.%N)"
docker events --since "$since" --format '{{json .}}' --filter type=container \
    --filter "label=com.docker.compose.project=$project" >"$work/events.project.jsonl" &
evpids+=($!)
docker events --since "$since" --format '{{json .}}' --filter type=container \
    --filter "label=com.docker.compose.project=$ref" >"$work/events.ref.jsonl" &
evpids+=($!)
sleep 0.5

now_ns() { date +%s%N; }
# wait_until CMD...: poll at 20 Hz until CMD succeeds; 60 s at most.
wait_until() {
    local k
    for ((k = 0; k < 1200; k++)); do "$@" && return 0; sleep 0.05; done
    return 1
}
running_other_than() { # OLD-ID: a running container of the service other than OLD-ID
    local id
    id="$(docker ps -q --no-trunc "${svc_filter[@]}")"
    [[ -n "$id" && "$id" != "$1"* ]]
}
restarted_since() { # STARTED-AT: the restart container started again
    [[ "$(docker inspect --format '{{.State.Running}} {{.State.StartedAt}}' "$ref-restart")" == "true "* ]] \
        && [[ "$(docker inspect --format '{{.State.StartedAt}}' "$ref-restart")" != "$1" ]]
}

: >"$work/start.ms"
: >"$work/createstart.ms"
: >"$work/removed.ids"
restart_started=$(now_ns)
log "$trials trials: start, restart policy, repair ($service, $image ${cmd[*]})"
for ((t = 1; t <= trials; t++)); do
    # 1. the container's own start time
    t0=$(now_ns)
    pid_c="$(docker create --init --network "$ref-net" --label "com.docker.compose.project=$ref" \
        --label "com.docker.compose.service=start" "$image" "${cmd[@]}")"
    t1=$(now_ns)
    docker start "$pid_c" >/dev/null
    t2=$(now_ns)
    echo $(((t2 - t1) / 1000)) >>"$work/start.ms"
    echo $(((t2 - t0) / 1000)) >>"$work/createstart.ms"
    docker rm -f "$pid_c" >/dev/null

    # 2. Docker's restart policy, once the container has run GAP seconds
    wait_s=$(((restart_started + gap * 1000000000 - $(now_ns)) / 1000000))
    ((wait_s <= 0)) || sleep "$(awk -v m="$wait_s" 'BEGIN {printf "%.3f", m / 1000}')"
    started_at="$(docker inspect --format '{{.State.StartedAt}}' "$ref-restart")"
    kill -KILL "$(docker inspect --format '{{.State.Pid}}' "$ref-restart")"
    wait_until restarted_since "$started_at" || die "trial $t: Docker did not restart $ref-restart within 60 s"
    restart_started=$(now_ns)

    # 3. spindle's repair
    old="$(docker ps -q --no-trunc "${svc_filter[@]}")"
    [[ -n "$old" ]] || die "trial $t: no running container of $service"
    echo "$old" >>"$work/removed.ids"
    docker rm -f "$old" >/dev/null
    wait_until running_other_than "$old" || die "trial $t: spindle did not replace $service within 60 s"
    printf '.' >&2
done
printf '\n' >&2
sleep 1
for p in "${evpids[@]}"; do kill "$p" 2>/dev/null || true; done
evpids=()

# --- figures from the events ---
# repair: destroy of each removed id -> the first start of another container of the service after it
repair="$(jq -rs --arg svc "$service" --rawfile ids "$work/removed.ids" '
    ($ids | split("\n") | map(select(length > 0))) as $removed
    | [ .[] | select(.Actor.Attributes["com.docker.compose.service"] == $svc) ] as $ev
    | $removed[] as $id
    | ([ $ev[] | select(.Action == "destroy" and .Actor.ID == $id) | .timeNano ] | first) as $gone
    | ([ $ev[] | select(.Action == "start" and .Actor.ID != $id and .timeNano > $gone) | .timeNano ] | first) as $up
    | if $gone == null or $up == null then "missing" else (($up - $gone) / 1000 | floor) end
' "$work/events.project.jsonl")"
restart="$(jq -rs '
    [ .[] | select(.Actor.Attributes["com.docker.compose.service"] == "restart"
                   and (.Action == "die" or .Action == "start")) ] | sort_by(.timeNano)
    | . as $ev | range(0; length - 1) as $i
    | select($ev[$i].Action == "die" and $ev[$i + 1].Action == "start")
    | (($ev[$i + 1].timeNano - $ev[$i].timeNano) / 1000 | floor)
' "$work/events.ref.jsonl")"
grep -q missing <<<"$repair" && die "some repair has no destroy or start event (see $work)"
[[ "$(grep -c . <<<"$repair")" == "$trials" ]] || die "expected $trials repairs in the events, found $(grep -c . <<<"$repair")"
[[ "$(grep -c . <<<"$restart")" == "$trials" ]] || die "expected $trials restarts in the events, found $(grep -c . <<<"$restart")"

# stats < microseconds: "median p95" in ms (p95: nearest rank)
stats() {
    sort -n | awk '{a[NR] = $1} END {
        m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
        r = int(0.95 * NR); if (r < 0.95 * NR) r++; if (r < 1) r = 1
        printf "%.1f %.1f\n", m / 1000, a[r] / 1000 }'
}
read -r rep_med rep_p95 < <(stats <<<"$repair")
read -r rst_med rst_p95 < <(stats <<<"$restart")
read -r st_med st_p95 < <(stats <"$work/start.ms")
read -r cs_med cs_p95 < <(stats <"$work/createstart.ms")
net="$(awk -v r="$rep_med" -v s="$st_med" 'BEGIN {printf "%.1f", r - s}')"
verdict="$(awk -v n="$net" 'BEGIN {print (n <= 1500) ? "met" : "MISSED"}')"
reconciles="$(grep -c 'reconcile finished' "$work/run.log" || true)"
failed="$(grep -c 'reconcile failed record=' "$work/run.log" || true)"
commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
git -C "$repo" diff --quiet HEAD 2>/dev/null || commit="$commit+"

printf '\ndrift-bench: %d trials, service %s (%s), stack %s, engine %s, load %s\n' "$trials" "$service" \
    "$image" "$(basename "$stack")" "$engine" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '  repair (destroy -> replacement start, spindle run):   median %8s ms   p95 %8s ms\n' "$rep_med" "$rep_p95"
printf '  own start (docker start of a created container):      median %8s ms   p95 %8s ms\n' "$st_med" "$st_p95"
printf '  own create + start (docker create; docker start):     median %8s ms   p95 %8s ms\n' "$cs_med" "$cs_p95"
printf '  Docker restart policy (die -> start, kill -9 of pid 1): median %8s ms   p95 %8s ms\n' "$rst_med" "$rst_p95"
printf '  repair - own start: %s ms (target <= 1500 ms: %s); spindle: %s reconciles, %s failed\n' \
    "$net" "$verdict" "$reconciles" "$failed"
printf '  repair samples (ms): %s\n' "$(awk '{printf "%.0f ", $1 / 1000}' <<<"$repair")"
if ((failed > 0)); then
    printf '  failed reconciles, by error (retried after the backoff, 1 s doubling, jittered):\n'
    grep 'reconcile failed record=' "$work/run.log" | sed -E 's/.*error=//; s/[0-9a-f]{64}/<id>/g; s/[0-9a-f]{12}/<id>/g' \
        | sort | uniq -c | sort -rn | sed 's/^/    /'
fi
printf '\nMarkdown row for docs/benchmarks.md:\n'
printf '| %s | %s | %d | %s ms | %s ms | %s ms | %s ms | **%s ms** | %s ms | %s ms | %s; %s reconciles, %s failed |\n' \
    "$(date -u +%F)" "$commit" "$trials" "$rep_med" "$rep_p95" "$st_med" "$cs_med" "$net" "$rst_med" "$rst_p95" \
    "target $verdict" "$reconciles" "$failed"
