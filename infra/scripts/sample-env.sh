#!/usr/bin/env bash
# sample-env.sh - create desired-state/.env from .env.example, filling every empty key with a
# generated secret from /dev/urandom. Leaves an existing .env alone. Never prints a secret.
#
# Usage: infra/scripts/sample-env.sh [DESIRED_STATE_DIR]   (default: desired-state next to infra/)
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${1:-$repo/desired-state}"
example="$dir/.env.example"
target="$dir/.env"

log() { printf 'sample-env: %s\n' "$*" >&2; }

if [[ -e "$target" ]]; then
    log "$target exists; left unchanged"
    exit 0
fi
[[ -r "$example" ]] || { log "$example not found"; exit 1; }

# 32 random bytes as 64 hex characters: safe in URLs, YAML and shell without quoting.
secret() { od -An -N32 -tx1 /dev/urandom | tr -d ' \n'; }

umask 077
tmp="$(mktemp "$dir/.env.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
generated=()
while IFS= read -r line || [[ -n "$line" ]]; do
    if [[ "$line" =~ ^([A-Za-z_][A-Za-z0-9_]*)=$ ]]; then
        key="${BASH_REMATCH[1]}"
        printf '%s=%s\n' "$key" "$(secret)" >>"$tmp"
        generated+=("$key")
    else
        printf '%s\n' "$line" >>"$tmp"
    fi
done <"$example"
mv "$tmp" "$target"
trap - EXIT
log "wrote $target (mode 600); generated: ${generated[*]:-nothing}"
