#!/usr/bin/env bash
# plan-cpu.sh - CPU time of one `spindle::plan::plan` call on the 200-service bench input, by getrusage.
#
# Builds the criterion bench benches/plan.rs (bench profile), then runs its binary twice outside
# criterion: with PLAN_CPU_ITERS=0 (load the project and build the snapshot only) and with
# PLAN_CPU_ITERS=N (the same, then N plans). bash's `time` reports each child's user and system
# CPU from getrusage(RUSAGE_CHILDREN); the difference divided by N is the CPU time per plan,
# all threads counted. Target: at most 100 ms.
#
# Environment: ITERS (default 200), PLAN_SERVICES (default 200), REPEAT (default 3: the median
# of REPEAT measurements is printed).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
iters="${ITERS:-200}"
repeat="${REPEAT:-3}"
die() { printf 'plan-cpu: %s\n' "$*" >&2; exit 1; }
[[ "$iters" =~ ^[1-9][0-9]*$ ]] || die "ITERS must be a positive number"
[[ "$repeat" =~ ^[1-9][0-9]*$ ]] || die "REPEAT must be a positive number"

cd "$repo"
bin="$(cargo bench --bench plan --no-run --message-format=json 2>/dev/null \
    | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1)"
[[ -x "$bin" ]] || die "could not build the plan bench (cargo bench --bench plan --no-run)"

# cpu N -> CPU seconds (user + system) of one run of the bench binary with PLAN_CPU_ITERS=N
cpu() {
    local TIMEFORMAT='%3U %3S' t
    t="$({ time PLAN_CPU_ITERS="$1" "$bin" >/dev/null 2>&1; } 2>&1)" || die "the bench binary failed"
    awk '{printf "%.3f\n", $1 + $2}' <<<"$t"
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

info="$(PLAN_CPU_ITERS=1 "$bin" 2>/dev/null)"
per_plan="$(for ((k = 0; k < repeat; k++)); do
    base="$(cpu 0)"
    full="$(cpu "$iters")"
    awk -v b="$base" -v f="$full" -v n="$iters" 'BEGIN {printf "%.4f\n", (f - b) * 1000 / n}'
done | median)"

printf 'plan-cpu: %s\n' "$info"
printf 'plan-cpu: %s plans per run, median of %s runs (setup-only run subtracted)\n' "$iters" "$repeat"
printf 'CPU per plan: %s ms  (target <= 100 ms)\n' "$per_plan"
