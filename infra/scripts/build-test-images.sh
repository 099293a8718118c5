#!/usr/bin/env bash
# build-test-images.sh - build the local test and sample-stack images without any container registry.
#
# Every image is the same tiny rootfs made from Debian's busybox-static package, imported with
# `docker import` and given its own default CMD. Each image carries a LABEL spindle.image-digest
# (sha256 of the rootfs tar plus its CMD); an image whose label already matches is left alone, so
# running this again is cheap and changes nothing.
#
# Usage: infra/scripts/build-test-images.sh [--force]
set -euo pipefail

force=0
if [[ "${1:-}" == "--force" ]]; then force=1; fi

log() { printf 'build-test-images: %s\n' "$*" >&2; }

command -v docker >/dev/null || { log "docker CLI not found"; exit 1; }
docker info >/dev/null 2>&1 || { log "docker daemon not reachable"; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --- the busybox binary: the installed busybox-static package, or the .deb fetched from Debian ---
busybox=""
if dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed' \
    && [[ -x /bin/busybox ]]; then
    busybox=/bin/busybox
else
    log "busybox-static not installed; downloading the Debian package"
    (cd "$work" && apt-get download busybox-static >/dev/null 2>&1) \
        || { log "apt-get download busybox-static failed (run apt-get update first?)"; exit 1; }
    dpkg-deb -x "$work"/busybox-static_*.deb "$work/deb"
    busybox="$work/deb/bin/busybox"
fi
# A dynamically linked busybox would not run in an empty rootfs.
if command -v file >/dev/null && ! file -L "$busybox" | grep -q 'statically linked'; then
    log "$busybox is not statically linked"
    exit 1
fi

# --- the rootfs ---
root="$work/rootfs"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/local/bin,etc,tmp,var/www,var/lib/data,root,proc,sys,dev,run}
chmod 1777 "$root/tmp"
install -m 0755 "$busybox" "$root/bin/busybox"
# Same as `busybox --install -s`, without running anything inside the rootfs.
while IFS= read -r applet; do
    [[ -z "$applet" || "$applet" == bin/busybox ]] && continue
    mkdir -p "$root/$(dirname "$applet")"
    ln -sf /bin/busybox "$root/$applet"
done < <("$busybox" --list-full)

cat >"$root/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$root/etc/group" <<'EOF'
root:x:0:
www-data:x:33:
nogroup:x:65534:
EOF
printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
printf 'ok\n' >"$root/var/www/health"
printf '<!doctype html><title>spindle sample</title><p>spindle sample stack</p>\n' >"$root/var/www/index.html"

# serve PORT [DIR]: busybox httpd in the foreground that exits promptly on SIGTERM even as PID 1.
cat >"$root/usr/local/bin/serve" <<'EOF'
#!/bin/sh
port="${1:-8000}"
dir="${2:-/var/www}"
trap 'kill "$pid" 2>/dev/null; exit 0' TERM INT
httpd -f -p "$port" -h "$dir" &
pid=$!
wait "$pid"
EOF
# idle: wait forever, exit 0 on SIGTERM (a stand-in for workers and schedulers).
cat >"$root/usr/local/bin/idle" <<'EOF'
#!/bin/sh
trap 'exit 0' TERM INT
sleep 2147483647 &
wait
EOF
chmod 0755 "$root/usr/local/bin/serve" "$root/usr/local/bin/idle"

# Reproducible tar: fixed order, owners and times, so the same busybox gives the same digest.
tarball="$work/rootfs.tar"
tar --sort=name --mtime='@0' --owner=0 --group=0 --numeric-owner \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
    -C "$root" -cf "$tarball" .
rootfs_sha="$(sha256sum "$tarball" | cut -d' ' -f1)"
log "rootfs sha256 $rootfs_sha"

# --- the images: tag|CMD (JSON array) ---
images=(
    'spindle-test/busybox:1|["/usr/local/bin/idle"]'
    'spindle-sample/erp-backend:1|["/usr/local/bin/serve","8000"]'
    'spindle-sample/mariadb:1|["/usr/local/bin/serve","3306"]'
    'spindle-sample/redis:1|["/usr/local/bin/serve","6379"]'
    'spindle-sample/nginx:1|["/usr/local/bin/serve","80"]'
    'spindle-sample/gateway:1|["/usr/local/bin/serve","8080"]'
)

built=0
kept=0
for entry in "${images[@]}"; do
    tag="${entry%%|*}"
    cmd="${entry#*|}"
    digest="$(printf '%s\n%s\n' "$rootfs_sha" "$cmd" | sha256sum | cut -d' ' -f1)"
    current="$(docker image inspect -f '{{ index .Config.Labels "spindle.image-digest" }}' "$tag" 2>/dev/null || true)"
    if [[ $force -eq 0 && "$current" == "$digest" ]]; then
        kept=$((kept + 1))
        continue
    fi
    docker import \
        --change "CMD $cmd" \
        --change "WORKDIR /" \
        --change "ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change "LABEL spindle.image-digest=$digest" \
        --change 'LABEL org.opencontainers.image.description="spindle test image (busybox-static)"' \
        "$tarball" "$tag" >/dev/null
    log "built $tag"
    built=$((built + 1))
done
# Rebuilt tags leave their old images dangling; remove those (only ours, by label).
if ((built)); then
    docker images -q --filter dangling=true --filter label=spindle.image-digest \
        | xargs -r docker rmi >/dev/null 2>&1 || true
fi
log "$built built, $kept already up to date"
