#!/usr/bin/env bash
# build-spindle-image.sh - build a container image of spindle without any registry or base image.
#
# The image is a rootfs tarball imported with `docker import`: the spindle binary, the shared
# libraries `ldd` lists for it (and the dynamic loader), the CA certificate bundle, and git with its
# libraries (spindle runs `git rev-parse`/`git status` to record the desired state's revision;
# without git the revision is simply absent from the evidence, nothing else changes).
# spindle ignores git's system and global config (a hostile checkout must not run hooks as root),
# so the folder's owner is trusted through SPINDLE_GIT_SAFE_DIRECTORY, which infra/compose.yaml sets.
#
# Usage: infra/scripts/build-spindle-image.sh [--binary FILE] [--tag TAG] [--no-git]
#   --binary FILE  the spindle binary (default: target/release/spindle, built with
#                  `cargo build --release` when missing)
#   --tag TAG      the image tag (default: spindle:local)
#   --no-git       leave git out (the revision is then not recorded)
set -euo pipefail

log() { printf 'build-spindle-image: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
binary=""
tag="spindle:local"
with_git=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --binary) binary="${2:?--binary needs a file}"; shift 2 ;;
        --tag) tag="${2:?--tag needs a tag}"; shift 2 ;;
        --no-git) with_git=0; shift ;;
        -h|--help) sed -n '2,17p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done

command -v docker >/dev/null || die "docker CLI not found"
command -v ldd >/dev/null || die "ldd not found (it lists the libraries to copy)"
docker info >/dev/null 2>&1 || die "docker daemon not reachable"

if [[ -z "$binary" ]]; then
    binary="$repo/target/release/spindle"
    if [[ ! -x "$binary" ]]; then
        log "building $binary"
        (cd "$repo" && cargo build --release --locked) || die "cargo build --release failed"
    fi
fi
[[ -x "$binary" ]] || die "$binary is not an executable file"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
mkdir -p "$root"/{usr/local/bin,etc/ssl/certs,tmp,var/lib/spindle,run/spindle,srv}
chmod 1777 "$root/tmp"

# Copies a file to the same absolute path inside the rootfs, following symlinks.
put() {
    local src="$1" dest="$root$2"
    mkdir -p "$(dirname "$dest")"
    cp -L "$src" "$dest"
}

# Copies the shared libraries (and the loader) a binary needs, at their paths.
libs_of() {
    local lib
    # Lines look like `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` or
    # `/lib64/ld-linux-x86-64.so.2 (0x…)`; linux-vdso has no file.
    while read -r lib; do
        [[ -n "$lib" && -e "$lib" ]] && put "$lib" "$lib"
    done < <(ldd "$1" 2>/dev/null | awk '/=>/ { print $3; next } $1 ~ /^\// { print $1 }')
    if ldd "$1" 2>&1 | grep -q 'not a dynamic executable'; then
        log "$1 is static: no libraries to copy"
    fi
}

put "$binary" /usr/local/bin/spindle
libs_of "$binary"

if [[ -f /etc/ssl/certs/ca-certificates.crt ]]; then
    put /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
else
    log "no /etc/ssl/certs/ca-certificates.crt on this host: HTTPS probes will not trust public CAs"
fi

if [[ "$with_git" == 1 ]]; then
    if git_bin="$(command -v git)"; then
        put "$git_bin" /usr/bin/git
        libs_of "$git_bin"
    else
        log "git not found on this host: the image records no revision (use --no-git to silence this)"
    fi
fi

# A minimal passwd/group so tools that look up the user (git) find root.
printf 'root:x:0:0:root:/root:/usr/local/bin/spindle\n' >"$root/etc/passwd"
printf 'root:x:0:\n' >"$root/etc/group"
mkdir -p "$root/root"

log "importing $(du -sh "$root" | cut -f1) rootfs as $tag"
tar -C "$root" --numeric-owner --owner=0 --group=0 -cf - . | docker import \
    --change 'ENTRYPOINT ["/usr/local/bin/spindle"]' \
    --change 'CMD ["--help"]' \
    --change 'ENV SPINDLE_STATE_DIR=/var/lib/spindle SPINDLE_LOCK_DIR=/run/spindle PATH=/usr/local/bin:/usr/bin:/bin' \
    --change 'WORKDIR /' \
    --change "LABEL org.opencontainers.image.title=spindle" \
    - "$tag" >/dev/null
log "built $tag"
docker image inspect --format '{{.Id}}' "$tag"
