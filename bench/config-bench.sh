#!/usr/bin/env bash
# config-bench.sh - time `spindle config` against `docker-compose config` (Compose v5) on the same
# generated 200-service project (compose.yaml + two override files + .env), in the same run.
#
# Prints each median and the ratio spindle/compose (below 1: spindle is faster).
#
# Environment:
#   SPINDLE_BIN          spindle binary (default target/release/spindle)
#   SPINDLE_COMPOSE_BIN  Compose v5 (default from infra/scripts/env.sh: .ci/.venv/bin/docker-compose)
#   RUNS                 timed runs per tool (default 20); WARMUP warm-up runs (default 3)
#   SERVICES             services to generate (default 200)
#   BENCH_DIR            generate here instead of a temp dir (kept afterwards)
#   NO_HYPERFINE=1       use the date loop even when hyperfine is installed
# Both tools get the same arguments: -p bench -f compose.yaml -f compose.override-1.yaml
#   -f compose.override-2.yaml config --format json, run from the project dir.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=infra/scripts/env.sh
source "$repo/infra/scripts/env.sh"

spindle="${SPINDLE_BIN:-$repo/target/release/spindle}"
compose="$SPINDLE_COMPOSE_BIN"
runs="${RUNS:-20}"
warmup="${WARMUP:-3}"
n="${SERVICES:-200}"

die() { printf 'config-bench: %s\n' "$*" >&2; exit 1; }

[[ -x "$spindle" ]] || die "no spindle binary at $spindle (cargo build --release, or set SPINDLE_BIN)"
[[ -x "$compose" ]] || die "no Compose at $compose (run infra/scripts/setup.sh)"
cv="$("$compose" version --short 2>/dev/null || true)"
[[ "$cv" == 5.* ]] || die "$compose is not Docker Compose v5 (says '${cv:-nothing}')"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || die "RUNS must be a positive number"
[[ "$warmup" =~ ^[0-9]+$ ]] || die "WARMUP must be a number"
[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "SERVICES must be a positive number"

if [[ -n "${BENCH_DIR:-}" ]]; then
    dir="$BENCH_DIR"
    mkdir -p "$dir"
else
    dir="$(mktemp -d)"
    trap 'rm -rf "$dir"' EXIT
fi

# ---------------------------------------------------------------------------------------------
# The project. Services come in groups of ten: one database-like service with a volume and a
# healthcheck, a cache, and eight app services that depend on them. No secret-like variable names,
# so spindle (which redacts secrets) and compose print the same tree.
# ---------------------------------------------------------------------------------------------
generate() {
    local i g kind port
    cat >"$dir/.env" <<'EOF'
REGISTRY=registry.example.com/acme
APP_TAG=2024.11.3
DB_TAG=10.11
APP_ENV=production
LOG_LEVEL=info
HTTP_BIND=127.0.0.1
WORKERS=4
TZ=Europe/Berlin
EOF

    {
        cat <<'EOF'
name: bench

x-logging: &logging
  driver: json-file
  options:
    max-size: 10m
    max-file: "3"

x-restart: &restart
  restart: unless-stopped
  stop_grace_period: 10s
  logging: *logging

x-healthcheck: &healthcheck
  interval: 10s
  timeout: 5s
  retries: 5
  start_period: 30s

x-app-env: &app_env
  APP_ENV: ${APP_ENV:-production}
  LOG_LEVEL: ${LOG_LEVEL:-info}
  TZ: ${TZ:-UTC}
  WORKERS: ${WORKERS:-2}
  FEATURE_FLAGS: "search,export,${EXTRA_FLAGS:-audit}"

x-app: &app
  <<: *restart
  image: ${REGISTRY}/app:${APP_TAG:-latest}
  init: true
  read_only: true
  tmpfs:
    - /tmp
  ulimits:
    nofile:
      soft: 65536
      hard: 65536
  networks:
    - back

services:
EOF
        for ((i = 0; i < n; i++)); do
            g=$((i / 10 * 10))
            kind=$((i % 10))
            port=$((20000 + i))
            case "$kind" in
            0)
                cat <<EOF
  db-$i:
    <<: *restart
    image: \${REGISTRY}/mariadb:\${DB_TAG:-10.11}
    command: ["--character-set-server=utf8mb4", "--max-connections=\${DB_MAX_CONN:-200}"]
    environment:
      MARIADB_DATABASE: app_$i
      MARIADB_USER: app
      MARIADB_AUTO_UPGRADE: "1"
    volumes:
      - db-$i:/var/lib/mysql
      - type: bind
        source: ./conf/db
        target: /etc/mysql/conf.d
        read_only: true
    healthcheck:
      <<: *healthcheck
      test: ["CMD", "healthcheck.sh", "--connect", "--innodb_initialized"]
    networks:
      - back
    labels:
      com.example.group: "g$g"
      com.example.role: database
EOF
                ;;
            1)
                cat <<EOF
  cache-$i:
    <<: *restart
    image: \${REGISTRY}/redis:7-alpine
    command: redis-server --appendonly yes --maxmemory \${CACHE_MEM:-256mb}
    volumes:
      - cache-$i:/data
    healthcheck:
      <<: *healthcheck
      test: redis-cli ping | grep -q PONG
    networks: [back]
    labels:
      - com.example.group=g$g
      - com.example.role=cache
EOF
                ;;
            *)
                cat <<EOF
  app-$i:
    <<: *app
    command: ["serve", "--port", "8000", "--workers", "\${WORKERS:-2}"]
    hostname: app-$i
    environment:
      <<: *app_env
      SERVICE_NAME: app-$i
      DATABASE_URL: mysql://app@db-$g:3306/app_$g
      CACHE_URL: redis://cache-$((g + 1)):6379/$kind
    env_file:
      - path: ./env/app-$i.env
        required: false
    ports:
      - "\${HTTP_BIND:-0.0.0.0}:$port:8000"
      - name: metrics
        target: 9100
        host_ip: 127.0.0.1
        protocol: tcp
    expose:
      - "9100"
    volumes:
      - ./static:/srv/static:ro
      - uploads-$g:/srv/uploads
    depends_on:
      db-$g:
        condition: service_healthy
        restart: true
      cache-$((g + 1)):
        condition: service_started
