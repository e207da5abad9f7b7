#!/usr/bin/env bash
# Installs the system packages the project needs, only those missing.
#   install-deps.sh mesh   nats-server (to run the mesh locally)
#   install-deps.sh test   everything the tests use: nats-server, prometheus,
#                          promtool, shellcheck, buildah, podman, debootstrap, unzip
set -euo pipefail

want=(nats-server)
if [[ "${1:-mesh}" == "test" ]]; then
  want+=(prometheus shellcheck buildah podman debootstrap unzip)
fi

binary_of() {
  case "$1" in
    prometheus) echo promtool ;;
    *) echo "$1" ;;
  esac
}

missing=()
for pkg in "${want[@]}"; do
  bin=$(binary_of "$pkg")
  if ! command -v "$bin" >/dev/null 2>&1 && [[ ! -x "/usr/sbin/$bin" ]]; then
    missing+=("$pkg")
  fi
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
