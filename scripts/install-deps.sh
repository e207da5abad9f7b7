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
#                          build by its process tree), and openssl (the TLS
#                          tests' certificates)
set -euo pipefail

want=(nats-server postgresql)
if [[ "${1:-mesh}" == "test" ]]; then
  want+=(prometheus prometheus-alertmanager shellcheck buildah podman debootstrap unzip runc procps openssl)
fi

binary_of() {
  case "$1" in
    prometheus) echo promtool ;;
    prometheus-alertmanager) echo amtool ;;
    procps) echo ps ;;
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

missing=()
for pkg in "${want[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

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
