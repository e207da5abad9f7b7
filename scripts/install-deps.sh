#!/usr/bin/env bash
# Installs the system packages the project needs, only those missing.
#   install-deps.sh mesh   nats-server and postgresql (to run the mesh locally)
#   install-deps.sh test   everything the tests use: nats-server, postgresql,
#                          prometheus, promtool, prometheus-alertmanager
#                          (alertmanager and amtool), shellcheck, buildah, podman,
#                          debootstrap, unzip, runc, the OCI runtime the
#                          rehearsal runs the chart's pods with (podman's
#                          default crun refuses hosts with hybrid cgroups),
#                          procps (ps: scripts/test stops its background
#                          build by its process tree), openssl (the TLS
#                          tests' certificates), chromium (the console's
#                          browser test drives it with playwright-core), and
#                          qemu-user-static with binfmt-support (the arm64
#                          image, built and started under emulation), whose
#                          qemu-aarch64 entry it enables where the kernel lets it
set -euo pipefail

want=(nats-server postgresql)
if [[ "${1:-mesh}" == "test" ]]; then
  want+=(prometheus prometheus-alertmanager shellcheck buildah podman debootstrap unzip runc procps openssl chromium qemu-user-static binfmt-support)
fi

binary_of() {
  case "$1" in
    prometheus) echo promtool ;;
    prometheus-alertmanager) echo amtool ;;
    procps) echo ps ;;
    qemu-user-static) echo qemu-aarch64-static ;;
    binfmt-support) echo update-binfmts ;;
    *) echo "$1" ;;
  esac
}

installed() {
  local bin
  # Debian keeps the server's binaries off PATH, under /usr/lib/postgresql/<version>/bin.
  if [[ "$1" == postgresql ]]; then
    compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
    return
  fi
  bin=$(binary_of "$1")
  command -v "$bin" >/dev/null 2>&1 || [[ -x "/usr/sbin/$bin" ]]
}

# The kernel runs aarch64 binaries through qemu once binfmt_misc is mounted
# and the entry enabled. Best effort: where a sandbox refuses it, the arm64
# image test says so in its skip reason and everything else goes on.
enable_arm64_emulation() {
  [[ "${1:-mesh}" == test && "$(uname -m)" != aarch64 ]] || return 0
  grep -qsx enabled /proc/sys/fs/binfmt_misc/qemu-aarch64 && return 0
  local as_root=()
  [[ $(id -u) -eq 0 ]] || as_root=(sudo -n)
  { [[ -f /proc/sys/fs/binfmt_misc/register ]] ||
    "${as_root[@]}" mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc; } >/dev/null 2>&1 &&
    "${as_root[@]}" update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 ||
    echo "install-deps: cannot register qemu-aarch64 with binfmt_misc here: the arm64 image test will skip" >&2
}

missing=()
for pkg in "${want[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  enable_arm64_emulation "${1:-mesh}"
  exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing: ${missing[*]}. Install them with your package manager (Debian/Ubuntu: apt-get install ${missing[*]})." >&2
  exit 1
fi
sudo=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
  else
    echo "Missing: ${missing[*]}. Run as root: apt-get update && apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
echo "Installing ${missing[*]} with apt-get..." >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
enable_arm64_emulation "${1:-mesh}"
