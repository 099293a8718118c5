#!/usr/bin/env bash
# apply-bench.sh - time `spindle apply` against `docker-compose up -d` (Compose v5) on the same
# 12-service stack (bench/stacks/twelve), on the same engine, in the same run.
#
#   no-op        both projects are up and converged; N runs of `docker-compose -p P up -d` against
#                N runs of `spindle -p P --desired-state DIR apply`. Target ratio spindle/compose <= 0.1.
#   leaf change  before each run, one environment value of a leaf service (no dependents) flips
#                between two values; each run converges that change. Target ratio <= 0.7.
#
# Each tool has its own project (<prefix>-compose, <prefix>-spindle) and its own copy of the stack
# (with a .env holding the leaf value), so one tool's runs never change the other's state. Both
# projects are removed at the end, also on error or Ctrl-C (`down -v`, then `docker rm -f`, network
# and volume removal by the project label).
#
# Usage: bench/apply-bench.sh [--self-test]
#   --self-test   stand in for spindle with a wrapper that translates
#                 `spindle [--desired-state DIR] [-p NAME] apply` into `docker-compose -p NAME up -d`
#                 run in DIR: checks the harness end to end; the ratios must come out near 1.
#
# Environment:
#   SPINDLE_BIN           spindle binary (default target/release/spindle)
#   SPINDLE_COMPOSE_BIN   Compose v5 (default from infra/scripts/env.sh: .ci/.venv/bin/docker-compose)
#   RUNS                  timed no-op runs per tool (default 10); WARMUP warm-up runs (default 1)
#   CHANGES               timed leaf changes per tool (default 6)
#   STACK                 the stack folder (default bench/stacks/twelve)
#   LEAF_SERVICE          the leaf service (default mailer); LEAF_VAR its variable (MAILER_BATCH)
#   BENCH_PROJECT_PREFIX  project name prefix (default spindle-bench)
#   NO_HYPERFINE=1        use the date loop even when hyperfine is installed
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=infra/scripts/env.sh
source "$repo/infra/scripts/env.sh"

die() { printf 'apply-bench: %s\n' "$*" >&2; exit 1; }
log() { printf 'apply-bench: %s\n' "$*" >&2; }

self_test=0
for arg in "$@"; do
    case "$arg" in
    --self-test) self_test=1 ;;
    -h | --help)
        sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
        exit 0
        ;;
    *) die "unknown argument: $arg (see --help)" ;;
    esac
done

compose="$SPINDLE_COMPOSE_BIN"
runs="${RUNS:-10}"
warmup="${WARMUP:-1}"
changes="${CHANGES:-6}"
stack="${STACK:-$repo/bench/stacks/twelve}"
leaf="${LEAF_SERVICE:-mailer}"
leaf_var="${LEAF_VAR:-MAILER_BATCH}"
prefix="${BENCH_PROJECT_PREFIX:-spindle-bench}"
pc="$prefix-compose"
ps="$prefix-spindle"

# --- checks before touching the engine ---
[[ -x "$compose" ]] || die "no Compose at $compose (run infra/scripts/setup.sh)"
cv="$("$compose" version --short 2>/dev/null || true)"
[[ "$cv" == 5.* ]] || die "$compose is not Docker Compose v5 (it says '${cv:-nothing}')"
pv="$(docker-compose version --short 2>/dev/null || true)"
[[ "$pv" == 5.* ]] || die "docker-compose on PATH is not Compose v5 (it says '${pv:-nothing}')"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number"
[[ "$warmup" =~ ^[0-9]+$ ]] || die "WARMUP must be a number"
[[ "$changes" =~ ^[1-9][0-9]*$ ]] || die "CHANGES must be a positive number"
[[ "$prefix" =~ ^[a-z0-9][a-z0-9_-]*$ ]] || die "BENCH_PROJECT_PREFIX must be a valid project name"
[[ -f "$stack/compose.yaml" ]] || die "no compose.yaml in $stack"
command -v docker >/dev/null || die "docker CLI not found"
engine="$(docker version --format '{{.Server.Version}} (API {{.Server.APIVersion}})' 2>/dev/null)" \
    || die "the Docker engine is not reachable"
