#!/usr/bin/env bash
# Builds the real Dockerfile with buildah on local stand-ins for the node base
# images, because CI has no Docker engine and no access to Docker Hub.
#
# The stand-in is Debian bookworm (minbase, like node:*-bookworm-slim) plus the
# project's Node (scripts/node-lts.sh: the image's release on a machine older
# than Node 22), this machine's npm, its global npm config and CA bundle, and a
# "node" user with uid 1000 as in the official image. It is cached under .cache/image keyed
# by a hash of everything that goes into it; a fresh checkout builds it (~1 min).
#
# Usage: test/image/build-image.sh [IMAGE_NAME]   (default: this checkout's test image)
#        test/image/build-image.sh --name         (prints that default name)
# The default name carries a hash of the checkout's path: two clones testing
# on one machine (podman's image store is the machine's) never take each
# other's image.
# Needs: buildah, podman, debootstrap (apt-get install -y buildah podman debootstrap)
set -euo pipefail

readonly RECIPE_VERSION=1 # bump when the stand-in recipe below changes
readonly SUITE=bookworm
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
default_name="localhost/video-mesh:test-$(printf %s "$repo_root" | sha256sum | cut -c1-12)"
if [[ ${1:-} == --name ]]; then echo "$default_name"; exit 0; fi
image_name=${1:-$default_name}
cache_dir="$repo_root/.cache/image"

die() { echo "build-image: $*" >&2; exit 1; }

require_tools() {
  local tool missing=()
  for tool in buildah podman debootstrap node npm tar sha256sum flock; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    die "missing ${missing[*]}; install with: apt-get install -y buildah podman debootstrap"
  fi
}

# The Debian mirror apt is configured with here (deb822 or one-line format).
debian_mirror() {
  if [[ -n "${DEBIAN_MIRROR:-}" ]]; then echo "$DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(grep -hE '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null |
    awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
  if [[ -z "$uri" ]]; then
    uri=$(grep -hE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

# The Node the project runs on (scripts/node-lts.sh): the image's release unless the machine has 22 or later.
node_bin() { readlink -f "$("$repo_root/scripts/node-lts.sh")"; }
npm_dir() { (cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd); }
npm_globalconfig() { npm config get globalconfig 2>/dev/null; }

standin_key() {
  {
    echo "recipe=$RECIPE_VERSION suite=$SUITE mirror=$(debian_mirror)"
    "$(node_bin)" --version
    npm --version
    sha256sum "$(node_bin)"
    local rc; rc=$(npm_globalconfig)
    [[ -f "$rc" ]] && cat "$rc"
    sha256sum /etc/ssl/certs/ca-certificates.crt
  } | sha256sum | cut -c1-16
}

# Lays the stand-in root filesystem out in $1.
make_rootfs() {
  local rootfs=$1 mirror node npm_root rc
  mirror=$(debian_mirror)
  echo "build-image: debootstrap $SUITE from $mirror" >&2
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$mirror" >"$cache_dir/debootstrap.log" 2>&1 ||
    die "debootstrap failed, see $cache_dir/debootstrap.log"
  node=$(node_bin)
  npm_root=$(npm_dir)
  # Same paths as on this machine so npm finds its global config where it expects it.
  install -D -m 0755 "$node" "$rootfs/usr/bin/node"
  mkdir -p "$rootfs/usr/lib/node_modules"
  cp -a "$npm_root" "$rootfs/usr/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/bin/npx"
  rc=$(npm_globalconfig)
  if [[ -f "$rc" ]]; then install -D -m 0644 "$rc" "$rootfs$rc"; fi
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
  # The official node images have user "node" (1000:1000) with a home directory.
  echo 'node:x:1000:1000::/home/node:/bin/sh' >>"$rootfs/etc/passwd"
  echo 'node:x:1000:' >>"$rootfs/etc/group"
  install -d -o 1000 -g 1000 "$rootfs/home/node"
  rm -rf "$rootfs/var/cache/apt/archives/"*.deb "$rootfs/var/lib/apt/lists/"*
}

ensure_standin() {
  local key tag tarball rootfs
  key=$(standin_key)
  tag="localhost/video-mesh-node-standin:$key"
  tarball="$cache_dir/standin-$key.tar"
  if podman image exists "$tag"; then echo "$tag"; return; fi
  if [[ ! -f "$tarball" ]]; then
    rootfs=$(mktemp -d "$cache_dir/rootfs.XXXXXX")
    make_rootfs "$rootfs"
    tar -C "$rootfs" -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
    rm -rf "$rootfs"
  fi
  podman import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["node"]' "$tarball" "$tag" >/dev/null
  echo "$tag"
}

# Hash of everything the Dockerfile reads, so an unchanged tree is not rebuilt.
context_key() {
  local base=$1
  {
    echo "$base"
    cd "$repo_root"
    find Dockerfile .dockerignore package.json package-lock.json tsconfig.json services \
      -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-16
}

main() {
  require_tools
  mkdir -p "$cache_dir"
  # One build at a time: the image test and the rehearsal both call this, and
  # ./scripts/test runs two test files at once. The second waits, then finds
  # the image up to date.
  exec 9>"$cache_dir/build.lock"
  flock 9
  local base key current
  base=$(ensure_standin)
  key=$(context_key "$base")
  echo "build-image: base image $base, context $key" >&2
  current=$(podman image inspect --format '{{index .Labels "video-mesh.context"}}' "$image_name" 2>/dev/null || true)
  if [[ "$current" == "$key" ]]; then
    echo "build-image: $image_name is up to date" >&2
    return
  fi
  local previous
  previous=$(podman image inspect --format '{{.Id}}' "$image_name" 2>/dev/null || true)
  # No --layers: committing every step costs more than a fresh CI run saves;
  # --jobs=2 builds the build and prod-deps stages side by side.
  buildah bud --isolation=chroot --jobs=2 --label "video-mesh.context=$key" \
    --build-arg "BUILD_IMAGE=$base" --build-arg "RUNTIME_IMAGE=$base" \
    -t "$image_name" -f "$repo_root/Dockerfile" "$repo_root" >&2
  # The replaced image is now untagged: drop it rather than pile up old builds.
  if [[ -n "$previous" ]] && [[ "$(podman image inspect --format '{{.Id}}' "$image_name")" != "$previous" ]]; then
    podman rmi "$previous" >/dev/null 2>&1 || true
  fi
  echo "build-image: built $image_name" >&2
  podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$image_name" >&2
}

main "$@"