EOF
                if ((kind > 2)); then
                    cat <<EOF
      app-$((i - 1)):
        condition: service_healthy
        required: false
EOF
                fi
                cat <<EOF
    healthcheck:
      <<: *healthcheck
      test: ["CMD-SHELL", "wget -q -O- http://127.0.0.1:8000/health || exit 1"]
    labels:
      com.example.group: "g$g"
      com.example.role: app
      traefik.enable: "true"
      traefik.http.routers.app-$i.rule: Host(\`app-$i.example.com\`)
      traefik.http.services.app-$i.loadbalancer.server.port: "8000"
EOF
                ;;
            esac
        done
        printf '\nnetworks:\n  back:\n    driver: bridge\n  front:\n    driver: bridge\n\nvolumes:\n'
        for ((i = 0; i < n; i += 10)); do
            printf '  db-%d:\n  cache-%d:\n  uploads-%d:\n    labels:\n      com.example.backup: daily\n' \
                "$i" "$((i + 1))" "$i"
        done
    } >"$dir/compose.yaml"

    # Override 1: a release - new tags for half the apps, extra env, labels and a front network.
    {
        printf 'services:\n'
        for ((i = 0; i < n; i++)); do
            kind=$((i % 10))
            ((kind >= 2)) || continue
            printf '  app-%d:\n' "$i"
            if ((i % 2 == 0)); then
                # shellcheck disable=SC2016 # a literal ${VAR} for compose to interpolate
                printf '    image: ${REGISTRY}/app:${NEXT_TAG:-2024.12.0}\n'
            fi
            cat <<EOF
    environment:
      RELEASE_CHANNEL: stable
      OTEL_SERVICE_NAME: app-$i
    labels:
      com.example.release: "\${APP_TAG}"
    networks:
      - back
      - front
EOF
        done
    } >"$dir/compose.override-1.yaml"

    # Override 2: host sizing - resource limits, scaled replicas, healthcheck tuning.
    {
        printf 'x-limits: &limits\n  resources:\n    limits:\n      cpus: "0.50"\n      memory: 512M\n'
        printf '    reservations:\n      memory: 128M\n\nservices:\n'
        for ((i = 0; i < n; i++)); do
            kind=$((i % 10))
            case "$kind" in
            0)
                printf '  db-%d:\n    mem_limit: 2g\n    healthcheck:\n      interval: 30s\n' "$i"
                ;;
            1) ;;
            *)
                printf '  app-%d:\n    deploy:\n      <<: *limits\n' "$i"
                if ((kind == 9)); then printf '      replicas: 2\n'; fi
                printf '    healthcheck:\n      interval: 15s\n'
                ;;
            esac
        done
    } >"$dir/compose.override-2.yaml"
}

generate
args=(-p bench -f compose.yaml -f compose.override-1.yaml -f compose.override-2.yaml config --format json)
printf 'config-bench: %d services in %s (%s lines of YAML)\n' "$n" "$dir" \
    "$(cat "$dir"/compose*.yaml | wc -l)"

# Both must load the project, and we say whether they print the same tree.
for tool in compose spindle; do
    bin="$compose"
    [[ $tool == spindle ]] && bin="$spindle"
    if ! (cd "$dir" && "$bin" "${args[@]}" >"$dir/out.$tool.json" 2>"$dir/err.$tool.txt"); then
        tail -n 20 "$dir/err.$tool.txt" >&2
        die "$tool failed on the input"
    fi
    if [[ -s "$dir/err.$tool.txt" ]]; then
        printf 'config-bench: %s printed %s lines on stderr (%s)\n' "$tool" \
            "$(wc -l <"$dir/err.$tool.txt")" "$dir/err.$tool.txt"
    fi
done
if command -v jq >/dev/null; then
    if cmp -s <(jq -S . "$dir/out.compose.json") <(jq -S . "$dir/out.spindle.json"); then
        same="identical"
    else
        same="DIFFERENT (compare $dir/out.compose.json and $dir/out.spindle.json)"
        trap - EXIT # keep the project and both outputs for a look
    fi
    printf 'config-bench: outputs are %s\n' "$same"
fi

# median of the numbers on stdin
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

q() { printf '%q ' "$@"; }

if command -v hyperfine >/dev/null && [[ -z "${NO_HYPERFINE:-}" ]] && command -v jq >/dev/null; then
    method="hyperfine"
    (cd "$dir" && hyperfine --style basic --warmup "$warmup" --runs "$runs" -N \
        --export-json "$dir/hyperfine.json" \
        -n spindle "$(q "$spindle" "${args[@]}")" \
        -n compose "$(q "$compose" "${args[@]}")" >&2)
    s_med="$(jq -r '.results[] | select(.command == "spindle") | .median' "$dir/hyperfine.json")"
    c_med="$(jq -r '.results[] | select(.command == "compose") | .median' "$dir/hyperfine.json")"
else
    method="date loop"
    time_runs() { # BIN -> prints seconds per run
        local k t0 t1
        for ((k = 0; k < warmup; k++)); do "$1" "${args[@]}" >/dev/null 2>&1; done
        for ((k = 0; k < runs; k++)); do
            t0=$(date +%s%N)
            "$1" "${args[@]}" >/dev/null 2>&1
            t1=$(date +%s%N)
            echo "$(((t1 - t0) / 1000))"
        done | median | awk '{printf "%.6f\n", $1 / 1e6}'
    }
    s_med="$(cd "$dir" && time_runs "$spindle")"
    c_med="$(cd "$dir" && time_runs "$compose")"
fi

ratio="$(awk -v s="$s_med" -v c="$c_med" 'BEGIN {printf "%.3f", s / c}')"
printf 'config-bench: method %s, %d runs each (%d warm-up), %d services\n' "$method" "$runs" "$warmup" "$n"
printf 'spindle median: %.1f ms  (%s)\n' "$(awk -v x="$s_med" 'BEGIN {print x * 1000}')" "$spindle"
printf 'compose median: %.1f ms  (%s, v%s)\n' "$(awk -v x="$c_med" 'BEGIN {print x * 1000}')" "$compose" "$cv"
printf 'ratio spindle/compose: %s\n' "$ratio"