images="$(grep -ho 'image: *[^ ]*' "$stack/compose.yaml" | awk '{print $2}' | sort -u)"
for img in $images; do
    docker image inspect "$img" >/dev/null 2>&1 \
        || die "image $img is missing (run infra/scripts/build-test-images.sh)"
done

work="$(mktemp -d)"
cdir="$work/compose"
sdir="$work/spindle"

# --- clean-up: both projects, whatever state they are in ---
remove_project() { # NAME DIR
    local p="$1" d="$2" ids
    if [[ -f "$d/compose.yaml" ]]; then
        "$compose" -p "$p" -f "$d/compose.yaml" down -v --remove-orphans -t 1 >/dev/null 2>&1 || true
    else
        "$compose" -p "$p" down -v --remove-orphans -t 1 >/dev/null 2>&1 || true
    fi
    ids="$(docker ps -aq --filter "label=com.docker.compose.project=$p")"
    # shellcheck disable=SC2086 # a list of IDs
    [[ -z "$ids" ]] || docker rm -f $ids >/dev/null 2>&1 || true
    ids="$(docker network ls -q --filter "label=com.docker.compose.project=$p")"
    # shellcheck disable=SC2086
    [[ -z "$ids" ]] || docker network rm $ids >/dev/null 2>&1 || true
    ids="$(docker volume ls -q --filter "label=com.docker.compose.project=$p")"
    # shellcheck disable=SC2086
    [[ -z "$ids" ]] || docker volume rm -f $ids >/dev/null 2>&1 || true
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    log "removing projects $pc and $ps"
    remove_project "$pc" "$cdir"
    remove_project "$ps" "$sdir"
    rm -rf "$work"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Leftovers of an interrupted run have these same names: start from nothing.
remove_project "$pc" "$stack"
remove_project "$ps" "$stack"

# --- each tool's copy of the stack, with the leaf value in .env ---
for d in "$cdir" "$sdir"; do
    mkdir -p "$d"
    cp -R "$stack/." "$d/"
    rm -f "$d/.env"
    printf '%s=50\n' "$leaf_var" >"$d/.env"
done
# toggle DIR: flip the leaf value (50 <-> 51) in DIR/.env.
cat >"$work/toggle" <<EOF
#!/bin/sh
set -e
if grep -q '^$leaf_var=50\$' "\$1/.env"; then v=51; else v=50; fi
printf '%s=%s\n' '$leaf_var' "\$v" >"\$1/.env"
EOF
chmod +x "$work/toggle"

# --- spindle, or the self-test's stand-in ---
if ((self_test)); then
    spindle="$work/spindle-as-compose"
    cat >"$work/spindle-as-compose" <<EOF
#!/usr/bin/env bash
# self-test stand-in: spindle [--desired-state DIR] [-p NAME] apply  ->  docker-compose -p NAME up -d, in DIR
set -euo pipefail
dir=. name= cmd=
while ((\$#)); do
    case "\$1" in
    --desired-state) dir="\$2"; shift 2 ;;
    --desired-state=*) dir="\${1#*=}"; shift ;;
    -p | --project-name) name="\$2"; shift 2 ;;
    --project-name=*) name="\${1#*=}"; shift ;;
    apply) cmd=apply; shift ;;
    *) echo "spindle-as-compose: unsupported argument \$1" >&2; exit 2 ;;
    esac
done
[[ "\$cmd" == apply ]] || { echo "spindle-as-compose: only apply is supported" >&2; exit 2; }
cd "\$dir"
exec $(printf '%q' "$compose") \${name:+-p "\$name"} up -d
EOF
    chmod +x "$spindle"
    spindle_label="compose as spindle (self-test)"
else
    spindle="${SPINDLE_BIN:-$repo/target/release/spindle}"
    [[ -x "$spindle" ]] || die "no spindle binary at $spindle (cargo build --release, or set SPINDLE_BIN)"
    spindle_label="spindle"
fi

