#!/usr/bin/env bash
# test.sh - run the test suite with Docker Compose v5 found first (PATH and SPINDLE_COMPOSE_BIN).
# Run infra/scripts/setup.sh once before. Extra arguments go to `cargo test`.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
# shellcheck source=infra/scripts/env.sh
source "$repo/infra/scripts/env.sh"
version="$("$SPINDLE_COMPOSE_BIN" version --short 2>/dev/null || true)"
if [[ "$version" != 5.* ]]; then
    printf 'test: no Docker Compose v5 at %s (run infra/scripts/setup.sh)\n' "$SPINDLE_COMPOSE_BIN" >&2
    exit 1
fi
cd "$repo"
exec cargo test "$@"
