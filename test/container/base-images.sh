#!/bin/sh
# Makes the local base images the Containerfile builds on, where no registry
# is reachable: docker.io/library/debian:bookworm (debootstrap minbase) and
# docker.io/library/debian:bookworm-slim (the same, slimmed like Debian's
# official slim image: no docs, man pages, locales or apt lists, and a dpkg
# filter that keeps later installs slim). Cached: does nothing when both
# images exist. Needs root, podman and debootstrap, and deb.debian.org.
#   test/container/base-images.sh [--force]
set -eu

FULL=docker.io/library/debian:bookworm
SLIM=docker.io/library/debian:bookworm-slim
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

if [ "${1:-}" != "--force" ] && podman image exists "$FULL" \
    && podman image exists "$SLIM"; then
  echo "base-images: $FULL and $SLIM exist (cached)"
  exit 0
fi

# One maker at a time on a machine (two test runs share the image store).
lock=/var/tmp/btcstream-base-images.lock
exec 9>"$lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
  if [ "${1:-}" != "--force" ] && podman image exists "$FULL" \
      && podman image exists "$SLIM"; then
    echo "base-images: made by a concurrent run"
    exit 0
  fi
fi

work=$(mktemp -d /var/tmp/btcstream-debootstrap.XXXXXX)
trap 'rm -rf "$work"' EXIT INT TERM HUP
root="$work/rootfs"

echo "base-images: debootstrap --variant=minbase bookworm ($MIRROR)"
debootstrap --variant=minbase bookworm "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  echo "base-images: debootstrap failed" >&2
  exit 1
}

# Like the official image: bookworm, bookworm-updates and security, deb822.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
# No cached package lists or archives in the image, as upstream.
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CLEAN'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
CLEAN
printf 'Acquire::GzipIndexes "true";\n' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
printf 'APT::AutoRemove::SuggestsImportant "false";\n' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin \
  "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log "$root"/tmp/*
: >"$root/etc/machine-id"
printf 'debian\n' >"$root/etc/hostname"

echo "base-images: import $FULL"
tar --numeric-owner -C "$root" -c . \
  | podman import --quiet --change 'CMD ["bash"]' - "$FULL" >/dev/null

echo "base-images: slim and import $SLIM"
cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'SLIMCFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
SLIMCFG
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root"/usr/share/man/* "$root"/usr/share/groff/* "$root"/usr/share/info/* \
  "$root"/usr/share/lintian/* "$root"/usr/share/linda/*
find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias \
  -exec rm -rf {} +
tar --numeric-owner -C "$root" -c . \
  | podman import --quiet --change 'CMD ["bash"]' - "$SLIM" >/dev/null

podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' \
  | grep 'library/debian:bookworm' | sed 's/^/base-images: /'