compose_up=("$compose" -p "$pc" -f "$cdir/compose.yaml" up -d)
spindle_apply=("$spindle" -p "$ps" --desired-state "$sdir" apply)

nservices="$("$compose" -p "$pc" -f "$cdir/compose.yaml" config --services | wc -l)"

# settle PROJECT: wait until every container of the project is running, and healthy if it has a
# healthcheck (both tools get a quiet, converged stack before the timed runs).
settle() {
    local p="$1" k states
    for ((k = 0; k < 240; k++)); do
        states="$(docker ps -a --filter "label=com.docker.compose.project=$p" --format '{{.Status}}')"
        if [[ "$(grep -c . <<<"$states")" -ge "$nservices" ]] \
            && ! grep -qv '^Up' <<<"$states" && ! grep -q -e 'starting' -e 'unhealthy' <<<"$states"; then
            return 0
        fi
        sleep 0.5
    done
    docker ps -a --filter "label=com.docker.compose.project=$p" --format '{{.Names}} {{.Status}}' >&2
    die "project $p did not settle (every container up and healthy) within 2 minutes"
}

# ids PROJECT: "service id" lines, sorted.
ids() {
    docker ps -a --filter "label=com.docker.compose.project=$1" \
        --format '{{.Label "com.docker.compose.service"}} {{.ID}}' | sort
}

# leaf_value PROJECT: the leaf value the running leaf container has.
leaf_value() {
    local id
    id="$(docker ps -q --filter "label=com.docker.compose.project=$1" \
        --filter "label=com.docker.compose.service=$leaf")"
    [[ -n "$id" ]] || { echo "none"; return; }
    docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' "$id" \
        | sed -n "s/^$leaf_var=//p"
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
q() { printf '%q ' "$@"; }

use_hyperfine=0
if command -v hyperfine >/dev/null && command -v jq >/dev/null && [[ -z "${NO_HYPERFINE:-}" ]]; then
    use_hyperfine=1
fi
method="date loop"
((use_hyperfine)) && method="hyperfine"

# timed NAME WARMUP RUNS PREPARE_DIR CMD... -> the median in seconds. PREPARE_DIR: toggle the leaf
# value in that dir before each run ('' for none).
timed() {
    local name="$1" wu="$2" n="$3" prep="$4" k t0 t1
    shift 4
    if ((use_hyperfine)); then
        local extra=()
        [[ -z "$prep" ]] || extra=(--prepare "$work/toggle $prep")
        hyperfine --style basic -N --warmup "$wu" --runs "$n" "${extra[@]}" \
            --export-json "$work/$name.json" -n "$name" "$(q "$@")" >&2 || return 1
        jq -r '.results[0].median' "$work/$name.json"
    else
        for ((k = 0; k < wu; k++)); do
            [[ -z "$prep" ]] || "$work/toggle" "$prep"
            "$@" >/dev/null 2>&1 || die "$name: warm-up run failed: $(q "$@")"
        done
        for ((k = 0; k < n; k++)); do
            [[ -z "$prep" ]] || "$work/toggle" "$prep"
            t0=$(date +%s%N)
            "$@" >/dev/null 2>"$work/$name.err" || {
                tail -n 20 "$work/$name.err" >&2
                die "$name: run failed: $(q "$@")"
            }
            t1=$(date +%s%N)
            echo "$(((t1 - t0) / 1000))"
        done | median | awk '{printf "%.6f\n", $1 / 1e6}'
    fi
}

ms() { awk -v x="$1" 'BEGIN {printf "%.1f", x * 1000}'; }
ratio() { awk -v s="$1" -v c="$2" 'BEGIN {printf "%.3f", s / c}'; }

log "stack $stack ($nservices services), engine $engine, compose v$cv, $method"
log "projects $pc (docker-compose) and $ps ($spindle_label: $spindle)"

# --- bring both up once ---
log "bringing $pc up: docker-compose up -d --wait"
"$compose" -p "$pc" -f "$cdir/compose.yaml" up -d --wait >"$work/up.compose.log" 2>&1 \
    || { tail -n 30 "$work/up.compose.log" >&2; die "docker-compose up -d --wait failed"; }
log "bringing $ps up: $spindle_label apply"
"${spindle_apply[@]}" >"$work/up.spindle.log" 2>&1 \
    || { tail -n 30 "$work/up.spindle.log" >&2; die "$spindle_label apply failed (see above)"; }
settle "$pc"
settle "$ps"

# --- no-op ---
before_c="$(ids "$pc")"
before_s="$(ids "$ps")"
log "no-op: $runs runs each ($warmup warm-up)"
noop_c="$(timed noop-compose "$warmup" "$runs" "" "${compose_up[@]}")"
noop_s="$(timed noop-spindle "$warmup" "$runs" "" "${spindle_apply[@]}")"
noop_note="nothing recreated"
[[ "$(ids "$pc")" == "$before_c" ]] || noop_note="WARNING: the compose no-op runs replaced containers"
[[ "$(ids "$ps")" == "$before_s" ]] || noop_note="WARNING: the $spindle_label no-op runs replaced containers"

# --- one leaf change ---
before_c="$(ids "$pc")"
before_s="$(ids "$ps")"
log "leaf change: $changes changes each, $leaf_var of $leaf flips before each run"
leaf_c="$(timed leaf-compose 0 "$changes" "$cdir" "${compose_up[@]}")"
leaf_s="$(timed leaf-spindle 0 "$changes" "$sdir" "${spindle_apply[@]}")"
leaf_note="only $leaf recreated"
# check_leaf PROJECT DIR BEFORE: the leaf runs the value in DIR/.env and nothing else was replaced.
check_leaf() {
    local want got
    want="$(sed -n "s/^$leaf_var=//p" "$2/.env")"
    got="$(leaf_value "$1")"
    [[ "$got" == "$want" ]] || leaf_note="WARNING: $1 runs $leaf with $leaf_var=$got, the files say $want"
    if [[ "$(grep -v "^$leaf " <<<"$3")" != "$(ids "$1" | grep -v "^$leaf ")" ]]; then
        leaf_note="WARNING: in $1, services other than $leaf were recreated"
    fi
}
check_leaf "$pc" "$cdir" "$before_c"
check_leaf "$ps" "$sdir" "$before_s"

# --- results ---
r_noop="$(ratio "$noop_s" "$noop_c")"
r_leaf="$(ratio "$leaf_s" "$leaf_c")"
commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')"
git -C "$repo" diff --quiet HEAD 2>/dev/null || commit="$commit+"
printf '\napply-bench: %s, stack %s (%s services), engine %s, compose v%s\n' \
    "$method" "$(basename "$stack")" "$nservices" "$engine" "$cv"
printf 'spindle side: %s (%s)\n' "$spindle_label" "$spindle"
printf 'no-op       (%2d runs):  compose %8s ms   %s %8s ms   ratio %s  (target <= 0.1; %s)\n' \
    "$runs" "$(ms "$noop_c")" "spindle" "$(ms "$noop_s")" "$r_noop" "$noop_note"
printf 'leaf change (%2d runs):  compose %8s ms   %s %8s ms   ratio %s  (target <= 0.7; %s)\n' \
    "$changes" "$(ms "$leaf_c")" "spindle" "$(ms "$leaf_s")" "$r_leaf" "$leaf_note"
printf '\nMarkdown rows for docs/benchmarks.md:\n'
printf '| %s | %s | %s | no-op | %d | %s ms | %s ms | %s | %s |\n' "$(date -u +%F)" "$commit" \
    "$([[ $self_test == 1 ]] && echo self-test || echo spindle)" "$runs" "$(ms "$noop_c")" \
    "$(ms "$noop_s")" "$r_noop" "$method; $noop_note"
printf '| %s | %s | %s | leaf change | %d | %s ms | %s ms | %s | %s |\n' "$(date -u +%F)" "$commit" \
    "$([[ $self_test == 1 ]] && echo self-test || echo spindle)" "$changes" "$(ms "$leaf_c")" \
    "$(ms "$leaf_s")" "$r_leaf" "$method; $leaf_note"
